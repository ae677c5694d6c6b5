//! `udaconnect admin`: accounts and tokens from the command line, offline, against a data
//! directory or a store URL, also while the server runs on it. The way in before anyone can
//! sign in: `admin create-token --role admin` prints a token alone on its last line.

use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use clap::{Args, Subcommand, ValueEnum};
use udaconnect_core::auth::{Account, NewAccount, NewToken, Role, Scopes, TokenInfo};
use udaconnect_core::ports::DynAccountStore;
use udaconnect_core::time::format_utc;
use udaconnect_server::wiring::backends::{open_account_stores, AccountStores, StoreUrl};

#[derive(Args, Debug)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Create an API or device token (and its account when needed) and print it, alone, on
    /// the last line: shown this once, stored only as a hash.
    CreateToken(CreateTokenArgs),
    /// List tokens (never their secrets): id, account, role, person, name, times, state.
    ListTokens(ListTokensArgs),
    /// Revoke a token by its id (see list-tokens); it stops working at once.
    RevokeToken(RevokeTokenArgs),
    /// Create an account for an address and mail it a sign-in link (over --smtp, or as an
    /// .eml file in the data directory's mail/).
    Invite(crate::invite::InviteArgs),
    /// Erase a person: destroy the key their pings on the log are sealed with, delete their
    /// account, pings and person. Cannot be undone; erasing again changes nothing.
    Erase(crate::erase::EraseArgs),
}

/// Where the accounts are.
#[derive(Args, Debug)]
pub struct AccountStoreArgs {
    /// Data directory of the embedded stores (the server may be running on it).
    #[arg(long, env = "UDACONNECT_DATA_DIR", default_value = "./udaconnect-data")]
    pub data_dir: PathBuf,
    /// The store instead of the data directory: `postgres://user:password@host:port/db`.
    #[arg(long, env = "UDACONNECT_STORE")]
    pub store: Option<String>,
}

impl AccountStoreArgs {
    pub async fn open(&self) -> anyhow::Result<AccountStores> {
        let url = match &self.store {
            Some(s) => s
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--store: {e}"))?,
            None => StoreUrl::Embedded(self.data_dir.clone()),
        };
        open_account_stores(&url).await
    }
}

#[derive(Args, Debug)]
pub struct CreateTokenArgs {
    #[command(flatten)]
    pub store: AccountStoreArgs,
    /// What the token may do: admin (everything), organizer (directory, venue live, heat,
    /// imports, persons), attendee (one person's own data), device (post pings for one person).
    #[arg(long, value_parser = parse_role)]
    pub role: Role,
    /// The person the token acts for (required for attendee and device); the person's account
    /// is created when it has none.
    #[arg(long)]
    pub person: Option<i64>,
    /// A name to tell the token by in lists ("phone", "import script").
    #[arg(long)]
    pub name: Option<String>,
    /// Narrow the token to these scopes (comma-separated: read, ingest, manage); default
    /// every scope its role has.
    #[arg(long, value_parser = parse_scopes)]
    pub scopes: Option<Scopes>,
    /// The token stops working after this long (`30m`, `12h`, `90d`); default never.
    #[arg(long, value_parser = parse_lifetime)]
    pub expires_in: Option<TimeDelta>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per token, columns aligned.
    Table,
    /// One JSON object per line.
    Json,
}

#[derive(Args, Debug)]
pub struct ListTokensArgs {
    #[command(flatten)]
    pub store: AccountStoreArgs,
    /// Only the tokens of this person's account.
    #[arg(long)]
    pub person: Option<i64>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct RevokeTokenArgs {
    #[command(flatten)]
    pub store: AccountStoreArgs,
    /// The token's id, as list-tokens shows it.
    pub id: i64,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

fn parse_scopes(s: &str) -> Result<Scopes, String> {
    s.parse()
}

/// How long a token lasts: a duration as every flag writes one (`12h`, `90d`), above zero.
fn parse_lifetime(raw: &str) -> Result<TimeDelta, String> {
    let d = crate::edge::duration(raw)?;
    if d.is_zero() {
        return Err(format!("'{raw}': a token must last longer than that"));
    }
    TimeDelta::from_std(d).map_err(|_| format!("'{raw}' is too long"))
}

pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    match args.command {
        AdminCommand::CreateToken(args) => create_token(args).await,
        AdminCommand::ListTokens(args) => list_tokens(args).await,
        AdminCommand::RevokeToken(args) => revoke_token(args).await,
        AdminCommand::Invite(args) => crate::invite::invite(args).await,
        AdminCommand::Erase(args) => crate::erase::erase(args).await,
    }
}

async fn create_token(args: CreateTokenArgs) -> anyhow::Result<()> {
    let role = args.role;
    if role.needs_person() && args.person.is_none() {
        anyhow::bail!("a {role} token acts for one person: name it with --person ID");
    }
    let stores = args.store.open().await?;
    let now = Utc::now();
    let account = match args.person {
        Some(person) => person_account(&stores, person, role, now).await?,
        None => bootstrap_account(&stores.accounts, role, now).await?,
    };
    let token = NewToken {
        account: account.id,
        name: args
            .name
            .unwrap_or_else(|| format!("{role} (command line)")),
        role,
        scopes: args.scopes.unwrap_or(Scopes::ALL).and(role.scopes()),
        person: args.person,
        expires: match args.expires_in {
            Some(d) => Some(
                now.checked_add_signed(d)
                    .context("--expires-in: the expiry is beyond any date")?,
            ),
            None => None,
        },
    };
    account.check_grant(&token)?;
    let issued = stores
        .accounts
        .create_token(token, now)
        .await
        .context("failed to store the token")?;
    let t = &issued.item;
    println!(
        "created {role} token {} \"{}\" for account {}{}, scopes {}, {}",
        t.id,
        t.name,
        account.id,
        account
            .person
            .map(|p| format!(" (person {p})"))
            .unwrap_or_default(),
        t.scopes,
        t.expires
            .map(|e| format!("expires {}", format_utc(e)))
            .unwrap_or_else(|| "no expiry".into()),
    );
    println!("it is shown this once and stored only as a hash; keep it secret:");
    println!("{}", issued.secret.expose());
    Ok(())
}

/// The account of `person`, created (an attendee's, or in `role` for staff) when it has none.
async fn person_account(
    stores: &AccountStores,
    person: i64,
    role: Role,
    now: DateTime<Utc>,
) -> anyhow::Result<Account> {
    let known = match &stores.persons {
        Some(persons) => persons.get(person).await?.is_some(),
        None => false,
    };
    if !known {
        anyhow::bail!("no person {person}: create the person first");
    }
    if let Some(account) = stores.accounts.account_by_person(person).await? {
        if !account.role.may_issue(role) {
            anyhow::bail!(
                "person {person}'s account is {} {}: it cannot hold {} {role} token",
                article(account.role),
                account.role,
                article(role)
            );
        }
        return Ok(account);
    }
    let account_role = match role {
        Role::Attendee | Role::Device => Role::Attendee,
        Role::Admin | Role::Organizer => role,
    };
    create_account(&stores.accounts, Some(person), account_role, now).await
}

/// The staff account with no person and no address for `role`, created on first use: what
/// holds the first tokens before anyone has signed in.
async fn bootstrap_account(
    accounts: &DynAccountStore,
    role: Role,
    now: DateTime<Utc>,
) -> anyhow::Result<Account> {
    if let Some(account) = accounts.bootstrap_account(role).await? {
        return Ok(account);
    }
    create_account(accounts, None, role, now).await
}

async fn create_account(
    accounts: &DynAccountStore,
    person: Option<i64>,
    role: Role,
    now: DateTime<Utc>,
) -> anyhow::Result<Account> {
    let account = accounts
        .create_account(
            NewAccount {
                person,
                email: None,
                email_verified: false,
                secondary_email: None,
                role,
            },
            now,
        )
        .await
        .context("failed to create the account")?;
    println!("created {role} account {}", account.id);
    Ok(account)
}

fn article(role: Role) -> &'static str {
    match role {
        Role::Admin | Role::Organizer | Role::Attendee => "an",
        Role::Device => "a",
    }
}

