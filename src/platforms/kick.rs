//! Kick chat as a guest. The chatroom is looked up on kick.com (or given in config, since that
//! lookup sits behind bot protection); Kick's realtime negotiation says which socket to speak:
//! Centrifugo (current) or Pusher (legacy); both carry the same inner events, read by one
//! decoder ([`decode`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

use super::{BROWSER_UA, KickConfig, KickLink, KickTransport, Source};
use crate::event::Platform;
use crate::event::{Author, Badge, ChatMessage, Element, Kind, Monetary, Reply, Roles};
use crate::source::sleep_or_cancel;

/// The Origin Kick's realtime sockets require.
const ORIGIN: &str = "https://kick.com";
/// A Pusher socket with no frame for this long is dead (its activity timeout is 120 s).
const PUSHER_SILENCE: Duration = Duration::from_secs(150);
/// Added to Centrifugo's ping interval before its silence means a dead socket.
const PING_GRACE: Duration = Duration::from_secs(20);

/// One of our events decoded from a Kick event.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// For de-duplication: the same event can arrive on two feeds.
    pub id: Option<String>,
    pub kind: Kind,
    pub data: Value,
    pub at: Option<u64>,
}

/// Decodes one Kick event (its name with or without the `App\Events\` prefix; its data a JSON
/// string, or already an object). Events overlays do not show give `None`.
pub fn decode(event: &str, data: &Value) -> Option<Decoded> {
    let parsed;
    let data = match data {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).ok()?;
            &parsed
        }
        other => other,
    };
    let name = event.rsplit('\\').next().unwrap_or(event);
    let at = data
        .get("created_at")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis().max(0) as u64);
    let s = |v: &Value, p: &str| {
        v.pointer(p)
            .map(|x| match x {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    let (id, kind, out) = match name {
        "ChatMessageEvent" => {
            let message = chat_message(data)?;
            (
                Some(message.message_id.clone()),
                Kind::ChatMessage,
                serde_json::to_value(message).ok()?,
            )
        }
        "MessageDeletedEvent" => (
            None,
            Kind::ChatDelete,
            json!({"message_id": s(data, "/message/id")}),
        ),
        "UserBannedEvent" => {
            let permanent = data.get("permanent").and_then(Value::as_bool) == Some(true);
            // Kick gives timeouts in minutes.
            let duration = (!permanent)
                .then(|| data.get("duration").and_then(Value::as_u64))
                .flatten()
                .map(|m| m * 60);
            (
                None,
                Kind::ChatClear,
                json!({"user_id": s(data, "/user/id"), "user_login": s(data, "/user/slug"), "duration_s": duration}),
            )
        }
        "ChatroomClearEvent" => (
            None,
            Kind::ChatClear,
            json!({"user_id": null, "user_login": null, "duration_s": null}),
        ),
        "SubscriptionEvent" => {
            let user = s(data, "/username");
            let months = data.get("months").and_then(Value::as_u64).unwrap_or(1);
            let login = user.to_lowercase();
            if months > 1 {
                (
                    None,
                    Kind::Resub,
                    json!({"user_name": user, "user_login": login, "tier": "1000", "months": months, "streak_months": null, "message": ""}),
                )
            } else {
                (
                    None,
                    Kind::Sub,
                    json!({"user_name": user, "user_login": login, "tier": "1000", "is_gift": false}),
                )
            }
        }
        "GiftedSubscriptionsEvent" => {
            let gifter = s(data, "/gifter_username");
            let total = data
                .get("gifted_usernames")
                .and_then(Value::as_array)
                .map_or(1, Vec::len);
            (
                None,
                Kind::GiftBomb,
                json!({"user_name": gifter, "user_login": gifter.to_lowercase(), "tier": "1000", "total": total, "cumulative_total": null, "is_anonymous": gifter.is_empty(), "giftbomb_id": null}),
            )
        }
        "KicksGifted" => {
            let amount = data.pointer("/gift/amount").and_then(Value::as_f64)?;
            let text = s(data, "/message");
            let sender = data.get("sender")?;
            let message = ChatMessage {
                message_id: s(data, "/gift_transaction_id"),
                author: Author {
                    id: s(sender, "/id"),
                    login: s(sender, "/username").to_lowercase(),
                    display_name: s(sender, "/username"),
                    color: sender
                        .get("username_color")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    roles: Roles::default(),
                    badges: Vec::new(),
                },
                elements: elements(&text),
                text: text.clone(),
                is_action: false,
                bits: 0,
                reply: None,
                monetary: Some(Monetary {
                    amount,
                    currency: "KICKS".into(),
                    formatted: format!("{amount} Kicks"),
                    color: None,
                }),
                sticker: None,
            };
            (
                Some(message.message_id.clone()),
                Kind::ChatMessage,
                serde_json::to_value(message).ok()?,
            )
        }
        _ => return None,
    };
    Some(Decoded {
        id: id.filter(|i| !i.is_empty()),
        kind,
        data: out,
        at,
    })
}

fn chat_message(data: &Value) -> Option<ChatMessage> {
    let sender = data.get("sender")?;
    let str_of = |v: &Value, key: &str| match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let mut roles = Roles::default();
    let mut badges = Vec::new();
    for b in sender
        .pointer("/identity/badges")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = b.get("type").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "broadcaster" => roles.broadcaster = true,
            "moderator" => roles.moderator = true,
            "vip" => roles.vip = true,
            "subscriber" | "founder" => roles.subscriber = true,
            "verified" => roles.verified = true,
            _ => {}
        }
        badges.push(Badge {
            set: kind.to_string(),
            version: b
                .get("count")
                .and_then(Value::as_u64)
                .map_or("1".into(), |c| c.to_string()),
            image: None,
            title: b.get("text").and_then(Value::as_str).map(str::to_string),
        });
    }
    let content = str_of(data, "content");
    let reply = (data.get("type").and_then(Value::as_str) == Some("reply"))
        .then(|| {
            let meta = data.get("metadata")?;
            let name = meta.pointer("/original_sender/username")?.as_str()?;
            Some(Reply {
                message_id: str_of(meta.get("original_message")?, "id"),
                user_login: name.to_lowercase(),
                display_name: name.to_string(),
                text: str_of(meta.get("original_message")?, "content"),
            })
        })
        .flatten();
    let elements = elements(&content);
    // The text as a viewer reads it: emote tokens by their names.
    let text = elements
        .iter()
        .map(|e| match e {
            Element::Text { value } => value.as_str(),
            Element::Emote { name, .. } => name.as_str(),
        })
        .collect();
    Some(ChatMessage {
        message_id: str_of(data, "id"),
        author: Author {
            id: str_of(sender, "id"),
            login: str_of(sender, "slug"),
            display_name: str_of(sender, "username"),
            color: sender
                .pointer("/identity/color")
                .and_then(Value::as_str)
                .map(str::to_string),
            roles,
            badges,
        },
        text,
        elements,
        is_action: false,
        bits: 0,
        reply,
        monetary: None,
        sticker: None,
    })
}

