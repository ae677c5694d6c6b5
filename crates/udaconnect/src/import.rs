//! `udaconnect import`: persons and locations CSV into a data directory, through the ingest
//! pipeline, with progress, resumable, every rejected row reported.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use udaconnect::progress;
use udaconnect_server::consume::consumer::LocationConsumer;
use udaconnect_server::ingest::import::{
    import_persons, welcome_imported, LocationImport, Rejected,
};
use udaconnect_server::metrics::Metrics;
use udaconnect_server::persons::{DynPersonDirectory, LocalPersons};
use udaconnect_server::wiring::backends::{open_account_stores, StoreUrl};
use udaconnect_server::wiring::embedded::EmbeddedStack;

use crate::cli::DataDirArg;

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub data: DataDirArg,
    /// Persons CSV: id,first_name,last_name,company_name (ids are kept), and optionally email:
    /// each person with an address gets an attendee account and a welcome mail with a sign-in
    /// link (sent by the mailer when `serve` runs on the directory).
    #[arg(long, env = "UDACONNECT_IMPORT_PERSONS")]
    pub persons: Option<PathBuf>,
    /// Locations CSV: id,person_id,latitude,longitude,creation_time, or the original
    /// database's x,y instead of latitude,longitude (axis order repaired per row).
    #[arg(long, env = "UDACONNECT_IMPORT_LOCATIONS")]
    pub locations: Option<PathBuf>,
    /// Also write rejected rows (line,reason) to this CSV file.
    #[arg(long, env = "UDACONNECT_IMPORT_REJECTS")]
    pub rejects: Option<PathBuf>,
    /// Rows per durable log append.
    #[arg(long, env = "UDACONNECT_IMPORT_BATCH", default_value_t = 10_000)]
    pub batch: usize,
    /// Rows timed further ahead of this machine's clock are rejected, as ingest refuses
    /// them (e.g. `1d`, `2h`).
    #[arg(long, env = "UDACONNECT_MAX_FUTURE_SKEW", default_value = "1d", value_parser = crate::edge::duration)]
    pub max_future_skew: std::time::Duration,
    /// Where welcome mails' sign-in links point: the address people open UdaConnect at.
    #[arg(long, env = "UDACONNECT_PUBLIC_URL", default_value = "http://127.0.0.1:30000", value_parser = udaconnect_server::signin::parse_public_url)]
    pub public_url: String,
}

fn report_rejects(
    what: &str,
    rejected: &[Rejected],
    file: &mut Option<csv::Writer<std::fs::File>>,
) -> anyhow::Result<()> {
    for r in rejected.iter().take(20) {
        eprintln!("{what} line {}: {}", r.line, r.reason);
    }
    if rejected.len() > 20 {
        eprintln!("... and {} more rejected {what} rows", rejected.len() - 20);
    }
    if let Some(w) = file {
        for r in rejected {
            w.write_record([what, &r.line.to_string(), &r.reason])?;
        }
        w.flush()?;
    }
    Ok(())
}

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    if args.persons.is_none() && args.locations.is_none() {
        bail!("give --persons FILE, --locations FILE, or both");
    }
    let stack = EmbeddedStack::open(&args.data.data_dir).context(
        "failed to open the data directory (is `udaconnect serve` running on it? stop it first)",
    )?;
    // Imported rows get ids too: the same checks as `serve` first.
    udaconnect_server::wiring::startup::check(&stack).await?;
    let mut rejects = match &args.rejects {
        Some(path) => {
            let mut w = csv::Writer::from_path(path)
                .with_context(|| format!("failed to create {}", path.display()))?;
            w.write_record(["file", "line", "reason"])?;
            Some(w)
        }
        None => None,
    };
    if let Some(path) = &args.persons {
        let report = import_persons(path, &stack.persons)
            .await
            .context("failed to import persons")?;
        eprintln!(
            "persons: {} rows, {} imported, {} rejected",
            report.rows,
            report.accepted,
            report.rejected.len()
        );
        report_rejects("persons", &report.rejected, &mut rejects)?;
        if !report.emails.is_empty() {
            let accounts = open_account_stores(&StoreUrl::Embedded(stack.data_dir.clone()))
                .await?
                .accounts;
            let mail_log = udaconnect_server::mail::MailLog {
                log: stack.log.clone(),
                keys: stack.keys.clone(),
            };
            let (welcomed, refused) =
                welcome_imported(&report.emails, &accounts, &mail_log, &args.public_url)
                    .await
                    .context("failed to create the imported persons' accounts")?;
            eprintln!(
                "accounts: {welcomed} created with a welcome mail queued, {} refused",
                refused.len()
            );
            report_rejects("persons", &refused, &mut rejects)?;
        }
    }
    if let Some(path) = &args.locations {
        let persons: DynPersonDirectory = Arc::new(LocalPersons::new(stack.persons.clone()));
        let size = std::fs::metadata(path)
            .with_context(|| format!("failed to read {}", path.display()))?
            .len();
        let bar = progress::bar(size, "import");
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "import {bar:40} {binary_bytes}/{binary_total_bytes}  {msg}  eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let started = std::time::Instant::now();
        let importer = LocationImport {
            log: &stack.log,
            ids: &stack.ids,
            persons: &persons,
            keys: &stack.keys,
            state_dir: stack.data_dir.join("import-state"),
            batch: args.batch.max(1),
            future_skew: chrono::TimeDelta::from_std(args.max_future_skew)
                .unwrap_or(chrono::TimeDelta::MAX),
        };
        let report = importer
            .run(path, |bytes, accepted| {
                bar.set_position(bytes);
                let rate = accepted as f64 / started.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!("{accepted} rows, {rate:.0}/s"));
            })
            .await
            .context("failed to import locations")?;
        bar.finish_and_clear();
        if report.resumed_after_line > 0 {
            eprintln!(
                "resumed after line {} of an earlier run",
                report.resumed_after_line
            );
        }
        eprintln!(
            "locations: {} rows, {} imported, {} rejected, {} with swapped axes repaired",
            report.rows,
            report.accepted,
            report.rejected.len(),
            report.repaired_axes
        );
        report_rejects("locations", &report.rejected, &mut rejects)?;
        // Store what is now in the log, as the running consumer would.
        let consumer = LocationConsumer::new(
            stack.log.clone(),
            stack.locations.clone(),
            persons,
            stack.keys.clone(),
            Arc::new(Metrics::new()),
        );
        let stored = consumer
            .catch_up()
            .await
            .context("failed to store the imported locations")?;
        eprintln!("stored {stored} records from the log");
    }
    Ok(())
}
