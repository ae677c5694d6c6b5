//! What the fuzz targets share: inputs cut as the transports cut them, and the checks every
//! error answer is held to.
//!
//! # Layout
//! - `fuzz_targets/`: one libFuzzer target per parser (`log_frame`, `log_record`, `ping_json`,
//!   `ping_batch`, `query_params`); `scripts/fuzz` builds and runs them.
//! - `corpus/<target>/`: seed inputs (real pings, the original producers' shapes, frames the
//!   encoder wrote); `dict/`: tokens that help the mutator through JSON and query strings.
//! - This file: the NDJSON split and query string reading of the HTTP handlers, and the
//!   bound on error messages.

use std::collections::HashMap;

use udaconnect_core::Error;

/// Most characters a message adds beyond the input it describes: the longest rule text plus a
/// number written out in full (`f64` `Display` of 5e-324 takes 326 characters).
pub const MESSAGE_SLACK: usize = 400;

/// The items of an NDJSON body as the batch handler reads them: one per line, blank lines
/// skipped, each parsed on its own.
pub fn ndjson_items(body: &[u8]) -> Vec<Result<serde_json::Value, String>> {
    body.split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .map(|line| serde_json::from_slice(line).map_err(|e| e.to_string()))
        .collect()
}

/// A query string read into the map the HTTP handlers pass to the validators:
/// `&`-separated `key=value` pairs, `%XX` and `+` decoded, the last of a repeated key kept.
pub fn query_map(raw: &[u8]) -> HashMap<String, String> {
    raw.split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(raw: &[u8]) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match (
            raw[i],
            raw.get(i + 1).copied().and_then(hex),
            raw.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every violation of `e` is named and described, and no message is longer than the input it
/// came from (`input_len` bytes) plus [`MESSAGE_SLACK`]: a message may quote a bad value, never
/// grow with anything else.
pub fn check_messages(e: &Error, input_len: usize) {
    assert!(!e.violations().is_empty(), "no violation in {e:?}");
    for v in e.violations() {
        assert!(!v.message.is_empty(), "empty message in {e:?}");
        assert!(
            v.message.len() <= input_len + MESSAGE_SLACK,
            "a {}-byte message for {input_len} bytes of input",
            v.message.len()
        );
        assert_eq!(
            v.message.trim_end_matches(['.', '!']),
            v.message,
            "trailing punctuation"
        );
    }
}
