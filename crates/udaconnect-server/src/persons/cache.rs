//! The person directory over any source of persons, remembering what it has read: persons are
//! never changed while serving (only erased, which the erasure tells the directory of its own
//! process), and ingest and queries ask about the same few thousand attendees all day. In `serve` the source is person-api's store; apart, person-api
//! over HTTP, where the cache also spares a round trip per ping.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use async_trait::async_trait;
use axum::body::Bytes;
use rustc_hash::FxBuildHasher;
use udaconnect_core::model::{Person, PersonId};
use udaconnect_core::ports::DynPersonStore;
use udaconnect_core::Result;

use crate::persons::{person_json, PersonDirectory};

/// Where a directory reads the persons it has not read before.
#[async_trait]
pub trait PersonSource: Send + Sync + 'static {
    /// The persons among `ids` (sorted, without repeats) that exist, in id order. An error
    /// means the source did not answer, never that a person is unknown.
    async fn fetch(&self, ids: &[PersonId]) -> Result<Vec<Person>>;
}

#[async_trait]
impl PersonSource for DynPersonStore {
    async fn fetch(&self, ids: &[PersonId]) -> Result<Vec<Person>> {
        self.get_many(ids).await
    }
}

/// A person read, and its JSON, made once: a large connection answer names a thousand persons.
struct Cached {
    person: Person,
    json: Bytes,
}

pub struct CachedPersons<S> {
    source: S,
    /// Ids known to name a person.
    known: RwLock<HashSet<PersonId>>,
    /// Persons read whole.
    read: RwLock<HashMap<PersonId, Cached, FxBuildHasher>>,
}

impl<S: PersonSource> CachedPersons<S> {
    pub fn new(source: S) -> Self {
        CachedPersons {
            source,
            known: RwLock::new(HashSet::new()),
            read: RwLock::new(HashMap::default()),
        }
    }

    /// `take` of each person among `ids` that exists, in id order; the ones not read before
    /// are read from the source and kept.
    async fn cached<T>(&self, ids: &[PersonId], take: impl Fn(&Cached) -> T) -> Result<Vec<T>> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        // Once persons have been read, every one asked for usually is: one pass, one look-up
        // each (a 3-day answer at 10,000 attendees names thousands).
        let missing: Vec<PersonId> = {
            let read = self.read.read().unwrap_or_else(|e| e.into_inner());
            let mut known = Vec::with_capacity(ids.len());
            let mut missing = Vec::new();
            for id in &ids {
                match read.get(id) {
                    Some(c) => known.push(take(c)),
                    None => missing.push(*id),
                }
            }
            if missing.is_empty() {
                return Ok(known);
            }
            missing
        };
        {
            let fetched = self.source.fetch(&missing).await?;
            let mut read = self.read.write().unwrap_or_else(|e| e.into_inner());
            for p in fetched {
                let json = person_json(&p);
                read.insert(p.id, Cached { person: p, json });
            }
        }
        let read = self.read.read().unwrap_or_else(|e| e.into_inner());
        Ok(ids
            .iter()
            .filter_map(|id| read.get(id).map(&take))
            .collect())
    }
}

#[async_trait]
impl<S: PersonSource> PersonDirectory for CachedPersons<S> {
    fn forget(&self, id: PersonId) {
        self.known
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        self.read
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    async fn missing(&self, ids: &[PersonId]) -> Result<Vec<PersonId>> {
        let mut unknown: Vec<PersonId> = {
            let known = self.known.read().unwrap_or_else(|e| e.into_inner());
            ids.iter()
                .copied()
                .filter(|id| !known.contains(id))
                .collect()
        };
        if unknown.is_empty() {
            return Ok(unknown);
        }
        unknown.sort_unstable();
        unknown.dedup();
        let found = self.source.fetch(&unknown).await?;
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        known.extend(found.iter().map(|p| p.id));
        Ok(unknown
            .into_iter()
            .filter(|id| !known.contains(id))
            .collect())
    }

    async fn get_many(&self, ids: &[PersonId]) -> Result<Vec<Person>> {
        self.cached(ids, |c| c.person.clone()).await
    }

    async fn json_many(&self, ids: &[PersonId]) -> Result<Vec<(PersonId, Bytes)>> {
        self.cached(ids, |c| (c.person.id, c.json.clone())).await
    }
}
