use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn create_get_and_list_with_paging() {
    let app = spawn_app(true).await;
    let r = app
        .post_json(
            "/api/persons",
            &json!({"first_name": "Ada", "last_name": "Lovelace", "company_name": "Engines"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let location = r
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let created: serde_json::Value = r.json().await.unwrap();
    // The seed ids (up to 9) are kept, and new ids never collide with them.
    assert_eq!(created["id"], 10);
    assert_eq!(location, "/api/persons/10");
    assert_eq!(
        created,
        json!({"id": 10, "first_name": "Ada", "last_name": "Lovelace", "company_name": "Engines"})
    );
    let got: serde_json::Value = app.get("/api/persons/10").await.json().await.unwrap();
    assert_eq!(got, created);

    let all: serde_json::Value = app.get("/api/persons").await.json().await.unwrap();
    let all_ids: Vec<i64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(all_ids, [1, 5, 6, 8, 9, 10]);

    let mut seen = Vec::new();
    let mut path = "/api/persons?limit=4".to_string();
    loop {
        let r = app.get(&path).await;
        assert_eq!(r.status(), StatusCode::OK);
        let next = r
            .headers()
            .get("x-next-cursor")
            .map(|c| c.to_str().unwrap().to_string());
        let page: serde_json::Value = r.json().await.unwrap();
        seen.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_i64().unwrap()),
        );
        match next {
            Some(c) => path = format!("/api/persons?limit=4&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, all_ids);
}

#[tokio::test]
async fn seed_person_has_its_original_fields() {
    let app = spawn_app(true).await;
    let p: serde_json::Value = app.get("/api/persons/1").await.json().await.unwrap();
    assert_eq!(
        p,
        json!({"id": 1, "first_name": "Pam", "last_name": "Trexler", "company_name": "Hampton, Hampton and McQuill"})
    );
}

#[tokio::test]
async fn unknown_and_malformed_ids() {
    let app = spawn_app(true).await;
    assert_problem(app.get("/api/persons/424242").await, 404, &[]).await;
    assert_problem(app.get("/api/persons/0").await, 404, &[]).await;
    assert_problem(app.get("/api/persons/abc").await, 400, &["id"]).await;
    assert_problem(app.get("/api/persons/1.5").await, 400, &["id"]).await;
    assert_problem(
        app.get("/api/persons/99999999999999999999999").await,
        400,
        &["id"],
    )
    .await;
}

#[tokio::test]
async fn invalid_person_bodies() {
    let app = spawn_app(false).await;
    assert_problem(
        app.post_json("/api/persons", &json!({"first_name": "A"}))
            .await,
        422,
        &["last_name", "company_name"],
    )
    .await;
    assert_problem(
        app.post_json(
            "/api/persons",
            &json!({"first_name": "", "last_name": "  ", "company_name": "C"}),
        )
        .await,
        422,
        &["first_name", "last_name"],
    )
    .await;
    assert_problem(
        app.post_json(
            "/api/persons",
            &json!({"first_name": 1, "last_name": ["x"], "company_name": "C"}),
        )
        .await,
        400,
        &["first_name", "last_name"],
    )
    .await;
    assert_problem(
        app.post_raw("/api/persons", "{\"first_name\": ").await,
        400,
        &["body"],
    )
    .await;
    assert_problem(app.post_raw("/api/persons", "").await, 400, &["body"]).await;
    assert_problem(app.post_raw("/api/persons", "[1,2]").await, 400, &["body"]).await;
    // Nothing was created by any of them.
    let all: serde_json::Value = app.get("/api/persons").await.json().await.unwrap();
    assert_eq!(all, json!([]));
}

#[tokio::test]
async fn invalid_paging() {
    let app = spawn_app(true).await;
    assert_problem(app.get("/api/persons?limit=0").await, 400, &["limit"]).await;
    assert_problem(app.get("/api/persons?limit=ten").await, 400, &["limit"]).await;
    assert_problem(app.get("/api/persons?limit=100000").await, 400, &["limit"]).await;
    assert_problem(app.get("/api/persons?cursor=abc").await, 400, &["cursor"]).await;
}

#[tokio::test]
async fn lookup_answers_the_persons_that_exist_in_id_order() {
    let app = spawn_app(true).await;
    let r = app
        .post_json(
            "/api/persons/lookup",
            &json!({"ids": [9, 1, 4, 9, 5, 0, -3]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let found: serde_json::Value = r.json().await.unwrap();
    let ids: Vec<i64> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 5, 9]);
    let one: serde_json::Value = app.get("/api/persons/5").await.json().await.unwrap();
    assert_eq!(found[1], one);
    let none: serde_json::Value = app
        .post_json("/api/persons/lookup", &json!({"ids": []}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none, json!([]));
    // As many ids as one call takes, then one more.
    let most: Vec<i64> = (1..=10_000).collect();
    let r = app
        .post_json("/api/persons/lookup", &json!({ "ids": most }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let all: serde_json::Value = app.get("/api/persons").await.json().await.unwrap();
    assert_eq!(all.as_array().unwrap().len(), 5);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap(), all);
    let too_many: Vec<i64> = (1..=10_001).collect();
    let body = assert_problem(
        app.post_json("/api/persons/lookup", &json!({ "ids": too_many }))
            .await,
        422,
        &["ids"],
    )
    .await;
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("at most 10000 ids"));
}

#[tokio::test]
async fn bad_lookups_are_problems() {
    let app = spawn_app(true).await;
    assert_problem(
        app.post_raw("/api/persons/lookup", "[1, 5]").await,
        400,
        &["body"],
    )
    .await;
    assert_problem(
        app.post_raw("/api/persons/lookup", "{\"ids\": ").await,
        400,
        &["body"],
    )
    .await;
    assert_problem(
        app.post_raw("/api/persons/lookup", "{}").await,
        422,
        &["ids"],
    )
    .await;
    assert_problem(
        app.post_raw("/api/persons/lookup", "{\"ids\": \"1,5\"}")
            .await,
        400,
        &["ids"],
    )
    .await;
    assert_problem(
        app.post_raw("/api/persons/lookup", "{\"ids\": [1, \"5\", 2.5]}")
            .await,
        400,
        &["ids[1]"],
    )
    .await;
    // A GET is for the person with id `lookup`, as before the lookup existed.
    assert_problem(app.get("/api/persons/lookup").await, 400, &["id"]).await;
}
