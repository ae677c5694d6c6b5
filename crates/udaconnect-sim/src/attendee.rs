//! One attendee's days: the plan of where their group goes, the phone that samples it, and
//! every attendee's pings merged in time order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use udaconnect_core::time::Micros;

use crate::conference::TOPICS;
use crate::{Conference, Rng, Session, DAY, HOUR, MINUTE, SLOTS_H, TALK, US};

/// One ping of the simulation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimPing {
    pub person_id: i64,
    pub latitude: f64,
    pub longitude: f64,
    pub t: Micros,
}

/// What a group is doing: standing at a spot until a time, walking to one, or away.
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
        leaving: bool,
    },
    Away {
        until: Micros,
    },
    Done,
}

const WALK_SPEED_MPS: f64 = 1.2;

/// Where a group is over the days: its leader's choices, drawn from the leader's generator.
///
/// Each activity starts when the previous one ends, never when someone happens to look, so the
/// plan is the same whatever times it is asked about: every member's phone advances a copy of
/// it and all copies agree.
#[derive(Debug, Clone)]
struct Plan {
    rng: Rng,
    interests: [usize; 3],
    doing: Doing,
    pos: (f64, f64),
    day: i64,
    leave: Micros,
}

impl Plan {
    fn new(c: &Conference, leader: u32) -> Plan {
        let mut rng = c.attendee_rng(leader);
        // The persons' names drew three numbers first: stay independent of them.
        for _ in 0..3 {
            rng.next_u64();
        }
        let interests = [
            rng.below(TOPICS.len()),
            rng.below(TOPICS.len()),
            rng.below(TOPICS.len()),
        ];
        let mut plan = Plan {
            rng,
            interests,
            doing: Doing::Done,
            pos: (0.0, 0.0),
            day: -1,
            leave: 0,
        };
        plan.start_day(c, 0);
        plan
    }

    /// Plans day `day` (or the next one attended): arrival at the entrance and the time to
    /// leave.
    fn start_day(&mut self, c: &Conference, mut day: i64) {
        loop {
            if day >= c.config.days as i64 {
                self.doing = Doing::Done;
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
            self.doing = Doing::Away { until: arrive };
            return;
        }
    }

    /// Chooses what to do from `now` on (when the last activity ended), starting at the
    /// current position.
    fn choose(&mut self, c: &Conference, now: Micros) {
        if now >= self.leave {
            let exit = c.area_point(c.entrance, &mut self.rng, 1.0);
            self.walk_to(exit, now, now);
            if let Doing::Walk { leaving, .. } = &mut self.doing {
                *leaving = true;
            }
            return;
        }
        let midnight = c.config.start + self.day * DAY;
        let day_t = now - midnight;
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
                self.walk_to(seat, now, talk.end.min(self.leave));
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
            self.walk_to(spot, now, now + (stay * MINUTE as f64) as i64);
            return;
        }
        // Otherwise the expo: a booth in front of its counter, for a few minutes (a hall too
        // small for booths: a few minutes where one stands).
        if c.booths.is_empty() {
            self.walk_to(self.pos, now, now + 5 * MINUTE);
            return;
        }
        let booth = &c.venue.areas[c.booths[self.rng.below(c.booths.len())]];
        let spot = (
            booth.x + self.rng.range(0.5, booth.width - 0.5),
            booth.y - self.rng.range(0.5, 2.0),
        );
        let dwell = 2.0 + self.rng.exp(5.0);
        self.walk_to(spot, now, now + (dwell * MINUTE as f64) as i64);
    }

    fn walk_to(&mut self, to: (f64, f64), now: Micros, then_until: Micros) {
        let d = ((to.0 - self.pos.0).powi(2) + (to.1 - self.pos.1).powi(2)).sqrt();
        let arrive = now + ((d / WALK_SPEED_MPS) * US as f64) as Micros;
        self.doing = Doing::Walk {
            from: self.pos,
            to,
            start: now,
            arrive,
            then_until: then_until.max(arrive + MINUTE),
            leaving: false,
        };
    }