/// Splits Kick's `[emote:<id>:<name>]` tokens out of a message.
pub fn elements(content: &str) -> Vec<Element> {
    let mut out = Vec::new();
    let mut rest = content;
    let mut text = String::new();
    while let Some(start) = rest.find("[emote:") {
        let token = &rest[start + "[emote:".len()..];
        let parsed = token.find(']').and_then(|end| {
            let (id, name) = token[..end].split_once(':')?;
            (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) && !name.is_empty())
                .then(|| (id.to_string(), name.to_string(), end))
        });
        match parsed {
            Some((id, name, end)) => {
                text.push_str(&rest[..start]);
                if !text.is_empty() {
                    out.push(Element::Text {
                        value: std::mem::take(&mut text),
                    });
                }
                out.push(Element::Emote {
                    url: format!("https://files.kick.com/emotes/{id}/fullsize"),
                    id,
                    name,
                });
                rest = &token[end + 1..];
            }
            None => {
                text.push_str(&rest[..start + 1]);
                rest = &rest[start + 1..];
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Element::Text { value: text });
    }
    out
}

/// The feeds a channel's chat and alerts arrive on.
fn feeds(channel_id: u64, chatroom_id: u64) -> Vec<String> {
    vec![
        format!("chatrooms.{chatroom_id}.v2"),
        format!("chatroom_{chatroom_id}"),
        format!("channel.{channel_id}"),
        format!("channel_{channel_id}"),
    ]
}

