//! Structured logs: human-readable text by default, one JSON object per line with
//! `--log-format json`. Spans carry the request's correlation id into every line they cover.

use clap::{Args, ValueEnum};
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::EnvFilter;

/// The flags every program of the product takes, before or after its subcommand.
#[derive(Args, Debug)]
pub struct GlobalArgs {
    /// Log line format.
    #[arg(long, global = true, env = "UDACONNECT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter, in `tracing` directive syntax (e.g. `info`, `udaconnect_server=debug`).
    #[arg(
        long,
        global = true,
        env = "UDACONNECT_LOG_LEVEL",
        default_value = "info"
    )]
    pub log_level: String,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl GlobalArgs {
    /// These settings as flags, for another of the product's programs run from this one.
    pub fn to_args(&self) -> Vec<String> {
        let format = match self.log_format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        vec![
            "--log-format".into(),
            format.into(),
            "--log-level".into(),
            self.log_level.clone(),
        ]
    }
}

pub fn init(args: &GlobalArgs) {
    let filter = EnvFilter::try_new(&args.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::NONE);
    match args.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    // A panic is a bug: log it through tracing so it carries the request's span.
    std::panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "panic");
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Program {
        #[command(flatten)]
        global: GlobalArgs,
    }

    #[test]
    fn the_settings_pass_to_another_program_as_they_are() {
        for (format, level) in [
            (LogFormat::Json, "warn,udaconnect_server=debug"),
            (LogFormat::Text, "info"),
        ] {
            let given = GlobalArgs {
                log_format: format,
                log_level: level.into(),
            };
            let passed = Program::parse_from(
                ["program"]
                    .into_iter()
                    .map(String::from)
                    .chain(given.to_args()),
            );
            assert_eq!(passed.global.log_format, format);
            assert_eq!(passed.global.log_level, level);
        }
    }
}
