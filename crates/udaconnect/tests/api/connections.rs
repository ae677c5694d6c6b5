use reqwest::StatusCode;
use serde_json::{json, Value};
use udaconnect_core::contact::{connections_oracle, ConnectionQuery};
use udaconnect_core::time::{parse_timestamp, Window};

use crate::suite::{assert_problem, fraction, ids, Api};

const YEAR_2020: &str = "start_date=2020-01-01&end_date=2020-12-31";

async fn connection(api: &Api, person: i64, query: &str) -> Value {
    let r = api
        .get(&format!("/api/persons/{person}/connection?{query}"))
        .await;
    assert_eq!(r.status(), StatusCode::OK, "{query}");
    r.json().await.unwrap()
}

async fn wait_for_seed(api: &Api) {
    // Each one: a distributed consumer stores the topic's partitions in its own order.
    for l in udaconnect_testkit::seed::locations() {
        api.stored_location(l.id).await;
    }
}

/// Expected answers worked out by hand from `data/seed/locations.csv`: for each person, the
/// other persons' 2020 locations within 5 m of one of theirs, by time then id.
pub async fn seed_answers_for_each_person(api: Api) {
    wait_for_seed(&api).await;
    let expected: [(i64, &[i64]); 5] = [
        (1, &[34, 57, 65, 66, 67, 30, 31, 68]),
        (
            5,
            &[
                62, 64, 61, 43, 60, 34, 36, 37, 38, 39, 40, 41, 42, 44, 53, 58, 59, 65, 67, 32, 68,
                29, 33,
            ],
        ),
        (
            6,
            &[
                62, 63, 51, 52, 61, 60, 36, 37, 38, 39, 40, 41, 53, 57, 58, 59, 65, 66, 67, 49, 50,
                30,
            ],
        ),
        (
            8,
            &[
                63, 64, 46, 47, 52, 43, 34, 36, 37, 38, 39, 40, 41, 42, 44, 48, 53, 57, 65, 66, 30,
                68,
            ],
        ),
        (
            9,
            &[
                62, 63, 64, 46, 47, 51, 61, 43, 60, 34, 36, 37, 38, 39, 40, 41, 42, 44, 48, 57, 58,
                59, 66, 67, 49, 50, 30, 68,
            ],
        ),
    ];
    for (person, want) in expected {
        let got = connection(&api, person, &format!("{YEAR_2020}&distance=5")).await;
        assert_eq!(ids(&got), want, "person {person}");
        for c in got.as_array().unwrap() {
            assert_ne!(c["person"]["id"], person);
            assert_eq!(c["person"]["id"], c["location"]["person_id"]);
        }
    }
    // Default distance is 5 m.
    let default = connection(&api, 1, YEAR_2020).await;
    assert_eq!(ids(&default), [34, 57, 65, 66, 67, 30, 31, 68]);
}

pub async fn answer_shape_is_the_original_one(api: Api) {
    wait_for_seed(&api).await;
    let got = connection(&api, 1, "start_date=2020-08-15&end_date=2020-08-15").await;
    assert_eq!(
        got,
        json!([{
            "person": {"id": 5, "first_name": "Taco", "last_name": "Fargo", "company_name": "Alpha Omega Upholstery"},
            "location": {"id": 31, "person_id": 5, "latitude": 37.553441, "longitude": -122.290524,
                "creation_time": "2020-08-15T10:37:06Z"}
        }])
    );
}

pub async fn window_includes_both_dates_and_time_gap_filters(api: Api) {
    wait_for_seed(&api).await;
    // A single day: the end date is included whole.
    let day = connection(&api, 5, "start_date=2020-07-07&end_date=2020-07-07").await;
    assert_eq!(ids(&day), [34, 36, 37, 38, 39, 40, 41, 65, 67]);
    // Without a gap, 30 and 68 (2020-08-15) count because person 1 stood on that spot on
    // 2020-07-07. On 2020-08-15 person 1 was at 32, 38 m from them but 0.3 m from 31, so with
    // a 60 s gap only 31 remains of that day.
    let gap = connection(&api, 1, &format!("{YEAR_2020}&max_time_gap=60")).await;
    assert_eq!(ids(&gap), [34, 57, 65, 66, 67, 31]);
    // Larger distance takes in the whole San Mateo cluster.
    let far = connection(&api, 6, &format!("{YEAR_2020}&distance=1000")).await;
    assert_eq!(
        ids(&far),
        [
            62, 63, 51, 52, 61, 60, 36, 37, 38, 39, 40, 41, 53, 57, 58, 59, 65, 66, 67, 49, 50, 30,
            31, 32, 29, 33
        ]
    );
    // A window with none of the person's locations.
    assert_eq!(
        connection(&api, 1, "start_date=2021-01-01&end_date=2021-12-31").await,
        json!([])
    );
}

