//! The web UI: the files of `ui-static/` (plain ES modules, no build step), embedded in the
//! binary and served at `/` (`index.html`) and `/ui/<file>`.
//!
//! Every answer carries `Cache-Control: no-cache` and an `ETag` (a hash of the file), so a
//! browser revalidates and gets `304 Not Modified` until the binary changes. Only `GET`/`HEAD`
//! of `/`, `/index.html` and `/ui/...` are routed here: the API, `/metrics`, `/healthy` and the
//! gRPC paths keep their own routes and fallback. For UI development, `STRATA_UI_DIR=ui-static`
//! serves the listed files from disk instead (each request reads, and leaks, the file).
//!
//! `/ui/access.json` tells the UI what the server asks of it ([`UiAccess`]): whether reads need
//! a token (the UI then asks for one) and which header names a tenant.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::App;

/// One embedded file: its name under `ui-static/` and its bytes.
struct Asset {
    name: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($($name:literal),* $(,)?) => {
        &[$(Asset {
            name: $name,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../ui-static/", $name)),
        }),*]
    };
}

/// The files of `ui-static/` (a unit test checks the list against the folder).
const ASSETS: &[Asset] = assets![
    "index.html",
    "style.css",
    "favicon.svg",
    "app.js",
    "api.js",
    "format.js",
    "types.js",
    "querybar.js",
    "graph.js",
    "flame.js",
    "table.js",
];

/// What the UI needs to know to talk to this server, served as `/ui/access.json` (no token
/// needed, like the UI's files).
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct UiAccess {
    /// Whether reads need a bearer token (`auth.read_tokens` is not empty).
    pub read_token_required: bool,
    /// The header that names a tenant, when tenants are on.
    pub tenant_header: Option<String>,
    /// The tenant of requests that name none.
    pub default_tenant: String,
}

/// `GET /ui/access.json`: what the UI must send ([`UiAccess`]).
pub(crate) async fn access(State(app): State<Arc<App>>) -> impl IntoResponse {
    let tenants = app.tenants.config();
    let access = UiAccess {
        read_token_required: !app.auth.read_tokens.is_empty(),
        tenant_header: tenants.enabled.then(|| tenants.header.clone()),
        default_tenant: tenants.default_tenant.clone(),
    };
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(access))
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// FNV-1a of the bytes, as a strong ETag.
fn etag(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    // For UI development: `STRATA_UI_DIR=ui-static` serves the files from disk.
    let from_disk = std::env::var_os("STRATA_UI_DIR").and_then(|dir| {
        let known = ASSETS.iter().find(|a| a.name == name)?;
        let bytes = std::fs::read(std::path::Path::new(&dir).join(known.name)).ok()?;
        Some(Asset {
            name: known.name,
            bytes: Box::leak(bytes.into_boxed_slice()),
        })
    });
    let Some(asset) = from_disk
        .as_ref()
        .or_else(|| ASSETS.iter().find(|a| a.name == name))
    else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CACHE_CONTROL, "no-cache")],
            format!("no UI file {name:?}\n"),
        )
            .into_response();
    };
    let tag = etag(asset.bytes);
    let tag_header = HeaderValue::from_str(&tag).expect("hex is a valid header");
    let cache = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, tag_header),
    ];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    if matches {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(asset.name)),
        )],
        asset.bytes,
    )
        .into_response()
}

pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

pub(crate) async fn file(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve(&file, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_ui_static_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../ui-static");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.name.to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "update ASSETS in server/src/ops/ui.rs");
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("app.js"), "text/javascript; charset=utf-8");
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("style.css"), "text/css; charset=utf-8");
        assert_eq!(content_type("favicon.svg"), "image/svg+xml");
    }
}
