//! The suite's machinery: [`Api`], what a body is given; the table of bodies; the runner that
//! plays every body against one running engine; the helpers bodies share.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use reqwest::{Client, Response, StatusCode};
use serde_json::Value;
use udaconnect_core::contact::Point;
use udaconnect_core::time::{parse_timestamp, to_micros};
use udaconnect_server::roles::Role;
use udaconnect_testkit::http::{json_answer, sample, sent};

/// Whether the engine asks who is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `--auth off`: the original open contract most bodies test.
    Off,
    /// `--auth on`: the suite's client calls as an admin (a token made by `admin
    /// create-token`); a body signs in or out with clients of its own.
    On,
}

/// A running engine, as clients reach it.
pub trait Engine: Sized {
    /// Starts the engine with the original demo data (persons 1, 5, 6, 8, 9 and locations 29
    /// to 68) and no live simulated attendees, and waits until it is ready.
    fn start(auth: Auth) -> impl Future<Output = Self>;
    fn api(&self) -> Api;
}

/// Where a body reaches the engine: the one HTTP entry point a client uses, the gRPC services,
/// and the process serving each role (for its /ready, /metrics and log).
#[derive(Clone)]
pub struct Api {
    pub base: String,
    /// `http://host:port` of the gRPC services.
    pub grpc: String,
    pub client: Client,
    /// Each role's process: its base URL and its log file.
    pub roles: Vec<(Role, String, PathBuf)>,
    /// Where `udaconnect admin` finds the engine's accounts: `--data-dir DIR` or `--store URL`.
    pub accounts: Vec<String>,
    /// The mail the engine's mailer sent, to a real SMTP server over TCP.
    pub inbox: udaconnect_testkit::smtp::Inbox,
    /// The engine's data directory, where it has one (`serve`).
    pub data_dir: Option<PathBuf>,
}

type BoxedBody = Pin<Box<dyn Future<Output = ()> + Send>>;
pub type Body = fn(Api) -> BoxedBody;

/// `(name, body)` rows, named `module::body`.
macro_rules! bodies {
    ($($module:ident :: $body:ident),* $(,)?) => {
        vec![$((
            concat!(stringify!($module), "::", stringify!($body)),
            (|api| Box::pin(crate::$module::$body(api)) as BoxedBody) as Body,
        )),*]
    };
}

/// Every body, in the order they run. The engine is shared, so a body asserts only on what it
/// made or on the demo data; the bodies that read answers over the demo data come first, before
/// any body adds pings of 2020 near it.
pub fn bodies() -> Vec<(&'static str, Body)> {
    bodies![
        connections::seed_answers_for_each_person,
        connections::answer_shape_is_the_original_one,
        connections::window_includes_both_dates_and_time_gap_filters,
        persons::seed_person_has_its_original_fields,
        locations::seed_locations_are_readable_with_original_ids,
        persons::create_get_and_list_with_paging,
        persons::unknown_and_malformed_ids,
        persons::invalid_person_bodies,
        persons::invalid_paging,
        persons::lookup_answers_the_persons_that_exist_in_id_order,
        persons::bad_lookups_are_problems,
        locations::ingest_then_read_back,
        locations::naive_times_are_utc_and_missing_time_is_now,
        locations::unknown_and_malformed_location_ids,
        locations::invalid_pings_are_rejected_and_nothing_is_stored,
        locations::batches_are_all_or_nothing,
        locations::ndjson_batches,
        connections::max_time_gap_separates_the_same_place_at_other_times,
        connections::invalid_queries,
        connections::random_data_matches_the_oracle,
        contacts::standing_together_is_one_encounter_whatever_the_phones,
        contacts::a_silent_phone_splits_the_encounter,
        contacts::walking_past_is_under_min_duration,
        contacts::invalid_contacts_queries,
        operations::health_ready_metrics_openapi_docs,
        operations::every_role_is_ready_and_has_metrics,
        operations::correlation_ids_are_taken_echoed_or_made,
        operations::correlation_ids_reach_the_ingest_log,
        operations::unknown_routes_and_methods_are_problems,
        operations::cors_lets_local_pages_call_the_api,
        operations::a_ping_shows_in_the_live_view,
        grpc::original_create_keeps_its_wire_contract,
        grpc::original_create_repairs_swapped_axes,
        grpc::v1_create_carries_doubles_and_time,
        grpc::v1_bulk_stream_answers_each_batch_in_order,
        grpc::health_and_reflection_are_served,
        grpc::v1_times_outside_the_supported_years_are_refused,
        grpc::v1_pings_meet_the_shared_rules_field_by_field,
        grpc::grpc_and_http_pings_meet_in_connections,
        edge::json_writes_need_a_json_type,
        edge::unknown_methods_are_405_before_any_type_check,
        edge::foreign_hosts_are_refused_at_every_role,
        edge::pings_too_far_ahead_are_refused,
        trackers::phones_post_through_owntracks_and_the_osmand_protocol,
        trackers::owntracks_over_mqtt_is_stored_and_unknown_topics_refused,
        trackers::copies_of_a_phones_ping_are_one_ping,
        trackers::owntracks_configuration_is_a_document_a_url_and_a_qr_code,
    ]
}

