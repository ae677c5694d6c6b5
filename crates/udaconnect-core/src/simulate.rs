//! A deterministic conference: a venue with session rooms, an expo hall of booths and a
//! catering area; a schedule of talks and breaks over several days; attendees who arrive,
//! follow their interests into talks, wander the booths, queue for coffee and lunch, and leave;
//! their phones ping at an interval with jitter and GPS noise.
//!
//! Everything follows from the seed: the same [`SimConfig`] gives the same persons and the same
//! pings, bit for bit. Each attendee draws from a generator of their own, so attendees can be
//! produced lazily and merged into one time-ordered stream ([`Pings`]) of any length in little
//! memory.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::model::Person;
use crate::time::Micros;
use crate::venue::{Area, AreaKind, LatLon, Venue};

const US: i64 = 1_000_000;
const HOUR: i64 = 3600 * US;
const MINUTE: i64 = 60 * US;
const DAY: i64 = 24 * HOUR;

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

/// SplitMix64: small, fast, and good enough for a simulation; seeded per attendee.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 32) as usize * n) >> 32
    }
    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.unit().max(1e-12);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).max(1e-12).ln()
    }
}

const TOPICS: [&str; 12] = [
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
    rooms: Vec<usize>,
    booths: Vec<usize>,
    catering: usize,
    entrance: usize,
}

/// Start of the talk slots of a day, hours after midnight; each lasts 45 minutes.
const SLOTS_H: [f64; 7] = [9.0, 10.0, 11.0, 13.0, 14.0, 15.0, 16.0];
const TALK: i64 = 45 * MINUTE;

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

    fn attendee_rng(&self, i: u32) -> Rng {
        Rng::new(
            self.config.seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
                ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        )
    }

    /// Every ping of the conference, in time order.
    pub fn pings(&self) -> Pings<'_> {
        let mut heap = BinaryHeap::new();
        let mut attendees = Vec::with_capacity(self.config.attendees as usize);
        for i in 0..self.config.attendees {
            let mut a = Attendee::new(self, i);
            if let Some(p) = a.next_ping(self) {
                heap.push(Reverse((p.t, i)));
                attendees.push((a, Some(p)));
            } else {
                attendees.push((a, None));
            }
        }
        Pings {
            conference: self,
            heap,
            attendees,
        }
    }

    fn area_point(&self, area: usize, rng: &mut Rng, margin: f64) -> (f64, f64) {
        let a = &self.venue.areas[area];
        let m = margin.min(a.width / 2.0).min(a.depth / 2.0);
        (
            rng.range(a.x + m, a.x + a.width - m),
            rng.range(a.y + m, a.y + a.depth - m),
        )
    }
}

/// One ping of the simulation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimPing {
    pub person_id: i64,
    pub latitude: f64,
    pub longitude: f64,
    pub t: Micros,
}

/// What an attendee is doing: standing at a spot until a time, or walking to one.
#[derive(Debug, Clone, Copy)]
enum Doing {
    Stay {
        x: f64,
        y: f64,
        until: Micros,
    },
    Walk {
        from: (f64, f64),
        to: (f64, f64),
        start: Micros,
        arrive: Micros,
        then_until: Micros,
    },
    Away {
        until: Micros,
    },
}

/// One attendee's behaviour, advanced lazily ping by ping.
#[derive(Debug, Clone)]
struct Attendee {
    index: u32,
    rng: Rng,
    interests: [usize; 3],
    next_t: Micros,
    doing: Doing,
    pos: (f64, f64),
    day: i64,
    leave: Micros,
    done: bool,
}

/// How close two moments of one walk must be to be worth a separate position.
const WALK_SPEED_MPS: f64 = 1.2;

impl Attendee {
    fn new(c: &Conference, index: u32) -> Attendee {
        let mut rng = c.attendee_rng(index);
        // The persons' names drew three numbers first: stay independent of them.
        for _ in 0..3 {
            rng.next_u64();
        }
        let interests = [
            rng.below(TOPICS.len()),
            rng.below(TOPICS.len()),
            rng.below(TOPICS.len()),
        ];
        let mut a = Attendee {
            index,
            rng,
            interests,
            next_t: 0,
            doing: Doing::Away { until: 0 },
            pos: (0.0, 0.0),
            day: -1,
            leave: 0,
            done: false,
        };
        a.start_day(c, 0);
        a
    }

    /// Plans day `day`: arrival at the entrance and the time to leave; skips absent days.
    fn start_day(&mut self, c: &Conference, mut day: i64) {
        loop {
            if day >= c.config.days as i64 {
                self.done = true;
                return;
            }
            if self.rng.unit() < 0.05 {
                day += 1;
                continue;
            }
            let midnight = c.config.start + day * DAY;
            let arrive = midnight
                + (8.5 * HOUR as f64) as i64
                + (self.rng.range(0.0, 90.0) * MINUTE as f64) as i64;
            self.leave = midnight + 16 * HOUR + (self.rng.range(0.0, 120.0) * MINUTE as f64) as i64;
            self.day = day;
            self.pos = c.area_point(c.entrance, &mut self.rng, 1.0);
            self.doing = Doing::Stay {
                x: self.pos.0,
                y: self.pos.1,
                until: arrive + MINUTE,
            };
            self.next_t = arrive;
            return;
        }
    }

    fn interval(&mut self, c: &Conference) -> Micros {
        ((c.config.ping_interval_s * self.rng.range(0.8, 1.2)) * US as f64) as Micros
    }

