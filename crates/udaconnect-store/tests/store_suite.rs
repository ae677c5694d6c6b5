//! The store conformance suite ([`udaconnect_testkit::store_suite`]) on every engine: SQLite
//! in a temporary directory, and PostgreSQL/PostGIS on a fresh database per test
//! (`UDACONNECT_TEST_POSTGRES`, see [`udaconnect_testkit::postgres`]).

use std::sync::Arc;

use async_trait::async_trait;
use tempfile::TempDir;
use udaconnect_core::ports::{DynIdLeaser, DynKeyStore};
use udaconnect_store::{
    FileIdLeaser, SqliteAccountStore, SqliteKeyStore, SqliteLocationStore, SqlitePersonStore,
};
#[cfg(feature = "postgres")]
use udaconnect_store::{
    Postgres, PostgresAccountStore, PostgresIdLeaser, PostgresKeyStore, PostgresLocationStore,
    PostgresPersonStore,
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

    async fn keys(&self) -> DynKeyStore {
        Arc::new(SqliteKeyStore::open(self.0.path().join("keys.sqlite3")).unwrap())
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

    /// On a pool of its own, as another process has.
    async fn keys(&self) -> DynKeyStore {
        let pg = Postgres::connect(&self.0.url).await.expect("connect");
        Arc::new(PostgresKeyStore::new(&pg))
    }
}

udaconnect_testkit::store_suite!(sqlite, Sqlite);
#[cfg(feature = "postgres")]
udaconnect_testkit::store_suite!(postgres, Pg);

/// Whether any file under `dir` holds `needle`, or any 8 bytes of it in a row (a secret partly
/// overwritten is not erased).
fn files_contain(dir: &std::path::Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().any(|entry| {
        let path = entry.unwrap().path();
        if path.is_dir() {
            return files_contain(&path, needle);
        }
        let bytes = std::fs::read(&path).unwrap();
        needle
            .windows(8)
            .any(|part| bytes.windows(part.len()).any(|w| w == part))
    })
}

/// Destroying a key overwrites it: afterwards no file of the store's directory (database,
/// write-ahead log) holds its bytes, while the other keys are still there to be found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destroyed_key_leaves_no_bytes_in_the_sqlite_files() {
    use udaconnect_core::ports::KeyStore;
    let dir = tempfile::tempdir().unwrap();
    let keys = SqliteKeyStore::open(dir.path().join("keys.sqlite3")).unwrap();
    let mut made = Vec::new();
    for person in 1..=50 {
        made.push(keys.get_or_create(person).await.unwrap().unwrap());
    }
    let erased = made[20].secret().to_vec();
    assert!(
        files_contain(dir.path(), &erased),
        "the search finds a live key"
    );
    assert!(keys.destroy(21).await.unwrap());
    assert!(
        !files_contain(dir.path(), &erased),
        "a destroyed key on disk"
    );
    assert!(files_contain(dir.path(), made[21].secret()));
    drop(keys);
    assert!(
        !files_contain(dir.path(), &erased),
        "a destroyed key on disk"
    );
}
