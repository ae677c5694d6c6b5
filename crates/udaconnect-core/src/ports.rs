//! The ports: what the roles need from storage and the log, as traits over domain types.
//!
//! Each trait has an embedded adapter (one process, files in the data dir) and a distributed one
//! (PostgreSQL, Kafka); roles hold `Arc<dyn Trait>` and never know which. Every method that can
//! block on I/O is async.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::AuditEntry;
use crate::auth::{
    Account, AccountId, Email, EmailChange, Issued, NewAccount, NewSession, NewToken, Principal,
    Revoked, Role, SessionId, SessionInfo, SignInLink, TokenId, TokenInfo, TokenSecret,
};
use crate::consent::{Choice, ContactChoices, Shown};
use crate::envelope::PersonKey;
use crate::model::{Location, LocationId, NewPerson, Person, PersonId};
use crate::record::{LogRecord, Position};
use crate::time::{Micros, Window};
use crate::track::{track_read_window, TrackQuery};
use crate::tracker::{DeviceId, DeviceInfo, IssuedDevice, NewDevice, Seen};
use crate::Result;

/// Persons, owned by person-api.
#[async_trait]
pub trait PersonStore: Send + Sync + 'static {
    /// Stores a new person under a fresh id, above every id ever stored or imported.
    async fn create(&self, person: NewPerson) -> Result<Person>;
    /// Stores persons under the ids they bring (imports, seed data); existing ids are updated.
    async fn import(&self, persons: Vec<Person>) -> Result<()>;
    async fn get(&self, id: PersonId) -> Result<Option<Person>>;
    /// The persons among `ids` that exist, in id order.
    async fn get_many(&self, ids: &[PersonId]) -> Result<Vec<Person>>;
    /// Up to `limit` persons with ids above `after`, in id order.
    async fn list(&self, after: Option<PersonId>, limit: usize) -> Result<Vec<Person>>;
    /// Deletes the person (erasure), overwriting what the store can; `false` when there is
    /// none. Their id is never given to anyone else.
    async fn delete(&self, id: PersonId) -> Result<bool>;
    /// Succeeds when the store answers queries.
    async fn ping(&self) -> Result<()>;
}

