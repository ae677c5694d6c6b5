//! The in-memory engine: the contact index, built from the store at start and fed with every
//! stored batch after it is durable.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use udaconnect_core::cancel::{Cancel, Cancelled};
use udaconnect_core::contact::{ConnectionQuery, Contact, Point};
use udaconnect_core::index::{BulkBuilder, ContactIndex, PreparedPage, SlotPin};
use udaconnect_core::model::PersonId;
use udaconnect_core::ports::{DynLocationStore, LocationScan};
use udaconnect_core::time::Window;
use udaconnect_core::track::TrackQuery;
use udaconnect_core::{Error, Result};

use crate::query::engine::{ContactEngine, Rows, SharedIndex, Span};
use crate::query::workers::RayonWorkers;

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
        if !index.pin_current(&self.pin) {
            // The index was rebuilt without an erased person since the answer began: its
            // slots name nothing now, and the answer ends short.
            return;
        }
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
    /// store is read in `BUILD_READERS` id ranges at once, each reading its next page while
    /// its current one is prepared; the builder takes pages as they come. `expected`, when
    /// known (the log's length bounds the store's), sizes the index without counting the
    /// store, which costs a full scan of an index at tens of millions of rows.
    pub async fn build(
        store: &DynLocationStore,
        expected: Option<u64>,
        progress: impl FnMut(u64),
    ) -> Result<Self> {
        let index = Self::build_index(store, expected, progress).await?;
        Ok(MemoryEngine {
            index: Arc::new(RwLock::new(index)),
        })
    }

    /// [`Self::build`]'s index, for a caller that shares it otherwise.
    pub async fn build_index(
        store: &DynLocationStore,
        expected: Option<u64>,
        progress: impl FnMut(u64),
    ) -> Result<ContactIndex> {
        build_in(store, expected, BUILD_PAGE, BUILD_READERS, progress).await
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, ContactIndex> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }
}

async fn build_in(
    store: &DynLocationStore,
    expected: Option<u64>,
    page: usize,
    readers: i64,
    mut progress: impl FnMut(u64),
) -> Result<ContactIndex> {
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
    tokio::task::spawn_blocking(move || builder.finish())
        .await
        .map_err(|e| Error::Internal(e.to_string()))
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
        tokio::spawn(async move {
            store
                .scan(LocationScan {
                    after,
                    until,
                    limit: page_size,
                })
                .await
        })
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
        let prepared = PreparedPage::new(page.iter().map(Point::from));
        if pages.send(Ok(prepared)).await.is_err() {
            return;
        }
    }
}

/// Runs `work` on a blocking thread, cancelled (its flag raised) if the caller's future is
/// dropped first: a client gone or a deadline passed stops the work within a few thousand
/// candidates instead of letting it run to the end for nobody.
pub(crate) async fn until_dropped<T: Send + 'static>(
    work: impl FnOnce(&Cancel) -> std::result::Result<T, Cancelled> + Send + 'static,
) -> Result<T> {
    let cancel = Cancel::new();
    let guard = cancel.on_drop();
    let answer = tokio::task::spawn_blocking(move || work(&cancel))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    guard.disarm();
    answer.map_err(|_| Error::Unavailable("query (cancelled)".into()))
}

#[async_trait]
impl ContactEngine for MemoryEngine {
    async fn connections(&self, q: ConnectionQuery) -> Result<Box<dyn Rows>> {
        // Queries are CPU work of milliseconds: run them where they do not hold up the
        // reactor's other connections.
        let index = self.index.clone();
        let (pin, (slots, persons)) = until_dropped(move |cancel| {
            let index = index.read().unwrap_or_else(|e| e.into_inner());
            Ok((index.pin(), index.connections_until(&q, cancel)?))
        })
        .await?;
        Ok(Box::new(IndexRows {
            index: self.index.clone(),
            pin,
            slots,
            persons,
        }))
    }

    async fn contacts(&self, q: TrackQuery) -> Result<Vec<Contact>> {
        let index = self.index.clone();
        until_dropped(move |cancel| {
            let index = index.read().unwrap_or_else(|e| e.into_inner());
            index.track_contacts_until(&q, cancel)
        })
        .await
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

#[cfg(test)]
mod tests {
    use super::*;
    use udaconnect_core::contact;
    use udaconnect_core::model::Location;
    use udaconnect_core::time::from_micros;

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
        let empty = build_in(&store, None, 7, 3, |_| {}).await.unwrap();
        assert_eq!(empty.len(), 0);

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
                    accuracy_m: None,
                    telemetry: Default::default(),
                }
            })
            .collect();
        store.upsert(&locations).await.unwrap();
        let points: Vec<Point> = locations.iter().map(Point::from).collect();
        for (page, readers) in [(7, 3), (1, 2), (1000, 2), (50, 1)] {
            let mut progress = Vec::new();
            let index = build_in(&store, Some(600), page, readers, |n| progress.push(n))
                .await
                .unwrap();
            assert_eq!(progress.last(), Some(&600));
            assert!(progress.is_sorted());
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
}
