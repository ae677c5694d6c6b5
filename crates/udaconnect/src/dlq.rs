//! `udaconnect dlq list` and `dlq redrive`: the records the consumer could not store, shown
//! and sent back to `location` once their cause is fixed (see
//! `udaconnect_server::consume::dlq`).

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use udaconnect_core::ports::DynLog;
use udaconnect_core::time::{format_utc, parse_timestamp};
use udaconnect_server::consume::dlq::{self, DeadLetter, Filter};
use udaconnect_server::wiring::backends::{open_log, LogUrl};

#[derive(Args, Debug)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
}

#[derive(Subcommand, Debug)]
pub enum DlqCommand {
    /// Show dead-lettered records, oldest first: their position on location.dlq, where they
    /// came from on location, when, why, and the record.
    List(ListArgs),
    /// Append dead-lettered records to location again, once their cause is fixed (a person
    /// created later, say). Idempotent: each keeps its location id, so re-driving twice stores
    /// once; a record whose cause is not fixed is dead-lettered again.
    Redrive(RedriveArgs),
}

#[derive(Args, Debug)]
pub struct DlqLogArgs {
    /// Data directory whose embedded log (DIR/log) holds location.dlq (run while `serve` is
    /// stopped).
    #[arg(long, env = "UDACONNECT_DATA_DIR", default_value = "./udaconnect-data")]
    pub data_dir: PathBuf,
    /// The log instead of the data directory's: `kafka://host:port[,host:port]`.
    #[arg(long, env = "UDACONNECT_LOG")]
    pub log: Option<String>,
}

impl DlqLogArgs {
    fn open(&self) -> anyhow::Result<DynLog> {
        let url = match &self.log {
            Some(url) => url
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--log: {e}"))?,
            None => LogUrl::Embedded(self.data_dir.clone()),
        };
        open_log(&url).context("failed to open the log (is `udaconnect serve` running on it?)")
    }
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per record, columns aligned.
    Table,
    /// One JSON object per line.
    Json,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[command(flatten)]
    pub log: DlqLogArgs,
    /// Show at most this many records.
    #[arg(long, env = "UDACONNECT_DLQ_LIMIT", default_value_t = 100)]
    pub limit: usize,
    #[arg(long, env = "UDACONNECT_DLQ_FORMAT", value_enum, default_value_t = Format::Table)]
    pub format: Format,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Args, Debug)]
pub struct FilterArgs {
    /// Only records whose reason contains this text (`no person`, `latitude`).
    #[arg(long)]
    pub reason: Option<String>,
    /// Only records dead-lettered at or after this time (RFC 3339, e.g. 2026-01-02T10:00:00Z).
    #[arg(long, value_parser = parse_time)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

impl FilterArgs {
    fn filter(&self) -> Filter {
        Filter {
            reason: self.reason.clone(),
            since: self.since,
        }
    }
}

fn parse_time(raw: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    parse_timestamp(raw)
}

#[derive(Args, Debug)]
pub struct RedriveArgs {
    #[command(flatten)]
    pub log: DlqLogArgs,
    #[command(flatten)]
    pub filter: FilterArgs,
}

pub async fn run(args: DlqArgs) -> anyhow::Result<()> {
    match args.command {
        DlqCommand::List(args) => list(args).await,
        DlqCommand::Redrive(args) => redrive(args).await,
    }
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let log = args.log.open()?;
    let filter = args.filter.filter();
    let letters = dlq::read(&log, args.limit, |d| filter.matches(d))
        .await
        .context("failed to read location.dlq")?;
    match args.format {
        Format::Json => {
            for d in &letters {
                println!("{}", d.to_json());
            }
        }
        Format::Table => print!("{}", table(&letters)),
    }
    eprintln!("{} dead-lettered records shown", letters.len());
    Ok(())
}

/// The table `dlq list` prints: position, source, time, reason, record (its text cut short).
fn table(letters: &[DeadLetter]) -> String {
    const VALUE_WIDTH: usize = 120;
    let mut rows = vec![[
        "DLQ".to_string(),
        "SOURCE".to_string(),
        "TIME".to_string(),
        "REASON".to_string(),
        "RECORD".to_string(),
    ]];
    for d in letters {
        let value = String::from_utf8_lossy(&d.record.value).replace(['\n', '\r', '\t'], " ");
        let value = match value.char_indices().nth(VALUE_WIDTH) {
            Some((cut, _)) => format!("{}...", &value[..cut]),
            None => value,
        };
        rows.push([
            format!("{}:{}", d.position.partition, d.position.offset),
            d.source
                .map_or("-".to_string(), |s| format!("{}:{}", s.partition, s.offset)),
            d.time.map_or("-".to_string(), format_utc),
            d.reason.clone(),
            value,
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        for (c, width) in widths.iter().enumerate() {
            out.push_str(&format!("{:<width$}  ", r[c]));
        }
        out.push_str(&r[4]);
        out.push('\n');
    }
    out
}

async fn redrive(args: RedriveArgs) -> anyhow::Result<()> {
    let log = args.log.open()?;
    let report = dlq::redrive(&log, &args.filter.filter())
        .await
        .context("failed to re-drive location.dlq")?;
    tracing::info!(
        appended = report.appended,
        skipped = report.skipped,
        "dead letters re-driven"
    );
    println!(
        "re-drove {} dead-lettered records to location ({} left out by the filter)",
        report.appended, report.skipped
    );
    Ok(())
}
