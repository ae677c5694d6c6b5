//! Answers written as JSON directly: a connection answer streamed chunk by chunk as the client
//! reads, and a contacts answer in one piece, both byte for byte what serde would write.

use std::collections::HashMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use rustc_hash::FxBuildHasher;
use udaconnect_core::contact::{Contact, Point};
use udaconnect_core::model::PersonId;

use crate::query::engine::Rows;

/// Rows per chunk of a streamed answer: about 100 KiB of JSON.
const CHUNK_ROWS: usize = 512;

/// A connection answer as a JSON array written chunk by chunk as the client reads.
pub struct ConnectionBody {
    rows: Box<dyn Rows>,
    /// Each person's row opening, `{"person":<person>,"location":`, written once however many
    /// rows name them: the range of `openings` it takes.
    persons: HashMap<PersonId, (u32, u32), FxBuildHasher>,
    openings: Vec<u8>,
    /// Bytes a row can take: a chunk's buffer is made this large so it never grows (a copy).
    row_bytes: usize,
    next: usize,
    /// Whether a row has been written, so the next one is preceded by a comma.
    wrote_row: bool,
    done: bool,
    buf: Vec<Point>,
    day: DayCache,
}

impl ConnectionBody {
    /// `persons`: each person's JSON.
    pub fn new(rows: Box<dyn Rows>, persons: Vec<(PersonId, Bytes)>) -> Self {
        let mut openings = Vec::with_capacity(persons.iter().map(|(_, j)| j.len() + 24).sum());
        let persons: HashMap<PersonId, (u32, u32), FxBuildHasher> = persons
            .into_iter()
            .map(|(id, json)| {
                let from = openings.len() as u32;
                openings.extend_from_slice(b"{\"person\":");
                openings.extend_from_slice(&json);
                openings.extend_from_slice(b",\"location\":");
                (id, (from, openings.len() as u32))
            })
            .collect();
        let longest = persons.iter().map(|(_, (a, b))| b - a).max().unwrap_or(0);
        ConnectionBody {
            rows,
            persons,
            openings,
            // The longest location: two 19-digit ids, two 24-character numbers, the time, the
            // keys, the closing braces and the comma.
            row_bytes: longest as usize + 200,
            next: 0,
            wrote_row: false,
            done: false,
            buf: Vec::with_capacity(CHUNK_ROWS),
            day: DayCache::default(),
        }
    }

    fn chunk(&mut self) -> Bytes {
        let total = self.rows.len();
        let to = (self.next + CHUNK_ROWS).min(total);
        self.buf.clear();
        self.rows.read(self.next, to, &mut self.buf);
        let mut out = Vec::with_capacity(self.buf.len() * self.row_bytes + 2);
        if self.next == 0 {
            out.push(b'[');
        }
        for p in &self.buf {
            // A row whose person is unknown cannot happen (locations are stored only for
            // known persons); skipping keeps the array valid if it ever does.
            let Some(&(from, to)) = self.persons.get(&p.person_id) else {
                continue;
            };
            if self.wrote_row {
                out.push(b',');
            }
            self.wrote_row = true;
            out.extend_from_slice(&self.openings[from as usize..to as usize]);
            write_location(&mut out, p, &mut self.day);
            out.push(b'}');
        }
        self.next = to;
        if self.next >= total {
            out.push(b']');
            self.done = true;
        }
        Bytes::from(out)
    }
}

/// A location as JSON, written directly: the shape of [`Location`]'s serialisation, without
/// the formatting machinery of going through it (large answers are millions of these a second).
fn write_location(out: &mut Vec<u8>, p: &Point, day: &mut DayCache) {
    let mut int = itoa::Buffer::new();
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(int.format(p.id).as_bytes());
    out.extend_from_slice(b",\"person_id\":");
    out.extend_from_slice(int.format(p.person_id).as_bytes());
    out.extend_from_slice(b",\"latitude\":");
    write_f64(out, p.lat);
    out.extend_from_slice(b",\"longitude\":");
    write_f64(out, p.lon);
    out.extend_from_slice(b",\"creation_time\":\"");
    day.write_utc(out, p.t);
    out.extend_from_slice(b"\"}");
}

