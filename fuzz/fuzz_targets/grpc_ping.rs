//! The gRPC calls' pings: any bytes decoded with prost as the original `LocationMessage`, a v1
//! `Ping` and a v1 `PingBatch`, then checked as `/LocationService/Create`,
//! `LocationIngest/Create` and `LocationIngest/Ingest` check them before acknowledging. A call
//! is acknowledged only with what the consumer stores, and agrees with the other transports:
//! the original Create with an original producer's keyless record of the same values, the v1
//! calls with the JSON body of the same ping.
#![no_main]

use std::collections::BTreeSet;

use chrono::{DateTime, SecondsFormat};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use serde_json::{json, Value};
use udaconnect_core::record::{self, LogRecord, Position};
use udaconnect_core::validate::{self, V1Ping};
use udaconnect_core::Error;
use udaconnect_fuzz::proto::original::LocationMessage;
use udaconnect_fuzz::proto::v1::{Ping, PingBatch};
use udaconnect_fuzz::{acknowledge, check_messages, check_ping, check_ping_error, now};

const PING_FIELDS: [&str; 4] = ["person_id", "latitude", "longitude", "creation_time"];

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = LocationMessage::decode(data) {
        check_legacy(&m);
    }
    if let Ok(p) = Ping::decode(data) {
        check_v1(&p, data.len());
    }
    if let Ok(b) = PingBatch::decode(data) {
        check_batch(&b, data.len());
    }
});

/// The original Create takes what the consumer takes from an original producer's record with
/// the same values (keyless JSON, axes repaired by the same rule), as the same ping.
fn check_legacy(m: &LocationMessage) {
    let acked = validate::legacy_ping(m.person_id, m.latitude, m.longitude);
    let (lat, lon) = (f64::from(m.latitude), f64::from(m.longitude));
    // Not a number is no JSON number: such a record would carry null, which is refused too.
    let value = json!({ "person_id": m.person_id, "latitude": lat, "longitude": lon });
    let produced = LogRecord {
        key: None,
        value: serde_json::to_vec(&value).expect("JSON of numbers"),
        headers: Vec::new(),
        timestamp_ms: now().timestamp_millis(),
    };
    let pos = Position {
        partition: 0,
        offset: 7,
    };
    let consumed = record::decode_legacy(&produced, pos);
    match (&acked, &consumed) {
        (Ok((ping, repaired)), Ok(d)) => {
            assert_eq!(*repaired, d.axes_repaired);
            // The values sent (a negative zero is stored as zero), as the consumer reads them.
            let (want_lat, want_lon) = if *repaired { (lon, lat) } else { (lat, lon) };
            assert!(ping.latitude() == want_lat && ping.longitude() == want_lon);
            let read = &d.location;
            assert_eq!(ping.latitude().to_bits(), read.latitude.to_bits());
            assert_eq!(ping.longitude().to_bits(), read.longitude.to_bits());
            assert_eq!(ping.person_id(), i64::from(m.person_id));
            assert_eq!(ping.creation_time(), None);
            let stored = acknowledge(ping, d.location.id).expect("a ping without a time refused");
            assert_eq!(stored, d.location);
        }
        (Err(e), Err(_)) => check_error(e, 0),
        _ => panic!("the original Create says {acked:?}, the consumer {consumed:?}"),
    }
}

/// A v1 Create is acknowledged exactly when HTTP takes the same ping as JSON, as the same
/// ping, and what it acknowledges is stored.
fn check_v1(p: &Ping, input_len: usize) {
    let acked = validate::v1_ping(values(p));
    let http = json_of(p).map(|body| validate::new_location(&body));
    match &acked {
        Ok(ping) => {
            check_ping(ping);
            if let Some(http) = &http {
                assert_eq!(http.as_ref().ok(), Some(ping), "HTTP reads {http:?}");
            }
            acknowledge(ping, 1);
        }
        Err(e) => {
            check_error(e, input_len);
            if let Some(http) = &http {
                assert!(http.is_err(), "HTTP takes what gRPC refuses: {http:?}");
            }
        }
    }
}

