//! The JSON API: inject events (the emulate button, tests, the benchmark), read a channel's
//! recent events and chat stats, and the health check.

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::access::guard;
use super::reply::{MAX_BODY, json_reply, reject};
use super::state::{State, with_state};
use crate::event::{Event, Kind, check_and_complete, normalize_channel, valid_channel};

pub fn routes(state: Arc<State>) -> BoxedFilter<(Response,)> {
    post_event(state.clone())
        .or(channel_events(state.clone()))
        .unify()
        .or(channel_stats(state.clone()))
        .unify()
        .or(health(state.clone()))
        .unify()
        .or(overlays(state))
        .unify()
        .boxed()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostedEvent {
    channel: Option<String>,
    kind: String,
    #[serde(default)]
    data: Option<Value>,
    platform: Option<String>,
    /// Sent again from a recording: shown and alerted, counted in no stat or goal.
    #[serde(default)]
    replay: bool,
}

/// POST /api/events
fn post_event(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "events")
        .and(warp::post())
        .and(guard(state.access.clone()))
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::bytes())
        .and(with_state(state))
        .and_then(|body: Bytes, state: Arc<State>| async move {
            let event = parse_posted(&body, &state.config.default_channel())?;
            let (item, subscribers) = state.publisher.publish(event).map_err(|e| {
                // Shown on /health and the dashboard too, not only to this caller.
                state.status.set("store", "error", e.to_string());
                reject(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not stored, not sent: {e}"),
                )
            })?;
            let mut answer = json!(item.event);
            answer["subscribers"] = json!(subscribers);
            Ok::<_, warp::Rejection>(json_reply(StatusCode::ACCEPTED, &answer))
        })
        .boxed()
}

/// Turns a posted body into an event, or a 400 that says exactly what is wrong.
fn parse_posted(body: &[u8], default_channel: &str) -> Result<Event, warp::Rejection> {
    parse_event(body, default_channel).map_err(|e| reject(StatusCode::BAD_REQUEST, e))
}

/// Turns `{"channel", "kind", "data"}` into an event (fields a kind needs filled in, unknown
/// ones kept), or says exactly what is wrong. The events socket's `publish` uses it too.
pub fn parse_event(body: &[u8], default_channel: &str) -> Result<Event, String> {
    let posted: PostedEvent = serde_json::from_slice(body).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "invalid event",
            _ => "malformed JSON",
        };
        let full = e.to_string();
        let reason = full.split(" at line ").next().unwrap_or(&full);
        format!(
            "{what} at line {}, column {}: {reason}; send {{\"channel\", \"kind\", \"data\"}}",
            e.line(),
            e.column()
        )
    })?;
    let kind: Kind = posted
        .kind
        .parse()
        .map_err(|e: crate::event::UnknownKind| e.to_string())?;
    let channel = posted
        .channel
        .map(|c| normalize_channel(&c))
        .unwrap_or_else(|| default_channel.to_string());
    if !valid_channel(&channel) {
        return Err(format!(
            "channel \"{channel}\" is not a Twitch login (1-25 of a-z, 0-9, _)"
        ));
    }
    let mut data = match posted.data {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(format!("\"data\" must be an object, not {other}"));
        }
    };
    // Strict where the input is wrong, forgiving where a template needs a field.
    check_and_complete(kind, &mut data)?;
    let mut event = Event::new(
        crate::event::Platform::Twitch,
        channel,
        kind,
        Value::Object(data),
    );
    if let Some(platform) = posted.platform {
        event.platform = platform;
    }
    event.replay = posted.replay;
    Ok(event)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    limit: Option<usize>,
    before: Option<u64>,
}

/// Most events one call returns.
const MAX_LIMIT: usize = 1000;

/// GET /api/channels/{channel}/events?limit=N&before=ID
fn channel_events(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "channels" / String / "events")
        .and(warp::get())
        .and(super::access::read_guard(state.access.clone()))
        .and(warp::query::<EventsQuery>())
        .and(with_state(state))
        .map(|channel: String, q: EventsQuery, state: Arc<State>| {
            let channel = normalize_channel(&channel);
            let limit = q.limit.unwrap_or(10).clamp(1, MAX_LIMIT);
            // From the durable log when there is one: the whole retained activity, paged.
            let events: Vec<Event> = state.bus.history(&channel, limit, q.before);
            json_reply(
                StatusCode::OK,
                &json!({ "channel": channel, "events": events }),
            )
        })
        .boxed()
}

