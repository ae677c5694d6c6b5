//! What organizers see of the crowd: counts and dots that each stand among at least k
//! distinct people, so that no answer singles one person out.
//!
//! - A heat cell or a room's count is the number of distinct persons with a ping there in the
//!   window (never of pings: one person's thousand pings are one), shown only from k on;
//!   smaller counts are left out, not rounded.
//! - A dot is a person's latest ping. An attendee who chose to be shown by name is a named
//!   dot; everyone else is an anonymous dot: no person id, no name, coordinates to about a
//!   metre and time to the minute, sorted by position so that neither order nor a key links
//!   two answers to one person. An anonymous dot is shown only where its place (the
//!   smallest area of the plan it lies in, else a cell of about 50 m) holds the latest pings
//!   of at least k people not shown by name: a lone dot in a booth would say who is there to
//!   anyone who knows the booth.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use udaconnect_core::contact::Point;
use udaconnect_core::model::PersonId;
use udaconnect_core::time::{format_utc, from_micros};
use udaconnect_core::venue::{AreaKind, Venue};

/// Heat-map cells are this many degrees of latitude and longitude (about 5 m of latitude).
pub const HEAT_CELL_DEG: f64 = 0.000_045;
/// Where no area of a plan holds a dot, its place is a cell this many degrees wide (about
/// 50 m of latitude): wide enough that an open floor keeps its dots.
const PLACE_CELL_DEG: f64 = 0.000_45;
/// Anonymous dots' coordinates are rounded to five decimals of a degree (about 1 m).
const DOT_SCALE: f64 = 1e5;
/// Anonymous dots' times are cut to the minute.
const DOT_MICROS: i64 = 60_000_000;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeatCell {
    pub latitude: f64,
    pub longitude: f64,
    /// Distinct persons with a ping in the cell in the window: k at least.
    pub count: u32,
}

/// People in one area of the venue plan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ZoneCount {
    pub name: String,
    pub kind: AreaKind,
    /// Distinct persons with a ping in the area in the window: k at least.
    pub count: u32,
}

/// A person's latest position on the live map.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Dot {
    pub latitude: f64,
    pub longitude: f64,
    /// When the ping was taken; to the minute for an anonymous dot.
    pub time: String,
    /// Only for an attendee who chose to be shown by name on the live map.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person_id: Option<PersonId>,
    /// Only for an attendee who chose to be shown by name on the live map.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Where a dot is counted for k: an area of the plan (by index), else a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Place {
    Area(usize),
    Cell(i64, i64),
}

/// The smallest area of `venue` holding the point, as the page draws it.
fn area_of(venue: &Venue, lat: f64, lon: f64) -> Option<usize> {
    let (x, y) = venue.to_local(lat, lon);
    venue
        .areas
        .iter()
        .enumerate()
        .filter(|(_, a)| x >= a.x && x <= a.x + a.width && y >= a.y && y <= a.y + a.depth)
        .min_by(|(_, a), (_, b)| (a.width * a.depth).total_cmp(&(b.width * b.depth)))
        .map(|(i, _)| i)
}

fn cell(lat: f64, lon: f64, size: f64) -> (i64, i64) {
    ((lat / size).floor() as i64, (lon / size).floor() as i64)
}

fn place(venue: Option<&Venue>, p: &Point) -> Place {
    match venue.and_then(|v| area_of(v, p.lat, p.lon)) {
        Some(i) => Place::Area(i),
        None => {
            let (a, b) = cell(p.lat, p.lon, PLACE_CELL_DEG);
            Place::Cell(a, b)
        }
    }
}

/// Distinct persons per key, keeping the keys with `k` at least.
fn distinct_at_least<K: Eq + std::hash::Hash>(
    points: impl IntoIterator<Item = (K, PersonId)>,
    k: usize,
) -> HashMap<K, u32> {
    let mut persons: HashMap<K, HashSet<PersonId>> = HashMap::new();
    for (key, person) in points {
        persons.entry(key).or_default().insert(person);
    }
    persons
        .into_iter()
        .filter(|(_, p)| p.len() >= k)
        .map(|(key, p)| (key, p.len() as u32))
        .collect()
}

