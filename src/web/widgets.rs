//! Sessions, counters and timers over HTTP, for the dashboard, a Stream Deck or a script, and
//! the route a widget page reads its state from. Every change passes the one access rule;
//! every path ends in [`crate::widgets`].

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::access::{guard, read_guard};
use super::alerts::body_object;
use super::reply::{MAX_BODY, body_up_to, json_reply, reject};
use super::state::{State, with_state};
use crate::event::normalize_channel;
use crate::widgets::{CounterOp, TimerOp, WidgetError};

pub fn routes(state: Arc<State>) -> BoxedFilter<(Response,)> {
    session(state.clone())
        .or(reset(state.clone()))
        .unify()
        .or(counters(state.clone()))
        .unify()
        .or(counter(state.clone()))
        .unify()
        .or(timer(state.clone()))
        .unify()
        .or(page_state(state))
        .unify()
        .boxed()
}

/// How a widget error is answered.
pub fn status_of(e: &WidgetError) -> StatusCode {
    match e {
        WidgetError::NoTimer { .. } => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn refused(e: WidgetError) -> warp::Rejection {
    reject(status_of(&e), e.to_string())
}

/// GET /api/channels/{channel}/session
fn session(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "channels" / String / "session")
        .and(warp::get())
        .and(read_guard(state.access.clone()))
        .and(with_state(state))
        .map(|channel: String, state: Arc<State>| {
            let channel = normalize_channel(&channel);
            json_reply(StatusCode::OK, &state.widgets.session(&channel))
        })
        .boxed()
}

/// POST /api/channels/{channel}/session/reset
fn reset(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "channels" / String / "session" / "reset")
        .and(warp::post())
        .and(guard(state.access.clone()))
        .and(with_state(state))
        .map(|channel: String, state: Arc<State>| {
            let channel = normalize_channel(&channel);
            json_reply(StatusCode::OK, &state.widgets.reset_session(&channel))
        })
        .boxed()
}

/// GET /api/channels/{channel}/counters
fn counters(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "channels" / String / "counters")
        .and(warp::get())
        .and(read_guard(state.access.clone()))
        .and(with_state(state))
        .map(|channel: String, state: Arc<State>| {
            let channel = normalize_channel(&channel);
            json_reply(
                StatusCode::OK,
                &serde_json::json!({"channel": channel, "counters": state.widgets.counters(&channel)}),
            )
        })
        .boxed()
}

/// A counter op from `{"op": "add"|"subtract"|"set"|"reset", "value": n}` (empty: add 1).
pub fn counter_op(body: &Value) -> Result<CounterOp, String> {
    let value = match &body["value"] {
        Value::Null => None,
        v => Some(
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .ok_or("\"value\" is a whole number")? as i64,
        ),
    };
    let op = body["op"].as_str().unwrap_or("add");
    CounterOp::parse(op, value).map_err(|e| e.to_string())
}

/// A timer op from `{"op": "start"|"pause"|"add"|"set"|"reset", "seconds": n}`.
pub fn timer_op(body: &Value) -> Result<TimerOp, String> {
    let seconds = match &body["seconds"] {
        Value::Null => None,
        v => Some(v.as_f64().ok_or("\"seconds\" is a number")?),
    };
    let op = body["op"]
        .as_str()
        .ok_or_else(|| format!("send {{\"op\": …}}; ops are {}", TimerOp::NAMES))?;
    TimerOp::parse(op, seconds)
}

/// POST /api/channels/{channel}/counters/{name} `{"op", "value"}`
fn counter(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "channels" / String / "counters" / String)
        .and(warp::post())
        .and(guard(state.access.clone()))
        .and(body_up_to(MAX_BODY as usize))
        .and(with_state(state))
        .and_then(
            |channel: String, name: String, body: Bytes, state: Arc<State>| async move {
                let body = body_object(&body, "{\"op\": \"add\", \"value\": 1}")?;
                let op = counter_op(&body).map_err(|e| reject(StatusCode::BAD_REQUEST, e))?;
                let channel = normalize_channel(&channel);
                let answer = state
                    .widgets
                    .counter(&channel, &name, op)
                    .map_err(refused)?;
                Ok::<_, warp::Rejection>(json_reply(StatusCode::OK, &answer))
            },
        )
        .boxed()
}

/// POST /api/channels/{channel}/timers/{name} `{"op", "seconds"}` — `name` is the timer
/// overlay's.
fn timer(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "channels" / String / "timers" / String)
        .and(warp::post())
        .and(guard(state.access.clone()))
        .and(body_up_to(MAX_BODY as usize))
        .and(with_state(state))
        .and_then(
            |channel: String, name: String, body: Bytes, state: Arc<State>| async move {
                let body = body_object(&body, "{\"op\": \"add\", \"seconds\": 60}")?;
                let op = timer_op(&body).map_err(|e| reject(StatusCode::BAD_REQUEST, e))?;
                let channel = normalize_channel(&channel);
                let answer = state.widgets.timer(&channel, &name, op).map_err(refused)?;
                Ok::<_, warp::Rejection>(json_reply(StatusCode::OK, &answer))
            },
        )
        .boxed()
}

/// GET /o/{name}/widget — what a widget overlay's pages show now (`?sample=1`: with a
/// made-up session, for the dashboard's preview).
fn page_state(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("o" / String / "widget")
        .and(warp::get())
        .and(warp::query::<std::collections::HashMap<String, String>>())
        .and(with_state(state))
        .and_then(
            |name: String,
             query: std::collections::HashMap<String, String>,
             state: Arc<State>| async move {
                let missing = || {
                    reject(
                        StatusCode::NOT_FOUND,
                        format!("\"{name}\" is not a widget overlay (labels, counter, timer, credits)"),
                    )
                };
                let answer = if query.get("sample").is_some_and(|v| v == "1") {
                    let overlay = state
                        .overlays
                        .get(&name)
                        .filter(|o| o.config.kind.is_widget())
                        .ok_or_else(missing)?;
                    crate::widgets::Widgets::sample_state(&overlay, &state.overlays.shared)
                } else {
                    state.widgets.page_state(&name).ok_or_else(missing)?
                };
                Ok::<_, warp::Rejection>(json_reply(StatusCode::OK, &answer))
            },
        )
        .boxed()
}
