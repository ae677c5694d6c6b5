//! Where connection-api gets its answers: the in-memory index of the embedded mode, kept
//! current by the location consumer, or a scan of the store.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use async_trait::async_trait;
use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use udaconnect_core::contact::{self, ConnectionQuery, Contact, ContactQuery, Point};
use udaconnect_core::index::{self, BulkBuilder, ContactIndex, SlotPin};
use udaconnect_core::model::{Location, PersonId};
use udaconnect_core::ports::{DynLocationStore, NearQuery};
use udaconnect_core::time::{from_micros, to_micros, Window};
use udaconnect_core::{Error, Result};

use crate::location_consumer::OnStored;

pub type SharedIndex = Arc<RwLock<ContactIndex>>;

/// The rows of a connection answer, read a slice at a time so a large answer is never copied
/// whole before it is sent.
pub trait Rows: Send + Sync + 'static {
    fn len(&self) -> usize;
    /// Appends rows `from..to` to `out`.
    fn read(&self, from: usize, to: usize, out: &mut Vec<Point>);
    /// The persons the rows belong to, each once, in id order.
    fn person_ids(&self) -> Vec<PersonId> {
        let mut ids = Vec::new();
        let mut buf = Vec::with_capacity(4096);
        for from in (0..self.len()).step_by(4096) {
            buf.clear();
            self.read(from, (from + 4096).min(self.len()), &mut buf);
            ids.extend(buf.iter().map(|p| p.person_id));
            ids.sort_unstable();
            ids.dedup();
        }
        ids
    }
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Rows for Vec<Point> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn read(&self, from: usize, to: usize, out: &mut Vec<Point>) {
        out.extend_from_slice(&self[from..to]);
    }
}

/// Rows as slots of the shared index, readable whatever compactions happen while the answer
/// is streamed (the pin).
struct IndexRows {
    index: SharedIndex,
    pin: SlotPin,
    slots: Vec<u32>,
    persons: Vec<PersonId>,
}

impl Rows for IndexRows {
    fn len(&self) -> usize {
        self.slots.len()
    }
    fn read(&self, from: usize, to: usize, out: &mut Vec<Point>) {
        let index = self.index.read().unwrap_or_else(|e| e.into_inner());
        out.extend(
            self.slots[from..to]
                .iter()
                .map(|&s| index.point_pinned(&self.pin, s)),
        );
    }
    fn person_ids(&self) -> Vec<PersonId> {
        self.persons.clone()
    }
}

/// What a person's stored pings span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub first: i64,
    pub last: i64,
    pub pings: u64,
}

#[async_trait]
pub trait ContactEngine: Send + Sync + 'static {
    /// The connection query's matching locations, by time then id.
    async fn connections(&self, q: ConnectionQuery) -> Result<Box<dyn Rows>>;
    async fn contacts(&self, q: ContactQuery) -> Result<Vec<Contact>>;
    /// The time span of a person's pings in `window`, if any.
    async fn span(&self, person_id: PersonId, window: Window) -> Result<Option<Span>>;
}

pub type DynContactEngine = Arc<dyn ContactEngine>;

/// The embedded engine: an in-memory index built from the store at start and fed by the
/// consumer after each durable batch.
pub struct MemoryEngine {
    pub index: SharedIndex,
}

/// Rows read from the store per page while building the index.
const BUILD_PAGE: usize = 200_000;

impl MemoryEngine {
    /// Builds the index from every stored location. `progress(done)` after each page. The
    /// next page is read from the store while the current one is indexed. `expected`, when
    /// known (the log's length bounds the store's), sizes the index without counting the store,
    /// which costs a full scan of an index at tens of millions of rows.
    pub async fn build(
        store: &DynLocationStore,
        expected: Option<u64>,
        mut progress: impl FnMut(u64),
    ) -> Result<Self> {
        let total = match expected {
            Some(n) => n,
            None => store.count().await?,
        };
        let fetch = |after: i64| {
            let store = store.clone();
            tokio::spawn(async move { store.scan(after, BUILD_PAGE).await })
        };
        // Rows are gathered page by page (the next page read while this one is converted),
        // then laid out in one pass.
        let mut builder = BulkBuilder::with_capacity(total as usize);
        store.will_scan_all();
        let mut next = fetch(0);
        loop {
            let page = next.await.map_err(|e| Error::Internal(e.to_string()))??;
            let Some(last) = page.last() else { break };
            next = fetch(last.id);
            for l in &page {
                builder.push(&point(l));
            }
            progress(builder.len() as u64);
        }
        let index = tokio::task::spawn_blocking(move || builder.finish())
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(MemoryEngine {
            index: Arc::new(RwLock::new(index)),
        })
    }

