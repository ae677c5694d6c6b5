//! Schema migrations: SQL files in `migrations/postgres/NNNN_name.sql`, built into the binary,
//! applied in order and recorded in `udaconnect_migrations`.
//!
//! Every role process runs them at start, so they run in one transaction under a
//! transaction-level advisory lock: a second process starting at the same moment waits, then
//! finds nothing left to do; a failed migration leaves nothing half applied, and the lock is
//! released with the transaction even if the connection goes back to the pool. Each file is
//! also idempotent on its own (`IF NOT EXISTS`, catalogue checks), so the same files bring a
//! fresh database and an original UdaConnect database (`geoconnections`) to the same schema.

use super::{DbError, Postgres};
use udaconnect_core::Result;

/// One embedded migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub version: i32,
    /// The file name without `.sql`: the version on four digits, then what it does.
    pub name: &'static str,
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../../migrations/postgres/", $name, ".sql")),
        }
    };
}

/// Every migration, in the order they apply.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_postgis"),
    migration!(2, "0002_person"),
    migration!(3, "0003_location"),
    migration!(4, "0004_location_indexes"),
    migration!(5, "0005_id_lease"),
    migration!(6, "0006_location_defaults"),
    migration!(7, "0007_accounts"),
    migration!(8, "0008_mail_sent"),
    migration!(9, "0009_devices"),
    migration!(10, "0010_person_key"),
    migration!(11, "0011_visibility"),
    migration!(12, "0012_account_changes"),
    migration!(13, "0013_contact_choices"),
    migration!(14, "0014_live_map"),
    migration!(15, "0015_data_read"),
    migration!(16, "0016_location_accuracy"),
    migration!(17, "0017_location_telemetry"),
];

/// The advisory lock key that serialises migrations ("udaconne" in ASCII). Advisory locks are
/// per database, so databases on one server migrate independently.
const LOCK_KEY: i64 = 0x7564_6163_6f6e_6e65;

/// Applies the migrations `pg`'s database has not recorded yet; returns their versions.
pub async fn run(pg: &Postgres) -> Result<Vec<i32>> {
    apply(pg).await.map_err(DbError::into_error)
}

async fn apply(pg: &Postgres) -> Result<Vec<i32>, DbError> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS udaconnect_migrations (
             version    INT PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM udaconnect_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        tx.batch_execute(m.sql).await?;
        tx.execute(
            "INSERT INTO udaconnect_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )
        .await?;
        applied.push(m);
    }
    tx.commit().await?;
    for m in &applied {
        tracing::info!(
            version = m.version,
            name = m.name,
            "postgres migration applied"
        );
    }
    Ok(applied.iter().map(|m| m.version).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_listed_once_in_order() {
        for pair in MIGRATIONS.windows(2) {
            assert!(pair[0].version < pair[1].version);
        }
        for m in MIGRATIONS {
            assert!(
                m.name.starts_with(&format!("{:04}_", m.version)),
                "{}",
                m.name
            );
            assert!(!m.sql.trim().is_empty(), "{}", m.name);
        }
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        let listed: Vec<String> = MIGRATIONS
            .iter()
            .map(|m| format!("{}.sql", m.name))
            .collect();
        assert_eq!(files, listed);
    }
}
