//! The account store's rows, read once for both engines: an engine says what a column holds
//! ([`Columns`]), and the readers here turn a row of a shared statement into what the store
//! answers, in the statement's column order.

use chrono::{DateTime, Utc};
use udaconnect_core::audit::AuditEntry;
use udaconnect_core::auth::{Account, Email, Principal, Role, Scopes, SessionInfo, TokenInfo};
use udaconnect_core::time::from_micros;
use udaconnect_core::tracker::{App, DeviceInfo};

use crate::accounts::{scopes_of, LiveCredential};
use crate::choices::ChoiceRow;

/// A column's value as an engine reads it, the counterpart of [`crate::accounts::Arg`]:
/// each engine maps its own column types onto these (SQLite's times and flags are integers,
/// PostgreSQL's `timestamptz` and `boolean`), and the readers take the Rust type they need.
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
    Flag(bool),
    Time(DateTime<Utc>),
}

/// A row an account statement answered, read by column index, its errors the engine's own,
/// so that a bad column fails as the engine's other reads do.
pub trait Columns {
    type Error;
    fn cell(&self, i: usize) -> Result<Cell, Self::Error>;
    /// Column `i`, which means `what`, holds what the schema forbids.
    fn corrupt(&self, i: usize, what: &str, why: String) -> Self::Error;
}

/// What a row of one of the shared statements reads as, whichever engine answered it.
pub trait FromRow: Sized + Send + 'static {
    fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error>;
}

/// Each row type with the reader of its columns below.
macro_rules! read_by {
    ($($row:ty => $read:ident),+ $(,)?) => {$(
        impl FromRow for $row {
            fn from_row<R: Columns>(r: &R) -> Result<Self, R::Error> {
                $read(r)
            }
        }
    )+};
}

read_by!(
    Account => account,
    TokenInfo => token,
    DeviceInfo => device,
    LiveCredential => live_credential,
    SessionInfo => session_info,
    ChoiceRow => choice,
    AuditEntry => audit_entry,
);

/// A Rust type a reader takes from a cell: `None` when the cell holds another kind.
trait FromCell: Sized {
    fn from_cell(cell: Cell) -> Option<Self>;
}

impl FromCell for i64 {
    fn from_cell(cell: Cell) -> Option<Self> {
        match cell {
            Cell::Int(n) => Some(n),
            _ => None,
        }
    }
}

impl FromCell for String {
    fn from_cell(cell: Cell) -> Option<Self> {
        if let Cell::Text(s) = cell {
            Some(s)
        } else {
            None
        }
    }
}

impl FromCell for bool {
    fn from_cell(cell: Cell) -> Option<Self> {
        match cell {
            Cell::Flag(b) => Some(b),
            Cell::Int(n) => Some(n != 0),
            _ => None,
        }
    }
}

impl FromCell for DateTime<Utc> {
    fn from_cell(cell: Cell) -> Option<Self> {
        match cell {
            Cell::Time(t) => Some(t),
            Cell::Int(micros) => Some(from_micros(micros)),
            _ => None,
        }
    }
}

impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(cell: Cell) -> Option<Self> {
        match cell {
            Cell::Null => Some(None),
            cell => T::from_cell(cell).map(Some),
        }
    }
}

/// Column `i` as `T`.
fn get<T: FromCell, R: Columns>(r: &R, i: usize) -> Result<T, R::Error> {
    T::from_cell(r.cell(i)?).ok_or_else(|| {
        let wanted = std::any::type_name::<T>();
        r.corrupt(i, "column", format!("column {i} is no {wanted}"))
    })
}

fn role<R: Columns>(r: &R, i: usize) -> Result<Role, R::Error> {
    let stored: String = get(r, i)?;
    stored.parse().map_err(|e| r.corrupt(i, "role", e))
}

