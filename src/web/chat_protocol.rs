//! The chat WebSocket protocol of the chat service overlayd grew from, with no socket: what a
//! client may send, and our events and stats as the messages it expects
//! (`README.md`, "For tool authors", lists them all).
//!
//! Where the original left things open: `position` is `[start, end)` in code points over
//! `raw` (as IRC emote ranges count), `rawHtml` is escaped text with `<img>` only for emote
//! URLs that pass [`safe_image_url`], and `uniqueUsers` lists the most active chatters first,
//! at most [`MAX_USERS`] of them (a raid of 50,000 must not make every stats message huge).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::event::{Event, Kind, Platform, safe_image_url};
use crate::stats::{Snapshot, Stats};
use crate::theme::helpers::escape;

/// Chatters listed in a stats message.
pub const MAX_USERS: usize = 100;

/// The render key of the chat protocol's message in a bus item's frame cache: made once per
/// event however many clients follow the chat (overlays' keys count up from 1).
pub const FRAME_KEY: u64 = u64::MAX;

/// A chat's stats message made at most once per [`StatsCache::FRESH`] for every client of
/// the chat, with the message count it was made at; and the chats clients follow, each with
/// the count its stats were last pushed at and its [`StatsSlot`].
#[derive(Default)]
pub struct StatsCache {
    made: parking_lot::Mutex<HashMap<(String, String), Made>>,
    followed: parking_lot::Mutex<HashMap<(String, Platform), Followed>>,
}

/// How many clients follow a chat, the message count its stats were last pushed at, and
/// whether those were put on the bus since (the chat went quiet).
#[derive(Default)]
struct Followed {
    clients: usize,
    pushed: u64,
    announced: bool,
    slot: Arc<StatsSlot>,
}

/// A followed chat's latest stats frame, numbered. A chat socket's feed writes it with the next
/// chat message it writes, in the same write: while a chat moves, its stats cost its clients
/// no write of their own. Only a chat gone quiet has its stats put on the bus.
#[derive(Default)]
pub struct StatsSlot {
    /// Bumped with every new frame, under the frame's lock.
    version: AtomicU64,
    frame: parking_lot::Mutex<Bytes>,
}

impl StatsSlot {
    /// The number of the latest frame (0: none yet).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The latest frame and its number, if newer than `seen`.
    pub fn newer_than(&self, seen: u64) -> Option<(u64, Bytes)> {
        if self.version() <= seen {
            return None;
        }
        let frame = self.frame.lock();
        Some((self.version(), frame.clone()))
    }

    fn set(&self, frame: Bytes) {
        let mut held = self.frame.lock();
        *held = frame;
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}

/// One client following one chat's stats; dropping it stops following.
pub struct Following {
    cache: Arc<StatsCache>,
    key: (String, Platform),
    slot: Arc<StatsSlot>,
}

impl Following {
    /// Where the chat's latest stats frame is kept.
    pub fn slot(&self) -> &Arc<StatsSlot> {
        &self.slot
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        let mut followed = self.cache.followed.lock();
        if let Some(f) = followed.get_mut(&self.key) {
            f.clients -= 1;
            if f.clients == 0 {
                followed.remove(&self.key);
            }
        }
    }
}

/// A followed chat's stats frame for the bus: it went quiet with clients not yet told.
pub struct Quiet {
    pub channel: String,
    pub platform: Platform,
    pub version: u64,
    pub frame: Bytes,
}

/// When a stats message was made, at which message count, and its text.
type Made = (Instant, u64, Arc<str>);

impl StatsCache {
    /// How long a made stats message is served as it is.
    pub const FRESH: Duration = Duration::from_millis(900);

    /// The stats message of `platform`'s chat on `channel`, and its message count.
    pub fn get(&self, stats: &Stats, channel: &str, platform: &str) -> (u64, Arc<str>) {
        let key = (channel.to_string(), platform.to_string());
        if let Some((at, n, text)) = self.made.lock().get(&key)
            && at.elapsed() < Self::FRESH
        {
            return (*n, text.clone());
        }
        let snapshot = stats.snapshot_of(channel, Some(platform), MAX_USERS);
        let text: Arc<str> = self::stats(&snapshot).to_string().into();
        let mut made = self.made.lock();
        // Bounded by the chats followed; forget the ones nobody asked about for a while.
        made.retain(|_, (at, _, _)| at.elapsed() < Duration::from_secs(60));
        made.insert(key, (Instant::now(), snapshot.messages, text.clone()));
        (snapshot.messages, text)
    }

