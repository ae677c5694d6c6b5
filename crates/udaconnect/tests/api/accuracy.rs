//! Accuracy: a phone's ping worse than `max_accuracy` metres (the server's default, 50) makes
//! no meeting; asked with a laxer `max_accuracy`, it does, and the evidence shows the
//! accuracies. The other attendee pings in the original JSON, which has no accuracy.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use udaconnect_testkit::http;

use crate::signin::{address, person_with_email};
use crate::suite::{assert_problem, Api};

const WINDOW: &str = "start=2021-08-03&end=2021-08-03";

async fn call(api: &Api, token: &str, path: &str) -> reqwest::Response {
    api.client
        .request(Method::GET, api.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent")
}

async fn contacts(api: &Api, token: &str, extra: &str) -> Vec<Value> {
    let r = call(api, token, &format!("/api/me/contacts?{WINDOW}{extra}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap().as_array().unwrap().clone()
}

pub async fn inaccurate_pings_meet_only_under_a_laxer_max_accuracy(api: Api) {
    let mut ids = [0; 2];
    let mut tokens = [String::new(), String::new()];
    for (i, who) in ["accuracy-a", "accuracy-b"].into_iter().enumerate() {
        ids[i] = person_with_email(&api, &address(who)).await["id"]
            .as_i64()
            .unwrap();
        tokens[i] = api.admin_token("attendee", ids[i]).await;
    }
    let [ta, tb] = [&tokens[0], &tokens[1]];
    let phone = http::register_device(&api.client, &api.base, ta, (ids[0], "A's phone")).await;
    let device_token = phone["token"].as_str().unwrap().to_string();
    // 2 m apart for 20 minutes: A's phone (OwnTracks) says 200 m, B's pings say nothing.
    let start = 1_627_981_200; // 2021-08-03T09:00:00Z
    for minute in 0..=20i64 {
        let body = json!({"_type": "location", "lat": 52.52, "lon": 13.405, "acc": 200,
                          "tst": start + minute * 60, "tid": "aa"});
        let r = api
            .client
            .post(api.url("/pub"))
            .basic_auth("a", Some(&device_token))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let time = format!("2021-08-03T09:{minute:02}:00Z");
        api.ping(ids[1], 52.52, 13.40503, &time).await;
    }

    // Once every ping is in, asked at 500 m they met.
    let lax = "&max_accuracy=500";
    let deadline = Instant::now() + Duration::from_secs(30);
    let met = loop {
        let found = contacts(&api, ta, lax).await;
        if found
            .first()
            .is_some_and(|c| c["duration_seconds"].as_f64() == Some(1200.0))
        {
            break found;
        }
        assert!(Instant::now() < deadline, "no 20-minute meeting: {found:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(met.len(), 1, "{met:?}");
    assert_eq!(contacts(&api, tb, lax).await.len(), 1);
    // By default (50 m), and at 199 m, A's pings count for nothing, on either side.
    for extra in ["", "&max_accuracy=199"] {
        assert_eq!(
            contacts(&api, ta, extra).await,
            Vec::<Value>::new(),
            "{extra}"
        );
        assert_eq!(
            contacts(&api, tb, extra).await,
            Vec::<Value>::new(),
            "{extra}"
        );
    }
    assert_eq!(contacts(&api, ta, "&max_accuracy=200").await.len(), 1);

    // The evidence, each side's: my accuracy and the other's nearest ping's.
    for (token, mine, theirs) in [
        (ta, json!(200.0), Value::Null),
        (tb, Value::Null, json!(200.0)),
    ] {
        let handle = contacts(&api, token, lax).await[0]["handle"]
            .as_str()
            .unwrap()
            .to_string();
        let path = format!("/api/me/contacts/{handle}/evidence?{WINDOW}{lax}");
        let r = call(&api, token, &path).await;
        assert_eq!(r.status(), StatusCode::OK);
        let evidence: Value = r.json().await.unwrap();
        let pings = evidence["pings"].as_array().unwrap();
        assert_eq!(pings.len(), 21, "{evidence}");
        for p in pings {
            assert_eq!(
                (&p["accuracy_m"], &p["other_accuracy_m"]),
                (&mine, &theirs),
                "{p}"
            );
        }
        // Under the default the meeting is not one: no evidence.
        let path = format!("/api/me/contacts/{handle}/evidence?{WINDOW}");
        assert_problem(call(&api, token, &path).await, 404, &[]).await;
    }
    // The document states the parameter, its bounds and its default on both contacts routes.
    let spec = api.get_json("/openapi.json").await;
    for path in ["/api/persons/{id}/contacts", "/api/me/contacts"] {
        let params = spec["paths"][path]["get"]["parameters"].as_array().unwrap();
        let p = params
            .iter()
            .find(|p| p["name"] == "max_accuracy")
            .unwrap_or_else(|| panic!("{path}: no max_accuracy"));
        assert_eq!(p["in"], "query");
        assert_eq!(p["required"], false);
        assert_eq!(
            (&p["schema"]["minimum"], &p["schema"]["maximum"]),
            (&json!(0), &json!(1000))
        );
        assert!(p["description"].as_str().unwrap().contains("50"), "{p}");
    }
    // A bad max_accuracy is the caller's error.
    for bad in ["-1", "1001", "2.5", "x"] {
        let r = call(
            &api,
            ta,
            &format!("/api/me/contacts?{WINDOW}&max_accuracy={bad}"),
        )
        .await;
        assert_problem(r, 400, &["max_accuracy"]).await;
    }
}
