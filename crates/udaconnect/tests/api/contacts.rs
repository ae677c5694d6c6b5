//! Contacts over tracks: simulated attendees with phones on their own intervals and phases,
//! asked through `GET /api/persons/{id}/contacts`, answers checked against the walks and
//! against the core's oracle over the same pings.

use serde_json::Value;
use udaconnect_core::contact::Point;
use udaconnect_core::geo::EARTH_RADIUS_M;
use udaconnect_core::time::{format_utc, from_micros, parse_timestamp, to_micros, Micros, Window};
use udaconnect_core::track::defaults::MIN_DURATION_S;
use udaconnect_core::track::{contacts_oracle, TrackQuery};

use crate::suite::{assert_problem, fraction, Api};

const S: i64 = 1_000_000;

/// Where and when a scenario happens: its own place and day, so bodies never meet.
struct Scene {
    centre: (f64, f64),
    /// The scenario's time 0.
    t0: Micros,
}

impl Scene {
    fn new(centre: (f64, f64), day: &str) -> Self {
        let t0 = to_micros(parse_timestamp(&format!("{day}T09:00:00Z")).unwrap());
        Scene { centre, t0 }
    }

    /// The point `east_m`, `north_m` metres from the centre.
    fn at(&self, east_m: f64, north_m: f64) -> (f64, f64) {
        let lat = self.centre.0 + (north_m / EARTH_RADIUS_M).to_degrees();
        let cos = self.centre.0.to_radians().cos();
        let lon = self.centre.1 + (east_m / (EARTH_RADIUS_M * cos)).to_degrees();
        (lat, lon)
    }

    /// The day's window, as the query's `start` and `end`.
    fn day(&self) -> String {
        let day = &format_utc(from_micros(self.t0))[..10];
        format!("start={day}&end={day}")
    }

    /// What [`Self::day`] asks, for the oracle: `person`'s contacts over the scene's day, of
    /// `min_duration_s` together at least.
    fn day_query(&self, person: i64, min_duration_s: i64) -> TrackQuery {
        let day = Window {
            start: self.t0 - 9 * 3600 * S,
            end: self.t0 + 15 * 3600 * S,
        };
        TrackQuery {
            min_duration_us: min_duration_s * S,
            ..TrackQuery::new(person, day)
        }
    }
}

/// A phone on a walk: pings every `every_s` from `phase_s`, from `from_s` to `to_s` (seconds
/// of the scene), none in `silent`; the walk gives metres east and north at each second.
struct Phone {
    every_s: f64,
    phase_s: f64,
    silent: Option<(f64, f64)>,
}

impl Phone {
    fn times(&self, from_s: f64, to_s: f64) -> Vec<f64> {
        (0..)
            .map(|k| from_s + self.phase_s + k as f64 * self.every_s)
            .take_while(|&t| t <= to_s)
            .filter(|t| !self.silent.is_some_and(|(a, b)| a <= *t && *t < b))
            .collect()
    }
}

/// Posts one person's pings along `walk` at the phone's times, returns them as the oracle's
/// points once all are stored.
async fn walk(
    api: &Api,
    scene: &Scene,
    person: i64,
    phone: &Phone,
    (from_s, to_s): (f64, f64),
    walk: impl Fn(f64) -> (f64, f64),
) -> Vec<Point> {
    let mut points = Vec::new();
    for t in phone.times(from_s, to_s) {
        let (east, north) = walk(t);
        let (lat, lon) = scene.at(east, north);
        let time = format_utc(from_micros(scene.t0 + (t * S as f64).round() as i64));
        points.push(api.ping_point(person, lat, lon, &time).await);
    }
    for p in &points {
        api.stored_location(p.id).await;
    }
    points
}

/// A seed for the phones' phases, shown in every failure so a run can be replayed.
fn seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1
}

async fn contacts(api: &Api, person: i64, query: &str) -> Value {
    let r = api
        .get(&format!("/api/persons/{person}/contacts?{query}"))
        .await;
    assert_eq!(r.status().as_u16(), 200, "contacts?{query}");
    r.json().await.unwrap()
}