    /// A client follows `platform`'s chat on `channel`: its stats are kept by
    /// [`StatsCache::tick`] while the returned guard lives.
    pub fn follow(self: &Arc<Self>, channel: &str, platform: Platform) -> Following {
        let key = (channel.to_string(), platform);
        let mut followed = self.followed.lock();
        let f = followed.entry(key.clone()).or_default();
        f.clients += 1;
        Following {
            cache: self.clone(),
            key,
            slot: f.slot.clone(),
        }
    }

    /// One beat of the stats ticker. A followed chat whose message count changed since the
    /// last beat (or that is first followed with messages counted) has its stats made once,
    /// framed by `frame`, into its [`StatsSlot`], for its clients' next chat message to carry.
    /// A chat whose count did not change since it was put there is returned, once: it went
    /// quiet, and the clients that had no message since must still be told.
    pub fn tick(&self, stats: &Stats, frame: impl Fn(&str) -> Bytes) -> Vec<Quiet> {
        let chats: Vec<((String, Platform), u64)> = self
            .followed
            .lock()
            .iter()
            .map(|(k, f)| (k.clone(), f.pushed))
            .collect();
        let mut quiet = Vec::new();
        for ((channel, platform), pushed) in chats {
            let (messages, text) = self.get(stats, &channel, platform.as_str());
            let mut followed = self.followed.lock();
            let Some(f) = followed.get_mut(&(channel.clone(), platform)) else {
                continue;
            };
            if messages != pushed {
                f.slot.set(frame(&text));
                (f.pushed, f.announced) = (messages, false);
            } else if !f.announced
                && let Some((version, frame)) = f.slot.newer_than(0)
            {
                f.announced = true;
                quiet.push(Quiet {
                    channel,
                    platform,
                    version,
                    frame,
                });
            }
        }
        quiet
    }
}

/// What a client sends.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Subscribe {
        identifier: String,
        identifier_type: IdentifierType,
        platform: String,
    },
    Unsubscribe,
    GetStats,
}

/// How a YouTube identifier is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum IdentifierType {
    /// A handle, with or without `@`.
    #[default]
    Username,
    /// A `UC…` channel id.
    ChannelId,
    /// A live or video id.
    LiveId,
}

/// The error codes of the protocol, and two of overlayd's own for its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    StreamNotLive,
    StreamEnded,
    InvalidMessageType,
    NoActiveChat,
    StreamNotFound,
    UnsupportedPlatform,
    /// overlayd's: this connection holds as many chats as it may.
    TooManySubscriptions,
    /// overlayd's: the server reads as many chats on demand as it may.
    TooManyChats,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::StreamNotLive => "STREAM_NOT_LIVE",
            Code::StreamEnded => "STREAM_ENDED",
            Code::InvalidMessageType => "INVALID_MESSAGE_TYPE",
            Code::NoActiveChat => "NO_ACTIVE_CHAT",
            Code::StreamNotFound => "STREAM_NOT_FOUND",
            Code::UnsupportedPlatform => "UNSUPPORTED_PLATFORM",
            Code::TooManySubscriptions => "TOO_MANY_SUBSCRIPTIONS",
            Code::TooManyChats => "TOO_MANY_CHATS",
        }
    }
}

/// `{"type": "error", …}`; `details` only when there are some.
pub fn error(code: Code, text: &str, details: Option<&str>) -> Value {
    let mut e = json!({"type": "error", "error": text, "code": code.as_str()});
    if let Some(d) = details {
        e["details"] = json!(d);
    }
    e
}

/// `{"type": "status", "status": "started", "liveId": …}`.
pub fn started(live_id: &str) -> Value {
    json!({"type": "status", "status": "started", "liveId": live_id})
}

/// `{"type": "status", "status": "subscribed", "identifier": …}`.
pub fn subscribed(identifier: &str) -> Value {
    json!({"type": "status", "status": "subscribed", "identifier": identifier})
}

pub fn unsubscribed() -> Value {
    json!({"type": "status", "status": "unsubscribed"})
}

