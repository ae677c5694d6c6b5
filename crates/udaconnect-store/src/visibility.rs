//! Whether the people a person met may see their name and company, and whether organizers see
//! the person by name on the live map, in the account store as the rest of [`Accounts`]: a
//! row of `account_visibility` and of `account_live_map` beside the account, gone with it.

use chrono::{DateTime, Utc};
use udaconnect_core::auth::{Account, AccountId};
use udaconnect_core::consent::Shown;
use udaconnect_core::model::PersonId;
use udaconnect_core::Result;

use crate::accounts::{select_accounts, AccountDb, Accounts, Arg};

/// Records a choice for an account that exists (none otherwise, so a deleted account leaves
/// no row). The casts tell PostgreSQL the types a `SELECT` list cannot infer.
const SET_VISIBLE: &str = "INSERT INTO account_visibility (account_id, visible, changed_at)
     SELECT id, CAST($2 AS BOOLEAN), CAST($3 AS TIMESTAMPTZ) FROM account WHERE id = $1
     ON CONFLICT (account_id) DO UPDATE
     SET visible = excluded.visible, changed_at = excluded.changed_at";

/// The same for the live map.
const SET_ON_LIVE_MAP: &str = "INSERT INTO account_live_map (account_id, shown, changed_at)
     SELECT id, CAST($2 AS BOOLEAN), CAST($3 AS TIMESTAMPTZ) FROM account WHERE id = $1
     ON CONFLICT (account_id) DO UPDATE
     SET shown = excluded.shown, changed_at = excluded.changed_at";

/// Persons asked about in one statement: well within both engines' bound on parameters.
const PERSONS_PER_QUERY: usize = 500;

/// The accounts that said yes to `shown`, as a condition on `account.id`.
fn said_yes_to(shown: Shown) -> &'static str {
    match shown {
        Shown::ToContacts => "id IN (SELECT account_id FROM account_visibility WHERE visible)",
        Shown::OnLiveMap => "id IN (SELECT account_id FROM account_live_map WHERE shown)",
    }
}

/// The statement recording a choice of `shown`.
fn record(shown: Shown) -> &'static str {
    match shown {
        Shown::ToContacts => SET_VISIBLE,
        Shown::OnLiveMap => SET_ON_LIVE_MAP,
    }
}

impl<D: AccountDb> Accounts<D> {
    pub(crate) async fn said_yes(&self, account: AccountId, shown: Shown) -> Result<bool> {
        let sql = select_accounts(&format!("WHERE id = $1 AND {}", said_yes_to(shown)));
        let found = self
            .0
            .rows::<Account>(&sql, vec![Arg::Int(account)])
            .await?;
        Ok(!found.is_empty())
    }

    /// Records `account`'s choice: whether there was an account to record it for.
    pub(crate) async fn record_shown(
        &self,
        shown: Shown,
        account: AccountId,
        yes: bool,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let args = vec![Arg::Int(account), Arg::Flag(yes), Arg::Time(now)];
        self.changed(record(shown), args).await
    }

    pub(crate) async fn persons_visible(&self, persons: &[PersonId]) -> Result<Vec<PersonId>> {
        let said_yes = said_yes_to(Shown::ToContacts);
        let mut visible = Vec::new();
        for chunk in persons.chunks(PERSONS_PER_QUERY) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = select_accounts(&format!(
                "WHERE person_id IN ({}) AND {said_yes}",
                marks.join(", ")
            ));
            let args = chunk.iter().map(|&p| Arg::Int(p)).collect();
            let found = self.0.rows::<Account>(&sql, args).await?;
            visible.extend(found.into_iter().filter_map(|a| a.person));
        }
        Ok(visible)
    }

    pub(crate) async fn persons_shown_on_live_map(&self) -> Result<Vec<PersonId>> {
        let said_yes = said_yes_to(Shown::OnLiveMap);
        let sql = select_accounts(&format!("WHERE person_id IS NOT NULL AND {said_yes}"));
        let found = self.0.rows::<Account>(&sql, Vec::new()).await?;
        Ok(found.into_iter().filter_map(|a| a.person).collect())
    }
}
