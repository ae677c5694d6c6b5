//! Persons' keys as the roles use them ([`udaconnect_core::envelope`]): ingest seals every ping
//! it writes to the `location` topic with its person's key, and every reader of the topic
//! opens what it reads with them. Erasing a person destroys their key, so every copy of their
//! records (replays, backups, Kafka's retention) becomes unreadable at once.
//!
//! One [`Keyring`] per process, over the key store, with a cache: a key is looked up once per
//! person and not once per ping.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use udaconnect_core::envelope::{self, Held, PersonKey, Read, Sealing, TopicKey};
use udaconnect_core::model::{Location, PersonId};
use udaconnect_core::ports::{Consumed, DynKeyStore, DynLog, KeyState, Log, LogScan};
use udaconnect_core::record::{LogRecord, Position};
use udaconnect_core::{Error, Result};

/// How long a live key read from the store is used before it is read again. A key destroyed
/// by another process (an erasure through another person-api) is seen here after at most
/// this long; meanwhile the person's row is gone, so ingest refuses their pings and the
/// consumer stores none of them.
const LIVE_FOR: Duration = Duration::from_secs(10);

/// The process's view of the key store.
pub struct Keyring {
    store: DynKeyStore,
    /// Live keys as last read, and when.
    live: Mutex<HashMap<PersonId, (PersonKey, Instant)>>,
    /// Destroyed keys: a destroyed key is never live again, so this never goes stale.
    destroyed: Mutex<HashSet<PersonId>>,
}

impl Keyring {
    pub fn new(store: DynKeyStore) -> Self {
        Keyring {
            store,
            live: Mutex::default(),
            destroyed: Mutex::default(),
        }
    }

    fn cached(&self, person: PersonId) -> Option<KeyState> {
        if lock(&self.destroyed).contains(&person) {
            return Some(KeyState::Destroyed);
        }
        let live = lock(&self.live);
        let (key, read) = live.get(&person)?;
        (read.elapsed() < LIVE_FOR).then(|| KeyState::Live(key.clone()))
    }

    fn remember(&self, person: PersonId, state: &KeyState) {
        match state {
            KeyState::Live(key) => {
                lock(&self.live).insert(person, (key.clone(), Instant::now()));
            }
            KeyState::Destroyed => {
                lock(&self.live).remove(&person);
                lock(&self.destroyed).insert(person);
            }
            // A key may be made later: nothing to keep.
            KeyState::Absent => {}
        }
    }

    /// The keys ingest seals `persons`' pings for `topic` with, made for those who have none.
    /// Each is looked up once per batch and made ready for the topic once, however many pings
    /// of the person the batch holds.
    pub async fn for_sealing(&self, topic: &str, persons: &[PersonId]) -> Result<SealingKeys> {
        let mut keys = HashMap::new();
        let mut unknown = Vec::new();
        for &person in persons {
            if keys.contains_key(&person) {
                continue;
            }
            match self.cached(person) {
                Some(KeyState::Live(key)) => {
                    keys.insert(person, Some(TopicKey::new(key, topic)));
                }
                Some(_) => {
                    keys.insert(person, None);
                }
                None => {
                    // Held back once: the store is asked once for all of them.
                    keys.insert(person, None);
                    unknown.push(person);
                }
            }
        }
        if !unknown.is_empty() {
            for (person, made) in self.store.get_or_create_many(&unknown).await? {
                let state = made.clone().map_or(KeyState::Destroyed, KeyState::Live);
                self.remember(person, &state);
                keys.insert(person, made.map(|key| TopicKey::new(key, topic)));
            }
        }
        Ok(SealingKeys(keys))
    }

    /// The state of the key of every person with a sealed record among `batch` (of `topic`),
    /// read once per batch, live keys made ready for the topic once.
    pub async fn for_reading(&self, topic: &str, batch: &[Consumed]) -> Result<ReadingKeys> {
        let mut sealed = HashSet::new();
        for c in batch {
            if let Ok(Sealing::Sealed { person_id, .. }) = envelope::sealing(&c.record) {
                sealed.insert(person_id);
            }
        }
        self.states(topic, sealed).await
    }

    async fn states(&self, topic: &str, persons: HashSet<PersonId>) -> Result<ReadingKeys> {
        let mut states = Vec::with_capacity(persons.len());
        let mut unknown = Vec::new();
        for person in persons {
            match self.cached(person) {
                Some(state) => states.push((person, state)),
                None => unknown.push(person),
            }
        }
        if !unknown.is_empty() {
            for (person, state) in self.store.get_many(&unknown).await? {
                self.remember(person, &state);
                states.push((person, state));
            }
        }
        let mut keys = HashMap::with_capacity(states.len());
        for (person, state) in states {
            let held = match state {
                KeyState::Live(key) => HeldKey::Live(Box::new(TopicKey::new(key, topic))),
                KeyState::Destroyed => HeldKey::Destroyed,
                KeyState::Absent => HeldKey::Absent,
            };
            keys.insert(person, held);
        }
        Ok(ReadingKeys {
            topic: topic.to_string(),
            keys,
        })
    }

    /// `record` (keyed by `person`'s id, in the clear) sealed with their key for `topic`, a
    /// key made for them if they have none; `None` when their key is destroyed: they were
    /// erased, and nothing of theirs may be written again.
    pub async fn seal_record(
        &self,
        topic: &str,
        person: PersonId,
        record: LogRecord,
    ) -> Result<Option<LogRecord>> {
        let keys = self.for_sealing(topic, &[person]).await?;
        match keys.0.get(&person) {
            Some(Some(key)) => envelope::seal_with(record, key).map(Some),
            _ => Ok(None),
        }
    }

