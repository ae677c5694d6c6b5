//! The pages a sign-in link leads to: plain HTML, a form and no script, so the page policy
//! (no inline script) holds and the page works with script off.

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use udaconnect_core::auth::TokenSecret;

use crate::http::BodyBytes;

use super::{CONFIRM_PATH, VERIFY_PATH};

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>{title} · UdaConnect</title>\n\
         <link rel=\"stylesheet\" href=\"/assets/style.css\">\n</head>\n<body>\n\
         <main class=\"signin\">\n<h1>{title}</h1>\n{body}\n</main>\n</body>\n</html>\n",
        title = escape(title),
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // A page with a link's token is never kept by a cache.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The page a link opens: one button that posts the token. Opening it uses nothing up, so a
/// mail scanner that fetches links leaves them working.
pub fn confirm(token: &TokenSecret) -> Response {
    page(
        StatusCode::OK,
        "Sign in",
        &format!(
            "<p>Press the button to sign in to UdaConnect in this browser.</p>\n\
             <form method=\"post\" action=\"{CONFIRM_PATH}\">\n\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\n\
             <button type=\"submit\">Sign in</button>\n</form>",
            escape(token.expose())
        ),
    )
}

/// A link that is not a link of ours (400), or one used, expired or unknown (410).
pub fn refused(status: StatusCode, why: &str) -> Response {
    page(
        status,
        "This sign-in link does not work",
        &format!(
            "<p>{}</p>\n<p>Ask for a new link on the <a href=\"/\">sign-in page</a>: each \
             link works once, for 15 minutes.</p>",
            escape(why)
        ),
    )
}

/// The page an address's verification link opens: one button that posts the token, so a
/// mail scanner that fetches the link leaves it working.
pub fn verify(token: &TokenSecret) -> Response {
    page(
        StatusCode::OK,
        "Confirm this address",
        &format!(
            "<p>Press the button to use this address with your UdaConnect account.</p>\n\
             <form method=\"post\" action=\"{VERIFY_PATH}\">\n\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\n\
             <button type=\"submit\">Confirm address</button>\n</form>",
            escape(token.expose())
        ),
    )
}

/// The address is the account's now.
pub fn verified() -> Response {
    page(
        StatusCode::OK,
        "Address confirmed",
        "<p>Your UdaConnect account uses this address now.</p>\n\
         <p><a href=\"/\">Back to UdaConnect</a></p>",
    )
}

/// A verification link that does not work: not ours (400), used or expired (410), or an
/// address another account has (409).
pub fn verify_refused(status: StatusCode, why: &str) -> Response {
    page(
        status,
        "This address was not confirmed",
        &format!(
            "<p>{}</p>\n<p>Ask for a new link on your <a href=\"/\">account page</a>: each \
             link works once, for 15 minutes.</p>",
            escape(why)
        ),
    )
}

/// The service cannot check the link now (503).
pub fn unavailable() -> Response {
    let mut r = page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-in is unavailable",
        "<p>UdaConnect cannot sign you in right now. Your link still works: try again in a \
         moment.</p>",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    r
}

/// The token a link's page posts back (its form's `token` field), from this site's page only:
/// another site's form would use the link in this browser for an account of the sender's
/// choice. A refusal is the page `refuse` writes, saying `cross_site` or `not_a_link`.
pub async fn posted_token(
    request: Request,
    refuse: fn(StatusCode, &str) -> Response,
    cross_site: &str,
    not_a_link: &str,
) -> Result<TokenSecret, Response> {
    if request
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return Err(refuse(StatusCode::FORBIDDEN, cross_site));
    }
    let body = match <BodyBytes as FromRequest<()>>::from_request(request, &()).await {
        Ok(BodyBytes(b)) => b,
        Err(refused) => return Err(refused),
    };
    url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .and_then(|(_, v)| TokenSecret::parse(&v))
        .ok_or_else(|| refuse(StatusCode::BAD_REQUEST, not_a_link))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