/// A contacts answer as JSON, written directly: the shape of [`crate::query::http::ContactRow`]'s
/// serialisation. A 3-day answer in a crowded venue is hundreds of persons and thousands of
/// encounters, and formatting each time through `chrono` and a `String` took longer than the
/// search. `persons`: each person's JSON, by id; a contact whose person is unknown is left out.
pub fn write_contacts(contacts: &[Contact], persons: &HashMap<PersonId, Bytes>) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        contacts
            .iter()
            .map(|c| 200 + 170 * c.encounters.len())
            .sum(),
    );
    let mut day = DayCache::default();
    let mut int = itoa::Buffer::new();
    out.push(b'[');
    let mut first = true;
    for c in contacts {
        let Some(person) = persons.get(&c.person_id) else {
            continue;
        };
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(b"{\"person\":");
        out.extend_from_slice(person);
        out.extend_from_slice(b",\"first_met\":\"");
        day.write_utc(&mut out, c.first);
        out.extend_from_slice(b"\",\"last_met\":\"");
        day.write_utc(&mut out, c.last);
        out.extend_from_slice(b"\",\"duration_seconds\":");
        write_f64(&mut out, c.total_us as f64 / 1e6);
        out.extend_from_slice(b",\"encounter_count\":");
        out.extend_from_slice(int.format(c.encounters.len()).as_bytes());
        out.extend_from_slice(b",\"encounters\":[");
        for (i, e) in c.encounters.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"start\":\"");
            day.write_utc(&mut out, e.start);
            out.extend_from_slice(b"\",\"end\":\"");
            day.write_utc(&mut out, e.end);
            out.extend_from_slice(b"\",\"duration_seconds\":");
            write_f64(&mut out, e.duration_us() as f64 / 1e6);
            out.extend_from_slice(b",\"latitude\":");
            write_f64(&mut out, e.latitude);
            out.extend_from_slice(b",\"longitude\":");
            write_f64(&mut out, e.longitude);
            out.extend_from_slice(b",\"pings\":");
            out.extend_from_slice(int.format(e.pings).as_bytes());
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }
    out.push(b']');
    out
}

/// An f64 as serde_json writes it: the shortest representation that reads back the same
/// (zmij, as serde_json uses), `null` when not finite.
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        out.extend_from_slice(zmij::Buffer::new().format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

/// The text of the last day written (`YYYY-MM-DDT`): answers come in time order, so the date is
/// worked out once per day rather than once per row.
#[derive(Default)]
pub(crate) struct DayCache {
    day: Option<i64>,
    text: Vec<u8>,
}

impl DayCache {
    /// `format_utc` without allocating: `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff]Z`.
    pub(crate) fn write_utc(&mut self, out: &mut Vec<u8>, t: i64) {
        let (days, rem) = (t.div_euclid(86_400_000_000), t.rem_euclid(86_400_000_000));
        if self.day != Some(days) {
            self.day = Some(days);
            self.text.clear();
            write_date(&mut self.text, days);
        }
        out.extend_from_slice(&self.text);
        // Two digits at a time from a table, each part written in one piece: a large answer
        // writes a time per row.
        let secs = (rem / 1_000_000) as usize;
        let micros = (rem % 1_000_000) as usize;
        let [h, m, s] = [secs / 3600, secs / 60 % 60, secs % 60].map(|n| DIGIT_PAIRS[n]);
        out.extend_from_slice(&[h[0], h[1], b':', m[0], m[1], b':', s[0], s[1]]);
        if micros == 0 {
            out.push(b'Z');
        } else if micros.is_multiple_of(1000) {
            let ms = micros / 1000;
            let [a, b] = DIGIT_PAIRS[ms / 10];
            out.extend_from_slice(&[b'.', a, b, b'0' + (ms % 10) as u8, b'Z']);
        } else {
            let [a, b, c] =
                [micros / 10_000, micros / 100 % 100, micros % 100].map(|n| DIGIT_PAIRS[n]);
            out.extend_from_slice(&[b'.', a[0], a[1], b[0], b[1], c[0], c[1], b'Z']);
        }
    }
}

/// `"00"` to `"99"`.
const DIGIT_PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0u8; 2]; 100];
    let mut n = 0;
    while n < 100 {
        pairs[n] = [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        n += 1;
    }
    pairs
};

