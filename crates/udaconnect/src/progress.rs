//! Progress bars on stderr, for commands that run for minutes (simulate, import, replay, the
//! benchmarks).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar for about `total` items of `what`, with the rate and the time left.
pub fn bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let template =
        format!("{what} {{bar:40}} {{human_pos}}/~{{human_len}}  {{per_sec}}  eta {{eta}}");
    bar.set_style(
        ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