pub async fn max_time_gap_separates_the_same_place_at_other_times(api: Api) {
    let a = api.create_person("A").await["id"].as_i64().unwrap();
    let b = api.create_person("B").await["id"].as_i64().unwrap();
    api.ping(a, 48.0, 11.0, "2024-05-01T10:00:00Z").await;
    let near_in_time = api.ping(b, 48.0, 11.00001, "2024-05-01T10:01:00Z").await;
    let later = api.ping(b, 48.0, 11.0, "2024-05-01T10:01:01Z").await;
    api.stored_location(later["id"].as_i64().unwrap()).await;
    api.stored_location(near_in_time["id"].as_i64().unwrap())
        .await;
    let q = "start_date=2024-05-01&end_date=2024-05-01";
    let all = connection(&api, a, q).await;
    assert_eq!(
        ids(&all),
        [
            near_in_time["id"].as_i64().unwrap(),
            later["id"].as_i64().unwrap()
        ]
    );
    let gap = connection(&api, a, &format!("{q}&max_time_gap=60")).await;
    assert_eq!(ids(&gap), [near_in_time["id"].as_i64().unwrap()]);
}

pub async fn invalid_queries(api: Api) {
    let base = "/api/persons/1/connection";
    let cases: &[(&str, u16, &[&str])] = &[
        ("", 400, &["start_date", "end_date"]),
        ("start_date=2020-01-01", 400, &["end_date"]),
        (
            "start_date=2020-13-01&end_date=2020-12-01",
            400,
            &["start_date"],
        ),
        (
            "start_date=2020-01-01&end_date=01/02/2020",
            400,
            &["end_date"],
        ),
        (
            "start_date=2020-02-01&end_date=2020-01-31",
            400,
            &["end_date"],
        ),
        (
            "start_date=2020-01-01&end_date=2020-01-02&distance=0",
            400,
            &["distance"],
        ),
        (
            "start_date=2020-01-01&end_date=2020-01-02&distance=-5",
            400,
            &["distance"],
        ),
        (
            "start_date=2020-01-01&end_date=2020-01-02&distance=1000.01",
            400,
            &["distance"],
        ),
        (
            "start_date=2020-01-01&end_date=2020-01-02&distance=1e308",
            400,
            &["distance"],
        ),
        (
            "start_date=2020-01-01&end_date=2020-01-02&distance=five",
            400,
            &["distance"],
        ),
        (
            "start_date=2020-01-01&end_date=2020-01-02&max_time_gap=-1",
            400,
            &["max_time_gap"],
        ),
        (
            "start_date=2020-01-01&end_date=2020-01-02&max_time_gap=soon",
            400,
            &["max_time_gap"],
        ),
    ];
    for (q, status, fields) in cases {
        assert_problem(api.get(&format!("{base}?{q}")).await, *status, fields).await;
    }
    assert_problem(
        api.get("/api/persons/404/connection?start_date=2020-01-01&end_date=2020-01-02")
            .await,
        404,
        &[],
    )
    .await;
    assert_problem(
        api.get("/api/persons/abc/connection?start_date=2020-01-01&end_date=2020-01-02")
            .await,
        400,
        &["id"],
    )
    .await;
}

/// Random pings through the whole pipeline, answers compared with the brute-force oracle.
pub async fn random_data_matches_the_oracle(api: Api) {
    let mut persons = Vec::new();
    for i in 0..6 {
        persons.push(
            api.create_person(&format!("P{i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    // A fixed seed keeps the test reproducible.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || fraction(&mut seed);
    let mut points = Vec::new();
    for _ in 0..400 {
        let person = persons[(next() * 6.0) as usize];
        let (clat, clon) = if next() < 0.5 {
            (37.5536, -122.2908)
        } else {
            (0.0, 179.99995)
        };
        let lat = clat + (next() - 0.5) * 0.0002;
        let mut lon = clon + (next() - 0.5) * 0.0002;
        if lon > 180.0 {
            lon -= 360.0;
        }
        let time = format!(
            "2024-05-0{}T10:{:02}:{:02}Z",
            1 + (next() * 3.0) as u32,
            (next() * 60.0) as u32,
            (next() * 60.0) as u32
        );
        points.push(api.ping_point(person, lat, lon, &time).await);
    }
    for p in &points {
        api.stored_location(p.id).await;
    }
    for &person in &persons {
        for (distance, gap, start, end) in [
            (5.0, None, "2024-05-01", "2024-05-03"),
            (12.5, Some(600), "2024-05-02", "2024-05-02"),
            (2.0, Some(30), "2024-05-01", "2024-05-02"),
        ] {
            let mut q = format!("start_date={start}&end_date={end}&distance={distance}");
            if let Some(g) = gap {
                q.push_str(&format!("&max_time_gap={g}"));
            }
            let got = connection(&api, person, &q).await;
            let window = Window::new(
                parse_timestamp(&format!("{start}T00:00:00Z")).unwrap(),
                parse_timestamp(&format!("{end}T00:00:00Z")).unwrap() + chrono::Duration::days(1),
            );
            let want: Vec<i64> = connections_oracle(
                &points,
                &ConnectionQuery {
                    person_id: person,
                    window,
                    distance_m: distance,
                    max_time_gap_us: gap.map(|g| g * 1_000_000),
                },
            )
            .iter()
            .map(|p| p.id)
            .collect();
            assert_eq!(ids(&got), want, "person {person} {q}");
        }
    }
}
