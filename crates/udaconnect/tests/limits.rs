//! Bounded work per request, on a `udaconnect serve` process: heavy queries abandoned by their
//! clients stop at once, heavy queries beyond the bound are refused with 503 and Retry-After,
//! one past its deadline is stopped, an answer over the row limit is refused with 422, and bad
//! bodies are answered briefly.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use udaconnect_testkit::http::{create_person, metrics, sample, STORED};
use udaconnect_testkit::process::RoleProc;
use udaconnect_testkit::procfs::{cpu_time, rss_bytes};

const BIN: &str = env!("CARGO_BIN_EXE_udaconnect");

/// The venue's centre.
const CENTRE: (f64, f64) = (37.55, -122.29);
/// Persons on the ring around the asked person, and pings each.
const RING_PERSONS: usize = 100;
const RING_PINGS: usize = 1000;
/// The asked person's pings, and the pings of the one person standing with them.
const OWN_PINGS: usize = 1000;
const CROWD_PINGS: usize = 2000;
/// The day of the data, 00:00Z.
const DAY: &str = "2020-07-07";
const DAY_START_S: i64 = 1_594_080_000;

async fn serve(data_dir: &Path, extra: &[&str]) -> RoleProc {
    let mut args: Vec<String> = ["--demo-attendees", "0", "--grpc-listen", "off"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--data-dir".into(), data_dir.display().to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = RoleProc::spawn(Path::new(BIN), "serve", &args).await;
    server.wait_ready(Duration::from_secs(60)).await;
    server
}

/// A point `metres` from the centre at `bearing` radians.
fn at(metres: f64, bearing: f64) -> (f64, f64) {
    let deg = |m: f64| (m / 6_371_008.8_f64).to_degrees();
    let lat = CENTRE.0 + deg(metres * bearing.cos());
    let lon = CENTRE.1 + deg(metres * bearing.sin()) / CENTRE.0.to_radians().cos();
    (lat, lon)
}

fn time(seconds_into_day: i64) -> String {
    let t = chrono::DateTime::from_timestamp(DAY_START_S + seconds_into_day, 0).unwrap();
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

async fn post_ndjson(client: &reqwest::Client, base: &str, lines: &[String]) -> reqwest::Response {
    client
        .post(format!("{base}/api/locations/batch"))
        .header("content-type", "application/x-ndjson")
        .body(lines.join("\n"))
        .send()
        .await
        .unwrap()
}

/// The venue: the asked person standing at the centre all day, one person standing with
/// them, and a hundred others on a ring 1,010 to 1,400 m away, none within 1,000 m of the
/// asked person. A connection query at 1,000 m then compares about a hundred thousand
/// candidates with every ping of the asked person and keeps few: seconds of CPU in a debug
/// build. Returns the asked person's id and the crowd person's.
async fn load_venue(server: &RoleProc) -> (i64, i64) {
    let client = reqwest::Client::new();
    let base = server.base();
    let asked = create_person(&client, &base, "Asked").await;
    let crowd = create_person(&client, &base, "Crowd").await;
    let mut ring = Vec::new();
    for i in 0..RING_PERSONS {
        ring.push(create_person(&client, &base, &format!("Ring{i}")).await);
    }
    let ping = |person: i64, (lat, lon): (f64, f64), t: i64| {
        json!({"person_id": person, "latitude": lat, "longitude": lon, "creation_time": time(t)})
            .to_string()
    };
    let mut rng = udaconnect_sim::Rng::new(21);
    let mut lines = Vec::new();
    for i in 0..OWN_PINGS {
        lines.push(ping(
            asked,
            at(5.0 * rng.unit(), rng.unit() * 6.3),
            60 * i as i64,
        ));
    }
    for i in 0..CROWD_PINGS {
        lines.push(ping(
            crowd,
            at(20.0 * rng.unit(), rng.unit() * 6.3),
            30 * i as i64,
        ));
    }
    for &person in &ring {
        for i in 0..RING_PINGS {
            let spot = at(1010.0 + 390.0 * rng.unit(), rng.unit() * 6.3);
            lines.push(ping(person, spot, 60 * i as i64));
        }
    }
    let total = lines.len();
    for part in lines.chunks(50_000) {
        let r = post_ndjson(&client, &base, part).await;
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    }
    wait_stored(&client, &base, total as u64).await;
    (asked, crowd)
}

/// Waits until the consumer reports `n` pings stored.
async fn wait_stored(client: &reqwest::Client, base: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let stored: u64 = sample(&metrics(client, base).await, STORED).unwrap_or(0);
        if stored >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{stored} of {n} pings stored");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn heavy_query(base: &str, person: i64) -> String {
    format!("{base}/api/persons/{person}/connection?start_date={DAY}&end_date={DAY}&distance=1000")
}

fn heavy_contacts(base: &str, person: i64) -> String {
    format!("{base}/api/persons/{person}/contacts?start={DAY}&end={DAY}&distance=1000")
}

/// Sends a hundred copies of a heavy query abandoned by their client after 50 ms, and checks
/// that the process `pid` then stays still: the abandoned work stopped within milliseconds,
/// and its memory is bounded.
async fn abandon_hundred(pid: u32, url: impl Fn() -> String) {
    let (rss_before, _) = rss_bytes(pid);
    let cpu_before = cpu_time(pid);
    let abandoning = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let queries: Vec<_> = (0..100)
        .map(|_| {
            let (client, url) = (abandoning.clone(), url());
            tokio::spawn(async move { client.get(url).send().await })
        })
        .collect();
    for q in queries {
        let sent = q.await.unwrap();
        assert!(
            sent.is_err_and(|e| e.is_timeout()),
            "a query answered within 50 ms"
        );
    }
    drop(abandoning);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu_stopped = cpu_time(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu_after = cpu_time(pid);
    let (rss_after, _) = rss_bytes(pid);
    eprintln!(
        "100 abandoned queries: {:?} of CPU while they ran, {:?} in the second after; RSS {} -> {} MiB",
        cpu_stopped - cpu_before,
        cpu_after - cpu_stopped,
        rss_before >> 20,
        rss_after >> 20
    );
    assert!(
        cpu_after - cpu_stopped <= Duration::from_millis(150),
        "the abandoned queries went on: {:?} of CPU in a second",
        cpu_after - cpu_stopped
    );
    assert!(
        rss_after < rss_before + (256 << 20),
        "RSS grew from {} to {} MiB",
        rss_before >> 20,
        rss_after >> 20
    );
}

/// A problem+json answer with this status: its body.
async fn problem(r: reqwest::Response, status: u16) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let retry_after = r.headers().get("retry-after").cloned();
    let body: Value = r.json().await.unwrap();
    if status == 503 {
        assert!(retry_after.is_some(), "503 without Retry-After: {body}");
    }
    body
}

/// A hundred heavy queries abandoned by their clients after 50 ms stop within milliseconds:
/// the process's CPU time stays still afterwards, and its memory is bounded. Then, with one
/// place and one in the queue, a third heavy query is refused at once with 503 and
/// Retry-After, and queries past their deadline are stopped and answered 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn heavy_queries_stop_when_abandoned_and_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(
        dir.path(),
        &[
            "--query-concurrency",
            "100",
            "--query-queue",
            "100",
            "--max-connection-rows",
            "1500",
        ],
    )
    .await;
    let (asked, crowd) = load_venue(&server).await;
    let base = server.base();
    let client = reqwest::Client::new();

    // The whole day with the crowd person: 2,000 rows, over the limit of 1,500.
    let started = Instant::now();
    let r = client.get(heavy_query(&base, asked)).send().await.unwrap();
    let one_query = started.elapsed();
    let body = problem(r, 422).await;
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("2000 locations"), "{detail}");
    assert!(detail.contains("narrow the window"), "{detail}");
    // The first hour: 120 of the crowd person's pings, within the limit, and streamed whole.
    let r = client
        .get(format!(
            "{base}/api/persons/{asked}/connection?start_date={DAY}T00:00:00Z&end_date={DAY}T01:00:00Z&distance=1000"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rows: Vec<Value> = r.json().await.unwrap();
    assert_eq!(rows.len(), 120);
    assert!(rows.iter().all(|row| row["person"]["id"] == crowd));
    eprintln!("one heavy query: {one_query:?}");

    let pid = server.pid().unwrap();
    abandon_hundred(pid, || heavy_query(&base, asked)).await;
    assert_eq!(
        client
            .get(format!("{base}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // One place, one in the queue, and a deadline shorter than a heavy query.
    server.kill_9();
    drop(server);
    let deadline = (one_query / 3).max(Duration::from_millis(300));
    let deadline_arg = format!("{}ms", deadline.as_millis());
    let server = serve(
        dir.path(),
        &[
            "--query-concurrency",
            "1",
            "--query-queue",
            "1",
            "--query-deadline",
            &deadline_arg,
        ],
    )
    .await;
    let base = server.base();
    let send = |url: String| {
        let client = client.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let r = client.get(url).send().await.unwrap();
            (r, started.elapsed())
        })
    };
    let running = send(heavy_query(&base, asked));
    tokio::time::sleep(deadline / 4).await;
    let waiting = send(heavy_query(&base, asked));
    tokio::time::sleep(deadline / 4).await;
    let (refused, took) = send(heavy_query(&base, asked)).await.unwrap();
    let body = problem(refused, 503).await;
    assert!(took < deadline, "refused after {took:?}");
    assert_eq!(body["type"], "urn:udaconnect:problem:busy");
    assert!(body["detail"].as_str().unwrap().contains("1 are waiting"));
    for query in [running, waiting] {
        let (r, took) = query.await.unwrap();
        let body = problem(r, 503).await;
        assert!(
            body["detail"].as_str().unwrap().contains("was stopped"),
            "{body}"
        );
        assert!(took >= deadline && took < deadline * 3, "{took:?}");
    }
    let metrics = metrics(&client, &base).await;
    for reason in ["query_busy", "query_deadline"] {
        let line = format!("udaconnect_requests_refused_total{{reason=\"{reason}\"}} ");
        assert!(metrics.contains(&line), "{reason} counted");
    }
}

/// A hundred heavy contacts queries over tracks abandoned by their clients after 50 ms stop
/// within milliseconds, as connection queries do.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn heavy_contacts_stop_when_abandoned() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(
        dir.path(),
        &["--query-concurrency", "100", "--query-queue", "100"],
    )
    .await;
    let (asked, _) = load_venue(&server).await;
    let base = server.base();
    // The ring's long hops pass within 1,000 m of the asked person: a hundred thousand pieces
    // to cut and pair.
    let r = reqwest::get(heavy_contacts(&base, asked)).await.unwrap();
    assert_eq!(r.status(), 200);
    let met: Vec<Value> = r.json().await.unwrap();
    assert!(met.len() > RING_PERSONS / 2, "{} met", met.len());
    abandon_hundred(server.pid().unwrap(), || heavy_contacts(&base, asked)).await;
}

