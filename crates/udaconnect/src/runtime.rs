//! The async runtime a program's work runs on, and how a failure ends the program.

use std::future::Future;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Once the work is done, how long threads still closing clients may take before the process
/// exits anyway. What matters is durable by then (requests drained, the consumer's position
/// committed); what is left is goodbyes, such as a Kafka consumer's close, which waits on its
/// group's coordinator and can hang on a broker that is slow to answer.
const EXIT_GRACE: Duration = Duration::from_secs(3);

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
    let outcome = runtime.block_on(work);
    let closing = Instant::now();
    runtime.shutdown_timeout(EXIT_GRACE);
    if closing.elapsed() >= EXIT_GRACE {
        tracing::warn!(
            grace = ?EXIT_GRACE,
            "exiting with clients still closing"
        );
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "{program} failed");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
