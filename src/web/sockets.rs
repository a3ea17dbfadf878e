//! WebSockets for other tools: the chat protocol (see [`super::chat_protocol`]) on `/` and
//! `/ws`, and overlayd's own events socket on `/api/ws`.
//!
//! The accept loop hands an upgrade of these paths here with the request head it read
//! ([`upgrade`]); the handshake and the socket are tungstenite's with a small read buffer (the
//! default 128 KiB per connection would be most of an idle client's cost).
//!
//! Reading is as open as the overlay streams. What changes state (publishing, commands) follows
//! the one access rule, decided at the upgrade from the request's `Host`, `Origin`, peer and
//! token: a page of another site can open a socket and read, never publish. Every socket ends
//! at shutdown; frames over [`MAX_FRAME`] close it, malformed ones get an `error`.

use std::sync::Arc;
use std::time::Duration;

use std::net::IpAddr;

use futures_util::{FutureExt, SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::access::Asking;
use super::chat_feed::{ChatFeed, text_frame};
use super::chat_protocol::{self as proto, Code, Following, IdentifierType, Request};
use super::fanout::{Feed as _, Ready, write_all};
use super::state::State;
use crate::bus::{self, Next, Subscription};
use crate::channels::Lease;
use crate::event::{Event, KindSet, Platform, normalize_channel, valid_channel};
use crate::platforms::Link;
use crate::platforms::youtube::page::Target;

/// Largest frame a client may send: commands and published events are small.
pub const MAX_FRAME: usize = 64 * 1024;
/// Chats one connection may follow at once.
pub const MAX_CHATS: usize = 8;
/// Bytes a client may have queued unread before it is dropped (it stopped reading).
const MAX_QUEUED: usize = 1024 * 1024;
/// A client has this long to finish the WebSocket handshake.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// How often at most a chat's stats are pushed (when they changed).
const STATS_EVERY: Duration = Duration::from_secs(1);
/// How long a closing handshake may take at the end.
const CLOSING: Duration = Duration::from_secs(2);

/// Which of our sockets an upgrade asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    Chat,
    Events,
}

/// A WebSocket upgrade of one of our paths, with who asks.
#[derive(Debug, Clone)]
pub struct Upgrade {
    pub wanted: Wanted,
    pub asking: Asking,
}

/// The upgrade a request head asks for: `GET /`, `/ws` or `/api/ws` (any query) with
/// `Upgrade: websocket`. Anything else is for the HTTP routes. Boxed: a connection's task
/// keeps room for it for as long as the socket is open, and a pointer is less room.
pub fn upgrade(head: &[u8], peer: IpAddr) -> Option<Box<Upgrade>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    if !matches!(req.parse(head), Ok(httparse::Status::Complete(_))) || req.method != Some("GET") {
        return None;
    }
    let path = req.path?.split('?').next()?;
    let wanted = match path {
        "/" | "/ws" => Wanted::Chat,
        "/api/ws" => Wanted::Events,
        _ => return None,
    };
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::to_string)
    };
    if !header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
        return None;
    }
    Some(Box::new(Upgrade {
        wanted,
        asking: Asking {
            peer: Some(peer),
            forwarded: header("x-forwarded-for"),
            authorization: header("authorization"),
            origin: header("origin"),
            host: header("host"),
        },
    }))
}