/// The bodies of sign-in, played against an engine with `--auth on` (they test it).
pub fn signin_bodies() -> Vec<(&'static str, Body)> {
    bodies![
        signin::a_link_by_mail_signs_in_once_and_sign_out_ends_the_session,
        signin::unknown_addresses_get_the_same_answer_and_no_mail,
        signin::an_address_is_limited_to_five_links_in_15_minutes,
        signin::bad_sign_in_requests_are_problems,
        signin::persons_created_with_an_address_are_welcomed,
        signin::no_link_token_or_session_id_is_written_anywhere,
        visibility::contacts_name_only_those_who_allow_it,
        visibility::bad_visibility_requests_are_problems,
        live::organizer_views_single_no_one_out,
        live::live_views_are_staffs_and_bad_windows_are_problems,
        reveal::both_must_ask_to_see_each_others_address,
        reveal::a_hidden_contact_leaves_the_list_and_is_never_revealed,
        reveal::evidence_holds_my_coordinates_only,
        accuracy::inaccurate_pings_meet_only_under_a_laxer_max_accuracy,
        export::my_export_holds_my_data_and_who_read_it,
        export::bad_export_requests_are_problems,
        export::staff_reads_at_once_each_leave_their_row,
        account::a_new_address_is_the_accounts_once_its_link_is_followed,
        account::a_secondary_address_is_verified_then_removed,
        account::sessions_are_listed_and_one_ended_from_another,
        account::admins_list_accounts_and_change_roles,
        account::bad_address_requests_are_problems,
        trackers::the_pages_pings_are_one_per_fix_second,
        trackers::each_apps_extras_are_kept_with_its_pings,
        trackers::a_revoked_phone_stops_at_once,
    ]
}

