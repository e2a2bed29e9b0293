//! The ops console: the built React app (`console/dist`) embedded in the binary and served
//! under `/console/` — hashed assets cached for good, gzip when the client takes it, the
//! app's page for every other path (client-side routes), a strict Content-Security-Policy on
//! all of it. `/` redirects here. A binary built before the console was built serves a page
//! saying how to build it.

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};

#[derive(rust_embed::Embed)]
#[folder = "../../console/dist"]
#[allow_missing = true]
struct Assets;

/// Only this origin's scripts, styles, images and connections; no framing, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(to_console))
        .route("/console", get(to_console))
        .route(
            "/console/",
            get(|headers: HeaderMap| async move { page(&headers) }),
        )
        .route("/console/{*path}", get(asset))
}

async fn to_console() -> Redirect {
    Redirect::permanent("/console/")
}

/// Whether the console was built into (or, in debug builds, beside) this binary.
pub fn built() -> bool {
    Assets::get("index.html").is_some()
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    if path.split('/').any(|seg| seg == ".." || seg.is_empty()) {
        return not_found();
    }
    if let Some(resp) = file(&path, &headers) {
        return resp;
    }
    // A missing file (an old hashed asset, a typo) is a 404; anything else is a client-side
    // route of the app.
    let last = path.rsplit('/').next().unwrap_or("");
    if path.starts_with("assets/") || last.contains('.') {
        return not_found();
    }
    page(&headers)
}

/// The app's page, or how to build it.
fn page(headers: &HeaderMap) -> Response {
    file("index.html", headers).unwrap_or_else(|| {
        secure(
            (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                NOT_BUILT,
            )
                .into_response(),
            "no-cache",
        )
    })
}

fn file(path: &str, headers: &HeaderMap) -> Option<Response> {
    let plain = Assets::get(path)?;
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let gz = gzip_ok
        .then(|| Assets::get(&format!("{path}.gz")))
        .flatten();
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut resp = match gz {
        Some(gz) => {
            let mut r = gz.data.into_owned().into_response();
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        }
        None => plain.data.into_owned().into_response(),
    };
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    resp.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    Some(secure(resp, cache))
}

fn secure(mut resp: Response, cache: &'static str) -> Response {
    let h = resp.headers_mut();
    page_security_headers(h, CONTENT_SECURITY_POLICY);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    resp
}

/// The headers of every page vorg serves to a browser (console, docs): its CSP, no
/// sniffing, no referrer, no framing.
pub(crate) fn page_security_headers(h: &mut axum::http::HeaderMap, csp: &'static str) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

fn not_found() -> Response {
    secure(
        (StatusCode::NOT_FOUND, "not found").into_response(),
        "no-cache",
    )
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>vorg console</title></head><body><h1>The console is not built</h1>\
<p>This vorg binary was compiled before the console's assets existed. Build them and \
rebuild vorg:</p><pre>cd console &amp;&amp; npm ci &amp;&amp; npm run build\ncargo build -p vorg</pre>\
<p><code>make run</code> does both. The API works without the console: see \
<a href=\"/docs\">/docs</a>.</p></body></html>";
