//! `udaconnect import`: persons and locations from CSV files, through the same pipeline as
//! pings (validation, person check, ids, the log, the consumer).
//!
//! Locations CSV takes the seed data's columns, `id,person_id,latitude,longitude,creation_time`,
//! or the original database's raw `x,y` in place of latitude and longitude; there the axis order
//! is repaired per row (`|y| > 90` means y is the longitude), and a row whose point still cannot
//! be a position is rejected. An empty `id` gets a new id; a given id is kept (importing the same
//! rows twice stores them once). Every rejected row is reported with its line number and reason.
//!
//! Persons CSV may have an `email` column: each person with an address gets an attendee account
//! and a welcome mail with a sign-in link, queued on the log for the mailer.
//!
//! Resumable: after each batch is durable in the log, the last line handled is recorded under
//! the data directory; running the same import again continues after it.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use udaconnect_core::auth::{Email, NewAccount, Role};
use udaconnect_core::clock::{Clock, SystemClock};
use udaconnect_core::mail::MailKind;
use udaconnect_core::model::{Location, NewLocation, PersonId};
use udaconnect_core::ports::{DynAccountStore, DynIdLeaser, DynLog, DynPersonStore};
use udaconnect_core::record::LOCATION_TOPIC;
use udaconnect_core::validate::{self, LocationRows, PersonRows};
use udaconnect_core::{Error, Result};

use crate::ingest::{unknown_persons, IdAllocator};
use crate::keys::Keyring;
use crate::mail::MailLog;
use crate::persons::DynPersonDirectory;
use crate::signin::send_link;

/// A row that was not imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub rows: u64,
    pub accepted: u64,
    pub rejected: Vec<Rejected>,
    /// Rows whose swapped axes were put right.
    pub repaired_axes: u64,
    /// Lines skipped because an earlier run of the same import handled them.
    pub resumed_after_line: u64,
    /// Persons imported with an address (the `email` column), with their line: each gets an
    /// attendee account and a welcome mail ([`welcome_imported`]).
    pub emails: Vec<(u64, PersonId, Email)>,
}

/// A file that cannot be imported: named, with the reason.
fn file_err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::bad_request("file", format!("{}: {reason}", path.display()))
}

fn open(path: &Path) -> Result<BufReader<File>> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| file_err(path, e))
}

/// Imports persons (`id,first_name,last_name,company_name`, optionally `email`), keeping
/// their ids. A row whose address is not one is rejected whole.
pub async fn import_persons(path: &Path, store: &DynPersonStore) -> Result<ImportReport> {
    let mut rows = PersonRows::new(open(path)?).map_err(|e| file_err(path, e))?;
    let mut report = ImportReport::default();
    let mut persons = Vec::new();
    while let Some(row) = rows.next_row().map_err(|e| file_err(path, e))? {
        report.rows += 1;
        let read = row.read.and_then(|p| match rows.email() {
            Some(Err(e)) => Err(e.to_string()),
            Some(Ok(email)) => {
                report.emails.push((row.line, p.id, email));
                Ok(p)
            }
            None => Ok(p),
        });
        match read {
            Ok(p) => persons.push(p),
            Err(reason) => report.rejected.push(Rejected {
                line: row.line,
                reason,
            }),
        }
    }
    report.accepted = persons.len() as u64;
    store.import(persons).await?;
    Ok(report)
}

/// Gives each person imported with an address an attendee account and queues its welcome
/// mail (links to `public_url`); a person whose account exists already is left as it is. An
/// address another account holds is reported on its line.
pub async fn welcome_imported(
    emails: &[(u64, PersonId, Email)],
    accounts: &DynAccountStore,
    log: &MailLog,
    public_url: &str,
) -> Result<(u64, Vec<Rejected>)> {
    let mut welcomed = 0;
    let mut refused = Vec::new();
    for (line, person, email) in emails {
        match accounts.account_by_email(email).await? {
            Some(a) if a.person == Some(*person) => continue,
            Some(_) => {
                refused.push(Rejected {
                    line: *line,
                    reason: "email: another account has this address; the person has no account"
                        .into(),
                });
                continue;
            }
            None => {}
        }
        let new = NewAccount {
            person: Some(*person),
            email: Some(email.clone()),
            email_verified: false,
            secondary_email: None,
            role: Role::Attendee,
        };
        let account = match accounts.create_account(new, chrono::Utc::now()).await {
            Ok(a) => a,
            Err(Error::Conflict(why)) => {
                refused.push(Rejected {
                    line: *line,
                    reason: format!("email: {why}; the person has no account"),
                });
                continue;
            }
            Err(e) => return Err(e),
        };
        send_link(log, &account, MailKind::Welcome, public_url).await?;
        welcomed += 1;
    }
    Ok((welcomed, refused))
}