/// A batch of 100,000 bad items answers the first 100 violations and how many more, in a few
/// kilobytes; a bad value is repeated by its first 64 characters only, in bodies and in query
/// strings; a request target over 8 KiB is refused with 414.
#[tokio::test]
async fn bad_input_is_answered_briefly() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &["--demo"]).await;
    let base = server.base();
    let client = reqwest::Client::new();

    let bad = r#"{"person_id": 1, "latitude": 91, "longitude": 0}"#.to_string();
    let r = post_ndjson(&client, &base, &vec![bad; 100_000]).await;
    let bytes = r.content_length();
    let body = problem(r, 422).await;
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 101);
    assert_eq!(errors[0]["field"], "[0].latitude");
    assert_eq!(errors[99]["field"], "[99].latitude");
    assert_eq!(errors[100]["field"], "body");
    assert_eq!(
        errors[100]["message"],
        "and 99900 more violations, not listed (the first 100 are)"
    );
    let size = body.to_string().len();
    assert!(size < 32 << 10, "{size} bytes ({bytes:?} declared)");

    // Lines that are not JSON: unreadable, listed the same way.
    let r = post_ndjson(&client, &base, &vec!["{".to_string(); 5000]).await;
    let body = problem(r, 400).await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 101);

    // A JSON array of bad items, read item by item.
    let items: Vec<Value> = (0..300)
        .map(|_| json!({"person_id": 1, "latitude": 0, "longitude": 200}))
        .collect();
    let r = client
        .post(format!("{base}/api/locations/batch"))
        .json(&items)
        .send()
        .await
        .unwrap();
    let body = problem(r, 422).await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 101);
    assert_eq!(
        body["errors"][100]["message"],
        "and 200 more violations, not listed (the first 100 are)"
    );

    let long = "7".repeat(100_000) + "x";
    let r = client
        .post(format!("{base}/api/locations"))
        .json(&json!({"person_id": 1, "latitude": long, "longitude": 0}))
        .send()
        .await
        .unwrap();
    let body = problem(r, 400).await;
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert_eq!(
        message,
        format!(
            "'{}...' (100001 characters) is not a number",
            "7".repeat(64)
        )
    );
    assert!(body.to_string().len() < 2048);

    // In a query string: as long as a request target may be (8 KiB), and beyond.
    let connection = |distance: &str| {
        format!(
            "{base}/api/persons/1/connection?start_date={DAY}&end_date={DAY}&distance={distance}"
        )
    };
    let fits = "7".repeat(8000) + "x";
    let r = client.get(connection(&fits)).send().await.unwrap();
    let body = problem(r, 400).await;
    assert!(body.to_string().contains(&"7".repeat(64)), "{body}");
    assert!(!body.to_string().contains(&"7".repeat(65)), "{body}");
    assert!(body.to_string().len() < 2048);
    let r = client
        .get(connection(&long[..20_000]))
        .send()
        .await
        .unwrap();
    let body = problem(r, 414).await;
    assert_eq!(body["type"], "urn:udaconnect:problem:uri-too-long");
    assert!(body.to_string().len() < 2048);
}
