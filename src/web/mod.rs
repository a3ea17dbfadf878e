//! The HTTP surface: overlay pages and their SSE streams, the JSON API, theme assets and the
//! dashboard, as small warp filters joined here with one rejection handler.

pub mod api;
pub mod auth;
pub mod fanout;
pub mod pages;
pub mod sse;
pub mod viewer;
pub mod webhook;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::json;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

pub use crate::app::App;

/// The peer address of a connection, put on every request by the accept loop.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Largest request body accepted (the emulate API's events are a few hundred bytes).
pub const MAX_BODY: u64 = 64 * 1024;

/// Every route.
pub fn routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    pages::routes(app.clone())
        .or(api::routes(app.clone()))
        .unify()
        .or(auth::routes(app.clone()))
        .unify()
        .or(viewer::routes(app.clone()))
        .unify()
        .or(webhook::route(app))
        .unify()
        .recover(recover)
        .unify()
        .boxed()
}

/// Injects the shared state.
pub fn with_app(app: Arc<App>) -> impl Filter<Extract = (Arc<App>,), Error = Infallible> + Clone {
    warp::any().map(move || app.clone())
}

/// An error answered as `{"error": "..."}` with its status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl warp::reject::Reject for ApiError {}

pub fn reject(status: StatusCode, message: impl Into<String>) -> warp::Rejection {
    warp::reject::custom(ApiError {
        status,
        message: message.into(),
    })
}

/// Lets a state-changing request through when it comes from this machine, or carries the
/// admin token. A browser page from another site is refused even on loopback (its `Origin`
/// is not ours), so a web page cannot fake alerts through the streamer's browser.
pub fn guard(app: Arc<App>) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::ext::optional::<Peer>()
        .and(warp::header::optional::<String>("x-forwarded-for"))
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("host"))
        .and_then(
            move |peer: Option<Peer>,
                  forwarded: Option<String>,
                  auth: Option<String>,
                  origin: Option<String>,
                  host: Option<String>| {
                let app = app.clone();
                async move {
                    let token_ok = match (&app.config.admin_token, &auth) {
                        (Some(token), Some(auth)) => auth
                            .strip_prefix("Bearer ")
                            .is_some_and(|given| constant_eq(given.as_bytes(), token.as_bytes())),
                        _ => false,
                    };
                    if token_ok {
                        return Ok(());
                    }
                    if let (Some(origin), Some(host)) = (&origin, &host) {
                        let origin_host = origin.split("://").nth(1).unwrap_or(origin);
                        if origin_host != host {
                            return Err(reject(
                                StatusCode::FORBIDDEN,
                                format!("requests from {origin} may not change state; use the dashboard at http://{host}/"),
                            ));
                        }
                    }
                    let client = match (&forwarded, app.config.trust_forwarded) {
                        (Some(list), true) => list
                            .split(',')
                            .next()
                            .and_then(|ip| ip.trim().parse::<std::net::IpAddr>().ok()),
                        _ => peer.map(|p| p.0.ip()),
                    };
                    let local = client.is_some_and(|ip| ip.is_loopback());
                    if local {
                        return Ok(());
                    }
                    Err(match (&app.config.admin_token, auth) {
                        (None, _) => reject(
                            StatusCode::FORBIDDEN,
                            "changes are allowed from this machine only; set [server] admin_token in overlay.toml to allow others",
                        ),
                        (Some(_), None) => reject(
                            StatusCode::UNAUTHORIZED,
                            "send the admin token as 'Authorization: Bearer <admin_token>'",
                        ),
                        (Some(_), Some(_)) => {
                            reject(StatusCode::FORBIDDEN, "the admin token does not match")
                        }
                    })
                }
            },
        )
        .untuple_one()
}

/// A `302 Found` to `to` (a local path or a URL we built).
pub fn redirect(to: &str) -> Response {
    let mut res = Response::new(bytes::Bytes::new().into());
    *res.status_mut() = StatusCode::FOUND;
    res.headers_mut().insert(
        warp::http::header::LOCATION,
        warp::http::HeaderValue::from_str(to).unwrap_or(warp::http::HeaderValue::from_static("/")),
    );
    res
}

/// An unguessable value for an OAuth `state` (128 bits, hex).
pub fn random_state() -> String {
    (0..32)
        .map(|_| format!("{:x}", rand::random::<u8>() & 15))
        .collect()
}

/// Compares in time independent of where the first difference is.
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn json_reply(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut res = Response::new(value.to_string().into());
    *res.status_mut() = status;
    res.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/json"),
    );
    res
}

/// The one rejection handler: every error is JSON with a message that says what to fix.
async fn recover(err: warp::Rejection) -> Result<Response, Infallible> {
    let (status, message) = if let Some(e) = err.find::<ApiError>() {
        (e.status, e.message.clone())
    } else if err.is_not_found() {
        (
            StatusCode::NOT_FOUND,
            "not found; the dashboard at / lists every overlay".to_string(),
        )
    } else if err.find::<warp::reject::PayloadTooLarge>().is_some() {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {MAX_BODY} bytes"),
        )
    } else if err.find::<warp::reject::LengthRequired>().is_some() {
        (
            StatusCode::LENGTH_REQUIRED,
            "send a Content-Length header".to_string(),
        )
    } else if err.find::<warp::reject::MethodNotAllowed>().is_some() {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed".to_string(),
        )
    } else if let Some(e) = err.find::<warp::reject::InvalidQuery>() {
        (StatusCode::BAD_REQUEST, format!("bad query string: {e}"))
    } else if let Some(e) = err.find::<warp::reject::InvalidHeader>() {
        (StatusCode::BAD_REQUEST, e.to_string())
    } else if let Some(e) = err.find::<warp::reject::MissingHeader>() {
        (StatusCode::BAD_REQUEST, e.to_string())
    } else {
        tracing::debug!(?err, "unhandled rejection");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error".to_string(),
        )
    };
    Ok(json_reply(status, &json!({ "error": message })))
}
