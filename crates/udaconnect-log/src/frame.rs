//! The on-disk frame of one record.
//!
//! ```text
//! u32 body length | u32 CRC-32 of the body | body
//! body: u64 offset | i64 timestamp ms | u32 key length (u32::MAX: no key) | key
//!       | u16 header count | (u16 name length | name | u32 value length | value)*
//!       | u32 value length | value
//! ```
//! All integers little-endian. The offset inside the body lets recovery tell a stale frame
//! from the one it expects; the CRC catches torn and corrupted writes.

use udaconnect_core::record::LogRecord;

/// Length and CRC.
pub const HEADER_LEN: usize = 8;
/// The smallest body: offset, timestamp, key length, header count, value length. Zeros never
/// make a frame: their length field says 0.
pub const MIN_BODY_LEN: usize = 8 + 8 + 4 + 2 + 4;
/// Frames larger than this are taken as corruption: no record the product writes comes close.
pub const MAX_BODY_LEN: usize = 16 << 20;

/// Why `record` cannot be written as one frame that reads back as it was, if it cannot: the
/// header count and header names have 16-bit lengths, and a body above [`MAX_BODY_LEN`] reads
/// as corruption (within it, every 32-bit length fits). Appends check first, so a record too
/// large never becomes a frame that makes the next start refuse the log.
pub fn unwritable(record: &LogRecord) -> Option<String> {
    if record.headers.len() > u16::MAX as usize {
        return Some(format!(
            "{} headers, at most {}",
            record.headers.len(),
            u16::MAX
        ));
    }
    if let Some((name, _)) = record
        .headers
        .iter()
        .find(|(name, _)| name.len() > u16::MAX as usize)
    {
        return Some(format!(
            "a header name of {} bytes, at most {}",
            name.len(),
            u16::MAX
        ));
    }
    let body = MIN_BODY_LEN
        + record.key.as_ref().map_or(0, Vec::len)
        + record
            .headers
            .iter()
            .map(|(name, value)| 2 + name.len() + 4 + value.len())
            .sum::<usize>()
        + record.value.len();
    (body > MAX_BODY_LEN).then(|| format!("a record of {body} bytes, at most {MAX_BODY_LEN}"))
}

/// Appends the frame of `record` at `offset` to `out`.
pub fn encode(out: &mut Vec<u8>, offset: u64, record: &LogRecord) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    out.extend_from_slice(&offset.to_le_bytes());
    out.extend_from_slice(&record.timestamp_ms.to_le_bytes());
    match &record.key {
        Some(k) => {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(k);
        }
        None => out.extend_from_slice(&u32::MAX.to_le_bytes()),
    }
    out.extend_from_slice(&(record.headers.len() as u16).to_le_bytes());
    for (name, value) in &record.headers {
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    out.extend_from_slice(&(record.value.len() as u32).to_le_bytes());
    out.extend_from_slice(&record.value);
    let body_len = (out.len() - start - HEADER_LEN) as u32;
    let crc = crc32fast::hash(&out[start + HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&body_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What reading a frame at the start of a buffer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole, intact frame of `len` bytes.
    Record {
        offset: u64,
        record: LogRecord,
        len: usize,
    },
    /// The buffer ends inside the frame: read more, or, at the end of a file, a torn tail.
    Incomplete,
    /// The bytes are not a valid frame.
    Corrupt(&'static str),
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap_or_default()))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }
}

/// Reads the frame at the start of `buf`.
pub fn decode(buf: &[u8]) -> Decoded {
    if buf.len() < HEADER_LEN {
        return Decoded::Incomplete;
    }
    let body_len = u32::from_le_bytes(buf[0..4].try_into().unwrap_or_default()) as usize;
    let crc = u32::from_le_bytes(buf[4..8].try_into().unwrap_or_default());
    if !(MIN_BODY_LEN..=MAX_BODY_LEN).contains(&body_len) {
        return Decoded::Corrupt("impossible frame length");
    }
    let Some(body) = buf.get(HEADER_LEN..HEADER_LEN + body_len) else {
        return Decoded::Incomplete;
    };
    if crc32fast::hash(body) != crc {
        return Decoded::Corrupt("checksum mismatch");
    }
    match parse_body(body) {
        Some((offset, record)) => Decoded::Record {
            offset,
            record,
            len: HEADER_LEN + body_len,
        },
        None => Decoded::Corrupt("malformed body"),
    }
}

