//! The OsmAnd protocol's query and form fields, any query string, in every speed unit: never
//! a panic; a report names its device and carries at most one fix, a ping every transport
//! would take; a refusal names only the protocol's fields.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use udaconnect_core::tracker::{osmand_fields, SpeedUnit};
use udaconnect_fuzz::{check_messages, check_report, query_pairs};

const FIELDS: [&str; 5] = ["id", "lat", "lon", "location", "timestamp"];

fuzz_target!(|data: &[u8]| {
    let pairs = query_pairs(data);
    for unit in [
        SpeedUnit::Knots,
        SpeedUnit::MetresPerSecond,
        SpeedUnit::KilometresPerHour,
    ] {
        let fields = pairs
            .iter()
            .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str())));
        match osmand_fields(fields, unit) {
            Ok(report) => check_report(&report, 1),
            Err(e) => {
                check_messages(&e, data.len());
                for v in e.violations() {
                    assert!(
                        FIELDS.contains(&v.field.as_str()),
                        "unknown field {}",
                        v.field
                    );
                }
            }
        }
    }
});
