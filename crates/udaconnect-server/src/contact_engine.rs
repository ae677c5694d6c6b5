//! Where connection-api gets its answers: the in-memory index of the embedded mode, kept
//! current by the location consumer, or a scan of the store.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use async_trait::async_trait;
use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use rustc_hash::FxBuildHasher;
use udaconnect_core::contact::{self, ConnectionQuery, Contact, ContactQuery, Point};
use udaconnect_core::index::{self, BulkBuilder, ContactIndex, PreparedPage, SlotPin};
use udaconnect_core::model::{Location, PersonId};
use udaconnect_core::ports::{DynLocationStore, NearQuery};
use udaconnect_core::time::{from_micros, to_micros, Window};
use udaconnect_core::{Error, Result};

use crate::location_consumer::OnStored;
use crate::workers::RayonWorkers;

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

/// Rows read from the store per page while building the index: pages of tens of MiB, which
/// the allocator maps and unmaps whole (above its largest threshold for that, 32 MiB), so
/// pages made on one thread and freed on another leave no memory behind.
const BUILD_PAGE: usize = 1 << 20;
/// Id ranges read from the store at once while building the index: reading rows is most of a
/// start's work, and the builder takes pages faster than one reader hands them over.
const BUILD_READERS: i64 = 2;
/// Prepared pages waiting for the builder, at most.
const PAGES_IN_FLIGHT: usize = 2;

impl MemoryEngine {
    /// Builds the index from every stored location. `progress(done)` after each page. The
    /// store is read in [`BUILD_READERS`] id ranges at once, each reading its next page while
    /// its current one is prepared; the builder takes pages as they come. `expected`, when
    /// known (the log's length bounds the store's), sizes the index without counting the
    /// store, which costs a full scan of an index at tens of millions of rows.
    pub async fn build(
        store: &DynLocationStore,
        expected: Option<u64>,
        progress: impl FnMut(u64),
    ) -> Result<Self> {
        Self::build_in(store, expected, BUILD_PAGE, BUILD_READERS, progress).await
    }

