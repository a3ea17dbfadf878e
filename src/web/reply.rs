//! How every route answers: JSON with a status, redirects, and the one rejection handler,
//! whose messages say what to fix.

use std::convert::Infallible;

use serde_json::json;
use warp::http::StatusCode;
use warp::reply::Response;

/// Largest request body accepted (the emulate API's events are a few hundred bytes).
pub const MAX_BODY: u64 = 64 * 1024;

/// The request body, at most `limit` bytes, with or without a `Content-Length` (a
/// `curl -X POST` or a Stream Deck's web request may send none).
pub fn body_up_to(
    limit: usize,
) -> impl warp::Filter<Extract = (bytes::Bytes,), Error = warp::Rejection> + Clone {
    use warp::Filter;
    warp::body::stream().and_then(move |body| collect_body(body, limit))
}

async fn collect_body<S, B>(body: S, limit: usize) -> Result<bytes::Bytes, warp::Rejection>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    use futures_util::StreamExt;
    let mut body = std::pin::pin!(body);
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| reject(StatusCode::BAD_REQUEST, format!("reading the body: {e}")))?;
        if buf.len() + chunk.remaining() > limit {
            return Err(reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {limit} bytes"),
            ));
        }
        bytes::BufMut::put(&mut buf, chunk);
    }
    Ok(buf.freeze())
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
pub async fn recover(err: warp::Rejection) -> Result<Response, Infallible> {
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