    /// The hook the consumer calls with every stored batch.
    pub fn feeder(&self) -> OnStored {
        let index = self.index.clone();
        Arc::new(move |batch: &[Location]| index::feed(&index, batch.iter().map(point)))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ContactIndex> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }
}

pub fn point(l: &Location) -> Point {
    Point {
        id: l.id,
        person_id: l.person_id,
        lat: l.latitude,
        lon: l.longitude,
        t: to_micros(l.creation_time),
    }
}

pub fn location(p: &Point) -> Location {
    Location {
        id: p.id,
        person_id: p.person_id,
        latitude: p.lat,
        longitude: p.lon,
        creation_time: from_micros(p.t),
    }
}

#[async_trait]
impl ContactEngine for MemoryEngine {
    async fn connections(&self, q: ConnectionQuery) -> Result<Box<dyn Rows>> {
        // Queries are CPU work of milliseconds: run them where they do not hold up the
        // reactor's other connections.
        let index = self.index.clone();
        let (pin, (slots, persons)) = tokio::task::spawn_blocking(move || {
            let index = index.read().unwrap_or_else(|e| e.into_inner());
            (index.pin(), index.connections_with_persons(&q))
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Box::new(IndexRows {
            index: self.index.clone(),
            pin,
            slots,
            persons,
        }))
    }

    async fn contacts(&self, q: ContactQuery) -> Result<Vec<Contact>> {
        let index = self.index.clone();
        tokio::task::spawn_blocking(move || {
            index.read().unwrap_or_else(|e| e.into_inner()).contacts(&q)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))
    }

    async fn span(&self, person_id: PersonId, window: Window) -> Result<Option<Span>> {
        let index = self.read();
        let track = index.track(person_id, window);
        Ok(match (track.first(), track.last()) {
            (Some(&a), Some(&b)) => Some(Span {
                first: index.point(a).t,
                last: index.point(b).t,
                pings: track.len() as u64,
            }),
            _ => None,
        })
    }
}

/// The engine without an index: reads the window from the store on every query. The
/// benchmark's baseline, and the shape of the original service.
pub struct ScanEngine {
    pub store: DynLocationStore,
}

impl ScanEngine {
    async fn points(&self, window: Window, person: Option<PersonId>) -> Result<Vec<Point>> {
        Ok(self
            .store
            .in_window(window, person)
            .await?
            .iter()
            .map(point)
            .collect())
    }
}

#[async_trait]
impl ContactEngine for ScanEngine {
    async fn connections(&self, q: ConnectionQuery) -> Result<Box<dyn Rows>> {
        let own = self.points(q.window, Some(q.person_id)).await?;
        if own.is_empty() {
            return Ok(Box::new(Vec::<Point>::new()));
        }
        let all = self.points(q.window, None).await?;
        Ok(Box::new(contact::connections(&own, &all, &q)))
    }

    async fn contacts(&self, q: ContactQuery) -> Result<Vec<Contact>> {
        let all = self.points(q.window, None).await?;
        let own: Vec<Point> = all
            .iter()
            .filter(|p| p.person_id == q.person_id)
            .copied()
            .collect();
        let cq = ConnectionQuery {
            person_id: q.person_id,
            window: q.window,
            distance_m: q.distance_m,
            max_time_gap_us: Some(q.max_time_gap_us),
        };
        Ok(contact::summarise(
            contact::connections(&own, &all, &cq),
            &q,
        ))
    }

