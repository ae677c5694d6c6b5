use std::collections::BTreeMap;

use udaconnect_core::model::{Location, Telemetry};
use udaconnect_core::ports::{LocationScan, LocationStore, NearQuery};
use udaconnect_core::time::{parse_timestamp, to_micros, Window};
use udaconnect_core::track::TrackQuery;
use udaconnect_core::tracker::App;
use udaconnect_sim::Rng;

use super::{by_id, loc, open_with_persons, StoreEngine, Stores};
use crate::seed;

const SEED_PERSONS: [i64; 5] = [1, 5, 6, 8, 9];

/// Stores holding the seed's locations and one more of person 1 (id 1000), and those
/// locations by id: the model reads are held to.
async fn seeded<E: StoreEngine>() -> (Stores<E>, BTreeMap<i64, Location>) {
    let stores = open_with_persons::<E>(SEED_PERSONS).await;
    let mut stored = seed::locations();
    stored.push(loc(1000, 1, 10.0, 20.0, 5));
    stores.locations().upsert(&stored).await.unwrap();
    (stores, stored.into_iter().map(|l| (l.id, l)).collect())
}

/// An id already stored is left as it is: a redelivered record, changed or not, or the same
/// id twice in one batch (the first is kept), has no second effect.
pub async fn upserts_are_idempotent<E: StoreEngine>() {
    let stores = open_with_persons::<E>(SEED_PERSONS).await;
    let store = stores.locations();
    let seed = seed::locations();
    let mut moved = seed.clone();
    for l in &mut moved {
        l.latitude += 1.0;
    }
    store.upsert(&seed).await.unwrap();
    store.upsert(&seed).await.unwrap();
    store.upsert(&moved[..10]).await.unwrap();
    store
        .upsert(&[loc(1000, 1, 10.0, 20.0, 5), loc(1000, 1, 11.0, 21.0, 6)])
        .await
        .unwrap();
    store.upsert(&[]).await.unwrap();
    assert_eq!(store.count().await.unwrap(), seed.len() as u64 + 1);

    let mut want = seed.clone();
    want.push(loc(1000, 1, 10.0, 20.0, 5));
    for l in &want {
        assert_eq!(store.get(l.id).await.unwrap().as_ref(), Some(l), "{}", l.id);
    }
    assert_eq!(store.get(1000).await.unwrap().unwrap().latitude, 10.0);
    for missing in [-1, 1001] {
        assert_eq!(store.get(missing).await.unwrap(), None);
    }
    let all = store.scan(LocationScan::ALL).await.unwrap();
    assert_eq!(by_id(&all), by_id(&want));
}

/// One person's or everyone's locations in a half-open window, in (time, id) order: a
/// location at the window's start is in, one at its end is out.
pub async fn in_window_orders_by_time_then_id_within_the_window<E: StoreEngine>() {
    let (stores, model) = seeded::<E>().await;
    let store = stores.locations();
    let time = |id: i64| to_micros(model[&id].creation_time);
    let july = Window::new(
        parse_timestamp("2020-07-01T00:00:00Z").unwrap(),
        parse_timestamp("2020-08-01T00:00:00Z").unwrap(),
    );
    // From 2020-07-07T10:37:06Z (location 34) to 2020-08-18T10:37:06Z (location 29).
    let edge = Window {
        start: time(34),
        end: time(29),
    };
    let reversed = Window {
        start: edge.end,
        end: edge.start,
    };
    let windows = [
        Window::all(),
        july,
        edge,
        reversed,
        Window { start: 10, end: 5 },
    ];
    for window in windows {
        for person in [None, Some(1), Some(6), Some(77)] {
            let mut want: Vec<Location> = model
                .values()
                .filter(|l| {
                    window.contains(to_micros(l.creation_time))
                        && person.is_none_or(|p| l.person_id == p)
                })
                .cloned()
                .collect();
            want.sort_by_key(|l| (l.creation_time, l.id));
            assert_eq!(
                store.in_window(window, person).await.unwrap(),
                want,
                "in_window({window:?}, {person:?})"
            );
        }
    }
    // The model agrees with the edges, so the comparisons above did test them.
    let in_edge: Vec<i64> = store
        .in_window(edge, None)
        .await
        .unwrap()
        .iter()
        .map(|l| l.id)
        .collect();
    assert!(
        in_edge.contains(&34) && !in_edge.contains(&29),
        "{in_edge:?}"
    );
    assert!(store.in_window(reversed, None).await.unwrap().is_empty());
}

