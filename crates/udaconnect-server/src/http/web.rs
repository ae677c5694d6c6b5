//! web: the page at `/` and its assets under `/assets/`, served from the copies built into the
//! binary, or from a directory on disk (`--web-dir`) while the page is being worked on.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::access::ruled;
use crate::http::problem::Problem;

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

pub struct Web {
    /// Serve files from here instead of the built-in copies.
    pub dir: Option<PathBuf>,
}

pub fn routes(web: Arc<Web>) -> Router {
    ruled![
        "/" => WebPage on Service: get(index),
        "/assets/{*path}" => WebPage on Service: get(asset),
    ]
    .with_state(web)
}

fn content_type(path: &str) -> &'static str {
    match Path::new(path).extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn load(web: &Web, path: &str) -> Option<Vec<u8>> {
    // Only plain relative paths: no `..`, no absolute paths, nothing outside the web root.
    let rel = Path::new(path);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    match &web.dir {
        Some(dir) => std::fs::read(dir.join(rel)).ok(),
        None => WEB_ASSETS
            .iter()
            .find(|(name, _)| *name == path)
            .map(|(_, bytes)| bytes.to_vec()),
    }
}

fn serve(web: &Web, path: &str) -> Response {
    match load(web, path) {
        Some(bytes) => {
            let mut resp = (StatusCode::OK, bytes).into_response();
            let headers = resp.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(path)),
            );
            // The page's files change with the binary: revalidate rather than cache for long.
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            headers.insert(
                "x-content-type-options",
                HeaderValue::from_static("nosniff"),
            );
            resp
        }
        None => Problem::new(
            StatusCode::NOT_FOUND,
            "urn:udaconnect:problem:not-found",
            format!("no asset {path}"),
        )
        .into_response(),
    }
}

pub async fn index(State(web): State<Arc<Web>>) -> Response {
    serve(&web, "index.html")
}

pub async fn asset(State(web): State<Arc<Web>>, UrlPath(path): UrlPath<String>) -> Response {
    serve(&web, &path)
}
