//! `udaconnect bench` and `udaconnect bench-distributed`: thin entries that run the benchmarks'
//! own program, `udaconnect-bench`, with the same arguments, so the product binary carries
//! neither the benchmarks nor their load client.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use anyhow::Context;
use clap::Args;
use udaconnect::telemetry::GlobalArgs;

const PROGRAM: &str = "udaconnect-bench";

/// Everything after the subcommand, `--help` included, passed on as it is.
#[derive(Args, Debug)]
#[command(disable_help_flag = true)]
pub struct Forward {
    /// The benchmark's flags (`udaconnect-bench <command> --help` lists them).
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "ARGS"
    )]
    pub args: Vec<OsString>,
}

/// Runs `udaconnect-bench` with the global flags, `command` and its arguments in place of this
/// process, so its output and exit code are this command's; returns only if it could not.
pub fn run(command: &str, global: &GlobalArgs, forward: Forward) -> anyhow::Result<()> {
    let program = udaconnect::programs::sibling(PROGRAM).with_context(|| {
        format!(
            "{PROGRAM} is not built next to this program nor on PATH: build it with \
             `cargo build --release -p {PROGRAM}`"
        )
    })?;
    let mut benchmark = Command::new(&program);
    benchmark
        .args(global.to_args())
        .arg(command)
        .args(forward.args);
    replace_with(benchmark, &program)
}

#[cfg(unix)]
fn replace_with(mut benchmark: Command, program: &Path) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    // `exec` returns only on failure.
    let error = benchmark.exec();
    Err(error).with_context(|| format!("failed to run {}", program.display()))
}

#[cfg(not(unix))]
fn replace_with(mut benchmark: Command, program: &Path) -> anyhow::Result<()> {
    let status = benchmark
        .status()
        .with_context(|| format!("failed to run {}", program.display()))?;
    std::process::exit(status.code().unwrap_or(1))
}
