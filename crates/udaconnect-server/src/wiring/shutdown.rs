//! The signal that stops a process: SIGINT or SIGTERM; and the periodic work that runs until
//! the process stops.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinError;

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Runs `pass` every `period` until `stop` turns true, each pass on a blocking thread (they
/// read the file system), and hands its outcome to `done`.
pub async fn every<T: Send + 'static>(
    period: Duration,
    mut stop: watch::Receiver<bool>,
    pass: impl Fn() -> T + Clone + Send + 'static,
    mut done: impl FnMut(Result<T, JoinError>),
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        done(tokio::task::spawn_blocking(pass.clone()).await);
    }
}
