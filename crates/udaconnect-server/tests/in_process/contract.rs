//! The OpenAPI description states the limits the server enforces, and the server enforces the
//! limits it states: every bounded query parameter is tried at its bounds and just past them.

use serde_json::Value;

use crate::app::{spawn_app, TestApp};

/// A value of each required query parameter the bounds are tried with.
fn required_value(name: &str) -> &'static str {
    match name {
        "start_date" | "end_date" => "2020-07-07",
        other => panic!("no value for the required parameter {other}"),
    }
}

/// The GET operations with bounded query parameters: `(path, parameters)`.
fn bounded_gets(spec: &Value) -> Vec<(String, Vec<Value>)> {
    let mut found = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        // The caller's own (`/api/me/...`) take the same parameters as the person's routes
        // tried here, and need a signed-in caller, which this open server has not.
        if path.starts_with("/api/me") {
            continue;
        }
        let Some(params) = item["get"]["parameters"].as_array() else {
            continue;
        };
        let query: Vec<Value> = params
            .iter()
            .filter(|p| p["in"] == "query")
            .cloned()
            .collect();
        if query.iter().any(|p| bound(p, "maximum").is_some()) {
            found.push((path.clone(), query));
        }
    }
    found
}

fn bound(param: &Value, key: &str) -> Option<f64> {
    param["schema"][key].as_f64()
}

/// The status of a GET of `path` (its `{id}` the demo's person 1) with `name=value` and the
/// required parameters.
async fn status_with(app: &TestApp, path: &str, query: &[Value], name: &str, value: &str) -> u16 {
    let mut pairs = vec![format!("{name}={value}")];
    for p in query {
        let other = p["name"].as_str().unwrap();
        if other != name && p["required"] == true {
            pairs.push(format!("{other}={}", required_value(other)));
        }
    }
    let url = format!("{}?{}", path.replace("{id}", "1"), pairs.join("&"));
    app.get(&url).await.status().as_u16()
}

#[tokio::test]
async fn every_stated_bound_is_the_enforced_one() {
    let app = spawn_app(true).await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let gets = bounded_gets(&spec);
    let paths: Vec<&str> = gets.iter().map(|(p, _)| p.as_str()).collect();
    for must in [
        "/api/persons",
        "/api/persons/{id}/connection",
        "/api/persons/{id}/contacts",
        "/api/live/heat",
    ] {
        assert!(paths.contains(&must), "{must} states no bound: {paths:?}");
    }
    let mut tried = 0;
    for (path, query) in &gets {
        for p in query {
            let name = p["name"].as_str().unwrap();
            let Some(max) = bound(p, "maximum") else {
                continue;
            };
            let integer = p["schema"]["type"] == "integer";
            let past = if integer { max + 1.0 } else { max * 1.001 };
            let (low, below) = match (bound(p, "minimum"), bound(p, "exclusiveMinimum")) {
                (Some(min), _) => (min, min - 1.0),
                (None, Some(min)) => (if integer { min + 1.0 } else { min + 0.001 }, min),
                (None, None) => panic!("{path} {name} has a maximum and no minimum"),
            };
            for (value, ok) in [(low, true), (max, true), (below, false), (past, false)] {
                let status = status_with(&app, path, query, name, &format!("{value}")).await;
                if ok {
                    assert_eq!(status, 200, "{path}?{name}={value} is within the bounds");
                } else {
                    assert_eq!(status, 400, "{path}?{name}={value} is outside the bounds");
                }
                tried += 1;
            }
        }
    }
    assert!(tried >= 4 * 8, "{tried} bounds tried");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn every_operation_states_its_edge_answers_and_links() {
    let app = spawn_app(false).await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = &op["responses"];
            assert!(responses["414"].is_object(), "{method} {path}: no 414");
            assert!(responses["421"].is_object(), "{method} {path}: no 421");
            if path.starts_with("/api/") {
                let unavailable = &responses["503"];
                assert!(
                    unavailable["headers"]["Retry-After"].is_object(),
                    "{method} {path}: no 503 with Retry-After: {unavailable}"
                );
            }
            for (status, r) in responses.as_object().unwrap() {
                if status.starts_with('4') || status.starts_with('5') {
                    assert!(
                        r["content"]["application/problem+json"].is_object(),
                        "{method} {path} {status} is no problem+json"
                    );
                }
            }
        }
    }
    let person = &spec["components"]["schemas"]["NewPersonBody"]["properties"]["first_name"];
    assert_eq!(
        (&person["minLength"], &person["maxLength"]),
        (&1.into(), &256.into())
    );
    let links = &spec["paths"]["/api/persons"]["post"]["responses"]["201"]["links"];
    assert_eq!(links["GetPerson"]["operationId"], "get_person", "{links}");
    assert_eq!(links["GetPerson"]["parameters"]["id"], "$response.body#/id");
    let links = &spec["paths"]["/api/locations"]["post"]["responses"]["202"]["links"];
    assert_eq!(
        links["GetLocation"]["operationId"], "get_location",
        "{links}"
    );
    // Every link names an operation that exists.
    let ids: Vec<&Value> = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| &op["operationId"])
        .collect();
    let linked = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .flat_map(|op| op["responses"].as_object().unwrap().values())
        .filter_map(|r| r["links"].as_object())
        .flat_map(|links| links.values());
    for link in linked {
        assert!(
            ids.contains(&&link["operationId"]),
            "{link} names no operation"
        );
    }
    app.stop().await.unwrap();
}