/// Reads a client's text frame; the error to answer when it is not one of the messages.
pub fn parse(text: &str) -> Result<Request, Value> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        #[serde(rename = "type")]
        kind: Option<String>,
        identifier: Option<String>,
        identifier_type: Option<String>,
        platform: Option<String>,
    }
    let raw: Raw = serde_json::from_str(text).map_err(|e| {
        error(
            Code::InvalidMessageType,
            "messages are JSON objects with a \"type\": subscribe, unsubscribe or get_stats",
            Some(&e.to_string()),
        )
    })?;
    match raw.kind.as_deref() {
        Some("subscribe") => {
            let identifier = raw
                .identifier
                .map(|i| i.trim().to_string())
                .filter(|i| !i.is_empty())
                .ok_or_else(|| {
                    error(
                        Code::InvalidMessageType,
                        "subscribe needs an \"identifier\" (a username, channel id or live id)",
                        None,
                    )
                })?;
            let identifier_type = match raw.identifier_type.as_deref() {
                None => IdentifierType::Username,
                Some(t) => serde_json::from_value(json!(t)).map_err(|_| {
                    error(
                        Code::InvalidMessageType,
                        "identifierType is one of username, channelId, liveId",
                        Some(t),
                    )
                })?,
            };
            Ok(Request::Subscribe {
                identifier,
                identifier_type,
                platform: raw
                    .platform
                    .unwrap_or_else(|| "youtube".into())
                    .to_ascii_lowercase(),
            })
        }
        Some("unsubscribe") => Ok(Request::Unsubscribe),
        Some("get_stats") => Ok(Request::GetStats),
        other => Err(error(
            Code::InvalidMessageType,
            "unknown message type; send subscribe, unsubscribe or get_stats",
            other,
        )),
    }
}

/// A `chat.message` event as the protocol's chat message; `None` for other kinds.
pub fn chat(event: &Event) -> Option<Value> {
    if event.kind != Kind::ChatMessage {
        return None;
    }
    let d = &event.data;
    let author = &d["author"];
    let roles = &author["roles"];
    let flag = |k: &str| roles[k].as_bool().unwrap_or(false);
    let badges: Vec<Value> = author["badges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            let set = b["set"].as_str().unwrap_or_default();
            let kind = match set {
                "subscriber" | "member" => "subscriber",
                "moderator" => "moderator",
                "verified" | "partner" => "verified",
                _ => "custom",
            };
            json!({
                "type": kind,
                "label": b["title"].as_str().unwrap_or(set),
                "image_url": b["image"].as_str().unwrap_or_default(),
            })
        })
        .collect();
    let raw = d["text"].as_str().unwrap_or_default();
    let content = content(raw, d["elements"].as_array().map_or(&[][..], Vec::as_slice));
    let mut metadata = json!({"type": "chat"});
    if let Some(m) = d.get("monetary").filter(|m| m.is_object()) {
        metadata["type"] = json!("super_chat");
        metadata["monetary_data"] = json!({
            "amount": m["amount"].to_string(),
            "formatted": m["formatted"],
            "color": m["color"],
        });
    }
    if let Some(s) = d.get("sticker").filter(|s| s.is_object()) {
        metadata["sticker"] = json!({"url": s["url"], "alt": s["alt"]});
    }
    let timestamp = chrono::DateTime::from_timestamp_millis(event.at as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    Some(json!({
        "type": "chat",
        "data": {
            "type": "chat",
            "platform": event.platform,
            "timestamp": timestamp,
            "message_id": d["message_id"],
            "room_id": event.channel,
            "data": {
                "author": {
                    "id": author["id"],
                    "username": author["login"],
                    "display_name": author["display_name"],
                    "avatar_url": author["avatar"].as_str().unwrap_or_default(),
                    "roles": {
                        "broadcaster": flag("broadcaster"),
                        "moderator": flag("moderator"),
                        "subscriber": flag("subscriber"),
                        "verified": flag("verified"),
                    },
                    "badges": badges,
                },
                "content": content,
                "metadata": metadata,
            }
        }
    }))
}

