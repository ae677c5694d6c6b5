//! The async runtime a program's work runs on, and how a failure ends the program.

use std::future::Future;
use std::process::ExitCode;

/// Runs `work` on a multi-threaded runtime. A failure is logged and printed as
/// `error: ...` with its causes, and exits 1.
pub fn run(program: &str, work: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "{program} failed");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
