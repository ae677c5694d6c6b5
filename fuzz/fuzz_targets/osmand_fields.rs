//! The OsmAnd protocol's query and form fields, any query string, in every speed unit: never
//! a panic; a report names its device and carries at most one fix, a ping every transport
//! would take; a refusal names only the protocol's fields.
#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use udaconnect_core::tracker::{osmand_fields, SpeedUnit};
use udaconnect_fuzz::{acknowledge, check_extras, check_messages, check_ping, query_pairs};

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
            Ok(report) => {
                assert!(!report.device.trim().is_empty());
                assert!(report.fixes.len() <= 1);
                for fix in &report.fixes {
                    let ping = fix.ping(1).expect("a fix is a valid ping");
                    check_ping(&ping);
                    check_extras(&fix.extras);
                    acknowledge(&ping, 1);
                }
            }
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