/// The encounters of `other` in an answer, as (start, end) in seconds of the scene.
fn encounters_with(answer: &Value, other: i64, scene: &Scene) -> Vec<(f64, f64)> {
    let secs = |v: &Value| {
        let t = to_micros(parse_timestamp(v.as_str().unwrap()).unwrap());
        (t - scene.t0) as f64 / S as f64
    };
    answer
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["person"]["id"] == other)
        .flat_map(|c| c["encounters"].as_array().unwrap().clone())
        .map(|e| (secs(&e["start"]), secs(&e["end"])))
        .collect()
}

/// The answer's persons, times and durations equal the oracle's over the same pings.
fn assert_oracle(answer: &Value, points: &[Point], q: &TrackQuery) {
    let want = contacts_oracle(points, q);
    let got = answer.as_array().unwrap();
    assert_eq!(got.len(), want.len(), "{answer}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g["person"]["id"], w.person_id);
        assert_eq!(
            g["duration_seconds"].as_f64().unwrap(),
            w.total_us as f64 / 1e6
        );
        assert_eq!(g["encounter_count"], w.encounters.len());
        for (ge, we) in g["encounters"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&w.encounters)
        {
            assert_eq!(ge["start"], format_utc(from_micros(we.start)));
            assert_eq!(ge["end"], format_utc(from_micros(we.end)));
            assert_eq!(ge["pings"], we.pings);
        }
    }
}

/// Where two attendees stand: 200 m apart before `from_s` and after `to_s`, between them 1 m
/// apart at the booth.
fn booth(side: f64, (from_s, to_s): (f64, f64)) -> impl Fn(f64) -> (f64, f64) {
    move |t| {
        if (from_s..=to_s).contains(&t) {
            (side * 0.5, 0.0)
        } else {
            (side * 200.0, 0.0)
        }
    }
}

/// `a` with a phone at 90 s (silent during `silent`) and `b` with one at 300 s, phases drawn
/// from `seed`, pinging for 80 minutes, 1 m apart at the booth during `together`: `a`'s phone
/// and both persons' pings.
async fn at_the_booth(
    api: &Api,
    scene: &Scene,
    (a, b): (i64, i64),
    together: (f64, f64),
    silent: Option<(f64, f64)>,
    seed: &mut u64,
) -> (Phone, Vec<Point>) {
    let fast = Phone {
        every_s: 90.0,
        phase_s: 90.0 * fraction(seed),
        silent,
    };
    let slow = Phone {
        every_s: 300.0,
        phase_s: 300.0 * fraction(seed),
        silent: None,
    };
    let mut points = walk(api, scene, a, &fast, (0.0, 4800.0), booth(-1.0, together)).await;
    points.extend(walk(api, scene, b, &slow, (0.0, 4800.0), booth(1.0, together)).await);
    (fast, points)
}

/// Two attendees stand together 20 minutes, phones at 90 s and 300 s with random phases: one
/// encounter of 20 minutes, give or take one interval of the sparser phone at each end.
pub async fn standing_together_is_one_encounter_whatever_the_phones(api: Api) {
    let scene = Scene::new((48.8566, 2.3522), "2021-06-01");
    let mut s = seed();
    let (a, b) = (
        api.create_person("Ada").await["id"].as_i64().unwrap(),
        api.create_person("Bo").await["id"].as_i64().unwrap(),
    );
    let together = (1800.0, 3000.0);
    let (_, points) = at_the_booth(&api, &scene, (a, b), together, None, &mut s).await;
    let answer = contacts(&api, a, &scene.day()).await;
    let met = encounters_with(&answer, b, &scene);
    assert_eq!(met.len(), 1, "seed {s}: {answer}");
    let (start, end) = met[0];
    assert!(
        (start - together.0).abs() <= 300.0 && (end - together.1).abs() <= 300.0,
        "seed {s}: {met:?}"
    );
    assert_oracle(&answer, &points, &scene.day_query(a, MIN_DURATION_S));
    // Asked from the other side, the same encounter.
    let answer = contacts(&api, b, &scene.day()).await;
    assert_eq!(encounters_with(&answer, a, &scene), met, "seed {s}");
}

