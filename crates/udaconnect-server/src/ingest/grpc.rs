//! location-api over gRPC: the original `/LocationService/Create` wire contract, and the
//! versioned `udaconnect.location.v1.LocationIngest` with a streaming bulk call. Both go
//! through the same [`Ingest`] as HTTP: same validation, same ids, same durability.
//! Reflection and the standard health service run beside them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::Stream;
use tokio::sync::{mpsc, watch};
use tonic::{Request, Response, Status, Streaming};
use udaconnect_core::auth::Action;
use udaconnect_core::model::Location;
use udaconnect_core::validate;
use udaconnect_core::{Error, ErrorCode};

use crate::access::{Authenticator, Caller};
use crate::http::guard::RateLimiter;
use crate::http::serve::GrpcConn;
use crate::http::{
    correlation_id, new_correlation_id, usable_correlation_id, within_request, RequestContext,
};
use crate::ingest::Ingest;
use crate::metrics::Metrics;

/// Code generated from `proto/`.
pub mod proto {
    /// The original service, which has no package.
    pub mod original {
        tonic::include_proto!("_");
    }
    pub mod v1 {
        tonic::include_proto!("udaconnect.location.v1");
    }
    /// Every file's descriptor, for the reflection service.
    pub const DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/udaconnect_descriptor.bin"));
}

use proto::original::location_service_server::{LocationService, LocationServiceServer};
use proto::original::LocationMessage;
use proto::v1::location_ingest_server::{LocationIngest, LocationIngestServer};
use proto::v1::{BatchResult, FieldViolation, Ping, PingBatch};

/// Batches of one stream validated and made durable ahead of the client reading their results.
const STREAM_BUFFER: usize = 8;
/// How often, and how long at most, the health service asks the log whether it answers.
const LOG_CHECK: Duration = Duration::from_secs(2);

/// The gRPC face of location-api.
#[derive(Clone)]
pub struct GrpcIngest {
    pub ingest: Arc<Ingest>,
    pub metrics: Arc<Metrics>,
    /// Calls per client address, shared with HTTP ingest; `None`: unlimited.
    pub limit: Option<Arc<RateLimiter>>,
    /// Who is asking, from the metadata `authorization` (as HTTP's header).
    pub auth: Arc<Authenticator>,
}

/// A domain error as a gRPC status; the message names every bad field. What failed inside
/// the server (a store's or broker's error text, addresses, paths) goes to the log under the
/// call's correlation id, never to the client.
pub fn status(e: &Error) -> Status {
    let code = e.code();
    if matches!(code, ErrorCode::Internal | ErrorCode::Unavailable) {
        let id = correlation_id().unwrap_or_default();
        if code == ErrorCode::Internal {
            tracing::error!(error = %e, "gRPC call failed");
            return Status::internal(format!(
                "the server failed to answer; the error is logged under correlation id {id}"
            ));
        }
        tracing::warn!(error = %e, "dependency unavailable");
        return Status::unavailable(format!(
            "the server cannot take this now; retry (correlation id {id})"
        ));
    }
    let message = e.to_string();
    match code {
        ErrorCode::NotFound => Status::not_found(message),
        ErrorCode::Conflict => Status::already_exists(message),
        ErrorCode::Unauthenticated => Status::unauthenticated(message),
        ErrorCode::Forbidden => Status::permission_denied(message),
        _ => Status::invalid_argument(message),
    }
}

fn context<T>(request: &Request<T>, method: &str) -> RequestContext {
    let correlation_id = ["x-correlation-id", "correlationid"]
        .iter()
        .find_map(|k| request.metadata().get(*k))
        .and_then(|v| v.to_str().ok())
        .and_then(usable_correlation_id)
        .unwrap_or_else(new_correlation_id);
    RequestContext {
        correlation_id,
        path: method.to_string(),
    }
}

fn to_timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn to_proto(l: &Location) -> proto::v1::Location {
    proto::v1::Location {
        id: l.id,
        person_id: l.person_id,
        latitude: l.latitude,
        longitude: l.longitude,
        creation_time: Some(to_timestamp(l.creation_time)),
    }
}

/// A v1 ping's values, as the shared rules take them.
fn values(p: &Ping) -> validate::V1Ping {
    let time = p.creation_time.as_ref().map(|t| (t.seconds, t.nanos));
    (p.person_id, p.latitude, p.longitude, time)
}

