//! The pages a sign-in link leads to: plain HTML, a form and no script, so the page policy
//! (no inline script) holds and the page works with script off.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Query, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use udaconnect_core::auth::TokenSecret;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Content, RefOr, ResponseBuilder};

use crate::http::BodyBytes;

use super::http::ConfirmQuery;
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

/// One kind of link (sign-in, an address's verification) and what its pages say.
pub struct Link {
    /// Where the page's button posts the token.
    action: &'static str,
    title: &'static str,
    prompt: &'static str,
    button: &'static str,
    /// The title of a page refusing the link, and where to ask for a new one.
    refused: &'static str,
    ask_again: &'static str,
    /// What the refusal says to a POST from another site's page, and to what is not a link.
    cross_site: &'static str,
    not_a_link: &'static str,
}

pub const SIGN_IN: Link = Link {
    action: CONFIRM_PATH,
    title: "Sign in",
    prompt: "Press the button to sign in to UdaConnect in this browser.",
    button: "Sign in",
    refused: "This sign-in link does not work",
    ask_again: "on the <a href=\"/\">sign-in page</a>",
    cross_site: "This sign-in was sent from another site. Open the link from your mail instead.",
    not_a_link: "This address is not a sign-in link: copy the whole link from the mail.",
};

pub const VERIFY: Link = Link {
    action: VERIFY_PATH,
    title: "Confirm this address",
    prompt: "Press the button to use this address with your UdaConnect account.",
    button: "Confirm address",
    refused: "This address was not confirmed",
    ask_again: "on your <a href=\"/\">account page</a>",
    cross_site:
        "This confirmation was sent from another site. Open the link from your mail instead.",
    not_a_link: "This address is not a verification link: copy the whole link from the mail.",
};

impl Link {
    /// The page a link opens: one button that posts the token. Opening it uses nothing up, so
    /// a mail scanner that fetches links leaves them working. Without a link's token, 400.
    pub fn opened(&self, query: Result<Query<ConfirmQuery>, QueryRejection>) -> Response {
        let Some(token) = query.ok().and_then(|Query(q)| TokenSecret::parse(&q.token)) else {
            return self.refuse(StatusCode::BAD_REQUEST, self.not_a_link);
        };
        let form = format!(
            "<p>{}</p>\n<form method=\"post\" action=\"{}\">\n\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\n\
             <button type=\"submit\">{}</button>\n</form>",
            self.prompt,
            self.action,
            escape(token.expose()),
            self.button
        );
        page(StatusCode::OK, self.title, &form)
    }

    /// A link that does not work: not ours (400), used, expired or unknown (410), or (an
    /// address's) one another account has (409).
    pub fn refuse(&self, status: StatusCode, why: &str) -> Response {
        let body = format!(
            "<p>{}</p>\n<p>Ask for a new link {}: each link works once, for 15 minutes.</p>",
            escape(why),
            self.ask_again
        );
        page(status, self.refused, &body)
    }

    /// The token a link's page posts back (its form's `token` field), from this site's page
    /// only: another site's form would use the link in this browser for an account of the
    /// sender's choice. A refusal is this link's page saying so.
    pub async fn posted(&self, request: Request) -> Result<TokenSecret, Response> {
        if request
            .headers()
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site")
        {
            return Err(self.refuse(StatusCode::FORBIDDEN, self.cross_site));
        }
        let BodyBytes(body) = <BodyBytes as FromRequest<()>>::from_request(request, &()).await?;
        url::form_urlencoded::parse(&body)
            .find(|(k, _)| k == "token")
            .and_then(|(_, v)| TokenSecret::parse(&v))
            .ok_or_else(|| self.refuse(StatusCode::BAD_REQUEST, self.not_a_link))
    }
}

/// `GET` of a link's path: the page it opens, with its description. `link_page!(docs name,
/// path, tag, LINK, "what the token is", "what the page is")`.
macro_rules! link_page {
    ($(#[$doc:meta])* $name:ident, $path:literal, $tag:literal, $link:ident, $token:literal, $page:literal) => {
        $(#[$doc])*
        #[utoipa::path(get, path = $path, tag = $tag,
            params(
                ("token" = String, Query, description = $token,
                    pattern = r"^uc_[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$", example = "uc_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
            ),
            responses(
                (status = 200, description = $page, body = String, content_type = "text/html"),
                (status = 400, description = "No token, or not a token of a link", body = String, content_type = "text/html"),
            ))]
        pub async fn $name(
            query: std::result::Result<
                axum::extract::Query<super::http::ConfirmQuery>,
                axum::extract::rejection::QueryRejection,
            >,
        ) -> axum::response::Response {
            super::page::$link.opened(query)
        }
    };
}
pub(super) use link_page;

/// What a link's `POST` may answer besides its success: pages, as its success is.
pub struct LinkRefusals;

impl utoipa::IntoResponses for LinkRefusals {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        [
            ("400", "No token, or not a token of a link"),
            ("403", "Sent from another site's page"),
            (
                "410",
                "The link was used before, has expired, or is unknown",
            ),
            (
                "503",
                "The account store does not answer; the link still works",
            ),
        ]
        .into_iter()
        .map(|(status, description)| {
            let page = ObjectBuilder::new().schema_type(Type::String);
            let response = ResponseBuilder::new()
                .description(description)
                .content("text/html", Content::new(Some(page)));
            (status.to_string(), response.build().into())
        })
        .collect()
    }
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
