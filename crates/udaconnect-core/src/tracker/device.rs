//! What names a registered device to the tracker protocols: its OsmAnd id (a secret, since
//! the OsmAnd protocol carries no other credential) and its OwnTracks MQTT topic (a name).

use std::fmt;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::App;
use crate::auth::{random_bytes, AccountId, TokenHash, TokenId, TokenSecret};
use crate::model::PersonId;
use crate::{Error, Result};

/// A device as stores number it.
pub type DeviceId = i64;

/// Random bytes in an OsmAnd id: 128 bits, beyond guessing by any rate of requests.
const OSMAND_ID_BYTES: usize = 16;

/// Characters of an OsmAnd id: lowercase hexadecimal, so it survives being typed into a phone
/// (no case, no look-alike punctuation).
pub const OSMAND_ID_CHARS: usize = 2 * OSMAND_ID_BYTES;

/// The id a device sends as the OsmAnd protocol's `id` (Traccar Client's "device identifier").
/// It is the device's only credential on that protocol, so it is random and stored only as a
/// hash, like a token; shown once. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct OsmAndId(String);

impl OsmAndId {
    /// A new id from the operating system's random source.
    pub fn generate() -> Result<OsmAndId> {
        let bytes: [u8; OSMAND_ID_BYTES] = random_bytes()?;
        Ok(OsmAndId(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    /// The id's text, to hand to its holder once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What stores keep, and look a device up by.
    pub fn hash(&self) -> TokenHash {
        OsmAndId::hash_of(&self.0)
    }

    /// The hash of an id as a device sent it (surrounding blanks dropped, case ignored: a
    /// phone's keyboard may capitalise the first letter).
    pub fn hash_of(sent: &str) -> TokenHash {
        let mut hasher = Sha256::new();
        hasher.update(b"udaconnect osmand id\0");
        hasher.update(sent.trim().to_ascii_lowercase().as_bytes());
        TokenHash::from_bytes(hasher.finalize().into())
    }
}

impl fmt::Debug for OsmAndId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OsmAndId(…redacted)")
    }
}

/// Most characters of a device name kept in its topic.
const TOPIC_NAME_CHARS: usize = 24;

/// The OwnTracks topic of device `id` of `person`, named `name`: `owntracks/p<person>/<name
/// in lowercase letters, digits and dashes>-<id>`. Its two levels are what the OwnTracks app
/// calls UserID and DeviceID; the id at the end makes it unique and lets a topic be looked up
/// without a table of topics.
pub fn mqtt_topic(person: PersonId, name: &str, id: DeviceId) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if slug.len() >= TOPIC_NAME_CHARS {
            break;
        }
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug = if slug.is_empty() { "phone" } else { slug };
    format!("owntracks/p{person}/{slug}-{id}")
}

/// The person and device a topic of [`mqtt_topic`]'s form names (an `/event` or other
/// subtopic included); `None` for any other topic.
pub fn topic_device(topic: &str) -> Option<(PersonId, DeviceId)> {
    let mut levels = topic.split('/');
    if levels.next()? != "owntracks" {
        return None;
    }
    let person = levels.next()?.strip_prefix('p')?;
    let device = levels.next()?;
    let (_, id) = device.rsplit_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 16 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(person) || !digits(id) {
        return None;
    }
    Some((person.parse().ok()?, id.parse().ok()?))
}

/// Longest device name, in characters.
pub const MAX_DEVICE_NAME_CHARS: usize = 64;

/// A device to register: for whose account and person, and what its holder calls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDevice {
    pub account: AccountId,
    pub person: PersonId,
    pub name: String,
}

impl NewDevice {
    /// A device named `name`: not blank, at most [`MAX_DEVICE_NAME_CHARS`] characters, no
    /// control characters (it is shown in lists and becomes part of a topic).
    pub fn new(account: AccountId, person: PersonId, name: &str) -> Result<NewDevice> {
        let name = crate::validate::trimmed_text(name, "name", MAX_DEVICE_NAME_CHARS)?;
        if name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(NewDevice {
            account,
            person,
            name: name.to_string(),
        })
    }
}

/// A registered device as stores keep it, its secrets aside.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    pub id: DeviceId,
    pub account: AccountId,
    pub person: PersonId,
    pub name: String,
    /// Its device token (role device, for `person`): revoked with it.
    pub token: TokenId,
    pub created: DateTime<Utc>,
    pub revoked: Option<DateTime<Utc>>,
    /// When a ping last came from it (kept to the minute), through which app, and its battery
    /// then.
    pub last_seen: Option<DateTime<Utc>>,
    pub app: Option<App>,
    pub battery_pct: Option<i64>,
}

impl DeviceInfo {
    /// The OwnTracks topic it publishes to ([`mqtt_topic`]).
    pub fn mqtt_topic(&self) -> String {
        mqtt_topic(self.person, &self.name, self.id)
    }
}

/// A ping a device sent, as its list shows it: when, through which app, its battery then.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    pub app: App,
    pub battery_pct: Option<f64>,
    pub at: DateTime<Utc>,
}

/// A device just registered, with its two secrets, which exist only here: shown once.
#[derive(Debug)]
pub struct IssuedDevice {
    pub device: DeviceInfo,
    /// Its device token: the OwnTracks password, and `Authorization: Bearer` for the API.
    pub token: TokenSecret,
    pub osmand_id: OsmAndId,
}
