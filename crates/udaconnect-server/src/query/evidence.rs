//! Why a contact is one: the caller's own pings during the meetings, each with how far the
//! other person was and how far in time their nearest ping was. Never the other person's
//! coordinates, times or trail: a distance and a time gap per ping of the caller's only.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use udaconnect_core::consent::ContactRef;
use udaconnect_core::contact::{Acc, Contact};
use udaconnect_core::geo::haversine_m;
use udaconnect_core::model::Location;
use udaconnect_core::time::{format_utc, from_micros, to_micros, Micros, Window};
use udaconnect_core::track::TrackQuery;
use udaconnect_core::Result;

use crate::http::problem::ApiResult;
use crate::query::http::ConnectionApi;
use crate::query::reveal::{ContactPath, ContactWindow, NamedContact, NamedContactProblems};

/// Most pings one answer lists; `more` says there were others.
pub const MOST_PINGS: usize = 2000;

/// One of the caller's pings that made the contact.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MatchedPing {
    /// The caller's location id.
    pub id: i64,
    #[schema(example = "2021-07-01T10:00:00Z")]
    pub time: String,
    /// The caller's own position.
    pub latitude: f64,
    pub longitude: f64,
    /// Metres between the caller and the other person at this time: to their position walked
    /// in a straight line between their pings around it, or to their ping nearest in time.
    pub distance_m: f64,
    /// Seconds between this ping and the other person's ping nearest in time.
    pub time_gap_seconds: f64,
    /// The ping's accuracy in metres where the phone said it; null where it did not (the
    /// original JSON has no accuracy).
    pub accuracy_m: Option<f64>,
    /// The accuracy of the other person's ping nearest in time, where their phone said it.
    pub other_accuracy_m: Option<f64>,
}

/// The evidence of one contact.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Evidence {
    /// The distance the contacts query asked for, in metres.
    pub distance_m: f64,
    /// The caller's pings during the meetings that were within `distance_m` of the other
    /// person, by time.
    pub pings: Vec<MatchedPing>,
    /// More pings matched than the 2,000 listed.
    pub more: bool,
}

impl ConnectionApi {
    /// The caller's pings that matched `contact` under `q`.
    async fn evidence_of(&self, q: &TrackQuery, contact: &Contact) -> Result<Evidence> {
        let reach = q.max_interpolation_us.max(q.ping_tolerance_us);
        // Only what the meetings span (and the pings around it the walk between needs).
        let window = Window {
            start: (contact.first - reach).max(q.window.start),
            end: (contact.last + reach + 1).min(q.window.end),
        };
        let mut mine = self.locations.in_window(window, Some(q.person_id)).await?;
        let mut theirs = self
            .locations
            .in_window(window, Some(contact.person_id))
            .await?;
        mine.sort_by_key(|l| (to_micros(l.creation_time), l.id));
        theirs.sort_by_key(|l| (to_micros(l.creation_time), l.id));
        let during = |t: Micros| {
            contact
                .encounters
                .iter()
                .any(|e| e.start - q.ping_tolerance_us <= t && t <= e.end + q.ping_tolerance_us)
        };
        let mut pings = Vec::new();
        let mut more = false;
        for l in &mine {
            let t = to_micros(l.creation_time);
            // A ping too inaccurate to count did not make the contact.
            let bad = q
                .max_accuracy_m
                .is_some_and(|m| Acc::of(l.accuracy_m).worse_than(m));
            if !during(t) || bad {
                continue;
            }
            let Some((distance_m, gap_us, other_accuracy_m)) = nearest(&theirs, l, q) else {
                continue;
            };
            if distance_m > q.distance_m {
                continue;
            }
            if pings.len() == MOST_PINGS {
                more = true;
                break;
            }
            pings.push(MatchedPing {
                id: l.id,
                time: format_utc(from_micros(t)),
                latitude: l.latitude,
                longitude: l.longitude,
                distance_m,
                time_gap_seconds: gap_us as f64 / 1e6,
                accuracy_m: l.accuracy_m,
                other_accuracy_m,
            });
        }
        Ok(Evidence {
            distance_m: q.distance_m,
            pings,
            more,
        })
    }
}