/// Where the locations import keeps its place.
pub struct LocationImport<'a> {
    pub log: &'a DynLog,
    pub ids: &'a DynIdLeaser,
    pub persons: &'a DynPersonDirectory,
    /// Seals each record with its person's key, as ingest does.
    pub keys: &'a Keyring,
    /// Directory of the resume checkpoints.
    pub state_dir: PathBuf,
    pub batch: usize,
    /// Rows timed more than this ahead of the clock are rejected, as ingest refuses them.
    pub future_skew: chrono::TimeDelta,
}

impl LocationImport<'_> {
    fn checkpoint_path(&self, path: &Path) -> PathBuf {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        self.state_dir.join(format!("{name}.{size}.line"))
    }

    fn save_checkpoint(&self, path: &Path, line: u64) -> Result<()> {
        let io = |e: std::io::Error| Error::Internal(format!("import checkpoint: {e}"));
        std::fs::create_dir_all(&self.state_dir).map_err(io)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, line.to_string()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Imports a locations CSV. `progress(bytes_read, accepted)` after each batch.
    pub async fn run(
        &self,
        path: &Path,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<ImportReport> {
        let mut rows = LocationRows::new(open(path)?).map_err(|e| file_err(path, e))?;
        let checkpoint = self.checkpoint_path(path);
        let done_through: u64 = std::fs::read_to_string(&checkpoint)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let mut report = ImportReport {
            resumed_after_line: done_through,
            ..Default::default()
        };
        let allocator = IdAllocator::new(self.ids.clone());
        let mut pending: Vec<(u64, Option<i64>, NewLocation)> = Vec::with_capacity(self.batch);
        let mut last_line = done_through;
        loop {
            let row = rows.next_row().map_err(|e| file_err(path, e))?;
            let more = row.is_some();
            if let Some(row) = row {
                if row.line <= done_through {
                    continue;
                }
                last_line = row.line;
                report.rows += 1;
                match row.read {
                    Ok(r) => {
                        report.repaired_axes += u64::from(r.axes_repaired);
                        pending.push((row.line, r.id, r.location));
                    }
                    Err(reason) => report.rejected.push(Rejected {
                        line: row.line,
                        reason,
                    }),
                }
            }
            if pending.len() >= self.batch
                || (!more && (!pending.is_empty() || last_line > done_through))
            {
                report.accepted += self
                    .append(&mut pending, &allocator, &mut report.rejected)
                    .await?;
                self.save_checkpoint(&checkpoint, last_line)?;
                progress(rows.byte(), report.accepted);
            }
            if !more {
                break;
            }
        }
        report.rejected.sort_by_key(|r| r.line);
        Ok(report)
    }

    /// Checks persons, assigns ids and appends one batch durably; returns rows appended.
    async fn append(
        &self,
        pending: &mut Vec<(u64, Option<i64>, NewLocation)>,
        allocator: &IdAllocator,
        rejected: &mut Vec<Rejected>,
    ) -> Result<u64> {
        let parsed = std::mem::take(pending);
        let person_ids: Vec<i64> = parsed.iter().map(|(_, _, l)| l.person_id()).collect();
        let (missing, keys) = unknown_persons(self.persons, self.keys, &person_ids).await?;
        let now = SystemClock.now();
        let (known, unknown): (Vec<_>, Vec<_>) = parsed
            .into_iter()
            .partition(|(_, _, l)| !missing.contains(&l.person_id()));
        rejected.extend(unknown.iter().map(|(line, _, l)| Rejected {
            line: *line,
            reason: format!("person_id: no person with id {}", l.person_id()),
        }));
        let (known, ahead): (Vec<_>, Vec<_>) = known
            .into_iter()
            .partition(|(_, _, l)| validate::too_far_ahead(l, now, self.future_skew).is_none());
        rejected.extend(ahead.iter().map(|(line, _, l)| Rejected {
            line: *line,
            reason: format!(
                "creation_time: {}",
                validate::too_far_ahead(l, now, self.future_skew).unwrap_or_default()
            ),
        }));
        if known.is_empty() {
            return Ok(0);
        }
        if let Some(max) = known.iter().filter_map(|(_, id, _)| *id).max() {
            self.ids.reserve_through(max).await?;
        }
        let fresh = known.iter().filter(|(_, id, _)| id.is_none()).count() as u64;
        let mut next = if fresh > 0 {
            allocator.allocate(fresh).await?
        } else {
            0
        };
        let records = known
            .iter()
            .map(|(_, id, l)| {
                let id = id.unwrap_or_else(|| {
                    next += 1;
                    next - 1
                });
                keys.seal(
                    &Location {
                        id,
                        person_id: l.person_id(),
                        latitude: l.latitude(),
                        longitude: l.longitude(),
                        creation_time: l.creation_time().unwrap_or(now),
                        accuracy_m: None,
                        telemetry: Default::default(),
                    },
                    None,
                    now,
                )
            })
            .collect::<Result<_>>()?;
        self.log.append(LOCATION_TOPIC, records).await?;
        Ok(known.len() as u64)
    }
}
