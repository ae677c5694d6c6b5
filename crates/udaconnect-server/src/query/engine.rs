//! What answers connection-api's queries: the [`ContactEngine`] port of the query side, the rows
//! of an answer, and the conversions between stored locations and the index's points.

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use udaconnect_core::contact::{ConnectionQuery, Contact, Point};
use udaconnect_core::index::ContactIndex;
use udaconnect_core::model::PersonId;
use udaconnect_core::time::Window;
use udaconnect_core::track::TrackQuery;
use udaconnect_core::Result;

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
    /// The contacts over tracks (see [`udaconnect_core::track`]), equal to the oracle's.
    async fn contacts(&self, q: TrackQuery) -> Result<Vec<Contact>>;
    /// The time span of a person's pings in `window`, if any.
    async fn span(&self, person_id: PersonId, window: Window) -> Result<Option<Span>>;
}

pub type DynContactEngine = Arc<dyn ContactEngine>;
