//! `serve --demo` with live simulated attendees (in `serve` only: the attendees are part of
//! the embedded demo), in-process.

use serde_json::Value;
use udaconnect_server::{Application, HttpSettings};

use crate::app::demo_settings;

/// The attendees ping every 5 s: the venue, the persons and their live positions show them.
#[tokio::test]
async fn demo_conference_moves_live() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut http = HttpSettings::open("127.0.0.1:0".parse().unwrap());
    http.edge.live.k_anonymity = 2;
    let app = Application::build(demo_settings(data_dir.path(), http, 40))
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    let client = reqwest::Client::new();
    let get = |path: &'static str| {
        let request = client.get(format!("{base}{path}")).send();
        async move { request.await.unwrap().json::<Value>().await.unwrap() }
    };
    let venue: Value = get("/api/venue").await;
    assert!(venue["areas"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["kind"] == "booth"));
    // Seed persons and 40 attendees.
    let persons: Value = get("/api/persons").await;
    assert_eq!(persons.as_array().unwrap().len(), 45);
    // Attendees ping every 5 s: within a few seconds their positions are stored and shown,
    // as anonymous dots where two people at least stand together (k is 2 here).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let positions: Value = get("/api/live/positions").await;
        let dots = positions.as_array().unwrap();
        assert!(
            dots.iter().all(|d| d.get("person_id").is_none()),
            "{positions}"
        );
        if dots.len() >= 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {} dots: {positions}",
            dots.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    app.stop().await.unwrap();
}