/// Why a session ended.
#[derive(Debug)]
enum End {
    Cancelled,
    /// Kick refused us for good (bad token, banned, too many connections): wait long, and
    /// come back as a new client.
    Refused(String),
    Failed(String),
}

/// Runs the source for one Kick channel until `token` is cancelled.
pub async fn run(
    source: Source,
    config: Arc<KickConfig>,
    link: KickLink,
    token: CancellationToken,
) {
    let Some(http) = source.http() else { return };
    let mut ids = link.channel_id.zip(link.chatroom_id);
    let mut failures = super::backoff();
    let mut client_id = uuid();
    loop {
        let end = match ids {
            Some((channel_id, chatroom_id)) => {
                let provider = match config.transport {
                    KickTransport::Pusher => Provider::Pusher(config.pusher_url.clone()),
                    KickTransport::Centrifugo | KickTransport::Auto => {
                        match negotiate(&http, &config.realtime_base, channel_id, &client_id).await
                        {
                            Ok(p) => p,
                            Err(e) if config.transport == KickTransport::Auto => {
                                tracing::warn!(
                                    source = source.name,
                                    "negotiation failed ({e}); trying the Pusher socket"
                                );
                                Provider::Pusher(config.pusher_url.clone())
                            }
                            Err(e) => Provider::Failed(e),
                        }
                    }
                };
                let feeds = feeds(channel_id, chatroom_id);
                // Counted as up from the start of the session: a session that lasts
                // `source::HEALTHY` starts the back-off over when it ends.
                failures.up();
                match provider {
                    Provider::Pusher(url) => pusher(&source, &url, &feeds, &token).await,
                    Provider::Centrifugo(url) => {
                        centrifugo(
                            &source,
                            &http,
                            &config.realtime_base,
                            &url,
                            &client_id,
                            &feeds,
                            &token,
                        )
                        .await
                    }
                    Provider::Failed(e) => End::Failed(e),
                }
            }
            None => match lookup(&http, &config.api_base, &link.slug).await {
                Ok(found) => {
                    ids = Some(found);
                    continue;
                }
                Err(e) => End::Failed(e),
            },
        };
        let wait = match end {
            End::Cancelled => return,
            End::Refused(why) => {
                client_id = uuid();
                source.set(
                    "error",
                    format!("Kick refused the connection ({why}); trying again in 5 minutes"),
                );
                Duration::from_secs(300)
            }
            End::Failed(why) => source.retry(&mut failures, "error", &why),
        };
        if !sleep_or_cancel(wait, &token).await {
            return;
        }
    }
}

enum Provider {
    Pusher(String),
    Centrifugo(String),
    Failed(String),
}

fn uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// The channel and chatroom ids of `slug` from kick.com.
async fn lookup(http: &reqwest::Client, api_base: &str, slug: &str) -> Result<(u64, u64), String> {
    let url = format!("{api_base}/api/v2/channels/{slug}");
    let refused = || {
        format!(
            "kick.com refused the lookup of \"{slug}\" (bot protection?): set channel_id and chatroom_id in its [[kick.channels]] entry"
        )
    };
    let r = http
        .get(&url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| super::failed(&url, &e))?;
    if r.status() == reqwest::StatusCode::NOT_FOUND {
        return Err(format!("there is no Kick channel \"{slug}\""));
    }
    if !r.status().is_success() {
        return Err(refused());
    }
    let body: Value = r.json().await.map_err(|_| refused())?;
    let channel = body.get("id").and_then(Value::as_u64);
    let chatroom = body.pointer("/chatroom/id").and_then(Value::as_u64);
    channel.zip(chatroom).ok_or_else(refused)
}

