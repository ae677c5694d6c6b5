//! Consent to be found: an attendee's contacts name only the people who let those they met
//! see them (`PUT /api/me/visibility`); the others are someone, the meeting's time and place
//! kept. Admins' view of one person keeps every name.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::suite::{assert_problem, Api};

/// A request with `token`, as a phone app or script sends it.
fn signed(api: &Api, token: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    api.client.request(method, api.url(path)).bearer_auth(token)
}

async fn send(request: reqwest::RequestBuilder) -> reqwest::Response {
    request.send().await.expect("request sent")
}

async fn visibility(api: &Api, token: &str) -> Value {
    let r = send(signed(api, token, Method::GET, "/api/me/visibility")).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn choose(api: &Api, token: &str, visible: bool) {
    let body = json!({ "visible": visible });
    let r = send(signed(api, token, Method::PUT, "/api/me/visibility").json(&body)).await;
    assert_eq!(r.status(), StatusCode::OK);
    // The other choice, the live map's, stays as it was: no.
    let stored = json!({ "visible": visible, "on_live_map": false });
    assert_eq!(r.json::<Value>().await.unwrap(), stored);
}

/// The contacts answer `path` gives `token`'s holder, as rows.
async fn contacts(api: &Api, token: &str, path: &str) -> Vec<Value> {
    let r = send(signed(api, token, Method::GET, path)).await;
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

/// The row of `person` in an answer, or of the one anonymous row.
fn row(answer: &[Value], person: Option<i64>) -> &Value {
    let found: Vec<&Value> = answer
        .iter()
        .filter(|c| match person {
            Some(id) => c["person"]["id"] == id,
            None => c["person"].is_null(),
        })
        .collect();
    assert_eq!(found.len(), 1, "{person:?} in {answer:?}");
    found[0]
}

/// Ada stands 1 m from Bo and from a third attendee for 30 minutes. Until Bo allows it, Ada's
/// contacts show both as someone: no id, name or company, the meeting's times, place and length
/// kept, and their pings are not in her connection answer. Once Bo allows it Ada sees Bo's name
/// and pings, and when Bo takes it back, no longer. The answer is the same under
/// `/api/persons/{id}/contacts` for Ada herself; an admin sees every name, and no `anonymous`
/// field.
pub async fn contacts_name_only_those_who_allow_it(api: Api) {
    let id = |p: &Value| p["id"].as_i64().unwrap();
    let ada = id(&api.create_person("Ada").await);
    let bo = id(&api.create_person("Bo").await);
    let third = api
        .post_json(
            "/api/persons",
            &json!({"first_name": "Quietus", "last_name": "Unseen", "company_name": "Hidden Ltd"}),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    let third_id = id(&third);
    let ada_token = api.admin_token("attendee", ada).await;
    let bo_token = api.admin_token("attendee", bo).await;
    let third_token = api.admin_token("attendee", third_id).await;

    let mut stored = Vec::new();
    for minute in 0..=30 {
        let time = format!("2021-07-01T10:{minute:02}:00Z");
        for (person, east) in [(ada, 0.0), (bo, 1e-5), (third_id, -1e-5)] {
            let ping = api.ping(person, 51.5007, -0.1246 + east, &time).await;
            stored.push(ping["id"].as_i64().unwrap());
        }
    }
    for id in stored {
        api.stored_location(id).await;
    }

    // Nobody is visible until they say so.
    for token in [&ada_token, &bo_token, &third_token] {
        assert_eq!(
            visibility(&api, token).await,
            json!({"visible": false, "on_live_map": false})
        );
    }
    let mine = "/api/me/contacts?start=2021-07-01&end=2021-07-01";
    let answer = contacts(&api, &ada_token, mine).await;
    assert_eq!(answer.len(), 2, "{answer:?}");
    for someone in &answer {
        assert_eq!(someone["person"], Value::Null);
        assert_eq!(someone["anonymous"], true);
        assert!(someone["duration_seconds"].as_f64().unwrap() >= 1700.0);
        assert_eq!(someone["first_met"], "2021-07-01T10:00:00Z");
        let encounter = &someone["encounters"][0];
        assert!((encounter["latitude"].as_f64().unwrap() - 51.5007).abs() < 1e-4);
    }
    let text = serde_json::to_string(&answer).unwrap();
    for hidden in ["Quietus", "Unseen", "Hidden Ltd", "\"Bo\""] {
        assert!(!text.contains(hidden), "{hidden} in {text}");
    }
    assert!(
        !text.contains(&format!("\"id\":{bo}")) && !text.contains(&format!("\"id\":{third_id}"))
    );
    // Nor do their pings show in Ada's connection answer: a ping names its person.
    let near = "/api/me/connection?start_date=2021-07-01&end_date=2021-07-01";
    assert_eq!(contacts(&api, &ada_token, near).await, Vec::<Value>::new());

    // Bo allows it: Ada sees Bo, the third attendee stays someone.
    choose(&api, &bo_token, true).await;
    assert_eq!(
        visibility(&api, &bo_token).await,
        json!({"visible": true, "on_live_map": false})
    );
    let by_path = format!("/api/persons/{ada}/contacts?start=2021-07-01&end=2021-07-01");
    for path in [mine, by_path.as_str()] {
        let answer = contacts(&api, &ada_token, path).await;
        assert_eq!(answer.len(), 2, "{answer:?}");
        let named = row(&answer, Some(bo));
        assert_eq!(named["person"]["first_name"], "Bo");
        assert_eq!(named["person"]["company_name"], "Acme");
        assert!(named.get("anonymous").is_none(), "{named}");
        assert_eq!(row(&answer, None)["anonymous"], true);
    }
    let pings = contacts(&api, &ada_token, near).await;
    assert_eq!(pings.len(), 31, "Bo's pings only");
    assert!(pings
        .iter()
        .all(|c| c["person"]["id"] == bo && c["location"]["person_id"] == bo));
    // Bo sees Ada as someone: Bo's consent is not Ada's.
    let bos = contacts(&api, &bo_token, mine).await;
    assert!(bos.iter().all(|c| c["person"].is_null()), "{bos:?}");

    // An admin's view of Ada keeps today's answer: every name.
    let admin = api.get(&by_path).await;
    assert_eq!(admin.status(), StatusCode::OK);
    let admin: Vec<Value> = admin.json().await.unwrap();
    assert_eq!(row(&admin, Some(third_id))["person"], third);
    assert!(admin.iter().all(|c| c.get("anonymous").is_none()));
    let everyone = api
        .get(&format!(
            "/api/persons/{ada}/connection?start_date=2021-07-01&end_date=2021-07-01"
        ))
        .await;
    assert_eq!(everyone.json::<Vec<Value>>().await.unwrap().len(), 62);

    // Bo takes it back: someone again, at once.
    choose(&api, &bo_token, false).await;
    let answer = contacts(&api, &ada_token, mine).await;
    assert!(answer.iter().all(|c| c["anonymous"] == true), "{answer:?}");
}

/// Bad bodies are problems naming what is wrong; a device token, no credential and an account
/// without a person are refused; nothing changes.
pub async fn bad_visibility_requests_are_problems(api: Api) {
    let person = api.create_person("Vi").await["id"].as_i64().unwrap();
    let token = api.admin_token("attendee", person).await;
    let device = api.admin_token("device", person).await;
    let put = |body: &'static str, content_type: &'static str| {
        send(
            signed(&api, &token, Method::PUT, "/api/me/visibility")
                .header("content-type", content_type)
                .body(body),
        )
    };
    for (body, status, fields) in [
        (r#"{"visible": "yes"}"#, 422, &["visible"][..]),
        (r#"{"visible": 1}"#, 422, &["visible"]),
        (r#"{"visible": null}"#, 422, &["visible"]),
        (r#"{}"#, 422, &["visible"]),
        (r#"{"on_live_map": "yes"}"#, 422, &["on_live_map"]),
        (
            r#"{"visible": true, "on_live_map": 0}"#,
            422,
            &["on_live_map"],
        ),
        (r#"{"visible": tr"#, 400, &["body"]),
        ("", 400, &["body"]),
        ("[true]", 400, &["body"]),
    ] {
        assert_problem(put(body, "application/json").await, status, fields).await;
    }
    assert_problem(put(r#"{"visible": true}"#, "text/plain").await, 415, &[]).await;
    assert_eq!(
        visibility(&api, &token).await,
        json!({"visible": false, "on_live_map": false})
    );

    let body = json!({"visible": true});
    for method in [Method::PUT, Method::GET] {
        let r = signed(&api, &device, method, "/api/me/visibility").json(&body);
        assert_problem(send(r).await, 403, &[]).await;
    }
    let nobody = reqwest::Client::new()
        .put(api.url("/api/me/visibility"))
        .json(&body);
    assert_problem(send(nobody).await, 401, &[]).await;
    // The suite's admin has no person, so nothing to be found as.
    let admin = api.client.put(api.url("/api/me/visibility")).json(&body);
    assert_problem(send(admin).await, 404, &[]).await;
    let r = send(signed(&api, &token, Method::POST, "/api/me/visibility").json(&body)).await;
    assert_problem(r, 405, &[]).await;
    assert_eq!(
        visibility(&api, &token).await,
        json!({"visible": false, "on_live_map": false})
    );
}
