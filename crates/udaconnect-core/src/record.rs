//! Location records on the log, in the formats the `location` topic carries.
//!
//! UdaConnect writes JSON `{"id","person_id","latitude","longitude","creation_time"}` (and
//! `"accuracy_m"`, `"altitude_m"`, `"speed_mps"`, `"heading_deg"`, `"battery_pct"` and `"app"`
//! each when the phone said it: readers that predate them read past them) with the
//! person id as key (one person's pings stay ordered) and the correlation id in a header. The
//! original producers wrote `{"person_id","latitude","longitude"}` with no key and no time: such
//! a record takes the record's timestamp as its time and an id derived from its position on the
//! log, so replaying the log yields the same id every time.

use chrono::{DateTime, Utc};

use serde_json::Value;

use crate::domain::{not_an_id, FixTime, LocationId};
use crate::model::{KeptLocation, Location, NewLocation, PersonId};
use crate::validate::{self, PlainPing};

/// Header carrying the correlation id of the request that produced a record.
pub const CORRELATION_HEADER: &str = "correlation_id";
/// Header carrying why a record was sent to the dead-letter topic.
pub const DLQ_REASON_HEADER: &str = "dlq_reason";
/// The topic of location pings, as the original named it.
pub const LOCATION_TOPIC: &str = "location";
/// Where records that cannot be stored go, with their original bytes.
pub const LOCATION_DLQ_TOPIC: &str = "location.dlq";
/// Header of the record that says a person was erased: every reader of the topic drops the
/// person's pings from what it keeps (store, index) when it meets it.
pub const ERASED_HEADER: &str = "erased_person";

/// Ids from this value up are derived from log positions.
pub const DERIVED_ID_BASE: i64 = 1 << 52;
const OFFSET_BITS: u32 = 40;
const PARTITION_BITS: u32 = 12;

/// Ids from this value up to [`DERIVED_ID_BASE`] are derived from a tracker device and a fix
/// time ([`fix_id`]); ids leased to ingest nodes (and ids in imported files) stay below.
pub const FIX_ID_BASE: i64 = 1 << 51;
/// The first second [`fix_id`] numbers: 2020-01-01T00:00:00Z.
const FIX_EPOCH_S: i64 = 1_577_836_800;
/// Seconds from [`FIX_EPOCH_S`]: to 2088.
const FIX_SECOND_BITS: u32 = 31;
/// Device ids below 2^20 (about a million phones registered).
const FIX_DEVICE_BITS: u32 = 20;

/// The id of device `device`'s fix at `time`, to the second: the same for every copy of a
/// ping a phone sends again, a broker delivers again or a log replays, so the stores' upserts
/// by id and the index's idempotent insert keep one. `None` outside what the bits hold (a
/// fix before 2020 or after 2088, a device id from 2^20 up): such a ping gets a leased id.
pub fn fix_id(device: i64, time: DateTime<Utc>) -> Option<i64> {
    let second = time.timestamp().checked_sub(FIX_EPOCH_S)?;
    let in_range = |v: i64, bits: u32| (0..1i64 << bits).contains(&v);
    if !in_range(second, FIX_SECOND_BITS) || !in_range(device, FIX_DEVICE_BITS) {
        return None;
    }
    Some(FIX_ID_BASE | (device << FIX_SECOND_BITS) | second)
}

/// One record on a log: what every log adapter stores and returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogRecord {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    /// Milliseconds since the Unix epoch; the producer's clock.
    pub timestamp_ms: i64,
}

