//! The user and password a service URL carries (`smtp://user:pass@host`, `mqtt://...`).

use secrecy::SecretString;

/// `url`'s user and password, percent-decoded (a password may hold any character); the
/// password kept secret so it is never printed.
pub fn url_credentials(url: &url::Url) -> Result<(Option<String>, Option<SecretString>), String> {
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8()
            .map(|d| d.into_owned())
            .map_err(|_| "the user or password is not UTF-8".to_string())
    };
    let user = match url.username() {
        "" => None,
        u => Some(decode(u)?),
    };
    let password = url
        .password()
        .map(decode)
        .transpose()?
        .map(SecretString::from);
    Ok((user, password))
}