/// Asks Kick which realtime socket to use.
async fn negotiate(
    http: &reqwest::Client,
    realtime: &str,
    channel_id: u64,
    client_id: &str,
) -> Result<Provider, String> {
    let url = format!("{realtime}/channels/{channel_id}/chat/connection");
    let body = json!({
        "client": {"id": client_id, "type": "web"},
        "capabilities": {"accepted_providers": [{"provider": "centrifugo"}, {"provider": "pusher"}]},
    });
    let r = http
        .post(&url)
        .header("origin", ORIGIN)
        .json(&body)
        .send()
        .await
        .map_err(|e| super::failed(&url, &e))?;
    if !r.status().is_success() {
        return Err(format!("{url} answered {}", r.status()));
    }
    let answer: Value = r.json().await.map_err(|e| super::failed(&url, &e))?;
    for c in answer
        .pointer("/data/connections")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let socket = c.pointer("/credentials/url").and_then(Value::as_str);
        match (c.get("provider").and_then(Value::as_str), socket) {
            (Some("centrifugo"), Some(url)) => return Ok(Provider::Centrifugo(url.into())),
            (Some("pusher"), Some(url)) => return Ok(Provider::Pusher(url.into())),
            _ => {}
        }
    }
    Err(format!("{url} offered no socket this server speaks"))
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> Result<Socket, String> {
    let mut request = url
        .into_client_request()
        .map_err(|e| super::failed(url, &e))?;
    let headers = request.headers_mut();
    headers.insert("origin", http::HeaderValue::from_static(ORIGIN));
    headers.insert("user-agent", http::HeaderValue::from_static(BROWSER_UA));
    let (socket, _) = tokio::time::timeout(
        Duration::from_secs(15),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .map_err(|_| format!("{url}: no answer"))?
    .map_err(|e| super::failed(url, &e))?;
    Ok(socket)
}

fn publish(source: &Source, decoded: Decoded) {
    if decoded.id.as_deref().is_some_and(|id| !source.first(id)) {
        return;
    }
    source.publish(Platform::Kick, decoded.kind, decoded.data, decoded.at);
}

/// The legacy Pusher socket.
async fn pusher(source: &Source, url: &str, feeds: &[String], token: &CancellationToken) -> End {
    let mut ws = match connect(url).await {
        Ok(ws) => ws,
        Err(e) => return End::Failed(e),
    };
    let mut subscribed = false;
    loop {
        let frame = tokio::select! {
            _ = token.cancelled() => {
                let _ = ws.close(None).await;
                return End::Cancelled;
            }
            f = tokio::time::timeout(PUSHER_SILENCE, ws.next()) => f,
        };
        let text = match frame {
            Err(_) => return End::Failed("the Pusher socket went silent".into()),
            Ok(None) => return End::Failed("the Pusher socket closed".into()),
            Ok(Some(Err(e))) => return End::Failed(format!("the Pusher socket failed: {e}")),
            Ok(Some(Ok(Message::Text(t)))) => t.to_string(),
            Ok(Some(Ok(Message::Close(c)))) => {
                return End::Failed(format!("the Pusher socket closed: {c:?}"));
            }
            Ok(Some(Ok(_))) => continue,
        };
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            tracing::warn!(
                source = source.name,
                "malformed Pusher frame skipped: {text:.200}"
            );
            continue;
        };
        let event = frame
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match event {
            "pusher:connection_established" if !subscribed => {
                for feed in feeds {
                    let sub =
                        json!({"event": "pusher:subscribe", "data": {"auth": "", "channel": feed}});
                    if ws.send(Message::text(sub.to_string())).await.is_err() {
                        return End::Failed("the Pusher socket closed".into());
                    }
                }
                subscribed = true;
                source.set(
                    "connected",
                    format!("reading chat over Pusher ({})", feeds[0]),
                );
            }
            "pusher:ping" => {
                let pong = json!({"event": "pusher:pong", "data": {}});
                if ws.send(Message::text(pong.to_string())).await.is_err() {
                    return End::Failed("the Pusher socket closed".into());
                }
            }
            "pusher:error" => {
                let code = frame
                    .pointer("/data/code")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                // 4000-4099: do not reconnect as is.
                if (4000..4100).contains(&code) {
                    return End::Refused(format!("Pusher error {code}"));
                }
            }
            e if e.starts_with("pusher") => {}
            e => {
                if let Some(decoded) = decode(e, frame.get("data").unwrap_or(&Value::Null)) {
                    publish(source, decoded);
                }
            }
        }
    }
}

