//! OwnTracks' importable configuration: a `_type: configuration` document (an `.otrc` file the
//! app opens), the `owntracks:///config?inline=` URL that carries it, and that URL as a QR code
//! the app scans, so nobody types a 43-character token on a phone.

use base64::Engine as _;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use serde_json::{json, Value};
use udaconnect_core::{Error, Result};

/// OwnTracks' `mode` for HTTP (0 is MQTT).
const HTTP_MODE: u8 = 3;

/// What the inline value keeps as it is; `+`, `/` and `=` are escaped, as a `+` in a query is
/// read as a space by some URL parsers (Android's among them).
const INLINE_KEPT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// The configuration of OwnTracks in HTTP mode posting to `url` as `username` with `password`
/// (the device token), under `device_id`, its tracker id taken from the device's `name`.
pub fn configuration(
    url: &str,
    username: &str,
    password: &str,
    device_id: &str,
    name: &str,
) -> Value {
    json!({
        "_type": "configuration",
        "mode": HTTP_MODE,
        "url": url,
        "auth": true,
        "username": username,
        "password": password,
        "deviceId": device_id,
        "tid": tracker_id(name),
    })
}

/// The two characters OwnTracks shows for a device on its map: the first two letters or digits
/// of its name, in capitals (`UC` when it has none).
pub fn tracker_id(name: &str) -> String {
    let tid: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(2)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if tid.len() == 2 {
        tid
    } else {
        "UC".to_string()
    }
}

/// The URL that configures the app when opened on the phone: the document in base64.
pub fn config_url(document: &str) -> String {
    let inline = base64::engine::general_purpose::STANDARD.encode(document);
    format!(
        "owntracks:///config?inline={}",
        utf8_percent_encode(&inline, INLINE_KEPT)
    )
}

/// `text` as a QR code, an SVG document of one unit per module (with the quiet zone), black
/// on white, to be scaled by whoever shows it. Low error correction: it is read from a
/// screen, and the configuration makes a long URL.
pub fn qr_svg(text: &str) -> Result<String> {
    let code = QrCode::with_error_correction_level(text, EcLevel::L)
        .map_err(|e| Error::Internal(format!("the QR code of the configuration: {e}")))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .module_dimensions(1, 1)
        .dark_color(svg::Color("#000"))
        .light_color(svg::Color("#fff"))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_ids_are_two_capitals() {
        assert_eq!(tracker_id("Ana's Pixel"), "AN");
        assert_eq!(tracker_id("x"), "UC");
        assert_eq!(tracker_id("ÄÖ 7b"), "7B");
    }

    #[test]
    fn the_inline_value_is_the_document_in_base64_with_no_plus_slash_or_equals() {
        // `?>>` encodes to `Pz4+` in base64: a `+` to escape.
        let url = config_url("?>>");
        assert_eq!(url, "owntracks:///config?inline=Pz4%2B");
        assert!(config_url("{\"a\":\"??\"}").ends_with("%3D%3D"));
    }
}
