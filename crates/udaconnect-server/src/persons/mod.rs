//! How roles ask person-api about persons: through [`PersonDirectory`], in-process when
//! person-api runs in the same process, over the network otherwise. Callers never know which.
//!
//! - [`http`]: person-api's HTTP handlers.

pub mod http;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use rustc_hash::FxBuildHasher;
use udaconnect_core::model::{Person, PersonId};
use udaconnect_core::ports::DynPersonStore;
use udaconnect_core::Result;

#[async_trait]
pub trait PersonDirectory: Send + Sync + 'static {
    /// The ids among `ids` that name no person.
    async fn missing(&self, ids: &[PersonId]) -> Result<Vec<PersonId>>;
    /// The persons among `ids` that exist, in id order.
    async fn get_many(&self, ids: &[PersonId]) -> Result<Vec<Person>>;
    /// [`Self::get_many`], each person as the JSON that answers carry.
    async fn json_many(&self, ids: &[PersonId]) -> Result<Vec<(PersonId, Bytes)>> {
        Ok(self
            .get_many(ids)
            .await?
            .iter()
            .map(|p| (p.id, person_json(p)))
            .collect())
    }
}

pub fn person_json(p: &Person) -> Bytes {
    Bytes::from(serde_json::to_vec(p).unwrap_or_default())
}

/// A person read, and its JSON, made once: a large connection answer names a thousand persons.
struct Cached {
    person: Person,
    json: Bytes,
}

pub type DynPersonDirectory = Arc<dyn PersonDirectory>;

/// person-api in the same process. Remembers the persons it has read: persons are never
/// removed or changed while serving, and ingest and queries ask about the same few thousand
/// attendees all day.
pub struct LocalPersons {
    store: DynPersonStore,
    known: RwLock<HashSet<PersonId>>,
    read: RwLock<HashMap<PersonId, Cached, FxBuildHasher>>,
}

impl LocalPersons {
    pub fn new(store: DynPersonStore) -> Self {
        LocalPersons {
            store,
            known: RwLock::new(HashSet::new()),
            read: RwLock::new(HashMap::default()),
        }
    }
}

#[async_trait]
impl PersonDirectory for LocalPersons {
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
        let found = self.store.get_many(&unknown).await?;
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

impl LocalPersons {
    /// `take` of each person among `ids` that exists, in id order; the ones not read before
    /// are read from the store and kept.
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
            let fetched = self.store.get_many(&missing).await?;
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