    /// The person's key as the store has it now.
    pub async fn state(&self, person: PersonId) -> Result<KeyState> {
        let state = self.store.get(person).await?;
        self.remember(person, &state);
        Ok(state)
    }

    /// Destroys the person's key for good (erasure); `true` when a live key was destroyed.
    pub async fn destroy(&self, person: PersonId) -> Result<bool> {
        let destroyed = self.store.destroy(person).await?;
        self.remember(person, &KeyState::Destroyed);
        Ok(destroyed)
    }

    /// Reads `topic` as [`Log::scan`] does, handing each record to `visit` as
    /// [`ReadingKeys::read`] reads it: for the checks at start, whose visits cannot wait for
    /// the key store. Where sealed records are there, the log is read twice: once for the
    /// persons whose keys are needed, once to visit. Returns the records visited.
    pub async fn scan(
        &self,
        log: &DynLog,
        topic: &str,
        group: Option<&str>,
        limit: u64,
        visit: &mut (dyn FnMut(&Consumed, Result<Read, String>) + Send),
    ) -> Result<u64> {
        let mut sealed = HashSet::new();
        let mut persons = |batch: &[Consumed]| {
            sealed.extend(
                batch
                    .iter()
                    .filter_map(|c| match envelope::sealing(&c.record) {
                        Ok(Sealing::Sealed { person_id, .. }) => Some(person_id),
                        _ => None,
                    }),
            );
        };
        // One reading of the log, handing its batches to `visit`; named in full:
        // `Iterator::scan` would be found first on the `Arc`.
        async fn read(
            log: &DynLog,
            topic: &str,
            group: Option<&str>,
            limit: u64,
            visit: &mut (dyn FnMut(&[Consumed]) + Send),
        ) -> Result<u64> {
            let scan = LogScan {
                topic,
                group,
                limit,
                visit,
            };
            Log::scan(log.as_ref(), scan).await
        }
        read(log, topic, group, limit, &mut persons).await?;
        let keys = self.states(topic, sealed).await?;
        let mut each = |batch: &[Consumed]| {
            for c in batch {
                visit(c, keys.read(&c.record, c.position, topic));
            }
        };
        read(log, topic, group, limit, &mut each).await
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The keys one batch of pings is sealed with, for one topic.
pub struct SealingKeys(HashMap<PersonId, Option<TopicKey>>);

impl SealingKeys {
    /// Whether the person's key is destroyed: they were erased, and no ping of theirs may be
    /// written again.
    pub fn erased(&self, person: PersonId) -> bool {
        matches!(self.0.get(&person), Some(None))
    }

    /// The record for `location`, sealed with its person's key for the keys' topic.
    pub fn seal(
        &self,
        location: &Location,
        correlation_id: Option<&str>,
        written: DateTime<Utc>,
    ) -> Result<LogRecord> {
        match self.0.get(&location.person_id) {
            Some(Some(key)) => envelope::seal_location_with(location, correlation_id, written, key),
            Some(None) => Err(Error::Invalid(vec![udaconnect_core::FieldViolation::new(
                "person_id",
                format!("no person with id {}", location.person_id),
            )])),
            None => Err(Error::Internal(format!(
                "no key looked up for person {}",
                location.person_id
            ))),
        }
    }
}

/// A record of any topic as [`ReadingKeys::open`] finds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Opened {
    /// Written in the clear.
    Clear(LogRecord),
    /// Sealed with the person's key, here opened (without its key version header).
    Sealed(PersonId, LogRecord),
    /// Sealed with the person's key, since destroyed: they were erased.
    Shredded(PersonId),
}

/// A person's key as [`ReadingKeys`] hold it: a live one made ready for their topic.
enum HeldKey {
    Absent,
    // Boxed: a key made ready holds its cipher's expanded key.
    Live(Box<TopicKey>),
    Destroyed,
}

/// The keys of one batch's sealed records, of one topic. The default holds none: sealed
/// records read as of unknown keys.
#[derive(Default)]
pub struct ReadingKeys {
    topic: String,
    keys: HashMap<PersonId, HeldKey>,
}

impl ReadingKeys {
    /// `record` of the keys' topic, opened when sealed; `Err` is a dead-letter reason (a bad
    /// envelope, a key that never existed). For records other than pings (mail requests).
    pub fn open(&self, record: &LogRecord) -> Result<Opened, String> {
        let (person, version) = match envelope::sealing(record)? {
            Sealing::Plain => return Ok(Opened::Clear(record.clone())),
            Sealing::Sealed { person_id, version } => (person_id, version),
        };
        match self.keys.get(&person) {
            Some(HeldKey::Live(key)) => {
                envelope::open_with(record, key).map(|r| Opened::Sealed(person, r))
            }
            Some(HeldKey::Destroyed) => Ok(Opened::Shredded(person)),
            None | Some(HeldKey::Absent) => Err(format!(
                "envelope: person {person} has no key version {version}"
            )),
        }
    }

    /// What the record at `pos` of `topic` is: a ping, a shredded record, an erasure; `Err`
    /// is a dead-letter reason.
    pub fn read(&self, record: &LogRecord, pos: Position, topic: &str) -> Result<Read, String> {
        let held = |person| match self.keys.get(&person) {
            None | Some(HeldKey::Absent) => Held::Absent,
            Some(HeldKey::Live(key)) => Held::Live(key),
            Some(HeldKey::Destroyed) => Held::Destroyed,
        };
        if topic == self.topic {
            return envelope::read_held(record, pos, held);
        }
        // Made ready for another topic: the key itself, for this one.
        envelope::read(record, pos, topic, |person| match held(person) {
            Held::Absent => KeyState::Absent,
            Held::Live(key) => KeyState::Live(key.key().clone()),
            Held::Destroyed => KeyState::Destroyed,
        })
    }
}