/// `scan` reads ids in `(after, until]` in id order, up to a limit; `id_range` gives the
/// lowest and highest.
pub async fn scan_and_id_range_follow_the_ids<E: StoreEngine>() {
    let (stores, model) = seeded::<E>().await;
    let store = stores.locations();
    for (after, until, limit) in [
        (i64::MIN, i64::MAX, usize::MAX),
        (29, i64::MAX, 5),
        (60, i64::MAX, 100),
        (1000, i64::MAX, 1),
        (29, 40, 100),
        (29, 30, 100),
        (30, 30, 100),
        (40, 29, 100),
        (0, i64::MAX, 0),
    ] {
        let want: Vec<Location> = model
            .range(after.saturating_add(1)..)
            .take_while(|(id, _)| **id <= until)
            .take(limit)
            .map(|(_, l)| l.clone())
            .collect();
        assert_eq!(
            store
                .scan(LocationScan {
                    after,
                    until,
                    limit
                })
                .await
                .unwrap(),
            want,
            "scan({after}, {until}, {limit})"
        );
    }
    let lowest = *model.keys().next().unwrap();
    let highest = *model.keys().next_back().unwrap();
    assert_eq!((lowest, highest), (29, 1000));
    assert_eq!(store.id_range().await.unwrap(), Some((lowest, highest)));
}

/// A batch larger than one statement takes is stored whole.
pub async fn large_batches_are_stored_at_once<E: StoreEngine>() {
    let stores = open_with_persons::<E>(SEED_PERSONS).await;
    let store = stores.locations();
    let many: Vec<Location> = (0..45_000)
        .map(|i| loc(10_000 + i, SEED_PERSONS[(i % 5) as usize], 37.5, -122.2, i))
        .collect();
    store.upsert(&many).await.unwrap();
    assert_eq!(store.count().await.unwrap(), 45_000);
    let back = store.scan(LocationScan::ALL).await.unwrap();
    assert_eq!(by_id(&back), by_id(&many));
}

/// `clear` leaves nothing (before a replay rebuilds the store), and the store takes
/// locations again.
pub async fn clear_removes_every_location<E: StoreEngine>() {
    let (stores, _) = seeded::<E>().await;
    let store = stores.locations();
    store.clear().await.unwrap();
    assert_eq!(store.count().await.unwrap(), 0);
    assert_eq!(store.id_range().await.unwrap(), None);
    assert_eq!(store.get(29).await.unwrap(), None);
    assert!(store
        .in_window(Window::all(), None)
        .await
        .unwrap()
        .is_empty());
    store.upsert(&[loc(29, 1, 1.0, 2.0, 3)]).await.unwrap();
    assert_eq!(store.get(29).await.unwrap(), Some(loc(29, 1, 1.0, 2.0, 3)));
    assert_eq!(store.count().await.unwrap(), 1);
}

/// The highest leased id stored, whatever fix ids (tracker pings, from `FIX_ID_BASE`) and
/// derived ids (the original producers' records, from `DERIVED_ID_BASE`) lie above it: new
/// leases start above it.
pub async fn max_leased_id_ignores_derived_ids<E: StoreEngine>() {
    let stores = open_with_persons::<E>([1]).await;
    let store = stores.locations();
    assert_eq!(store.max_leased_id().await.unwrap(), None);
    let derived = udaconnect_core::record::DERIVED_ID_BASE + 7;
    let fix = udaconnect_core::record::FIX_ID_BASE + 7;
    let above = [loc(derived, 1, 1.0, 2.0, 3), loc(fix, 1, 1.0, 2.0, 3)];
    store.upsert(&above).await.unwrap();
    assert_eq!(store.max_leased_id().await.unwrap(), None);
    store
        .upsert(&[loc(41, 1, 1.0, 2.0, 3), loc(9, 1, 1.0, 2.0, 4)])
        .await
        .unwrap();
    assert_eq!(store.max_leased_id().await.unwrap(), Some(41));
}

