//! person-api in another process: the persons a role asks about, read with
//! `POST /api/persons/lookup` (a 3-day answer names thousands of persons, too many for a query
//! string), at most [`MAX_LOOKUP_IDS`] per call.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use udaconnect_core::model::{Person, PersonId};
use udaconnect_core::{Error, Result};

use crate::http::upstream::Upstream;
use crate::persons::cache::PersonSource;
use crate::persons::http::MAX_LOOKUP_IDS;

/// How long one lookup may take before person-api counts as unavailable.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read: 10,000 persons of three 256-character names, with room to spare.
const ANSWER_LIMIT: usize = 64 << 20;

pub struct PersonApiClient {
    person_api: Arc<Upstream>,
}

impl PersonApiClient {
    pub fn new(person_api: Arc<Upstream>) -> Self {
        PersonApiClient { person_api }
    }

    async fn lookup(&self, ids: &[PersonId]) -> Result<Vec<Person>> {
        let unavailable = |why: String| self.person_api.unavailable(why);
        let body = serde_json::to_vec(&serde_json::json!({ "ids": ids }))
            .map_err(|e| Error::Internal(e.to_string()))?;
        let uri = self
            .person_api
            .uri("/api/persons/lookup")
            .map_err(|e| Error::Internal(e.to_string()))?;
        let mut request = Request::new(Body::from(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        request.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        self.person_api
            .present_own(&mut request)
            .await
            .map_err(|e| unavailable(format!("this role's own credential: {e}")))?;
        let answer = async {
            let response = self
                .person_api
                .send(request)
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), ANSWER_LIMIT)
                .await
                .map_err(|e| unavailable(format!("answer cut off: {e}")))?;
            Ok::<_, Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(LOOKUP_TIMEOUT, answer)
            .await
            .map_err(|_| unavailable("timed out".into()))??;
        match status {
            StatusCode::OK => serde_json::from_slice(&bytes)
                .map_err(|e| Error::Internal(format!("person-api's lookup answer: {e}"))),
            // Starting, or its store is away: it answers again soon.
            s if s.is_server_error() => Err(unavailable(format!("answered {s}"))),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(unavailable(format!(
                "answered {status} to this role's lookup: give it an organizer's token \
                 (--service-token) and, where person-api is behind the gateway, the \
                 gateway's key (--gateway-key-file)"
            ))),
            s => Err(Error::Internal(format!(
                "person-api answered {s} to a lookup: {}",
                String::from_utf8_lossy(&bytes)
            ))),
        }
    }
}

#[async_trait]
impl PersonSource for PersonApiClient {
    async fn fetch(&self, ids: &[PersonId]) -> Result<Vec<Person>> {
        let mut persons = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_LOOKUP_IDS) {
            persons.extend(self.lookup(chunk).await?);
        }
        Ok(persons)
    }
}
