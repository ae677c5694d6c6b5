//! The connection layer against a real server: idle sockets beyond the cap, slow and silent
//! clients, idle keep-alive connections, and a stop with an event stream or a stuck request
//! still open.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use udaconnect_testkit::http::{read_some, sample, send_raw};

use crate::app::{spawn_app, spawn_app_with};

/// Reads until the server closes the connection, or `within` passes (`None`: still open).
/// What was read is returned with the time it took.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<(String, Duration)> {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    match tokio::time::timeout(within, read).await {
        Ok(()) => Some((
            String::from_utf8_lossy(&out).into_owned(),
            started.elapsed(),
        )),
        Err(_) => None,
    }
}

fn metric(metrics: &str, series: &str) -> f64 {
    sample(metrics, series).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_beyond_the_cap_leave_the_server_answering() {
    // 40 in all: 30 for HTTP, 10 for gRPC.
    let app = spawn_app_with(true, |e| e.max_connections = Some(40)).await;
    let mut idle = Vec::new();
    for _ in 0..120 {
        idle.push(TcpStream::connect(app.socket()).await.unwrap());
    }
    // A new client is still answered, at once, and ingest and reads work.
    let started = Instant::now();
    let health = tokio::time::timeout(Duration::from_secs(5), app.get("/health"))
        .await
        .expect("/health answers with the cap full of idle sockets");
    assert_eq!(health.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(2));
    let r = app
        .post_json(
            "/api/locations",
            &json!({"person_id": 5, "latitude": 1, "longitude": 2}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    assert_eq!(app.stored_location(id).await["person_id"], 5);

    // The server made room by closing the sockets idle longest: at least 90 of the 120.
    let mut closed = 0;
    for s in &mut idle {
        if closed_within(s, Duration::from_millis(20)).await.is_some() {
            closed += 1;
        }
    }
    assert!(closed >= 90, "{closed} of 120 idle sockets closed");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metric(
            &metrics,
            "udaconnect_connections_closed_total{reason=\"evicted\"}"
        ) >= 90.0,
        "{metrics}"
    );
    assert!(
        metric(&metrics, "udaconnect_connections_open{listener=\"http\"}") <= 30.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn slow_and_silent_clients_are_closed() {
    let app = spawn_app_with(false, |e| {
        e.header_timeout = Duration::from_millis(500);
        e.idle_timeout = Duration::from_secs(1);
    })
    .await;
    // Slowloris: a header line every 100 ms, never the blank line that ends the head.
    let mut slow = send_raw(app.socket(), b"GET /health HTTP/1.1\r\nHost: localhost\r\n").await;
    let started = Instant::now();
    let mut cut = false;
    while started.elapsed() < Duration::from_secs(5) {
        if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
            cut = true;
            break;
        }
        if closed_within(&mut slow, Duration::from_millis(100))
            .await
            .is_some()
        {
            cut = true;
            break;
        }
    }
    assert!(cut, "a client trickling its headers is closed");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "closed after {:?}",
        started.elapsed()
    );
    // Silent: connects and sends nothing; closed when idle for a second.
    let mut silent = TcpStream::connect(app.socket()).await.unwrap();
    let (_, after) = closed_within(&mut silent, Duration::from_secs(4))
        .await
        .expect("a silent client is closed");
    assert!(after >= Duration::from_millis(900), "{after:?}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for reason in ["slow_header", "idle"] {
        let line = format!("udaconnect_connections_closed_total{{reason=\"{reason}\"}}");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    // A client that sends its head in time is answered.
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = spawn_app_with(false, |e| e.idle_timeout = Duration::from_millis(500)).await;
    let mut s = send_raw(
        app.socket(),
        b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .await;
    assert!(read_some(&mut s).await.starts_with("HTTP/1.1 200"));
    // Kept alive for the next request, then closed once idle for the timeout.
    let (_, after) = closed_within(&mut s, Duration::from_secs(5))
        .await
        .expect("closed when idle");
    assert!(
        after >= Duration::from_millis(300) && after < Duration::from_secs(3),
        "{after:?}"
    );
}

#[tokio::test]
async fn a_stop_ends_event_streams_at_once() {
    let app = spawn_app(true).await;
    let mut stream = send_raw(
        app.socket(),
        b"GET /api/live/stream HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n",
    )
    .await;
    let head = read_some(&mut stream).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
    // The stream is open and stays so while the server runs.
    assert!(closed_within(&mut stream, Duration::from_millis(300))
        .await
        .is_none());

    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), app.stop())
        .await
        .expect("the stop does not wait for the event stream")
        .unwrap();
    // Well under the 10 s deadline: the stream was ended, not waited out.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(closed_within(&mut stream, Duration::from_secs(1))
        .await
        .is_some());
}

#[tokio::test]
async fn a_stop_cuts_off_what_is_left_at_its_deadline() {
    let app = spawn_app_with(true, |e| e.shutdown_timeout = Duration::from_millis(500)).await;
    // A request whose body never comes whole: its handler waits for it.
    let mut stuck = send_raw(
        app.socket(),
        b"POST /api/locations HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"person_id\"",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), app.stop())
        .await
        .expect("the stop keeps its deadline")
        .unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(closed_within(&mut stuck, Duration::from_secs(1))
        .await
        .is_some());
}