/// Heat cells of `points` holding `k` distinct persons at least, the most crowded first.
pub fn heat(points: impl IntoIterator<Item = Point>, k: usize) -> Vec<HeatCell> {
    let counts = distinct_at_least(
        points
            .into_iter()
            .map(|p| (cell(p.lat, p.lon, HEAT_CELL_DEG), p.person_id)),
        k,
    );
    let mut cells: Vec<HeatCell> = counts
        .into_iter()
        .map(|((a, b), count)| HeatCell {
            latitude: (a as f64 + 0.5) * HEAT_CELL_DEG,
            longitude: (b as f64 + 0.5) * HEAT_CELL_DEG,
            count,
        })
        .collect();
    cells.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.latitude.total_cmp(&b.latitude))
            .then(a.longitude.total_cmp(&b.longitude))
    });
    cells
}

/// The areas of `venue` where `k` distinct persons at least had a ping, in the plan's order.
pub fn zones(venue: &Venue, points: impl IntoIterator<Item = Point>, k: usize) -> Vec<ZoneCount> {
    let counts = distinct_at_least(
        points
            .into_iter()
            .filter_map(|p| area_of(venue, p.lat, p.lon).map(|i| (i, p.person_id))),
        k,
    );
    let mut shown: Vec<(usize, u32)> = counts.into_iter().collect();
    shown.sort_unstable();
    shown
        .into_iter()
        .map(|(i, count)| ZoneCount {
            name: venue.areas[i].name.clone(),
            kind: venue.areas[i].kind,
            count,
        })
        .collect()
}

/// The dots of everyone's latest ping (`latest`, one per person): by name for those in
/// `named`, anonymous for the others where their place holds `k` anonymous people at least,
/// sorted by position.
pub fn dots(
    venue: Option<&Venue>,
    latest: &[Point],
    named: &HashMap<PersonId, String>,
    k: usize,
) -> Vec<Dot> {
    let places: Vec<Place> = latest.iter().map(|p| place(venue, p)).collect();
    // Only the anonymous count: a named person beside them does not hide them.
    let anonymous = places
        .iter()
        .zip(latest)
        .filter(|(_, p)| !named.contains_key(&p.person_id));
    let crowded = distinct_at_least(anonymous.map(|(&pl, p)| (pl, p.person_id)), k);
    let mut dots: Vec<Dot> = latest
        .iter()
        .zip(&places)
        .filter_map(|(p, pl)| match named.get(&p.person_id) {
            Some(name) => Some(Dot {
                latitude: p.lat,
                longitude: p.lon,
                time: format_utc(from_micros(p.t)),
                person_id: Some(p.person_id),
                name: Some(name.clone()),
            }),
            None if crowded.contains_key(pl) => Some(Dot {
                latitude: round(p.lat),
                longitude: round(p.lon),
                time: format_utc(from_micros(p.t.div_euclid(DOT_MICROS) * DOT_MICROS)),
                person_id: None,
                name: None,
            }),
            None => None,
        })
        .collect();
    dots.sort_by(|a, b| {
        a.latitude
            .total_cmp(&b.latitude)
            .then(a.longitude.total_cmp(&b.longitude))
            .then(a.time.cmp(&b.time))
            .then(a.person_id.cmp(&b.person_id))
    });
    dots
}

/// `v` to five decimals: the nearest double to that decimal, so it prints short.
fn round(v: f64) -> f64 {
    (v * DOT_SCALE).round() / DOT_SCALE
}

#[cfg(test)]
mod tests {
    use super::*;
    use udaconnect_core::venue::{Area, LatLon};

