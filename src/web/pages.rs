//! Pages and files: the overlay page and its event stream, the dashboard, the client script
//! and theme assets.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::reply::{json_reply, reject};
use super::sse;
use super::state::{State, with_state};

/// Client files compiled into the binary.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "overlay.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/overlay.js"),
    ),
    (
        "overlay.css",
        "text/css; charset=utf-8",
        include_str!("assets/overlay.css"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/dashboard.js"),
    ),
    (
        "dashboard.css",
        "text/css; charset=utf-8",
        include_str!("assets/dashboard.css"),
    ),
    (
        "viewer.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/viewer.js"),
    ),
    (
        "viewer.css",
        "text/css; charset=utf-8",
        include_str!("assets/viewer.css"),
    ),
    (
        "stream-worker.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/stream-worker.js"),
    ),
];

/// Most events one backlog answer carries (a chat box shows a few dozen at most).
const MAX_BACKLOG: usize = 200;

/// Overlays one multiplexed stream may carry (a scene rarely has more than a dozen).
const MAX_MULTIPLEX: usize = 64;

pub fn routes(state: Arc<State>) -> BoxedFilter<(Response,)> {
    overlay_page(state.clone())
        .or(overlay_events(state.clone()))
        .unify()
        .or(multiplexed_events(state.clone()))
        .unify()
        .or(rerender(state.clone()))
        .unify()
        .or(samples(state.clone()))
        .unify()
        .or(backlog(state.clone()))
        .unify()
        .or(assets())
        .unify()
        .or(theme_asset(state.clone()))
        .unify()
        .or(theme_sound(state.clone()))
        .unify()
        .or(chat_test())
        .unify()
        .or(dashboard(state))
        .unify()
        .boxed()
}

/// GET /test — the chat socket's test page: pick a platform and a channel, watch its chat and
/// stats (`?platform=twitch&identifier=demo&connect=1` connects at once).
fn chat_test() -> BoxedFilter<(Response,)> {
    warp::path!("test")
        .and(warp::get())
        .map(|| html(include_str!("assets/chat-test.html").to_string()))
        .boxed()
}

