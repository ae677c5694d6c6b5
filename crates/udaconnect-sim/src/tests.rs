//! The conference's plan (venue, schedule), the phones and groups (intervals per phone,
//! phases, groups that stand together), and the same pings for the same seed.

use std::collections::BTreeMap;

use udaconnect_core::contact::Point;
use udaconnect_core::time::Window;
use udaconnect_core::track::{contacts_oracle, TrackQuery};

use crate::{Conference, SimConfig, SimPing, DAY, HOUR, US};

fn config(attendees: u32, days: u32) -> SimConfig {
    SimConfig {
        seed: 7,
        attendees,
        days,
        ..Default::default()
    }
}

fn by_person(pings: &[SimPing]) -> BTreeMap<i64, Vec<i64>> {
    let mut out: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for p in pings {
        out.entry(p.person_id).or_default().push(p.t);
    }
    out
}

fn median(mut v: Vec<i64>) -> i64 {
    v.sort_unstable();
    v[v.len() / 2]
}

#[test]
fn each_phone_keeps_its_own_interval_between_15_s_and_5_min() {
    let cfg = config(80, 1);
    let c = Conference::plan(&cfg);
    let pings: Vec<SimPing> = c.pings().collect();
    let mut intervals = Vec::new();
    for (person, times) in by_person(&pings) {
        let gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.len() > 20, "person {person}: {} pings", times.len());
        let interval = median(gaps.clone());
        // On site, one interval apart give or take the clock's jitter (a few seconds at
        // most); away, whole intervals skipped.
        for g in &gaps {
            let ticks = (*g as f64 / interval as f64).round().max(1.0);
            let off = (*g as f64 - ticks * interval as f64).abs();
            assert!(
                off < 4.0 * US as f64,
                "person {person}: gap {g} vs {interval}"
            );
        }
        assert!(
            (14 * US..=301 * US).contains(&interval),
            "person {person}: {interval}"
        );
        intervals.push(interval as f64 / US as f64);
    }
    intervals.sort_by(f64::total_cmp);
    let n = intervals.len();
    // Spread over the range, not bunched: a fifth under a minute, a fifth over two.
    assert!(
        intervals[n / 5] < 60.0 && intervals[n * 4 / 5] > 120.0,
        "{intervals:?}"
    );
    let harmonic = n as f64 / intervals.iter().map(|i| 1.0 / i).sum::<f64>();
    assert!(
        (harmonic / cfg.ping_interval_s - 1.0).abs() < 0.25,
        "harmonic mean {harmonic}"
    );
}

#[test]
fn phones_with_one_interval_tick_at_their_own_phases() {
    let cfg = SimConfig {
        min_interval_s: 90.0,
        max_interval_s: 90.001,
        ping_interval_s: 90.0005,
        gps_noise_m: 0.0,
        ..config(80, 1)
    };
    let pings: Vec<SimPing> = Conference::plan(&cfg).pings().collect();
    let mut phases: Vec<i64> = by_person(&pings)
        .values()
        .map(|times| (times[0] - cfg.start).rem_euclid(90 * US) / US)
        .collect();
    phases.sort_unstable();
    phases.dedup();
    assert!(phases.len() > 40, "{phases:?}");
}

#[test]
fn groups_stand_together_and_meet_on_their_tracks() {
    let cfg = config(80, 1);
    let c = Conference::plan(&cfg);
    let pings: Vec<SimPing> = c.pings().collect();
    let points: Vec<Point> = pings
        .iter()
        .enumerate()
        .map(|(i, p)| Point {
            id: i as i64,
            person_id: p.person_id,
            lat: p.latitude,
            lon: p.longitude,
            t: p.t,
            acc: Default::default(),
        })
        .collect();
    // Ten to two: talks, the expo and lunch.
    let day = Window {
        start: cfg.start + 10 * HOUR,
        end: cfg.start + 14 * HOUR,
    };
    let members: Vec<u32> = (0..cfg.attendees)
        .filter(|&i| c.leader_of(i) != i)
        .collect();
    assert!(members.len() > 8, "{} in groups", members.len());
    for &member in members.iter().take(4) {
        let leader = c.leader_of(member) as i64 + cfg.first_person_id;
        let person = member as i64 + cfg.first_person_id;
        let contacts = contacts_oracle(&points, &TrackQuery::new(person, day));
        let with_leader = contacts
            .iter()
            .find(|k| k.person_id == leader)
            .map_or(0, |k| k.total_us);
        // Most of the four hours together, more than with anyone outside the group.
        assert!(
            with_leader > 2 * HOUR,
            "{person} and {leader}: {with_leader}"
        );
        let others = contacts
            .iter()
            .filter(|k| {
                c.leader_of((k.person_id - cfg.first_person_id) as u32) != c.leader_of(member)
            })
            .map(|k| k.total_us)
            .max()
            .unwrap_or(0);
        assert!(others < with_leader, "{person}: {others} vs {with_leader}");
    }
}

#[test]
fn the_seed_decides_everything() {
    let c = Conference::plan(&config(80, 1));
    let a: Vec<SimPing> = c.pings().collect();
    let b: Vec<SimPing> = Conference::plan(&config(80, 1)).pings().collect();
    assert_eq!(a, b);
    assert_eq!(c.persons(), Conference::plan(&config(80, 1)).persons());
    let other: Vec<SimPing> = Conference::plan(&SimConfig {
        seed: 8,
        ..config(80, 1)
    })
    .pings()
    .collect();
    assert_ne!(a, other);
}

#[test]
fn pings_are_ordered_inside_the_venue_and_on_schedule() {
    let cfg = SimConfig {
        ping_interval_s: 60.0,
        ..config(60, 2)
    };
    let c = Conference::plan(&cfg);
    let pings: Vec<SimPing> = c.pings().collect();
    // Roughly one ping a minute for 7.5 hours a day, per attendee and day.
    let expected = 60.0 * 2.0 * 7.5 * 60.0;
    assert!(
        (pings.len() as f64) > expected * 0.6 && (pings.len() as f64) < expected * 1.4,
        "{}",
        pings.len()
    );
    assert!(pings.windows(2).all(|w| w[0].t <= w[1].t));
    for p in &pings {
        let (x, y) = c.venue.to_local(p.latitude, p.longitude);
        assert!(
            x > -15.0 && y > -15.0 && x < c.venue.width_m + 15.0 && y < c.venue.depth_m + 15.0,
            "{x} {y}"
        );
        let hour = ((p.t - cfg.start).rem_euclid(DAY)) as f64 / HOUR as f64;
        assert!((8.4..18.5).contains(&hour), "{hour}");
    }
    let persons: std::collections::HashSet<i64> = pings.iter().map(|p| p.person_id).collect();
    assert_eq!(persons.len(), 60);
}

#[test]
fn venue_grows_with_the_crowd() {
    let big = SimConfig {
        attendees: 10_000,
        ..Default::default()
    };
    assert!((big.venue_side_m() - 300.0 * 10f64.sqrt()).abs() < 1e-9);
    let c = Conference::plan(&big);
    assert!(c.booths.len() > 1000 && c.rooms.len() > 10);
}
