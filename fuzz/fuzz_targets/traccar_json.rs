//! Traccar Client's JSON body, any body: never a panic; every fix is a ping every transport
//! would take, at most the batch's bound of them; a refusal names the body, the device id or
//! a field under `location`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use udaconnect_core::tracker::{traccar_json, MAX_TRACCAR_LOCATIONS};
use udaconnect_fuzz::{acknowledge, check_extras, check_messages, check_ping};

fuzz_target!(|data: &[u8]| {
    match traccar_json(data) {
        Ok(report) => {
            assert!(!report.device.trim().is_empty());
            assert!(report.fixes.len() <= MAX_TRACCAR_LOCATIONS);
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
                let f = v.field.as_str();
                assert!(
                    f == "body" || f == "device_id" || f.starts_with("location"),
                    "unknown field {f}"
                );
            }
        }
    }
});
