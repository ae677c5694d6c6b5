//! The store conformance suite ([`udaconnect_testkit::store_suite`]) on every engine: SQLite
//! in a temporary directory, and PostgreSQL/PostGIS on a fresh database per test
//! (`UDACONNECT_TEST_POSTGRES`, see [`udaconnect_testkit::postgres`]).

use std::sync::Arc;

use async_trait::async_trait;
use tempfile::TempDir;
use udaconnect_core::ports::DynIdLeaser;
use udaconnect_store::{FileIdLeaser, SqliteAccountStore, SqliteLocationStore, SqlitePersonStore};
#[cfg(feature = "postgres")]
use udaconnect_store::{
    Postgres, PostgresAccountStore, PostgresIdLeaser, PostgresLocationStore, PostgresPersonStore,
};
#[cfg(feature = "postgres")]
use udaconnect_testkit::postgres::TestDb;
use udaconnect_testkit::store_suite::{StoreEngine, Stores};

/// The embedded mode's stores: a SQLite file per store, ids from a file beside them, all in
/// a directory removed at the end.
struct Sqlite(TempDir);

#[async_trait]
impl StoreEngine for Sqlite {
    // One process owns an embedded data directory.
    const LEASERS_SHARED_BY_PROCESSES: bool = false;

    async fn open() -> Stores<Self> {
        let dir = tempfile::tempdir().expect("temporary directory");
        Stores {
            persons: Arc::new(SqlitePersonStore::open(dir.path().join("persons.sqlite3")).unwrap()),
            locations: Arc::new(
                SqliteLocationStore::open(dir.path().join("locations.sqlite3")).unwrap(),
            ),
            accounts: Arc::new(
                SqliteAccountStore::open(dir.path().join("accounts.sqlite3")).unwrap(),
            ),
            engine: Sqlite(dir),
        }
    }

    async fn leaser(&self, name: &str) -> DynIdLeaser {
        Arc::new(FileIdLeaser::new(self.0.path().join("ids"), name).unwrap())
    }
}

/// The distributed mode's stores: one migrated PostgreSQL database, dropped at the end.
#[cfg(feature = "postgres")]
struct Pg(TestDb);

#[cfg(feature = "postgres")]
#[async_trait]
impl StoreEngine for Pg {
    // Every location-api process leases from the database.
    const LEASERS_SHARED_BY_PROCESSES: bool = true;

    async fn open() -> Stores<Self> {
        let db = TestDb::new().await;
        let pg = Postgres::connect(&db.url)
            .await
            .expect("connect and migrate");
        Stores {
            persons: Arc::new(PostgresPersonStore::new(&pg)),
            locations: Arc::new(PostgresLocationStore::new(&pg)),
            accounts: Arc::new(PostgresAccountStore::new(&pg)),
            engine: Pg(db),
        }
    }

    /// On a pool of its own, as another process has.
    async fn leaser(&self, name: &str) -> DynIdLeaser {
        let pg = Postgres::connect(&self.0.url).await.expect("connect");
        Arc::new(PostgresIdLeaser::new(&pg, name))
    }
}

udaconnect_testkit::store_suite!(sqlite, Sqlite);
#[cfg(feature = "postgres")]
udaconnect_testkit::store_suite!(postgres, Pg);
