//! TikTok LIVE chat, gifts, follows and subs, read the way TikTok's web player reads them: an
//! anonymous `ttwid` cookie from tiktok.com, the room id of the host's live, and the webcast
//! socket of binary protobuf frames. No signing service: when TikTok refuses the unsigned
//! socket, the source says so (state `refused` or `blocked`) and tries again later.
//!
//! Unofficial: TikTok documents none of this and may change it any day.
//!
//! [`proto`] is the schema, [`map`] the decoding (bytes in, events out: no socket); this file is
//! the flow and the socket.

pub mod map;
pub mod proto;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};
use tokio_util::sync::CancellationToken;

use self::map::Decoder;
use super::settings::{TiktokConfig, TiktokLink};
use super::source::{Source, failed};
use crate::event::{Platform, now_ms};
use crate::source::sleep_or_cancel;

/// The Origin (and Referer) TikTok's web player sends.
pub const ORIGIN: &str = "https://www.tiktok.com";
/// TikTok's code for a @name it does not know.
const NO_SUCH_USER: i64 = 19881007;
/// Browser agents, one per fresh start after `DEVICE_BLOCKED`.
const AGENTS: [&str; 3] = [
    super::source::BROWSER_UA,
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
];
/// Tries at the anonymous cookie before the session counts as failed.
const COOKIE_TRIES: u32 = 3;

/// Why a session ended.
#[derive(Debug, PartialEq)]
enum End {
    Cancelled,
    /// The stream ended (`stream.offline` is published).
    Ended,
    /// TikTok answered `DEVICE_BLOCKED`: new cookie, new agent, again in 2 s.
    Blocked,
    /// No frame for `stale_s`.
    Stale,
    /// The socket was refused (not a `DEVICE_BLOCKED`).
    Refused(String),
    Failed(String),
}

/// Where the host's live is, as the room look-up says.
#[derive(Debug, PartialEq)]
enum Room {
    Live(u64),
    NotLive,
}

/// Why a look-up failed; each has its own state on the dashboard.
#[derive(Debug)]
enum LookupError {
    NoSuchUser,
    Blocked(String),
    Failed(String),
}