/// Starts `E` once and plays each of `bodies` against it, one after the other (metrics are compared
/// before and after a body); then fails naming every body that failed. `UDACONNECT_API_SUITE`
/// (comma-separated parts of names) runs only the bodies it names.
pub async fn run<E: Engine>(engine: &str, auth: Auth, bodies: Vec<(&'static str, Body)>) {
    udaconnect_testkit::local::init_tracing();
    let only: Vec<String> = std::env::var("UDACONNECT_API_SUITE")
        .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    let started = Instant::now();
    let running = E::start(auth).await;
    eprintln!("{engine}: started in {:?}", started.elapsed());
    let api = running.api();
    let mut failed = Vec::new();
    for (name, body) in bodies {
        if !only.is_empty() && !only.iter().any(|o| name.contains(o.as_str())) {
            continue;
        }
        let started = Instant::now();
        // A task of its own, so a failing body's panic is caught and the next body runs.
        match tokio::spawn(body(api.clone())).await {
            Ok(()) => eprintln!("{engine}: {name} ok ({:?})", started.elapsed()),
            Err(e) => {
                let why = e.try_into_panic().map_or_else(
                    |e| e.to_string(),
                    |p| {
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    },
                );
                eprintln!("{engine}: {name} FAILED: {why}");
                failed.push(name);
            }
        }
    }
    assert!(failed.is_empty(), "{engine}: failed bodies: {failed:?}");
}

impl Api {
    /// The same engine reached at the process serving `role` (in `serve`, the one process).
    pub fn at(&self, role: Role) -> Api {
        let (_, base, _) = self
            .roles
            .iter()
            .find(|(r, _, _)| *r == role)
            .expect("every role has a process");
        Api {
            base: base.clone(),
            ..self.clone()
        }
    }

    /// The text of the log of the process serving `role`.
    pub fn log_of(&self, role: Role) -> String {
        let (_, _, log) = self.roles.iter().find(|(r, _, _)| *r == role).unwrap();
        std::fs::read_to_string(log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        sent(self.client.get(self.url(path))).await
    }

    /// GET, and the answer's body as JSON, whatever its status.
    pub async fn get_json(&self, path: &str) -> Value {
        json_answer(self.client.get(self.url(path))).await
    }

    /// A request with `method` and no body.
    pub async fn send(&self, method: reqwest::Method, path: &str) -> Response {
        sent(self.client.request(method, self.url(path))).await
    }

    /// GET with one request header set.
    pub async fn get_with(&self, path: &str, header: &str, value: &str) -> Response {
        sent(self.client.get(self.url(path)).header(header, value)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        sent(self.client.post(self.url(path)).json(body)).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Response {
        sent(self.client.put(self.url(path)).json(body)).await
    }

    pub async fn post_raw(&self, path: &str, body: &'static str) -> Response {
        self.post_as(path, "application/json", body).await
    }

    pub async fn post_ndjson(&self, path: &str, body: &'static str) -> Response {
        self.post_as(path, "application/x-ndjson", body).await
    }

    /// POST `body` as it is, with this content type.
    pub async fn post_as(&self, path: &str, content_type: &str, body: &'static str) -> Response {
        let request = self.client.post(self.url(path));
        sent(request.header("content-type", content_type).body(body)).await
    }

    /// Posts a ping without a time (now), asserts 202, and returns the answer.
    pub async fn ping_now(&self, person_id: i64, lat: f64, lon: f64) -> Response {
        let body = serde_json::json!({"person_id": person_id, "latitude": lat, "longitude": lon});
        let r = self.post_json("/api/locations", &body).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        r
    }

    /// Waits until the consumer has stored location `id`, and returns it.
    pub async fn stored_location(&self, id: i64) -> Value {
        let timeout = Duration::from_secs(20);
        udaconnect_testkit::http::stored_location(&self.client, &self.base, id, timeout).await
    }

    /// POSTs `body` as JSON, asserts 202, and returns the answer.
    pub async fn post_accepted(&self, path: &str, body: &Value) -> Value {
        let r = self.post_json(path, body).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        r.json().await.unwrap()
    }

    /// Posts a ping, asserts 202, and returns the answer.
    pub async fn ping(&self, person_id: i64, lat: f64, lon: f64, time: &str) -> Value {
        let body = serde_json::json!({"person_id": person_id, "latitude": lat, "longitude": lon,
            "creation_time": time});
        self.post_accepted("/api/locations", &body).await
    }

    /// Posts a ping, asserts 202, and returns it as the server took it, for an oracle.
    pub async fn ping_point(&self, person_id: i64, lat: f64, lon: f64, time: &str) -> Point {
        let loc = self.ping(person_id, lat, lon, time).await;
        Point {
            id: loc["id"].as_i64().unwrap(),
            person_id,
            lat: loc["latitude"].as_f64().unwrap(),
            lon: loc["longitude"].as_f64().unwrap(),
            t: to_micros(parse_timestamp(loc["creation_time"].as_str().unwrap()).unwrap()),
            acc: Default::default(),
        }
    }

    /// A new token of `role` for `person`, made as an operator makes one.
    pub async fn admin_token(&self, role: &str, person: i64) -> String {
        let person = person.to_string();
        self.operator_token(role, &["--person", &person]).await
    }

    /// A new token of `role` with further `flags` (`--person`, `--name`), made as an operator
    /// makes one (`udaconnect admin create-token`, which prints it alone on its last line).
    pub async fn operator_token(&self, role: &str, flags: &[&str]) -> String {
        let mut args = vec!["admin".to_string(), "create-token".into(), "--role".into()];
        args.push(role.to_string());
        args.extend(flags.iter().map(|f| f.to_string()));
        args.extend(self.accounts.iter().cloned());
        let run = args.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(crate::engines::BIN)
                .args(&run)
                .output()
        })
        .await
        .unwrap()
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout.lines().last().unwrap_or_default().trim().to_string()
    }

    pub async fn create_person(&self, first: &str) -> Value {
        let r = self
            .post_json(
                "/api/persons",
                &serde_json::json!({"first_name": first, "last_name": "Tester", "company_name": "Acme"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.unwrap()
    }

    /// Every person, in id order.
    pub async fn person_ids(&self) -> Vec<i64> {
        let all = self.get_json("/api/persons").await;
        all.as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    }

    /// An unlabelled counter or gauge of this process's `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").await.text().await.unwrap();
        sample(&text, name).unwrap_or_else(|| panic!("no {name} in {text}"))
    }
}

/// A header's value as text.
pub fn header(r: &Response, name: &str) -> String {
    r.headers()[name].to_str().unwrap().to_string()
}

/// Asserts an RFC 9457 answer with `status` whose violations name exactly `fields`.
pub async fn assert_problem(r: Response, status: u16, fields: &[&str]) -> Value {
    assert_eq!(r.status().as_u16(), status, "status");
    assert_eq!(
        r.headers().get("content-type").unwrap(),
        "application/problem+json"
    );
    assert!(r.headers().get("x-correlation-id").is_some());
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(body["title"].is_string() && body["type"].is_string() && body["detail"].is_string());
    let named: Vec<&str> = body["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| e["field"].as_str().unwrap()).collect())
        .unwrap_or_default();
    assert_eq!(named, fields, "fields named in {body}");
    for f in fields {
        assert!(
            body["detail"].as_str().unwrap().contains(f),
            "detail names {f}: {body}"
        );
    }
    body
}

/// Posts each raw body to `path` and asserts its problem: `(body, status, fields)`.
pub async fn assert_raw_problems(api: &Api, path: &str, cases: &[(&'static str, u16, &[&str])]) {
    for (body, status, fields) in cases {
        assert_problem(api.post_raw(path, body).await, *status, fields).await;
    }
}

/// Posts each JSON body to `path` and asserts its problem: `(body, status, fields)`.
pub async fn assert_json_problems(api: &Api, path: &str, cases: &[(Value, u16, &[&str])]) {
    for (body, status, fields) in cases {
        assert_problem(api.post_json(path, body).await, *status, fields).await;
    }
}

/// Asserts that `path` refuses, naming the body, what is not a JSON object at all: a body
/// cut short after `start` (its first field, say `{"email": `), an empty one and an array.
pub async fn assert_malformed_bodies(api: &Api, path: &str, start: &'static str) {
    let cases: [(&str, u16, &[&str]); 3] = [
        (start, 400, &["body"]),
        ("", 400, &["body"]),
        ("[1,2]", 400, &["body"]),
    ];
    assert_raw_problems(api, path, &cases).await;
}

/// The location ids of a connection answer.
pub fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["location"]["id"].as_i64().unwrap())
        .collect()
}

/// A fraction in [0, 1) from a seed, moving the seed on: a small deterministic generator, so
/// a body's random data is reproducible from its seed.
pub fn fraction(seed: &mut u64) -> f64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    (*seed >> 11) as f64 / (1u64 << 53) as f64
}