/// What goes in comes out to the bit: extreme coordinates, subnormals, times from the epoch to
/// the end of year 9999 in microseconds. Zero's sign is the one exception, the same in every
/// engine: `-0.0` comes back as `0.0` (SQLite cannot keep the sign, so no store does; the same
/// point and the same distances).
pub async fn coordinates_and_times_round_trip_bit_for_bit<E: StoreEngine>() {
    let stores = open_with_persons::<E>([1]).await;
    let store = stores.locations();
    let mut rng = Rng::new(7);
    let mut ls = vec![
        loc(1, 1, 90.0, 180.0, 0),
        loc(2, 1, -90.0, -180.0, 253_402_300_799_999_999), // 9999-12-31T23:59:59.999999Z
        loc(3, 1, 0.0, 0.0, 1),
        loc(4, 1, 5e-324, -5e-324, 1_594_118_226_123_456),
        loc(
            5,
            1,
            37.553_441_000_000_01,
            -122.290_524,
            1_594_118_226_000_001,
        ),
        loc(6, 1, 1.0 / 3.0, std::f64::consts::PI, 42),
    ];
    for id in 7..500 {
        ls.push(loc(
            id,
            1,
            rng.range(-90.0, 90.0),
            rng.range(-180.0, 180.0),
            (rng.next_u64() % 253_402_300_800_000_000) as i64,
        ));
    }
    store.upsert(&ls).await.unwrap();
    let back = store.scan(LocationScan::after(0)).await.unwrap();
    assert_eq!(by_id(&back), by_id(&ls));
    for l in &ls {
        let one = store.get(l.id).await.unwrap().unwrap();
        assert_eq!(one.latitude.to_bits(), l.latitude.to_bits());
        assert_eq!(one.longitude.to_bits(), l.longitude.to_bits());
        assert_eq!(one.creation_time, l.creation_time);
    }
    let window = store.in_window(Window::all(), Some(1)).await.unwrap();
    assert_eq!(by_id(&window), by_id(&ls));

    let zeros = [
        loc(500, 1, -0.0, -0.0, 1),
        loc(501, 1, 0.0, -0.0, 2),
        loc(502, 1, -0.0, 12.5, 3),
    ];
    store.upsert(&zeros).await.unwrap();
    let want = [
        loc(500, 1, 0.0, 0.0, 1),
        loc(501, 1, 0.0, 0.0, 2),
        loc(502, 1, 0.0, 12.5, 3),
    ];
    let back = store.scan(LocationScan::after(499)).await.unwrap();
    assert_eq!(by_id(&back), by_id(&want));
    let mut window = store.in_window(Window::all(), Some(1)).await.unwrap();
    window.retain(|l| l.id >= 500);
    assert_eq!(by_id(&window), by_id(&want));
    for l in &want {
        let one = store.get(l.id).await.unwrap().unwrap();
        assert_eq!(one.latitude.to_bits(), l.latitude.to_bits());
        assert_eq!(one.longitude.to_bits(), l.longitude.to_bits());
    }
}

/// Both stores answer a liveness check.
pub async fn ping_answers<E: StoreEngine>() {
    let stores = E::open().await;
    stores.persons().ping().await.unwrap();
    stores.locations().ping().await.unwrap();
}

/// Erasing a person removes their pings and then the person, leaving every other person's
/// pings as they were; erasing again changes nothing.
pub async fn erasing_a_person_removes_them_and_their_pings<E: StoreEngine>() {
    let (stores, mut stored) = seeded::<E>().await;
    let (locations, persons) = (stores.locations(), stores.persons());
    let erased = 1;
    let theirs = stored.values().filter(|l| l.person_id == erased).count() as u64;
    assert!(theirs > 0, "the seed gives person {erased} pings");
    assert_eq!(locations.delete_person(erased).await.unwrap(), theirs);
    assert!(persons.delete(erased).await.unwrap());
    stored.retain(|_, l| l.person_id != erased);
    let left = locations.in_window(Window::all(), None).await.unwrap();
    assert_eq!(left, {
        let mut l: Vec<Location> = stored.values().cloned().collect();
        l.sort_by_key(|l| (l.creation_time, l.id));
        l
    });
    assert_eq!(persons.get(erased).await.unwrap(), None);
    assert!(
        persons.get(5).await.unwrap().is_some(),
        "another person stays"
    );
    assert_eq!(locations.delete_person(erased).await.unwrap(), 0);
    assert!(!persons.delete(erased).await.unwrap());
}

/// Retention removes the oldest pings before the cut, at most `limit` a call, until none
/// is left; a ping at the cut and every later one stay, as they were.
pub async fn retention_removes_pings_before_the_cut_in_batches<E: StoreEngine>() {
    let (stores, mut stored) = seeded::<E>().await;
    let locations = stores.locations();
    let cut = to_micros(parse_timestamp("2020-08-15T10:37:06Z").unwrap());
    let old = stored
        .values()
        .filter(|l| to_micros(l.creation_time) < cut)
        .count() as u64;
    let kept = stored.len() as u64 - old;
    assert!(
        old > 4 && kept > 0,
        "the seed has pings on both sides of the cut"
    );
    let at_cut = loc(2000, 5, 1.0, 2.0, cut);
    locations
        .upsert(std::slice::from_ref(&at_cut))
        .await
        .unwrap();
    stored.insert(at_cut.id, at_cut);

    let mut removed = Vec::new();
    loop {
        let n = locations.delete_before(cut, 3).await.unwrap();
        assert!(n <= 3, "{n} removed at once, at most 3 asked");
        removed.push(n);
        if n < 3 {
            break;
        }
    }
    assert_eq!(removed.iter().sum::<u64>(), old, "{removed:?}");
    stored.retain(|_, l| to_micros(l.creation_time) >= cut);
    let left = locations.in_window(Window::all(), None).await.unwrap();
    assert_eq!(
        by_id(&left),
        by_id(&stored.values().cloned().collect::<Vec<_>>())
    );
    assert_eq!(locations.count().await.unwrap(), kept + 1);
    assert_eq!(locations.delete_before(cut, 1000).await.unwrap(), 0);
    assert_eq!(locations.delete_before(i64::MIN, 1000).await.unwrap(), 0);
    assert_eq!(
        locations.delete_before(i64::MAX, 1000).await.unwrap(),
        kept + 1
    );
    assert_eq!(locations.count().await.unwrap(), 0);
}

