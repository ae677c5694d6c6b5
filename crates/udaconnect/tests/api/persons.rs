use reqwest::StatusCode;
use serde_json::json;

use crate::suite::{
    assert_json_problems, assert_malformed_bodies, assert_problem, assert_raw_problems, header, Api,
};

pub async fn create_get_and_list_with_paging(api: Api) {
    let before = api.person_ids().await;
    let r = api
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
    // The seed ids (up to 9) are kept, and new ids never collide with them: the new id is
    // above every id there was (the engine is shared, so other bodies' persons may be there).
    let id = created["id"].as_i64().unwrap();
    assert!(before.starts_with(&[1, 5, 6, 8, 9]), "{before:?}");
    assert!(id > *before.last().unwrap(), "{id} after {before:?}");
    assert_eq!(location, format!("/api/persons/{id}"));
    assert_eq!(
        created,
        json!({"id": id, "first_name": "Ada", "last_name": "Lovelace", "company_name": "Engines"})
    );
    let got = api.get_json(&format!("/api/persons/{id}")).await;
    assert_eq!(got, created);

    let all_ids = api.person_ids().await;
    assert_eq!(all_ids, [before, vec![id]].concat());

    let mut seen = Vec::new();
    let mut path = "/api/persons?limit=4".to_string();
    loop {
        let r = api.get(&path).await;
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

pub async fn seed_person_has_its_original_fields(api: Api) {
    let p = api.get_json("/api/persons/1").await;
    assert_eq!(
        p,
        json!({"id": 1, "first_name": "Pam", "last_name": "Trexler", "company_name": "Hampton, Hampton and McQuill"})
    );
}

pub async fn unknown_and_malformed_ids(api: Api) {
    for (path, status, fields) in [
        ("/api/persons/424242", 404, &[][..]),
        ("/api/persons/0", 404, &[]),
        ("/api/persons/abc", 400, &["id"]),
        ("/api/persons/1.5", 400, &["id"]),
        ("/api/persons/99999999999999999999999", 400, &["id"]),
    ] {
        assert_problem(api.get(path).await, status, fields).await;
    }
}

pub async fn invalid_person_bodies(api: Api) {
    let before = api.person_ids().await;
    assert_json_problems(
        &api,
        "/api/persons",
        &[
            (
                json!({"first_name": "A"}),
                422,
                &["last_name", "company_name"][..],
            ),
            (
                json!({"first_name": "", "last_name": "  ", "company_name": "C"}),
                422,
                &["first_name", "last_name"],
            ),
            (
                json!({"first_name": 1, "last_name": ["x"], "company_name": "C"}),
                400,
                &["first_name", "last_name"],
            ),
            (
                json!({"first_name": "A\u{0}", "last_name": "B", "company_name": "C"}),
                422,
                &["first_name"],
            ),
        ],
    )
    .await;
    assert_malformed_bodies(&api, "/api/persons", "{\"first_name\": ").await;
    // Nothing was created by any of them.
    assert_eq!(api.person_ids().await, before);
}

pub async fn invalid_paging(api: Api) {
    for (path, field) in [
        ("/api/persons?limit=0", "limit"),
        ("/api/persons?limit=ten", "limit"),
        ("/api/persons?limit=100000", "limit"),
        ("/api/persons?cursor=abc", "cursor"),
        // A cursor is an id: 2^53-1 at most, as the OpenAPI says.
        ("/api/persons?cursor=9007199254740992", "cursor"),
    ] {
        assert_problem(api.get(path).await, 400, &[field]).await;
    }
    // A parameter with no value, or given twice: which was meant cannot be told.
    for q in [
        "/api/persons?limit=",
        "/api/persons?limit=1&limit=2",
        "/api/persons/1/contacts?start=",
    ] {
        let body = assert_problem(api.get(q).await, 400, &["query"]).await;
        assert!(
            body["detail"].as_str().unwrap().contains("limit") || q.contains("start"),
            "{q}"
        );
    }
    // The largest id, 2^53-1, is a cursor; one more is refused above.
    let r = api.get("/api/persons?cursor=9007199254740991").await;
    assert_eq!(r.status(), StatusCode::OK);
}

pub async fn lookup_answers_the_persons_that_exist_in_id_order(api: Api) {
    let r = api
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
    // An id written with a zero fraction is that id.
    let r = api
        .post_json("/api/persons/lookup", &json!({"ids": [5.0]}))
        .await;
    let five: serde_json::Value = r.json().await.unwrap();
    assert_eq!(five[0]["id"], 5, "{five}");
    let one = api.get_json("/api/persons/5").await;
    assert_eq!(found[1], one);
    let none: serde_json::Value = api
        .post_json("/api/persons/lookup", &json!({"ids": []}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(none, json!([]));
    // As many ids as one call takes, then one more.
    let most: Vec<i64> = (1..=10_000).collect();
    let r = api
        .post_json("/api/persons/lookup", &json!({ "ids": most }))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Every person there is (the demo's and those other bodies made, all below 10,000).
    let all = api.get_json("/api/persons").await;
    assert!(all.as_array().unwrap().len() >= 5);
    assert!(api.person_ids().await.iter().all(|&id| id <= 10_000));
    assert_eq!(r.json::<serde_json::Value>().await.unwrap(), all);
    let too_many: Vec<i64> = (1..=10_001).collect();
    let body = assert_problem(
        api.post_json("/api/persons/lookup", &json!({ "ids": too_many }))
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

pub async fn bad_lookups_are_problems(api: Api) {
    assert_raw_problems(
        &api,
        "/api/persons/lookup",
        &[
            ("[1, 5]", 400, &["body"]),
            ("{\"ids\": ", 400, &["body"]),
            ("{}", 422, &["ids"]),
            ("{\"ids\": \"1,5\"}", 400, &["ids"]),
            ("{\"ids\": [1, \"5\", 2.5]}", 400, &["ids[1]"]),
        ],
    )
    .await;
    // The lookup takes POST alone, and says so to any other method.
    let r = api.get("/api/persons/lookup").await;
    assert_eq!(header(&r, "allow"), "POST");
    assert_problem(r, 405, &[]).await;
    // OPTIONS is a CORS preflight, answered at the edge; where it names methods for this path,
    // it names POST alone.
    let r = api
        .send(reqwest::Method::OPTIONS, "/api/persons/lookup")
        .await;
    assert_eq!(r.status(), 200);
    if let Some(allow) = r.headers().get("allow") {
        assert_eq!(allow, "POST");
    }
}