/// Accounts read per call while listing.
const PAGE: usize = 500;

async fn list_tokens(args: ListTokensArgs) -> anyhow::Result<()> {
    let stores = args.store.open().await?;
    let accounts = match args.person {
        Some(person) => stores
            .accounts
            .account_by_person(person)
            .await?
            .into_iter()
            .collect(),
        None => {
            let mut all = Vec::new();
            loop {
                let page = stores
                    .accounts
                    .accounts(all.last().map(|a: &Account| a.id), PAGE)
                    .await?;
                let done = page.len() < PAGE;
                all.extend(page);
                if done {
                    break all;
                }
            }
        }
    };
    let now = Utc::now();
    let mut rows = Vec::new();
    for account in &accounts {
        rows.extend(stores.accounts.tokens(account.id).await?);
    }
    match args.format {
        Format::Json => {
            for t in &rows {
                println!("{}", token_json(t, now));
            }
        }
        Format::Table => print_table(&rows, now),
    }
    Ok(())
}

fn state(t: &TokenInfo, now: DateTime<Utc>) -> &'static str {
    if t.revoked.is_some() {
        "revoked"
    } else if t.expires.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

fn token_json(t: &TokenInfo, now: DateTime<Utc>) -> serde_json::Value {
    serde_json::json!({
        "id": t.id,
        "account": t.account,
        "role": t.role.as_str(),
        "scopes": t.scopes.to_string(),
        "person": t.person,
        "name": t.name,
        "created": format_utc(t.created),
        "expires": t.expires.map(format_utc),
        "revoked": t.revoked.map(format_utc),
        "last_used": t.last_used.map(format_utc),
        "state": state(t, now),
    })
}

fn print_table(rows: &[TokenInfo], now: DateTime<Utc>) {
    let dash = || "-".to_string();
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|t| {
            [
                t.id.to_string(),
                t.account.to_string(),
                t.role.to_string(),
                t.person.map(|p| p.to_string()).unwrap_or_else(dash),
                state(t, now).to_string(),
                format_utc(t.created),
                t.last_used.map(format_utc).unwrap_or_else(dash),
                t.name.clone(),
            ]
        })
        .collect();
    let header = [
        "ID",
        "ACCOUNT",
        "ROLE",
        "PERSON",
        "STATE",
        "CREATED",
        "LAST USED",
        "NAME",
    ];
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &cells {
        line(row.iter().map(String::as_str).collect());
    }
}

async fn revoke_token(args: RevokeTokenArgs) -> anyhow::Result<()> {
    let stores = args.store.open().await?;
    let id = args.id;
    if stores.accounts.revoke_token(id, Utc::now()).await? {
        println!("revoked token {id}");
        return Ok(());
    }
    match stores.accounts.token(id).await? {
        Some(t) if t.revoked.is_some() => {
            println!("token {id} was revoked already");
            Ok(())
        }
        _ => anyhow::bail!("no token {id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_durations_above_zero() {
        for (text, seconds) in [
            ("45s", 45),
            ("30m", 1800),
            ("12h", 43_200),
            ("90d", 7_776_000),
        ] {
            assert_eq!(
                parse_lifetime(text),
                Ok(TimeDelta::seconds(seconds)),
                "{text}"
            );
        }
        for bad in ["", "h", "-3d", "0d", "3y"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }
}
