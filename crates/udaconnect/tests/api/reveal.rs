//! Mutual reveal, hiding and evidence: two attendees who met exchange e-mail addresses only
//! once both asked (the other mailed once), either withdraws, a contact can be hidden, and
//! the evidence of a meeting holds the caller's own coordinates only.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::signin::{address, nth_mail, person_with_email};
use crate::suite::{assert_problem, Api};

const WINDOW: &str = "start=2021-08-02&end=2021-08-02";

async fn call(api: &Api, token: &str, method: Method, path: &str) -> reqwest::Response {
    api.client
        .request(method, api.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request sent")
}

async fn ok(api: &Api, token: &str, method: Method, path: &str) -> Value {
    let r = call(api, token, method.clone(), path).await;
    assert_eq!(r.status(), StatusCode::OK, "{method} {path}");
    r.json().await.unwrap()
}

/// The contacts of `token`'s holder in the test's window.
async fn contacts(api: &Api, token: &str) -> Vec<Value> {
    let answer = ok(
        api,
        token,
        Method::GET,
        &format!("/api/me/contacts?{WINDOW}"),
    )
    .await;
    answer.as_array().unwrap().clone()
}

/// How `token`'s holder names their one contact: its handle (no one here is visible).
async fn handle_of_only_contact(api: &Api, token: &str) -> String {
    let answer = contacts(api, token).await;
    assert_eq!(answer.len(), 1, "{answer:?}");
    assert_eq!(answer[0]["person"], Value::Null);
    answer[0]["handle"].as_str().expect("a handle").to_string()
}

fn contact_path(handle: &str, what: &str) -> String {
    format!("/api/me/contacts/{handle}/{what}?{WINDOW}")
}

/// Two attendees stand 2 m apart for 20 minutes; a third is elsewhere and met no one.
/// Returns their persons, their tokens and their addresses.
/// Each body meets at a place of its own (`spot`): bodies share the engine.
async fn two_who_met(api: &Api, spot: f64) -> ([i64; 3], [String; 3], [String; 3]) {
    let emails = [
        address("reveal-a"),
        address("reveal-b"),
        address("reveal-c"),
    ];
    let mut ids = [0; 3];
    for (i, email) in emails.iter().enumerate() {
        ids[i] = person_with_email(api, email).await["id"].as_i64().unwrap();
    }
    let mut tokens = [String::new(), String::new(), String::new()];
    for (i, id) in ids.iter().enumerate() {
        tokens[i] = api.admin_token("attendee", *id).await;
    }
    let mut stored = Vec::new();
    for minute in 0..=20 {
        let time = format!("2021-08-02T09:{minute:02}:00Z");
        for (person, lat, lon) in [
            (ids[0], 48.8584, 2.2945 + spot),
            (ids[1], 48.8584, 2.29453 + spot),
            (ids[2], 40.0, 3.0 + spot),
        ] {
            stored.push(
                api.ping(person, lat, lon, &time).await["id"]
                    .as_i64()
                    .unwrap(),
            );
        }
    }
    for id in stored {
        api.stored_location(id).await;
    }
    (ids, tokens, emails)
}

/// A asks B (by the handle of A's contacts: B is not visible); B is mailed once and sees the
/// request; asking again mails no more. B asks A: both see each other's address, in their
/// contacts and their lists, and nowhere else. A withdraws: neither sees it. Someone A never
/// met, B's id while B is not named, and A themselves are refused.
pub async fn both_must_ask_to_see_each_others_address(api: Api) {
    let (ids, tokens, emails) = two_who_met(&api, 0.0).await;
    let [a, b, c] = ids;
    let [ta, tb, tc] = [&tokens[0], &tokens[1], &tokens[2]];
    let (a_mail, b_mail) = (&emails[0], &emails[1]);
    let b_for_a = handle_of_only_contact(&api, ta).await;
    let a_for_b = handle_of_only_contact(&api, tb).await;
    assert_ne!(b_for_a, a_for_b, "each reader has their own handle");
    assert!(!b_for_a.contains(&b.to_string()));

    let state = ok(&api, ta, Method::POST, &contact_path(&b_for_a, "reveal")).await;
    assert_eq!(
        state,
        json!({"asked": true, "asked_by": false, "hidden": false, "dispute": false})
    );
    let mail = nth_mail(&api, b_mail, 2).await; // the welcome, then the request
    assert_eq!(
        mail.header("Subject").unwrap(),
        "Someone you met asks to exchange e-mail addresses"
    );
    assert!(!mail.body_text().contains(a_mail.as_str()));
    let again = ok(&api, ta, Method::POST, &contact_path(&b_for_a, "reveal")).await;
    assert_eq!(again, state);
    // No address yet, on either side.
    for token in [ta, tb] {
        let answer = contacts(&api, token).await;
        assert!(answer[0].get("email").is_none(), "{answer:?}");
    }
    let bs = ok(&api, tb, Method::GET, "/api/me/reveals").await;
    assert_eq!(bs["asked"], json!([]));
    assert_eq!(bs["asking_me"].as_array().unwrap().len(), 1, "{bs}");
    assert_eq!(bs["asking_me"][0]["handle"], a_for_b.as_str());
    assert_eq!(bs["asking_me"][0]["person"], Value::Null);

    // B answers from the list: both see each other's address.
    let state = ok(&api, tb, Method::POST, &contact_path(&a_for_b, "reveal")).await;
    assert_eq!(state["email"], a_mail.as_str());
    assert_eq!(state["asked_by"], true);
    let a_sees = contacts(&api, ta).await;
    assert_eq!(a_sees[0]["email"], b_mail.as_str());
    assert_eq!(
        a_sees[0]["person"],
        Value::Null,
        "an address, still no name"
    );
    assert_eq!(contacts(&api, tb).await[0]["email"], a_mail.as_str());
    let as_list = ok(&api, ta, Method::GET, "/api/me/reveals").await;
    assert_eq!(as_list["asked"][0]["email"], b_mail.as_str());
    // The third attendee, who met neither, sees nothing of it.
    let cs = ok(&api, tc, Method::GET, "/api/me/reveals").await;
    assert_eq!(cs, json!({"asked": [], "asking_me": [], "hidden": []}));
    assert_eq!(contacts(&api, tc).await, Vec::<Value>::new());
    // A's request mailed B once, B's mailed A once (after A's welcome).
    nth_mail(&api, a_mail, 2).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(api.inbox.to(b_mail).len(), 2);
    assert_eq!(api.inbox.to(a_mail).len(), 2);

    // A withdraws: neither sees the other's address.
    let state = ok(&api, ta, Method::DELETE, &contact_path(&b_for_a, "reveal")).await;
    assert_eq!(state["asked"], false);
    assert!(state.get("email").is_none());
    for token in [ta, tb] {
        assert!(contacts(&api, token).await[0].get("email").is_none());
    }

    // Not met, not nameable by id, oneself, a malformed name: refused, nothing recorded.
    let never = api.create_person("Never").await["id"].as_i64().unwrap();
    for (path, status, fields) in [
        (contact_path(&c.to_string(), "reveal"), 404, &[][..]),
        (contact_path(&never.to_string(), "reveal"), 404, &[]),
        (contact_path(&b.to_string(), "reveal"), 404, &[]),
        (contact_path(&a_for_b, "reveal"), 404, &[]),
        (contact_path(&a.to_string(), "reveal"), 422, &["person_id"]),
        (contact_path("c_tooshort", "reveal"), 400, &["person_id"]),
        (contact_path("abc", "reveal"), 400, &["person_id"]),
        (
            format!("/api/me/contacts/{b_for_a}/reveal?start=nope"),
            400,
            &["start"],
        ),
        // The meeting is outside the window asked about.
        (
            format!("/api/me/contacts/{b_for_a}/reveal?start=2021-08-03&end=2021-08-03"),
            404,
            &[],
        ),
    ] {
        assert_problem(call(&api, ta, Method::POST, &path).await, status, fields).await;
    }
    let device = api.admin_token("device", a).await;
    let r = call(
        &api,
        &device,
        Method::POST,
        &contact_path(&b_for_a, "reveal"),
    )
    .await;
    assert_problem(r, 403, &[]).await;
    let r = api
        .client
        .post(api.url(&contact_path(&b_for_a, "reveal")))
        .send()
        .await
        .unwrap();
    // The suite's client is an admin, who has no person of their own.
    assert_problem(r, 404, &[]).await;
    let as_list = ok(&api, ta, Method::GET, "/api/me/reveals").await;
    assert_eq!(as_list["asked"], json!([]));
    assert_eq!(
        as_list["asking_me"].as_array().unwrap().len(),
        1,
        "B's stands"
    );

    // Erasing B takes B's request with B.
    let r = api.send(Method::DELETE, &format!("/api/persons/{b}")).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let as_list = ok(&api, ta, Method::GET, "/api/me/reveals").await;
    assert_eq!(as_list, json!({"asked": [], "asking_me": [], "hidden": []}));
}

/// A hides B (disputing the meeting): B leaves A's contacts and A's list shows it hidden; A
/// cannot ask B while it stands, and B's request to A is neither shown to A nor honoured.
/// Un-hidden, B is back. Bad bodies are problems.
pub async fn a_hidden_contact_leaves_the_list_and_is_never_revealed(api: Api) {
    let (_, tokens, _) = two_who_met(&api, 0.1).await;
    let [ta, tb] = [&tokens[0], &tokens[1]];
    let b_for_a = handle_of_only_contact(&api, ta).await;
    let a_for_b = handle_of_only_contact(&api, tb).await;
    ok(&api, tb, Method::POST, &contact_path(&a_for_b, "reveal")).await;

    let hide = contact_path(&b_for_a, "hide");
    for (body, content_type, status, fields) in [
        (
            r#"{"dispute": "yes"}"#,
            "application/json",
            422,
            &["dispute"][..],
        ),
        (r#"{"dispute": tr"#, "application/json", 400, &["body"]),
        ("[true]", "application/json", 400, &["body"]),
        (r#"{"dispute": true}"#, "text/plain", 415, &[]),
    ] {
        let r = api
            .client
            .post(api.url(&hide))
            .bearer_auth(ta)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_problem(r, status, fields).await;
    }
    assert_eq!(contacts(&api, ta).await.len(), 1, "nothing hidden yet");

    let r = api
        .client
        .post(api.url(&hide))
        .bearer_auth(ta)
        .json(&json!({"dispute": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let state: Value = r.json().await.unwrap();
    assert_eq!(
        (state["hidden"].clone(), state["dispute"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(contacts(&api, ta).await, Vec::<Value>::new());
    let list = ok(&api, ta, Method::GET, "/api/me/reveals").await;
    assert_eq!(list["hidden"][0]["handle"], b_for_a.as_str());
    assert_eq!(list["hidden"][0]["dispute"], true);
    assert_eq!(list["asking_me"], json!([]), "B's request is not shown");
    let r = call(&api, ta, Method::POST, &contact_path(&b_for_a, "reveal")).await;
    assert_problem(r, 409, &[]).await;
    // B still sees A as someone; no address, and B's request does not say A's answer.
    let bs = contacts(&api, tb).await;
    assert!(bs[0].get("email").is_none() && bs[0]["person"].is_null());

    // Hidden without a body too (no dispute); then shown again.
    let state = ok(&api, ta, Method::POST, &hide).await;
    assert_eq!(state["dispute"], false);
    let state = ok(&api, ta, Method::DELETE, &hide).await;
    assert_eq!(state["hidden"], false);
    assert_eq!(contacts(&api, ta).await.len(), 1);
    assert_eq!(
        ok(&api, ta, Method::GET, "/api/me/reveals").await["asking_me"][0]["handle"],
        b_for_a.as_str()
    );
}

/// The evidence of a meeting: the caller's own pings during it, each with the distance to the
/// other (about 2.2 m here) and a time gap, and never one of the other's coordinates.
pub async fn evidence_holds_my_coordinates_only(api: Api) {
    let (ids, tokens, _) = two_who_met(&api, 0.2).await;
    let ta = &tokens[0];
    let b_for_a = handle_of_only_contact(&api, ta).await;
    let evidence = ok(&api, ta, Method::GET, &contact_path(&b_for_a, "evidence")).await;
    let pings = evidence["pings"].as_array().unwrap();
    assert_eq!(pings.len(), 21, "{evidence}");
    assert_eq!(evidence["more"], false);
    assert_eq!(evidence["distance_m"], 5.0);
    let mine: BTreeSet<i64> = ok(
        &api,
        ta,
        Method::GET,
        "/api/me/locations?start=2021-08-02&end=2021-08-02",
    )
    .await
    .as_array()
    .unwrap()
    .iter()
    .map(|l| l["id"].as_i64().unwrap())
    .collect();
    for p in pings {
        assert!(mine.contains(&p["id"].as_i64().unwrap()), "{p}");
        assert_eq!(
            (p["latitude"].as_f64(), p["longitude"].as_f64()),
            (Some(48.8584), Some(2.2945 + 0.2))
        );
        let d = p["distance_m"].as_f64().unwrap();
        assert!((2.0..2.5).contains(&d), "{d}");
        assert_eq!(p["time_gap_seconds"], 0.0);
        assert_eq!(p["accuracy_m"], Value::Null);
    }
    let text = evidence.to_string();
    let theirs = (2.29453f64 + 0.2).to_string();
    assert!(!text.contains(&theirs[..7]), "B's longitude in {text}");
    assert!(!text.contains(&format!("\"person_id\":{}", ids[1])));
    // Someone not met: 404; the admin may not ask for "their" contact's evidence.
    let r = call(
        &api,
        ta,
        Method::GET,
        &contact_path(&ids[2].to_string(), "evidence"),
    )
    .await;
    assert_problem(r, 404, &[]).await;
}
