//! Rehearsals over HTTP: export a stretch of a channel's log as JSON lines, and the
//! dashboard's player of a recording (a bundled sample or an uploaded export) into any
//! channel, with pause, resume and stop. The player is [`crate::replay::play`], the same one
//! `overlayd replay` runs; here each event goes to the publisher as a posted one would.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::access::{guard, read_guard};
use super::reply::{body_up_to, json_reply, reject};
use super::state::{State, with_state};
use crate::event::{Event, normalize_channel, valid_channel};
use crate::replay::{Progress, SAMPLES, State as Play};

/// Largest recording the dashboard may upload.
const MAX_RECORDING: usize = 16 * 1024 * 1024;
/// Most events one export holds.
const MAX_EXPORT: usize = 200_000;

pub fn routes(state: Arc<State>) -> BoxedFilter<(Response,)> {
    export(state.clone())
        .or(samples())
        .unify()
        .or(start(state.clone()))
        .unify()
        .or(control(state.clone()))
        .unify()
        .or(status(state))
        .unify()
        .boxed()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Range {
    from: Option<String>,
    to: Option<String>,
}

/// A bound of an export: an event id, milliseconds since 1970, or an RFC 3339 time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    Id(u64),
    At(u64),
}

impl Bound {
    /// Ids are the clock in microseconds (16 digits); times in milliseconds have 13.
    pub fn parse(s: &str) -> Result<Bound, String> {
        let s = s.trim();
        if let Ok(n) = s.parse::<u64>() {
            return Ok(if n >= 100_000_000_000_000 {
                Bound::Id(n)
            } else {
                Bound::At(n)
            });
        }
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| Bound::At(t.timestamp_millis().max(0) as u64))
            .map_err(|_| {
                format!("\"{s}\" is not an event id, milliseconds since 1970 or a time like 2026-12-01T20:00:00Z")
            })
    }

    fn before(self, e: &Event) -> bool {
        match self {
            Bound::Id(id) => e.id < id,
            Bound::At(at) => e.at < at,
        }
    }

    fn after(self, e: &Event) -> bool {
        match self {
            Bound::Id(id) => e.id > id,
            Bound::At(at) => e.at > at,
        }
    }
}

/// The events of `channel` between `from` and `to`, oldest first, read page by page from the
/// newest. Blocking (the log may be on disk).
pub fn export_lines(
    bus: &crate::bus::Bus,
    channel: &str,
    from: Option<Bound>,
    to: Option<Bound>,
) -> String {
    let mut picked: Vec<Event> = Vec::new();
    let mut before: Option<u64> = None;
    'pages: loop {
        let page = bus.history(channel, 1000, before);
        if page.is_empty() {
            break;
        }
        for e in &page {
            if from.is_some_and(|f| f.before(e)) {
                break 'pages;
            }
            if to.is_none_or(|t| !t.after(e)) {
                picked.push(e.clone());
                if picked.len() >= MAX_EXPORT {
                    break 'pages;
                }
            }
        }
        let oldest = page.last().map(|e| e.id);
        if oldest.is_none() || oldest == before {
            break;
        }
        before = oldest;
    }
    picked.reverse();
    let mut out = String::new();
    for e in picked.iter().filter(|e| !e.history) {
        out.push_str(&crate::replay::line_of(e));
        out.push('\n');
    }
    out
}

