//! What the matrix sends for each operation of the OpenAPI document, and whose data the
//! policy decides on for it.

use serde_json::{json, Value};
use udaconnect_core::auth::{Resource, Role};

use super::{Asker, A, NEVER_SENT};

/// What an operation is asked with, and the resource the policy decides on.
pub struct Call {
    pub path: String,
    pub body: Option<Value>,
    pub resource: fn(&Asker) -> Resource,
}

fn own_person(asker: &Asker) -> Resource {
    match asker.principal.and_then(|p| p.person) {
        Some(p) => Resource::Person(p),
        None => Resource::Service,
    }
}

fn own_account(asker: &Asker) -> Resource {
    asker
        .principal
        .map_or(Resource::Service, |p| Resource::Account(p.account))
}

/// The request for `method path` of the document, aimed at A's data.
pub fn call(method: &str, path: &str, location: i64) -> Call {
    let service = |_: &Asker| Resource::Service;
    let of_a = |_: &Asker| Resource::Person(A);
    let window = "start_date=2020-01-01&end_date=2020-01-02";
    let (path, body, resource): (String, Option<Value>, fn(&Asker) -> Resource) = match (
        method, path,
    ) {
        // A person no one met: the askers' contacts and choices stay as they are.
        (_, p) if p.starts_with("/api/me/contacts/{person_id}/") => {
            (p.replace("{person_id}", "999999"), None, own_person)
        }
        ("post", "/api/persons") => (
            path.into(),
            Some(json!({"first_name": "M", "last_name": "X", "company_name": "Y"})),
            service,
        ),
        ("post", "/api/persons/lookup") => (path.into(), Some(json!({"ids": [A]})), service),
        ("post", "/api/locations") => (
            path.into(),
            Some(json!({"person_id": A, "latitude": 2, "longitude": 2})),
            of_a,
        ),
        ("post", "/api/locations/batch") => (
            path.into(),
            Some(json!([{"person_id": A, "latitude": 2, "longitude": 2}])),
            of_a,
        ),
        ("get", "/api/locations/{id}") => (format!("/api/locations/{location}"), None, of_a),
        ("get", "/api/persons/{id}/connection") => {
            (format!("/api/persons/{A}/connection?{window}"), None, of_a)
        }
        ("get", "/api/me/connection") => (format!("{path}?{window}"), None, own_person),
        ("get", "/api/me/locations") => (
            format!("{path}?start=2020-01-01&end=2030-12-31"),
            None,
            own_person,
        ),
        ("get", p) if p.contains("{id}") && p.starts_with("/api/persons/") => {
            (p.replace("{id}", &A.to_string()), None, of_a)
        }
        // A person never created: an admin's erasure is 404, and nobody is erased.
        ("delete", "/api/persons/{id}") => ("/api/persons/987654321".into(), None, |_| {
            Resource::Person(987_654_321)
        }),
        // `confirm` not `true`: the matrix's askers keep their accounts.
        ("delete", "/api/me") => ("/api/me?confirm=no".into(), None, own_account),
        ("get", "/api/me/tokens" | "/api/me/devices" | "/api/me/sessions" | "/api/me/export")
        | ("delete", "/api/me/secondary-email") => (path.into(), None, own_account),
        // An id no one has: nothing of the caller's is ended.
        ("delete", p) if p.starts_with("/api/me/") => {
            (p.replace("{id}", "999999"), None, own_account)
        }
        ("post", "/api/me/tokens") => (
            path.into(),
            Some(json!({"name": "matrix", "role": "device"})),
            |a| match a.principal {
                Some(p) => Resource::Grant {
                    account: p.account,
                    role: Role::Device,
                },
                None => Resource::Service,
            },
        ),
        ("get", "/api/me/visibility") => (path.into(), None, own_account),
        // The askers' choice stays no: the matrix asks, it does not change their consent.
        ("put", "/api/me/visibility") => {
            (path.into(), Some(json!({"visible": false})), own_account)
        }
        ("post", "/api/me/locations") => (
            path.into(),
            Some(json!([{"latitude": 2, "longitude": 2, "creation_time": "2023-01-01T00:00:00Z"}])),
            own_person,
        ),
        ("post", "/api/me/devices") => (path.into(), Some(json!({"name": "matrix"})), own_person),
        ("post", "/api/me/email") | ("put", "/api/me/secondary-email") => (
            path.into(),
            Some(json!({"email": "matrix@example.org"})),
            own_account,
        ),
        ("put", "/api/accounts/{id}/role") => (
            "/api/accounts/999999/role".into(),
            Some(json!({"role": "organizer"})),
            service,
        ),
        ("get", p) if p.starts_with("/api/me") => (p.into(), None, own_person),
        ("post", "/api/auth/login") => (
            path.into(),
            Some(json!({"email": "nobody@example.org"})),
            service,
        ),
        // A well-formed link no one was sent: the page shows, its POST is 410.
        ("get", "/auth/confirm") | ("get", "/auth/verify-email") => {
            (format!("{path}?token={NEVER_SENT}"), None, service)
        }
        (_, p) => (p.into(), None, service),
    };
    Call {
        path,
        body,
        resource,
    }
}