/// Runs the source for one TikTok host until `token` is cancelled.
pub async fn run(
    source: Source,
    config: Arc<TiktokConfig>,
    link: TiktokLink,
    session_file: Option<std::path::PathBuf>,
    token: CancellationToken,
) {
    let mut failures = super::source::backoff();
    let mut agent = 0;
    let mut cookie: Option<String> = None;
    let mut decoder = Decoder::default();
    let name = format!("@{}", link.unique_id);
    let live_check = Duration::from_secs(config.live_check_s);
    loop {
        let Some(http) = source.http_as(AGENTS[agent % AGENTS.len()]) else {
            return;
        };
        let session = match &session_file {
            Some(path) => session_cookie(path).await,
            None => None,
        };
        let ttwid = match &cookie {
            Some(c) => c.clone(),
            None => match ttwid(&http, &config.web_base, &token).await {
                Ok(Some(c)) => {
                    cookie = Some(c.clone());
                    c
                }
                Ok(None) => return,
                Err(why) => {
                    let wait = source.retry(&mut failures, "error", &why);
                    if !sleep_or_cancel(wait, &token).await {
                        return;
                    }
                    continue;
                }
            },
        };
        let cookies = match &session {
            Some(s) => format!("ttwid={ttwid}; sessionid={s}"),
            None => format!("ttwid={ttwid}"),
        };
        let room = match link.room_id {
            Some(id) => id,
            None => match lookup(&http, &config.web_base, &link.unique_id, &cookies).await {
                Ok(Room::Live(id)) => id,
                Ok(Room::NotLive) => {
                    failures.up();
                    source.live(None);
                    source.set(
                        "offline",
                        format!(
                            "{name} is not live; looking again every {}s",
                            config.live_check_s
                        ),
                    );
                    if !sleep_or_cancel(live_check, &token).await {
                        return;
                    }
                    continue;
                }
                Err(LookupError::NoSuchUser) => {
                    let why = format!("TikTok has no user {name}");
                    let wait = source.retry(&mut failures, "not-found", &why);
                    if !sleep_or_cancel(wait.max(live_check), &token).await {
                        return;
                    }
                    continue;
                }
                Err(LookupError::Blocked(why)) => {
                    cookie = None;
                    let why = format!(
                        "TikTok refused the room look-up of {name} ({why}): set room_id in its [[tiktok.channels]] entry (18+ rooms also need the session cookie)"
                    );
                    let wait = source.retry(&mut failures, "blocked", &why);
                    if !sleep_or_cancel(wait, &token).await {
                        return;
                    }
                    continue;
                }
                Err(LookupError::Failed(why)) => {
                    let wait = source.retry(&mut failures, "error", &why);
                    if !sleep_or_cancel(wait, &token).await {
                        return;
                    }
                    continue;
                }
            },
        };
        let agent_now = AGENTS[agent % AGENTS.len()];
        let end = socket(
            &source,
            &config,
            room,
            &cookies,
            agent_now,
            &mut decoder,
            &mut failures,
            &token,
        )
        .await;
        for event in decoder.finish() {
            source.publish_decoded(Platform::Tiktok, event);
        }
        let wait = match end {
            End::Cancelled => return,
            End::Ended => {
                source.live(None);
                source.set(
                    "ended",
                    format!("{name}'s stream ended; looking for the next one"),
                );
                live_check
            }
            End::Stale => {
                tracing::info!(
                    source = source.name,
                    "TikTok socket went silent; reconnecting"
                );
                Duration::from_millis(200)
            }
            End::Blocked => {
                cookie = None;
                agent += 1;
                source.set(
                    "blocked",
                    "TikTok answered DEVICE_BLOCKED; trying again with a new cookie in 2s",
                );
                Duration::from_secs(2)
            }
            End::Refused(why) => source.retry(&mut failures, "refused", &why),
            End::Failed(why) => source.retry(&mut failures, "error", &why),
        };
        if !sleep_or_cancel(wait, &token).await {
            return;
        }
    }
}

/// The session cookie a streamer saved for 18+ rooms, if any (sent to TikTok only).
async fn session_cookie(path: &std::path::Path) -> Option<String> {
    let text = tokio::fs::read_to_string(path).await.ok()?;
    super::settings::session_value(&text).map(str::to_string)
}

/// The anonymous `ttwid` cookie tiktok.com sets on its home page (asked again while it does
/// not). `Ok(None)`: cancelled.
async fn ttwid(
    http: &reqwest::Client,
    web_base: &str,
    token: &CancellationToken,
) -> Result<Option<String>, String> {
    let url = format!("{web_base}/");
    for attempt in 1..=COOKIE_TRIES {
        let r = http.get(&url).send().await.map_err(|e| failed(&url, &e))?;
        let found = r
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                let (pair, _) = c.split_once(';').unwrap_or((c, ""));
                let value = pair.trim().strip_prefix("ttwid=")?;
                (!value.is_empty()).then(|| value.to_string())
            });
        if found.is_some() {
            return Ok(found);
        }
        if attempt < COOKIE_TRIES
            && !sleep_or_cancel(Duration::from_millis(500 * u64::from(attempt)), token).await
        {
            return Ok(None);
        }
    }
    Err(format!("{url} set no ttwid cookie in {COOKIE_TRIES} tries"))
}

