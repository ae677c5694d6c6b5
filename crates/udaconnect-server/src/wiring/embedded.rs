//! The embedded stack: every store and the log as files under one data directory.
//!
//! ```text
//! <data-dir>/persons.sqlite3     person-api's store
//! <data-dir>/locations.sqlite3   the location store (written by location-consumer)
//! <data-dir>/accounts.sqlite3    accounts, tokens, sessions and sign-in links (hashes only)
//! <data-dir>/keys.sqlite3        each person's key for their records on the log
//! <data-dir>/log/                the durable log (topics `location`, `location.dlq`)
//! <data-dir>/ids/                id leases for location-api
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use udaconnect_core::ports::{DynIdLeaser, DynLocationStore, DynLog, DynPersonStore};
use udaconnect_log::{EmbeddedLog, EmbeddedLogOptions};

use crate::keys::Keyring;
use crate::wiring::backends::{open_embedded_stores, Stores, LOCATION_STORE_FILE};

pub struct EmbeddedStack {
    pub data_dir: PathBuf,
    pub persons: DynPersonStore,
    pub locations: DynLocationStore,
    pub log: DynLog,
    pub embedded_log: Arc<EmbeddedLog>,
    pub ids: DynIdLeaser,
    pub keys: Arc<Keyring>,
    /// The location store's file did not exist before this open, or its rebuild never
    /// finished: start-up rebuilds it from the log (see [`startup`](crate::wiring::startup)).
    pub location_store_missing: bool,
}

/// Present while the location store is known to be incomplete (a rebuild under way, or
/// refused): the next start rebuilds it instead of serving it as it is.
const INCOMPLETE_MARKER: &str = "locations.sqlite3.incomplete";

impl EmbeddedStack {
    /// Opens everything under `data_dir`, creating what is missing. Fails when another process
    /// has the directory open.
    pub fn open(data_dir: &Path) -> anyhow::Result<EmbeddedStack> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("failed to create data directory {}", data_dir.display()))?;
        let embedded_log = Arc::new(
            EmbeddedLog::open(data_dir.join("log"), EmbeddedLogOptions::default())
                .context("failed to open the log")?,
        );
        let location_store_missing = !data_dir.join(LOCATION_STORE_FILE).exists()
            || data_dir.join(INCOMPLETE_MARKER).exists();
        let Stores {
            persons,
            locations,
            ids,
            keys,
        } = open_embedded_stores(data_dir)?;
        Ok(EmbeddedStack {
            data_dir: data_dir.to_path_buf(),
            persons,
            locations,
            log: embedded_log.clone(),
            embedded_log,
            ids,
            keys,
            location_store_missing,
        })
    }

    /// Marks the location store incomplete (or no longer), durably.
    pub fn mark_location_store_incomplete(&self, incomplete: bool) -> anyhow::Result<()> {
        let marker = self.data_dir.join(INCOMPLETE_MARKER);
        let done = if incomplete {
            std::fs::write(&marker, b"").and_then(|()| std::fs::File::open(&marker)?.sync_all())
        } else {
            match std::fs::remove_file(&marker) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            }
        };
        done.and_then(|()| std::fs::File::open(&self.data_dir)?.sync_all())
            .with_context(|| format!("failed to update {}", marker.display()))
    }
}
