//! `serve --retention`: the job, driven by a clock the test sets, removes old pings from the
//! store, the contact index and the embedded log's closed segments, and leaves the rest.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use udaconnect_core::clock::ManualClock;
use udaconnect_core::model::Location;
use udaconnect_core::ports::Log;
use udaconnect_core::record::{self, LOCATION_TOPIC};
use udaconnect_core::time::parse_timestamp;
use udaconnect_log::embedded::segment_files;
use udaconnect_log::{EmbeddedLog, EmbeddedLogOptions};
use udaconnect_server::retention::RetentionSettings;
use udaconnect_server::{Application, HttpSettings};
use udaconnect_testkit::eventually;
use udaconnect_testkit::http::{json_answer_as, metrics, sample};

use crate::app::demo_settings;

const WAIT: Duration = Duration::from_secs(20);

/// Old pings (person 5's, from 2020) written to the log in small segments, as a log that
/// ran for long holds them: their ids.
async fn old_pings_in_small_segments(data_dir: &std::path::Path) -> Vec<i64> {
    let log = EmbeddedLog::open(
        data_dir.join("log"),
        EmbeddedLogOptions {
            segment_bytes: 600,
            ..EmbeddedLogOptions::default()
        },
    )
    .unwrap();
    let written = parse_timestamp("2020-01-01T10:00:00Z").unwrap();
    let ids: Vec<i64> = (900_001..900_031).collect();
    for &id in &ids {
        let ping = Location {
            id,
            person_id: 5,
            latitude: 35.0,
            longitude: 139.0,
            creation_time: written,
            accuracy_m: None,
            telemetry: Default::default(),
        };
        log.append(LOCATION_TOPIC, vec![record::encode(&ping, None, written)])
            .await
            .unwrap();
    }
    ids
}

async fn status(client: &reqwest::Client, base: &str, path: &str) -> StatusCode {
    client
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn the_job_removes_old_pings_from_the_store_the_index_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let http = || HttpSettings::open("127.0.0.1:0".parse().unwrap());
    // A first start loads the demo's persons and pings (from 2019 and 2020).
    let first = Application::build(demo_settings(dir.path(), http(), 0))
        .await
        .unwrap();
    first.stop().await.unwrap();
    let old_ids = old_pings_in_small_segments(dir.path()).await;
    let segments = || {
        segment_files(&dir.path().join("log").join(LOCATION_TOPIC))
            .unwrap()
            .len()
    };
    assert!(segments() > 3, "{} segments", segments());

    let clock = Arc::new(ManualClock::new(Utc::now()));
    let mut settings = demo_settings(dir.path(), http(), 0);
    settings.retention = RetentionSettings {
        keep: Some(Duration::from_secs(86_400)),
        every: Duration::from_millis(100),
        clock: clock.clone(),
    };
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://{}", app.local_addr());
    let client = reqwest::Client::new();

    // Two persons met an hour ago: within the day kept.
    let met_at = Utc::now() - TimeDelta::hours(1);
    let hour_ago = met_at.to_rfc3339();
    let mut fresh = Vec::new();
    for person in [5, 6] {
        let r = client
            .post(format!("{base}/api/locations"))
            .json(&json!({"person_id": person, "latitude": 48.85, "longitude": 2.35, "creation_time": hour_ago}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let body: Value = r.json().await.unwrap();
        fresh.push(body["id"].as_i64().unwrap());
    }
    for &id in &fresh {
        udaconnect_testkit::http::stored_location(&client, &base, id, WAIT).await;
    }

    // The seed's pings and the old ones from the log leave the store...
    eventually("old pings removed from the store", WAIT, || async {
        for id in [29, old_ids[0], *old_ids.last().unwrap()] {
            if status(&client, &base, &format!("/api/locations/{id}")).await
                != StatusCode::NOT_FOUND
            {
                return None;
            }
        }
        Some(())
    })
    .await;
    let removed = |from: &'static str| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let series = format!("udaconnect_retention_removed_total{{from=\"{from}\"}}");
            sample::<u64>(&metrics(&client, &base).await, &series).unwrap_or(0)
        }
    };
    assert!(removed("store").await > 30, "the seed's and the log's");
    assert!(removed("index").await > 30);
    for &id in &fresh {
        assert_eq!(
            status(&client, &base, &format!("/api/locations/{id}")).await,
            StatusCode::OK
        );
    }

    // The index answers from what is kept: the meeting of an hour ago, nothing older. Windows
    // end an hour after the meeting, not at a calendar day, so a run across midnight UTC
    // asks the same.
    let connection = |from: DateTime<Utc>| {
        let (client, base) = (client.clone(), base.clone());
        let instant = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let url = format!(
            "{base}/api/persons/5/connection?start_date={}&end_date={}&distance=5",
            instant(from),
            instant(met_at + TimeDelta::hours(1))
        );
        async move { json_answer_as::<Vec<Value>>(client.get(url)).await }
    };
    let met = connection(parse_timestamp("2019-01-01T00:00:00Z").unwrap()).await;
    let ids: Vec<i64> = met
        .iter()
        .map(|c| c["location"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![fresh[1]], "{met:?}");

    // Two days on, the meeting is old too: gone from the store and the index.
    clock.advance(TimeDelta::days(2));
    eventually("the meeting removed", WAIT, || async {
        (status(&client, &base, &format!("/api/locations/{}", fresh[0])).await
            == StatusCode::NOT_FOUND)
            .then_some(())
    })
    .await;
    eventually("the meeting gone from the index", WAIT, || async {
        connection(met_at - TimeDelta::hours(1))
            .await
            .is_empty()
            .then_some(())
    })
    .await;
    let positions: Vec<Value> =
        json_answer_as(client.get(format!("{base}/api/live/positions"))).await;
    assert!(
        positions.is_empty(),
        "the live view reads the index: {positions:?}"
    );
    // The log's closed segments go once every record in them is older than the cut (the
    // first holds the demo's pings, written at the first start), all but the active one.
    eventually("old log segments deleted", WAIT, || async {
        (segments() == 1).then_some(())
    })
    .await;
    assert!(removed("log").await >= 20, "records of deleted segments");
    app.stop().await.unwrap();
}
