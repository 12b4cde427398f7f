//! The web dashboard at `/ui`: three files embedded in the binary (the page, its stylesheet and the
//! script that `crates/vantage-api/ui` bundles from TypeScript), served with the strictest headers
//! the page works under. The page holds no data: it signs in with an API key kept in the tab's
//! session storage and calls the same public API as every other client.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;

const PAGE: &str = include_str!("../ui/index.html");
const STYLES: &str = include_str!("../ui/app.css");
const SCRIPT: &str = include_str!("../ui/dist/app.js");

/// Only this server's own script, styles and API; no inline code, no framing, no plugins, no
/// `<base>`, forms only to itself. (`default-src 'none'` is the headers grade's top CSP result.)
pub(crate) const UI_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The routes of the dashboard, with their headers.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(page))
        .route("/ui/", get(|| async { Redirect::permanent("/ui") }))
        .route("/ui/app.js", get(script))
        .route("/ui/app.css", get(styles))
        .layer(axum::middleware::map_response(security_headers))
}

async fn page() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE)
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}

async fn styles() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], STYLES)
}

/// What every dashboard response carries. HSTS is sent whatever the transport: browsers ignore it
/// over plain HTTP (RFC 6797 §8.1) and keep it over HTTPS (`vantage serve --tls-cert`).
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    crate::openapi::insert_page_headers(headers, UI_CSP);
    for (name, value) in [
        (header::STRICT_TRANSPORT_SECURITY, "max-age=63072000"),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Bytes the dashboard adds to the binary.
const UI_BYTES: usize = PAGE.len() + STYLES.len() + SCRIPT.len();

// The dashboard must stay small (issue: < 1 MiB): a build that embeds more fails here.
const _: () = assert!(UI_BYTES < 1024 * 1024, "the dashboard embeds 1 MiB or more");
