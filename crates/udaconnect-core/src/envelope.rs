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
//! Nonces (96 bits) are counted up from a random start the process draws once (see `nonce`):
//! no system call per record, and nothing for ingest nodes to agree on. A process never repeats
//! one; two processes repeat one only if their runs of nonces overlap, which is less likely
//! than a repeat among as many nonces each drawn at random.
//!
//! Ingest seals with a [`TopicKey`]: a person's key with its cipher and associated data worked
//! out once per batch, not once per record.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

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

/// The next nonce of this process: a random start drawn once, plus a count in its low 64 bits.
///
/// Within a process the count never wraps (2^64 records), so no nonce repeats. Across
/// processes (restarts, ingest nodes) a repeat needs two runs of nonces to overlap: for N
/// processes sealing n records each, about N²·n/2^96, where as many random nonces repeat
/// with about (N·n)²/2^97. Drawing 12 random bytes per record cost a system call each.
fn nonce() -> Result<[u8; NONCE_LEN]> {
    static START: OnceLock<[u8; NONCE_LEN]> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let start = match START.get() {
        Some(start) => start,
        None => {
            let mut drawn = [0u8; NONCE_LEN];
            getrandom::fill(&mut drawn)
                .map_err(|e| Error::Internal(format!("random source failed: {e}")))?;
            // Two threads may both draw: one start wins, and both count from it.
            START.get_or_init(|| drawn)
        }
    };
    let count = COUNT.fetch_add(1, Ordering::Relaxed);
    let mut low = [0u8; 8];
    low.copy_from_slice(&start[NONCE_LEN - 8..]);
    let mut nonce = *start;
    nonce[NONCE_LEN - 8..]
        .copy_from_slice(&u64::from_be_bytes(low).wrapping_add(count).to_be_bytes());
    Ok(nonce)
}

/// A person's key made ready for the records of one topic: the cipher's key and the
/// associated data, worked out once and used for every record of a batch. `Debug` never
/// shows the secret.
#[derive(Clone)]
pub struct TopicKey {
    key: PersonKey,
    cipher: LessSafeKey,
    aad: Vec<u8>,
    version: Vec<u8>,
}

impl TopicKey {
    pub fn new(key: PersonKey, topic: &str) -> TopicKey {
        TopicKey {
            cipher: key.cipher(),
            aad: associated_data(topic, key.person_id, key.version),
            version: key.version.to_string().into_bytes(),
            key,
        }
    }

    pub fn key(&self) -> &PersonKey {
        &self.key
    }

    /// Seals `value` in place: its first [`NONCE_LEN`] bytes are room for the nonce, the rest
    /// is the plaintext; the tag is appended.
    fn seal_value(&self, value: &mut Vec<u8>) -> Result<()> {
        let nonce = nonce()?;
        value[..NONCE_LEN].copy_from_slice(&nonce);
        let tag = self
            .cipher
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&self.aad),
                &mut value[NONCE_LEN..],
            )
            .map_err(|_| Error::Internal("envelope: payload too large to seal".into()))?;
        value.extend_from_slice(tag.as_ref());
        Ok(())
    }

    fn mark(&self, record: &mut LogRecord) {
        record
            .headers
            .push((KEY_VERSION_HEADER.into(), self.version.clone()));
    }
}

impl fmt::Debug for TopicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TopicKey").field(&self.key).finish()
    }
}

/// Whether `record` is keyed by `person_id` written in decimal, as ingest keys records
/// (written on the stack: this is asked once per record).
fn keyed_by(record: &LogRecord, person_id: PersonId) -> bool {
    use std::io::Write;
    let mut text = [0u8; 20];
    let mut rest = &mut text[..];
    // 20 bytes hold any i64 in decimal, sign included.
    if write!(rest, "{person_id}").is_err() {
        return false;
    }
    let len = 20 - rest.len();
    record.key.as_deref() == Some(&text[..len])
}

/// `record` (a person's, keyed by their id, in the clear) with its value sealed by `key` for
/// `topic`. A record of another person, or one already sealed, is a caller's bug.
pub fn seal(record: LogRecord, topic: &str, key: &PersonKey) -> Result<LogRecord> {
    seal_with(record, &TopicKey::new(key.clone(), topic))
}

/// [`seal`] with a key made ready for the topic.
pub fn seal_with(mut record: LogRecord, key: &TopicKey) -> Result<LogRecord> {
    match sealing(&record) {
        Ok(Sealing::Plain) => {}
        _ => return Err(Error::Internal("envelope: record is sealed already".into())),
    }
    let person_id = key.key.person_id;
    if !keyed_by(&record, person_id) {
        return Err(Error::Internal(format!(
            "envelope: record is not keyed by person {person_id}"
        )));
    }
    let mut value = Vec::with_capacity(NONCE_LEN + record.value.len() + TAG_LEN);
    value.resize(NONCE_LEN, 0);
    value.extend_from_slice(&record.value);
    key.seal_value(&mut value)?;
    record.value = value;
    key.mark(&mut record);
    Ok(record)
}

