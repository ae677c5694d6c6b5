use proptest::prelude::*;

use super::*;
use crate::record::{CORRELATION_HEADER, LOCATION_TOPIC};
use crate::time::parse_timestamp;

const POS: Position = Position {
    partition: 3,
    offset: 77,
};

fn location(person_id: PersonId) -> Location {
    Location {
        id: 42,
        person_id,
        latitude: 37.553_631,
        longitude: -122.290_883,
        creation_time: parse_timestamp("2020-07-07T10:37:06.5Z").unwrap(),
        accuracy_m: None,
        telemetry: Default::default(),
    }
}

fn written() -> DateTime<Utc> {
    parse_timestamp("2020-07-07T10:40:00Z").unwrap()
}

fn sealed(key: &PersonKey) -> LogRecord {
    let loc = location(key.person_id());
    seal_location(&loc, Some("abc"), written(), LOCATION_TOPIC, key).unwrap()
}

#[test]
fn a_sealed_record_opens_to_what_was_written() {
    let key = PersonKey::generate(5, 1).unwrap();
    let plain = record::encode(&location(5), Some("abc"), written());
    let rec = sealed(&key);
    assert_eq!(rec.key.as_deref(), Some(&b"5"[..]));
    assert_eq!(rec.timestamp_ms, plain.timestamp_ms);
    assert_eq!(rec.header_str(KEY_VERSION_HEADER), Some("1"));
    assert_eq!(rec.header_str(CORRELATION_HEADER), Some("abc"));
    assert_eq!(rec.value.len(), plain.value.len() + NONCE_LEN + TAG_LEN);
    assert_eq!(
        sealing(&rec),
        Ok(Sealing::Sealed {
            person_id: 5,
            version: 1
        })
    );
    assert_eq!(open(&rec, LOCATION_TOPIC, &key), Ok(plain));
    let decoded = decode_sealed(&rec, POS, LOCATION_TOPIC, &key).unwrap();
    assert_eq!(decoded.location, location(5));
    assert!(!decoded.axes_repaired);
}

#[test]
fn a_sealed_record_keeps_the_accuracy_and_the_telemetry_inside() {
    let key = PersonKey::generate(5, 1).unwrap();
    let loc = Location {
        accuracy_m: Some(231.5),
        telemetry: crate::model::Telemetry {
            altitude_m: Some(512.0),
            speed_mps: Some(1.5),
            heading_deg: Some(90.0),
            battery_pct: Some(42.0),
            app: Some(crate::tracker::App::OsmAnd),
        },
        ..location(5)
    };
    let rec = seal_location(&loc, None, written(), LOCATION_TOPIC, &key).unwrap();
    for needle in [
        &b"accuracy"[..],
        b"altitude",
        b"speed",
        b"heading",
        b"battery",
        b"osmand",
    ] {
        assert!(!rec.value.windows(needle.len()).any(|w| w == needle));
    }
    let decoded = decode_sealed(&rec, POS, LOCATION_TOPIC, &key).unwrap();
    assert_eq!(decoded.location, loc);
}

#[test]
fn nothing_of_the_ping_is_readable_in_a_sealed_record() {
    let key = PersonKey::generate(5, 1).unwrap();
    let rec = sealed(&key);
    let haystack = String::from_utf8_lossy(&rec.value);
    for needle in ["37.553631", "122.290883", "2020-07-07", "latitude", "42"] {
        assert!(!haystack.contains(needle), "{needle} in {haystack}");
    }
    // A fresh nonce per record: the same ping seals differently each time.
    assert_ne!(sealed(&key).value, rec.value);
}

#[test]
fn plaintext_records_are_plain_and_do_not_open() {
    let key = PersonKey::generate(5, 1).unwrap();
    let own = record::encode(&location(5), None, written());
    let original = LogRecord {
        key: None,
        value: br#"{"person_id":5,"latitude":"37.5","longitude":"-122.2"}"#.to_vec(),
        headers: Vec::new(),
        timestamp_ms: 1,
    };
    for rec in [&own, &original] {
        assert_eq!(sealing(rec), Ok(Sealing::Plain));
        assert_eq!(
            open(rec, LOCATION_TOPIC, &key),
            Err("envelope: record is not sealed".into())
        );
    }
}

#[test]
fn an_altered_byte_anywhere_fails_to_open() {
    let key = PersonKey::generate(9, 1).unwrap();
    let rec = sealed(&key);
    for i in 0..rec.value.len() {
        let mut bad = rec.clone();
        bad.value[i] ^= 0x01;
        assert_eq!(
            open(&bad, LOCATION_TOPIC, &key),
            Err("envelope: does not authenticate under its person's key".into()),
            "byte {i}"
        );
    }
    let mut cut = rec.clone();
    cut.value.truncate(NONCE_LEN + TAG_LEN - 1);
    assert!(open(&cut, LOCATION_TOPIC, &key)
        .unwrap_err()
        .contains("shorter than a nonce and a tag"));
    cut.value.clear();
    assert!(open(&cut, LOCATION_TOPIC, &key).is_err());
}

