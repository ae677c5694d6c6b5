//! How roles ask person-api about persons: through [`PersonDirectory`], in-process when
//! person-api runs in the same process, over the network otherwise. Callers never know which.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use udaconnect_core::model::{Person, PersonId};
use udaconnect_core::ports::DynPersonStore;
use udaconnect_core::Result;

#[async_trait]
pub trait PersonDirectory: Send + Sync + 'static {
    /// The ids among `ids` that name no person.
    async fn missing(&self, ids: &[PersonId]) -> Result<Vec<PersonId>>;
    /// The persons among `ids` that exist, in id order.
    async fn get_many(&self, ids: &[PersonId]) -> Result<Vec<Person>>;
}

pub type DynPersonDirectory = Arc<dyn PersonDirectory>;

/// person-api in the same process. Remembers the persons it has read: persons are never
/// removed or changed while serving, and ingest and queries ask about the same few thousand
/// attendees all day.
pub struct LocalPersons {
    store: DynPersonStore,
    known: RwLock<HashSet<PersonId>>,
    read: RwLock<HashMap<PersonId, Person>>,
}

impl LocalPersons {
    pub fn new(store: DynPersonStore) -> Self {
        LocalPersons {
            store,
            known: RwLock::new(HashSet::new()),
            read: RwLock::new(HashMap::new()),
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
        let mut found = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        {
            let read = self.read.read().unwrap_or_else(|e| e.into_inner());
            for id in ids {
                match read.get(id) {
                    Some(p) => found.push(p.clone()),
                    None => missing.push(*id),
                }
            }
        }
        if !missing.is_empty() {
            let fetched = self.store.get_many(&missing).await?;
            let mut read = self.read.write().unwrap_or_else(|e| e.into_inner());
            for p in fetched {
                read.insert(p.id, p.clone());
                found.push(p);
            }
        }
        found.sort_unstable_by_key(|p| p.id);
        found.dedup_by_key(|p| p.id);
        Ok(found)
    }
}