/// Stored locations, written by location-consumer and read by location-api and connection-api.
#[async_trait]
pub trait LocationStore: Send + Sync + 'static {
    /// Stores locations keyed by id; an id already stored is left as it is, so a redelivered
    /// or replayed record has no second effect. Durable when this returns.
    async fn upsert(&self, locations: &[Location]) -> Result<()>;
    async fn get(&self, id: LocationId) -> Result<Option<Location>>;
    /// Locations with time in `window`, of one person or of everyone, in (time, id) order.
    async fn in_window(&self, window: Window, person: Option<PersonId>) -> Result<Vec<Location>>;
    /// Up to `range.limit` locations with ids above `range.after` and at most `range.until`,
    /// in id order: for building indexes, from several ranges at once.
    async fn scan(&self, range: LocationScan) -> Result<Vec<Location>>;
    /// The lowest and highest stored ids, if any location is stored.
    async fn id_range(&self) -> Result<Option<(LocationId, LocationId)>>;
    /// The highest stored id below [`FIX_ID_BASE`](crate::record::FIX_ID_BASE): the
    /// highest id ever leased that reached the store, which new leases must stay above.
    async fn max_leased_id(&self) -> Result<Option<LocationId>>;
    /// Says that [`Self::scan`] is about to read every location, so a store may start fetching
    /// them ahead. Only a hint; by default nothing.
    fn will_scan_all(&self) {}
    /// What a connection or contacts query needs, in one read: the asked person's locations in
    /// the window, and every other person's location in the window that may lie within
    /// `distance_m` (and `max_gap_us`, when set) of one of them. The candidates may be a
    /// superset: the contact engine applies the exact predicate, so every store gives the same
    /// answers to the bit. This default reads the whole window; stores with a spatial index
    /// narrow it down.
    async fn near(&self, q: NearQuery) -> Result<Near> {
        let own = self.in_window(q.window, Some(q.person_id)).await?;
        if own.is_empty() {
            return Ok(Near::default());
        }
        let mut candidates = self.in_window(q.window, None).await?;
        candidates.retain(|l| l.person_id != q.person_id);
        Ok(Near { own, candidates })
    }
    /// What a contacts query over tracks ([`crate::track`]) needs, in one read: the asked
    /// person's pings in the query window widened by [`track_read_window`]; candidates, other
    /// persons' pings that may be fixes of a piece meeting one of the asked person's pieces;
    /// and each candidate's neighbours, the pings of the same person just before and after it
    /// in (time, id) order, when at most `max_interpolation` away. Candidates may be a
    /// superset and neighbours may repeat candidates:
    /// [`crate::track::contacts_from_near`] computes the exact answer from them.
    ///
    /// Complete for every piece of another person whose two fixes lie at most `reach_m`
    /// apart (see [`crate::track::reach_for_speed`]); a store may return more. This default
    /// reads every ping in the widened window as a candidate, which is complete for every
    /// piece; stores with a spatial index narrow it down.
    async fn near_tracks(&self, q: &TrackQuery, reach_m: f64) -> Result<NearTracks> {
        let _ = reach_m;
        let read = track_read_window(q);
        let own = self.in_window(read, Some(q.person_id)).await?;
        if own.is_empty() {
            return Ok(NearTracks::default());
        }
        let mut candidates = self.in_window(read, None).await?;
        candidates.retain(|l| l.person_id != q.person_id);
        Ok(NearTracks {
            own,
            candidates,
            neighbours: Vec::new(),
        })
    }
    /// Removes every location (before a replay rebuilds them).
    async fn clear(&self) -> Result<()>;
    /// Removes every location of `person` (erasure), overwriting what the store can; returns
    /// how many it removed.
    async fn delete_person(&self, person: PersonId) -> Result<u64>;
    /// Removes up to `limit` of the oldest locations with time before `cut` (retention),
    /// overwriting what the store can; returns how many it removed. A caller removing many
    /// calls it again until it returns less than `limit`, so no one statement holds the
    /// store's writes up for long.
    async fn delete_before(&self, cut: Micros, limit: usize) -> Result<u64>;
    /// `person`'s locations in time order (then by id), those after `after` (a location's
    /// time and id) only, at most `limit`: one page of a person's whole trail, for their
    /// export, so no caller holds all of it at once.
    async fn person_page(
        &self,
        person: PersonId,
        after: Option<(Micros, LocationId)>,
        limit: usize,
    ) -> Result<Vec<Location>>;
    async fn count(&self) -> Result<u64>;
    async fn ping(&self) -> Result<()>;
}

/// The read behind one connection or contacts query (see [`LocationStore::near`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NearQuery {
    pub person_id: PersonId,
    pub window: Window,
    pub distance_m: f64,
    /// `None`: no time condition.
    pub max_gap_us: Option<i64>,
}

/// The asked person's locations and the other persons' candidate locations, each in
/// `(creation_time, id)` order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Near {
    pub own: Vec<Location>,
    pub candidates: Vec<Location>,
}

/// The read behind one contacts query over tracks (see [`LocationStore::near_tracks`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NearTracks {
    pub own: Vec<Location>,
    pub candidates: Vec<Location>,
    pub neighbours: Vec<Location>,
}