impl GrpcIngest {
    /// Takes a call's token for the client, or refuses it as HTTP would (429 there); finds
    /// who is asking and whether they may call `action` at all (each ping is checked again
    /// for its person): the admitted call's context, caller and message.
    async fn admit<T>(
        &self,
        request: Request<T>,
        method: &str,
        action: Action,
    ) -> Result<(RequestContext, Caller, T), Status> {
        if let (Some(limit), Some(addr)) = (&self.limit, request.remote_addr()) {
            limit
                .take(addr.ip())
                .map_err(|wait| self.too_many(method, wait))?;
        }
        let ctx = context(&request, method);
        let mut headers = axum::http::HeaderMap::new();
        if let Some(v) = request.metadata().get("authorization") {
            if let Ok(v) = axum::http::HeaderValue::from_bytes(v.as_bytes()) {
                headers.insert(axum::http::header::AUTHORIZATION, v);
            }
        }
        let decided = async {
            let (caller, _) = self.auth.caller(&headers).await?;
            caller.may(action, caller.own())?;
            Ok(caller)
        };
        let caller =
            within_request(ctx.clone(), async { self.answered(method, decided.await) }).await?;
        Ok((ctx, caller, request.into_inner()))
    }

    fn too_many(&self, method: &str, wait: Duration) -> Status {
        self.count(method, tonic::Code::ResourceExhausted);
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut s = Status::resource_exhausted(format!(
            "too many ingest requests from this address; retry in {secs} s"
        ));
        if let Ok(v) = secs.to_string().parse() {
            s.metadata_mut().insert("retry-after", v);
        }
        s
    }

    fn count(&self, method: &str, code: tonic::Code) {
        self.metrics
            .grpc_requests
            .get_or_create(&vec![
                ("method", method.to_string()),
                ("code", format!("{code:?}")),
            ])
            .inc();
    }

    /// Runs an admitted call's `work` within its context: its answer, counted, and logged
    /// when refused.
    async fn answer<T>(
        &self,
        ctx: RequestContext,
        method: &str,
        work: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Status> {
        within_request(ctx, async { self.answered(method, work.await) }).await
    }

    fn answered<T>(&self, method: &str, r: Result<T, Error>) -> Result<T, Status> {
        let r = r.map_err(|e| status(&e));
        self.count(
            method,
            r.as_ref().err().map_or(tonic::Code::Ok, Status::code),
        );
        if let Err(s) = &r {
            tracing::info!(method, code = ?s.code(), message = s.message(), "gRPC call rejected");
        }
        r
    }

    /// One batch of a stream: its result, or the status that ends the stream.
    async fn ingest_batch(&self, caller: &Caller, batch: PingBatch) -> Result<BatchResult, Status> {
        let check = validate::v1_batch(batch.pings.iter().map(values));
        match self
            .ingest
            .accept_batch(caller, Action::GrpcIngest, check)
            .await
        {
            Ok(stored) => {
                self.count(
                    "/udaconnect.location.v1.LocationIngest/Ingest",
                    tonic::Code::Ok,
                );
                Ok(BatchResult {
                    sequence: batch.sequence,
                    ids: stored.iter().map(|l| l.id).collect(),
                    violations: Vec::new(),
                })
            }
            Err(e @ (Error::BadRequest(_) | Error::Invalid(_))) => {
                self.count(
                    "/udaconnect.location.v1.LocationIngest/Ingest",
                    tonic::Code::InvalidArgument,
                );
                Ok(BatchResult {
                    sequence: batch.sequence,
                    ids: Vec::new(),
                    violations: e
                        .violations()
                        .iter()
                        .map(|v| FieldViolation {
                            field: v.field.clone(),
                            message: v.message.clone(),
                        })
                        .collect(),
                })
            }
            Err(e) => {
                let s = status(&e);
                self.count("/udaconnect.location.v1.LocationIngest/Ingest", s.code());
                Err(s)
            }
        }
    }
}

#[tonic::async_trait]
impl LocationService for GrpcIngest {
    async fn create(
        &self,
        request: Request<LocationMessage>,
    ) -> Result<Response<LocationMessage>, Status> {
        const METHOD: &str = "/LocationService/Create";
        let (ctx, caller, m) = self
            .admit(request, METHOD, Action::GrpcLegacyCreate)
            .await?;
        let accepted = async {
            // The original sample client sends the axes swapped, and the original server took
            // them: put right, by the rule the import of original data applies.
            let (ping, repaired) = validate::legacy_ping(m.person_id, m.latitude, m.longitude)?;
            if repaired {
                self.metrics.axes_repaired("grpc", 1);
            }
            self.ingest
                .accept(&caller, Action::GrpcLegacyCreate, vec![ping], false)
                .await
        };
        self.answer(ctx, METHOD, accepted).await?;
        // The original answers with the message it took; so does this, once it is durable.
        Ok(Response::new(m))
    }
}

type ResultStream = Pin<Box<dyn Stream<Item = Result<BatchResult, Status>> + Send>>;

#[tonic::async_trait]
impl LocationIngest for GrpcIngest {
    async fn create(
        &self,
        request: Request<Ping>,
    ) -> Result<Response<proto::v1::Location>, Status> {
        const METHOD: &str = "/udaconnect.location.v1.LocationIngest/Create";
        let (ctx, caller, p) = self.admit(request, METHOD, Action::GrpcCreate).await?;
        let accepted = async {
            let ping = validate::v1_ping(values(&p))?;
            self.ingest
                .accept(&caller, Action::GrpcCreate, vec![ping], false)
                .await
        };
        let stored = self.answer(ctx, METHOD, accepted).await?;
        Ok(Response::new(
            stored.first().map(to_proto).unwrap_or_default(),
        ))
    }

