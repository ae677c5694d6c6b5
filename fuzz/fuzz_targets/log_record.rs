//! `record::decode`: what the consumer makes of any record on the log, UdaConnect's own and the
//! original producers' keyless JSON alike (whose swapped axes it puts right); and
//! `envelope::decode_sealed`: any bytes claiming an envelope are refused, never a panic, and
//! what is stored reads back the same sealed.
//!
//! Input: 8 bytes of record timestamp (ms, little-endian), 2 of partition, 6 of offset, then
//! the record's value (shorter inputs are padded with zeros).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use udaconnect_core::domain::MAX_ACCURACY_M;
use udaconnect_core::envelope::{self, PersonKey, KEY_VERSION_HEADER};
use udaconnect_core::model::{Location, Telemetry, MAX_ID};
use udaconnect_core::record::{
    self, derived_id, LogRecord, Position, CORRELATION_HEADER, LOCATION_TOPIC,
};
use udaconnect_core::validate;

const META_LEN: usize = 16;

fuzz_target!(|data: &[u8]| {
    let mut meta = [0u8; META_LEN];
    let split = data.len().min(META_LEN);
    meta[..split].copy_from_slice(&data[..split]);
    let value = &data[split..];
    let timestamp_ms = i64::from_le_bytes(meta[0..8].try_into().unwrap());
    let partition = i32::from(i16::from_le_bytes([meta[8], meta[9]]));
    let mut offset = [0u8; 8];
    offset[..6].copy_from_slice(&meta[10..16]);
    let pos = Position {
        partition,
        offset: i64::from_le_bytes(offset),
    };

    let bare = LogRecord {
        key: None,
        value: value.to_vec(),
        headers: Vec::new(),
        timestamp_ms,
    };
    let decoded = record::decode_legacy(&bare, pos);
    // Keyless records (the original producers') have swapped axes put right; no other is.
    let repaired = matches!(&decoded, Ok(d) if d.axes_repaired);
    let decoded = decoded.map(|d| d.location);

    // Key and headers are the producer's business: the same value reads the same under any.
    let dressed = LogRecord {
        key: Some(value.iter().take(12).copied().collect()),
        headers: vec![
            (
                CORRELATION_HEADER.into(),
                value.iter().rev().take(40).copied().collect(),
            ),
            (String::from_utf8_lossy(&meta).into_owned(), meta.to_vec()),
        ],
        ..bare.clone()
    };
    let keyed = record::decode(&dressed, pos);

    // Bytes that claim an envelope open under no key: random bytes never authenticate.
    let key = PersonKey::new(7, 1, [7; envelope::KEY_LEN]);
    let claimed = LogRecord {
        key: Some(b"7".to_vec()),
        headers: vec![(KEY_VERSION_HEADER.into(), meta[..2].to_vec())],
        ..bare.clone()
    };
    assert!(envelope::decode_sealed(&claimed, pos, LOCATION_TOPIC, &key).is_err());

    // What was read: the value, with its axes swapped back when the rule says so.
    let original: Option<Value> = serde_json::from_slice(value).ok();
    let swapped = original.as_ref().and_then(swapped_back);
    if repaired {
        assert!(keyed.is_err(), "a keyed record repaired: {keyed:?}");
    } else if swapped.is_none() {
        // The key adds only what UdaConnect's own records carry beside the contract's fields.
        assert_eq!(keyed.clone().map(without_extras), decoded);
    } else {
        // The rule applied but the repaired ping is still refused (a field missing, say): the
        // keyed reading refuses the unrepaired one too, perhaps for another reason first.
        assert!(
            keyed.is_err(),
            "a keyed record with swapped axes stored: {keyed:?}"
        );
    }
    if decoded.is_ok() {
        assert_eq!(repaired, swapped.is_some());
    }
    // A keyless record's accuracy and telemetry are never read; an own record's only in bounds.
    if let Ok(l) = &decoded {
        assert_eq!(l, &without_extras(l.clone()));
    }
    if let Ok(l) = &keyed {
        assert!(l
            .accuracy_m
            .is_none_or(|a| (0.0..=MAX_ACCURACY_M).contains(&a)));
        assert_eq!(l.telemetry, l.telemetry.checked());
    }
    let json = swapped.or(original);
    match &decoded {
        Ok(location) => {
            check_location(location);
            let Some(json) = &json else {
                panic!("a location from text that is not JSON")
            };
            let ping = validate::new_location(json).expect("a location the validator refuses");
            assert_eq!(ping.person_id(), location.person_id);
            assert_eq!(ping.latitude().to_bits(), location.latitude.to_bits());
            assert_eq!(ping.longitude().to_bits(), location.longitude.to_bits());
            match ping.creation_time() {
                Some(t) => assert_eq!(t, location.creation_time),
                None => assert_eq!(location.creation_time.timestamp_millis(), timestamp_ms),
            }
            match json.get("id") {
                None | Some(Value::Null) => assert_eq!(location.id, derived_id(pos)),
                Some(id) => assert_eq!(id.as_i64(), Some(location.id)),
            }
            // What the consumer stores reads back the same after a trip through the log.
            let written = chrono::DateTime::from_timestamp_millis(timestamp_ms).unwrap_or_default();
            let again = record::encode(location, Some("c"), written);
            let other = Position {
                partition: partition ^ 1,
                offset: pos.offset + 1,
            };
            assert_eq!(record::decode(&again, other).as_ref(), Ok(location));
            // And the same sealed with its person's key.
            let key = PersonKey::new(location.person_id, 1, [7; envelope::KEY_LEN]);
            let sealed =
                envelope::seal_location(location, Some("c"), written, LOCATION_TOPIC, &key)
                    .expect("seal");
            let opened = envelope::decode_sealed(&sealed, other, LOCATION_TOPIC, &key);
            assert_eq!(opened.map(|d| d.location).as_ref(), Ok(location));
        }
        Err(reason) => {
            assert!(!reason.is_empty());
            assert!(
                reason.len() <= value.len() + udaconnect_fuzz::MESSAGE_SLACK,
                "{reason}"
            );
            match &json {
                None => assert!(reason.starts_with("not JSON: "), "{reason}"),
                Some(json) => match validate::new_location(json) {
                    // A bad ping is dead-lettered with the validator's own words.
                    Err(e) => assert_eq!(reason, &e.to_string()),
                    Ok(_) => assert!(
                        reason.starts_with("id: ") || reason.starts_with("creation_time: absent"),
                        "{reason}"
                    ),
                },
            }
        }
    }
});

