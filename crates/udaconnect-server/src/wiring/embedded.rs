//! The embedded stack: every store and the log as files under one data directory.
//!
//! ```text
//! <data-dir>/persons.sqlite3     person-api's store
//! <data-dir>/locations.sqlite3   the location store (written by location-consumer)
//! <data-dir>/log/                the durable log (topics `location`, `location.dlq`)
//! <data-dir>/ids/                id leases for location-api
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use udaconnect_core::ports::{DynIdLeaser, DynLocationStore, DynLog, DynPersonStore};
use udaconnect_log::{EmbeddedLog, EmbeddedLogOptions};

use crate::wiring::backends::{open_embedded_stores, Stores};

pub struct EmbeddedStack {
    pub data_dir: PathBuf,
    pub persons: DynPersonStore,
    pub locations: DynLocationStore,
    pub log: DynLog,
    pub embedded_log: Arc<EmbeddedLog>,
    pub ids: DynIdLeaser,
}

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
        let Stores {
            persons,
            locations,
            ids,
        } = open_embedded_stores(data_dir)?;
        Ok(EmbeddedStack {
            data_dir: data_dir.to_path_buf(),
            persons,
            locations,
            log: embedded_log.clone(),
            embedded_log,
            ids,
        })
    }
}