/// Stores `pings` (all of them in the first ten seconds, in (time, id) order) and reads them
/// back as written: each by its id, and all of them through a window over everyone and through
/// the scan. The window, for the reads a caller adds.
async fn store_and_read_back(store: &dyn LocationStore, pings: &[Location]) -> Window {
    store.upsert(pings).await.unwrap();
    for l in pings {
        assert_eq!(store.get(l.id).await.unwrap().as_ref(), Some(l));
    }
    let window = Window {
        start: 0,
        end: 10_000_000,
    };
    assert_eq!(store.in_window(window, None).await.unwrap(), pings);
    assert_eq!(store.scan(LocationScan::ALL).await.unwrap(), pings);
    window
}

/// A ping's accuracy, where its phone said it, is read back as written by every read; pings
/// without one (the original JSON's) read back without.
pub async fn accuracy_is_kept_where_known<E: StoreEngine>() {
    let stores = open_with_persons::<E>(SEED_PERSONS).await;
    let store = stores.locations();
    let with = |id, acc| Location {
        accuracy_m: acc,
        telemetry: Default::default(),
        ..loc(id, 1, 10.0, 20.0 + id as f64 * 1e-5, id * 1_000_000)
    };
    let pings = vec![
        with(1, Some(200.5)),
        with(2, Some(3.7)),
        with(3, None),
        with(4, Some(0.0)),
    ];
    let window = store_and_read_back(&*store, &pings).await;
    assert_eq!(store.in_window(window, Some(1)).await.unwrap(), pings);
}

/// A ping's telemetry (altitude, speed, heading, battery, app), each field where its app said
/// it, is read back as written by every read, the contact engine's included; pings without
/// any read back without.
pub async fn telemetry_is_kept_where_known<E: StoreEngine>() {
    let stores = open_with_persons::<E>(SEED_PERSONS).await;
    let store = stores.locations();
    let with = |id: i64, person: i64, accuracy_m, telemetry| Location {
        accuracy_m,
        telemetry,
        ..loc(id, person, 10.0, 20.0 + id as f64 * 1e-5, id * 1_000_000)
    };
    let full = Telemetry {
        altitude_m: Some(-12.5),
        speed_mps: Some(36.0 / 3.6),
        heading_deg: Some(359.75),
        battery_pct: Some(81.0),
        app: Some(App::OwnTracks),
    };
    let mut pings = vec![
        with(1, 1, Some(4.0), full),
        with(2, 1, None, Telemetry::default()),
    ];
    for (i, app) in App::ALL.into_iter().enumerate() {
        let id = 3 + i as i64;
        let one = Telemetry {
            app: Some(app),
            heading_deg: Some(0.0),
            ..Telemetry::default()
        };
        pings.push(with(id, [1, 5][id as usize % 2], None, one));
    }
    pings.push(with(
        9,
        5,
        Some(30.0),
        Telemetry {
            altitude_m: Some(0.0),
            battery_pct: Some(100.0),
            ..Telemetry::default()
        },
    ));
    let window = store_and_read_back(&*store, &pings).await;
    let of = |person: i64| -> Vec<Location> {
        pings
            .iter()
            .filter(|l| l.person_id == person)
            .cloned()
            .collect()
    };
    assert_eq!(store.in_window(window, Some(1)).await.unwrap(), of(1));
    assert_eq!(store.person_page(5, None, 100).await.unwrap(), of(5));
    let near = store
        .near(NearQuery {
            person_id: 1,
            window,
            distance_m: 1_000.0,
            max_gap_us: None,
        })
        .await
        .unwrap();
    assert_eq!(near.own, of(1));
    assert_eq!(near.candidates, of(5));
    let tracks = store
        .near_tracks(&TrackQuery::new(1, window), 1_000.0)
        .await
        .unwrap();
    let stored: BTreeMap<i64, &Location> = pings.iter().map(|l| (l.id, l)).collect();
    assert!(!tracks.candidates.is_empty());
    for l in tracks
        .own
        .iter()
        .chain(&tracks.candidates)
        .chain(&tracks.neighbours)
    {
        assert_eq!(stored.get(&l.id), Some(&l), "read as stored");
    }
}