/// The room id of `unique_id`'s live, if it is live.
async fn lookup(
    http: &reqwest::Client,
    web_base: &str,
    unique_id: &str,
    cookies: &str,
) -> Result<Room, LookupError> {
    let url = format!("{web_base}/api-live/user/room");
    let r = http
        .get(&url)
        .query(&[
            ("aid", "1988"),
            ("app_name", "tiktok_web"),
            ("device_platform", "web_pc"),
            ("uniqueId", unique_id),
            ("sourceType", "54"),
        ])
        .header("cookie", cookies)
        .header("referer", format!("{ORIGIN}/"))
        .send()
        .await
        .map_err(|e| LookupError::Failed(failed(&url, &e)))?;
    let status = r.status();
    if status == reqwest::StatusCode::FORBIDDEN || status == reqwest::StatusCode::TOO_MANY_REQUESTS
    {
        return Err(LookupError::Blocked(format!("{status}")));
    }
    if !status.is_success() {
        return Err(LookupError::Failed(format!("{url} answered {status}")));
    }
    let text = r
        .text()
        .await
        .map_err(|e| LookupError::Failed(failed(&url, &e)))?;
    if text.trim().is_empty() {
        return Err(LookupError::Blocked("an empty answer".into()));
    }
    let body: Value = serde_json::from_str(&text)
        .map_err(|_| LookupError::Blocked(format!("an answer that is not JSON: {text:.80}")))?;
    match body.get("statusCode").and_then(Value::as_i64) {
        Some(0) => {}
        Some(NO_SUCH_USER) => return Err(LookupError::NoSuchUser),
        code => {
            let message = body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            return Err(LookupError::Failed(format!(
                "{url} answered statusCode {} ({message})",
                code.map_or("missing".to_string(), |c| c.to_string())
            )));
        }
    }
    let room = body
        .pointer("/data/user/roomId")
        .and_then(|v| match v {
            Value::String(s) => s.parse::<u64>().ok(),
            other => other.as_u64(),
        })
        .filter(|&id| id > 0);
    // 2: live; 4: ended or not started.
    let live = body
        .pointer("/data/liveRoom/status")
        .and_then(Value::as_u64)
        == Some(2);
    Ok(match room {
        Some(id) if live => Room::Live(id),
        _ => Room::NotLive,
    })
}

/// The socket URL for `room`, with the query TikTok's web player sends.
fn socket_url(ws_base: &str, room: u64) -> Result<reqwest::Url, String> {
    let room = room.to_string();
    let base = format!("{ws_base}/webcast/im/ws_proxy/ws_reuse_supplement/");
    reqwest::Url::parse_with_params(
        &base,
        [
            ("version_code", "180800"),
            ("device_platform", "web"),
            ("cookie_enabled", "true"),
            ("screen_width", "1920"),
            ("screen_height", "1080"),
            ("browser_language", "en-US"),
            ("browser_platform", "Win32"),
            ("browser_name", "Mozilla"),
            ("browser_online", "true"),
            ("tz_name", "Etc/UTC"),
            ("app_name", "tiktok_web"),
            ("sup_ws_ds_opt", "1"),
            ("update_version_code", "2.0.0"),
            ("compress", "gzip"),
            ("webcast_language", "en"),
            ("ws_direct", "1"),
            ("aid", "1988"),
            ("live_id", "12"),
            ("app_language", "en"),
            ("client_enter", "1"),
            ("room_id", room.as_str()),
            ("identity", "audience"),
            ("history_comment_count", "6"),
            ("heartbeat_duration", "0"),
            ("last_rtt", "0"),
            ("host", "https://webcast.tiktok.com"),
            ("resp_content_type", "protobuf"),
            ("did_rule", "3"),
        ],
    )
    .map_err(|e| format!("{base}: {e}"))
}