#[test]
fn another_key_person_version_or_topic_does_not_open() {
    let key = PersonKey::generate(9, 1).unwrap();
    let rec = sealed(&key);
    let wrong = "envelope: does not authenticate under its person's key";
    // Same person and version, other secret: the key a shredded person no longer has.
    let other = PersonKey::generate(9, 1).unwrap();
    assert_eq!(open(&rec, LOCATION_TOPIC, &other), Err(wrong.into()));
    // Another topic: the associated data differs.
    assert_eq!(open(&rec, "location.replay", &key), Err(wrong.into()));
    // The ciphertext moved to another person's record, opened with the right secret.
    let mut moved = rec.clone();
    moved.key = Some(b"10".to_vec());
    let as_ten = PersonKey::new(10, 1, *key.secret());
    assert_eq!(open(&moved, LOCATION_TOPIC, &as_ten), Err(wrong.into()));
    assert_eq!(
        open(&moved, LOCATION_TOPIC, &key),
        Err("envelope: sealed for person 10, not 9".into())
    );
    // The header rewritten to another version.
    let mut bumped = rec.clone();
    bumped.headers.retain(|(n, _)| n != KEY_VERSION_HEADER);
    bumped
        .headers
        .push((KEY_VERSION_HEADER.into(), b"2".to_vec()));
    assert_eq!(
        open(&bumped, LOCATION_TOPIC, &key),
        Err("envelope: sealed by key version 2, not 1".into())
    );
    let as_two = PersonKey::new(9, 2, *key.secret());
    assert_eq!(open(&bumped, LOCATION_TOPIC, &as_two), Err(wrong.into()));
}

#[test]
fn a_header_or_key_that_names_no_key_is_a_dead_letter_reason() {
    let key = PersonKey::generate(9, 1).unwrap();
    let rec = sealed(&key);
    for version in [&b"one"[..], b"-1", b"", b"\xff", b"4294967296"] {
        let mut bad = rec.clone();
        bad.headers.retain(|(n, _)| n != KEY_VERSION_HEADER);
        bad.headers
            .push((KEY_VERSION_HEADER.into(), version.to_vec()));
        assert_eq!(
            sealing(&bad),
            Err("envelope: key_version is not a key version".into())
        );
    }
    for person in [None, Some(&b"x"[..]), Some(b"0"), Some(b"9007199254740992")] {
        let mut bad = rec.clone();
        bad.key = person.map(<[u8]>::to_vec);
        assert_eq!(
            sealing(&bad),
            Err("envelope: sealed record without its person's id as key".into())
        );
        assert!(open(&bad, LOCATION_TOPIC, &key).is_err());
    }
}

#[test]
fn sealing_refuses_another_persons_record_and_a_sealed_one() {
    let key = PersonKey::generate(9, 1).unwrap();
    let theirs = record::encode(&location(8), None, written());
    assert!(seal(theirs, LOCATION_TOPIC, &key).is_err());
    let keyless = LogRecord {
        key: None,
        ..record::encode(&location(9), None, written())
    };
    assert!(seal(keyless, LOCATION_TOPIC, &key).is_err());
    assert!(seal(sealed(&key), LOCATION_TOPIC, &key).is_err());
}

#[test]
fn a_ping_sealed_under_another_persons_key_is_refused() {
    // Person 9's key sealing person 8's ping cannot happen through `seal_location`; a record
    // forged by hand with the right key must still not file the ping under person 9.
    let key = PersonKey::generate(9, 1).unwrap();
    let mut forged = record::encode(&location(8), None, written());
    forged.key = Some(b"9".to_vec());
    let forged = seal(forged, LOCATION_TOPIC, &key).unwrap();
    assert_eq!(
        decode_sealed(&forged, POS, LOCATION_TOPIC, &key).map(|d| d.location),
        Err("envelope: ping of person 8 sealed by person 9's key".into())
    );
}

#[test]
fn a_keyed_record_must_name_its_person_exactly() {
    let key = PersonKey::generate(9, 1).unwrap();
    for other in [&b"09"[..], b"+9", b" 9", b"9 ", b"-9", b"99"] {
        let mut rec = record::encode(&location(9), None, written());
        rec.key = Some(other.to_vec());
        assert!(seal(rec, LOCATION_TOPIC, &key).is_err(), "{other:?}");
    }
    let big = PersonKey::generate(i64::MAX, 1).unwrap();
    let rec = record::encode(&location(i64::MAX), None, written());
    assert!(seal(rec, LOCATION_TOPIC, &big).is_ok());
}

