//! The UdaConnect domain: what a person, a location ping and a connection are, how input is
//! validated, how distance is measured, and how contacts are found. Nothing here does I/O: the
//! storage, log and transport adapters depend on this crate, never the reverse.
//!
//! # Layout
//! - [`model`]: persons, locations and the ids that name them.
//! - [`time`]: timestamps on the wire (RFC 3339 in, UTC `Z` out) and query windows.
//! - [`domain`]: validated values (coordinates, ids, distances, time gaps, fix times) and
//!   the ping made of them, each rule written once.
//! - [`validate`]: turning untrusted JSON and query strings into validated domain values, with
//!   every violation named by its field.
//! - [`geo`]: great-circle distance on the contract's sphere.
//! - [`contact`]: the connection and contacts queries (who was near whom, for how long) and
//!   their brute-force oracles.
//! - [`track`]: meetings from tracks: pings interpolated into pieces, when two pieces are
//!   within a distance, encounters and contacts from that, and their brute-force oracle.
//! - [`tracker`]: pings as tracker apps send them (OwnTracks, the OsmAnd protocol, Traccar
//!   Client), and what names a registered device to them.
//! - [`index`]: the in-memory spatio-temporal index that answers them at conference scale.
//! - [`record`]: the format of location records on the log, including the original producers'
//!   keyless JSON.
//! - [`envelope`]: per-person encryption of location records on the log, so destroying a
//!   person's key erases their pings from every copy of it (crypto-shredding).
//! - [`mail`]: mail requests on the `notification` topic, and the ports the mailer sends
//!   through and records what it sent in.
//! - [`venue`]: venue plans in local metres.
//! - [`ports`]: the traits that storage and log adapters implement.
//! - [`auth`]: accounts, roles, tokens, and [`auth::authorize`], the one decision on who may do
//!   what.
//! - [`audit`]: the reads of one person's data by others, which that person sees.
//! - [`consent`]: mutual reveal, hidden contacts, and the handles of contacts not named.
//! - [`cancel`]: the flag a caller raises to stop a long query, and the loops' look at it.
//! - [`clock`]: the wall clock as a port, and the one adapter that reads the machine's.
//! - [`error`]: the one error type, each variant mapped to a stable code.

pub mod audit;
pub mod auth;
pub mod cancel;
pub mod clock;
pub mod consent;
pub mod contact;
pub mod domain;
pub mod envelope;
pub mod error;
pub mod geo;
pub mod index;
pub mod mail;
pub mod model;
pub mod ports;
pub mod record;
pub mod time;
pub mod track;
pub mod tracker;
pub mod validate;
pub mod venue;

pub use error::{Error, ErrorCode, FieldViolation, Result};

/// A generator for tests that need many values rather than cases: the same in every run.
#[cfg(test)]
fn seeded_rng(seed: u8) -> proptest::test_runner::TestRng {
    use proptest::test_runner::{RngAlgorithm, TestRng};
    TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32])
}
