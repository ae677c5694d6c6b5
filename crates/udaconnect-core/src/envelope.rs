//! Per-person envelopes: a location record's payload encrypted with a key of its person's own,
//! so that destroying the key erases the person's pings from every copy of the log (replays,
//! backups, Kafka's retention) without rewriting it. This is crypto-shredding.
//!
//! A sealed record keeps its key (the person id, so one person's pings stay in order), its
//! timestamp and its correlation header in the clear. Its value is
//! `nonce (12 bytes) || ChaCha20-Poly1305(JSON) || tag (16 bytes)`, and header
//! [`KEY_VERSION_HEADER`] names the version of the person's key that sealed it. The associated
//! data binds the ciphertext to its person, its key version and its topic: copied onto another
//! person's record or another topic, it no longer opens.
//!
//! Records without that header are plaintext: the original producers' keyless JSON and
//! records written before envelopes. They cannot be shredded.
//!
//! Nonces are 96 random bits from the operating system, drawn per record. A counter would need
//! every ingest node to agree on the next value per person; random nonces need nothing, and
//! since a key seals only its own person's pings the birthday bound is far away: at one ping a
//! second for ten years (3.2·10^8 records) the chance that two nonces under one key collide is
//! below 10^-12 (n²/2^97).

use std::fmt;

use chrono::{DateTime, Utc};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};

use crate::model::{Location, PersonId, MAX_ID};
use crate::ports::KeyState;
use crate::record::{self, Decoded, LogRecord, Position};
use crate::{Error, Result};

/// Header naming the version of the person's key that sealed a record; absent on plaintext.
pub const KEY_VERSION_HEADER: &str = "key_version";
/// Bytes of a person's key.
pub const KEY_LEN: usize = 32;
/// Bytes of the authentication tag after the ciphertext.
const TAG_LEN: usize = 16;
/// Names the format in the associated data, so a later format never opens as this one.
const AAD_DOMAIN: &str = "udaconnect location envelope v1";

/// One person's key for their records on the log. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonKey {
    person_id: PersonId,
    /// Which of the person's keys this is; records name it in [`KEY_VERSION_HEADER`] so a key
    /// can be replaced while records sealed by the previous one remain readable.
    version: u32,
    secret: [u8; KEY_LEN],
}

impl PersonKey {
    /// A new key from the operating system's random source.
    pub fn generate(person_id: PersonId, version: u32) -> Result<PersonKey> {
        let mut secret = [0u8; KEY_LEN];
        getrandom::fill(&mut secret)
            .map_err(|e| Error::Internal(format!("random source failed: {e}")))?;
        Ok(PersonKey::new(person_id, version, secret))
    }

    pub fn new(person_id: PersonId, version: u32, secret: [u8; KEY_LEN]) -> PersonKey {
        PersonKey {
            person_id,
            version,
            secret,
        }
    }

    /// A key as a store keeps it; a secret of the wrong length or a version out of range is a
    /// corrupt store.
    pub fn from_stored(person_id: PersonId, version: i64, secret: &[u8]) -> Result<PersonKey> {
        let corrupt = || Error::Internal(format!("corrupt key of person {person_id}"));
        let version = u32::try_from(version).map_err(|_| corrupt())?;
        let secret = <[u8; KEY_LEN]>::try_from(secret).map_err(|_| corrupt())?;
        Ok(PersonKey::new(person_id, version, secret))
    }

    pub fn person_id(&self) -> PersonId {
        self.person_id
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// The secret, for the key store that keeps it.
    pub fn secret(&self) -> &[u8; KEY_LEN] {
        &self.secret
    }

    fn cipher(&self) -> LessSafeKey {
        // ChaCha20-Poly1305 takes any 32 bytes as a key: this cannot fail.
        let key = UnboundKey::new(&CHACHA20_POLY1305, &self.secret)
            .unwrap_or_else(|_| unreachable!("a {KEY_LEN}-byte ChaCha20-Poly1305 key"));
        LessSafeKey::new(key)
    }
}

impl fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersonKey")
            .field("person_id", &self.person_id)
            .field("version", &self.version)
            .field("secret", &"redacted")
            .finish()
    }
}

/// How a record on the log was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealing {
    /// In the clear: the original producers' records, and records from before envelopes.
    Plain,
    /// Sealed with version `version` of person `person_id`'s key.
    Sealed { person_id: PersonId, version: u32 },
}

/// How `record` was written. `Err` is the reason a record that claims an envelope but cannot
/// name its key goes to the dead-letter topic.
pub fn sealing(record: &LogRecord) -> Result<Sealing, String> {
    let Some(version) = record.header(KEY_VERSION_HEADER) else {
        return Ok(Sealing::Plain);
    };
    let version = std::str::from_utf8(version)
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .ok_or_else(|| format!("envelope: {KEY_VERSION_HEADER} is not a key version"))?;
    let person_id = record
        .key
        .as_deref()
        .and_then(|k| std::str::from_utf8(k).ok())
        .and_then(|k| k.parse::<PersonId>().ok())
        .filter(|id| (1..=MAX_ID).contains(id))
        .ok_or_else(|| "envelope: sealed record without its person's id as key".to_string())?;
    Ok(Sealing::Sealed { person_id, version })
}

/// What the tag authenticates besides the ciphertext.
fn associated_data(topic: &str, person_id: PersonId, version: u32) -> Vec<u8> {
    format!("{AAD_DOMAIN}\0{topic}\0{person_id}\0{version}").into_bytes()
}