    fn venue() -> Venue {
        Venue {
            name: "hall".into(),
            origin: LatLon {
                latitude: 37.55,
                longitude: -122.29,
            },
            width_m: 100.0,
            depth_m: 100.0,
            areas: vec![
                Area {
                    kind: AreaKind::Hall,
                    name: "Floor".into(),
                    x: 0.0,
                    y: 0.0,
                    width: 100.0,
                    depth: 100.0,
                },
                Area {
                    kind: AreaKind::Booth,
                    name: "Booth A".into(),
                    x: 10.0,
                    y: 10.0,
                    width: 4.0,
                    depth: 4.0,
                },
            ],
        }
    }

    fn at(v: &Venue, person: PersonId, x: f64, y: f64, t: i64) -> Point {
        let (lat, lon) = v.to_lat_lon(x, y);
        Point {
            id: person * 1000 + t,
            person_id: person,
            lat,
            lon,
            t: 1_700_000_000_000_000 + t * 1_000_000,
            acc: udaconnect_core::contact::Acc::UNKNOWN,
        }
    }

    #[test]
    fn heat_counts_people_not_pings_and_leaves_out_fewer_than_k() {
        let v = venue();
        // One person's thousand pings in one cell, four people in another, five in a third.
        let mut points: Vec<Point> = (0..1000).map(|t| at(&v, 1, 50.0, 50.0, t)).collect();
        points.extend((2..=5).map(|p| at(&v, p, 20.0, 80.0, 0)));
        points.extend((6..=10).map(|p| at(&v, p, 80.0, 20.0, p)));
        points.extend((6..=10).map(|p| at(&v, p, 80.0, 20.0, p + 100)));
        let cells = heat(points, 5);
        assert_eq!(cells.len(), 1, "{cells:?}");
        assert_eq!(cells[0].count, 5);
    }

    #[test]
    fn zones_count_people_from_k_on() {
        let v = venue();
        let booth = |n: std::ops::RangeInclusive<i64>| -> Vec<Point> {
            n.map(|p| at(&v, p, 12.0, 12.0, p)).collect()
        };
        let four = zones(&v, booth(1..=4), 5);
        assert!(four.iter().all(|z| z.name != "Booth A"), "{four:?}");
        let five = zones(&v, booth(1..=5), 5);
        assert_eq!(five.len(), 1);
        assert_eq!((five[0].name.as_str(), five[0].count), ("Booth A", 5));
    }

    #[test]
    fn dots_are_anonymous_unlinkable_and_only_among_k() {
        let v = venue();
        // Four in the booth, five on the open floor, one named in the booth.
        let mut latest: Vec<Point> = (1..=4)
            .map(|p| at(&v, p, 11.0 + p as f64 * 0.5, 12.0, p))
            .collect();
        latest.extend((5..=9).map(|p| at(&v, p, 30.0 + p as f64, 60.0, p)));
        latest.push(at(&v, 42, 12.0, 13.0, 7));
        let named = HashMap::from([(42, "Pam Trexler".to_string())]);
        let shown = dots(Some(&v), &latest, &named, 5);
        assert_eq!(shown.len(), 6, "{shown:?}");
        let pam: Vec<&Dot> = shown.iter().filter(|d| d.person_id.is_some()).collect();
        assert_eq!(pam.len(), 1);
        assert_eq!(pam[0].name.as_deref(), Some("Pam Trexler"));
        for d in shown.iter().filter(|d| d.person_id.is_none()) {
            assert!(d.name.is_none());
            assert!(d.time.ends_with(":00Z"), "{}", d.time);
            let scaled = d.latitude * 1e5;
            assert!((scaled - scaled.round()).abs() < 1e-6, "{}", d.latitude);
        }
        // The booth's four with Pam make five, but Pam is named: they stay left out until
        // a fifth anonymous person comes.
        let with_five = {
            let mut l = latest.clone();
            l.push(at(&v, 10, 13.0, 11.0, 3));
            dots(Some(&v), &l, &named, 5)
        };
        assert_eq!(with_five.len(), 11);
        // The order follows positions, not persons: the same places under other persons
        // give the same answer.
        let mut renamed = latest.clone();
        for p in &mut renamed[4..9] {
            p.person_id = 100 - p.person_id;
        }
        assert_eq!(dots(Some(&v), &renamed, &named, 5), shown);
    }
}