/// The current Centrifugo socket.
#[allow(clippy::too_many_arguments)]
async fn centrifugo(
    source: &Source,
    http: &reqwest::Client,
    realtime: &str,
    url: &str,
    client_id: &str,
    feeds: &[String],
    token: &CancellationToken,
) -> End {
    let auth = match centrifugo_token(http, realtime, client_id).await {
        Ok(t) => t,
        Err(e) => return End::Failed(e),
    };
    let mut ws = match connect(url).await {
        Ok(ws) => ws,
        Err(e) => return End::Failed(e),
    };
    let mut next_id = 1u64;
    let connect = json!({"id": next_id, "connect": {"token": auth, "name": "js"}});
    if ws.send(Message::text(connect.to_string())).await.is_err() {
        return End::Failed("the Centrifugo socket closed".into());
    }
    let mut silence = Duration::from_secs(25) + PING_GRACE;
    let mut refresh_at: Option<Instant> = None;
    loop {
        let refresh_in = refresh_at.map_or(Duration::from_secs(3600), |t| {
            t.saturating_duration_since(Instant::now())
        });
        let frame = tokio::select! {
            _ = token.cancelled() => {
                let _ = ws.close(None).await;
                return End::Cancelled;
            }
            _ = tokio::time::sleep(refresh_in), if refresh_at.is_some() => {
                refresh_at = None;
                match centrifugo_token(http, realtime, client_id).await {
                    Ok(t) => {
                        next_id += 1;
                        let refresh = json!({"id": next_id, "refresh": {"token": t}});
                        if ws.send(Message::text(refresh.to_string())).await.is_err() {
                            return End::Failed("the Centrifugo socket closed".into());
                        }
                    }
                    Err(e) => return End::Failed(e),
                }
                continue;
            }
            f = tokio::time::timeout(silence, ws.next()) => f,
        };
        let text = match frame {
            Err(_) => return End::Failed("the Centrifugo socket missed its pings".into()),
            Ok(None) => return End::Failed("the Centrifugo socket closed".into()),
            Ok(Some(Err(e))) => return End::Failed(format!("the Centrifugo socket failed: {e}")),
            Ok(Some(Ok(Message::Text(t)))) => t.to_string(),
            Ok(Some(Ok(Message::Close(c)))) => {
                let code = c.as_ref().map_or(0, |c| u16::from(c.code));
                let why = format!(
                    "closed with {code} {}",
                    c.as_ref().map(|c| c.reason.to_string()).unwrap_or_default()
                );
                return if (3500..4000).contains(&code) || (4500..5000).contains(&code) {
                    End::Refused(why)
                } else {
                    End::Failed(format!("the Centrifugo socket {why}"))
                };
            }
            Ok(Some(Ok(_))) => continue,
        };
        // One frame may hold several replies, one per line.
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let Ok(reply) = serde_json::from_str::<Value>(line) else {
                tracing::warn!(
                    source = source.name,
                    "malformed Centrifugo frame skipped: {line:.200}"
                );
                continue;
            };
            if reply.as_object().is_some_and(|o| o.is_empty()) {
                // A ping: answered with an empty object.
                if ws.send(Message::text("{}")).await.is_err() {
                    return End::Failed("the Centrifugo socket closed".into());
                }
                continue;
            }
            if let Some(error) = reply.get("error") {
                let code = error.get("code").and_then(Value::as_u64).unwrap_or(0);
                let message = error.get("message").and_then(Value::as_str).unwrap_or("");
                if reply.get("id").and_then(Value::as_u64) == Some(1) {
                    return End::Refused(format!("connect error {code} {message}"));
                }
                tracing::warn!(source = source.name, "Centrifugo error {code} {message}");
                continue;
            }
            if let Some(connected) = reply.get("connect") {
                if let Some(ping) = connected.get("ping").and_then(Value::as_u64) {
                    silence = Duration::from_secs(ping) + PING_GRACE;
                }
                if connected.get("expires").and_then(Value::as_bool) == Some(true)
                    && let Some(ttl) = connected.get("ttl").and_then(Value::as_u64)
                {
                    refresh_at =
                        Some(Instant::now() + Duration::from_secs(ttl.saturating_sub(120).max(1)));
                }
                for feed in feeds {
                    next_id += 1;
                    let sub = json!({"id": next_id, "subscribe": {"channel": feed, "flag": 1}});
                    if ws.send(Message::text(sub.to_string())).await.is_err() {
                        return End::Failed("the Centrifugo socket closed".into());
                    }
                }
                source.set(
                    "connected",
                    format!("reading chat over Centrifugo ({})", feeds[0]),
                );
                continue;
            }
            if let Some(refreshed) = reply.get("refresh")
                && let Some(ttl) = refreshed.get("ttl").and_then(Value::as_u64)
            {
                refresh_at =
                    Some(Instant::now() + Duration::from_secs(ttl.saturating_sub(120).max(1)));
                continue;
            }
            // The server dropped one subscription; codes 2500-2999 ask for it again.
            if let Some(unsub) = reply.pointer("/push/unsub") {
                let code = unsub.get("code").and_then(Value::as_u64).unwrap_or(0);
                let channel = reply.pointer("/push/channel").and_then(Value::as_str);
                if let (true, Some(channel)) = ((2500..3000).contains(&code), channel) {
                    next_id += 1;
                    let sub = json!({"id": next_id, "subscribe": {"channel": channel, "flag": 1}});
                    if ws.send(Message::text(sub.to_string())).await.is_err() {
                        return End::Failed("the Centrifugo socket closed".into());
                    }
                } else {
                    tracing::warn!(
                        source = source.name,
                        "Kick ended the subscription to {channel:?} ({code})"
                    );
                }
                continue;
            }
            if let Some(data) = reply.pointer("/push/pub/data") {
                let event = data
                    .get("event")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if let Some(decoded) = decode(event, data.get("data").unwrap_or(&Value::Null)) {
                    publish(source, decoded);
                }
            }
        }
    }
}

