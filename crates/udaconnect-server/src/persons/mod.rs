//! How roles ask person-api about persons: through [`PersonDirectory`], in-process when
//! person-api runs in the same process ([`LocalPersons`]), over HTTP otherwise
//! ([`RemotePersons`]). Callers never know which; both keep the same cache.
//!
//! - [`cache`]: the directory over any source of persons, with its cache.
//! - [`remote`]: person-api reached over HTTP (`POST /api/persons/lookup`).
//! - [`http`]: person-api's HTTP handlers.
//! - [`erase`]: erasing a person from every store, the contact index and the log.

pub mod cache;
pub mod erase;
pub mod http;
pub mod remote;

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Bytes;
use udaconnect_core::model::{Person, PersonId};
use udaconnect_core::ports::DynPersonStore;
use udaconnect_core::Result;

pub use cache::CachedPersons;
pub use remote::PersonApiClient;

#[async_trait]
pub trait PersonDirectory: Send + Sync + 'static {
    /// The ids among `ids` that name no person.
    async fn missing(&self, ids: &[PersonId]) -> Result<Vec<PersonId>>;
    /// The persons among `ids` that exist, in id order.
    async fn get_many(&self, ids: &[PersonId]) -> Result<Vec<Person>>;
    /// Forgets what it remembers of the person: they were erased.
    fn forget(&self, id: PersonId);
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

pub type DynPersonDirectory = Arc<dyn PersonDirectory>;

/// person-api in the same process: its store, read directly.
pub type LocalPersons = CachedPersons<DynPersonStore>;

/// person-api in another process, over HTTP.
pub type RemotePersons = CachedPersons<PersonApiClient>;
