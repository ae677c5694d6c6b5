//! The single ping's readers: the plain fast path and the general reading the endpoint falls
//! back to, on any body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use udaconnect_core::model::MAX_ID;
use udaconnect_core::validate::{new_location, plain_new_location};
use udaconnect_core::{Error, ErrorCode};
use udaconnect_fuzz::check_messages;

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
        Ok(ping) => {
            assert!((1..=MAX_ID).contains(&ping.person_id()));
            assert!((-90.0..=90.0).contains(&ping.latitude()));
            assert!((-180.0..=180.0).contains(&ping.longitude()));
            if let Some(t) = ping.creation_time() {
                assert!((1970..=9999).contains(&chrono::Datelike::year(&t)));
                assert_eq!(
                    t.timestamp_subsec_nanos() % 1000,
                    0,
                    "{t:?} not cut to microseconds"
                );
            }
        }
        Err(e) => check_error(&e, data.len()),
    }
});

/// A refused ping names only its own fields, each once, and is unreadable exactly when a
/// field could not be read at all.
fn check_error(e: &Error, input_len: usize) {
    check_messages(e, input_len);
    let fields: Vec<&str> = e.violations().iter().map(|v| v.field.as_str()).collect();
    for (i, f) in fields.iter().enumerate() {
        assert!(FIELDS.contains(f), "unknown field {f}");
        assert!(!fields[..i].contains(f), "{f} named twice");
    }
    assert!(matches!(
        e.code(),
        ErrorCode::BadRequest | ErrorCode::InvalidInput
    ));
    if fields == ["body"] {
        assert_eq!(e.code(), ErrorCode::BadRequest);
    }
}
