//! The query parameters of the connection, contacts and paging queries, and path ids, from any
//! query string.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use udaconnect_core::track::defaults;
use udaconnect_core::validate::{
    connection_params, contact_params, paging_params, path_id, MAX_DISTANCE_M, MAX_TIME_GAP_S,
};
use udaconnect_core::{Error, ErrorCode};
use udaconnect_fuzz::{check_messages, query_map};

/// The person API's page sizes.
const DEFAULT_PAGE: usize = 1000;
const MAX_PAGE: usize = 10_000;

fuzz_target!(|data: &[u8]| {
    let params = query_map(data);
    // Messages are measured against the text the validators were given: decoding may grow
    // invalid UTF-8 threefold.
    let n: usize = params.iter().map(|(k, v)| k.len() + v.len()).sum();

    match connection_params(&params, 1) {
        Ok(p) => {
            // Equal times (not dates) make an empty window: allowed, and it answers nothing.
            assert!(p.window.start <= p.window.end, "{p:?}");
            check_distance(&params, p.distance_m);
            if let Some(gap) = p.max_time_gap_us {
                assert!((0..=seconds_us(MAX_TIME_GAP_S)).contains(&gap));
            }
        }
        Err(e) => check_error(
            &e,
            n,
            &["start_date", "end_date", "distance", "max_time_gap"],
        ),
    }

    match contact_params(&params, 1) {
        Ok(p) => {
            assert!(p.window.start <= p.window.end, "{p:?}");
            check_distance(&params, p.distance_m);
            assert!(!params.contains_key("max_time_gap"), "{p:?}");
            assert!((0..=seconds_us(MAX_TIME_GAP_S)).contains(&p.min_duration_us));
            for (us, limit_s) in [
                (p.max_interpolation_us, defaults::MAX_INTERPOLATION_LIMIT_S),
                (p.ping_tolerance_us, defaults::PING_TOLERANCE_LIMIT_S),
                (p.join_gap_us, defaults::JOIN_GAP_LIMIT_S),
            ] {
                assert!((0..=seconds_us(limit_s as f64)).contains(&us), "{p:?}");
            }
            assert!(
                p.max_accuracy_m
                    .is_none_or(|m| m <= defaults::MAX_ACCURACY_LIMIT_M),
                "{p:?}"
            );
        }
        Err(e) => check_error(
            &e,
            n,
            &[
                "start",
                "end",
                "distance",
                "max_time_gap",
                "min_duration",
                "max_interpolation",
                "ping_tolerance",
                "join_gap",
                "max_accuracy",
            ],
        ),
    }

    match paging_params(&params, DEFAULT_PAGE, MAX_PAGE) {
        Ok((cursor, limit)) => {
            assert!((1..=MAX_PAGE).contains(&limit));
            assert!(cursor.is_none_or(|c| c >= 0));
        }
        Err(e) => check_error(&e, n, &["limit", "cursor"]),
    }

    let raw = String::from_utf8_lossy(data);
    match path_id(&raw, "id") {
        Ok(id) => assert_eq!(raw.parse::<i64>(), Ok(id)),
        Err(e) => {
            assert!(raw.parse::<i64>().is_err());
            check_error(&e, raw.len(), &["id"]);
        }
    }
});

/// The distance is the one asked for, else the default.
fn check_distance(params: &HashMap<String, String>, distance_m: f64) {
    assert!(distance_m > 0.0 && distance_m <= MAX_DISTANCE_M);
    match params.get("distance") {
        Some(raw) => assert_eq!(raw.trim().parse::<f64>(), Ok(distance_m)),
        None => assert_eq!(distance_m, 5.0),
    }
}

fn seconds_us(s: f64) -> i64 {
    (s * 1e6) as i64
}

/// A refused query is unreadable, and names only its own parameters.
fn check_error(e: &Error, input_len: usize, fields: &[&str]) {
    assert_eq!(e.code(), ErrorCode::BadRequest);
    check_messages(e, input_len);
    for v in e.violations() {
        assert!(
            fields.contains(&v.field.as_str()),
            "{} is no parameter here",
            v.field
        );
    }
}
