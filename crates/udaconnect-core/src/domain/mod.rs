//! Validated domain values: types that can only be built valid, each from a `parse` that
//! applies its rule (range, finiteness, id bounds, years) and says what is wrong in the words
//! every transport reports. No I/O: whether a person exists is the caller's question.
//!
//! # Layout
//! - `values.rs`: [`Latitude`], [`Longitude`], [`PersonId`], [`LocationId`], [`Distance`],
//!   [`TimeGap`], and the bounds of their rules.
//! - `fix.rs`: [`FixTime`], when a ping was taken.
//! - `ping.rs`: [`NewLocation`], a ping made of those, and the one place its fields meet
//!   their rules; [`Telemetry`], what a tracker app says beside them, and its bounds.
//! - `tests.rs`: each `parse` against its range, and the direct constructor against the JSON
//!   reading.

mod fix;
mod ping;
#[cfg(test)]
mod tests;
mod values;

pub use fix::FixTime;
pub use ping::{NewLocation, Telemetry, ALTITUDE_M, MAX_ACCURACY_M, MAX_SPEED_MPS};
pub use values::{
    Distance, Latitude, LocationId, Longitude, PersonId, TimeGap, DEFAULT_DISTANCE_M,
    MAX_DISTANCE_M, MAX_TIME_GAP_S,
};

pub(crate) use ping::{ping_parts, required, Read};
pub(crate) use values::not_an_id;
