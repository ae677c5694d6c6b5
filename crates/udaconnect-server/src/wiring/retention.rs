//! How long `serve`'s embedded log keeps the `location` topic's records (`--log-retention`).
//!
//! `keep` (the default) keeps every record, so the log alone can rebuild the location store.
//! `stored` deletes each closed segment once location-consumer has stored every record in it
//! (its committed position is past the segment): the log then holds only the newest records,
//! and the store is the only copy of the older ones (back it up; `replay` refuses to clear it,
//! `replay --partial` stores what the log holds over it). `location.dlq` is always kept.
//!
//! Retention by age (`--retention`, [`crate::retention`]) deletes segments too, those whose
//! records are all older than its cut, and never past the same committed position: with
//! `keep` the log then holds what `--retention` allows, with `stored` the least of the two.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use udaconnect_core::record::LOCATION_TOPIC;
use udaconnect_log::EmbeddedLog;

use crate::consume::consumer::CONSUMER_GROUP;
use crate::wiring::shutdown::every;

/// How often stored segments are looked for.
const EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogRetention {
    #[default]
    Keep,
    Stored,
}

impl FromStr for LogRetention {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "keep" => Ok(LogRetention::Keep),
            "stored" => Ok(LogRetention::Stored),
            other => Err(format!("'{other}' is not a log retention: keep or stored")),
        }
    }
}

/// Deletes the stored segments of `location` every few seconds until `stop` turns true.
pub async fn run(log: Arc<EmbeddedLog>, stop: watch::Receiver<bool>) {
    let pass = move || -> udaconnect_core::Result<(u64, u64)> {
        let Some(stored) = log.committed(LOCATION_TOPIC, CONSUMER_GROUP)? else {
            return Ok((0, 0));
        };
        let freed = log.delete_segments_below(LOCATION_TOPIC, stored)?;
        Ok((freed, log.earliest_offset(LOCATION_TOPIC)?))
    };
    every(EVERY, stop, pass, |outcome| match outcome {
        Ok(Ok((0, _))) => {}
        Ok(Ok((freed, earliest))) => {
            tracing::info!(freed_bytes = freed, earliest, "stored log segments deleted")
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "deleting stored log segments failed"),
        Err(e) => tracing::warn!(error = %e, "deleting stored log segments failed"),
    })
    .await;
}