/// `record`, sealed by `key` for `topic`, in the clear again (without the version header).
/// `Err` says why it does not open: sealed by another key or for another topic, cut short or
/// altered. Total: never panics, whatever the bytes.
pub fn open(record: &LogRecord, topic: &str, key: &PersonKey) -> Result<LogRecord, String> {
    open_with(record, &TopicKey::new(key.clone(), topic))
}

/// [`open`] with a key made ready for the topic.
pub fn open_with(record: &LogRecord, key: &TopicKey) -> Result<LogRecord, String> {
    let (person_id, version) = match sealing(record)? {
        Sealing::Plain => return Err("envelope: record is not sealed".into()),
        Sealing::Sealed { person_id, version } => (person_id, version),
    };
    let own = &key.key;
    if person_id != own.person_id {
        return Err(format!(
            "envelope: sealed for person {person_id}, not {}",
            own.person_id
        ));
    }
    if version != own.version {
        return Err(format!(
            "envelope: sealed by key version {version}, not {}",
            own.version
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
        .cipher
        .open_in_place(nonce, Aad::from(&key.aad), &mut plain)
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
    seal_location_with(
        location,
        correlation_id,
        written,
        &TopicKey::new(key.clone(), topic),
    )
}

/// [`seal_location`] with a key made ready for the topic: ingest's way, the ping's JSON
/// written straight behind the room for its nonce and sealed where it lies.
pub fn seal_location_with(
    location: &Location,
    correlation_id: Option<&str>,
    written: DateTime<Utc>,
    key: &TopicKey,
) -> Result<LogRecord> {
    if location.person_id != key.key.person_id {
        return Err(Error::Internal(format!(
            "envelope: ping of person {} to seal with person {}'s key",
            location.person_id, key.key.person_id
        )));
    }
    // Room for the nonce, a ping's JSON (about 130 bytes) and the tag.
    let mut value = Vec::with_capacity(NONCE_LEN + 160 + TAG_LEN);
    value.resize(NONCE_LEN, 0);
    let mut record = record::encode_after(location, correlation_id, written, value);
    key.seal_value(&mut record.value)?;
    key.mark(&mut record);
    Ok(record)
}

/// A sealed location record of `topic` read with `key`: opened, then decoded as a plaintext
/// record would be. The ping must be of the key's person. `Err` is a dead-letter reason.
pub fn decode_sealed(
    record: &LogRecord,
    pos: Position,
    topic: &str,
    key: &PersonKey,
) -> Result<Decoded, String> {
    decode_sealed_with(record, pos, &TopicKey::new(key.clone(), topic))
}

/// [`decode_sealed`] with a key made ready for the topic.
pub fn decode_sealed_with(
    record: &LogRecord,
    pos: Position,
    key: &TopicKey,
) -> Result<Decoded, String> {
    let opened = open_with(record, key)?;
    let decoded = record::decode_legacy(&opened, pos)?;
    let person_id = key.key.person_id;
    if decoded.location.person_id != person_id {
        return Err(format!(
            "envelope: ping of person {} sealed by person {person_id}'s key",
            decoded.location.person_id
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
    let mut ready = None;
    let slot = &mut ready;
    read_held(record, pos, move |person| match key_of(person) {
        KeyState::Live(key) => Held::Live(slot.insert(TopicKey::new(key, topic))),
        KeyState::Destroyed => Held::Destroyed,
        KeyState::Absent => Held::Absent,
    })
}

/// A person's key as a reader holds it for one topic: [`KeyState`] with a live key made
/// ready once for every record of the person it reads.
#[derive(Debug, Clone, Copy)]
pub enum Held<'a> {
    Absent,
    Live(&'a TopicKey),
    Destroyed,
}

/// [`read`] with keys the reader made ready for the topic.
pub fn read_held<'a>(
    record: &LogRecord,
    pos: Position,
    key_of: impl FnOnce(PersonId) -> Held<'a>,
) -> Result<Read, String> {
    if let Some(person_id) = record::erased_person(record) {
        return Ok(Read::Erased(person_id));
    }
    match sealing(record)? {
        Sealing::Plain => record::decode_legacy(record, pos).map(Read::Location),
        Sealing::Sealed { person_id, version } => match key_of(person_id) {
            Held::Live(key) => decode_sealed_with(record, pos, key).map(Read::Location),
            Held::Destroyed => Ok(Read::Shredded),
            Held::Absent => Err(format!(
                "envelope: person {person_id} has no key version {version}"
            )),
        },
    }
}

#[cfg(test)]
mod tests;
