//! The embedded log's frames: arbitrary bytes as a frame, the same bytes as a body under a
//! correct length and checksum (so the body parser is reached, not only the checksum), the
//! search for the next intact frame, and a record built from the bytes encoded and decoded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use udaconnect_core::record::LogRecord;
use udaconnect_log::frame::{self, Decoded, HEADER_LEN, MAX_BODY_LEN, MIN_BODY_LEN};

fuzz_target!(|data: &[u8]| {
    check_decode(data);
    let mut framed = Vec::with_capacity(HEADER_LEN + data.len());
    framed.extend_from_slice(&(data.len() as u32).to_le_bytes());
    framed.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    framed.extend_from_slice(data);
    let decoded = check_decode(&framed);
    if (MIN_BODY_LEN..=MAX_BODY_LEN).contains(&data.len()) {
        assert!(
            !matches!(decoded, Decoded::Incomplete),
            "a whole frame read as incomplete"
        );
    }
    check_search(data);
    check_round_trip(data);
});

/// Whatever `decode` says of `buf` is true of it; a record it reads is written back to the very
/// bytes it was read from.
fn check_decode(buf: &[u8]) -> Decoded {
    let decoded = frame::decode(buf);
    match &decoded {
        Decoded::Record {
            offset,
            record,
            len,
        } => {
            assert!(*len <= buf.len() && *len >= HEADER_LEN + MIN_BODY_LEN);
            assert_eq!(frame::peek(buf), Some((*len, *offset)));
            let mut again = Vec::new();
            frame::encode(&mut again, *offset, record);
            assert_eq!(again, buf[..*len], "the encoding is not the frame read");
        }
        Decoded::Incomplete => {
            // Only a buffer shorter than the frame it starts is incomplete.
            if let Some((len, _)) = frame::peek(buf) {
                assert!(len > buf.len());
            } else {
                assert!(buf.len() < HEADER_LEN + 8);
            }
        }
        Decoded::Corrupt(_) => {}
    }
    decoded
}

/// `find_intact` answers the first position a brute-force scan would.
fn check_search(buf: &[u8]) {
    // The scan decodes at every position: kept to inputs where that stays cheap.
    if buf.len() > 2048 {
        return;
    }
    let lo = buf.first().map_or(0, |b| u64::from(*b));
    for (from, offsets) in [(0, 0..u64::MAX), (1, lo..lo + 16)] {
        let want = (from..buf.len()).find(|&at| {
            matches!(frame::decode(&buf[at..]), Decoded::Record { offset, .. } if offsets.contains(&offset))
        });
        assert_eq!(frame::find_intact(buf, from, offsets.clone()), want);
    }
}

/// A record made of the input encodes and decodes to itself; each of its prefixes is
/// incomplete; with bytes after it, it is still read whole; a flipped byte is never the record.
fn check_round_trip(data: &[u8]) {
    let mut u = arbitrary::Unstructured::new(data);
    let Ok((offset, record)) = u.arbitrary::<(u64, Record)>() else {
        return;
    };
    let record = LogRecord {
        key: record.key,
        value: record.value,
        headers: record.headers,
        timestamp_ms: record.timestamp_ms,
    };
    let mut buf = Vec::new();
    frame::encode(&mut buf, offset, &record);
    let len = buf.len();
    let want = Decoded::Record {
        offset,
        record,
        len,
    };
    assert_eq!(frame::decode(&buf), want);
    let step = (len / 64).max(1);
    for cut in (0..len).step_by(step) {
        assert_eq!(
            frame::decode(&buf[..cut]),
            Decoded::Incomplete,
            "cut at {cut} of {len}"
        );
    }
    let at = u.arbitrary::<usize>().unwrap_or(0) % len;
    let flip = u.arbitrary::<u8>().unwrap_or(0).max(1);
    buf.extend_from_slice(u.take_rest());
    assert_eq!(frame::decode(&buf), want);
    buf[at] ^= flip;
    assert_ne!(
        frame::decode(&buf),
        want,
        "byte {at} flipped by {flip:#x} went unseen"
    );
}

#[derive(arbitrary::Arbitrary, Debug)]
struct Record {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    timestamp_ms: i64,
}
