//! One attendee's day, ping by ping, and every attendee's pings merged in time order.

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

impl<'a> Pings<'a> {
    pub(crate) fn new(conference: &'a Conference) -> Self {
        let mut heap = BinaryHeap::new();
        let mut attendees = Vec::with_capacity(conference.config.attendees as usize);
        for i in 0..conference.config.attendees {
            let mut a = Attendee::new(conference, i);
            if let Some(p) = a.next_ping(conference) {
                heap.push(Reverse((p.t, i)));
                attendees.push((a, Some(p)));
            } else {
                attendees.push((a, None));
            }
        }
        Pings {
            conference,
            heap,
            attendees,
        }
    }
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
