//! Who may ask, in-process: with auth on (the default of [`HttpSettings::on`]) `/metrics` is
//! for staff on the API's address and open on `--metrics-listen`'s; the demo conference (the
//! product's own pings) goes on with auth on.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use udaconnect_core::auth::Role;
use udaconnect_server::wiring::backends::{open_account_stores, StoreUrl};
use udaconnect_server::{Application, HttpSettings};
use udaconnect_testkit::accounts::issue_token;
use udaconnect_testkit::http::json_answer;

use crate::app::demo_settings;

#[tokio::test]
async fn metrics_are_for_staff_or_on_their_own_address() {
    let data_dir = tempfile::tempdir().unwrap();
    let http = HttpSettings {
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..HttpSettings::on("127.0.0.1:0".parse().unwrap())
    };
    let app = Application::build(demo_settings(data_dir.path(), http, 10))
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    let client = reqwest::Client::new();
    let status = |url: String, token: Option<String>| {
        let mut r = client.get(url);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move { r.send().await.unwrap().status() }
    };
    assert_eq!(
        status(format!("{base}/metrics"), None).await,
        StatusCode::UNAUTHORIZED
    );
    let scrape = format!("http://{}", app.metrics_addr().unwrap());
    let open = client
        .get(format!("{scrape}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    assert!(open.text().await.unwrap().contains("udaconnect_"));
    // Nothing else is served there.
    assert_eq!(
        status(format!("{scrape}/api/persons"), None).await,
        StatusCode::NOT_FOUND
    );

    let accounts = open_account_stores(&StoreUrl::Embedded(data_dir.path().to_path_buf()))
        .await
        .unwrap()
        .accounts;
    let organizer = issue_token(accounts.as_ref(), Role::Organizer, None, "test")
        .await
        .expose()
        .to_string();
    assert_eq!(
        status(format!("{base}/metrics"), Some(organizer.clone())).await,
        StatusCode::OK
    );

    // The demo's attendees ping with auth on: the product's own pings need no token.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // The first attendee's summary counts their pings (the live map would show them only
        // among five at least).
        let summary: Value = json_answer(
            client
                .get(format!("{base}/api/persons/10/summary"))
                .bearer_auth(&organizer),
        )
        .await;
        if summary["pings"].as_u64().is_some_and(|p| p > 0) {
            break;
        }
        assert!(Instant::now() < deadline, "no live attendee: {summary}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await.unwrap();
}
