//! Traccar Client's JSON body, any body: never a panic; every fix is a ping every transport
//! would take, at most the batch's bound of them; a refusal names the body, the device id or
//! a field under `location`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use udaconnect_core::tracker::{traccar_json, MAX_TRACCAR_LOCATIONS};
use udaconnect_fuzz::{check_messages, check_report};

fuzz_target!(|data: &[u8]| {
    match traccar_json(data) {
        Ok(report) => check_report(&report, MAX_TRACCAR_LOCATIONS),
        Err(e) => {
            check_messages(&e, data.len());
            for v in e.violations() {
                let f = v.field.as_str();
                assert!(
                    f == "body" || f == "device_id" || f.starts_with("location"),
                    "unknown field {f}"
                );
            }
        }
    }
});