/// `record` (a person's, keyed by their id, in the clear) with its value sealed by `key` for
/// `topic`. A record of another person, or one already sealed, is a caller's bug.
pub fn seal(mut record: LogRecord, topic: &str, key: &PersonKey) -> Result<LogRecord> {
    match sealing(&record) {
        Ok(Sealing::Plain) => {}
        _ => return Err(Error::Internal("envelope: record is sealed already".into())),
    }
    let own = key.person_id.to_string();
    if record.key.as_deref() != Some(own.as_bytes()) {
        return Err(Error::Internal(format!(
            "envelope: record is not keyed by person {}",
            key.person_id
        )));
    }
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce)
        .map_err(|e| Error::Internal(format!("random source failed: {e}")))?;
    let aad = associated_data(topic, key.person_id, key.version);
    let mut value = Vec::with_capacity(NONCE_LEN + record.value.len() + TAG_LEN);
    value.extend_from_slice(&nonce);
    value.extend_from_slice(&record.value);
    let tag = key
        .cipher()
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut value[NONCE_LEN..],
        )
        .map_err(|_| Error::Internal("envelope: payload too large to seal".into()))?;
    value.extend_from_slice(tag.as_ref());
    record.value = value;
    record.headers.push((
        KEY_VERSION_HEADER.into(),
        key.version.to_string().into_bytes(),
    ));
    Ok(record)
}

/// `record`, sealed by `key` for `topic`, in the clear again (without the version header).
/// `Err` says why it does not open: sealed by another key or for another topic, cut short or
/// altered. Total: never panics, whatever the bytes.
pub fn open(record: &LogRecord, topic: &str, key: &PersonKey) -> Result<LogRecord, String> {
    let (person_id, version) = match sealing(record)? {
        Sealing::Plain => return Err("envelope: record is not sealed".into()),
        Sealing::Sealed { person_id, version } => (person_id, version),
    };
    if person_id != key.person_id {
        return Err(format!(
            "envelope: sealed for person {person_id}, not {}",
            key.person_id
        ));
    }
    if version != key.version {
        return Err(format!(
            "envelope: sealed by key version {version}, not {}",
            key.version
        ));
    }
    if record.value.len() < NONCE_LEN + TAG_LEN {
        return Err(format!(
            "envelope: {} bytes, shorter than a nonce and a tag",
            record.value.len()
        ));
    }
    let (nonce, sealed) = record.value.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| "envelope: nonce of the wrong length".to_string())?;
    let mut plain = sealed.to_vec();
    let opened = key
        .cipher()
        .open_in_place(
            nonce,
            Aad::from(associated_data(topic, person_id, version)),
            &mut plain,
        )
        .map_err(|_| "envelope: does not authenticate under its person's key".to_string())?
        .len();
    plain.truncate(opened);
    Ok(LogRecord {
        key: record.key.clone(),
        value: plain,
        headers: record
            .headers
            .iter()
            .filter(|(name, _)| name != KEY_VERSION_HEADER)
            .cloned()
            .collect(),
        timestamp_ms: record.timestamp_ms,
    })
}

/// The record UdaConnect writes for an accepted `location` of `key`'s person, sealed for `topic`.
pub fn seal_location(
    location: &Location,
    correlation_id: Option<&str>,
    written: DateTime<Utc>,
    topic: &str,
    key: &PersonKey,
) -> Result<LogRecord> {
    seal(
        record::encode(location, correlation_id, written),
        topic,
        key,
    )
}

/// A sealed location record of `topic` read with `key`: opened, then decoded as a plaintext
/// record would be. The ping must be of the key's person. `Err` is a dead-letter reason.
pub fn decode_sealed(
    record: &LogRecord,
    pos: Position,
    topic: &str,
    key: &PersonKey,
) -> Result<Decoded, String> {
    let opened = open(record, topic, key)?;
    let decoded = record::decode_legacy(&opened, pos)?;
    if decoded.location.person_id != key.person_id {
        return Err(format!(
            "envelope: ping of person {} sealed by person {}'s key",
            decoded.location.person_id, key.person_id
        ));
    }
    Ok(decoded)
}

/// What a reader of the log makes of a record, sealed or not.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// A ping to store and index.
    Location(Decoded),
    /// Sealed by a key since destroyed: its person was erased. Skipped and counted, never
    /// dead-lettered, since it is not an error and its bytes are of no use to anyone.
    Shredded,
    /// The person was erased ([`record::erasure`]): drop their pings from what the reader keeps.
    Erased(PersonId),
}

/// Every reader's way through a record of `topic`: a plaintext record is decoded as it is; a
/// sealed one is opened with its person's key as `key_of` finds it (the reader looks the
/// batch's keys up beforehand). `Err` is a dead-letter reason: a bad envelope, a ping that does
/// not decode, or a key that never existed (a record from another deployment, say).
pub fn read(
    record: &LogRecord,
    pos: Position,
    topic: &str,
    key_of: impl FnOnce(PersonId) -> KeyState,
) -> Result<Read, String> {
    if let Some(person_id) = record::erased_person(record) {
        return Ok(Read::Erased(person_id));
    }
    match sealing(record)? {
        Sealing::Plain => record::decode_legacy(record, pos).map(Read::Location),
        Sealing::Sealed { person_id, version } => match key_of(person_id) {
            KeyState::Live(key) => decode_sealed(record, pos, topic, &key).map(Read::Location),
            KeyState::Destroyed => Ok(Read::Shredded),
            KeyState::Absent => Err(format!(
                "envelope: person {person_id} has no key version {version}"
            )),
        },
    }
}

#[cfg(test)]
mod tests;
