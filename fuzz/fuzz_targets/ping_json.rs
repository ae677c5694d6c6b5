//! The single ping's readers: the plain fast path and the general reading the endpoint falls
//! back to, on any body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use udaconnect_core::validate::{new_location, plain_new_location};
use udaconnect_core::{Error, ErrorCode};
use udaconnect_fuzz::{check_ping, check_ping_error};

const FIELDS: [&str; 5] = [
    "body",
    "person_id",
    "latitude",
    "longitude",
    "creation_time",
];

fuzz_target!(|data: &[u8]| {
    let fast = plain_new_location(data);
    let Ok(json) = serde_json::from_slice::<Value>(data) else {
        assert_eq!(fast, None, "the fast path took text that is not JSON");
        return;
    };
    let general = new_location(&json);
    if let Some(fast) = &fast {
        assert_eq!(general.as_ref().ok(), Some(fast), "the two readings differ");
    }
    match general {
        Ok(ping) => check_ping(&ping),
        Err(e) => check_error(&e, data.len()),
    }
});

/// A refused ping names only its own fields, each once, and is unreadable exactly when a
/// field could not be read at all.
fn check_error(e: &Error, input_len: usize) {
    check_ping_error(e, input_len, &FIELDS);
    assert!(matches!(
        e.code(),
        ErrorCode::BadRequest | ErrorCode::InvalidInput
    ));
    if e.violations().len() == 1 && e.violations()[0].field == "body" {
        assert_eq!(e.code(), ErrorCode::BadRequest);
    }
}
