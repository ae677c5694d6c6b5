//! A private PostgreSQL server (its own cluster, made with `initdb`, on a port of its own) for a
//! test that stops or crashes PostgreSQL, which the shared server other tests use must not be.
//! The binaries are the machine's (`UDACONNECT_TEST_PG_BIN`, else the newest
//! `/usr/lib/postgresql/*/bin`, else `PATH`), so the PostGIS the shared server has is here too.
//! PostgreSQL refuses to run as root: as root, the cluster belongs to the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::local::{free_port, unique};

/// A running cluster, stopped and removed when dropped.
pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PgCluster {
    /// `initdb` in a fresh directory under the temporary directory, then start.
    pub async fn start() -> PgCluster {
        let dir = std::env::temp_dir().join(unique("udaconnect_pg"));
        std::fs::create_dir_all(&dir).expect("create the cluster's directory");
        let as_postgres = running_as_root();
        if as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&dir));
        }
        let mut cluster = PgCluster {
            dir,
            bin: bin_dir(),
            port: free_port(),
            as_postgres,
        };
        let data = cluster.data();
        let initdb = cluster.command("initdb");
        blocking(move || {
            let mut initdb = initdb;
            run(initdb.arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ]))
        })
        .await;
        // The port was free when picked, but another process may take it first: then another.
        let mut failures = Vec::new();
        for _ in 0..3 {
            match cluster.pg_ctl_start().await {
                Ok(()) => return cluster,
                Err(e) => failures.push(e),
            }
            cluster.port = free_port();
        }
        panic!("PostgreSQL did not start: {failures:#?}");
    }

    /// `postgres://postgres@127.0.0.1:<port>/<database>`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates `name` and returns its URL.
    pub async fn create_database(&self, name: &str) -> String {
        crate::postgres::connect(&self.url("postgres"))
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create a database");
        self.url(name)
    }

    /// Crashes the server (an immediate stop: no checkpoint, every connection dropped, recovery
    /// from the WAL at the next start), keeps it down for `down`, and starts it again.
    pub async fn crash_and_restart(&self, down: Duration) {
        self.pg_ctl_stop("immediate").await;
        tokio::time::sleep(down).await;
        if let Err(e) = self.pg_ctl_start().await {
            panic!("PostgreSQL did not start again: {e}");
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// `bin/<program>`, as the `postgres` user when running as root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// Starts the server and waits until it answers; an error carries its log.
    async fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let mut start = self.command("pg_ctl");
        start
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .args(["-w", "-t", "60", "-o", &options, "start"]);
        let log = self.log();
        blocking(move || {
            if start.output().is_ok_and(|o| o.status.success()) {
                Ok(())
            } else {
                Err(format!(
                    "its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ))
            }
        })
        .await
    }

    async fn pg_ctl_stop(&self, mode: &str) {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D")
            .arg(self.data())
            .args(["-w", "-m", mode, "stop"]);
        blocking(move || run(&mut stop)).await;
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-w", "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Where `initdb` and `pg_ctl` are.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("UDACONNECT_TEST_PG_BIN") {
        return dir.into();
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .unwrap_or_else(|| Path::new("").to_path_buf())
}

/// Runs `command` and panics unless it succeeds, with its output.
fn run(command: &mut Command) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f)
        .await
        .expect("a blocking task")
}