/// The distance from `mine` to the other person at its time, and the time gap to their
/// nearest ping: their position walked in a straight line between the pings around it when
/// those are at most `max_interpolation` apart, else their nearest ping if within
/// `ping_tolerance` (as the contacts query counts presence), and the accuracy of that nearest
/// ping. `None` when they were not there.
fn nearest(
    theirs: &[Location],
    mine: &Location,
    q: &TrackQuery,
) -> Option<(f64, i64, Option<f64>)> {
    let t = to_micros(mine.creation_time);
    let after = theirs.partition_point(|l| to_micros(l.creation_time) < t);
    let before = after.checked_sub(1).map(|i| &theirs[i]);
    let next = theirs.get(after);
    let gap = |l: &Location| (to_micros(l.creation_time) - t).abs();
    let distance = |lat: f64, lon: f64| haversine_m(mine.latitude, mine.longitude, lat, lon);
    let closest = [before, next]
        .into_iter()
        .flatten()
        .min_by_key(|l| gap(l))?;
    if let (Some(a), Some(b)) = (before, next) {
        let (ta, tb) = (to_micros(a.creation_time), to_micros(b.creation_time));
        if tb - ta <= q.max_interpolation_us {
            let f = if tb == ta {
                0.0
            } else {
                (t - ta) as f64 / (tb - ta) as f64
            };
            let lat = a.latitude + (b.latitude - a.latitude) * f;
            let lon = a.longitude + (b.longitude - a.longitude) * f;
            return Some((distance(lat, lon), gap(closest), closest.accuracy_m));
        }
    }
    (gap(closest) <= q.ping_tolerance_us).then(|| {
        let d = distance(closest.latitude, closest.longitude);
        (d, gap(closest), closest.accuracy_m)
    })
}

/// Why a contact is one: the caller's pings during the meetings that were within the
/// distance of the other person, with that distance, the time gap to the other's nearest
/// ping, and the accuracy where known. Never the other person's coordinates, times or trail.
/// The contact is named and looked for as for `POST /api/me/contacts/{person_id}/reveal`.
#[utoipa::path(get, path = "/api/me/contacts/{person_id}/evidence", tag = "me",
    params(ContactPath, ContactWindow),
    responses(
        (status = 200, description = "The caller's matched pings", body = Evidence),
        NamedContactProblems,
    ))]
pub async fn evidence(
    State(api): State<Arc<ConnectionApi>>,
    NamedContact { me, raw, params }: NamedContact,
) -> ApiResult<Response> {
    let target = ContactRef::parse(&raw)?;
    let q = api.contact_params(&params, me)?;
    let work = async {
        let (contact, _) = api.find_contact(q, &target, &raw).await?;
        api.evidence_of(&q, &contact).await
    };
    match api.limiter.run(work).await {
        Ok(answer) => Ok(Json(answer?).into_response()),
        Err(refused) => Ok(refused.into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn at(person_id: udaconnect_core::model::PersonId, id: i64, second: i64, lon: f64) -> Location {
        Location {
            id,
            person_id,
            latitude: 51.5,
            longitude: lon,
            creation_time: Utc.timestamp_opt(1_600_000_000 + second, 0).unwrap(),
            accuracy_m: None,
            telemetry: Default::default(),
        }
    }

    #[test]
    fn nearest_walks_between_pings_or_takes_the_one_in_tolerance() {
        let q = TrackQuery::new(1, Window::all());
        let theirs = vec![at(2, 10, 0, 0.0), at(2, 11, 60, 0.001)];
        // Halfway in time, halfway along: 0.0005 degrees east of 0 at 51.5 N is about 35 m.
        let (d, gap, _) = nearest(&theirs, &at(1, 1, 30, 0.0005), &q).unwrap();
        assert!(d < 0.01, "{d}");
        assert_eq!(gap, 30_000_000);
        // Past their last ping: only within the tolerance.
        let tol = q.ping_tolerance_us / 1_000_000;
        assert!(nearest(&theirs, &at(1, 2, 60 + tol, 0.001), &q).is_some());
        assert!(nearest(&theirs, &at(1, 3, 61 + tol, 0.001), &q).is_none());
        assert!(nearest(&[], &at(1, 4, 0, 0.0), &q).is_none());
    }
}
