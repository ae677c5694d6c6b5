//! The benchmark's own PostgreSQL database, created for the run on the server given and
//! dropped after it.

use anyhow::{bail, Context};
use udaconnect_server::wiring::backends::StoreUrl;
use udaconnect_sim::Rng;

/// The server the benchmark creates its database on unless told: the one `scripts/setup`
/// installs on this machine.
pub const LOCAL_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The benchmark's own database on the given server.
pub struct BenchDb {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl BenchDb {
    pub async fn create(admin_url: &str) -> anyhow::Result<BenchDb> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let name = format!(
            "udc_bench_{:x}",
            Rng::new(nanos ^ u64::from(std::process::id())).next_u64() & 0xffff_ffff_ffff
        );
        let url = with_database(admin_url, &name)?;
        let db = BenchDb {
            admin_url: admin_url.to_string(),
            name,
            url,
        };
        let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
            .await
            .with_context(|| {
                format!(
                    "PostgreSQL does not answer at --store {}",
                    redacted(admin_url)
                )
            })?;
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {}", db.name))
            .await
            .context("failed to create the benchmark's database")?;
        Ok(db)
    }

    pub async fn client(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        Ok(client)
    }

    pub async fn drop_database(&self) -> anyhow::Result<()> {
        let (client, conn) =
            tokio_postgres::connect(&self.admin_url, tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await?;
        Ok(())
    }
}

/// The server, as the report names it: versions, and the settings that shape its figures.
pub async fn describe(admin: &tokio_postgres::Client) -> anyhow::Result<String> {
    let setting = |rows: Vec<tokio_postgres::Row>| {
        rows.first()
            .and_then(|r| r.try_get::<_, String>(0).ok())
            .unwrap_or_default()
    };
    let server_version = setting(admin.query("SHOW server_version", &[]).await?);
    let shared_buffers = setting(admin.query("SHOW shared_buffers", &[]).await?);
    let sync_commit = setting(admin.query("SHOW synchronous_commit", &[]).await?);
    let postgis = setting(
        admin
            .query(
                "SELECT extversion FROM pg_extension WHERE extname = 'postgis'",
                &[],
            )
            .await
            .unwrap_or_default(),
    );
    Ok(format!(
        "PostgreSQL {server_version} (PostGIS {postgis}, shared_buffers {shared_buffers}, synchronous_commit {sync_commit})"
    ))
}

/// `url` naming database `name` instead of its own.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let Some(scheme_end) = base.find("://") else {
        bail!("--store: give a URL, postgres://user@host:port/db");
    };
    let authority_end = base[scheme_end + 3..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + 3 + i);
    let mut out = format!("{}/{name}", &base[..authority_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

pub fn redacted(url: &str) -> String {
    url.parse::<StoreUrl>().map_or_else(
        |_| "(a URL that does not parse)".to_string(),
        |u| u.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_replace_the_urls_own() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x").unwrap(),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgresql://h:5432", "x").unwrap(),
            "postgresql://h:5432/x"
        );
        assert!(with_database("host=h dbname=d", "x").is_err());
    }
}
