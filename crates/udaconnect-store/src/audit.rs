//! The audit log in the account store: each read of a person's data by another account
//! (`data_read`), kept until the person is erased, read back newest first for their export.

use udaconnect_core::audit::AuditEntry;
use udaconnect_core::model::PersonId;
use udaconnect_core::Result;

use crate::accounts::{AccountDb, Accounts, Arg};

const RECORD: &str = "INSERT INTO data_read (person_id, reader_id, reader_role, action, read_at)
     VALUES ($1, $2, $3, $4, $5)";
/// The person, the reader's account and role, the action, when (read by
/// `crate::rows::audit_entry`); newest first, the id breaking ties between reads in one
/// microsecond.
pub(crate) const READS: &str =
    "SELECT person_id, reader_id, reader_role, action, read_at FROM data_read
     WHERE person_id = $1 ORDER BY read_at DESC, id DESC LIMIT $2";
const FORGET: &str = "DELETE FROM data_read WHERE person_id = $1";

impl<D: AccountDb> Accounts<D> {
    /// Writes `reads` in one transaction: a caller grouping the reads waiting at once pays one
    /// commit (one sync to disk) for all of them, and each is written or none is.
    pub(crate) async fn record_audit(&self, reads: &[AuditEntry]) -> Result<()> {
        if reads.is_empty() {
            return Ok(());
        }
        let rows = reads
            .iter()
            .map(|read| {
                vec![
                    Arg::Int(read.person),
                    Arg::Int(read.reader),
                    Arg::Text(read.role.to_string()),
                    Arg::Text(read.action.clone()),
                    Arg::Time(read.at),
                ]
            })
            .collect();
        self.0.execute_all(RECORD, rows).await?;
        Ok(())
    }

    pub(crate) async fn audit_of(&self, person: PersonId, limit: usize) -> Result<Vec<AuditEntry>> {
        let limit = crate::sql_limit(limit);
        self.0
            .rows(READS, vec![Arg::Int(person), Arg::Int(limit)])
            .await
    }

    pub(crate) async fn forget_audit(&self, person: PersonId) -> Result<u64> {
        let gone = self.0.execute(FORGET, vec![Arg::Int(person)]).await?;
        // SQLite's write-ahead log keeps the deleted rows' pages until a checkpoint.
        self.0.forget_deleted().await?;
        Ok(gone)
    }
}