    /// Chooses what to do from `t` on, starting at the current position.
    fn choose(&mut self, c: &Conference, t: Micros) {
        let midnight = c.config.start + self.day * DAY;
        if t >= self.leave {
            let exit = c.area_point(c.entrance, &mut self.rng, 1.0);
            self.walk_to(exit, t, t + 2 * MINUTE);
            self.doing = match self.doing {
                Doing::Walk {
                    from,
                    to,
                    start,
                    arrive,
                    ..
                } => Doing::Walk {
                    from,
                    to,
                    start,
                    arrive,
                    then_until: arrive,
                },
                other => other,
            };
            return;
        }
        let day_t = t - midnight;
        // In a talk slot: go to a talk on one of one's topics, most of the time.
        let slot = SLOTS_H
            .iter()
            .map(|h| (h * HOUR as f64) as i64)
            .find(|s| day_t >= *s - 5 * MINUTE && day_t < *s + TALK - 10 * MINUTE);
        if let Some(slot_start) = slot {
            let start = midnight + slot_start;
            let talks: Vec<&Session> = c
                .sessions
                .iter()
                .filter(|s| s.start == start && self.interests.contains(&s.topic))
                .collect();
            if !talks.is_empty() && self.rng.unit() < 0.75 {
                let talk = talks[self.rng.below(talks.len())];
                let seat = c.area_point(c.rooms[talk.room], &mut self.rng, 1.5);
                self.walk_to(seat, t, talk.end.min(self.leave));
                return;
            }
        }
        // Lunch or a coffee break: queue at catering, then stand at a table.
        let lunch = (12 * HOUR..13 * HOUR).contains(&day_t);
        let between_talks = SLOTS_H.iter().any(|h| {
            let end = (h * HOUR as f64) as i64 + TALK;
            day_t >= end && day_t < end + 15 * MINUTE
        });
        if (lunch && self.rng.unit() < 0.8) || (between_talks && self.rng.unit() < 0.4) {
            let spot = c.area_point(c.catering, &mut self.rng, 1.0);
            let stay = if lunch {
                self.rng.range(15.0, 40.0)
            } else {
                self.rng.range(4.0, 12.0)
            };
            self.walk_to(spot, t, t + (stay * MINUTE as f64) as i64);
            return;
        }
        // Otherwise the expo: a booth in front of its counter, for a few minutes.
        if !c.booths.is_empty() {
            let booth = &c.venue.areas[c.booths[self.rng.below(c.booths.len())]];
            let spot = (
                booth.x + self.rng.range(0.5, booth.width - 0.5),
                booth.y - self.rng.range(0.5, 2.0),
            );
            let dwell = 2.0 + self.rng.exp(5.0);
            self.walk_to(spot, t, t + (dwell * MINUTE as f64) as i64);
        }
    }

    fn walk_to(&mut self, to: (f64, f64), t: Micros, then_until: Micros) {
        let d = ((to.0 - self.pos.0).powi(2) + (to.1 - self.pos.1).powi(2)).sqrt();
        let arrive = t + ((d / WALK_SPEED_MPS) * US as f64) as Micros;
        self.doing = Doing::Walk {
            from: self.pos,
            to,
            start: t,
            arrive,
            then_until: then_until.max(arrive + MINUTE),
        };
    }

    /// Where the attendee is at `t`, advancing the plan as needed; `None` when away.
    fn position(&mut self, c: &Conference, t: Micros) -> Option<(f64, f64)> {
        for _ in 0..64 {
            match self.doing {
                Doing::Away { until } if t < until => return None,
                Doing::Away { .. } => self.choose(c, t),
                Doing::Stay { x, y, until } if t < until => return Some((x, y)),
                Doing::Stay { .. } => {
                    if t >= self.leave {
                        return None;
                    }
                    self.choose(c, t)
                }
                Doing::Walk {
                    from,
                    to,
                    start,
                    arrive,
                    ..
                } if t < arrive => {
                    let f = (t - start) as f64 / (arrive - start).max(1) as f64;
                    return Some((from.0 + (to.0 - from.0) * f, from.1 + (to.1 - from.1) * f));
                }
                Doing::Walk { to, then_until, .. } => {
                    self.pos = to;
                    if t >= self.leave && then_until <= t {
                        return None;
                    }
                    self.doing = Doing::Stay {
                        x: to.0,
                        y: to.1,
                        until: then_until,
                    };
                }
            }
        }
        Some(self.pos)
    }

    fn next_ping(&mut self, c: &Conference) -> Option<SimPing> {
        loop {
            if self.done {
                return None;
            }
            let t = self.next_t;
            if t >= self.leave + 10 * MINUTE {
                self.start_day(c, self.day + 1);
                continue;
            }
            self.next_t = t + self.interval(c);
            let Some((x, y)) = self.position(c, t) else {
                if t >= self.leave {
                    self.start_day(c, self.day + 1);
                }
                continue;
            };
            self.pos = (x, y);
            let noise = c.config.gps_noise_m;
            let (nx, ny) = (x + self.rng.normal() * noise, y + self.rng.normal() * noise);
            let (latitude, longitude) = c.venue.to_lat_lon(nx, ny);
            return Some(SimPing {
                person_id: c.config.first_person_id + self.index as i64,
                latitude,
                longitude,
                t,
            });
        }
    }
}

/// Every ping of a conference in time order: a merge of the attendees' own streams.
pub struct Pings<'a> {
    conference: &'a Conference,
    heap: BinaryHeap<Reverse<(Micros, u32)>>,
    attendees: Vec<(Attendee, Option<SimPing>)>,
}

impl Iterator for Pings<'_> {
    type Item = SimPing;

    fn next(&mut self) -> Option<SimPing> {
        let Reverse((_, i)) = self.heap.pop()?;
        let (attendee, pending) = &mut self.attendees[i as usize];
        let out = pending.take();
        if let Some(next) = attendee.next_ping(self.conference) {
            self.heap.push(Reverse((next.t, i)));
            *pending = Some(next);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