/// `YYYY-MM-DDT` of a day counted from 1970-01-01.
fn write_date(out: &mut Vec<u8>, days: i64) {
    use std::io::Write;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    // Digits from the pair table: a contacts answer changes day thousands of times (each
    // person's encounters run over the days again), and `write!` cost more than the rest of a
    // time.
    if (0..=9999).contains(&year) {
        let [c, y, m, d] = [year / 100, year % 100, month, day].map(|n| DIGIT_PAIRS[n as usize]);
        out.extend_from_slice(&[
            c[0], c[1], y[0], y[1], b'-', m[0], m[1], b'-', d[0], d[1], b'T',
        ]);
    } else {
        let _ = write!(out, "{year:04}-{month:02}-{day:02}T");
    }
}

impl Body for ConnectionBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Self::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(Ok(Frame::data(self.chunk()))))
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use udaconnect_core::model::Person;
    use udaconnect_core::time::{format_utc, from_micros};

    /// Numbers in written answers are byte for byte those serde_json writes elsewhere in the
    /// API: coordinates, durations, and the awkward cases (exponents, zero's sign, integers).
    #[test]
    fn written_numbers_are_serde_jsons() {
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            5.0,
            0.1,
            1e-7,
            1e21,
            1.5e300,
            5e-324,
            123456789012345680.0,
            37.55381234567891,
            -122.29,
            f64::MAX,
            f64::MIN_POSITIVE,
        ];
        // Coordinates, and bit patterns from anywhere in the range.
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(-90.0 + (x >> 11) as f64 / (1u64 << 53) as f64 * 180.0);
            values.push(f64::from_bits(x));
        }
        for v in values {
            let mut out = Vec::new();
            write_f64(&mut out, v);
            let want = serde_json::to_vec(&v).unwrap();
            assert_eq!(out, want, "{v:e}");
        }
    }

    #[test]
    fn written_times_equal_format_utc() {
        let mut rng = udaconnect_sim::Rng::new(3);
        let mut cases = vec![
            0,
            1,
            999,
            1000,
            123_456,
            951_782_400_000_000,
            4_107_542_399_999_999,
        ];
        cases.extend((0..2000).map(|_| (rng.unit() * 8e15) as i64));
        cases.extend((0..200).map(|_| (rng.unit() * 8e12) as i64 * 1000));
        for t in cases {
            let mut out = Vec::new();
            DayCache::default().write_utc(&mut out, t);
            // And through a cache that holds another day, or the same one.
            let mut cache = DayCache::default();
            let mut other = Vec::new();
            cache.write_utc(&mut other, t - 86_400_000_000 * 3);
            other.clear();
            cache.write_utc(&mut other, t);
            cache.write_utc(&mut other, t);
            assert_eq!(other, [out.clone(), out.clone()].concat());
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format_utc(from_micros(t)),
                "{t}"
            );
        }
    }

    #[test]
    fn streamed_json_equals_serde_json() {
        let persons: HashMap<PersonId, Person> = (1..=3)
            .map(|id| {
                (
                    id,
                    Person {
                        id,
                        first_name: format!("F{id}"),
                        last_name: "L\"q".into(),
                        company_name: "C".into(),
                    },
                )
            })
            .collect();
        let points: Vec<Point> = (0..1300)
            .map(|i| Point {
                id: i + 1,
                person_id: i % 3 + 1,
                lat: 37.5 + i as f64 * 1e-7,
                lon: -122.25,
                t: 1_594_117_026_123_456 + i,
                acc: Default::default(),
            })
            .collect();
        let want: Vec<udaconnect_core::model::Connection> = points
            .iter()
            .map(|p| udaconnect_core::model::Connection {
                person: persons[&p.person_id].clone(),
                location: udaconnect_core::model::Location::from(p),
            })
            .collect();
        let jsons = persons
            .values()
            .map(|p| (p.id, crate::persons::person_json(p)))
            .collect();
        let mut body = ConnectionBody::new(Box::new(points), jsons);
        let mut out = Vec::new();
        while !body.done {
            out.extend_from_slice(&body.chunk());
        }
        let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(got, serde_json::to_value(&want).unwrap());
        let mut empty = ConnectionBody::new(Box::new(Vec::<Point>::new()), Vec::new());
        assert_eq!(&empty.chunk()[..], b"[]");
    }
}