/// `raw`, `formatted`, `sanitized`, `rawHtml` and the elements with their positions.
fn content(raw: &str, elements: &[Value]) -> Value {
    let raw_chars: Vec<char> = raw.chars().collect();
    let mut cursor = 0usize;
    let (mut formatted, mut sanitized, mut html) = (String::new(), String::new(), String::new());
    let mut out = Vec::new();
    for e in elements {
        let is_emote = e["type"] == "emote";
        let value = if is_emote {
            e["name"].as_str().unwrap_or_default()
        } else {
            e["value"].as_str().unwrap_or_default()
        };
        let len = value.chars().count();
        let start = find(&raw_chars, value, cursor).unwrap_or(cursor.min(raw_chars.len()));
        let end = (start + len).min(raw_chars.len().max(start));
        cursor = end;
        formatted.push_str(value);
        if is_emote {
            let url = e["url"].as_str().unwrap_or_default();
            if safe_image_url(url) {
                html.push_str(&format!(
                    "<img class=\"emote\" src=\"{}\" alt=\"{}\">",
                    escape(url),
                    escape(value)
                ));
            } else {
                html.push_str(&escape(value));
            }
            out.push(json!({
                "type": "emote", "value": value, "position": [start, end],
                "metadata": {"url": url, "alt": value, "is_custom": !e["id"].as_str().is_some_and(|id| id.chars().all(|c| c.is_ascii_digit()))},
            }));
        } else {
            sanitized.push_str(value);
            html.push_str(&escape(value));
            out.push(json!({"type": "text", "value": value, "position": [start, end]}));
        }
    }
    json!({
        "raw": raw, "formatted": formatted, "sanitized": sanitized.trim(), "rawHtml": html,
        "elements": out,
    })
}

/// Where `value` starts in `raw` at or after `from`, in code points.
fn find(raw: &[char], value: &str, from: usize) -> Option<usize> {
    let needle: Vec<char> = value.chars().collect();
    if needle.is_empty() {
        return Some(from.min(raw.len()));
    }
    (from..=raw.len().saturating_sub(needle.len())).find(|&i| raw[i..].starts_with(&needle))
}

