//! How roles ask person-api about persons: through [`PersonDirectory`], in-process when
//! person-api runs in the same process, over the network otherwise. Callers never know which.

use std::collections::HashSet;
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

/// person-api in the same process. Remembers ids it has seen exist: persons are never removed,
/// and ingest asks about the same few thousand attendees all day.
pub struct LocalPersons {
    store: DynPersonStore,
    known: RwLock<HashSet<PersonId>>,
}

impl LocalPersons {
    pub fn new(store: DynPersonStore) -> Self {
        LocalPersons {
            store,
            known: RwLock::new(HashSet::new()),
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
        self.store.get_many(ids).await
    }
}