fn html(body: String) -> Response {
    let mut res = Response::new(body.into());
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

fn no_overlay(name: &str) -> warp::Rejection {
    reject(
        StatusCode::NOT_FOUND,
        format!("no overlay named \"{name}\"; the dashboard at / lists them"),
    )
}

/// GET /o/{name}
fn overlay_page(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("o" / String)
        .and(warp::get())
        .and(warp::query::<Vec<(String, String)>>())
        .and(with_state(state))
        .and_then(
            |name: String, query: Vec<(String, String)>, state: Arc<State>| async move {
                let overlay = state.overlays.get(&name).ok_or_else(|| no_overlay(&name))?;
                let error = state.themes.error(&overlay.config.theme);
                // `?field.<name>=<value>`: this page only, checked like the file's values.
                let pairs = query.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                let (fields, problems) = crate::overlay::page::overrides(&overlay, pairs);
                Ok::<_, warp::Rejection>(html(crate::overlay::page::render_with(
                    &overlay,
                    error.as_ref(),
                    &fields,
                    &problems,
                )))
            },
        )
        .boxed()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    since: Option<u64>,
    /// Comma-separated overlay names (multiplexed stream only).
    o: Option<String>,
}

/// GET /o/{name}/events
fn overlay_events(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("o" / String / "events")
        .and(warp::get())
        .and(warp::header::optional::<u64>("last-event-id"))
        .and(warp::query::<StreamQuery>())
        .and(with_state(state))
        .and_then(
            |name: String, last: Option<u64>, q: StreamQuery, state: Arc<State>| async move {
                let overlay = state.overlays.get(&name).ok_or_else(|| no_overlay(&name))?;
                // The header wins: a browser reconnecting sends it, and the URL still carries
                // the `since` of the first connection.
                Ok::<_, warp::Rejection>(event_stream(state, vec![overlay], last.or(q.since)))
            },
        )
        .boxed()
}

/// GET /events?o=a,b,c — several overlays on one connection. Browsers allow six HTTP/1.1
/// connections per host and OBS sources share one profile, so a scene with many overlays
/// multiplexes them here (https://crbug.com/275955).
fn multiplexed_events(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("events")
        .and(warp::get())
        .and(warp::header::optional::<u64>("last-event-id"))
        .and(warp::query::<StreamQuery>())
        .and(with_state(state))
        .and_then(
            |last: Option<u64>, q: StreamQuery, state: Arc<State>| async move {
                let names = q.o.unwrap_or_default();
                let mut overlays = Vec::new();
                for name in names
                    .split(',')
                    .filter(|n| !n.is_empty())
                    .take(MAX_MULTIPLEX)
                {
                    overlays.push(state.overlays.get(name).ok_or_else(|| no_overlay(name))?);
                }
                if overlays.is_empty() {
                    return Err(reject(
                        StatusCode::BAD_REQUEST,
                        "name the overlays: /events?o=chat,alerts",
                    ));
                }
                Ok(event_stream(state, overlays, last.or(q.since)))
            },
        )
        .boxed()
}

pub fn event_stream(
    state: Arc<State>,
    overlays: Vec<Arc<crate::overlay::Overlay>>,
    since: Option<u64>,
) -> Response {
    let body = sse::stream(state.feed(overlays, since));
    let mut res = warp::reply::Reply::into_response(warp::reply::stream(body));
    for (name, value) in crate::frame::HEADERS {
        res.headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    res
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenderQuery {
    ids: String,
}

/// GET /o/{name}/render?ids=1,2,3 — the current theme's HTML for events still in history, so
/// a page can redraw what it shows after a theme edit without reloading.
fn rerender(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("o" / String / "render")
        .and(warp::get())
        .and(warp::query::<RenderQuery>())
        .and(with_state(state))
        .and_then(
            |name: String, q: RenderQuery, state: Arc<State>| async move {
                let overlay = state.overlays.get(&name).ok_or_else(|| no_overlay(&name))?;
                let wanted: Vec<u64> = q
                    .ids
                    .split(',')
                    .filter_map(|s| s.parse().ok())
                    .take(500)
                    .collect();
                let items =
                    state
                        .bus
                        .recent_where(&overlay.config.channel, state.config.history, |id| {
                            wanted.contains(&id)
                        });
                let out: BTreeMap<String, String> = items
                    .iter()
                    .map(|item| {
                        let html = overlay.html(&item.event, &state.overlays.shared);
                        (item.event.id.to_string(), html)
                    })
                    .collect();
                Ok::<_, warp::Rejection>(json_reply(StatusCode::OK, &json!(out)))
            },
        )
        .boxed()
}

/// GET /o/{name}/samples — sample events of every kind the overlay shows, rendered by its
/// theme: what the dashboard's preview of an overlay shows before anything happened.
fn samples(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("o" / String / "samples")
        .and(warp::get())
        .and(with_state(state))
        .and_then(|name: String, state: Arc<State>| async move {
            let overlay = state.overlays.get(&name).ok_or_else(|| no_overlay(&name))?;
            let mut out = Vec::new();
            let chatters = ["Ann", "Bob", "Cleo", "Dmitri"];
            for kind in crate::event::Kind::ALL {
                if !overlay.config.kinds.contains(kind)
                    || matches!(
                        kind,
                        crate::event::Kind::ChatDelete | crate::event::Kind::ChatClear
                    )
                {
                    continue;
                }
                let copies = if kind == crate::event::Kind::ChatMessage {
                    chatters.len()
                } else {
                    1
                };
                for (n, who) in chatters.iter().take(copies).enumerate() {
                    let mut event = crate::overlay::sample(kind);
                    event.channel = overlay.config.channel.clone();
                    event.id = (out.len() + n + 1) as u64;
                    if kind == crate::event::Kind::ChatMessage {
                        event.data["author"]["display_name"] = json!(who);
                        event.data["author"]["login"] = json!(who.to_lowercase());
                        let text = format!("Hello from {who}!");
                        event.data["text"] = json!(text);
                        event.data["elements"] = json!([{"type": "text", "value": text}]);
                    }
                    let html = overlay.html(&event, &state.overlays.shared);
                    if !html.is_empty() {
                        let mut v = json!(event);
                        v["html"] = json!(html);
                        out.push(v);
                    }
                }
            }
            Ok::<_, warp::Rejection>(json_reply(StatusCode::OK, &json!(out)))
        })
        .boxed()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BacklogQuery {
    since: u64,
}

/// GET /o/{name}/backlog?since=ID — the frames an overlay would have been sent after `since`
/// that history still holds (at most [`MAX_BACKLOG`], the newest), as a JSON array. A page on
/// the shared multiplexed stream catches up with this in one short request.
fn backlog(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("o" / String / "backlog")
        .and(warp::get())
        .and(warp::query::<BacklogQuery>())
        .and(with_state(state))
        .and_then(
            |name: String, q: BacklogQuery, state: Arc<State>| async move {
                let overlay = state.overlays.get(&name).ok_or_else(|| no_overlay(&name))?;
                let mut frames: Vec<bytes::Bytes> = state
                    .bus
                    .recent_where(&overlay.config.channel, state.config.history, |id| {
                        id > q.since
                    })
                    .iter()
                    .filter(|i| overlay.wants(&i.event))
                    .take(MAX_BACKLOG)
                    .map(|i| overlay.frame(i, &state.overlays.shared))
                    .collect();
                frames.reverse();
                let mut body = Vec::from(&b"["[..]);
                // Each frame's JSON is already made: the backlog is those, in a list.
                for (n, json) in frames
                    .iter()
                    .filter_map(|f| crate::frame::json_of(f))
                    .enumerate()
                {
                    if n > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(json);
                }
                body.push(b']');
                let mut res = Response::new(body.into());
                res.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                Ok::<_, warp::Rejection>(res)
            },
        )
        .boxed()
}

/// GET /assets/{file}
fn assets() -> BoxedFilter<(Response,)> {
    warp::path!("assets" / String)
        .and(warp::get())
        .and_then(|file: String| async move {
            let (_, content_type, body) = ASSETS
                .iter()
                .find(|(name, _, _)| *name == file)
                .ok_or_else(warp::reject::not_found)?;
            let mut res = Response::new((*body).into());
            res.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            Ok::<_, warp::Rejection>(res)
        })
        .boxed()
}

/// GET /themes/{theme}/static/{path..} — answers `Range` (Chromium asks for parts of the
/// audio and video an alert plays).
fn theme_asset(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path("themes")
        .and(warp::path::param::<String>())
        .and(warp::path("static"))
        .and(warp::path::tail())
        .and(warp::get())
        .and(warp::header::optional::<String>("range"))
        .and(with_state(state))
        .and_then(
            |theme: String, tail: warp::path::Tail, range: Option<String>, state: Arc<State>| async move {
                let path = percent_decode(tail.as_str());
                // Off the runtime threads: finding a file blocks.
                let themes = state.themes.clone();
                let asset = tokio::task::spawn_blocking(move || themes.asset(&theme, &path))
                    .await
                    .ok()
                    .flatten()
                    .ok_or_else(warp::reject::not_found)?;
                Ok::<_, warp::Rejection>(asset_reply(asset, range.as_deref(), "no-cache").await)
            },
        )
        .boxed()
}

/// GET /themes/{theme}/sound/{kind} — the alert sound for an event kind, in one request.
fn theme_sound(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("themes" / String / "sound" / String)
        .and(warp::get())
        .and(warp::header::optional::<String>("range"))
        .and(with_state(state))
        .and_then(
            |theme: String, kind: String, range: Option<String>, state: Arc<State>| async move {
                let themes = state.themes.clone();
                let asset = tokio::task::spawn_blocking(move || themes.sound(&theme, &kind))
                    .await
                    .ok()
                    .flatten()
                    .ok_or_else(warp::reject::not_found)?;
                Ok::<_, warp::Rejection>(asset_reply(asset, range.as_deref(), "no-cache").await)
            },
        )
        .boxed()
}

/// The byte range `[start, end]` a `Range: bytes=…` header asks of `len` bytes: `None` for
/// the whole file, `Err` when no part of it can be given (416). One range only; a list
/// gets the whole file.
fn byte_range(header: Option<&str>, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(s), Some(e)) => (s, e.min(len.saturating_sub(1))),
        (Some(s), None) if b.is_empty() => (s, len.saturating_sub(1)),
        (None, Some(n)) if a.is_empty() && n > 0 => (len.saturating_sub(n), len.saturating_sub(1)),
        _ => return Err(()),
    };
    if len == 0 || start > end || start >= len {
        return Err(());
    }
    Ok(Some((start, end)))
}

/// An asset as a response: streamed from disk in chunks (never read whole), or a part of it
/// when a range was asked.
async fn asset_reply(
    asset: crate::theme::Asset,
    range: Option<&str>,
    cache: &'static str,
) -> Response {
    use crate::theme::Body as Source;
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let len = match &asset.body {
        Source::Builtin(b) => b.len() as u64,
        Source::File { len, .. } => *len,
    };
    let part = match byte_range(range, len) {
        Ok(p) => p,
        Err(()) => {
            let mut res = Response::new(bytes::Bytes::new().into());
            *res.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return res;
        }
    };
    let (start, end) = part.unwrap_or((0, len.saturating_sub(1)));
    let count = if len == 0 { 0 } else { end - start + 1 };
    let mut res = match asset.body {
        Source::Builtin(b) => {
            let slice = b
                .get(start as usize..(start + count) as usize)
                .unwrap_or_default();
            Response::new(bytes::Bytes::from_static(slice).into())
        }
        Source::File { path, .. } => {
            let Ok(mut file) = tokio::fs::File::open(&path).await else {
                let mut res = Response::new(bytes::Bytes::new().into());
                *res.status_mut() = StatusCode::NOT_FOUND;
                return res;
            };
            if start > 0 && file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
                let mut res = Response::new(bytes::Bytes::new().into());
                *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                return res;
            }
            let body = tokio_util::io::ReaderStream::with_capacity(file.take(count), 64 * 1024);
            warp::reply::Reply::into_response(warp::reply::stream(body))
        }
    };
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&count.to_string()) {
        h.insert(header::CONTENT_LENGTH, v);
    }
    if part.is_some() {
        *res.status_mut() = StatusCode::PARTIAL_CONTENT;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
            res.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    res
}

/// `%2e%2e` is `..` too: decode before the path check sees it.
fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// GET /
fn dashboard(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path::end()
        .and(warp::get())
        .and(super::access::read_guard(state.access.clone()))
        .and(with_state(state))
        .map(|state: Arc<State>| html(dashboard_page(&state)))
        .boxed()
}

/// The dashboard at `/`: every overlay with its OBS URL and size, a live preview, test buttons
/// and the state of every source and theme.
pub fn dashboard_page(state: &State) -> String {
    use crate::theme::helpers::escape;
    let mut cards = String::new();
    for o in state
        .overlays
        .all()
        .iter()
        .filter(|o| !o.config.is_viewer())
    {
        let c = &o.config;
        let error = state
            .themes
            .error(&c.theme)
            .map(|e| {
                format!(
                    r#"<div class="theme-error">{}</div>"#,
                    escape(&e.to_string())
                )
            })
            .unwrap_or_default();
        cards.push_str(&format!(
            r#"<section class="card" data-overlay="{name}" data-kind="{kind}" data-channel="{channel}">
  <header><h2>{title}</h2><span class="tag">{kind}</span><span class="tag">#{channel}</span><span class="tag">theme: {theme}</span><button class="edit" data-overlay="{name}">Edit</button></header>
  <div class="url"><input readonly value="" data-path="/o/{name}"><button class="copy">Copy URL</button></div>
  <p class="size">Browser source size: <b>{w} × {h}</b></p>
  {error}
  {controls}
  <div class="preview" style="aspect-ratio: {w} / {h}"><iframe src="/o/{name}?preview=1" title="{title} preview" data-w="{w}" data-h="{h}"></iframe></div>
</section>
"#,
            name = escape(&c.name),
            kind = c.kind.as_str(),
            channel = escape(&c.channel),
            title = escape(&c.title),
            theme = escape(&c.theme),
            w = c.size.0,
            h = c.size.1,
            controls = if c.kind == crate::overlay::OverlayKind::Alerts {
                alert_controls(&c.name, &c.channel)
            } else {
                widget_controls(c)
            },
        ));
    }
    let mut alerts = String::new();
    for channel in state.overlays.channels() {
        let has_alerts = state.overlays.all().iter().any(|o| {
            o.config.kind == crate::overlay::OverlayKind::Alerts && o.config.channel == channel
        });
        let channel = escape(&channel);
        let safe = if has_alerts {
            format!(
                r#"<div class="safe-banner" data-channel="{channel}" hidden></div>
  <div class="buttons"><button class="safe-mode" data-channel="{channel}" title="Clears queued alerts and the chat overlays, stops follow alerts for a while">Safe mode</button><button class="safe-end" data-channel="{channel}" hidden>End safe mode</button></div>"#
            )
        } else {
            String::new()
        };
        alerts.push_str(&format!(
            r#"<section class="panel channel" data-channel="{channel}" data-alerts-channel="{has_alerts}">
  <h2>#{channel}: recent events</h2>
  {safe}
  <div class="session" data-channel="{channel}"><p class="session-line muted">…</p><button class="session-reset" data-channel="{channel}" title="Empties the labels, the credits and the session's counts">Start a new session</button></div>
  <ul class="recent" data-channel="{channel}"><li class="muted">…</li></ul>
</section>
"#
        ));
    }
    let buttons: String = crate::event::Kind::ALL
        .iter()
        .map(|k| format!(r#"<button class="test" data-kind="{k}">{k}</button>"#))
        .collect();
    let kind_options: String = crate::overlay::OverlayKind::ALL
        .iter()
        .map(|k| format!("<option>{}</option>", k.as_str()))
        .collect();
    let theme_options: String = state
        .themes
        .names()
        .iter()
        .map(|t| format!("<option>{}</option>", escape(t)))
        .collect();
    let default_channel = escape(&state.config.default_channel());
    let channels: String = state
        .overlays
        .channels()
        .iter()
        .map(|c| format!(r#"<option>{}</option>"#, escape(c)))
        .collect();
    format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>overlayd dashboard</title><link rel="stylesheet" href="/assets/dashboard.css"></head>
<body>
<header class="top"><h1>overlayd</h1><span id="health" class="health">…</span></header>
<main>
<section class="panel">
  <h2>Send a test event</h2>
  <label>Channel <select id="test-channel">{channels}</select></label>
  <div class="buttons">{buttons}</div>
  <p id="test-result" class="muted"></p>
</section>
<section class="panel" id="twitch"><h2>Twitch</h2>
  <p id="twitch-state" class="muted">…</p>
  <div class="buttons">
    <button id="twitch-device">Log in with Twitch</button>
    <a id="twitch-browser" class="button" href="/auth/login" hidden>Log in in this browser</a>
    <button id="twitch-logout" hidden>Log out</button>
  </div>
  <p id="twitch-code" class="code" hidden></p>
</section>
<section class="panel"><h2>Sources</h2><ul id="sources" class="sources"></ul><div id="errors"></div></section>
<div class="cards">{cards}</div>
{alerts}
<section class="panel" id="rehearse"><h2>Rehearse with a recording</h2>
  <p class="muted">Plays a stream's events again, with their gaps, into a channel: a bundled sample or an export (<code>overlayd export</code>, or Export below). Replayed events alert and show; they count in no stat or goal unless you tick the box.</p>
  <form class="rehearse">
    <label>Recording <select name="source"></select></label>
    <input type="file" name="file" accept=".jsonl,.json,.txt" hidden>
    <label>Into channel <input name="channel" value="{default_channel}"></label>
    <label>Speed <select name="speed"><option>0.5</option><option selected>1</option><option>2</option><option>4</option><option>10</option></select></label>
    <label><input type="checkbox" name="loop"> loop</label>
    <label><input type="checkbox" name="counted"> count in stats and goals</label>
    <button type="submit">Play</button><button type="button" data-do="pause">Pause</button><button type="button" data-do="resume">Resume</button><button type="button" data-do="stop">Stop</button>
    <a class="button export" href="/api/channels/{default_channel}/export" download>Export #{default_channel}</a>
  </form>
  <progress class="replay-progress" max="1" value="0"></progress> <span class="replay-status muted">idle</span>
</section>
<section class="panel" id="new-overlay"><h2>New overlay</h2>
  <form class="new-overlay">
    <label>Name <input name="name" required pattern="[A-Za-z0-9_-]+" placeholder="my-alerts"></label>
    <label>Kind <select name="kind">{kind_options}</select></label>
    <label>Channel <input name="channel" value="{default_channel}"></label>
    <label>Theme <select name="theme">{theme_options}</select></label>
    <button type="submit">Create</button> <span class="error" data-error-for="name"></span>
  </form>
</section>
<section class="panel" id="editor" hidden></section>
</main>
<script src="/assets/dashboard.js"></script>
</body></html>
"#
    )
}

/// The queue of alert overlay `name`: what plays, what waits, and the buttons (filled in and
/// kept current by dashboard.js).
/// The buttons of a widget overlay's card: a counter's steps, a timer's start, pause and
/// added time, a session's reset; and the preview with a made-up session. Each is the HTTP API.
fn widget_controls(c: &crate::overlay::OverlayConfig) -> String {
    use crate::overlay::OverlayKind;
    use crate::theme::helpers::escape;
    let button = |op: &str, label: &str, seconds: Option<i32>| {
        let seconds = seconds.map_or(String::new(), |s| format!(r#" data-seconds="{s}""#));
        format!(r#"<button data-op="{op}"{seconds}>{label}</button>"#)
    };
    let (widget, name, buttons) = match c.kind {
        OverlayKind::Counter => (
            "counter",
            c.options["counter"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            [
                button("subtract", "−1", None),
                button("add", "+1", None),
                button("reset", "Reset", None),
            ]
            .concat(),
        ),
        OverlayKind::Timer => (
            "timer",
            c.name.clone(),
            [
                button("start", "Start", None),
                button("pause", "Pause", None),
                button("add", "+1 min", Some(60)),
                button("add", "−1 min", Some(-60)),
                button("reset", "Reset", None),
            ]
            .concat(),
        ),
        OverlayKind::Labels | OverlayKind::Credits => (
            "session",
            String::new(),
            button("reset", "Start a new session", None),
        ),
        _ => return String::new(),
    };
    format!(
        r#"<div class="widget-controls" data-widget="{widget}" data-channel="{channel}" data-name="{name}">
    <div class="buttons">{buttons}<label><input type="checkbox" class="sample-toggle"> preview with sample data</label></div>
    <p class="value muted"></p>
  </div>"#,
        channel = escape(&c.channel),
        name = escape(&name),
    )
}

fn alert_controls(name: &str, channel: &str) -> String {
    use crate::theme::helpers::escape;
    let button = |action: &str, label: &str, hidden: bool| {
        format!(
            r#"<button data-action="{action}"{}>{label}</button>"#,
            if hidden { " hidden" } else { "" }
        )
    };
    format!(
        r#"<div class="alert-queue" data-alerts="{name}" data-channel="{channel}">
    <p class="state-line muted">…</p>
    <div class="playing muted"></div>
    <ol class="queued"></ol>
    <div class="buttons">{}{}{}{}{}{}{}</div>
  </div>"#,
        button("pause", "Pause", false),
        button("resume", "Resume", true),
        button("skip", "Skip", false),
        button("clear", "Clear queue", false),
        button("mute", "Mute", false),
        button("unmute", "Unmute", true),
        button("replay", "Replay last", false),
        name = escape(name),
        channel = escape(channel),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_scripts_listen_for_every_event_kind() {
        // EventSource hears only the event names it listens for: a kind missing from these
        // lists would never reach a page.
        for script in [
            include_str!("assets/overlay.js"),
            include_str!("assets/stream-worker.js"),
        ] {
            for kind in crate::event::Kind::ALL {
                assert!(script.contains(&format!("\"{kind}\"")), "{kind}");
            }
        }
    }

    #[test]
    fn byte_ranges() {
        assert_eq!(byte_range(None, 100), Ok(None));
        assert_eq!(byte_range(Some("bytes=10-19"), 100), Ok(Some((10, 19))));
        assert_eq!(byte_range(Some("bytes=90-"), 100), Ok(Some((90, 99))));
        assert_eq!(byte_range(Some("bytes=-5"), 100), Ok(Some((95, 99))));
        assert_eq!(byte_range(Some("bytes=50-500"), 100), Ok(Some((50, 99))));
        assert_eq!(
            byte_range(Some("bytes=0-1, 5-6"), 100),
            Ok(None),
            "a list: all"
        );
        for bad in ["bytes=100-", "bytes=20-10", "bytes=x-y", "bytes=-0"] {
            assert_eq!(byte_range(Some(bad), 100), Err(()), "{bad}");
        }
    }

    #[test]
    fn percent_decoding_reveals_dot_dot() {
        assert_eq!(super::percent_decode("%2e%2e/x"), "../x");
        assert_eq!(super::percent_decode("a%2"), "a%2");
        assert_eq!(super::percent_decode("img/a.png"), "img/a.png");
    }
}