/// GET /api/channels/{channel}/stats
fn channel_stats(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "channels" / String / "stats")
        .and(warp::get())
        .and(with_state(state))
        .map(|channel: String, state: Arc<State>| {
            let channel = normalize_channel(&channel);
            // With a shared store, the stats kept there.
            state.bus.attach_channel(&channel);
            let snapshot = state.overlays.shared.stats.snapshot(&channel, 10);
            json_reply(StatusCode::OK, &json!(snapshot))
        })
        .boxed()
}

/// GET /health
fn health(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("health")
        .and(warp::get())
        .and(with_state(state))
        .map(|state: Arc<State>| json_reply(StatusCode::OK, &health_of(&state)))
        .boxed()
}

/// GET /api/overlays
fn overlays(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "overlays")
        .and(warp::get())
        .and(with_state(state))
        .map(|state: Arc<State>| json_reply(StatusCode::OK, &overlay_list(&state)))
        .boxed()
}

/// The body of `GET /health`: sources' connection state, counts, and every problem in the
/// files right now.
pub fn health_of(state: &State) -> Value {
    json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": state.started.elapsed().as_secs(),
        "subscribers": state.bus.subscribers(),
        "next_event_id": state.bus.next_id(),
        "history_in_memory": state.bus.memory(),
        "overlays": state.overlays.all().iter().filter(|o| !o.config.is_viewer()).count(),
        "frames_rendered": state.overlays.shared.renders.load(std::sync::atomic::Ordering::Relaxed),
        "sources": state.status.snapshot(),
        "channels": state.channels.wanted(),
        "sourced_here": state.channels.sourced(),
        "activeStreams": active_streams(state),
        "theme_errors": state.themes.errors().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "render_errors": state.overlays.shared.failures.list(),
        "overlay_errors": state
            .reloader
            .errors()
            .into_iter()
            .chain(state.overlays.field_errors())
            .collect::<Vec<_>>(),
    })
}

/// Chats being read now: the platform links whose channel is wanted here, and the Twitch
/// channels (their names are logins; on-demand chats of other platforms have dotted names).
fn active_streams(state: &State) -> usize {
    let sourced = state.channels.sourced();
    state.links.active(&sourced)
        + sourced
            .iter()
            .filter(|c| crate::event::valid_channel(c))
            .count()
}

/// The body of `GET /api/overlays`: every overlay with its URL and size, and the event kinds.
pub fn overlay_list(state: &State) -> Value {
    let list: Vec<Value> = state
        .overlays
        .all()
        .iter()
        .filter(|o| !o.config.is_viewer())
        .map(|o| {
            let c = &o.config;
            json!({
                "name": c.name, "kind": c.kind.as_str(), "channel": c.channel, "theme": c.theme,
                "title": c.title, "url": format!("/o/{}", c.name),
                "width": c.size.0, "height": c.size.1,
                "theme_error": state.themes.error(&c.theme).map(|e| e.to_string()),
            })
        })
        .collect();
    json!({ "overlays": list, "kinds": crate::event::Kind::ALL })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str) -> String {
        match parse_posted(body.as_bytes(), "demo") {
            Ok(_) => "ok".into(),
            Err(r) => r
                .find::<crate::web::reply::ApiError>()
                .map(|e| e.message.clone())
                .unwrap_or_default(),
        }
    }

    #[test]
    fn malformed_json_names_the_position() {
        let m = message("{\"kind\": \"follow\",, }");
        assert!(
            m.starts_with("malformed JSON at line 1, column 19: key must be a string;"),
            "{m}"
        );
    }

    #[test]
    fn unknown_kind_lists_kinds() {
        let m = message(r#"{"kind": "folow"}"#);
        assert!(
            m.contains("unknown event kind \"folow\"") && m.contains("chat.message"),
            "{m}"
        );
    }

    #[test]
    fn posted_fields_are_kept_and_completed() {
        let e = parse_posted(
            br#"{"channel":"Bench","kind":"follow","data":{"seq":3}}"#,
            "demo",
        )
        .unwrap_or_else(|_| panic!("valid"));
        assert_eq!(e.channel, "bench");
        assert_eq!(e.data["seq"], 3);
        assert!(e.data["user_name"].is_string());
    }

    #[test]
    fn bad_channel_and_data_are_refused() {
        assert!(message(r#"{"kind":"follow","channel":"a b"}"#).contains("not a Twitch login"));
        assert!(message(r#"{"kind":"follow","data":[1]}"#).contains("must be an object"));
    }
}