impl LogRecord {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// Where a record sits on its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

/// The id of a keyless original record at `pos`: unique per position, below 2^53.
pub fn derived_id(pos: Position) -> i64 {
    let partition = (pos.partition as i64) & ((1 << PARTITION_BITS) - 1);
    let offset = pos.offset & ((1 << OFFSET_BITS) - 1);
    DERIVED_ID_BASE | (partition << OFFSET_BITS) | offset
}

/// The record UdaConnect writes for an accepted location, `written` now (the record's
/// timestamp: the producer's clock, handed in).
pub fn encode(
    location: &Location,
    correlation_id: Option<&str>,
    written: DateTime<Utc>,
) -> LogRecord {
    encode_after(location, correlation_id, written, Vec::new())
}

/// [`encode`], the JSON written after the bytes already in `value`: a sealed record's value
/// starts with its nonce, and this saves copying the JSON behind it.
pub(crate) fn encode_after(
    location: &Location,
    correlation_id: Option<&str>,
    written: DateTime<Utc>,
    mut value: Vec<u8>,
) -> LogRecord {
    let before = value.len();
    if serde_json::to_writer(&mut value, &KeptLocation::of(location)).is_err() {
        value.truncate(before);
    }
    LogRecord {
        key: Some(location.person_id.to_string().into_bytes()),
        value,
        headers: correlation_id
            .map(|c| vec![(CORRELATION_HEADER.to_string(), c.as_bytes().to_vec())])
            .unwrap_or_default(),
        timestamp_ms: written.timestamp_millis(),
    }
}

/// The record that tells every reader of the `location` topic that `person_id` was erased.
/// Keyed by the person, so on a partitioned log it follows the person's pings in order; its
/// value is empty, so nothing of the person but their id is on it.
pub fn erasure(person_id: PersonId, written: DateTime<Utc>) -> LogRecord {
    LogRecord {
        key: Some(person_id.to_string().into_bytes()),
        value: Vec::new(),
        headers: vec![(ERASED_HEADER.to_string(), b"1".to_vec())],
        timestamp_ms: written.timestamp_millis(),
    }
}

/// The person an erasure record ([`erasure`]) names; `None` for any other record.
pub fn erased_person(record: &LogRecord) -> Option<PersonId> {
    record.header(ERASED_HEADER)?;
    std::str::from_utf8(record.key.as_deref()?)
        .ok()?
        .parse()
        .ok()
        .filter(|id| (1..=crate::model::MAX_ID).contains(id))
}

/// Reads a location record of either format. `Err` carries the reason the record goes to the
/// dead-letter topic. Whether the person exists is checked by the consumer.
pub fn decode(record: &LogRecord, pos: Position) -> Result<Location, String> {
    decode_legacy(record, pos).map(|d| d.location)
}

/// A record read off the log, and whether its axes were put right.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub location: Location,
    /// A keyless record (an original producer's) came with latitude and longitude swapped
    /// and was repaired (see [`crate::geo::axes_swapped`]).
    pub axes_repaired: bool,
}

/// [`decode`], telling whether the record's axes were repaired. Only keyless records (the
/// original producers') are repaired, as the original accepted them; UdaConnect's own records
/// were validated before they were written. Every reader of the log decodes here, so the
/// consumer, a follower's index and a replay agree on every point.
pub fn decode_legacy(record: &LogRecord, pos: Position) -> Result<Decoded, String> {
    let legacy = record.key.is_none();
    let mut axes_repaired = false;
    // Records in the plain shape (every one UdaConnect writes) are read straight into their
    // fields; the others through the general reading, which gives the same answer for those.
    let mut plain = PlainPing::read(&record.value);
    if let Some(p) = plain.as_mut().filter(|_| legacy) {
        axes_repaired = p.repair_axes();
    }
    let (ping, id) = match plain.as_ref().and_then(|p| Some((p.check()?, p.id))) {
        Some((ping, id)) => {
            let id = id.map(|id| LocationId::parse(id).map_err(|m| format!("id: {m}")));
            (ping.map_err(|e| e.to_string())?, id.transpose()?)
        }
        None => read_general(&record.value, legacy.then_some(&mut axes_repaired))?,
    };
    // Only UdaConnect's own records carry an accuracy and telemetry; an odd value costs that
    // value only.
    let own = plain.as_ref().filter(|_| !legacy);
    let accuracy_m = own.and_then(|p| ping.with_accuracy(p.accuracy_m).accuracy_m());
    let telemetry = own.map(PlainPing::telemetry).unwrap_or_default();
    let creation_time = match ping.creation_time() {
        Some(t) => t,
        None if record.timestamp_ms >= 0 => {
            FixTime::from_micros(record.timestamp_ms.saturating_mul(1000))
                .map_err(|m| format!("creation_time: absent, and the record's timestamp {m}"))?
                .get()
        }
        None => return Err("creation_time: absent, and the record has no timestamp".into()),
    };
    Ok(Decoded {
        location: Location {
            id: id.map_or_else(|| derived_id(pos), LocationId::get),
            person_id: ping.person_id(),
            latitude: ping.latitude(),
            longitude: ping.longitude(),
            creation_time,
            accuracy_m,
            telemetry,
        },
        axes_repaired,
    })
}

