//! `udaconnect-bench`: the benchmarks behind docs/benchmarks.md, a program apart from the
//! product so the product binary carries neither them nor their load client. `udaconnect
//! bench` and `udaconnect bench-distributed` run it with their arguments; built with
//! `cargo build --release -p udaconnect-bench`.
//!
//! # Layout
//! - [`embedded`]: `bench`, the embedded mode on a simulated conference: ingest, queries
//!   against a linear scan, memory and start-up of the product binary.
//! - [`distributed`]: `bench-distributed`, the distributed mode on a Kafka-protocol broker and
//!   PostgreSQL/PostGIS: ingest, end-to-end latency, queries.
//! - [`load`]: the load and query clients, run as separate processes (`bench-load`), and
//!   [`http1`], the bare HTTP/1.1 client they speak.
//! - [`mqtt`]: `bench-mqtt`, OwnTracks over MQTT to durable through Mosquitto, and the
//!   single-ping rates of the tracker protocols over HTTP.
//! - [`common`]: what both benchmarks share: the conference, the attendees asked, the queries,
//!   the machine line, percentiles.
//!
//! Every flag of the two benchmarks has an environment fallback (`UDACONNECT_BENCH_*`).

mod common;
mod distributed;
mod embedded;
mod http1;
mod load;
mod mqtt;

use clap::{Parser, Subcommand};
use udaconnect::telemetry::{self, GlobalArgs};

#[derive(Parser, Debug)]
#[command(
    name = "udaconnect-bench",
    version,
    about = "UdaConnect's benchmarks: each figure next to a baseline measured in the same run"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measure ingest, queries, memory and start-up on a simulated conference.
    Bench(embedded::BenchArgs),
    /// Measure the distributed mode (Kafka -> PostGIS consumer, end-to-end ingest latency, PostGIS queries)
    BenchDistributed(distributed::BenchDistributedArgs),
    /// Measure OwnTracks over MQTT to durable (QoS 1 messages through Mosquitto), and the
    /// single-ping rate of each tracker protocol over HTTP
    BenchMqtt(mqtt::BenchMqttArgs),
    /// The benchmark's load generator (run by `bench` as a separate process).
    #[command(hide = true)]
    BenchLoad(load::LoadArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // `bench` times the contact index in this process, as `udaconnect serve` holds it.
    if matches!(cli.command, Command::Bench(_)) {
        udaconnect::huge_pages::ask();
    }
    telemetry::init(&cli.global);
    let work = async {
        match cli.command {
            Command::Bench(args) => embedded::run(args).await,
            Command::BenchDistributed(args) => distributed::run(args).await,
            Command::BenchMqtt(args) => mqtt::run(args).await,
            Command::BenchLoad(args) => load::run(args).await,
        }
    };
    udaconnect::runtime::run("udaconnect-bench", work)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every flag a user gives a benchmark has an environment fallback. `bench-load` is the
    /// exception: the benchmark passes its clients every setting, and a variable set for the
    /// benchmark must not reach them.
    #[test]
    fn every_benchmark_flag_has_an_environment_variable() {
        let mut cli = Cli::command();
        // Built, the subcommands hold the global flags too.
        cli.build();
        let mut checked = 0;
        for command in cli.get_subcommands().filter(|c| !c.is_hide_set()) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_positional() || ["help", "version"].contains(&id) {
                    continue;
                }
                let env = arg.get_env().and_then(|e| e.to_str());
                assert!(
                    env.is_some_and(|e| e.starts_with("UDACONNECT_")),
                    "{} --{id} has no UDACONNECT_* variable",
                    command.get_name()
                );
                checked += 1;
            }
        }
        // bench: 11 flags, bench-distributed: 16, bench-mqtt: 9, and the two global flags in
        // each.
        assert_eq!(checked, 11 + 16 + 9 + 2 * 3, "flags checked");
        let names: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
        assert_eq!(
            names,
            [
                "bench",
                "bench-distributed",
                "bench-mqtt",
                "bench-load",
                "help"
            ]
        );
    }
}