/// GET /api/channels/{channel}/export?from=&to= — JSON lines, oldest first.
fn export(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "channels" / String / "export")
        .and(warp::get())
        .and(read_guard(state.access.clone()))
        .and(warp::query::<Range>())
        .and(with_state(state))
        .and_then(|channel: String, q: Range, state: Arc<State>| async move {
            let channel = normalize_channel(&channel);
            let parse = |s: Option<String>| {
                s.map(|s| Bound::parse(&s))
                    .transpose()
                    .map_err(|e| reject(StatusCode::BAD_REQUEST, e))
            };
            let (from, to) = (parse(q.from)?, parse(q.to)?);
            let bus = state.bus.clone();
            let name = channel.clone();
            let text = tokio::task::spawn_blocking(move || export_lines(&bus, &name, from, to))
                .await
                .map_err(|e| reject(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            let mut res = Response::new(text.into());
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson; charset=utf-8"),
            );
            if let Ok(v) =
                HeaderValue::from_str(&format!("attachment; filename=\"{channel}.jsonl\""))
            {
                res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            Ok::<_, warp::Rejection>(res)
        })
        .boxed()
}

/// GET /api/replay/samples — the bundled recordings.
fn samples() -> BoxedFilter<(Response,)> {
    warp::path!("api" / "replay" / "samples")
        .and(warp::get())
        .map(|| {
            let list: Vec<Value> = SAMPLES
                .iter()
                .map(|(name, about, text)| {
                    json!({"name": name, "about": about, "events": crate::replay::parse(text).0.len()})
                })
                .collect();
            json_reply(StatusCode::OK, &json!(list))
        })
        .boxed()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Start {
    /// A bundled sample's name…
    sample: Option<String>,
    /// …or the text of a recording (an export).
    recording: Option<String>,
    channel: String,
    #[serde(default = "one")]
    speed: f64,
    #[serde(default, rename = "loop")]
    repeat: bool,
    /// Count the replayed events in stats and goals as if they were real.
    #[serde(default)]
    counted: bool,
}

fn one() -> f64 {
    1.0
}

/// POST /api/replay — plays a recording (stopping the one playing, if any).
fn start(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "replay")
        .and(warp::post())
        .and(guard(state.access.clone()))
        .and(body_up_to(MAX_RECORDING))
        .and(with_state(state))
        .and_then(|body: Bytes, state: Arc<State>| async move {
            let asked: Start = serde_json::from_slice(&body).map_err(|e| {
                reject(
                    StatusCode::BAD_REQUEST,
                    format!("{e}; send {{\"sample\": \"raid-night\" or \"recording\": \"<lines>\", \"channel\", \"speed\", \"loop\"}}"),
                )
            })?;
            let channel = normalize_channel(&asked.channel);
            if !valid_channel(&channel) {
                return Err(reject(StatusCode::BAD_REQUEST, format!("channel \"{channel}\" is not a Twitch login (1-25 of a-z, 0-9, _)")));
            }
            if !(asked.speed > 0.0 && asked.speed <= 1000.0) {
                return Err(reject(StatusCode::BAD_REQUEST, "speed is more than 0 and at most 1000"));
            }
            let (source, text) = match (&asked.sample, asked.recording) {
                (Some(name), None) => {
                    let (_, _, text) = SAMPLES.iter().find(|(n, _, _)| n == name).ok_or_else(|| {
                        let names: Vec<&str> = SAMPLES.iter().map(|s| s.0).collect();
                        reject(StatusCode::NOT_FOUND, format!("no sample \"{name}\"; samples are {}", names.join(", ")))
                    })?;
                    (format!("sample {name}"), text.to_string())
                }
                (None, Some(text)) => ("an uploaded recording".to_string(), text),
                _ => return Err(reject(StatusCode::BAD_REQUEST, "send \"sample\" or \"recording\", one of them")),
            };
            let (events, errors) = crate::replay::parse(&text);
            if events.is_empty() {
                return Err(reject(
                    StatusCode::BAD_REQUEST,
                    format!("no event in the recording; {}", errors.first().cloned().unwrap_or_else(|| "it is empty".into())),
                ));
            }
            let progress = Arc::new(Progress::default());
            progress.total.store(events.len(), Ordering::Relaxed);
            progress.errors.lock().extend(errors.into_iter().take(100));
            let about = json!({"source": source, "channel": channel, "speed": asked.speed,
                               "loop": asked.repeat, "counted": asked.counted});
            let (rx, ended) = state.rehearsal.begin(about, progress.clone());
            let (publisher, default_channel) = (state.publisher.clone(), state.config.default_channel());
            let shutdown = state.shutdown.clone();
            let how = crate::replay::Playback {
                channel,
                speed: asked.speed,
                repeat: asked.repeat,
                counted: asked.counted,
            };
            tokio::spawn(async move {
                let send = |body: Value| {
                    let result = crate::web::api::parse_event(body.to_string().as_bytes(), &default_channel)
                        .and_then(|e| publisher.publish(e).map(|_| ()).map_err(|e| e.to_string()));
                    async move { result }
                };
                let played = tokio::select! {
                    p = crate::replay::play(&events, &how, rx, progress, send) => p,
                    _ = shutdown.cancelled() => Play::Stopped,
                };
                *ended.lock() = Some(played);
            });
            Ok::<_, warp::Rejection>(json_reply(StatusCode::ACCEPTED, &state.rehearsal.status()))
        })
        .boxed()
}

/// POST /api/replay/{pause|resume|stop}
fn control(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "replay" / String)
        .and(warp::post())
        .and(guard(state.access.clone()))
        .and(with_state(state))
        .and_then(|action: String, state: Arc<State>| async move {
            let to = match action.as_str() {
                "pause" => Play::Paused,
                "resume" => Play::Playing,
                "stop" => Play::Stopped,
                _ => {
                    return Err(reject(
                        StatusCode::NOT_FOUND,
                        format!("no \"{action}\"; send pause, resume or stop"),
                    ));
                }
            };
            if !state.rehearsal.set(to) {
                return Err(reject(StatusCode::CONFLICT, "nothing is playing"));
            }
            Ok::<_, warp::Rejection>(json_reply(StatusCode::OK, &state.rehearsal.status()))
        })
        .boxed()
}

/// GET /api/replay — what plays and how far it got.
fn status(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "replay")
        .and(warp::get())
        .and(read_guard(state.access.clone()))
        .and(with_state(state))
        .map(|state: Arc<State>| json_reply(StatusCode::OK, &state.rehearsal.status()))
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_ids_times_or_dates() {
        assert_eq!(
            Bound::parse("1796135293685000"),
            Ok(Bound::Id(1_796_135_293_685_000))
        );
        assert_eq!(
            Bound::parse("1796135293685"),
            Ok(Bound::At(1_796_135_293_685))
        );
        assert_eq!(
            Bound::parse("2026-12-01T20:00:00Z"),
            Ok(Bound::At(1_796_155_200_000))
        );
        assert!(
            Bound::parse("yesterday")
                .unwrap_err()
                .contains("a time like")
        );
    }
}
