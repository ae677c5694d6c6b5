//! The command line: one subcommand per job. Every flag has an environment fallback
//! (`UDACONNECT_*`); flags win over the environment, the environment over defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use udaconnect_server::directory::{DynPersonDirectory, LocalPersons};
use udaconnect_server::embedded::EmbeddedStack;
use udaconnect_server::{Application, ServeSettings};

#[derive(Parser, Debug)]
#[command(
    name = "udaconnect",
    version,
    about = "UdaConnect: who met whom at a conference, from attendees' location pings",
    long_about = "UdaConnect ingests attendees' location pings and answers, for any attendee, \
        who else was within a few metres, where and when.\n\n\
        `udaconnect serve --demo` runs the whole product in one process on embedded storage \
        with the original demo data."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct GlobalArgs {
    /// Log line format.
    #[arg(long, global = true, env = "UDACONNECT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter, in `tracing` directive syntax (e.g. `info`, `udaconnect_server=debug`).
    #[arg(long, global = true, env = "UDACONNECT_LOG", default_value = "info")]
    pub log_level: String,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run every role in one process on embedded storage, with no external service.
    Serve(ServeArgs),
    /// Rebuild the location store from the log (run while `serve` is stopped).
    Replay(ReplayArgs),
    /// Generate a realistic conference (seeded): write it to files or stream it to a server.
    Simulate(crate::simulate::SimulateArgs),
    /// Import persons and locations CSV into a data directory (run while `serve` is stopped).
    Import(crate::import::ImportArgs),
    /// Measure ingest, queries, memory and start-up on a simulated conference.
    Bench(crate::bench::BenchArgs),
    /// The benchmark's load generator (run by `bench` as a separate process).
    #[command(hide = true)]
    BenchLoad(crate::bench::LoadArgs),
}

#[derive(Args, Debug)]
pub struct DataDirArg {
    /// Directory holding the embedded stores and log; created if missing.
    #[arg(long, env = "UDACONNECT_DATA_DIR", default_value = "./udaconnect-data")]
    pub data_dir: PathBuf,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address the HTTP API, docs and metrics listen on.
    #[arg(long, env = "UDACONNECT_LISTEN", default_value = "127.0.0.1:30000")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub data: DataDirArg,
    /// Load the original UdaConnect demo data (5 persons, 39 locations) on first start.
    #[arg(long, env = "UDACONNECT_DEMO")]
    pub demo: bool,
    /// With --demo: attendees of a live simulated conference next to the demo data, pinging
    /// every 5 s in real time (0: none).
    #[arg(long, env = "UDACONNECT_DEMO_ATTENDEES", default_value_t = 150)]
    pub demo_attendees: u32,
    /// Serve the web page from this directory instead of the copy built into the binary
    /// (for working on the page without rebuilding).
    #[arg(long, env = "UDACONNECT_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Origins (e.g. `https://connect.example.org`) whose pages may call the API from a
    /// browser, comma-separated; pages on this machine (localhost, any port) always may.
    #[arg(long, env = "UDACONNECT_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub data: DataDirArg,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Replay(args) => replay(args).await,
        Command::Simulate(args) => crate::simulate::run(args).await,
        Command::Import(args) => crate::import::run(args).await,
        Command::Bench(args) => crate::bench::run(args).await,
        Command::BenchLoad(args) => crate::bench::load_run(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let app = Application::build(ServeSettings {
        listen: args.listen,
        data_dir: args.data.data_dir,
        demo: args.demo,
        demo_attendees: args.demo_attendees,
        web_dir: args.web_dir,
        cors_origins: args.cors_origins,
    })
    .await?;
    app.run_until_stopped().await
}

async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let stack = EmbeddedStack::open(&args.data.data_dir).context(
        "failed to open the data directory (is `udaconnect serve` still running on it?)",
    )?;
    let total = stack
        .embedded_log
        .end_offset(udaconnect_core::record::LOCATION_TOPIC)?;
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("replay {bar:40} {pos}/{len} records  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let persons: DynPersonDirectory = Arc::new(LocalPersons::new(stack.persons.clone()));
    let report =
        udaconnect_server::replay::replay(&stack.log, &stack.locations, &persons, |done, _| {
            bar.set_position(done)
        })
        .await
        .context("replay failed")?;
    bar.finish_and_clear();
    let stored = stack.locations.count().await?;
    tracing::info!(
        records = report.records,
        stored = report.stored,
        rejected = report.rejected,
        locations_in_store = stored,
        "replay finished"
    );
    eprintln!(
        "replayed {} records: {} locations stored, {} rejected",
        report.records, report.stored, report.rejected
    );
    Ok(())
}