#[test]
fn a_topic_key_seals_only_its_persons_pings_and_opens_what_it_sealed() {
    let key = TopicKey::new(PersonKey::generate(9, 2).unwrap(), LOCATION_TOPIC);
    assert!(seal_location_with(&location(8), None, written(), &key).is_err());
    let rec = seal_location_with(&location(9), Some("abc"), written(), &key).unwrap();
    assert_eq!(rec.header_str(KEY_VERSION_HEADER), Some("2"));
    let opened = open(&rec, LOCATION_TOPIC, key.key()).unwrap();
    assert_eq!(opened, record::encode(&location(9), Some("abc"), written()));
    // Made ready for one topic, it seals for that one only.
    assert!(open(&rec, "elsewhere", key.key()).is_err());
    let shown = format!("{key:?}");
    assert!(shown.contains("redacted"), "{shown}");
}

/// Nonces are counted up from one random start per process: none repeats, whichever thread
/// draws it, and the count stays in the low 64 bits.
#[test]
fn nonces_never_repeat_across_threads() {
    let drawn: Vec<[u8; NONCE_LEN]> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4)
            .map(|_| s.spawn(|| (0..20_000).map(|_| nonce().unwrap()).collect::<Vec<_>>()))
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    });
    let distinct: std::collections::HashSet<_> = drawn.iter().collect();
    assert_eq!(distinct.len(), drawn.len());
    // One start per process, counted up within its low 64 bits: the high 32 are the same in
    // every nonce.
    assert!(drawn.iter().all(|n| n[..4] == drawn[0][..4]));
    // And sealed records carry them: two seals of one ping differ in their first 12 bytes.
    let key = PersonKey::generate(5, 1).unwrap();
    assert_ne!(
        sealed(&key).value[..NONCE_LEN],
        sealed(&key).value[..NONCE_LEN]
    );
}

#[test]
fn debug_never_shows_the_secret() {
    let key = PersonKey::new(9, 3, [0xab; KEY_LEN]);
    let shown = format!("{key:?}");
    assert!(shown.contains("redacted") && shown.contains("version: 3"));
    assert!(!shown.to_lowercase().contains("ab, ") && !shown.contains("171"));
    assert!(PersonKey::from_stored(9, 3, &[0xab; KEY_LEN]).unwrap() == key);
    assert!(PersonKey::from_stored(9, 3, &[0xab; 31]).is_err());
    assert!(PersonKey::from_stored(9, -1, &[0xab; KEY_LEN]).is_err());
}

proptest! {
    /// Opening is total: any value under any header and key is opened or refused, never a
    /// panic, and random bytes never authenticate.
    #[test]
    fn opening_any_bytes_is_refused_without_panic(
        value in proptest::collection::vec(any::<u8>(), 0..96),
        version in proptest::collection::vec(any::<u8>(), 0..4),
        person in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let key = PersonKey::new(7, 1, [7; KEY_LEN]);
        let rec = LogRecord {
            key: Some(person),
            value,
            headers: vec![(KEY_VERSION_HEADER.into(), version)],
            timestamp_ms: 0,
        };
        prop_assert!(open(&rec, LOCATION_TOPIC, &key).is_err());
        prop_assert!(decode_sealed(&rec, POS, LOCATION_TOPIC, &key).is_err());
    }
}

#[test]
fn a_reader_decodes_plaintext_opens_sealed_and_skips_shredded() {
    let key = PersonKey::generate(5, 1).unwrap();
    let live = |_: PersonId| KeyState::Live(key.clone());
    let plain = record::encode(&location(5), None, written());
    let expected = Read::Location(record::decode_legacy(&plain, POS).unwrap());
    assert_eq!(
        read(&plain, POS, LOCATION_TOPIC, live),
        Ok(expected.clone())
    );
    // A plaintext record needs no key, even of an erased person: it cannot be shredded.
    assert_eq!(
        read(&plain, POS, LOCATION_TOPIC, |_| KeyState::Destroyed),
        Ok(expected.clone())
    );

    let rec = sealed(&key);
    let mut asked = None;
    let found = read(&rec, POS, LOCATION_TOPIC, |p| {
        asked = Some(p);
        KeyState::Live(key.clone())
    });
    assert_eq!((found, asked), (Ok(expected), Some(5)));
    assert_eq!(
        read(&rec, POS, LOCATION_TOPIC, |_| KeyState::Destroyed),
        Ok(Read::Shredded)
    );
    assert_eq!(
        read(&rec, POS, LOCATION_TOPIC, |_| KeyState::Absent),
        Err("envelope: person 5 has no key version 1".into())
    );
    let other = PersonKey::generate(5, 1).unwrap();
    assert!(read(&rec, POS, LOCATION_TOPIC, |_| KeyState::Live(other)).is_err());
    let mut bad = rec.clone();
    bad.value[NONCE_LEN] ^= 1;
    assert!(read(&bad, POS, LOCATION_TOPIC, live).is_err());
}
