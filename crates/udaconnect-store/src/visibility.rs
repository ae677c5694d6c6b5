//! Whether the people a person met may see their name and company, and whether organizers see
//! the person by name on the live map, in the account store as the rest of [`Accounts`]: a
//! row of `account_visibility` and of `account_live_map` beside the account, gone with it.

use chrono::{DateTime, Utc};
use udaconnect_core::auth::AccountId;
use udaconnect_core::model::PersonId;
use udaconnect_core::time::truncate_to_micros;
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

/// Accounts that said yes to the live map.
const ON_LIVE_MAP: &str = "id IN (SELECT account_id FROM account_live_map WHERE shown)";

/// Accounts that said yes.
const SAID_YES: &str = "id IN (SELECT account_id FROM account_visibility WHERE visible)";

/// Persons asked about in one statement: well within both engines' bound on parameters.
const PERSONS_PER_QUERY: usize = 500;

impl<D: AccountDb> Accounts<D> {
    pub(crate) async fn account_visible(&self, account: AccountId) -> Result<bool> {
        let sql = select_accounts(&format!("WHERE id = $1 AND {SAID_YES}"));
        Ok(!self
            .0
            .accounts(sql, vec![Arg::Int(account)])
            .await?
            .is_empty())
    }

    pub(crate) async fn record_visible(
        &self,
        account: AccountId,
        visible: bool,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let args = vec![
            Arg::Int(account),
            Arg::Flag(visible),
            Arg::Time(truncate_to_micros(now)),
        ];
        Ok(self.0.execute(SET_VISIBLE, args).await? > 0)
    }

    pub(crate) async fn persons_visible(&self, persons: &[PersonId]) -> Result<Vec<PersonId>> {
        let mut visible = Vec::new();
        for chunk in persons.chunks(PERSONS_PER_QUERY) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = select_accounts(&format!(
                "WHERE person_id IN ({}) AND {SAID_YES}",
                marks.join(", ")
            ));
            let args = chunk.iter().map(|&p| Arg::Int(p)).collect();
            let found = self.0.accounts(sql, args).await?;
            visible.extend(found.into_iter().filter_map(|a| a.person));
        }
        Ok(visible)
    }

    pub(crate) async fn account_on_live_map(&self, account: AccountId) -> Result<bool> {
        let sql = select_accounts(&format!("WHERE id = $1 AND {ON_LIVE_MAP}"));
        Ok(!self
            .0
            .accounts(sql, vec![Arg::Int(account)])
            .await?
            .is_empty())
    }

    pub(crate) async fn record_on_live_map(
        &self,
        account: AccountId,
        shown: bool,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let args = vec![
            Arg::Int(account),
            Arg::Flag(shown),
            Arg::Time(truncate_to_micros(now)),
        ];
        Ok(self.0.execute(SET_ON_LIVE_MAP, args).await? > 0)
    }

    pub(crate) async fn persons_shown_on_live_map(&self) -> Result<Vec<PersonId>> {
        let sql = select_accounts(&format!("WHERE person_id IS NOT NULL AND {ON_LIVE_MAP}"));
        let found = self.0.accounts(sql, Vec::new()).await?;
        Ok(found.into_iter().filter_map(|a| a.person).collect())
    }
}