/// The length and offset a frame at the start of `buf` claims, read without checking its
/// checksum: enough to step over a frame, or to rule a position out before checking it.
pub fn peek(buf: &[u8]) -> Option<(usize, u64)> {
    let body_len = u32::from_le_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
    if !(MIN_BODY_LEN..=MAX_BODY_LEN).contains(&body_len) {
        return None;
    }
    let offset = u64::from_le_bytes(buf.get(HEADER_LEN..HEADER_LEN + 8)?.try_into().ok()?);
    Some((HEADER_LEN + body_len, offset))
}

/// The position of the first intact frame at or after `from` whose offset lies in `offsets`:
/// where the records after a damaged one resume. Length and offset are checked before the
/// checksum, so a search through megabytes of records or zeros costs little.
pub fn find_intact(buf: &[u8], from: usize, offsets: std::ops::Range<u64>) -> Option<usize> {
    (from..buf.len()).find(|&at| {
        let rest = &buf[at..];
        matches!(peek(rest), Some((len, offset)) if len <= rest.len() && offsets.contains(&offset))
            && matches!(decode(rest), Decoded::Record { .. })
    })
}

fn parse_body(body: &[u8]) -> Option<(u64, LogRecord)> {
    let mut c = Cursor { buf: body, pos: 0 };
    let offset = c.u64()?;
    let timestamp_ms = c.u64()? as i64;
    let key = match c.u32()? {
        u32::MAX => None,
        n => Some(c.take(n as usize)?.to_vec()),
    };
    let header_count = c.u16()?;
    // Room for the headers the body can hold (each takes at least its two lengths), not for
    // what a damaged count claims: 65,535 would reserve 3 MB for a 26-byte frame.
    let room = (c.buf.len() - c.pos) / (2 + 4);
    let mut headers = Vec::with_capacity(usize::from(header_count).min(room));
    for _ in 0..header_count {
        let n = c.u16()? as usize;
        let name = String::from_utf8(c.take(n)?.to_vec()).ok()?;
        let n = c.u32()? as usize;
        headers.push((name, c.take(n)?.to_vec()));
    }
    let n = c.u32()? as usize;
    let value = c.take(n)?.to_vec();
    (c.pos == body.len()).then_some((
        offset,
        LogRecord {
            key,
            value,
            headers,
            timestamp_ms,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A record is writable exactly while its frame reads back: up to the largest body, and
    /// with 16-bit header counts and names.
    #[test]
    fn records_beyond_the_frame_limits_are_unwritable() {
        let record = |value_len: usize, headers: Vec<(String, Vec<u8>)>| LogRecord {
            key: None,
            value: vec![7; value_len],
            headers,
            timestamp_ms: 1,
        };
        let largest = record(MAX_BODY_LEN - MIN_BODY_LEN, vec![]);
        assert_eq!(unwritable(&largest), None);
        let mut out = Vec::new();
        encode(&mut out, 3, &largest);
        assert!(
            matches!(decode(&out), Decoded::Record { offset: 3, record, .. } if record == largest)
        );
        let too_large = record(MAX_BODY_LEN - MIN_BODY_LEN + 1, vec![]);
        assert!(unwritable(&too_large).is_some_and(|why| why.contains("at most 16777216")));
        let long_name = record(0, vec![("n".repeat(u16::MAX as usize + 1), vec![])]);
        assert!(unwritable(&long_name).is_some_and(|why| why.contains("header name")));
        let many = record(0, vec![(String::new(), vec![]); u16::MAX as usize + 1]);
        assert!(unwritable(&many).is_some_and(|why| why.contains("headers")));
        assert_eq!(
            unwritable(&record(0, vec![(String::new(), vec![]); 3])),
            None
        );
    }

    proptest! {
        #[test]
        fn round_trip_and_every_truncation_is_incomplete(
            offset in any::<u64>(),
            ts in any::<i64>(),
            key in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            headers in proptest::collection::vec(("[a-z_]{0,12}", proptest::collection::vec(any::<u8>(), 0..20)), 0..3),
            value in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let record = LogRecord { key, value, headers, timestamp_ms: ts };
            let mut buf = Vec::new();
            encode(&mut buf, offset, &record);
            let len = buf.len();
            prop_assert_eq!(decode(&buf), Decoded::Record { offset, record, len });
            for cut in 0..len {
                prop_assert_eq!(decode(&buf[..cut]), Decoded::Incomplete);
            }
            let mut flipped = buf.clone();
            flipped[len - 1] ^= 0x40;
            prop_assert!(matches!(decode(&flipped), Decoded::Corrupt(_)));
        }

        #[test]
        fn the_search_finds_the_frame_after_any_damage(
            damaged in 0usize..3,
            at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
            zeros in 0usize..300,
        ) {
            let mut buf = Vec::new();
            let mut starts = Vec::new();
            for i in 0..4u64 {
                starts.push(buf.len());
                encode(&mut buf, 10 + i, &record(i));
            }
            let frame = starts[damaged]..starts[damaged + 1];
            buf[frame.start + at.index(frame.len())] ^= flip;
            buf.extend(std::iter::repeat_n(0u8, zeros));
            let intact = matches!(decode(&buf[frame.start..]), Decoded::Record { .. });
            prop_assert!(!intact);
            // Resumes at the next frame, never inside the damaged one or in the zeros.
            prop_assert_eq!(find_intact(&buf, frame.start + 1, 10..20), Some(frame.end));
            prop_assert_eq!(find_intact(&buf, starts[3] + 1, 0..u64::MAX), None);
        }
    }

    fn record(i: u64) -> LogRecord {
        LogRecord {
            key: Some(vec![b'k'; i as usize]),
            value: format!("{{\"n\":{i}}}").into_bytes(),
            headers: vec![("correlation_id".into(), vec![b'c'; 3])],
            timestamp_ms: i as i64,
        }
    }

    /// A header count the body cannot hold is a malformed body; every header the count allows
    /// is still read when they are all there.
    #[test]
    fn header_counts_are_held_to_the_body() {
        let mut claims_many = Vec::new();
        encode(&mut claims_many, 0, &LogRecord::default());
        claims_many[HEADER_LEN + 20..HEADER_LEN + 22].copy_from_slice(&0xff00u16.to_le_bytes());
        let crc = crc32fast::hash(&claims_many[HEADER_LEN..]);
        claims_many[4..8].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&claims_many), Decoded::Corrupt("malformed body"));

        let record = LogRecord {
            headers: vec![(String::new(), Vec::new()); usize::from(u16::MAX)],
            ..LogRecord::default()
        };
        let mut buf = Vec::new();
        encode(&mut buf, 1, &record);
        let len = buf.len();
        assert_eq!(
            decode(&buf),
            Decoded::Record {
                offset: 1,
                record,
                len
            }
        );
    }

    #[test]
    fn zeros_are_never_a_frame() {
        let zeros = [0u8; 4096];
        assert_eq!(decode(&zeros), Decoded::Corrupt("impossible frame length"));
        assert_eq!(peek(&zeros), None);
        assert_eq!(find_intact(&zeros, 0, 0..u64::MAX), None);
        // An empty record is mostly zeros; with its length cleared it is not found either.
        let mut buf = Vec::new();
        encode(&mut buf, 0, &LogRecord::default());
        buf[0..4].fill(0);
        assert_eq!(find_intact(&buf, 0, 0..u64::MAX), None);
    }
}
