//! The plan of a conference: its venue, its schedule and its attendees.

use udaconnect_core::model::Person;
use udaconnect_core::time::Micros;
use udaconnect_core::venue::{Area, AreaKind, LatLon, Venue};

use crate::attendee::Pings;
use crate::{Rng, DAY, HOUR, SLOTS_H, TALK, US};

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub seed: u64,
    pub attendees: u32,
    pub days: u32,
    /// Midnight UTC of the first day, in microseconds.
    pub start: Micros,
    /// Mean seconds between two pings of one phone.
    pub ping_interval_s: f64,
    /// Standard deviation of the GPS error, metres.
    pub gps_noise_m: f64,
    /// The venue's south-west corner.
    pub origin: LatLon,
    /// Id of the first attendee; the others follow.
    pub first_person_id: i64,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 1,
            attendees: 1000,
            days: 3,
            start: 1_717_200_000 * US, // 2024-06-01T00:00:00Z
            ping_interval_s: 30.0,
            gps_noise_m: 2.0,
            origin: LatLon {
                latitude: 37.5530,
                longitude: -122.2925,
            },
            first_person_id: 1,
        }
    }
}

impl SimConfig {
    /// Side of the square venue: 300 m for 1,000 attendees, growing with the square root of
    /// the head count, so the crowd is as dense as in a real hall at every size.
    pub fn venue_side_m(&self) -> f64 {
        300.0 * (self.attendees.max(1) as f64 / 1000.0).sqrt()
    }

    /// The ping interval that yields about `total` pings over the whole conference.
    pub fn interval_for_total(&self, total: u64) -> f64 {
        let on_site_s = 7.75 * 3600.0 * 0.95;
        (self.attendees as f64 * self.days as f64 * on_site_s / total.max(1) as f64).max(0.1)
    }
}

pub(crate) const TOPICS: [&str; 12] = [
    "Rust",
    "Databases",
    "Streaming",
    "Security",
    "Machine learning",
    "Cloud",
    "Mobile",
    "Observability",
    "Web",
    "Embedded",
    "Testing",
    "Design",
];
const FIRST: [&str; 24] = [
    "Ada",
    "Alan",
    "Barbara",
    "Brian",
    "Claude",
    "Donald",
    "Edsger",
    "Frances",
    "Grace",
    "Guido",
    "Hedy",
    "Ivan",
    "John",
    "Ken",
    "Leslie",
    "Margaret",
    "Niklaus",
    "Radia",
    "Rasmus",
    "Shafi",
    "Sophie",
    "Tim",
    "Whitfield",
    "Yukihiro",
];
const LAST: [&str; 24] = [
    "Lovelace",
    "Turing",
    "Liskov",
    "Kernighan",
    "Shannon",
    "Knuth",
    "Dijkstra",
    "Allen",
    "Hopper",
    "Rossum",
    "Lamarr",
    "Sutherland",
    "Backus",
    "Thompson",
    "Lamport",
    "Hamilton",
    "Wirth",
    "Perlman",
    "Lerdorf",
    "Goldwasser",
    "Wilson",
    "Berners-Lee",
    "Diffie",
    "Matsumoto",
];
const COMPANIES: [&str; 12] = [
    "Analytical Engines",
    "Bletchley Labs",
    "Compiler Works",
    "Distributed Systems Inc",
    "Entropy Ltd",
    "Functional Foods",
    "Graph Partners",
    "Hash & Co",
    "Index Analytics",
    "Jitter Networks",
    "Kernel Craft",
    "Lambda Logistics",
];

/// One talk in one room.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub room: usize,
    pub topic: usize,
    pub start: Micros,
    pub end: Micros,
}

/// The plan: venue, schedule and attendees.
#[derive(Debug, Clone)]
pub struct Conference {
    pub config: SimConfig,
    pub venue: Venue,
    pub sessions: Vec<Session>,
    pub(crate) rooms: Vec<usize>,
    pub(crate) booths: Vec<usize>,
    pub(crate) catering: usize,
    pub(crate) entrance: usize,
}