/// Completes the handshake on `stream` (which starts with the request head, and reads and
/// writes `tcp`) and serves the socket until the client leaves or shutdown. Who asks is
/// weighed before the handshake, and `up` freed: what stays in an open socket's task is what
/// its session uses.
pub async fn serve<S>(stream: S, tcp: Arc<TcpStream>, up: Box<Upgrade>, state: Arc<State>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let wanted = up.wanted;
    let may_change = wanted == Wanted::Events && state.access.allow(&up.asking.caller()).is_ok();
    drop(up);
    // A client sends a few small requests: 256-byte reads (a larger frame grows the buffer as
    // it needs) rather than tungstenite's 128 KiB, which would be most of an idle client's
    // cost. The buffer is held from the handshake on.
    let config = WebSocketConfig::default()
        .read_buffer_size(256)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_QUEUED)
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME));
    // Boxed: a handshake's state (its timer, the request read) would otherwise stay inline in
    // every open socket's task.
    let handshake = tokio_tungstenite::accept_async_with_config(stream, Some(config));
    let Ok(Ok(socket)) = Box::pin(tokio::time::timeout(HANDSHAKE, handshake)).await else {
        return;
    };
    match wanted {
        Wanted::Chat => {
            // Split here: a session's arguments stay in its task whole for as long as it runs.
            let (tx, rx) = socket.split();
            chat_session(tx, rx, tcp, state).await
        }
        // Boxed: the chat sessions, by far the more, would otherwise have room for it.
        Wanted::Events => Box::pin(events_session(socket, state, may_change)).await,
    }
}

type Sink<S> = futures_util::stream::SplitSink<WebSocketStream<S>, Message>;

/// Sends `value` as a text frame; `false` once the client is gone.
async fn send<S: AsyncRead + AsyncWrite + Unpin>(tx: &mut Sink<S>, value: &Value) -> bool {
    tx.send(Message::text(value.to_string())).await.is_ok()
}

/// The subscription's next message; without one, never.
async fn next_message(sub: Option<&mut Subscription>, bus: &crate::bus::Bus) -> Next {
    match sub {
        Some(s) => s.next(bus).await,
        None => std::future::pending().await,
    }
}