    type IngestStream = ResultStream;

    async fn ingest(
        &self,
        request: Request<Streaming<PingBatch>>,
    ) -> Result<Response<Self::IngestStream>, Status> {
        let (ctx, caller, mut inbound) = self
            .admit(
                request,
                "/udaconnect.location.v1.LocationIngest/Ingest",
                Action::GrpcIngest,
            )
            .await?;
        let (tx, mut rx) = mpsc::channel::<Result<BatchResult, Status>>(STREAM_BUFFER);
        let this = self.clone();
        tokio::spawn(within_request(ctx, async move {
            loop {
                let batch = match inbound.message().await {
                    Ok(Some(b)) => b,
                    Ok(None) => break,
                    Err(s) => {
                        tracing::debug!(code = ?s.code(), "ingest stream ended by the client");
                        break;
                    }
                };
                let result = this.ingest_batch(&caller, batch).await;
                let end = result.is_err();
                if tx.send(result).await.is_err() || end {
                    break;
                }
            }
        }));
        let out = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(Response::new(Box::pin(out)))
    }
}

/// Serves the gRPC services to the clients `incoming` hands over until `shutdown` turns true.
/// The health service says whether ingest can take pings: whether the log answers, asked
/// every two seconds.
pub async fn serve(
    incoming: impl Stream<Item = std::io::Result<GrpcConn>> + Send + 'static,
    service: GrpcIngest,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::DESCRIPTOR_SET)
        .build_v1()?;
    // Older clients (grpcurl before 1.8, many GUIs) ask the v1alpha service only.
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::DESCRIPTOR_SET)
        .build_v1alpha()?;
    let log = service.ingest.log.clone();
    let report = move |serving: bool| {
        let health = health.clone();
        async move {
            let status = if serving {
                tonic_health::ServingStatus::Serving
            } else {
                tonic_health::ServingStatus::NotServing
            };
            for name in [
                "",
                "LocationService",
                "udaconnect.location.v1.LocationIngest",
            ] {
                health.set_service_status(name, status).await;
            }
        }
    };
    let log_answers = move || {
        let log = log.clone();
        async move {
            matches!(
                tokio::time::timeout(LOG_CHECK, log.ping()).await,
                Ok(Ok(()))
            )
        }
    };
    // Known before the first call is taken.
    let mut serving = log_answers().await;
    report(serving).await;
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(LOG_CHECK) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let now = log_answers().await;
            if now != serving {
                serving = now;
                report(serving).await;
            }
        }
    });
    tracing::info!("gRPC is serving");
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(LocationServiceServer::new(service.clone()))
        .add_service(LocationIngestServer::new(service))
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What failed inside (a path, an address, a driver's words) stays in the log; the client
    /// is told the kind of failure and the correlation id to quote.
    #[tokio::test]
    async fn internal_failures_keep_their_text_from_the_client() {
        let ctx = RequestContext {
            correlation_id: "c0ffee".into(),
            path: "/LocationService/Create".into(),
        };
        let (internal, unavailable) = within_request(ctx, async {
            (
                status(&Error::Internal(
                    "sqlite: disk I/O error at /var/lib/udaconnect/locations.sqlite3".into(),
                )),
                status(&Error::Unavailable(
                    "kafka: broker 10.1.2.3:9092 refused the connection".into(),
                )),
            )
        })
        .await;
        assert_eq!(internal.code(), tonic::Code::Internal);
        assert_eq!(unavailable.code(), tonic::Code::Unavailable);
        for s in [&internal, &unavailable] {
            assert!(s.message().contains("c0ffee"), "{}", s.message());
            for secret in ["sqlite", "/var/lib", "kafka", "10.1.2.3"] {
                assert!(!s.message().contains(secret), "{}", s.message());
            }
        }
        // What the client got wrong is still named.
        let invalid = status(&Error::invalid("latitude", "91 is outside [-90, 90]"));
        assert_eq!(invalid.code(), tonic::Code::InvalidArgument);
        assert!(invalid.message().contains("latitude"));
    }
}
