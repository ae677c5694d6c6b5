//! The connection layer: accepts clients for the HTTP router and the gRPC services, holds at
//! most a capped number of connections (below the open-files limit, so the stores and the log
//! always find a file), closes silent, slow and idle ones, and stops within a deadline.
//!
//! A connection waits for a request for at most `idle_timeout` (hyper's header timer, which
//! runs from the connection's start or the end of the previous answer); once a request's
//! first byte has come, its head has `header_timeout` to arrive whole (timed here, from the
//! bytes the socket reads). A connection with no request under way is idle. At the cap, a new client takes the place
//! of the connection idle longest, as a browser's spare keep-alive connections are worth less
//! than a new client's first request; when every connection is busy, the new one is closed.
//! At a stop, event streams end at once, other requests get `shutdown_timeout` to finish,
//! and what is left then is cut off.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::header;
use axum::response::Response;
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::http::guard::ClientAddr;
use crate::metrics::Metrics;

/// How the HTTP listener treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionRules {
    pub cap: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub shutdown_timeout: Duration,
}

/// One open connection, as the accept loop and its own task see it.
struct Conn {
    /// Requests whose answer is not yet fully sent.
    in_flight: AtomicUsize,
    /// Milliseconds since `Registry::epoch` when the last answer ended (or the connection
    /// opened): how long it has been idle.
    last_active: AtomicU64,
    /// Asks the connection's task to close it (evicted for a new client).
    close: Notify,
    /// Milliseconds since `Registry::epoch` (plus one) when the first byte of a request head
    /// arrived; 0 while none is being read.
    head_started: AtomicU64,
    /// Tells the connection's task a head has begun, so it sets the head's deadline.
    head_begun: Notify,
}

