//! A fresh PostgreSQL/PostGIS database per test, on the server `UDACONNECT_TEST_POSTGRES`
//! names (default `postgres://postgres@127.0.0.1:5432/postgres`: a role that may create
//! databases and the postgis extension; `scripts/postgis` sets one up). Each test's database
//! has a name of its own, so tests run in parallel on one server.

use tokio_postgres::{Client, NoTls};

use crate::local::unique;

/// The URL of the server's administrative database, where test databases are created.
pub fn admin_url() -> String {
    std::env::var("UDACONNECT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` with its database name replaced (URL form only, which is what tests are given).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let prefix = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{prefix}/{name}{query}")
}

/// A client of `url`, its connection driven by a task of the current runtime.
pub async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .expect("the test PostgreSQL server answers (scripts/postgis starts it)");
    tokio::spawn(connection);
    client
}

/// A client of the administrative database.
pub async fn admin() -> Client {
    connect(&admin_url()).await
}

/// A fresh, empty database, dropped (its connections closed) when this goes out of scope, even
/// when the test fails.
pub struct TestDb {
    pub name: String,
    /// The database's URL, for the code under test.
    pub url: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let name = unique("udaconnect_test");
        admin()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        TestDb {
            url: with_database(&admin_url(), &name),
            name,
        }
    }

    /// A client of this database, for looking behind the code under test.
    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop runs inside the test's runtime, which cannot block on itself: a thread with a
        // runtime of its own does the work.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async { admin().await.batch_execute(&sql).await })
        })
        .join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_database_name_changes() {
        for (url, want) in [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/t",
            ),
            (
                "postgres://u:p@db:5432/postgres?sslmode=disable",
                "postgres://u:p@db:5432/t?sslmode=disable",
            ),
            ("postgres://db", "postgres://db/t"),
        ] {
            assert_eq!(with_database(url, "t"), want);
        }
    }

    #[tokio::test]
    async fn a_test_database_exists_until_its_guard_drops() {
        let exists = |name: String| async move {
            admin()
                .await
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
                .await
                .expect("query the catalogue")
                .is_some()
        };
        let db = TestDb::new().await;
        let name = db.name.clone();
        let one: i32 = db
            .client()
            .await
            .query_one("SELECT 1", &[])
            .await
            .expect("the new database answers")
            .get(0);
        assert_eq!(one, 1);
        assert!(exists(name.clone()).await);
        drop(db);
        assert!(!exists(name).await, "dropped with its guard");
    }
}
