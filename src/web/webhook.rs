//! POST /eventsub/callback — EventSub's webhook transport. Verified before anything is read.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::reply::reject;
use super::state::{State, with_state};
use crate::twitch::webhook::{Refused, verify};

/// Twitch's notification bodies are a few KiB.
const MAX_BODY: u64 = 256 * 1024;

fn status(code: StatusCode) -> Response {
    let mut res = Response::new(Bytes::new().into());
    *res.status_mut() = code;
    res
}

/// POST /eventsub/callback
pub fn route(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("eventsub" / "callback")
        .and(warp::post())
        .and(warp::header::optional::<String>(
            "twitch-eventsub-message-id",
        ))
        .and(warp::header::optional::<String>(
            "twitch-eventsub-message-timestamp",
        ))
        .and(warp::header::optional::<String>(
            "twitch-eventsub-message-signature",
        ))
        .and(warp::header::optional::<String>(
            "twitch-eventsub-message-type",
        ))
        .and(warp::header::optional::<String>(
            "twitch-eventsub-subscription-type",
        ))
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::bytes())
        .and(with_state(state))
        .and_then(
            |id: Option<String>,
             ts: Option<String>,
             sig: Option<String>,
             kind: Option<String>,
             sub: Option<String>,
             body: Bytes,
             state: Arc<State>| async move {
                // Twitch delivers here only to a public address: without one, nothing is
                // expected, and nothing is taken.
                if state.config.public_url.is_none() {
                    return Err(reject(
                        StatusCode::NOT_FOUND,
                        "no webhooks without [server] public_url (Twitch needs an HTTPS address to deliver to)",
                    ));
                }
                let (Some(id), Some(ts), Some(sig), Some(kind)) = (id, ts, sig, kind) else {
                    return Err(reject(
                        StatusCode::FORBIDDEN,
                        Refused::MissingHeader.to_string(),
                    ));
                };
                verify(
                    state.webhook_secret.as_bytes(),
                    &id,
                    &ts,
                    &body,
                    &sig,
                    crate::event::now_ms() as i64,
                )
                .map_err(|e| {
                    tracing::warn!(id, "webhook refused: {e}");
                    reject(StatusCode::FORBIDDEN, e.to_string())
                })?;
                let msg: Value = serde_json::from_slice(&body).map_err(|e| {
                    reject(StatusCode::BAD_REQUEST, format!("body is not JSON: {e}"))
                })?;
                match kind.as_str() {
                    "webhook_callback_verification" => {
                        // The raw challenge, byte for byte, as text (not JSON-encoded).
                        let challenge = msg["challenge"].as_str().unwrap_or_default().to_string();
                        let mut res = Response::new(challenge.into());
                        res.headers_mut()
                            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                        Ok(res)
                    }
                    "revocation" => {
                        let s = &msg["subscription"];
                        state.status.set(
                            "twitch-webhook",
                            "revoked",
                            format!(
                                "Twitch revoked {} ({})",
                                s["type"].as_str().unwrap_or("?"),
                                s["status"].as_str().unwrap_or("?")
                            ),
                        );
                        Ok(status(StatusCode::NO_CONTENT))
                    }
                    "notification" => {
                        // Redelivered ids are acknowledged (or Twitch retries) but not shown twice:
                        // not after a restart (the log remembers them), and not on another
                        // instance of a shared store.
                        let log = state.bus.log();
                        let first = state.webhook_seen.first_time(&id)
                            && log
                                .as_ref()
                                .is_none_or(|l| l.first_delivery(&id).unwrap_or(true));
                        if first
                            && let Some(event) = crate::twitch::notification::map(
                                sub.as_deref().unwrap_or_default(),
                                &msg["event"],
                            )
                            && let Err(e) = state.publisher.publish(event)
                        {
                            // Twitch retries a failed delivery: let it, and handle the retry,
                            // rather than lose the event.
                            state.webhook_seen.forget(&id);
                            if let Some(l) = &log {
                                let _ = l.forget_delivery(&id);
                            }
                            return Err(reject(StatusCode::SERVICE_UNAVAILABLE, e.to_string()));
                        }
                        Ok(status(StatusCode::NO_CONTENT))
                    }
                    other => Err(reject(
                        StatusCode::BAD_REQUEST,
                        format!("unknown message type {other}"),
                    )),
                }
            },
        )
        .boxed()
}