async fn centrifugo_token(
    http: &reqwest::Client,
    realtime: &str,
    client_id: &str,
) -> Result<String, String> {
    let url = format!("{realtime}/auth/connection");
    let r = http
        .post(&url)
        .header("origin", ORIGIN)
        .json(&json!({"client_id": client_id}))
        .send()
        .await
        .map_err(|e| super::failed(&url, &e))?;
    if !r.status().is_success() {
        return Err(format!("{url} answered {}", r.status()));
    }
    let body: Value = r.json().await.map_err(|e| super::failed(&url, &e))?;
    body.pointer("/data/token")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{url} gave no token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str) -> Value {
        crate::platforms::fixture("kick", name)
    }

    fn decoded(name: &str) -> Decoded {
        let f = frame(name);
        decode(f["event"].as_str().expect("event"), &f["data"]).expect("decoded")
    }

    #[test]
    fn emote_tokens_become_emotes() {
        let m = decoded("pusher.chat_message.emotes.json");
        assert_eq!(m.kind, Kind::ChatMessage);
        let els = m.data["elements"].as_array().expect("elements");
        assert_eq!(els.len(), 3);
        assert_eq!(
            els[0],
            json!({"type": "emote", "id": "37232", "name": "PeepoClap", "url": "https://files.kick.com/emotes/37232/fullsize"})
        );
        assert_eq!(m.data["text"], "PeepoClapPeepoClapPeepoClap");
        assert_eq!(m.data["author"]["login"], "utamaro1");
        assert_eq!(m.data["author"]["color"], "#E26EFF");
        assert_eq!(
            elements("a [emote:1:x] b [emote:bad] c"),
            vec![
                Element::Text { value: "a ".into() },
                Element::Emote {
                    id: "1".into(),
                    name: "x".into(),
                    url: "https://files.kick.com/emotes/1/fullsize".into()
                },
                Element::Text {
                    value: " b [emote:bad] c".into()
                },
            ]
        );
    }

    #[test]
    fn roles_badges_and_replies() {
        let m = decoded("pusher.chat_message.roles_mod_vip_og_sub.json");
        let roles = &m.data["author"]["roles"];
        assert_eq!(
            (
                roles["moderator"].clone(),
                roles["vip"].clone(),
                roles["subscriber"].clone()
            ),
            (json!(true), json!(true), json!(true))
        );
        assert_eq!(
            m.data["author"]["badges"][3],
            json!({"set": "subscriber", "version": "24", "title": "Subscriber"})
        );
        let r = decoded("pusher.chat_message.reply.json");
        assert_eq!(
            r.data["reply"]["message_id"],
            "08ee7ab6-cf63-49ac-badf-38bc8e3e0cd3"
        );
        assert_eq!(r.data["reply"]["display_name"], "b58y0");
        assert_eq!(r.at, Some(1_790_525_557_000));
    }

    #[test]
    fn moderation_subs_and_kicks() {
        let d = decoded("pusher.message_deleted.json");
        assert_eq!(
            (d.kind, d.data["message_id"].clone()),
            (
                Kind::ChatDelete,
                json!("7ba14761-bbc7-44a9-a2d7-5c22b1407226")
            )
        );
        let b = decoded("pusher.user_banned.timeout.json");
        assert_eq!(b.kind, Kind::ChatClear);
        assert_eq!(
            b.data,
            json!({"user_id": "109550867", "user_login": "rittikj", "duration_s": 60})
        );
        let s = decoded("pusher.subscription.json");
        assert_eq!((s.kind, s.data["months"].clone()), (Kind::Resub, json!(13)));
        let k = decoded("pusher.kicks_gifted.json");
        assert_eq!(
            k.data["monetary"],
            json!({"amount": 500.0, "currency": "KICKS", "formatted": "500 Kicks"})
        );
        // No recorded GiftedSubscriptionsEvent: the shape is kicksdk's and GiftDeck's.
        let gifts = json!({"chatroom_id": 1, "gifted_usernames": ["a", "b", "c"], "gifter_username": "Santa"}).to_string();
        let g = decode(
            "App\\Events\\GiftedSubscriptionsEvent",
            &Value::String(gifts),
        )
        .expect("gifts");
        assert_eq!(
            (
                g.kind,
                g.data["total"].clone(),
                g.data["user_login"].clone()
            ),
            (Kind::GiftBomb, json!(3), json!("santa"))
        );
        let unbanned = frame("pusher.user_unbanned.json");
        assert_eq!(
            decode(
                unbanned["event"].as_str().expect("event"),
                &unbanned["data"]
            ),
            None
        );
    }
}
