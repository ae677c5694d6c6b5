//! The flags of retention by age, the same for `serve`, location-consumer and connection-api.

use std::time::Duration;

use clap::Args;
use udaconnect_server::retention::{parse_duration, parse_retention, RetentionSettings};

#[derive(Args, Debug, Clone)]
pub struct RetentionArgs {
    /// How long pings are kept, e.g. `30d`, `72h`, `2w` (an hour at least), or `keep`: for
    /// ever. Older pings are removed from the store and the contact index, whole log
    /// segments from the embedded log, and the Kafka topics get it as `retention.ms`.
    #[arg(long, env = "UDACONNECT_RETENTION", default_value = "keep", value_parser = keep)]
    pub retention: Keep,
    /// How often old pings are looked for (the first time a minute after start at most).
    #[arg(long, env = "UDACONNECT_RETENTION_EVERY", default_value = "1h", value_parser = parse_duration)]
    pub retention_every: Duration,
}

impl RetentionArgs {
    pub fn settings(&self) -> RetentionSettings {
        RetentionSettings {
            keep: self.retention.0,
            every: self.retention_every,
            ..RetentionSettings::default()
        }
    }
}

/// How long pings are kept (`None`: for ever).
#[derive(Debug, Clone, Copy)]
pub struct Keep(pub Option<Duration>);

fn keep(s: &str) -> Result<Keep, String> {
    parse_retention(s).map(Keep)
}