    /// Where the group is at `t` (never earlier than the last time asked), advancing the plan
    /// as needed; `None` when away.
    fn position(&mut self, c: &Conference, t: Micros) -> Option<(f64, f64)> {
        loop {
            match self.doing {
                Doing::Done => return None,
                Doing::Away { until } if t < until => return None,
                Doing::Away { until } => {
                    self.doing = Doing::Stay {
                        x: self.pos.0,
                        y: self.pos.1,
                        until: until + MINUTE,
                    }
                }
                Doing::Stay { x, y, until } if t < until => return Some((x, y)),
                Doing::Stay { until, .. } => self.choose(c, until),
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
                Doing::Walk {
                    to,
                    then_until,
                    leaving,
                    ..
                } => {
                    self.pos = to;
                    if leaving {
                        self.start_day(c, self.day + 1);
                    } else {
                        self.doing = Doing::Stay {
                            x: to.0,
                            y: to.1,
                            until: then_until,
                        };
                    }
                }
            }
        }
    }

    /// When the group is next on site, if ever, for a time at which it is away.
    fn back_at(&self) -> Option<Micros> {
        match self.doing {
            Doing::Away { until } => Some(until),
            _ => None,
        }
    }
}

/// One attendee's phone: the group's plan, where in the group the attendee stands, and the
/// phone's own clock (interval, phase and jitter).
#[derive(Debug, Clone)]
struct Phone {
    index: u32,
    rng: Rng,
    plan: Plan,
    offset: (f64, f64),
    interval: Micros,
    /// The phone's next tick: ticks fall on `phase + k * interval`.
    tick: Micros,
    jitter_us: f64,
}

impl Phone {
    fn new(c: &Conference, index: u32) -> Phone {
        let leader = c.leader_of(index);
        let mut rng = Rng::new(c.attendee_rng(index).next_u64() ^ 0x9407_e5ee_d000_0001);
        let interval = c.phone_interval(&mut rng);
        let tick = c.config.start + (rng.unit() * interval as f64) as Micros;
        // Members stand around the leader's spot, within a metre and a bit.
        let offset = if leader == index {
            (0.0, 0.0)
        } else {
            let (r, a) = (rng.range(0.5, 1.2), rng.range(0.0, std::f64::consts::TAU));
            (r * a.cos(), r * a.sin())
        };
        Phone {
            index,
            jitter_us: (0.5 * US as f64).min(interval as f64 / 10.0),
            rng,
            plan: Plan::new(c, leader),
            offset,
            interval,
            tick,
        }
    }

    fn next_ping(&mut self, c: &Conference) -> Option<SimPing> {
        loop {
            let tick = self.tick;
            self.tick += self.interval;
            let jitter = (self.rng.normal() * self.jitter_us)
                .clamp(-(self.interval as f64) / 4.0, self.interval as f64 / 4.0);
            let t = tick + jitter as Micros;
            let Some((x, y)) = self.plan.position(c, t) else {
                // Away: skip the ticks until the group is back, or stop.
                let back = self.plan.back_at()?;
                if back > self.tick {
                    let skipped = (back - self.tick) / self.interval;
                    self.tick += skipped * self.interval;
                }
                continue;
            };
            let (x, y) = (x + self.offset.0, y + self.offset.1);
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
    phones: Vec<(Phone, Option<SimPing>)>,
}

impl<'a> Pings<'a> {
    pub(crate) fn new(conference: &'a Conference) -> Self {
        let mut heap = BinaryHeap::new();
        let mut phones = Vec::with_capacity(conference.config.attendees as usize);
        for i in 0..conference.config.attendees {
            let mut phone = Phone::new(conference, i);
            let first = phone.next_ping(conference);
            if let Some(p) = &first {
                heap.push(Reverse((p.t, i)));
            }
            phones.push((phone, first));
        }
        Pings {
            conference,
            heap,
            phones,
        }
    }
}

impl Iterator for Pings<'_> {
    type Item = SimPing;

    fn next(&mut self) -> Option<SimPing> {
        let Reverse((_, i)) = self.heap.pop()?;
        let (phone, pending) = &mut self.phones[i as usize];
        let out = pending.take();
        if let Some(next) = phone.next_ping(self.conference) {
            self.heap.push(Reverse((next.t, i)));
            *pending = Some(next);
        }
        out
    }
}