/// The text of a client's frame; `None` when the socket is over (closed, failed, too big).
fn text_of(
    frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Option<Option<String>> {
    match frame {
        Some(Ok(Message::Text(t))) => Some(Some(t.to_string())),
        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => None,
        Some(Ok(_)) => Some(None),
    }
}

/// One chat a chat-protocol connection follows.
struct Chat {
    platform: Platform,
    identifier: String,
    /// Our channel its messages are published on.
    channel: String,
    /// Its reader's name on the status board (none for Twitch: one reader reads every chat).
    source: Option<String>,
    _lease: Lease,
    /// Keeps its stats pushed when they change ([`push_stats`]).
    stats: Following,
    started: bool,
    told: Option<&'static str>,
}

/// What a chat-protocol client asked to follow, as a chat; or the error to answer.
async fn open_chat(
    state: &State,
    identifier: &str,
    kind: IdentifierType,
    platform: &str,
) -> Result<Chat, Value> {
    let not_found = |why: String| proto::error(Code::StreamNotFound, &why, Some(identifier));
    let full =
        |e: crate::platforms::DemandError| proto::error(Code::TooManyChats, &e.to_string(), None);
    let (platform, link): (Platform, Link) = match platform {
        "twitch" => {
            let login = normalize_channel(identifier.trim_start_matches('@'));
            if !valid_channel(&login) {
                return Err(not_found(format!("\"{identifier}\" is not a Twitch login")));
            }
            if state.auth.channel_exists(&login).await == Some(false) {
                return Err(not_found(format!("Twitch has no channel \"{login}\"")));
            }
            let lease = state.channels.lease(std::slice::from_ref(&login));
            let stats = state.chat_stats.follow(&login, Platform::Twitch);
            return Ok(Chat {
                platform: Platform::Twitch,
                identifier: login.clone(),
                channel: login,
                source: None,
                _lease: lease,
                stats,
                started: false,
                told: None,
            });
        }
        "youtube" => {
            let target = match kind {
                IdentifierType::Username => format!("@{}", identifier.trim_start_matches('@')),
                IdentifierType::ChannelId | IdentifierType::LiveId => identifier.to_string(),
            };
            if Target::parse(&target).is_none() {
                return Err(not_found(format!(
                    "\"{identifier}\" is not a YouTube {}",
                    match kind {
                        IdentifierType::Username => "handle",
                        IdentifierType::ChannelId => "channel id (UC…)",
                        IdentifierType::LiveId => "video id",
                    }
                )));
            }
            (Platform::Youtube, state.links.youtube(&target))
        }
        "kick" => {
            let slug = identifier.trim().to_ascii_lowercase();
            if !crate::platforms::settings::valid_slug(&slug) {
                return Err(not_found(format!("\"{identifier}\" is not a Kick channel")));
            }
            (Platform::Kick, state.links.kick(&slug))
        }
        "tiktok" => {
            let name = identifier
                .trim()
                .trim_start_matches('@')
                .to_ascii_lowercase();
            if !crate::platforms::settings::valid_unique_id(&name) {
                return Err(not_found(format!("\"{identifier}\" is not a TikTok @name")));
            }
            (Platform::Tiktok, state.links.tiktok(&name))
        }
        other => {
            return Err(proto::error(
                Code::UnsupportedPlatform,
                "platforms are twitch, youtube, kick, tiktok",
                Some(other),
            ));
        }
    };
    let channel = link.channel().to_string();
    // Leased first: a link whose channel nobody wants is forgotten at once.
    let lease = state.channels.lease(std::slice::from_ref(&channel));
    state.links.start(&link).map_err(full)?;
    let stats = state.chat_stats.follow(&channel, platform);
    Ok(Chat {
        platform,
        identifier: identifier.to_string(),
        _lease: lease,
        channel,
        source: Some(link.source()),
        stats,
        started: false,
        told: None,
    })
}

/// What a chat's reader state means for its client: a status or an error to send (once per
/// change), and whether the chat is over.
fn reader_news(state: &State, chat: &mut Chat) -> (Option<Value>, bool) {
    let Some(source) = &chat.source else {
        if chat.started {
            return (None, false);
        }
        chat.started = true;
        return (Some(proto::started(&chat.channel)), false);
    };
    let Some(s) = state.status.get(source) else {
        return (None, false);
    };
    let news = match s.state.as_str() {
        "connected" if !chat.started => {
            chat.started = true;
            chat.told = None;
            let live = s.live.clone().unwrap_or_else(|| chat.identifier.clone());
            return (Some(proto::started(&live)), false);
        }
        "connected" => None,
        "offline" | "upcoming" => Some((Code::StreamNotLive, "the stream is not live")),
        "ended" => Some((Code::StreamEnded, "the stream ended")),
        "not-found" => {
            return (
                Some(proto::error(
                    Code::StreamNotFound,
                    &s.detail,
                    Some(&chat.identifier),
                )),
                true,
            );
        }
        _ => None,
    };
    match news {
        Some((code, text)) if chat.told != Some(code.as_str()) => {
            chat.told = Some(code.as_str());
            chat.started = false;
            (Some(proto::error(code, text, Some(&s.detail))), false)
        }
        _ => (None, false),
    }
}

/// Keeps the stats of every followed chat whose message count changed, at most once per
/// [`STATS_EVERY`]: made once per chat into its slot, which its clients' feeds write with
/// their next chat message ([`proto::StatsCache::tick`]). A chat gone quiet has them put on
/// the bus, for the fan-out writers to write to the clients not yet told (a client's task does
/// not wake for it).
pub async fn push_stats(state: Arc<State>) {
    let mut tick = tokio::time::interval(STATS_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.shutdown.cancelled() => return,
        }
        let shared = &state.overlays.shared;
        for quiet in state
            .chat_stats
            .tick(&shared.stats, |t| text_frame(t.as_bytes()))
        {
            state.bus.announce(bus::Message::ChatStats {
                channel: quiet.channel,
                platform: quiet.platform,
                version: quiet.version,
                frame: quiet.frame,
            });
        }
    }
}

/// A feed of the chat messages of `chats` after event `since`.
fn feed_of(state: &State, chats: &[Chat], since: u64) -> Option<Box<ChatFeed>> {
    let followed = chats
        .iter()
        .map(|c| (c.channel.clone(), c.platform, c.stats.slot().clone()))
        .collect();
    ChatFeed::new(&state.bus, followed, since).map(Box::new)
}

