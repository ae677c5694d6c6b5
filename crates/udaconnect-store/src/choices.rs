//! What a person decided about the people they met, in the account store beside the
//! accounts: requests to exchange e-mail addresses (`reveal_request`) and hidden contacts
//! (`contact_hidden`), both by person, read together from both sides.

use chrono::{DateTime, Utc};
use udaconnect_core::consent::{Choice, ContactChoices};
use udaconnect_core::model::PersonId;
use udaconnect_core::Result;

use crate::accounts::{AccountDb, Accounts, Arg};

/// A row of the reads below: the deciding person, the other, a flag (the dispute of a hidden
/// contact), and when.
pub(crate) type ChoiceRow = (PersonId, PersonId, bool, DateTime<Utc>);

/// The first request stands: asking again changes nothing, and says so.
const ASK: &str = "INSERT INTO reveal_request (person_id, other_id, asked_at) VALUES ($1, $2, $3)
     ON CONFLICT (person_id, other_id) DO NOTHING";
const WITHDRAW: &str = "DELETE FROM reveal_request WHERE person_id = $1 AND other_id = $2";
const HIDE: &str =
    "INSERT INTO contact_hidden (person_id, other_id, dispute, hidden_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (person_id, other_id) DO UPDATE SET dispute = excluded.dispute";
const UNHIDE: &str = "DELETE FROM contact_hidden WHERE person_id = $1 AND other_id = $2";
/// Both sides of a person's requests, oldest first.
const REVEALS: &str = "SELECT person_id, other_id, false, asked_at FROM reveal_request
     WHERE person_id = $1 OR other_id = $1 ORDER BY asked_at, person_id, other_id";
const HIDDEN: &str = "SELECT person_id, other_id, dispute, hidden_at FROM contact_hidden
     WHERE person_id = $1 OR other_id = $1 ORDER BY hidden_at, person_id, other_id";
const FORGET_REVEALS: &str = "DELETE FROM reveal_request WHERE person_id = $1 OR other_id = $1";
const FORGET_HIDDEN: &str = "DELETE FROM contact_hidden WHERE person_id = $1 OR other_id = $1";

impl<D: AccountDb> Accounts<D> {
    pub(crate) async fn record_reveal(
        &self,
        person: PersonId,
        other: PersonId,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let args = vec![Arg::Int(person), Arg::Int(other), Arg::Time(now)];
        self.changed(ASK, args).await
    }

    pub(crate) async fn remove_reveal(&self, person: PersonId, other: PersonId) -> Result<bool> {
        let args = vec![Arg::Int(person), Arg::Int(other)];
        self.changed(WITHDRAW, args).await
    }

    pub(crate) async fn record_hidden(&self, person: PersonId, hidden: Choice) -> Result<()> {
        let args = vec![
            Arg::Int(person),
            Arg::Int(hidden.other),
            Arg::Flag(hidden.dispute),
            Arg::Time(hidden.at),
        ];
        self.0.execute(HIDE, args).await?;
        Ok(())
    }

    pub(crate) async fn remove_hidden(&self, person: PersonId, other: PersonId) -> Result<bool> {
        let args = vec![Arg::Int(person), Arg::Int(other)];
        self.changed(UNHIDE, args).await
    }

    pub(crate) async fn choices_of(&self, person: PersonId) -> Result<ContactChoices> {
        let mut out = ContactChoices::default();
        for (from, to, _, at) in self
            .0
            .rows::<ChoiceRow>(REVEALS, vec![Arg::Int(person)])
            .await?
        {
            let choice = |other| Choice {
                other,
                at,
                dispute: false,
            };
            // Asking oneself is refused before it is stored; a row of it would be both.
            if from == person {
                out.asked.push(choice(to));
            }
            if to == person {
                out.asking_me.push(choice(from));
            }
        }
        for (from, to, dispute, at) in self
            .0
            .rows::<ChoiceRow>(HIDDEN, vec![Arg::Int(person)])
            .await?
        {
            if from == person {
                out.hidden.push(Choice {
                    other: to,
                    at,
                    dispute,
                });
            }
            if to == person {
                out.hidden_by.push(from);
            }
        }
        Ok(out)
    }

    pub(crate) async fn forget_choices(&self, person: PersonId) -> Result<u64> {
        let reveals = self
            .0
            .execute(FORGET_REVEALS, vec![Arg::Int(person)])
            .await?;
        let hidden = self
            .0
            .execute(FORGET_HIDDEN, vec![Arg::Int(person)])
            .await?;
        // SQLite's write-ahead log keeps the deleted rows' pages until a checkpoint.
        self.0.forget_deleted().await?;
        Ok(reveals + hidden)
    }
}
