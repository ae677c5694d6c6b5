//! Pings as the gRPC calls decode them: the original `/LocationService/Create`'s (32-bit axes,
//! no time) and the v1 `LocationIngest`'s (a protobuf `Timestamp`, given as its seconds and
//! nanos). Held to the rules every transport shares, so a call is acknowledged only with what
//! the consumer stores.

use chrono::DateTime;

use super::BatchCheck;
use crate::domain::FixTime;
use crate::error::{Error, Result};
use crate::geo::axes_swapped;
use crate::model::NewLocation;

/// A v1 ping's values: person id, latitude, longitude, and the time as (seconds, nanos) since
/// 1970 when given.
pub type V1Ping = (i64, f64, f64, Option<(i64, i32)>);

/// The original Create's ping, and whether its axes came swapped and were put right (the
/// original sample client sends them so, and the original server took them).
pub fn legacy_ping(person_id: i32, latitude: f32, longitude: f32) -> Result<(NewLocation, bool)> {
    let (mut latitude, mut longitude) = (f64::from(latitude), f64::from(longitude));
    let repaired = axes_swapped(latitude, longitude);
    if repaired {
        std::mem::swap(&mut latitude, &mut longitude);
    }
    let ping = NewLocation::parse(person_id.into(), latitude, longitude, None)?;
    Ok((ping, repaired))
}

/// A protobuf `Timestamp` as a fix time, kept to the microsecond as every time is. The years
/// are checked on the exact time, before it is cut, as HTTP checks its RFC 3339 text: a
/// fraction of 9999's last second is refused by both.
pub fn timestamp_time(seconds: i64, nanos: i32) -> std::result::Result<FixTime, String> {
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(format!("nanos {nanos} is outside [0, 999999999]"));
    }
    let exact = DateTime::from_timestamp(seconds, nanos as u32)
        .ok_or_else(|| format!("{seconds} s is outside the supported range"))?;
    FixTime::new(exact)
}

fn time_of(time: Option<(i64, i32)>) -> std::result::Result<Option<FixTime>, String> {
    time.map(|(s, n)| timestamp_time(s, n)).transpose()
}

/// A v1 ping; a bad time is reported once the other fields pass.
pub fn v1_ping((person_id, latitude, longitude, time): V1Ping) -> Result<NewLocation> {
    let time = time_of(time).map_err(|m| Error::invalid("creation_time", m));
    let mut ping = NewLocation::parse(person_id, latitude, longitude, None)?;
    ping.set_creation_time(time?);
    Ok(ping)
}

/// A v1 batch, item by item; a bad time is reported beside the item's other violations,
/// after them.
pub fn v1_batch(pings: impl IntoIterator<Item = V1Ping>) -> BatchCheck {
    let pings: Vec<V1Ping> = pings.into_iter().collect();
    let times: Vec<_> = pings.iter().map(|p| time_of(p.3)).collect();
    let mut check = BatchCheck::of(pings.iter().zip(&times).map(|(p, t)| {
        let t = t.as_ref().ok().copied().flatten();
        NewLocation::parse(p.0, p.1, p.2, t)
    }));
    for (i, t) in times.into_iter().enumerate() {
        if let Err(m) = t {
            check.invalid_item(i, "creation_time", m);
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format_utc;

    /// Times are cut to the microsecond in every supported year, and refused outside them
    /// or with nanos a `Timestamp` cannot have.
    #[test]
    fn timestamps_are_held_to_the_shared_rules() {
        let shown = |s, n| timestamp_time(s, n).map(|t| format_utc(t.get()));
        assert_eq!(shown(0, 999), Ok("1970-01-01T00:00:00Z".into()));
        assert_eq!(
            shown(253_402_300_798, 999_999_999),
            Ok("9999-12-31T23:59:58.999999Z".into())
        );
        // 9999's last second is in, a fraction of it out, as HTTP reads the same RFC 3339 text.
        let last = format_utc(FixTime::parse("9999-12-31T23:59:59Z").unwrap().get());
        assert_eq!(shown(253_402_300_799, 0), Ok(last));
        for n in [104, 999_999_999] {
            let text = format!("9999-12-31T23:59:59.{n:09}Z");
            assert!(shown(253_402_300_799, n).is_err(), "{text}");
            assert!(FixTime::parse(&text).is_err(), "{text}");
        }
        for (s, n) in [(-1, 0), (253_402_300_800, 0), (1, -1), (1, 1_000_000_000)] {
            assert!(shown(s, n).is_err(), "{s} s {n} ns");
        }
        let e = v1_ping((0, 1.0, 1.0, Some((-1, 0)))).unwrap_err();
        assert_eq!(crate::validate::fields(&e), ["person_id"]);
    }

    /// The original's swapped axes are put right; a pair that fits neither order is refused.
    #[test]
    fn legacy_axes_are_repaired_by_the_shared_rule() {
        let (ping, repaired) = legacy_ping(5, -122.5, 37.5).unwrap();
        assert!(repaired);
        assert_eq!((ping.latitude(), ping.longitude()), (37.5, -122.5));
        assert!(!legacy_ping(5, 37.5, -122.5).unwrap().1);
        assert!(legacy_ping(5, 200.0, 200.0).is_err());
        assert!(legacy_ping(-1, 1.0, 1.0).is_err());
    }
}
