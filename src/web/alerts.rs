//! Alert control over HTTP, for the dashboard, a Stream Deck or a script: the commands and
//! safe mode per channel (`?overlay=<name>` for one overlay), the state they answer, and the
//! two routes an alert page uses (its state with the alert on screen, and whether it is on
//! air). Every change passes the one access rule; every path ends in [`crate::alerts`].

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::access::{guard, read_guard};
use super::reply::{MAX_BODY, body_up_to, json_reply, reject};
use super::state::{State, with_state};
use crate::alerts::{AlertError, Command};
use crate::event::normalize_channel;

pub fn routes(state: Arc<State>) -> BoxedFilter<(Response,)> {
    command(state.clone())
        .or(read(state.clone()))
        .unify()
        .or(safe_mode(state.clone()))
        .unify()
        .or(page_state(state.clone()))
        .unify()
        .or(presence(state))
        .unify()
        .boxed()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Which {
    overlay: Option<String>,
}

/// How an alert error is answered.
pub fn status_of(e: &AlertError) -> StatusCode {
    match e {
        AlertError::BadMinutes => StatusCode::BAD_REQUEST,
        _ => StatusCode::NOT_FOUND,
    }
}

fn refused(e: AlertError) -> warp::Rejection {
    reject(status_of(&e), e.to_string())
}

/// An optional JSON object body: empty is `{}`.
pub(super) fn body_object(body: &Bytes, what: &str) -> Result<Value, warp::Rejection> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) | Err(_) => Err(reject(
            StatusCode::BAD_REQUEST,
            format!("the body is a JSON object like {what}, or empty"),
        )),
    }
}

/// POST /api/channels/{channel}/alerts/{action}[?overlay=name]
fn command(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "channels" / String / "alerts" / String)
        .and(warp::post())
        .and(guard(state.access.clone()))
        .and(warp::query::<Which>())
        .and(body_up_to(MAX_BODY as usize))
        .and(with_state(state))
        .and_then(
            |channel: String, action: String, which: Which, body: Bytes, state: Arc<State>| async move {
                let body = body_object(&body, "{\"id\": 123}")?;
                let id = match &body["id"] {
                    Value::Null => None,
                    v => Some(v.as_u64().ok_or_else(|| {
                        reject(StatusCode::BAD_REQUEST, "\"id\" is an event id (a number)")
                    })?),
                };
                let command = Command::parse(&action, id).ok_or_else(|| {
                    reject(
                        StatusCode::NOT_FOUND,
                        format!("no alert command \"{action}\"; commands are {}", Command::ACTIONS),
                    )
                })?;
                let channel = normalize_channel(&channel);
                // A replay reads the event log (on disk with SQLite): off the runtime threads.
                let answer = crate::blocking::off_the_runtime(|| {
                    state
                        .alerts
                        .command(&channel, which.overlay.as_deref(), command)
                })
                .map_err(refused)?;
                Ok::<_, warp::Rejection>(json_reply(StatusCode::OK, &answer))
            },
        )
        .boxed()
}

/// GET /api/channels/{channel}/alerts[?overlay=name]
fn read(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "channels" / String / "alerts")
        .and(warp::get())
        .and(read_guard(state.access.clone()))
        .and(warp::query::<Which>())
        .and(with_state(state))
        .map(|channel: String, which: Which, state: Arc<State>| {
            let channel = normalize_channel(&channel);
            json_reply(
                StatusCode::OK,
                &state.alerts.state(&channel, which.overlay.as_deref()),
            )
        })
        .boxed()
}

/// POST /api/channels/{channel}/safe-mode `{"minutes": N}`; DELETE ends it.
fn safe_mode(state: Arc<State>) -> BoxedFilter<(Response,)> {
    let start = warp::post()
        .and(body_up_to(MAX_BODY as usize))
        .and_then(|body: Bytes| async move {
            let body = body_object(&body, "{\"minutes\": 10}")?;
            match &body["minutes"] {
                Value::Null => Ok::<_, warp::Rejection>(None),
                v => v.as_f64().map(Some).ok_or_else(|| {
                    reject(StatusCode::BAD_REQUEST, "\"minutes\" is a number, e.g. 10")
                }),
            }
        })
        .map(|minutes: Option<f64>| Some(minutes));
    let end = warp::delete().map(|| None::<Option<f64>>);
    warp::path!("api" / "channels" / String / "safe-mode")
        .and(guard(state.access.clone()))
        .and(start.or(end).unify())
        .and(with_state(state))
        .and_then(
            |channel: String, asked: Option<Option<f64>>, state: Arc<State>| async move {
                let channel = normalize_channel(&channel);
                let minutes = asked.map(|m| m.unwrap_or(state.config.alerts.safe_mode_minutes));
                let answer = state.alerts.safe_mode(&channel, minutes).map_err(refused)?;
                Ok::<_, warp::Rejection>(json_reply(StatusCode::OK, &answer))
            },
        )
        .boxed()
}

/// GET /o/{name}/alerts — what the overlay's pages show now, with the alert's HTML.
fn page_state(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("o" / String / "alerts")
        .and(warp::get())
        .and(with_state(state))
        .and_then(|name: String, state: Arc<State>| async move {
            let answer = state.alerts.page_state(&name).ok_or_else(|| {
                reject(
                    StatusCode::NOT_FOUND,
                    format!("\"{name}\" is not an alert overlay"),
                )
            })?;
            Ok::<_, warp::Rejection>(json_reply(StatusCode::OK, &answer))
        })
        .boxed()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Presence {
    page: String,
    /// `null`: the page is gone.
    on_air: Option<bool>,
}

/// POST /o/{name}/presence `{"page", "on_air"}` — a page of the overlay says whether OBS has
/// it on air (sent with `navigator.sendBeacon` as it leaves, hence any content type).
fn presence(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("o" / String / "presence")
        .and(warp::post())
        .and(guard(state.access.clone()))
        .and(warp::body::content_length_limit(4096))
        .and(warp::body::bytes())
        .and(with_state(state))
        .and_then(|name: String, body: Bytes, state: Arc<State>| async move {
            let p: Presence = serde_json::from_slice(&body).map_err(|_| {
                reject(
                    StatusCode::BAD_REQUEST,
                    "send {\"page\": \"<id>\", \"on_air\": true | false | null}",
                )
            })?;
            if p.page.is_empty() || p.page.len() > 64 {
                return Err(reject(
                    StatusCode::BAD_REQUEST,
                    "page is 1 to 64 characters",
                ));
            }
            let (on_air, seq) = state
                .alerts
                .presence(&name, &p.page, p.on_air)
                .map_err(|_| {
                    reject(
                        StatusCode::NOT_FOUND,
                        format!("\"{name}\" is not an alert overlay"),
                    )
                })?;
            Ok::<_, warp::Rejection>(json_reply(
                StatusCode::OK,
                &json!({"on_air": on_air, "seq": seq}),
            ))
        })
        .boxed()
}