/// One socket session: heartbeats, acks, events, until the stream ends, the socket goes
/// silent or fails, or `token` is cancelled.
#[allow(clippy::too_many_arguments)]
async fn socket(
    source: &Source,
    config: &TiktokConfig,
    room: u64,
    cookies: &str,
    agent: &str,
    decoder: &mut Decoder,
    failures: &mut crate::source::Backoff,
    token: &CancellationToken,
) -> End {
    let url = match socket_url(&config.ws_base, room) {
        Ok(u) => u,
        Err(e) => return End::Failed(e),
    };
    let mut request = match url.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => return End::Failed(failed(url.as_str(), &e)),
    };
    let headers = request.headers_mut();
    for (name, value) in [
        ("origin", ORIGIN.to_string()),
        ("referer", format!("{ORIGIN}/")),
        ("user-agent", agent.to_string()),
        ("cookie", cookies.to_string()),
    ] {
        match http::HeaderValue::from_str(&value) {
            Ok(v) => {
                headers.insert(name, v);
            }
            Err(_) => return End::Failed(format!("a {name} header that cannot be sent")),
        }
    }
    let connect = tokio::time::timeout(
        Duration::from_secs(15),
        tokio_tungstenite::connect_async(request),
    );
    let mut ws = tokio::select! {
        _ = token.cancelled() => return End::Cancelled,
        c = connect => match c {
            Err(_) => return End::Failed(format!("{}: no answer", config.ws_base)),
            Ok(Err(tungstenite::Error::Http(answer))) => {
                let said = answer
                    .headers()
                    .get("handshake-msg")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if said.contains("DEVICE_BLOCKED") {
                    return End::Blocked;
                }
                let said = if said.is_empty() { String::new() } else { format!(", {said}") };
                return End::Refused(format!(
                    "TikTok refused the socket ({}{said}); it may want a signed URL today",
                    answer.status()
                ));
            }
            Ok(Err(e)) => return End::Failed(failed(config.ws_base.as_str(), &e)),
            Ok(Ok((ws, _))) => ws,
        },
    };
    for first in [map::heartbeat(room), map::enter_room(room)] {
        if ws.send(Message::binary(first)).await.is_err() {
            return End::Failed("the TikTok socket closed at once".into());
        }
    }
    failures.up();
    source.live(Some(room.to_string()));
    source.set("connected", format!("reading the LIVE chat of room {room}"));
    let stale = Duration::from_secs(config.stale_s);
    let mut beat = tokio::time::interval(Duration::from_secs(config.heartbeat_s));
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    beat.tick().await;
    let mut last = tokio::time::Instant::now();
    loop {
        let frame = tokio::select! {
            _ = token.cancelled() => {
                let _ = ws.close(None).await;
                return End::Cancelled;
            }
            _ = beat.tick() => {
                for event in decoder.expired(now_ms()) {
                    source.publish_decoded(Platform::Tiktok, event);
                }
                if ws.send(Message::binary(map::heartbeat(room))).await.is_err() {
                    return End::Failed("the TikTok socket closed".into());
                }
                continue;
            }
            _ = tokio::time::sleep_until(last + stale) => return End::Stale,
            f = ws.next() => f,
        };
        last = tokio::time::Instant::now();
        let bytes = match frame {
            None => return End::Failed("the TikTok socket closed".into()),
            Some(Err(e)) => return End::Failed(format!("the TikTok socket failed: {e}")),
            Some(Ok(Message::Binary(b))) => b,
            Some(Ok(Message::Close(c))) => {
                return End::Failed(format!("TikTok closed the socket: {c:?}"));
            }
            Some(Ok(_)) => continue,
        };
        let read = match decoder.read(&bytes, now_ms()) {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(source = source.name, "TikTok frame skipped: {e}");
                continue;
            }
        };
        if let Some(ack) = read.ack
            && ws.send(Message::binary(ack)).await.is_err()
        {
            return End::Failed("the TikTok socket closed".into());
        }
        if read.likes > 0 {
            source.tally_likes(Platform::Tiktok, read.likes);
        }
        for event in read.events {
            source.publish_decoded(Platform::Tiktok, event);
        }
        if read.ended {
            let _ = ws.close(None).await;
            return End::Ended;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_url_carries_the_room_and_the_direct_flag() {
        let url = socket_url("wss://example.test", 7001).expect("url");
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(url.path(), "/webcast/im/ws_proxy/ws_reuse_supplement/");
        assert_eq!(query["room_id"], "7001");
        assert_eq!(query["ws_direct"], "1");
        assert_eq!(query["compress"], "gzip");
        assert_eq!(query["aid"], "1988");
    }
}