/// A batch is acknowledged exactly when each of its pings would be alone, as those pings;
/// refused, it names every bad ping by index with what it would be told alone, and no good one.
fn check_batch(b: &PingBatch, input_len: usize) {
    let alone: Vec<_> = b
        .pings
        .iter()
        .map(|p| validate::v1_ping(values(p)))
        .collect();
    let bad: BTreeSet<usize> = (0..alone.len()).filter(|&i| alone[i].is_err()).collect();
    match validate::v1_batch(b.pings.iter().map(values)).finish() {
        Ok(pings) => {
            assert!(bad.is_empty() && !pings.is_empty());
            assert_eq!(pings.len(), alone.len());
            for (i, (ping, one)) in pings.iter().zip(&alone).enumerate() {
                assert_eq!(Some(ping), one.as_ref().ok());
                acknowledge(ping, i as i64 + 1);
            }
        }
        Err(e) => {
            check_messages(&e, input_len);
            if alone.is_empty() {
                assert_eq!(e.to_string(), "invalid input: body: the batch is empty");
                return;
            }
            let (listed, summary): (Vec<_>, Vec<_>) = e
                .violations()
                .iter()
                .partition(|v| v.field.starts_with('['));
            let named: Vec<(usize, &str, &str)> = listed
                .iter()
                .map(|v| {
                    let (i, field) = item_field(&v.field);
                    (i, field, v.message.as_str())
                })
                .collect();
            let told_alone: Vec<(usize, &str, &str)> = alone
                .iter()
                .enumerate()
                .filter_map(|(i, one)| one.as_ref().err().map(|e| (i, e)))
                .flat_map(|(i, e)| {
                    e.violations()
                        .iter()
                        .map(move |v| (i, v.field.as_str(), v.message.as_str()))
                })
                .collect();
            // Past the first 100, the rest are counted in one last entry, not listed.
            let unlisted = match summary.as_slice() {
                [] => 0,
                [more] => {
                    assert_eq!(more.field, "body", "{more:?}");
                    assert_eq!(named.len(), 100, "{more:?}");
                    let n = more
                        .message
                        .strip_prefix("and ")
                        .unwrap_or_else(|| panic!("{more:?}"));
                    let n = n.split(' ').next().unwrap_or_default();
                    n.parse::<usize>().unwrap_or_else(|_| panic!("{more:?}"))
                }
                more => panic!("{more:?}"),
            };
            let indexes: BTreeSet<usize> = named.iter().map(|(i, ..)| *i).collect();
            assert!(indexes.is_subset(&bad), "{indexes:?} named, {bad:?} bad");
            if unlisted == 0 {
                assert_eq!(indexes, bad);
                for told in &told_alone {
                    assert!(
                        named.contains(told),
                        "{told:?} alone, in the batch {named:?}"
                    );
                }
            }
        }
    }
}

fn values(p: &Ping) -> V1Ping {
    let time = p.creation_time.as_ref().map(|t| (t.seconds, t.nanos));
    (p.person_id, p.latitude, p.longitude, time)
}

/// The ping as a JSON body, when its time can be written as RFC 3339 text.
fn json_of(p: &Ping) -> Option<Value> {
    let mut body = json!({
        "person_id": p.person_id,
        "latitude": p.latitude,
        "longitude": p.longitude,
    });
    if let Some(t) = &p.creation_time {
        let nanos = u32::try_from(t.nanos).ok().filter(|n| *n < 1_000_000_000)?;
        let time = DateTime::from_timestamp(t.seconds, nanos)?;
        body["creation_time"] = time.to_rfc3339_opts(SecondsFormat::AutoSi, true).into();
    }
    Some(body)
}

/// A refused ping names only a ping's fields, each once.
fn check_error(e: &Error, input_len: usize) {
    check_ping_error(e, input_len, &PING_FIELDS);
}

/// The item and field a batch violation names: `[3].latitude` is (3, "latitude").
fn item_field(name: &str) -> (usize, &str) {
    let rest = name.strip_prefix('[').unwrap_or_else(|| panic!("{name}"));
    let (n, field) = rest.split_once(']').unwrap_or_else(|| panic!("{name}"));
    let i = n.parse().unwrap_or_else(|_| panic!("{name} names no item"));
    (i, field.strip_prefix('.').unwrap_or(field))
}
