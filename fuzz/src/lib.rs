//! What the fuzz targets share: inputs cut as the transports cut them, and the checks every
//! error answer is held to.
//!
//! # Layout
//! - `fuzz_targets/`: one libFuzzer target per parser (`log_frame`, `log_record`, `ping_json`,
//!   `ping_batch`, `query_params`, `csv_import`, `grpc_ping`); `scripts/fuzz` builds and runs
//!   them.
//! - `corpus/<target>/`: seed inputs (real pings, the original producers' shapes, frames the
//!   encoder wrote); `dict/`: tokens that help the mutator through JSON and query strings.
//! - This file: the NDJSON split and query string reading of the HTTP handlers, the bound on
//!   error messages, what an accepted or a refused ping holds, what ingest appends for an
//!   acknowledged ping, and the gRPC messages (generated from `proto/` by `build.rs`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use udaconnect_core::model::{Location, NewLocation, MAX_ID};
use udaconnect_core::record::{self, Position};
use udaconnect_core::validate::{too_far_ahead, DEFAULT_FUTURE_SKEW};
use udaconnect_core::Error;

/// The gRPC messages, as the server's calls decode them.
pub mod proto {
    /// The original service's (no package).
    pub mod original {
        include!(concat!(env!("OUT_DIR"), "/_.rs"));
    }
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/udaconnect.location.v1.rs"));
    }
}

/// The server's clock in the targets: pings without a time take it, and pings more than the
/// default skew after it are refused.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default()
}

/// What ingest appends for `ping` once it passed every transport's checks, given `id`: the
/// location, or `None` when ingest refuses it still (timed too far ahead of [`now`]). The
/// consumer reads the appended record back as that very location: an acknowledged ping is
/// stored.
pub fn acknowledge(ping: &NewLocation, id: i64) -> Option<Location> {
    if too_far_ahead(ping, now(), DEFAULT_FUTURE_SKEW).is_some() {
        return None;
    }
    let location = Location {
        id,
        person_id: ping.person_id(),
        latitude: ping.latitude(),
        longitude: ping.longitude(),
        creation_time: ping.creation_time().unwrap_or_else(now),
        accuracy_m: ping.accuracy_m(),
        telemetry: ping.telemetry(),
    };
    let appended = record::encode(&location, Some("c"), now());
    let pos = Position {
        partition: 0,
        offset: id,
    };
    assert_eq!(
        record::decode(&appended, pos).as_ref(),
        Ok(&location),
        "acknowledged, then not stored as acknowledged"
    );
    Some(location)
}

/// Most characters a message adds beyond the input it describes: the longest rule text plus a
/// number written out in full (`f64` `Display` of 5e-324 takes 326 characters).
pub const MESSAGE_SLACK: usize = 400;

/// The items of an NDJSON body as the batch handler reads them: one per line, blank lines
/// skipped, each parsed on its own.
pub fn ndjson_items(body: &[u8]) -> Vec<Result<serde_json::Value, String>> {
    body.split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .map(|line| serde_json::from_slice(line).map_err(|e| e.to_string()))
        .collect()
}

/// A query string read into the map the HTTP handlers pass to the validators:
/// `&`-separated `key=value` pairs, `%XX` and `+` decoded, the last of a repeated key kept.
pub fn query_map(raw: &[u8]) -> HashMap<String, String> {
    // Collected in order, a repeated key's last value stays.
    query_pairs(raw).into_iter().collect()
}

fn percent_decode(raw: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match (
            raw[i],
            raw.get(i + 1).copied().and_then(hex),
            raw.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An accepted ping holds what the rules allow: a person id, coordinates in range, and a time
/// in the years 1970 to 9999 cut to microseconds.
pub fn check_ping(ping: &NewLocation) {
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

/// A refused ping is held to [`check_messages`] and names only `fields`, each once.
pub fn check_ping_error(e: &Error, input_len: usize, fields: &[&str]) {
    check_messages(e, input_len);
    let named: Vec<&str> = e.violations().iter().map(|v| v.field.as_str()).collect();
    for (i, f) in named.iter().enumerate() {
        assert!(fields.contains(f), "unknown field {f}");
        assert!(!named[..i].contains(f), "{f} named twice");
    }
}

/// Every violation of `e` is named and described, and no message is longer than the input it
/// came from (`input_len` bytes) plus [`MESSAGE_SLACK`]: a message may quote a bad value, never
/// grow with anything else.
pub fn check_messages(e: &Error, input_len: usize) {
    assert!(!e.violations().is_empty(), "no violation in {e:?}");
    for v in e.violations() {
        assert!(!v.message.is_empty(), "empty message in {e:?}");
        assert!(
            v.message.len() <= input_len + MESSAGE_SLACK,
            "a {}-byte message for {input_len} bytes of input",
            v.message.len()
        );
        assert_eq!(
            v.message.trim_end_matches(['.', '!']),
            v.message,
            "trailing punctuation"
        );
    }
}

/// A tracker app's extras hold only values that make sense: each finite and within its
/// bounds.
pub fn check_extras(extras: &udaconnect_core::tracker::Extras) {
    let within = |x: Option<f64>, lo: f64, hi: f64| x.is_none_or(|x| (lo..=hi).contains(&x));
    assert!(within(extras.accuracy_m, 0.0, f64::MAX));
    assert!(within(extras.altitude_m, -1e6, 1e6));
    assert!(within(extras.speed_mps, 0.0, f64::MAX));
    assert!(within(extras.heading_deg, 0.0, 360.0));
    assert!(within(extras.battery_pct, 0.0, 100.0));
}

/// An OsmAnd or Traccar Client report names its device and holds at most `max_fixes` fixes,
/// each a ping every transport would take, with sensible extras, stored as acknowledged.
pub fn check_report(report: &udaconnect_core::tracker::OsmAndReport, max_fixes: usize) {
    assert!(!report.device.trim().is_empty());
    assert!(report.fixes.len() <= max_fixes);
    for fix in &report.fixes {
        let ping = fix.ping(1).expect("a fix is a valid ping");
        check_ping(&ping);
        check_extras(&fix.extras);
        acknowledge(&ping, 1);
    }
}

/// A query string's pairs in order, as the OsmAnd handler reads them (`%XX` and `+`
/// decoded, repeated keys kept).
pub fn query_pairs(raw: &[u8]) -> Vec<(String, String)> {
    raw.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}
