//! `udaconnect`: parses the command line, sets up logging, and starts what was asked for.

mod admin;
mod bench_entry;
mod cli;
mod dlq;
mod edge;
mod erase;
mod import;
mod invite;
mod log_admin;
mod replay;
mod retention;
mod role_args;
mod simulate;

use clap::Parser;
use udaconnect::{huge_pages, telemetry};

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    if cli.command.holds_contact_index() {
        huge_pages::ask();
    }
    telemetry::init(&cli.global);
    udaconnect::runtime::run("udaconnect", cli::run(cli))
}
