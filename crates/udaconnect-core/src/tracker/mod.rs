//! Pings as tracker apps send them: OwnTracks' JSON messages, the OsmAnd protocol's query or
//! form fields (OsmAnd, older Traccar Client) and recent Traccar Client's JSON body, read into
//! a [`TrackerFix`]: the place and time a ping is made of, checked by the same rules and in
//! the same words as every other transport ([`crate::domain`]), and the extras the apps send
//! beside them (accuracy, altitude, speed, heading, battery).
//!
//! Which person a fix is for is not in these messages: it is the device's, known from the
//! credential it came with (a device token, an OsmAnd id), so [`TrackerFix::ping`] takes it.
//!
//! Extras are kept when they make sense and dropped when not (a negative accuracy, a battery
//! at 300 %): an app's odd field never costs the ping.
//!
//! # Layout
//! - `owntracks.rs`: [`owntracks_message`], one message of the OwnTracks HTTP mode, and
//!   [`basic_credentials`], how the app signs in.
//! - `osmand.rs`: [`osmand_fields`] (query or form) and [`traccar_json`] (Traccar Client 9+),
//!   both naming the device by its id ([`OsmAndReport`]); [`SpeedUnit`].
//! - `device.rs`: registered devices ([`NewDevice`], [`DeviceInfo`]), their [`OsmAndId`] and
//!   their OwnTracks MQTT topic.
//! - `read.rs`: numbers, times and extras as the apps write them.
//! - `tests.rs`: each reader on the apps' documented payloads, and properties over any input.

mod device;
mod osmand;
mod owntracks;
mod read;
#[cfg(test)]
mod tests;

pub use device::{
    mqtt_topic, topic_device, DeviceId, DeviceInfo, IssuedDevice, NewDevice, OsmAndId, Seen,
    MAX_DEVICE_NAME_CHARS, OSMAND_ID_CHARS,
};
pub use osmand::{osmand_fields, traccar_json, OsmAndReport, SpeedUnit, MAX_TRACCAR_LOCATIONS};
pub use owntracks::{basic_credentials, owntracks_message, OwnTracks};

use chrono::{DateTime, Utc};

use crate::domain::{FixTime, Latitude, Longitude, NewLocation, Telemetry};
use crate::model::PersonId;
use crate::Result;

/// The app a ping came from, as devices are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum App {
    OwnTracks,
    /// The OsmAnd protocol's query or form fields: OsmAnd, and Traccar Client before 9.
    OsmAnd,
    /// Traccar Client 9 and later: its JSON body.
    TraccarClient,
    /// The web page's "Share my location" (a browser's Geolocation API).
    Browser,
}

impl App {
    pub const ALL: [App; 4] = [
        App::OwnTracks,
        App::OsmAnd,
        App::TraccarClient,
        App::Browser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            App::OwnTracks => "owntracks",
            App::OsmAnd => "osmand",
            App::TraccarClient => "traccar-client",
            App::Browser => "browser",
        }
    }

    /// The app a stored name names.
    pub fn parse(name: &str) -> Option<App> {
        App::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// As its name: the log record's and the export's `app`.
impl serde::Serialize for App {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a tracker app says beside the place and time, in SI units whatever the app used.
/// Each is `None` when the app did not send it or sent a value that makes no sense.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Extras {
    /// Horizontal accuracy (radius), metres, 0 or more.
    pub accuracy_m: Option<f64>,
    /// Above sea level, metres.
    pub altitude_m: Option<f64>,
    /// Over ground, metres per second, 0 or more.
    pub speed_mps: Option<f64>,
    /// Course over ground, degrees clockwise from north, 0 to 360.
    pub heading_deg: Option<f64>,
    /// Battery level, percent, 0 to 100.
    pub battery_pct: Option<f64>,
}

impl Extras {
    /// What of these a ping keeps beside its accuracy, and the app that sent them.
    pub fn telemetry(&self, app: App) -> Telemetry {
        Telemetry {
            altitude_m: self.altitude_m,
            speed_mps: self.speed_mps,
            heading_deg: self.heading_deg,
            battery_pct: self.battery_pct,
            app: Some(app),
        }
    }
}

/// A place and time read from a tracker app, valid by the rules every ping follows, and its
/// extras.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerFix {
    latitude: Latitude,
    longitude: Longitude,
    /// `None`: the app sent no time; the ping is timed at ingest.
    time: Option<FixTime>,
    pub extras: Extras,
    pub app: App,
}

impl TrackerFix {
    pub fn latitude(&self) -> f64 {
        self.latitude.get()
    }

    pub fn longitude(&self) -> f64 {
        self.longitude.get()
    }

    pub fn time(&self) -> Option<DateTime<Utc>> {
        self.time.map(FixTime::get)
    }

    /// The ping this fix is for `person` (the device's), checked as any ping's person is,
    /// with the fix's extras and its app.
    pub fn ping(&self, person: PersonId) -> Result<NewLocation> {
        NewLocation::parse(person, self.latitude(), self.longitude(), self.time).map(|p| {
            p.with_accuracy(self.extras.accuracy_m)
                .with_telemetry(self.extras.telemetry(self.app))
        })
    }
}