impl Conference {
    /// Lays out the venue and the schedule.
    pub fn plan(config: &SimConfig) -> Conference {
        let side = config.venue_side_m();
        let mut rng = Rng::new(config.seed ^ 0x5eed_0000_0000_0001);
        let mut areas = vec![Area {
            kind: AreaKind::Hall,
            name: "Hall".into(),
            x: 0.0,
            y: 0.0,
            width: side,
            depth: side,
        }];
        // Session rooms along the north wall, about one seat for every fifth attendee.
        let room_count = ((config.attendees as f64 / 150.0).round() as usize).clamp(3, 40);
        let room_depth = (side * 0.15).clamp(20.0, 60.0);
        let room_width = side / room_count as f64;
        let mut rooms = Vec::new();
        for i in 0..room_count {
            rooms.push(areas.len());
            areas.push(Area {
                kind: AreaKind::Room,
                name: format!("Room {}", i + 1),
                x: i as f64 * room_width + 1.0,
                y: side - room_depth,
                width: room_width - 2.0,
                depth: room_depth - 1.0,
            });
        }
        let catering = areas.len();
        areas.push(Area {
            kind: AreaKind::Catering,
            name: "Catering".into(),
            x: side * 0.65,
            y: 2.0,
            width: side * 0.33,
            depth: (side * 0.12).max(15.0),
        });
        let entrance = areas.len();
        areas.push(Area {
            kind: AreaKind::Entrance,
            name: "Entrance".into(),
            x: side * 0.3,
            y: 0.0,
            width: (side * 0.08).max(8.0),
            depth: 6.0,
        });
        // The expo: rows of 4 m x 3 m booths with 4 m aisles between the catering strip and
        // the rooms.
        let mut booths = Vec::new();
        let (y0, y1) = ((side * 0.12).max(15.0) + 8.0, side - room_depth - 8.0);
        let mut y = y0;
        let mut n = 0;
        while y + 3.0 <= y1 {
            let mut x = 6.0;
            while x + 4.0 <= side - 6.0 {
                booths.push(areas.len());
                n += 1;
                areas.push(Area {
                    kind: AreaKind::Booth,
                    name: format!("Booth {n}"),
                    x,
                    y,
                    width: 4.0,
                    depth: 3.0,
                });
                x += 5.0;
            }
            y += 10.0;
        }
        let mut sessions = Vec::new();
        for day in 0..config.days as i64 {
            for slot in SLOTS_H {
                let start = config.start + day * DAY + (slot * HOUR as f64) as i64;
                for room in 0..rooms.len() {
                    sessions.push(Session {
                        room,
                        topic: rng.below(TOPICS.len()),
                        start,
                        end: start + TALK,
                    });
                }
            }
        }
        Conference {
            config: config.clone(),
            venue: Venue {
                name: format!("Simulated conference ({} attendees)", config.attendees),
                origin: config.origin,
                width_m: side,
                depth_m: side,
                areas,
            },
            sessions,
            rooms,
            booths,
            catering,
            entrance,
        }
    }

    /// The attendees, ids from `first_person_id` up.
    pub fn persons(&self) -> Vec<Person> {
        (0..self.config.attendees)
            .map(|i| {
                let mut rng = self.attendee_rng(i);
                Person {
                    id: self.config.first_person_id + i as i64,
                    first_name: FIRST[rng.below(FIRST.len())].to_string(),
                    last_name: LAST[rng.below(LAST.len())].to_string(),
                    company_name: COMPANIES[rng.below(COMPANIES.len())].to_string(),
                }
            })
            .collect()
    }

    pub(crate) fn attendee_rng(&self, i: u32) -> Rng {
        Rng::new(
            self.config.seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
                ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        )
    }

    /// Every ping of the conference, in time order.
    pub fn pings(&self) -> Pings<'_> {
        Pings::new(self)
    }

    pub(crate) fn area_point(&self, area: usize, rng: &mut Rng, margin: f64) -> (f64, f64) {
        let a = &self.venue.areas[area];
        let m = margin.min(a.width / 2.0).min(a.depth / 2.0);
        (
            rng.range(a.x + m, a.x + a.width - m),
            rng.range(a.y + m, a.y + a.depth - m),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SimPing, DAY, HOUR};

    fn small() -> SimConfig {
        SimConfig {
            attendees: 60,
            days: 2,
            ping_interval_s: 60.0,
            ..Default::default()
        }
    }

    #[test]
    fn same_seed_same_conference() {
        let c = Conference::plan(&small());
        let a: Vec<SimPing> = c.pings().collect();
        let b: Vec<SimPing> = Conference::plan(&small()).pings().collect();
        assert_eq!(a, b);
        assert_eq!(c.persons(), Conference::plan(&small()).persons());
        let other: Vec<SimPing> = Conference::plan(&SimConfig { seed: 2, ..small() })
            .pings()
            .collect();
        assert_ne!(a, other);
    }

    #[test]
    fn pings_are_ordered_inside_the_venue_and_on_schedule() {
        let cfg = small();
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
}