/// The location with what the contract's fields leave out (accuracy, telemetry) unknown.
fn without_extras(l: Location) -> Location {
    Location {
        accuracy_m: None,
        telemetry: Telemetry::default(),
        ..l
    }
}

fn check_location(l: &Location) {
    assert!((1..=MAX_ID).contains(&l.id) && (1..=MAX_ID).contains(&l.person_id));
    assert!((-90.0..=90.0).contains(&l.latitude) && (-180.0..=180.0).contains(&l.longitude));
    assert!((1970..=9999).contains(&chrono::Datelike::year(&l.creation_time)));
    let nanos = l.creation_time.timestamp_subsec_nanos();
    assert_eq!(nanos % 1000, 0, "{l:?} not cut to microseconds");
}

/// `json` with latitude and longitude exchanged when they are numbers (or numeric text) the
/// swapped-axes rule applies to; `None` when it does not.
fn swapped_back(json: &Value) -> Option<Value> {
    let obj = json.as_object()?;
    let number = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let (lat, lon) = (obj.get("latitude")?, obj.get("longitude")?);
    if !udaconnect_core::geo::axes_swapped(number(lat)?, number(lon)?) {
        return None;
    }
    let mut obj = obj.clone();
    obj.insert("latitude".into(), lon.clone());
    obj.insert("longitude".into(), lat.clone());
    Some(Value::Object(obj))
}