/// What woke a chat session.
enum Wake {
    /// A frame from the client (`None`: it left).
    Frame(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    /// The reader board changed (`false`: it is gone, shutdown).
    Status(bool),
    Shutdown,
}

/// A chat-protocol connection. Its chat messages are whole WebSocket frames made once per
/// event ([`ChatFeed`]) and written to the socket as they are, by this task or, while it waits
/// with nothing else to do, by a fan-out writer. Everything else (answers, status, stats)
/// goes through tungstenite, which is flushed before any frame is written beside it and only
/// used while no writer has the socket.
async fn chat_session<S: AsyncRead + AsyncWrite + Unpin + Send>(
    mut tx: Sink<S>,
    mut rx: futures_util::stream::SplitStream<WebSocketStream<S>>,
    tcp: Arc<TcpStream>,
    state: Arc<State>,
) {
    // Room for one: most tools follow one chat, and a `Vec` makes room for four at its first.
    let mut chats: Vec<Chat> = Vec::with_capacity(1);
    // Boxed: the task holds it in more than one place across its waits.
    let mut feed: Option<Box<ChatFeed>> = None;
    let mut status = state.status.watch();
    loop {
        // A frame the client already sent comes first; then what the feed has ready.
        let wake = if let Some(frame) = rx.next().now_or_never() {
            Wake::Frame(frame)
        } else if let Some(mut f) = feed.take() {
            // Read before the feed is found empty: every message sent after is a beat after.
            let drained = state.fanout.beats();
            match f.ready() {
                Ready::Frames { bytes, .. } => {
                    feed = Some(f);
                    if !write_frames(&mut tx, &tcp, &bytes, &state).await {
                        break;
                    }
                    continue;
                }
                Ready::End(bytes) => {
                    if let Some(bytes) = bytes {
                        write_frames(&mut tx, &tcp, &bytes, &state).await;
                    }
                    break;
                }
                Ready::Idle => {}
            }
            // Nothing of tungstenite's half written under the writer's frames.
            if tx.flush().await.is_err() {
                break;
            }
            let parking = state.fanout.park(drained, tcp.clone(), f);
            let (wake, back) = tokio::select! {
                back = parking.returned() => (None, back),
                _ = tcp.readable() => (None, parking.take_back()),
                changed = status.changed() => (Some(Wake::Status(changed.is_ok())), parking.take_back()),
                _ = state.shutdown.cancelled() => (Some(Wake::Shutdown), parking.take_back()),
            };
            feed = Some(back.feed);
            if let Some(bytes) = back.pending
                && !write_frames(&mut tx, &tcp, &bytes, &state).await
            {
                break;
            }
            if back.end {
                break;
            }
            // Handed back, or the client sent something: the loop reads it first.
            match wake {
                Some(wake) => wake,
                None => continue,
            }
        } else {
            tokio::select! {
                frame = rx.next() => Wake::Frame(frame),
                changed = status.changed() => Wake::Status(changed.is_ok()),
                _ = state.shutdown.cancelled() => Wake::Shutdown,
            }
        };
        // What to answer, as the messages' texts.
        let mut out: Vec<String> = Vec::new();
        let before = chats.len();
        match wake {
            Wake::Shutdown | Wake::Status(false) => break,
            Wake::Frame(frame) => {
                let text = match text_of(frame) {
                    Some(Some(t)) => t,
                    Some(None) => continue,
                    None => break,
                };
                match proto::parse(&text) {
                    // Boxed: following a chat may ask Twitch whether it exists, and that
                    // request's state inline would sit in every idle client's task.
                    Ok(request) => Box::pin(answer(&state, request, &mut chats, &mut out)).await,
                    Err(e) => out.push(e.to_string()),
                }
            }
            Wake::Status(true) => chats.retain_mut(|chat| {
                let (news, over) = reader_news(&state, chat);
                out.extend(news.map(|n| n.to_string()));
                !over
            }),
        }
        // Most state changes are of other sources: a new feed only when the chats changed,
        // going on where the last one was, or from now for a connection's first chat.
        if chats.len() != before {
            let since = match &feed {
                Some(f) => f.last_id(),
                None => state.bus.next_id().saturating_sub(1),
            };
            feed = feed_of(&state, &chats, since);
        }
        for text in out {
            if tx.send(Message::text(text)).await.is_err() {
                return;
            }
        }
    }
    drop(feed);
    let _ = Box::pin(tokio::time::timeout(CLOSING, tx.close())).await;
}

/// Answers a chat-protocol request, following or leaving a chat.
async fn answer(state: &State, request: Request, chats: &mut Vec<Chat>, out: &mut Vec<String>) {
    match request {
        Request::Subscribe {
            identifier,
            identifier_type,
            platform,
        } => {
            if chats.len() >= MAX_CHATS {
                let full =
                    format!("one connection follows at most {MAX_CHATS} chats; unsubscribe first");
                out.push(proto::error(Code::TooManySubscriptions, &full, None).to_string());
                return;
            }
            match open_chat(state, &identifier, identifier_type, &platform).await {
                Ok(mut chat) => {
                    out.push(proto::subscribed(&chat.identifier).to_string());
                    if let (Some(news), _) = reader_news(state, &mut chat) {
                        out.push(news.to_string());
                    }
                    // Where the chat stands now, made once for all who follow it within a
                    // second, as the pushes are; from here on, each change is pushed.
                    let shared = &state.overlays.shared;
                    let platform = chat.platform.as_str();
                    let (messages, stats) =
                        state.chat_stats.get(&shared.stats, &chat.channel, platform);
                    if messages > 0 {
                        out.push(stats.to_string());
                    }
                    chats.push(chat);
                }
                Err(e) => out.push(e.to_string()),
            }
        }
        Request::Unsubscribe => match chats.pop() {
            Some(_) => out.push(proto::unsubscribed().to_string()),
            None => out.push(no_chat().to_string()),
        },
        Request::GetStats => match chats.last() {
            Some(chat) => out.push(chat_stats(state, chat).to_string()),
            None => out.push(no_chat().to_string()),
        },
    }
}

/// Writes whole chat frames straight to the socket, after anything tungstenite still holds;
/// `false` once the client is gone or at shutdown. Boxed: the wait on a slow client is room
/// every idle client's task would keep.
fn write_frames<'a, S: AsyncRead + AsyncWrite + Unpin + Send>(
    tx: &'a mut Sink<S>,
    tcp: &'a TcpStream,
    bytes: &'a [u8],
    state: &'a State,
) -> std::pin::Pin<Box<impl Future<Output = bool> + Send + 'a>> {
    Box::pin(async move {
        if tx.flush().await.is_err() {
            return false;
        }
        tokio::select! {
            written = write_all(tcp, bytes) => written.is_ok(),
            _ = state.shutdown.cancelled() => false,
        }
    })
}

