//! A deterministic conference: a venue with session rooms, an expo hall of booths and a
//! catering area; a schedule of talks and breaks over several days; attendees who arrive,
//! follow their interests into talks, wander the booths, queue for coffee and lunch, and leave;
//! some go round in groups of colleagues who stand together. Each phone pings at an interval
//! of its own (15 s to 5 min by default), from a phase of its own, with clock jitter and GPS
//! noise.
//!
//! Everything follows from the seed: the same [`SimConfig`] gives the same persons and the same
//! pings, bit for bit. Each attendee draws from a generator of their own, so attendees can be
//! produced lazily and merged into one time-ordered stream ([`Pings`]) of any length in little
//! memory.
//!
//! # Layout
//! - [`Conference`] (`conference.rs`): what to simulate ([`SimConfig`]), the venue and the
//!   schedule it plans, and the attendees as persons.
//! - `attendee.rs`: each group's plan of the days, each attendee's phone sampling it ping by
//!   ping, and [`Pings`], their streams merged in time order.
//! - [`Rng`] (`rng.rs`): the seeded generator everything is drawn from.

mod attendee;
mod conference;
mod rng;
#[cfg(test)]
mod tests;

pub use attendee::{Pings, SimPing};
pub use conference::{Conference, Session, SimConfig};
pub use rng::Rng;

use udaconnect_core::time::Micros;

const US: i64 = 1_000_000;
const HOUR: i64 = 3600 * US;
const MINUTE: i64 = 60 * US;
const DAY: i64 = 24 * HOUR;

/// Start of the talk slots of a day, hours after midnight; each lasts [`TALK`].
const SLOTS_H: [f64; 7] = [9.0, 10.0, 11.0, 13.0, 14.0, 15.0, 16.0];
const TALK: Micros = 45 * MINUTE;