/// Standing together 30 minutes, the 90 s phone silent 10 minutes in the middle (a hole
/// longer than max_interpolation): two encounters, the first ending at its last ping before the silence, the second starting
/// at its first ping after.
pub async fn a_silent_phone_splits_the_encounter(api: Api) {
    let scene = Scene::new((-33.8688, 151.2093), "2021-06-02");
    let mut s = seed();
    let (a, b) = (
        api.create_person("Cy").await["id"].as_i64().unwrap(),
        api.create_person("Di").await["id"].as_i64().unwrap(),
    );
    let (together, silent) = ((1800.0, 3600.0), (2400.0, 3000.0));
    let (fast, points) = at_the_booth(&api, &scene, (a, b), together, Some(silent), &mut s).await;
    let answer = contacts(&api, a, &format!("{}&min_duration=0", scene.day())).await;
    let met = encounters_with(&answer, b, &scene);
    assert_eq!(met.len(), 2, "seed {s}: {answer}");
    let times = fast.times(0.0, 4800.0);
    let last_before = times.iter().rfind(|&&t| t < silent.0).copied().unwrap();
    let first_after = times.iter().find(|&&t| t >= silent.1).copied().unwrap();
    assert!(
        (met[0].1 - last_before).abs() < 1e-3 && (met[1].0 - first_after).abs() < 1e-3,
        "seed {s}: {met:?}, pings at {last_before} and {first_after}"
    );
    assert_oracle(&answer, &points, &scene.day_query(a, 0));
}

/// Walking past someone in the aisle at 1.2 m/s, 1 m away: an encounter of seconds, left
/// out by min_duration's default and shown with min_duration=0.
pub async fn walking_past_is_under_min_duration(api: Api) {
    let scene = Scene::new((35.6762, 139.6503), "2021-06-03");
    let (a, b) = (
        api.create_person("Ed").await["id"].as_i64().unwrap(),
        api.create_person("Flo").await["id"].as_i64().unwrap(),
    );
    let standing = Phone {
        every_s: 60.0,
        phase_s: 7.0,
        silent: None,
    };
    let walking = Phone {
        every_s: 15.0,
        phase_s: 3.0,
        silent: None,
    };
    let mut points = walk(&api, &scene, a, &standing, (0.0, 600.0), |_| (0.0, 0.0)).await;
    // Passes the stander 1 m to the north at 300 s.
    points.extend(
        walk(&api, &scene, b, &walking, (0.0, 600.0), |t| {
            ((t - 300.0) * 1.2, 1.0)
        })
        .await,
    );
    let answer = contacts(&api, a, &scene.day()).await;
    assert_eq!(encounters_with(&answer, b, &scene), [], "{answer}");
    let answer = contacts(&api, a, &format!("{}&min_duration=0", scene.day())).await;
    let met = encounters_with(&answer, b, &scene);
    // Within 5 m while the walker is within sqrt(24) m of passing: about 8 s around 300 s.
    let half = 24f64.sqrt() / 1.2;
    assert_eq!(met.len(), 1, "{answer}");
    assert!(
        (met[0].0 - (300.0 - half)).abs() < 0.01 && (met[0].1 - (300.0 + half)).abs() < 0.01,
        "{met:?}"
    );
    assert_oracle(&answer, &points, &scene.day_query(a, 0));
}

/// Bad contacts parameters are problems naming the parameter; max_time_gap, which contacts
/// over tracks replace, is refused naming its replacements.
pub async fn invalid_contacts_queries(api: Api) {
    for (query, field) in [
        ("max_time_gap=60", "max_time_gap"),
        ("max_interpolation=3601", "max_interpolation"),
        ("max_interpolation=-1", "max_interpolation"),
        ("ping_tolerance=301", "ping_tolerance"),
        ("ping_tolerance=abc", "ping_tolerance"),
        ("join_gap=3601", "join_gap"),
        ("join_gap=nan", "join_gap"),
        ("min_duration=-5", "min_duration"),
        ("distance=1001", "distance"),
        ("start=2020-13-01", "start"),
    ] {
        let r = api.get(&format!("/api/persons/1/contacts?{query}")).await;
        let body = assert_problem(r, 400, &[field]).await;
        if field == "max_time_gap" {
            let detail = body["detail"].as_str().unwrap();
            for name in ["max_interpolation", "ping_tolerance", "join_gap"] {
                assert!(detail.contains(name), "{detail}");
            }
        }
    }
}