fn no_chat() -> Value {
    proto::error(
        Code::NoActiveChat,
        "no chat on this connection; subscribe first",
        None,
    )
}

fn chat_stats(state: &State, chat: &Chat) -> Value {
    let snapshot = state.overlays.shared.stats.snapshot_of(
        &chat.channel,
        Some(chat.platform.as_str()),
        proto::MAX_USERS,
    );
    proto::stats(&snapshot)
}

/// What an events-socket client sends.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum EventsRequest {
    /// Follow these channels (only these kinds, when given), after `since` when given.
    Subscribe {
        channels: Vec<String>,
        #[serde(default)]
        kinds: Option<Vec<String>>,
        #[serde(default)]
        since: Option<u64>,
    },
    /// Publish an event, as `POST /api/events` does; `ref` comes back with the answer.
    Publish {
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
        #[serde(flatten)]
        event: serde_json::Map<String, Value>,
    },
    /// An alert command, as `POST /api/channels/<channel>/alerts/<action>`.
    Alerts {
        channel: String,
        action: String,
        #[serde(default)]
        overlay: Option<String>,
        #[serde(default)]
        id: Option<u64>,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    /// Safe mode on (`minutes`, or the configured length) or off (`"end": true`).
    SafeMode {
        channel: String,
        #[serde(default)]
        minutes: Option<f64>,
        #[serde(default)]
        end: bool,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    /// A counter op, as `POST /api/channels/<channel>/counters/<name>` (`op`, `value`).
    Counter {
        channel: String,
        name: String,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
        #[serde(flatten)]
        body: serde_json::Map<String, Value>,
    },
    /// A timer op, as `POST /api/channels/<channel>/timers/<name>` (`op`, `seconds`).
    Timer {
        channel: String,
        name: String,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
        #[serde(flatten)]
        body: serde_json::Map<String, Value>,
    },
    /// The channel's session; `"reset": true` starts it over.
    Session {
        channel: String,
        #[serde(default)]
        reset: bool,
        #[serde(default, rename = "ref")]
        reference: Option<Value>,
    },
    Ping,
}

fn events_error(code: &str, text: &str) -> Value {
    json!({"type": "error", "code": code, "error": text})
}

const READ_ONLY: &str = "this socket may read only: change things from this machine (no foreign Origin) or send the admin token with the upgrade";

fn may(may_change: bool) -> Result<(), Value> {
    if may_change {
        Ok(())
    } else {
        Err(events_error("FORBIDDEN", READ_ONLY))
    }
}

fn widget_error(e: crate::widgets::WidgetError) -> Value {
    let code = match e {
        crate::widgets::WidgetError::NoTimer { .. } => "NOT_FOUND",
        _ => "BAD_MESSAGE",
    };
    events_error(code, &e.to_string())
}

/// A channel a change was heard for: `None` when the sender is gone (the alerts and widgets
/// outlive every session, so the server is too); `Some(None)` when changes were missed (the
/// next one says the whole state again).
fn heard(
    changed: Result<String, tokio::sync::broadcast::error::RecvError>,
) -> Option<Option<String>> {
    match changed {
        Ok(channel) => Some(Some(channel)),
        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some(None),
        Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
    }
}

/// Whether the socket's subscription follows `channel`.
fn follows(sub: Option<&(Subscription, Option<KindSet>)>, channel: &str) -> bool {
    sub.is_some_and(|(s, _)| s.channels().iter().any(|c| c == channel))
}

/// What a widget message steers.
#[derive(Clone, Copy)]
enum Widget {
    Counter,
    Timer,
}

/// A counter's or timer's op from the events socket, as `POST /api/channels/<channel>/
/// counters/<name>` and `…/timers/<name>` take it: the answer (`type` "counter" or "timer"), or
/// the error to send.
fn widget_command(
    state: &State,
    may_change: bool,
    widget: Widget,
    channel: &str,
    name: &str,
    body: serde_json::Map<String, Value>,
) -> Value {
    let channel = normalize_channel(channel);
    let body = Value::Object(body);
    let bad = |e: String| events_error("BAD_MESSAGE", &e);
    let done = may(may_change).and_then(|()| match widget {
        Widget::Counter => {
            let op = crate::web::widgets::counter_op(&body).map_err(bad)?;
            state
                .widgets
                .counter(&channel, name, op)
                .map_err(widget_error)
        }
        Widget::Timer => {
            let op = crate::web::widgets::timer_op(&body).map_err(bad)?;
            state
                .widgets
                .timer(&channel, name, op)
                .map_err(widget_error)
        }
    });
    let kind = match widget {
        Widget::Counter => "counter",
        Widget::Timer => "timer",
    };
    done.map(|a| typed(kind, a)).unwrap_or_else(|e| e)
}

/// `answer` with its `type`.
fn typed(kind: &str, mut answer: Value) -> Value {
    answer["type"] = json!(kind);
    answer
}

fn alert_error(e: crate::alerts::AlertError) -> Value {
    let code = match e {
        crate::alerts::AlertError::BadMinutes => "BAD_MESSAGE",
        _ => "NOT_FOUND",
    };
    events_error(code, &e.to_string())
}

/// A channel's alert state as the events socket sends it (answers and changes alike).
fn alerts_message(mut state: Value) -> Value {
    state["type"] = json!("alerts");
    state
}

fn with_ref(mut answer: Value, reference: Option<Value>) -> Value {
    if let Some(r) = reference {
        answer["ref"] = r;
    }
    answer
}

/// An event as the events socket sends it: the SSE frame's JSON without the overlay's HTML.
pub fn event_message(e: &Event) -> Value {
    let mut v = json!({
        "type": "event", "id": e.id, "kind": e.kind, "channel": e.channel,
        "platform": e.platform, "at": e.at, "data": e.data,
    });
    if e.history {
        v["history"] = json!(true);
    }
    if e.replay {
        v["replay"] = json!(true);
    }
    v
}

async fn events_session<S: AsyncRead + AsyncWrite + Unpin + Send>(
    socket: WebSocketStream<S>,
    state: Arc<State>,
    may_change: bool,
) {
    let (mut tx, mut rx) = socket.split();
    let mut sub: Option<(Subscription, Option<KindSet>)> = None;
    let mut alert_changes = state.alerts.changes();
    let mut widget_changes = state.widgets.changes();
    loop {
        let next = next_message(sub.as_mut().map(|(s, _)| s), &state.bus);
        tokio::select! {
            _ = state.shutdown.cancelled() => break,
            changed = widget_changes.recv() => {
                // A subscriber of the channel hears of every change to its session, counters
                // and timers (at most a few times a second: the widgets gather changes).
                let Some(heard) = heard(changed) else { break };
                let Some(channel) = heard.filter(|c| follows(sub.as_ref(), c)) else { continue };
                if !send(&mut tx, &typed("widgets", state.widgets.state(&channel))).await {
                    break;
                }
            }
            changed = alert_changes.recv() => {
                // A subscriber of the channel hears of every change to its alerts.
                let Some(heard) = heard(changed) else { break };
                let Some(channel) = heard.filter(|c| follows(sub.as_ref(), c)) else { continue };
                if !send(&mut tx, &alerts_message(state.alerts.state(&channel, None))).await {
                    break;
                }
            }
            frame = rx.next() => {
                let text = match text_of(frame) {
                    Some(Some(t)) => t,
                    Some(None) => continue,
                    None => break,
                };
                let answer = match serde_json::from_str::<EventsRequest>(&text) {
                    Err(e) => events_error("BAD_MESSAGE", &format!("{e}; messages are subscribe, publish, alerts, safe_mode, counter, timer, session and ping")),
                    Ok(EventsRequest::Counter { channel, name, reference, body }) => {
                        with_ref(widget_command(&state, may_change, Widget::Counter, &channel, &name, body), reference)
                    }
                    Ok(EventsRequest::Timer { channel, name, reference, body }) => {
                        with_ref(widget_command(&state, may_change, Widget::Timer, &channel, &name, body), reference)
                    }
                    Ok(EventsRequest::Session { channel, reset, reference }) => {
                        let channel = normalize_channel(&channel);
                        let done = if reset {
                            may(may_change).map(|()| state.widgets.reset_session(&channel))
                        } else {
                            Ok(state.widgets.session(&channel))
                        };
                        with_ref(done.map(|a| typed("session", a)).unwrap_or_else(|e| e), reference)
                    }
                    Ok(EventsRequest::Ping) => json!({"type": "pong"}),
                    Ok(EventsRequest::Subscribe { channels, kinds, since }) => {
                        match subscription(&state, channels, kinds, since) {
                            Ok((s, kinds, answer)) => {
                                sub = Some((s, kinds));
                                answer
                            }
                            Err(e) => e,
                        }
                    }
                    Ok(EventsRequest::Publish { reference, event }) => {
                        let mut answer = publish(&state, may_change, event);
                        if let Some(r) = reference {
                            answer["ref"] = r;
                        }
                        answer
                    }
                    Ok(EventsRequest::Alerts { channel, action, overlay, id, reference }) => {
                        let channel = normalize_channel(&channel);
                        let done = may(may_change).and_then(|()| {
                            let command = crate::alerts::Command::parse(&action, id).ok_or_else(|| {
                                events_error("BAD_MESSAGE", &format!("no alert action \"{action}\"; actions are {}", crate::alerts::Command::ACTIONS))
                            })?;
                            crate::blocking::off_the_runtime(|| state.alerts.command(&channel, overlay.as_deref(), command)).map_err(alert_error)
                        });
                        with_ref(done.map(alerts_message).unwrap_or_else(|e| e), reference)
                    }
                    Ok(EventsRequest::SafeMode { channel, minutes, end, reference }) => {
                        let channel = normalize_channel(&channel);
                        let minutes = (!end).then(|| minutes.unwrap_or(state.config.alerts.safe_mode_minutes));
                        let done = may(may_change).and_then(|()| {
                            state.alerts.safe_mode(&channel, minutes).map_err(alert_error)
                        });
                        with_ref(done.map(alerts_message).unwrap_or_else(|e| e), reference)
                    }
                };
                if !send(&mut tx, &answer).await { break }
            }
            next = next => {
                let out = match next {
                    Next::Message(bus::Message::Event(item)) => {
                        let wanted = sub.as_ref().is_some_and(|(_, k)| {
                            k.as_ref().is_none_or(|k| k.contains(item.event.kind))
                        });
                        wanted.then(|| event_message(&item.event))
                    }
                    Next::Resync => Some(json!({"type": "resync", "reason": "lagged"})),
                    Next::Closed => break,
                    _ => None,
                };
                if let Some(v) = out
                    && !send(&mut tx, &v).await
                {
                    break;
                }
            }
        }
    }
    let _ = tx.close().await;
}

type Subscribed = (Subscription, Option<KindSet>, Value);

fn subscription(
    state: &State,
    channels: Vec<String>,
    kinds: Option<Vec<String>>,
    since: Option<u64>,
) -> Result<Subscribed, Value> {
    let channels: Vec<String> = channels.iter().map(|c| normalize_channel(c)).collect();
    if channels.is_empty() || channels.len() > 64 {
        return Err(events_error(
            "BAD_MESSAGE",
            "subscribe names 1 to 64 channels",
        ));
    }
    let kinds = match kinds {
        None => None,
        Some(list) => {
            let mut set = KindSet::NONE;
            for k in &list {
                let kind = k.parse().map_err(|e: crate::event::UnknownKind| {
                    events_error("BAD_MESSAGE", &e.to_string())
                })?;
                set = set.with(kind);
            }
            Some(set)
        }
    };
    let next_id = state.bus.next_id();
    let sub = state.bus.subscribe(channels.clone(), since);
    Ok((
        sub,
        kinds,
        json!({"type": "subscribed", "channels": channels, "next_id": next_id}),
    ))
}

fn publish(state: &State, may_change: bool, mut event: serde_json::Map<String, Value>) -> Value {
    if let Err(refused) = may(may_change) {
        return refused;
    }
    event.remove("type");
    let body = Value::Object(event).to_string();
    match super::api::parse_event(body.as_bytes(), &state.config.default_channel()) {
        Err(e) => events_error("BAD_EVENT", &e),
        Ok(event) => match state.publisher.publish(event) {
            Ok((item, _)) => json!({"type": "published", "id": item.event.id}),
            Err(e) => events_error("NOT_STORED", &format!("not stored, not sent: {e}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_upgrades_of_our_socket_paths_are_taken() {
        let peer: IpAddr = "127.0.0.1".parse().expect("ip");
        let head = |path: &str, upgrade: &str| {
            format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:7878\r\nUpgrade: {upgrade}\r\nConnection: Upgrade\r\nOrigin: http://x.example\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
        };
        let up = upgrade(head("/", "websocket").as_bytes(), peer).expect("chat");
        assert_eq!(up.wanted, Wanted::Chat);
        assert_eq!(up.asking.origin.as_deref(), Some("http://x.example"));
        assert_eq!(up.asking.host.as_deref(), Some("127.0.0.1:7878"));
        let up = upgrade(head("/api/ws?x=1", "WebSocket").as_bytes(), peer).expect("events");
        assert_eq!(up.wanted, Wanted::Events);
        assert!(upgrade(head("/ws", "h2c").as_bytes(), peer).is_none());
        assert!(upgrade(head("/o/chat", "websocket").as_bytes(), peer).is_none());
        assert!(
            upgrade(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", peer).is_none(),
            "the dashboard"
        );
    }
}
