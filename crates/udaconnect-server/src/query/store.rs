//! The engines without an index, reading the store on every query: [`StoreEngine`] (one
//! set-based statement on PostGIS per query) and [`ScanEngine`] (the whole window, the
//! benchmark's baseline). Both answer contacts over tracks with [`track_contacts`]: the pings
//! that decide the pieces, read from the store, then the core's exact computation.

use async_trait::async_trait;
use std::sync::Arc;

use udaconnect_core::contact::{self, ConnectionQuery, Contact, Point};
use udaconnect_core::index::{ContactIndex, Threads};
use udaconnect_core::model::PersonId;
use udaconnect_core::ports::{DynLocationStore, NearQuery};
use udaconnect_core::time::Window;
use udaconnect_core::track::{track_read_window, TrackQuery};
use udaconnect_core::Result;

use crate::query::engine::{ContactEngine, Rows, Span};
use crate::query::memory::until_dropped;

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
            .map(Point::from)
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

    async fn contacts(&self, q: TrackQuery) -> Result<Vec<Contact>> {
        track_contacts(&self.store, &q).await
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
            near.own.iter().map(Point::from).collect(),
            near.candidates.iter().map(Point::from).collect(),
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

    async fn contacts(&self, q: TrackQuery) -> Result<Vec<Contact>> {
        track_contacts(&self.store, &q).await
    }

    async fn span(&self, person_id: PersonId, window: Window) -> Result<Option<Span>> {
        ScanEngine {
            store: self.store.clone(),
        }
        .span(person_id, window)
        .await
    }
}

/// Contacts over tracks from the store: every ping in the query's [`track_read_window`]
/// (complete tracks there, so every piece is cut as over all pings), indexed for this query,
/// then the index's exact answer, with no bound on how long a piece may be.
/// [`LocationStore::near_tracks`](udaconnect_core::ports::LocationStore::near_tracks) with
/// [`udaconnect_core::track::contacts_from_near`] is the narrower read for a bounded reach.
pub async fn track_contacts(store: &DynLocationStore, q: &TrackQuery) -> Result<Vec<Contact>> {
    let points: Vec<Point> = store
        .in_window(track_read_window(q), None)
        .await?
        .iter()
        .map(Point::from)
        .collect();
    let q = *q;
    until_dropped(move |cancel| {
        let n = points.len();
        ContactIndex::bulk(points, n, Arc::new(Threads::new(1))).track_contacts_until(&q, cancel)
    })
    .await
}
