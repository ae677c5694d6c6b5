//! `udaconnect replay`: rebuilds the location store from the log, the data directory's or a
//! distributed deployment's (PostgreSQL from Kafka).

use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use udaconnect_core::ports::DynLog;
use udaconnect_server::consume::replay::{self as rebuild, ReplayMode};
use udaconnect_server::persons::{DynPersonDirectory, LocalPersons};
use udaconnect_server::wiring::backends::{open_log, open_stores, Stores};
use udaconnect_server::wiring::embedded::EmbeddedStack;

use crate::cli::DataDirArg;
use crate::role_args::{log_url, store_url};

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub data: DataDirArg,
    /// Rebuild this store instead of the data directory's: `postgres://...` (with --log).
    #[arg(long, env = "UDACONNECT_STORE", requires = "log")]
    pub store: Option<String>,
    /// Read this log instead of the data directory's: `kafka://host:port[,host:port]`.
    #[arg(long, env = "UDACONNECT_LOG", requires = "store")]
    pub log: Option<String>,
    /// Store what the log holds over the store as it is, clearing nothing: for a log whose
    /// older segments were deleted once stored (`serve --log-retention stored`).
    #[arg(long)]
    pub partial: bool,
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    if let (Some(store), Some(log)) = (args.store.clone(), args.log.clone()) {
        // Distributed mode: a new consumer group reads the log from its first record.
        let (_keep, mut never) = tokio::sync::watch::channel(false);
        let stores = open_stores(&store_url(Some(store))?, &mut never)
            .await?
            .context("the store did not open")?;
        let log = open_log(&log_url(Some(log))?)?;
        return replay_onto(&log, &stores, None, args.partial).await;
    }
    let stack = EmbeddedStack::open(&args.data.data_dir).context(
        "failed to open the data directory (is `udaconnect serve` still running on it?)",
    )?;
    let topic = udaconnect_core::record::LOCATION_TOPIC;
    let earliest = stack.embedded_log.earliest_offset(topic)?;
    if earliest > 0 && !args.partial {
        anyhow::bail!(
            "the log starts at offset {earliest}: older records were deleted once stored \
             (--log-retention stored) and only the store holds them, so clearing it to replay \
             would lose them. `udaconnect replay --data-dir {} --partial` stores what the log \
             holds over the store as it is",
            args.data.data_dir.display()
        );
    }
    let total = stack.embedded_log.end_offset(topic)? - earliest;
    let stores = Stores {
        persons: stack.persons.clone(),
        locations: stack.locations.clone(),
        ids: stack.ids.clone(),
        keys: stack.keys.clone(),
    };
    replay_onto(&stack.log, &stores, Some(total), args.partial).await?;
    stack.mark_location_store_incomplete(false)
}

/// Rebuilds `locations` from `log` with progress; `total`, when the log knows its length,
/// gives the bar an end.
async fn replay_onto(
    log: &DynLog,
    stores: &Stores,
    total: Option<u64>,
    partial: bool,
) -> anyhow::Result<()> {
    let Stores {
        persons,
        locations,
        keys,
        ..
    } = stores;
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = if total.is_some() {
        "replay {bar:40} {pos}/{len} records  {per_sec}  eta {eta}"
    } else {
        "replay {pos} records  {per_sec}  {msg}"
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let persons: DynPersonDirectory = Arc::new(LocalPersons::new(persons.clone()));
    let progress = |done, left| {
        bar.set_position(done);
        bar.set_message(format!("{left} to go"));
    };
    let mode = if partial {
        ReplayMode::Partial
    } else {
        ReplayMode::Rebuild
    };
    let report = rebuild::replay(log, locations, &persons, keys, mode, progress)
        .await
        .context("replay failed")?;
    bar.finish_and_clear();
    let stored = locations.count().await?;
    tracing::info!(
        records = report.records,
        stored = report.stored,
        rejected = report.rejected,
        shredded = report.shredded,
        locations_in_store = stored,
        "replay finished"
    );
    eprintln!(
        "replayed {} records: {} locations stored, {} rejected, {} of erased persons skipped",
        report.records, report.stored, report.rejected, report.shredded
    );
    Ok(())
}
