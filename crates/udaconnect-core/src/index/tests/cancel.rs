//! Queries stop when their cancel flag is raised, and answer as before when it is not.

use super::*;
use crate::cancel::{Cancel, Cancelled};
use crate::contact::ContactQuery;
use crate::track::TrackQuery;

/// Three persons pinging every 10 s for a few hours at one booth: every query finds every
/// other person's ping, thousands of candidates.
fn crowded() -> ContactIndex {
    let points: Vec<Point> = (0..6000)
        .map(|i| Point {
            id: i + 1,
            person_id: 1 + i % 3,
            lat: 37.5 + deg((i % 7) as f64),
            lon: -122.25,
            t: (i / 3) * 10 * S,
            acc: Default::default(),
        })
        .collect();
    build(&points)
}

#[test]
fn a_raised_flag_stops_both_searches_and_contacts() {
    let index = crowded();
    for max_time_gap_us in [None, Some(30 * S)] {
        let q = ConnectionQuery {
            person_id: 1,
            window: Window::all(),
            distance_m: 50.0,
            max_time_gap_us,
        };
        let open = Cancel::new();
        let (slots, persons) = index.connections_until(&q, &open).unwrap();
        assert_eq!((slots.len(), persons), (4000, vec![2, 3]), "{q:?}");
        assert_eq!(
            index.connections_until(&q, &open).unwrap().0,
            index.connections(&q)
        );
        let raised = Cancel::new();
        raised.cancel();
        assert_eq!(index.connections_until(&q, &raised), Err(Cancelled));
    }
    let q = ContactQuery {
        person_id: 1,
        window: Window::all(),
        distance_m: 50.0,
        max_time_gap_us: 30 * S,
        min_duration_us: 0,
    };
    assert_eq!(index.contacts_until(&q, &Cancel::new()).unwrap().len(), 2);
    let raised = Cancel::new();
    raised.cancel();
    assert!(index.contacts_until(&q, &raised).is_err());
}

#[test]
fn a_raised_flag_stops_contacts_over_tracks() {
    let index = crowded();
    let mut q = TrackQuery::new(1, Window::all());
    q.distance_m = 50.0;
    let open = index.track_contacts_until(&q, &Cancel::new()).unwrap();
    assert_eq!(
        open.iter().map(|c| c.person_id).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(open, index.track_contacts(&q));
    let raised = Cancel::new();
    raised.cancel();
    assert_eq!(index.track_contacts_until(&q, &raised), Err(Cancelled));
}