/// A channel's stats (of one platform) as the protocol's stats message.
pub fn stats(snapshot: &Snapshot) -> Value {
    let users: Vec<Value> = snapshot
        .top
        .iter()
        .take(MAX_USERS)
        .map(|c| {
            json!({
                "id": c.id, "username": c.login, "display_name": c.display_name,
                "roles": {
                    "broadcaster": c.roles.broadcaster, "moderator": c.roles.moderator,
                    "subscriber": c.roles.subscriber, "verified": c.roles.verified,
                },
                "messageCount": c.count,
            })
        })
        .collect();
    json!({"type": "stats", "data": {"uniqueUsers": users, "totalMessages": snapshot.messages}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Platform;

    #[test]
    fn client_messages_and_their_errors() {
        assert_eq!(
            parse(r#"{"type":"subscribe","identifier":"ceresfauna"}"#),
            Ok(Request::Subscribe {
                identifier: "ceresfauna".into(),
                identifier_type: IdentifierType::Username,
                platform: "youtube".into()
            })
        );
        assert_eq!(
            parse(
                r#"{"type":"subscribe","identifier":"UCx","identifierType":"channelId","platform":"YouTube"}"#
            ),
            Ok(Request::Subscribe {
                identifier: "UCx".into(),
                identifier_type: IdentifierType::ChannelId,
                platform: "youtube".into()
            })
        );
        assert_eq!(parse(r#"{"type":"get_stats"}"#), Ok(Request::GetStats));
        for bad in [
            "nope",
            r#"{"type":"dance"}"#,
            r#"{"type":"subscribe"}"#,
            r#"{"type":"subscribe","identifier":"x","identifierType":"url"}"#,
        ] {
            let e = parse(bad).expect_err(bad);
            assert_eq!(e["code"], "INVALID_MESSAGE_TYPE", "{bad}");
            assert_eq!(e["type"], "error");
        }
    }

    #[test]
    fn a_followed_chats_stats_change_is_made_once_and_put_on_the_bus_once_it_is_quiet() {
        let cache = Arc::new(StatsCache::default());
        let stats = Stats::default();
        let line = |login: &str| {
            let mut data = serde_json::Map::new();
            data.insert("user_name".into(), Value::from(login));
            crate::event::complete(Kind::ChatMessage, &mut data);
            Event::new(
                Platform::Twitch,
                "c",
                Kind::ChatMessage,
                Value::Object(data),
            )
        };
        let frame = |t: &str| Bytes::from(t.to_string());
        let total = |b: &Bytes| {
            let told: Value = serde_json::from_slice(b).expect("json");
            told["data"]["totalMessages"].as_u64().expect("a count")
        };
        stats.record(&line("ann"));
        assert!(
            cache.tick(&stats, frame).is_empty(),
            "nobody follows a chat"
        );
        let (one, two) = (
            cache.follow("c", Platform::Twitch),
            cache.follow("c", Platform::Kick),
        );
        let also = cache.follow("c", Platform::Twitch);
        assert!(Arc::ptr_eq(one.slot(), also.slot()), "one slot per chat");
        assert!(
            cache.tick(&stats, frame).is_empty(),
            "changed: kept, not sent"
        );
        assert_eq!(
            two.slot().version(),
            0,
            "the Kick chat on c has no messages"
        );
        let (version, made) = one.slot().newer_than(0).expect("made");
        assert_eq!((version, total(&made)), (1, 1));
        assert!(one.slot().newer_than(1).is_none());
        // Quiet since: told on the bus once, as the same frame.
        let quiet = cache.tick(&stats, frame);
        assert_eq!(quiet.len(), 1);
        assert_eq!(
            (quiet[0].channel.as_str(), quiet[0].platform),
            ("c", Platform::Twitch)
        );
        assert_eq!((quiet[0].version, &quiet[0].frame), (1, &made));
        assert!(cache.tick(&stats, frame).is_empty(), "told once");
        // Stats are made at most once per `FRESH`.
        std::thread::sleep(StatsCache::FRESH);
        stats.record(&line("bob"));
        assert!(cache.tick(&stats, frame).is_empty());
        let (version, made) = one.slot().newer_than(1).expect("made again");
        assert_eq!((version, total(&made)), (2, 2));
        drop((one, two, also));
        assert!(
            cache.followed.lock().is_empty(),
            "unfollowed with its last client"
        );
    }

    #[test]
    fn a_chat_message_with_an_emote_has_code_point_positions_and_safe_html() {
        let event = Event::new(
            Platform::Twitch,
            "c",
            Kind::ChatMessage,
            json!({
                "message_id": "m1",
                "text": "héllo Kappa <b>",
                "author": {"id": "1", "login": "ann", "display_name": "Ann",
                           "roles": {"moderator": true}, "badges": [{"set": "moderator", "version": "1"}]},
                "elements": [
                    {"type": "text", "value": "héllo "},
                    {"type": "emote", "id": "25", "name": "Kappa", "url": "https://static-cdn.jtvnw.net/emoticons/v2/25/default/dark/1.0"},
                    {"type": "text", "value": " <b>"},
                ],
            }),
        );
        let m = chat(&event).expect("chat");
        assert_eq!(m["type"], "chat");
        let inner = &m["data"];
        assert_eq!(inner["type"], "chat");
        assert_eq!(inner["platform"], "twitch");
        assert_eq!(inner["message_id"], "m1");
        assert_eq!(inner["data"]["author"]["username"], "ann");
        assert_eq!(inner["data"]["author"]["roles"]["moderator"], true);
        assert_eq!(inner["data"]["author"]["badges"][0]["type"], "moderator");
        let c = &inner["data"]["content"];
        assert_eq!(c["elements"][1]["position"], json!([6, 11]));
        assert_eq!(c["elements"][2]["position"], json!([11, 15]));
        assert_eq!(c["sanitized"], "héllo  <b>");
        let html = c["rawHtml"].as_str().expect("html");
        assert!(
            html.contains("&lt;b&gt;") && !html.contains("<b>"),
            "{html}"
        );
        assert!(
            html.contains("<img class=\"emote\" src=\"https://static-cdn"),
            "{html}"
        );
        assert_eq!(inner["data"]["metadata"]["type"], "chat");
    }

    #[test]
    fn only_plain_https_image_urls_become_images() {
        assert!(safe_image_url("https://files.kick.com/emotes/1/fullsize"));
        for bad in [
            "http://x/y",
            "javascript:alert(1)",
            "https://x/\"onerror=alert(1)",
            "https://x/ y",
            "https://",
        ] {
            assert!(!safe_image_url(bad), "{bad}");
        }
    }
}