    async fn build_in(
        store: &DynLocationStore,
        expected: Option<u64>,
        page: usize,
        readers: i64,
        mut progress: impl FnMut(u64),
    ) -> Result<Self> {
        let total = match expected {
            Some(n) => n,
            None => store.count().await?,
        };
        let mut builder = BulkBuilder::with_capacity(total as usize, Arc::new(RayonWorkers::new()));
        if let Some((low, high)) = store.id_range().await? {
            store.will_scan_all();
            // One bounded channel for every range: the builder takes pages as they come, so
            // memory holds a few pages, not a range waiting its turn. A person's rows then
            // come in runs out of time order; the layout merges them (see `BulkBuilder`).
            let (pages, mut arrived) = tokio::sync::mpsc::channel(PAGES_IN_FLIGHT);
            for (after, until) in id_ranges(low, high, readers) {
                tokio::spawn(read_pages(store.clone(), after, until, page, pages.clone()));
            }
            drop(pages);
            while let Some(page) = arrived.recv().await {
                builder.push_page(&page?);
                progress(builder.len() as u64);
            }
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

/// Up to `parts` consecutive ranges `(after, until]` of equal width covering the ids
/// `low..=high`, the last one open-ended. (`i64::MIN` itself, below every range, is never an
/// id: ids are leased from 1 up.)
fn id_ranges(low: i64, high: i64, parts: i64) -> Vec<(i64, i64)> {
    let parts = parts.max(1) as i128;
    let width = ((high as i128 - low as i128 + 1) / parts).max(1);
    let mut ranges = Vec::new();
    let mut after = (low as i128 - 1).max(i64::MIN as i128);
    for part in 0..parts {
        let last = part == parts - 1;
        let until = if last {
            i64::MAX as i128
        } else {
            (after + width).min(i64::MAX as i128)
        };
        ranges.push((after as i64, until as i64));
        if until == i64::MAX as i128 {
            break;
        }
        after = until;
    }
    ranges
}

/// Reads the locations with ids in `(after, until]` page by page, the next page read while
/// this one is prepared, and sends each prepared page (or the error that ended the reading).
async fn read_pages(
    store: DynLocationStore,
    after: i64,
    until: i64,
    page_size: usize,
    pages: tokio::sync::mpsc::Sender<Result<PreparedPage>>,
) {
    let fetch = |after: i64| {
        let store = store.clone();
        tokio::spawn(async move { store.scan(after, until, page_size).await })
    };
    let mut next = fetch(after);
    loop {
        let page = match next.await {
            Ok(Ok(page)) => page,
            Ok(Err(e)) => {
                let _ = pages.send(Err(e)).await;
                return;
            }
            Err(e) => {
                let _ = pages.send(Err(Error::Internal(e.to_string()))).await;
                return;
            }
        };
        let Some(last) = page.last() else { return };
        next = fetch(last.id);
        let prepared = PreparedPage::new(page.iter().map(point));
        if pages.send(Ok(prepared)).await.is_err() {
            return;
        }
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
    use udaconnect_core::time::format_utc;

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
    fn id_ranges_cover_every_id_once() {
        assert_eq!(id_ranges(1, 10, 2), vec![(0, 5), (5, i64::MAX)]);
        assert_eq!(id_ranges(1, 11, 3), vec![(0, 3), (3, 6), (6, i64::MAX)]);
        assert_eq!(id_ranges(7, 7, 2), vec![(6, 7), (7, i64::MAX)]);
        assert_eq!(
            id_ranges(5, 6, 4),
            vec![(4, 5), (5, 6), (6, 7), (7, i64::MAX)]
        );
        assert_eq!(id_ranges(1, 100, 0), vec![(0, i64::MAX)]);
        assert_eq!(
            id_ranges(i64::MIN, i64::MAX, 2),
            vec![(i64::MIN, 0), (0, i64::MAX)]
        );
        assert_eq!(
            id_ranges(i64::MAX - 1, i64::MAX, 3),
            vec![(i64::MAX - 2, i64::MAX - 1), (i64::MAX - 1, i64::MAX)]
        );
    }

    /// The index built from a store read in several ranges, in small pages, answers as the
    /// scan of every location does; ids have gaps and persons' pings come out of time order.
    #[tokio::test]
    async fn an_index_built_in_ranges_and_pages_answers_as_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = udaconnect_store::sqlite::SqliteLocationStore::open(
            dir.path().join("locations.sqlite3"),
        )
        .unwrap();
        let store: DynLocationStore = Arc::new(sqlite);
        let empty = MemoryEngine::build_in(&store, None, 7, 3, |_| {})
            .await
            .unwrap();
        assert_eq!(empty.read().len(), 0);

        let mut rng = udaconnect_sim::Rng::new(11);
        let mut id = 0;
        let locations: Vec<Location> = (0..600)
            .map(|_| {
                id += 1 + (rng.unit() * 5.0) as i64;
                Location {
                    id,
                    person_id: 1 + (rng.unit() * 6.0) as i64,
                    latitude: 35.0 + rng.unit() * 0.0002,
                    longitude: 139.0 + rng.unit() * 0.0002,
                    creation_time: from_micros(1_600_000_000_000_000 + (rng.unit() * 3.6e9) as i64),
                }
            })
            .collect();
        store.upsert(&locations).await.unwrap();
        let points: Vec<Point> = locations.iter().map(point).collect();
        for (page, readers) in [(7, 3), (1, 2), (1000, 2), (50, 1)] {
            let mut progress = Vec::new();
            let engine =
                MemoryEngine::build_in(&store, Some(600), page, readers, |n| progress.push(n))
                    .await
                    .unwrap();
            assert_eq!(progress.last(), Some(&600));
            assert!(progress.is_sorted());
            let index = engine.read();
            assert_eq!(index.len(), 600);
            for person_id in 1..=6 {
                for max_time_gap_us in [None, Some(300_000_000)] {
                    let q = ConnectionQuery {
                        person_id,
                        window: Window::all(),
                        distance_m: 5.0,
                        max_time_gap_us,
                    };
                    let got: Vec<Point> = index
                        .connections(&q)
                        .into_iter()
                        .map(|s| index.point(s))
                        .collect();
                    let want = contact::connections(&points, &points, &q);
                    assert!(!want.is_empty() || max_time_gap_us.is_some());
                    assert_eq!(got, want, "pages of {page}, {readers} readers, {q:?}");
                }
            }
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