/// Accounts and their credentials: API and device tokens, browser sessions, sign-in links.
///
/// Secrets are made here (each `create_*` returns its secret once) and never kept: a store
/// holds only [`TokenSecret::hash`]. Times are handed in, so expiry is the caller's clock
/// and tests decide what time it is.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Stores a new account. [`crate::Error::Conflict`] when its e-mail address (in any case)
    /// or its person already has an account.
    async fn create_account(&self, account: NewAccount, now: DateTime<Utc>) -> Result<Account>;
    async fn account(&self, id: AccountId) -> Result<Option<Account>>;
    /// The account whose primary address is `email`, whatever its case.
    async fn account_by_email(&self, email: &Email) -> Result<Option<Account>>;
    async fn account_by_person(&self, person: PersonId) -> Result<Option<Account>>;
    /// The oldest account in `role` with neither person nor address: the one the command
    /// line creates to hold staff tokens before anyone has signed in.
    async fn bootstrap_account(&self, role: Role) -> Result<Option<Account>>;
    /// Up to `limit` accounts with ids above `after`, in id order.
    async fn accounts(&self, after: Option<AccountId>, limit: usize) -> Result<Vec<Account>>;
    /// Accounts in the admin role.
    async fn count_admins(&self) -> Result<u64>;

    /// Stores a new token; the caller has checked it with [`Account::check_grant`].
    async fn create_token(&self, token: NewToken, now: DateTime<Utc>) -> Result<Issued<TokenInfo>>;
    /// Who `secret` (an API or device token) signs in, if it names a token neither revoked
    /// nor expired at `now`. Records the use (to the minute).
    async fn verify_token(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>>;
    async fn token(&self, id: TokenId) -> Result<Option<TokenInfo>>;
    /// The account's tokens, revoked and expired ones included, oldest first.
    async fn tokens(&self, account: AccountId) -> Result<Vec<TokenInfo>>;
    /// Revokes one token; `false` when there is no such token or it was revoked already.
    async fn revoke_token(&self, id: TokenId, now: DateTime<Utc>) -> Result<bool>;
    /// Revokes every token and session of the account in one transaction.
    async fn revoke_all(&self, account: AccountId, now: DateTime<Utc>) -> Result<Revoked>;
    /// Deletes the account with its tokens, sessions and devices; `false` when there is none.
    async fn delete_account(&self, id: AccountId) -> Result<bool>;

    /// A new browser session for the account, valid until `expires`; returns its id, the
    /// cookie's value.
    async fn create_session(
        &self,
        account: AccountId,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<TokenSecret> {
        let session = NewSession::new(account, None, expires);
        self.start_session(session, now).await
    }
    /// A new browser session, with what it keeps to be told apart in lists; returns its id,
    /// the cookie's value.
    async fn start_session(&self, session: NewSession, now: DateTime<Utc>) -> Result<TokenSecret>;
    /// The account's live sessions (neither revoked nor expired at `now`), oldest first;
    /// `current`, the session asking, is marked.
    async fn sessions(
        &self,
        account: AccountId,
        current: Option<&TokenSecret>,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionInfo>>;
    /// Ends the account's session `id`; `false` when the account has no such live session.
    async fn revoke_session_id(
        &self,
        account: AccountId,
        id: SessionId,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Who the session `secret` signs in, if it is neither revoked nor expired at `now`:
    /// the account in its own role, every scope.
    async fn verify_session(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Principal>>;
    /// Ends a session (signing out); `false` when there was none to end.
    async fn revoke_session(&self, secret: &TokenSecret, now: DateTime<Utc>) -> Result<bool>;

    /// A sign-in link's token for `link.email`, whether or not an account has that address.
    async fn create_sign_in_link(
        &self,
        link: SignInLink,
        now: DateTime<Utc>,
    ) -> Result<TokenSecret>;
    /// Uses up the link `secret` at `now`: its address, once; `None` for a link unknown,
    /// expired or used before. Atomic: of two racing calls, one gets the address.
    async fn consume_sign_in_link(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Email>>;

    /// Records an address `change.account` asked for, until its link is followed or expires.
    async fn request_email_change(&self, change: EmailChange, now: DateTime<Utc>) -> Result<()>;
    /// The token of the link that verifies the change recorded under `key` for the address
    /// `to`, valid until `expires`; `None` when no such change waits. A new token replaces
    /// the change's earlier one (a retried mail).
    async fn issue_email_link(
        &self,
        key: &str,
        to: &Email,
        expires: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<TokenSecret>>;
    /// Uses up the link `secret` and gives its account the address, verified: the account as
    /// it is now; `None` for a link unknown, expired or used before. Atomic: of two racing
    /// calls, one applies it. [`crate::Error::Conflict`] (and the link still works) when
    /// another account has the address as its primary one.
    async fn confirm_email_change(
        &self,
        secret: &TokenSecret,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>>;
    /// Removes the account's secondary address; `false` when it had none.
    async fn remove_secondary_email(&self, account: AccountId) -> Result<bool>;
    /// Puts the account in `role` and revokes its tokens above that role: the account as it
    /// is now, `None` when there is none.
    async fn set_role(
        &self,
        account: AccountId,
        role: Role,
        now: DateTime<Utc>,
    ) -> Result<Option<Account>>;

    /// Registers a tracker device: a device token for its person (role device, scope
    /// ingest) and a random OsmAnd id, both returned once and stored only as hashes.
    async fn create_device(&self, device: NewDevice, now: DateTime<Utc>) -> Result<IssuedDevice>;
    async fn device(&self, id: DeviceId) -> Result<Option<DeviceInfo>>;
    /// The account's devices not revoked, oldest first.
    async fn devices(&self, account: AccountId) -> Result<Vec<DeviceInfo>>;
    /// The live device (neither it nor its token revoked) whose OsmAnd id is `sent`.
    async fn device_by_osmand_id(&self, sent: &str) -> Result<Option<DeviceInfo>>;
    /// The live device whose device token is `secret` (not recording a use of the token).
    async fn device_by_token(&self, secret: &TokenSecret) -> Result<Option<DeviceInfo>>;
    /// Revokes a device and its token; `false` when there is no such device or it was
    /// revoked already.
    async fn revoke_device(&self, id: DeviceId, now: DateTime<Utc>) -> Result<bool>;
    /// Records that `device` sent a ping (its app, and its battery if it said): kept to the
    /// minute, so a device in steady use costs no write per ping.
    async fn device_seen(&self, device: &DeviceInfo, seen: Seen) -> Result<()>;

    /// Whether the account chose to be shown by name as `shown` says; `false` until it says so.
    async fn shown(&self, account: AccountId, shown: Shown) -> Result<bool>;
    /// Records the account's choice of being shown by name as `shown` says; `false` when
    /// there is no such account.
    async fn set_shown(
        &self,
        account: AccountId,
        shown: Shown,
        yes: bool,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Those of `persons` whose account lets the people they met see them, in no order.
    async fn visible_persons(&self, persons: &[PersonId]) -> Result<Vec<PersonId>>;
    /// Every person whose account chose to be shown by name on the live map, in no order
    /// (one per such account: few beside the attendees of a venue).
    async fn persons_on_live_map(&self) -> Result<Vec<PersonId>>;

    /// Records that `person` asks `other` to exchange e-mail addresses; `false` when it was
    /// asked before (the first time is kept).
    async fn ask_reveal(
        &self,
        person: PersonId,
        other: PersonId,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Withdraws that request; `false` when there was none.
    async fn withdraw_reveal(&self, person: PersonId, other: PersonId) -> Result<bool>;
    /// Records that `person` hid `hidden.other` from their contacts at `hidden.at` (with
    /// `hidden.dispute`: the meeting is disputed); hiding again updates `dispute` and keeps
    /// the first time.
    async fn hide_contact(&self, person: PersonId, hidden: Choice) -> Result<()>;
    /// Shows `other` again; `false` when they were not hidden.
    async fn unhide_contact(&self, person: PersonId, other: PersonId) -> Result<bool>;
    /// Every reveal request and hidden contact `person` is on either side of.
    async fn contact_choices(&self, person: PersonId) -> Result<ContactChoices>;
    /// Removes every reveal request and hidden contact `person` is on either side of (their
    /// erasure): how many rows went.
    async fn forget_contact_choices(&self, person: PersonId) -> Result<u64>;

    /// Records reads of persons' data by others (see [`crate::audit`]).
    async fn record_reads(&self, reads: &[AuditEntry]) -> Result<()>;
    /// The reads of `person`'s data, newest first, at most `limit`.
    async fn reads_of(&self, person: PersonId, limit: usize) -> Result<Vec<AuditEntry>>;
    /// Removes every read of `person`'s data (their erasure): how many rows went.
    async fn forget_reads(&self, person: PersonId) -> Result<u64>;

    async fn ping(&self) -> Result<()>;
}

/// Which locations [`LocationStore::scan`] reads: ids in `(after, until]`, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocationScan {
    pub after: LocationId,
    pub until: LocationId,
    pub limit: usize,
}

impl LocationScan {
    /// Every stored location.
    pub const ALL: LocationScan = LocationScan::after(LocationId::MIN);

    /// Every stored location with an id above `after`.
    pub const fn after(after: LocationId) -> LocationScan {
        LocationScan {
            after,
            until: LocationId::MAX,
            limit: usize::MAX,
        }
    }
}

/// Hands out blocks of ids so ingest nodes assign unique ids without a round trip per ping
/// (hi/lo). State lives outside the stores a replay rebuilds, so a rebuild never reissues ids.
#[async_trait]
pub trait IdLeaser: Send + Sync + 'static {
    /// Leases `size` consecutive ids and returns the first. Never returns the same id twice,
    /// across restarts too.
    async fn lease(&self, size: u64) -> Result<i64>;
    /// Makes sure no future lease includes ids up to `id` (after an import with explicit ids).
    async fn reserve_through(&self, id: i64) -> Result<()>;
}

/// Each person's key for their records on the log (see [`crate::envelope`]), kept apart from
/// every other store so that destroying a key overwrites it.
///
/// A destroyed key leaves a tombstone: the person is never keyed again, so a ping that arrives
/// for an erased person is refused rather than sealed under a fresh key.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// The person's key, made (version 1) if they have none; callers racing on one person all
    /// get the same key. `None` once the key is destroyed.
    async fn get_or_create(&self, person_id: PersonId) -> Result<Option<PersonKey>> {
        let made = self.get_or_create_many(&[person_id]).await?;
        Ok(made.into_iter().next().and_then(|(_, key)| key))
    }
    /// [`KeyStore::get_or_create`] for each of `persons`, in one transaction or round trip for
    /// all: a batch of pings from a thousand persons new to the log makes their keys at once,
    /// not with a commit each. Each person once in the answer, in no particular order.
    async fn get_or_create_many(&self, persons: &[PersonId]) -> Result<FoundKeys> {
        let (mut keys, fresh) = KeyState::split_found(self.get_many(persons).await?)?;
        if fresh.is_empty() {
            return Ok(keys);
        }
        for (person_id, state) in self.insert_missing(fresh).await? {
            keys.push((person_id, state.made(person_id)?));
        }
        Ok(keys)
    }
    /// Stores `fresh` keys of persons who had none, in one transaction or round trip for all,
    /// and reads each person's key back: a key another caller made first is kept and is the
    /// one read.
    async fn insert_missing(&self, fresh: Vec<PersonKey>) -> Result<Vec<(PersonId, KeyState)>>;
    /// The person's key as it stands, making none.
    async fn get(&self, person_id: PersonId) -> Result<KeyState>;
    /// [`KeyStore::get`] for each of `persons`, in one read for all. Each person once in the
    /// answer, in no particular order.
    async fn get_many(&self, persons: &[PersonId]) -> Result<Vec<(PersonId, KeyState)>>;
    /// Destroys the person's key for good, and leaves the tombstone even when they had none.
    /// Returns whether a live key was destroyed; destroying again changes nothing.
    async fn destroy(&self, person_id: PersonId) -> Result<bool>;
}

/// A person's key in a [`KeyStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// Never made: the person has no sealed records.
    Absent,
    Live(PersonKey),
    /// Destroyed: the person's sealed records can never be read again.
    Destroyed,
}

/// Persons' keys as [`KeyStore::get_many`] found them, sorted for
/// [`KeyStore::get_or_create_many`].
pub type FoundKeys = Vec<(PersonId, Option<PersonKey>)>;

impl KeyState {
    /// Splits what [`KeyStore::get_many`] found into the keys that stand (`None` where
    /// destroyed) and a fresh key (version 1) for each person who has none, still to be made.
    pub fn split_found(found: Vec<(PersonId, KeyState)>) -> Result<(FoundKeys, Vec<PersonKey>)> {
        let mut keys = Vec::with_capacity(found.len());
        let mut fresh = Vec::new();
        for (person_id, state) in found {
            match state {
                KeyState::Live(key) => keys.push((person_id, Some(key))),
                KeyState::Destroyed => keys.push((person_id, None)),
                KeyState::Absent => fresh.push(PersonKey::generate(person_id, 1)?),
            }
        }
        Ok((keys, fresh))
    }

    /// A key just made, as read back: live, or `None` when it was destroyed in between.
    pub fn made(self, person_id: PersonId) -> Result<Option<PersonKey>> {
        match self {
            KeyState::Live(key) => Ok(Some(key)),
            KeyState::Destroyed => Ok(None),
            KeyState::Absent => Err(crate::Error::Internal(format!(
                "key of person {person_id} missing after it was made"
            ))),
        }
    }
}

/// Where a new consumer group starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// The oldest record kept.
    Earliest,
    /// Records appended from now on.
    Latest,
}

/// A record read from a log, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumed {
    pub position: Position,
    pub record: LogRecord,
}

/// An append-only, durable log of topics.
#[async_trait]
pub trait Log: Send + Sync + 'static {
    /// Appends records to `topic`. Returns only once every record is durable (fsynced, or
    /// acknowledged by all in-sync replicas); an error means none may be assumed durable.
    async fn append(&self, topic: &str, records: Vec<LogRecord>) -> Result<()>;
    /// Joins consumer group `group` on `topic`, resuming at its committed position, or at
    /// `start` if the group has none.
    async fn consumer(&self, topic: &str, group: &str, start: StartFrom) -> Result<DynLogConsumer>;
    /// Succeeds when appends can be made.
    async fn ping(&self) -> Result<()>;
    /// Reads `scan.topic` from `scan.group`'s committed position (from the oldest record kept
    /// where the group has committed nothing, or with no group) to its end (at least the end it
    /// had when the call started), handing every batch to `scan.visit`, and returns how many
    /// records it read. Joins no group and commits nothing: for checks at start. Fails when
    /// more than `scan.limit` records are there, before reading any where the log can tell.
    async fn scan(&self, scan: LogScan<'_>) -> Result<u64>;
}

/// What [`Log::scan`] reads, and what it hands each batch to.
pub struct LogScan<'a> {
    pub topic: &'a str,
    /// Read from this group's committed position; `None`: from the oldest record kept.
    pub group: Option<&'a str>,
    /// The most records the scan may find; more is an error.
    pub limit: u64,
    pub visit: &'a mut (dyn for<'b> FnMut(&'b [Consumed]) + Send),
}

/// One member of a consumer group.
#[async_trait]
pub trait LogConsumer: Send {
    /// Up to `max` records after those already returned, waiting at most `wait` for the first.
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Consumed>>;
    /// Commits every record returned so far: after a restart the group resumes after them.
    /// Call only once their effects are durable.
    async fn commit(&mut self) -> Result<()>;
    /// Records appended but not yet returned by [`LogConsumer::poll`], when known.
    fn lag(&self) -> Option<u64>;
    /// How many partitions of the topic this member holds, on a log whose group shares
    /// partitions among members (Kafka); `None` where the member always reads everything
    /// (the embedded log). A member holding none reads nothing, whatever its lag says.
    fn assigned(&self) -> Option<usize> {
        None
    }
}

pub type DynPersonStore = Arc<dyn PersonStore>;
pub type DynLocationStore = Arc<dyn LocationStore>;
pub type DynIdLeaser = Arc<dyn IdLeaser>;
pub type DynAccountStore = Arc<dyn AccountStore>;
pub type DynKeyStore = Arc<dyn KeyStore>;
pub type DynLog = Arc<dyn Log>;
/// A consumer, owned by the one task that reads with it.
pub type DynLogConsumer = Box<dyn LogConsumer>;

/// How long a consumer that cannot tell its lag must hear nothing before [`read_to_end`] takes
/// its log as read.
pub const QUIET_END: Duration = Duration::from_secs(15);

/// Whether a consumer whose poll just returned nothing has read its log to the end: its lag
/// says so; or, while it cannot tell (a Kafka consumer learns its lag only once it holds
/// partitions and has read, and an empty topic never tells), nothing has arrived for
/// [`QUIET_END`].
pub fn read_to_end(lag: Option<u64>, silent_for: Duration) -> bool {
    match lag {
        Some(0) => true,
        Some(_) => false,
        None => silent_for > QUIET_END,
    }
}

/// Lets a role wait for a dependency without knowing its kind.
pub fn retry_delay(attempt: u32) -> Duration {
    Duration::from_millis((50u64 << attempt.min(6)).min(3_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_is_read_when_its_lag_says_so_or_after_a_silence() {
        assert!(read_to_end(Some(0), Duration::ZERO));
        assert!(!read_to_end(Some(3), QUIET_END * 2));
        assert!(!read_to_end(None, QUIET_END / 2));
        assert!(read_to_end(None, QUIET_END + Duration::from_millis(1)));
    }
}