fn scopes<R: Columns>(r: &R, i: usize) -> Result<Scopes, R::Error> {
    let stored: String = get(r, i)?;
    scopes_of(&stored).map_err(|e| r.corrupt(i, "scopes", e))
}

pub(crate) fn email<R: Columns>(r: &R, i: usize) -> Result<Option<Email>, R::Error> {
    let stored: Option<String> = get(r, i)?;
    stored
        .map(|e| Email::parse(&e).map_err(|e| r.corrupt(i, "email", e.to_string())))
        .transpose()
}

/// A row of `crate::accounts::ACCOUNT_COLUMNS`.
fn account<R: Columns>(r: &R) -> Result<Account, R::Error> {
    Ok(Account {
        id: get(r, 0)?,
        person: get(r, 1)?,
        email: email(r, 2)?,
        email_verified: get(r, 3)?,
        secondary_email: email(r, 4)?,
        role: role(r, 5)?,
        created: get(r, 6)?,
    })
}

/// A row of `crate::accounts::TOKEN_COLUMNS`.
fn token<R: Columns>(r: &R) -> Result<TokenInfo, R::Error> {
    Ok(TokenInfo {
        id: get(r, 0)?,
        account: get(r, 1)?,
        name: get(r, 2)?,
        role: role(r, 3)?,
        scopes: scopes(r, 4)?,
        person: get(r, 5)?,
        created: get(r, 6)?,
        expires: get(r, 7)?,
        revoked: get(r, 8)?,
        last_used: get(r, 9)?,
    })
}

/// A row of `crate::devices::DEVICE_COLUMNS`.
fn device<R: Columns>(r: &R) -> Result<DeviceInfo, R::Error> {
    let app: Option<String> = get(r, 8)?;
    let app = app
        .map(|a| App::parse(&a).ok_or_else(|| r.corrupt(8, "app", format!("unknown app '{a}'"))))
        .transpose()?;
    Ok(DeviceInfo {
        id: get(r, 0)?,
        account: get(r, 1)?,
        person: get(r, 2)?,
        name: get(r, 3)?,
        token: get(r, 4)?,
        created: get(r, 5)?,
        revoked: get(r, 6)?,
        last_seen: get(r, 7)?,
        app,
        battery_pct: get(r, 9)?,
    })
}

/// The row of `crate::accounts::VERIFY_TOKEN` or `crate::sessions::VERIFY_SESSION`: a
/// credential without scopes of its own (a session) has its role's.
fn live_credential<R: Columns>(r: &R) -> Result<LiveCredential, R::Error> {
    let role = role(r, 2)?;
    let own: Option<String> = get(r, 3)?;
    let scopes = match own {
        Some(_) => scopes(r, 3)?,
        None => role.scopes(),
    };
    Ok(LiveCredential {
        principal: Principal {
            account: get(r, 0)?,
            person: get(r, 1)?,
            role,
            scopes,
        },
        last_used: get(r, 4)?,
    })
}

/// A row of `crate::sessions::LIVE_SESSIONS`.
fn session_info<R: Columns>(r: &R) -> Result<SessionInfo, R::Error> {
    Ok(SessionInfo {
        id: get(r, 0)?,
        created: get(r, 1)?,
        expires: get(r, 2)?,
        last_used: get(r, 3)?,
        user_agent: get(r, 4)?,
        current: get(r, 5)?,
    })
}

/// A row of `crate::choices`' reads.
fn choice<R: Columns>(r: &R) -> Result<ChoiceRow, R::Error> {
    Ok((get(r, 0)?, get(r, 1)?, get(r, 2)?, get(r, 3)?))
}

/// A row of `crate::audit::READS`.
fn audit_entry<R: Columns>(r: &R) -> Result<AuditEntry, R::Error> {
    Ok(AuditEntry {
        person: get(r, 0)?,
        reader: get(r, 1)?,
        role: role(r, 2)?,
        action: get(r, 3)?,
        at: get(r, 4)?,
    })
}
