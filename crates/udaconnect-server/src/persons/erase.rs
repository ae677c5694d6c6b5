//! Erasing a person (`DELETE /api/persons/{id}`, `DELETE /api/me`, `udaconnect admin erase`):
//! their key, account, pings and person row, in both modes.
//!
//! The key goes first: from then on every copy of their sealed records on the log (replays,
//! backups, Kafka's retention) is unreadable, and ingest refuses their pings. Then the account
//! with its sessions, tokens and devices, the reveal requests and hidden contacts on either
//! side of them, the pings in the location store, and the person row
//! (PostgreSQL's location table refers to it). Last, an erasure record on the `location` topic
//! tells every reader of the log (a consumer behind, a connection-api following the topic) to
//! drop what it keeps of the person: the contact index learns of it that way; the same record
//! on `notification` has the mailer delete the person's mail files. Each step is
//! idempotent, so erasing again finishes an erasure that failed half-way.

use std::sync::Arc;

use chrono::Utc;
use udaconnect_core::auth::{AccountId, Role};
use udaconnect_core::mail::NOTIFICATION_TOPIC;
use udaconnect_core::model::PersonId;
use udaconnect_core::ports::{DynAccountStore, DynLocationStore, DynLog, DynPersonStore, KeyState};
use udaconnect_core::record::{self, LOCATION_TOPIC};
use udaconnect_core::{Error, Result};

use crate::keys::Keyring;

/// What erasing a person needs.
pub struct Eraser {
    pub persons: DynPersonStore,
    pub locations: DynLocationStore,
    pub accounts: DynAccountStore,
    pub keys: Arc<Keyring>,
    /// Where every reader of the log is told; `None` for a person-api run without a log,
    /// whose erasures then reach the log's readers only through the destroyed key (a
    /// connection-api following the topic keeps the person's pings it had read).
    pub log: Option<DynLog>,
}

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Erased {
    /// A live key was destroyed (not: the person had none, or it was destroyed before).
    pub key_destroyed: bool,
    /// The person's account, deleted with its sessions, tokens and devices.
    pub account: Option<AccountId>,
    pub locations: u64,
    /// The person row was there and is deleted.
    pub person: bool,
}

impl Eraser {
    /// Whether `person` is there to erase, or was erased: [`Error::NotFound`] when there is
    /// no such person and never was one keyed. An erasure asked by a person's id checks this
    /// first, so a mistyped id leaves no tombstone behind.
    pub async fn check_known(&self, person: PersonId) -> Result<()> {
        if self.persons.get(person).await?.is_none()
            && self.keys.state(person).await? == KeyState::Absent
        {
            return Err(Error::not_found("person", person));
        }
        Ok(())
    }

    /// Erases `person`; erasing an erased person again finds nothing left to do.
    /// [`Error::Conflict`] for the person of the last admin account: the service would lose
    /// its administrator.
    pub async fn erase(&self, person: PersonId) -> Result<Erased> {
        let account = self.accounts.account_by_person(person).await?;
        if let Some(a) = &account {
            if a.role == Role::Admin && self.accounts.count_admins().await? <= 1 {
                return Err(Error::Conflict(format!(
                    "person {person} holds the last admin account; make another admin first"
                )));
            }
        }
        let key_destroyed = self.keys.destroy(person).await?;
        let mut erased = Erased {
            key_destroyed,
            ..Erased::default()
        };
        if let Some(a) = account {
            // Credentials first: should the delete fail, none of them still signs anyone in.
            self.accounts.revoke_all(a.id, Utc::now()).await?;
            self.accounts.delete_account(a.id).await?;
            erased.account = Some(a.id);
        }
        // Their requests to exchange addresses and hidden contacts, made by them or about them.
        self.accounts.forget_contact_choices(person).await?;
        // Who read their data: kept for them to see, gone with them.
        self.accounts.forget_reads(person).await?;
        erased.locations = self.locations.delete_person(person).await?;
        erased.person = self.persons.delete(person).await?;
        if let Some(log) = &self.log {
            let told = record::erasure(person, Utc::now());
            log.append(LOCATION_TOPIC, vec![told.clone()]).await?;
            // The mailer deletes the files of the person's mails; keyed by the person, it
            // comes after every mail of theirs sealed before.
            log.append(NOTIFICATION_TOPIC, vec![told]).await?;
        }
        tracing::info!(
            person_id = person,
            key_destroyed = erased.key_destroyed,
            account = erased.account,
            locations = erased.locations,
            "person erased"
        );
        Ok(erased)
    }
}
