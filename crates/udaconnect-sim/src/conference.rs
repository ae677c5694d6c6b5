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
    /// The phones' typical seconds between two pings: their harmonic mean, so the conference
    /// has as many pings as if every phone pinged at this interval.
    pub ping_interval_s: f64,
    /// The range of the phones' own intervals, seconds: each phone pings at one interval
    /// drawn from it (shaped so their harmonic mean is `ping_interval_s`), from a phase of its
    /// own, with a clock jitter of about half a second. A `ping_interval_s` outside the range
    /// puts every phone at it.
    pub min_interval_s: f64,
    pub max_interval_s: f64,
    /// The share of attendees who go round in a group (of two to four) with colleagues,
    /// standing within a couple of metres of each other all day.
    pub group_share: f64,
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
            ping_interval_s: 47.0,
            min_interval_s: 15.0,
            max_interval_s: 300.0,
            group_share: 0.3,
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
    /// Each attendee's group leader (themselves when alone).
    leaders: Vec<u32>,
    /// The exponent `k` of the phones' intervals `min * (max / min)^(u^k)`, `u` uniform; `None`
    /// when every phone pings at `ping_interval_s`.
    interval_shape: Option<f64>,
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
            leaders: groups(config, &mut rng),
            interval_shape: interval_shape(config),
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

    pub(crate) fn leader_of(&self, index: u32) -> u32 {
        self.leaders[index as usize]
    }

    /// A phone's interval, drawn from its generator.
    pub(crate) fn phone_interval(&self, rng: &mut Rng) -> Micros {
        let c = &self.config;
        let seconds = match self.interval_shape {
            Some(k) => {
                c.min_interval_s * (c.max_interval_s / c.min_interval_s).powf(rng.unit().powf(k))
            }
            None => c.ping_interval_s,
        };
        ((seconds * US as f64) as Micros).max(1)
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

/// Groups of consecutive attendees, two to four, led by the first: each attendee's leader.
fn groups(config: &SimConfig, rng: &mut Rng) -> Vec<u32> {
    let n = config.attendees;
    let mut leaders = Vec::with_capacity(n as usize);
    while (leaders.len() as u32) < n {
        let leader = leaders.len() as u32;
        // A group of `size` takes `size` attendees, so a share `g` of attendees in groups of
        // three on average means a group starts at a share `g / (3 - 2g)` of the leaders.
        let g = config.group_share.clamp(0.0, 1.0);
        let size = if rng.unit() < g / (3.0 - 2.0 * g) {
            2 + rng.below(3) as u32
        } else {
            1
        };
        for _ in 0..size.min(n - leader) {
            leaders.push(leader);
        }
    }
    leaders
}

/// The mean ping rate of phones at `min * (max / min)^(u^k)`: `E[1 / interval]`, integrated
/// numerically over `u`.
fn mean_rate(min_s: f64, max_s: f64, k: f64) -> f64 {
    const STEPS: usize = 2000;
    (0..STEPS)
        .map(|i| {
            let u = (i as f64 + 0.5) / STEPS as f64;
            1.0 / (min_s * (max_s / min_s).powf(u.powf(k)))
        })
        .sum::<f64>()
        / STEPS as f64
}

/// The shape that makes the phones' harmonic mean interval `ping_interval_s` (the rate falls
/// as `k` falls), or `None` when it lies outside the range.
fn interval_shape(config: &SimConfig) -> Option<f64> {
    let (lo, hi, h) = (
        config.min_interval_s,
        config.max_interval_s,
        config.ping_interval_s,
    );
    if !(lo > 0.0 && hi > lo && h > lo && h < hi) {
        return None;
    }
    let target = 1.0 / h;
    let (mut a, mut b) = (-12.0f64, 12.0f64);
    for _ in 0..60 {
        let m = (a + b) / 2.0;
        if mean_rate(lo, hi, m.exp()) > target {
            b = m;
        } else {
            a = m;
        }
    }
    Some(((a + b) / 2.0).exp())
}