/// A record's ping and id read as any JSON the general reading takes; with `repaired`, swapped
/// axes are put right first, and it says whether they were.
fn read_general(
    value: &[u8],
    repaired: Option<&mut bool>,
) -> Result<(NewLocation, Option<LocationId>), String> {
    let mut body: Value = serde_json::from_slice(value).map_err(|e| format!("not JSON: {e}"))?;
    if let (Some(repaired), Some(obj)) = (repaired, body.as_object_mut()) {
        // A coordinate may come as a number or as numeric text, as the general reading takes.
        let number = |field: &str| match obj.get(field) {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        let swapped = match (number("latitude"), number("longitude")) {
            (Some(lat), Some(lon)) => crate::geo::axes_swapped(lat, lon),
            _ => false,
        };
        if swapped {
            let lat = obj.remove("latitude");
            let lon = obj.remove("longitude");
            if let (Some(lat), Some(lon)) = (lat, lon) {
                obj.insert("latitude".into(), lon);
                obj.insert("longitude".into(), lat);
                *repaired = true;
            }
        }
    }
    let ping = validate::new_location(&body).map_err(|e| e.to_string())?;
    let id = match body.get("id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .and_then(|id| LocationId::parse(id).ok())
                .ok_or_else(|| format!("id: {}", not_an_id(v)))?,
        ),
    };
    Ok((ping, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::model::MAX_ID;
    use crate::time::parse_timestamp;
    use proptest::prelude::RngExt;

    /// Person 5's ping `id` at `at`, without accuracy or telemetry.
    fn person_5_ping(id: i64, at: DateTime<Utc>) -> Location {
        Location {
            id,
            person_id: 5,
            latitude: 48.1,
            longitude: 11.5,
            creation_time: at,
            accuracy_m: None,
            telemetry: Default::default(),
        }
    }

    /// `value` as a record of person 5 written at `at`: keyed as this version writes its own,
    /// or keyless as the original producer wrote them.
    fn person_5_record(value: &str, keyed: bool, at: DateTime<Utc>) -> LogRecord {
        LogRecord {
            key: keyed.then(|| b"5".to_vec()),
            value: value.as_bytes().to_vec(),
            headers: Vec::new(),
            timestamp_ms: at.timestamp_millis(),
        }
    }

    #[test]
    fn round_trip_own_format() {
        let loc = Location {
            id: 42,
            person_id: 5,
            latitude: 37.55363,
            longitude: -122.290883,
            creation_time: parse_timestamp("2020-07-07T10:37:06.5Z").unwrap(),
            accuracy_m: None,
            telemetry: Default::default(),
        };
        let clock = ManualClock::new(parse_timestamp("2020-07-07T10:40:00.0125Z").unwrap());
        let rec = encode(&loc, Some("abc"), clock.now());
        assert_eq!(rec.key.as_deref(), Some(&b"5"[..]));
        assert_eq!(rec.timestamp_ms, 1_594_118_400_012);
        assert_eq!(rec.header_str(CORRELATION_HEADER), Some("abc"));
        let pos = Position {
            partition: 0,
            offset: 7,
        };
        assert_eq!(decode(&rec, pos).unwrap(), loc);
    }

    #[test]
    fn accuracy_rides_on_own_records_only_and_old_records_read_without_it() {
        let at = parse_timestamp("2024-05-01T09:00:00Z").unwrap();
        let loc = Location {
            accuracy_m: Some(200.5),
            ..person_5_ping(43, at)
        };
        let pos = Position {
            partition: 0,
            offset: 8,
        };
        let rec = encode(&loc, None, at);
        let json: Value = serde_json::from_slice(&rec.value).unwrap();
        assert_eq!(json["accuracy_m"], 200.5);
        assert_eq!(decode(&rec, pos).unwrap(), loc);
        // Without an accuracy the record is the contract's JSON, byte for byte as before.
        let plain = encode(
            &Location {
                accuracy_m: None,
                ..loc.clone()
            },
            None,
            at,
        );
        assert_eq!(
            std::str::from_utf8(&plain.value).unwrap(),
            r#"{"id":43,"person_id":5,"latitude":48.1,"longitude":11.5,"creation_time":"2024-05-01T09:00:00Z"}"#
        );
        assert_eq!(decode(&plain, pos).unwrap().accuracy_m, None);
        // An odd accuracy costs the accuracy, not the ping; a keyless (original) record's is
        // not read.
        for (value, key) in [
            (
                r#"{"id":43,"person_id":5,"latitude":48.1,"longitude":11.5,"accuracy_m":-3}"#,
                true,
            ),
            (
                r#"{"id":43,"person_id":5,"latitude":48.1,"longitude":11.5,"accuracy_m":1e300}"#,
                true,
            ),
            (
                r#"{"person_id":5,"latitude":48.1,"longitude":11.5,"accuracy_m":4}"#,
                false,
            ),
        ] {
            let got = decode(&person_5_record(value, key, at), pos).unwrap();
            assert_eq!((got.person_id, got.accuracy_m), (5, None), "{value}");
        }
    }

    #[test]
    fn telemetry_rides_on_own_records_only_and_old_records_read_without_it() {
        use crate::model::Telemetry;
        use crate::tracker::App;
        let at = parse_timestamp("2024-05-01T09:00:00Z").unwrap();
        let loc = Location {
            accuracy_m: Some(8.0),
            telemetry: Telemetry {
                altitude_m: Some(-12.25),
                speed_mps: Some(30.0 / 3.6),
                heading_deg: Some(359.9),
                battery_pct: Some(81.0),
                app: Some(App::OwnTracks),
            },
            ..person_5_ping(44, at)
        };
        let pos = Position {
            partition: 0,
            offset: 9,
        };
        let rec = encode(&loc, None, at);
        assert_eq!(
            std::str::from_utf8(&rec.value).unwrap(),
            format!(
                r#"{{"id":44,"person_id":5,"latitude":48.1,"longitude":11.5,"creation_time":"2024-05-01T09:00:00Z","accuracy_m":8.0,"altitude_m":-12.25,"speed_mps":{},"heading_deg":359.9,"battery_pct":81.0,"app":"owntracks"}}"#,
                30.0 / 3.6
            )
        );
        assert_eq!(decode(&rec, pos).unwrap(), loc);
        // Each field alone is written alone, and read back alone.
        for one in [
            Telemetry {
                altitude_m: Some(0.0),
                ..Telemetry::default()
            },
            Telemetry {
                app: Some(App::TraccarClient),
                ..Telemetry::default()
            },
        ] {
            let loc = Location {
                accuracy_m: None,
                telemetry: one,
                ..loc.clone()
            };
            assert_eq!(decode(&encode(&loc, None, at), pos).unwrap(), loc);
        }
        // Without any, the record is the contract's JSON, byte for byte as before.
        let plain = Location {
            accuracy_m: None,
            telemetry: Telemetry::default(),
            ..loc.clone()
        };
        assert_eq!(
            std::str::from_utf8(&encode(&plain, None, at).value).unwrap(),
            r#"{"id":44,"person_id":5,"latitude":48.1,"longitude":11.5,"creation_time":"2024-05-01T09:00:00Z"}"#
        );
        // An odd value or an app this version does not know costs that field, not the ping or
        // the other fields; a keyless (original) record's are not read.
        for (value, key, want) in [
            (
                r#"{"id":44,"person_id":5,"latitude":48.1,"longitude":11.5,"altitude_m":1e6,"speed_mps":-1,"heading_deg":400,"battery_pct":101,"app":"pager"}"#,
                true,
                Telemetry::default(),
            ),
            (
                r#"{"id":44,"person_id":5,"latitude":48.1,"longitude":11.5,"speed_mps":2.5,"app":"pager"}"#,
                true,
                Telemetry {
                    speed_mps: Some(2.5),
                    ..Telemetry::default()
                },
            ),
            (
                r#"{"person_id":5,"latitude":48.1,"longitude":11.5,"battery_pct":50,"app":"osmand"}"#,
                false,
                Telemetry::default(),
            ),
        ] {
            let got = decode(&person_5_record(value, key, at), pos).unwrap();
            assert_eq!((got.person_id, got.telemetry), (5, want), "{value}");
        }
    }

    #[test]
    fn coordinates_survive_the_log_to_the_bit() {
        // Widened 32-bit floats (the original gRPC contract) and long decimals are where a
        // parser that is not correctly rounded loses the last bit.
        let mut rng = crate::seeded_rng(7);
        let mut values = vec![
            f64::from(-122.290_883_f32),
            f64::from(37.553_63_f32),
            1e-300,
        ];
        values.extend((0..10_000).map(|_| rng.random_range(-180.0..180.0)));
        for (i, v) in values.into_iter().enumerate() {
            let loc = Location {
                id: i as i64 + 1,
                person_id: 1,
                latitude: v / 2.0,
                longitude: v,
                creation_time: parse_timestamp("2020-07-07T10:37:06Z").unwrap(),
                accuracy_m: None,
                telemetry: Default::default(),
            };
            let pos = Position {
                partition: 0,
                offset: 0,
            };
            let back = decode(&encode(&loc, None, loc.creation_time), pos).unwrap();
            assert_eq!(back.longitude.to_bits(), v.to_bits(), "{v}");
            assert_eq!(back.latitude.to_bits(), (v / 2.0).to_bits(), "{v}");
        }
    }

    /// A `-0.0` written by another producer is read as `0.0`, in the plain shape and in the
    /// general one: what the index is fed is what the stores answer.
    #[test]
    fn a_negative_zero_off_the_log_is_zero() {
        let pos = Position {
            partition: 0,
            offset: 0,
        };
        for value in [
            &br#"{"id": 9, "person_id": 5, "latitude": -0.0, "longitude": -0.0}"#[..],
            br#"{"id": 9, "person_id": "5", "latitude": "-0", "longitude": -0.0}"#,
        ] {
            let rec = LogRecord {
                value: value.to_vec(),
                timestamp_ms: 1_594_117_026_000,
                ..Default::default()
            };
            let l = decode(&rec, pos).unwrap();
            assert_eq!(l.latitude.to_bits(), 0.0f64.to_bits());
            assert_eq!(l.longitude.to_bits(), 0.0f64.to_bits());
        }
    }

    #[test]
    fn original_keyless_records_get_stable_ids() {
        let rec = LogRecord {
            value: br#"{"person_id": 5, "latitude": 37.5, "longitude": -122.2}"#.to_vec(),
            timestamp_ms: 1_594_117_026_000,
            ..Default::default()
        };
        let pos = Position {
            partition: 3,
            offset: 99,
        };
        let a = decode(&rec, pos).unwrap();
        assert_eq!(a, decode(&rec, pos).unwrap());
        assert!(a.id >= DERIVED_ID_BASE && a.id <= MAX_ID);
        assert_ne!(
            a.id,
            decode(
                &rec,
                Position {
                    partition: 3,
                    offset: 100
                }
            )
            .unwrap()
            .id
        );
        assert_eq!(a.creation_time_string(), "2020-07-07T10:17:06Z");
    }

    /// The original producers' keyless records with latitude and longitude swapped are put
    /// right, whether the coordinates come as numbers or as text; UdaConnect's own (keyed)
    /// records never are, and a pair that fits neither order is still refused.
    #[test]
    fn keyless_records_with_swapped_axes_are_repaired() {
        let pos = Position {
            partition: 0,
            offset: 4,
        };
        let record = |value: &str, key: Option<&[u8]>| LogRecord {
            key: key.map(<[u8]>::to_vec),
            value: value.as_bytes().to_vec(),
            timestamp_ms: 1_594_117_026_000,
            ..Default::default()
        };
        for value in [
            r#"{"person_id": 5, "latitude": -122.290883, "longitude": 37.55363}"#,
            r#"{"person_id": "5", "latitude": "-122.290883", "longitude": "37.55363"}"#,
        ] {
            let d = decode_legacy(&record(value, None), pos).unwrap();
            assert!(d.axes_repaired, "{value}");
            assert_eq!(
                (d.location.latitude, d.location.longitude),
                (37.55363, -122.290883)
            );
        }
        let right = r#"{"person_id": 5, "latitude": 37.55363, "longitude": -122.290883}"#;
        assert!(
            !decode_legacy(&record(right, None), pos)
                .unwrap()
                .axes_repaired
        );

        let keyed = r#"{"id": 9, "person_id": 5, "latitude": -122.290883, "longitude": 37.55363}"#;
        assert!(decode_legacy(&record(keyed, Some(&b"5"[..])), pos)
            .unwrap_err()
            .contains("latitude"));
        let neither = r#"{"person_id": 5, "latitude": 100, "longitude": 120}"#;
        assert!(decode_legacy(&record(neither, None), pos)
            .unwrap_err()
            .contains("latitude"));
    }

    #[test]
    fn poison_records_have_reasons() {
        let pos = Position {
            partition: 0,
            offset: 0,
        };
        let garbage = LogRecord {
            value: vec![0xff, 0x00],
            ..Default::default()
        };
        assert!(decode(&garbage, pos).unwrap_err().starts_with("not JSON"));
        let bad = LogRecord {
            value: br#"{"person_id": 5, "latitude": 137.5, "longitude": 100}"#.to_vec(),
            ..Default::default()
        };
        assert!(decode(&bad, pos).unwrap_err().contains("latitude"));
    }

    /// Reasons read the same whichever way a record is read: straight into its fields (the
    /// plain shape) or through the general reading (strings for numbers, odd ids).
    #[test]
    fn poison_reasons_are_the_validators() {
        let pos = Position {
            partition: 0,
            offset: 0,
        };
        let reason = |value: &str, timestamp_ms: i64| {
            decode(
                &LogRecord {
                    value: value.as_bytes().to_vec(),
                    timestamp_ms,
                    ..Default::default()
                },
                pos,
            )
            .map(|l| l.id)
        };
        for (value, want) in [
            (
                r#"{"person_id": 0, "latitude": 137.5, "longitude": 100}"#,
                "invalid input: person_id: 0 is not an id (1 to 2^53-1); latitude: 137.5 is \
                 outside [-90, 90]",
            ),
            (
                r#"{"person_id": "0", "latitude": "137.5", "longitude": 100}"#,
                "invalid input: person_id: 0 is not an id (1 to 2^53-1); latitude: 137.5 is \
                 outside [-90, 90]",
            ),
            (
                r#"{"person_id": 1, "latitude": 1, "longitude": 0, "creation_time": "soon"}"#,
                "malformed request: creation_time: 'soon' is not an RFC 3339 timestamp",
            ),
            (
                r#"{"id": 0, "person_id": 1, "latitude": 1, "longitude": 0}"#,
                "id: 0 is not an id (1 to 2^53-1)",
            ),
            (
                r#"{"id": "7", "person_id": 1, "latitude": 1, "longitude": 0}"#,
                "id: \"7\" is not an id (1 to 2^53-1)",
            ),
            (
                r#"{"id": 1.5, "person_id": "1", "latitude": 1, "longitude": 0}"#,
                "id: 1.5 is not an id (1 to 2^53-1)",
            ),
            // The fields' values in their order are no ping.
            (
                "[9, 1, 1, 0]",
                "malformed request: body: must be a JSON object (a location), not an array",
            ),
        ] {
            assert_eq!(reason(value, 0), Err(want.to_string()), "{value}");
        }
        // The record's own time, when the ping has none, is held to the same years.
        let timeless = r#"{"person_id": 1, "latitude": 1, "longitude": 0}"#;
        assert_eq!(
            reason(timeless, 253_402_300_800_000),
            Err(
                "creation_time: absent, and the record's timestamp +10000-01-01T00:00:00Z is \
                 outside the years 1970 to 9999"
                    .to_string()
            )
        );
        assert_eq!(
            reason(timeless, -1),
            Err("creation_time: absent, and the record has no timestamp".to_string())
        );
        assert_eq!(
            reason(
                r#"{"id": 9, "person_id": "1", "latitude": "1", "longitude": 0}"#,
                0
            ),
            Ok(9)
        );
    }

    #[test]
    fn fix_ids_are_one_per_device_and_second_between_the_ranges() {
        use chrono::TimeZone;
        let t = Utc.with_ymd_and_hms(2026, 5, 4, 10, 0, 0).unwrap();
        let id = fix_id(7, t).unwrap();
        assert!((FIX_ID_BASE..DERIVED_ID_BASE).contains(&id));
        // A copy within the same second is the same ping; the next second or device is not.
        let later = t + chrono::TimeDelta::milliseconds(999);
        assert_eq!(fix_id(7, later), Some(id));
        assert_ne!(fix_id(7, t + chrono::TimeDelta::seconds(1)), Some(id));
        assert_ne!(fix_id(8, t), Some(id));
        // The ends of what the bits hold, and beyond.
        let first = Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(fix_id(0, first), Some(FIX_ID_BASE));
        assert_eq!(fix_id(0, first - chrono::TimeDelta::seconds(1)), None);
        let last = first + chrono::TimeDelta::seconds((1 << 31) - 1);
        assert_eq!(fix_id((1 << 20) - 1, last), Some(DERIVED_ID_BASE - 1));
        assert_eq!(fix_id(0, last + chrono::TimeDelta::seconds(1)), None);
        assert_eq!(fix_id(1 << 20, t), None);
        assert_eq!(fix_id(-1, t), None);
    }
}