    async fn span(&self, person_id: PersonId, window: Window) -> Result<Option<Span>> {
        let own = self.points(window, Some(person_id)).await?;
        Ok(match (own.first(), own.last()) {
            (Some(a), Some(b)) => Some(Span {
                first: a.t,
                last: b.t,
                pings: own.len() as u64,
            }),
            _ => None,
        })
    }
}

/// The engine of a connection-api running apart from the consumer: each query is one read of
/// the store's [`near`](udaconnect_core::ports::LocationStore::near) (one set-based statement
/// on PostGIS), then the exact predicate in the domain code, so its answers equal the
/// in-memory engine's to the bit.
pub struct StoreEngine {
    pub store: DynLocationStore,
}

impl StoreEngine {
    async fn near(
        &self,
        person_id: PersonId,
        window: Window,
        distance_m: f64,
        max_gap_us: Option<i64>,
    ) -> Result<(Vec<Point>, Vec<Point>)> {
        let near = self
            .store
            .near(NearQuery {
                person_id,
                window,
                distance_m,
                max_gap_us,
            })
            .await?;
        Ok((
            near.own.iter().map(point).collect(),
            near.candidates.iter().map(point).collect(),
        ))
    }
}

#[async_trait]
impl ContactEngine for StoreEngine {
    async fn connections(&self, q: ConnectionQuery) -> Result<Box<dyn Rows>> {
        let (own, candidates) = self
            .near(q.person_id, q.window, q.distance_m, q.max_time_gap_us)
            .await?;
        Ok(Box::new(contact::connections(&own, &candidates, &q)))
    }

    async fn contacts(&self, q: ContactQuery) -> Result<Vec<Contact>> {
        let (own, candidates) = self
            .near(q.person_id, q.window, q.distance_m, Some(q.max_time_gap_us))
            .await?;
        let cq = ConnectionQuery {
            person_id: q.person_id,
            window: q.window,
            distance_m: q.distance_m,
            max_time_gap_us: Some(q.max_time_gap_us),
        };
        Ok(contact::summarise(
            contact::connections(&own, &candidates, &cq),
            &q,
        ))
    }

    async fn span(&self, person_id: PersonId, window: Window) -> Result<Option<Span>> {
        ScanEngine {
            store: self.store.clone(),
        }
        .span(person_id, window)
        .await
    }
}

/// Rows per chunk of a streamed answer: about 100 KiB of JSON.
const CHUNK_ROWS: usize = 512;

/// A connection answer as a JSON array written chunk by chunk as the client reads.
pub struct ConnectionBody {
    rows: Box<dyn Rows>,
    /// Each person's row opening, `{"person":<person>,"location":`, written once however many
    /// rows name them: the range of `openings` it takes.
    persons: HashMap<PersonId, (u32, u32), index::FxBuild>,
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
        let persons: HashMap<PersonId, (u32, u32), index::FxBuild> = persons
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

/// A contacts answer as JSON, written directly: the shape of [`crate::connection_api::ContactRow`]'s
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
/// (ryu), `null` when not finite.
pub(crate) fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
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
        let secs = rem / 1_000_000;
        let micros = (rem % 1_000_000) as u32;
        push_digits(out, (secs / 3600) as u32, 2);
        out.push(b':');
        push_digits(out, (secs / 60 % 60) as u32, 2);
        out.push(b':');
        push_digits(out, (secs % 60) as u32, 2);
        if micros.is_multiple_of(1000) && micros != 0 {
            out.push(b'.');
            push_digits(out, micros / 1000, 3);
        } else if micros != 0 {
            out.push(b'.');
            push_digits(out, micros, 6);
        }
        out.push(b'Z');
    }
}

/// `n` in exactly `width` decimal digits, zero-padded (`n` fits).
fn push_digits(out: &mut Vec<u8>, n: u32, width: u32) {
    let mut n = n;
    let at = out.len();
    out.resize(at + width as usize, b'0');
    for d in out[at..].iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

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
    // Digits pushed directly: a contacts answer changes day thousands of times (each person's
    // encounters run over the days again), and `write!` cost more than the rest of a time.
    if (0..=9999).contains(&year) {
        push_digits(out, year as u32, 4);
        out.push(b'-');
        push_digits(out, month as u32, 2);
        out.push(b'-');
        push_digits(out, day as u32, 2);
        out.push(b'T');
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
    use udaconnect_core::time::format_utc;

    #[test]
    fn written_times_equal_format_utc() {
        let mut rng = udaconnect_core::simulate::Rng::new(3);
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
            })
            .collect();
        let want: Vec<udaconnect_core::model::Connection> = points
            .iter()
            .map(|p| udaconnect_core::model::Connection {
                person: persons[&p.person_id].clone(),
                location: location(p),
            })
            .collect();
        let jsons = persons
            .values()
            .map(|p| (p.id, crate::directory::person_json(p)))
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