/// The open connections of one listener.
struct Registry {
    epoch: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn open(&self) -> (u64, Arc<Conn>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            last_active: AtomicU64::new(self.now_ms()),
            close: Notify::new(),
            head_started: AtomicU64::new(0),
            head_begun: Notify::new(),
        });
        self.lock().insert(id, conn.clone());
        (id, conn)
    }

    /// Takes the connection idle longest out of the count and asks it to close; `false` when
    /// every connection is busy.
    fn evict_idle(&self) -> bool {
        let mut conns = self.lock();
        let oldest = conns
            .iter()
            .filter(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.last_active.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        match oldest.and_then(|id| conns.remove(&id)) {
            Some(conn) => {
                conn.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Marks a request under way on its connection until its answer is sent or dropped.
struct InFlight {
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl InFlight {
    fn new(conn: Arc<Conn>, registry: Arc<Registry>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::AcqRel);
        conn.head_started.store(0, Ordering::Relaxed);
        InFlight { conn, registry }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.conn
            .last_active
            .store(self.registry.now_ms(), Ordering::Relaxed);
        self.conn.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body that keeps its request counted as under way until it is sent, and, for
/// an event stream, ends when the server stops (a stream never ends by itself, and a stop
/// must not wait for it).
struct Tracked {
    inner: Body,
    _in_flight: InFlight,
    stop: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if let Some(stop) = this.stop.as_mut() {
            if stop.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
        }
        Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Implements `AsyncWrite` (and with `read`, `AsyncRead`) for a connection wrapper by handing
/// every call to its `tcp` field: the wrappers watch or count a connection, never its bytes.
macro_rules! through_tcp {
    (read $wrapper:ty) => {
        impl tokio::io::AsyncRead for $wrapper {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> Poll<std::io::Result<()>> {
                Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
            }
        }
        through_tcp!($wrapper);
    };
    ($wrapper:ty) => {
        impl tokio::io::AsyncWrite for $wrapper {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<std::io::Result<usize>> {
                Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
                Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
            }

            fn poll_shutdown(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<std::io::Result<()>> {
                Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> Poll<std::io::Result<usize>> {
                Pin::new(&mut self.get_mut().tcp).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.tcp.is_write_vectored()
            }
        }
    };
}

/// The client's socket, noting when the first byte of a request head arrives: from then the
/// head has `header_timeout` to arrive whole.
struct Watched {
    tcp: TcpStream,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.tcp).poll_read(cx, buf);
        let conn = &this.conn;
        if buf.filled().len() > before
            && conn.in_flight.load(Ordering::Acquire) == 0
            && conn.head_started.load(Ordering::Relaxed) == 0
        {
            conn.head_started
                .store(this.registry.now_ms() + 1, Ordering::Relaxed);
            conn.head_begun.notify_one();
        }
        read
    }
}

through_tcp!(Watched);

fn stopped(mut stop: watch::Receiver<bool>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        let _ = stop.wait_for(|s| *s).await;
    })
}

/// The next client of `listener`; `None` once `stop` turns true.
async fn next_client(
    listener: &TcpListener,
    stop: &mut watch::Receiver<bool>,
    name: &str,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return None,
        };
        match accepted {
            Ok(client) => return Some(client),
            Err(e) => {
                // Out of files or memory for a moment: wait instead of spinning.
                tracing::warn!(error = %e, listener = name, "failed to accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves `router` on `listener` under `rules` until `stop` turns true, then drains.
pub async fn serve_http(
    listener: TcpListener,
    router: Router,
    rules: ConnectionRules,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let registry = Arc::new(Registry {
        epoch: Instant::now(),
        next_id: AtomicU64::new(0),
        conns: Mutex::new(HashMap::new()),
    });
    let open = metrics
        .connections_open
        .get_or_create(&vec![("listener", "http".to_string())])
        .clone();
    let mut tasks = JoinSet::new();
    loop {
        let Some((tcp, peer)) = next_client(&listener, &mut stop, "http").await else {
            break;
        };
        while tasks.try_join_next().is_some() {}
        if registry.len() >= rules.cap {
            if registry.evict_idle() {
                closed(&metrics, "evicted");
            } else {
                closed(&metrics, "over_cap");
                continue;
            }
        }
        // Without TCP_NODELAY a streamed answer's last small write waits for the client's
        // delayed ACK: 40 ms added to an answer that took one.
        let _ = tcp.set_nodelay(true);
        let (id, conn) = registry.open();
        open.inc();
        let (router, registry, metrics, stop, open) = (
            router.clone(),
            registry.clone(),
            metrics.clone(),
            stop.clone(),
            open.clone(),
        );
        tasks.spawn(async move {
            serve_connection(tcp, peer, router, &conn, &registry, rules, &metrics, stop).await;
            registry.lock().remove(&id);
            open.dec();
        });
    }
    drop(listener);
    // Each connection saw the stop: idle ones closed, busy ones finish their answer.
    let drained = tokio::time::timeout(rules.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = tasks.len(),
            "requests still under way at the shutdown deadline; cut off"
        );
        for _ in 0..tasks.len() {
            closed(&metrics, "shutdown");
        }
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    Ok(())
}

fn closed(metrics: &Metrics, reason: &str) {
    metrics
        .connections_closed
        .get_or_create(&vec![("reason", reason.to_string())])
        .inc();
}

#[allow(clippy::too_many_arguments)]
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    conn: &Arc<Conn>,
    registry: &Arc<Registry>,
    rules: ConnectionRules,
    metrics: &Metrics,
    mut stop: watch::Receiver<bool>,
) {
    let service = {
        let (conn, registry, stop) = (conn.clone(), registry.clone(), stop.clone());
        hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
            let in_flight = InFlight::new(conn.clone(), registry.clone());
            request.extensions_mut().insert(ClientAddr(peer));
            let (router, stop) = (router.clone(), stop.clone());
            async move {
                let response: Response = match router.oneshot(request.map(Body::new)).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                let streams = response
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
                Ok::<_, Infallible>(response.map(|inner| {
                    Body::new(Tracked {
                        inner,
                        _in_flight: in_flight,
                        stop: streams.then(|| stopped(stop)),
                    })
                }))
            }
        })
    };
    // hyper's header timer runs while a connection waits for a request head, from its start
    // or the end of the previous answer: the idle limit. A head, once begun, is timed here.
    let io = Watched {
        tcp,
        conn: conn.clone(),
        registry: registry.clone(),
    };
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(rules.idle_timeout)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut stopping = false;
    let head_deadline = || match conn.head_started.load(Ordering::Relaxed) {
        0 => None,
        _ if conn.in_flight.load(Ordering::Acquire) > 0 => None,
        started => Some(registry.epoch + Duration::from_millis(started - 1) + rules.header_timeout),
    };
    loop {
        let wake = head_deadline();
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    if e.is_timeout() {
                        closed(metrics, "idle");
                    }
                    tracing::debug!(error = %e, client = %peer, "connection ended");
                }
                return;
            }
            _ = conn.close.notified() => {
                if conn.in_flight.load(Ordering::Acquire) == 0 {
                    return;
                }
                // A request came in after it was chosen: let that answer finish.
                connection.as_mut().graceful_shutdown();
            }
            // A head began: loop to set its deadline.
            _ = conn.head_begun.notified() => {}
            _ = sleep_until_some(wake) => {
                if head_deadline().is_some_and(|d| Instant::now() >= d) {
                    closed(metrics, "slow_header");
                    return;
                }
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// Sleeps until `at`, or forever when there is no deadline.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A gRPC client connection, counted against the gRPC cap while it is open.
pub struct GrpcConn {
    tcp: TcpStream,
    _slot: tokio::sync::OwnedSemaphorePermit,
    _open: OpenGauge,
}

struct OpenGauge(prometheus_client::metrics::gauge::Gauge);

impl Drop for OpenGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl tonic::transport::server::Connected for GrpcConn {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::Connected::connect_info(&self.tcp)
    }
}

through_tcp!(read GrpcConn);

/// gRPC's clients: at most `cap` at once (beyond it the accept waits, so the kernel's backlog
/// holds the rest), and a client that sends nothing within `idle_timeout` of connecting is
/// closed before the gRPC server sees it. Ends when `stop` turns true.
pub fn grpc_incoming(
    listener: TcpListener,
    cap: usize,
    idle_timeout: Duration,
    metrics: Arc<Metrics>,
    mut stop: watch::Receiver<bool>,
) -> impl futures_util::Stream<Item = std::io::Result<GrpcConn>> + Send + 'static {
    let (tx, mut rx) = mpsc::channel::<std::io::Result<GrpcConn>>(16);
    let slots = Arc::new(tokio::sync::Semaphore::new(cap.max(1)));
    let open = metrics
        .connections_open
        .get_or_create(&vec![("listener", "grpc".to_string())])
        .clone();
    tokio::spawn(async move {
        loop {
            let slot = tokio::select! {
                s = slots.clone().acquire_owned() => match s {
                    Ok(s) => s,
                    Err(_) => return,
                },
                _ = stop.wait_for(|s| *s) => return,
            };
            let Some((tcp, peer)) = next_client(&listener, &mut stop, "grpc").await else {
                return;
            };
            let _ = tcp.set_nodelay(true);
            open.inc();
            let conn = GrpcConn {
                tcp,
                _slot: slot,
                _open: OpenGauge(open.clone()),
            };
            let (tx, metrics) = (tx.clone(), metrics.clone());
            tokio::spawn(async move {
                // An HTTP/2 client speaks first (its preface): silence is a client to drop.
                match tokio::time::timeout(idle_timeout, conn.tcp.readable()).await {
                    Ok(Ok(())) => {
                        let _ = tx.send(Ok(conn)).await;
                    }
                    _ => {
                        closed(&metrics, "silent");
                        tracing::debug!(client = %peer, "gRPC client sent nothing; closed");
                    }
                }
            });
        }
    });
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
