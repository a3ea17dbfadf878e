//! Loopback stand-ins for YouTube (a watch page and `get_live_chat`) and Kick (the channel
//! lookup, realtime negotiation and tokens, and a WebSocket server speaking Pusher or
//! Centrifugo). Each test starts its own. The YouTube watch page is written here (real pages
//! are megabytes); the chat answers and Kick frames are the recorded fixtures.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use warp::Filter;

use crate::common::WAIT;

pub fn fixture(platform: &str, name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/fixtures", platform, name]
        .iter()
        .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What the YouTube fake answers a poll with.
pub enum Answer {
    Json(Value),
    Status(u16),
}

#[derive(Default)]
pub struct YoutubeState {
    /// Answers still to give, in order; once empty, an idle answer (no actions).
    pub script: VecDeque<Answer>,
    /// Each poll: when, the continuation sent, the key in the query.
    pub polls: Vec<(Instant, String, Option<String>)>,
    /// When each poll came, on the runtime's clock (paused or not).
    pub paused_polls: Vec<tokio::time::Instant>,
    pub page_views: usize,
    /// Serve the cookie-consent page to the first page view without a consent cookie.
    pub consent_first: bool,
    /// timeoutMs of the idle answers.
    pub idle_timeout_ms: u64,
    /// What the page shows: "live" (the default), "upcoming" or "offline".
    pub page: String,
}

pub struct FakeYoutube {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<YoutubeState>>,
}

/// A watch page as small as YouTube's are large: what the resolver reads, nothing else.
fn watch_page(video: &str) -> String {
    format!(
        r#"<!DOCTYPE html><html><head><link rel="canonical" href="https://www.youtube.com/watch?v={video}"></head>
<body><script>ytcfg.set({{"INNERTUBE_API_KEY":"fake-key","INNERTUBE_CONTEXT_CLIENT_VERSION":"2.20261120.01.00"}});</script>
<script>var ytInitialData = {{"contents":{{"twoColumnWatchNextResults":{{"conversationBar":{{"liveChatRenderer":{{
"continuations":[{{"reloadContinuationData":{{"continuation":"TOP-CHAT"}}}}],
"header":{{"liveChatHeaderRenderer":{{"viewSelector":{{"sortFilterSubMenuRenderer":{{"subMenuItems":[
{{"title":"Top chat","selected":true,"continuation":{{"reloadContinuationData":{{"continuation":"TOP-CHAT"}}}}}},
{{"title":"Live chat","selected":false,"continuation":{{"reloadContinuationData":{{"continuation":"LIVE-CHAT"}}}}}}]}}}}}}}}}}}}}}}},
"playerOverlays":{{}}}};</script><script>var ytInitialPlayerResponse = {{"videoDetails":{{"videoId":"{video}","isLiveContent":true}},"microformat":{{"liveBroadcastDetails":{{"isLiveNow":true}}}}}};</script></body></html>"#
    )
}

/// The channel id whose live page the fake serves.
pub const FAKE_CHANNEL_ID: &str = "UCfakelivechannel0000000";

const CONSENT_PAGE: &str = "<html><body><h1>Before you continue to YouTube</h1><form action=\"https://consent.youtube.com/save\"></form></body></html>";

impl FakeYoutube {
    pub async fn start() -> FakeYoutube {
        let state = Arc::new(Mutex::new(YoutubeState {
            idle_timeout_ms: 200,
            page: "live".into(),
            ..YoutubeState::default()
        }));
        let s = state.clone();
        let page = warp::get()
            .and(warp::path!(String / "live"))
            .and(warp::header::optional::<String>("cookie"))
            .map(move |handle: String, cookie: Option<String>| {
                let mut st = s.lock().expect("state");
                // As YouTube answers a handle nobody has.
                if handle.starts_with("@nosuch") {
                    return warp::reply::with_status(
                        warp::reply::html("<html>404 Not Found</html>".to_string()),
                        warp::http::StatusCode::NOT_FOUND,
                    );
                }
                st.page_views += 1;
                let consented = cookie.is_some_and(|c| c.contains("SOCS="));
                if st.consent_first && !consented {
                    st.consent_first = false;
                    return warp::reply::with_status(
                        warp::reply::html(CONSENT_PAGE.to_string()),
                        warp::http::StatusCode::OK,
                    );
                }
                let page = match st.page.as_str() {
                    "upcoming" => warp::reply::html(
                        r#"<html><link rel="canonical" href="https://www.youtube.com/watch?v=fakelive001"><script>var ytInitialPlayerResponse = {"videoDetails":{"videoId":"fakelive001","isUpcoming":true}};</script></html>"#.to_string(),
                    ),
                    "offline" => warp::reply::html("<html><title>A channel</title></html>".to_string()),
                    _ => warp::reply::html(watch_page("fakelive001")),
                };
                warp::reply::with_status(page, warp::http::StatusCode::OK)
            });
        // The live page of the one channel id the fake knows, and the live video's watch page;
        // any other is a 404, as YouTube answers a channel nobody has.
        let by_id = warp::get()
            .and(
                warp::path!("channel" / String / "live")
                    .map(|id: String| id == FAKE_CHANNEL_ID)
                    .or(warp::path!("watch")
                        .and(warp::query::<std::collections::HashMap<String, String>>())
                        .map(|q: std::collections::HashMap<String, String>| {
                            q.get("v").map(String::as_str) == Some("fakelive001")
                        }))
                    .unify(),
            )
            .map(|known: bool| {
                if known {
                    warp::reply::with_status(
                        warp::reply::html(watch_page("fakelive001")),
                        warp::http::StatusCode::OK,
                    )
                } else {
                    warp::reply::with_status(
                        warp::reply::html("<html>404 Not Found</html>".to_string()),
                        warp::http::StatusCode::NOT_FOUND,
                    )
                }
            });
        let s = state.clone();
        let poll = warp::post()
            .and(warp::path!(
                "youtubei" / "v1" / "live_chat" / "get_live_chat"
            ))
            .and(warp::query::<std::collections::HashMap<String, String>>())
            .and(warp::body::json())
            .map(
                move |q: std::collections::HashMap<String, String>, body: Value| {
                    let mut st = s.lock().expect("state");
                    let continuation = body["continuation"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    st.polls
                        .push((Instant::now(), continuation, q.get("key").cloned()));
                    st.paused_polls.push(tokio::time::Instant::now());
                    let n = st.polls.len();
                    let answer = st
                        .script
                        .pop_front()
                        .unwrap_or_else(|| Answer::Json(idle(n, st.idle_timeout_ms)));
                    match answer {
                        Answer::Json(v) => warp::reply::with_status(
                            warp::reply::json(&v),
                            warp::http::StatusCode::OK,
                        ),
                        Answer::Status(code) => warp::reply::with_status(
                            warp::reply::json(&json!({"error": {"code": code}})),
                            warp::http::StatusCode::from_u16(code).expect("status"),
                        ),
                    }
                },
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(
            warp::serve(page.or(by_id).or(poll))
                .incoming(listener)
                .run(),
        );
        FakeYoutube { addr, state }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn push(&self, answer: Answer) {
        self.state.lock().expect("state").script.push_back(answer);
    }

    pub fn polls(&self) -> Vec<(Instant, String, Option<String>)> {
        self.state.lock().expect("state").polls.clone()
    }

    /// Waits until `f` holds for the state.
    pub async fn wait_for(&self, what: &str, f: impl Fn(&YoutubeState) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !f(&self.state.lock().expect("state")) {
            assert!(Instant::now() < deadline, "YouTube fake: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// An answer with no new chat.
pub fn idle(n: usize, timeout_ms: u64) -> Value {
    with_actions(Vec::new(), n, timeout_ms)
}

/// An answer holding `actions`, asking to wait `timeout_ms`.
pub fn with_actions(actions: Vec<Value>, n: usize, timeout_ms: u64) -> Value {
    json!({"continuationContents": {"liveChatContinuation": {
        "continuations": [{"invalidationContinuationData": {"continuation": format!("next-{n}"), "timeoutMs": timeout_ms}}],
        "actions": actions,
    }}})
}

/// A recorded `get_live_chat` fixture with its item ids set to `id` (the fixtures all use the
/// placeholder "id") and its pace set to `timeout_ms`.
pub fn recorded(name: &str, id: &str, timeout_ms: u64) -> Value {
    let mut v: Value = serde_json::from_str(&fixture("youtube", name)).expect("fixture json");
    if let Some(c) = v.pointer_mut("/continuationContents/liveChatContinuation/continuations/0")
        && let Some(data) = c.as_object_mut().and_then(|o| o.values_mut().next())
    {
        data["timeoutMs"] = json!(timeout_ms);
    }
    if let Some(actions) = v
        .pointer_mut("/continuationContents/liveChatContinuation/actions")
        .and_then(Value::as_array_mut)
    {
        for action in actions {
            if let Some(item) = action
                .pointer_mut("/addChatItemAction/item")
                .and_then(|i| i.as_object_mut())
                .and_then(|o| o.values_mut().next())
            {
                item["id"] = json!(id);
            }
        }
    }
    v
}

/// Which socket the Kick fake speaks.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum KickMode {
    Pusher,
    Centrifugo,
}

#[derive(Default)]
pub struct KickState {
    /// Every frame a client sent, in order.
    pub received: Vec<String>,
    /// The Origin header of each socket connection.
    pub origins: Vec<Option<String>>,
    pub negotiations: Vec<String>,
    pub tokens_issued: Vec<String>,
    pub lookups: Vec<String>,
    /// Outgoing queue of the newest socket.
    pub socket: Option<mpsc::UnboundedSender<String>>,
    /// Sockets the client closed (or that dropped).
    pub closed: usize,
}

pub struct FakeKick {
    pub http: SocketAddr,
    pub ws: SocketAddr,
    pub state: Arc<Mutex<KickState>>,
}

impl FakeKick {
    pub async fn start(mode: KickMode) -> FakeKick {
        let state: Arc<Mutex<KickState>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind ws");
        let ws = listener.local_addr().expect("addr");
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(serve_socket(tcp, s, mode));
            }
        });
        let s = state.clone();
        let lookup = warp::get()
            .and(warp::path!("api" / "v2" / "channels" / String))
            .map(move |slug: String| {
                s.lock().expect("state").lookups.push(slug.clone());
                let all: Value =
                    serde_json::from_str(&fixture("kick", "api_v2_channels.two_channels.json"))
                        .expect("fixture");
                match all.get(&slug) {
                    Some(channel) if channel.get("id").is_some() => warp::reply::with_status(
                        warp::reply::json(channel),
                        warp::http::StatusCode::OK,
                    ),
                    _ => warp::reply::with_status(
                        warp::reply::json(&json!({"message": "Not found"})),
                        warp::http::StatusCode::NOT_FOUND,
                    ),
                }
            });
        let s = state.clone();
        let negotiate = warp::post()
            .and(warp::path!("realtime" / "channels" / String / "chat" / "connection"))
            .and(warp::body::json())
            .map(move |channel: String, body: Value| {
                s.lock().expect("state").negotiations.push(channel);
                assert!(body["client"]["id"].is_string(), "negotiation names its client");
                let (provider, url) = match mode {
                    KickMode::Centrifugo => ("centrifugo", format!("ws://{ws}/connection/websocket")),
                    KickMode::Pusher => ("pusher", format!("ws://{ws}/app/fake?protocol=7")),
                };
                warp::reply::json(&json!({"data": {"connections": [{"provider": provider, "credentials": {"url": url}}], "mode": "websocket"}, "message": "success"}))
            });
        let s = state.clone();
        let auth = warp::post()
            .and(warp::path!("realtime" / "auth" / "connection"))
            .and(warp::body::json())
            .map(move |body: Value| {
                let token = format!("guest-token-{}", body["client_id"].as_str().unwrap_or("?"));
                s.lock().expect("state").tokens_issued.push(token.clone());
                warp::reply::json(&json!({"data": {"token": token}}))
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let http = listener.local_addr().expect("addr");
        tokio::spawn(
            warp::serve(lookup.or(negotiate).or(auth))
                .incoming(listener)
                .run(),
        );
        FakeKick { http, ws, state }
    }

    /// The `[kick]` settings pointing at this fake.
    pub fn config(&self, transport: &str) -> String {
        format!(
            "[kick]\napi_base = \"http://{h}\"\nrealtime_base = \"http://{h}/realtime\"\npusher_url = \"ws://{w}/app/fake?protocol=7\"\ntransport = \"{transport}\"\n",
            h = self.http,
            w = self.ws
        )
    }

    /// Sends `text` as one frame on the newest socket.
    pub fn send(&self, text: &str) {
        let st = self.state.lock().expect("state");
        st.socket
            .as_ref()
            .expect("a socket is open")
            .send(text.to_string())
            .expect("socket open");
    }

    pub async fn wait_for(&self, what: &str, f: impl Fn(&KickState) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !f(&self.state.lock().expect("state")) {
            assert!(Instant::now() < deadline, "Kick fake: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the source subscribed to its four feeds (frames containing `marker`:
    /// `pusher:subscribe`, or `"subscribe"` on Centrifugo).
    pub async fn wait_subscribed(&self, marker: &str) {
        self.wait_for("subscribed to every feed", |s| {
            s.received.iter().filter(|t| t.contains(marker)).count() == 4
        })
        .await;
    }

    pub fn received(&self) -> Vec<Value> {
        self.state
            .lock()
            .expect("state")
            .received
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect()
    }
}

#[allow(clippy::result_large_err)] // the handshake callback's error type is tungstenite's
async fn serve_socket(tcp: tokio::net::TcpStream, state: Arc<Mutex<KickState>>, mode: KickMode) {
    let s = state.clone();
    let callback =
        move |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
              resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
            let origin = req
                .headers()
                .get("origin")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            s.lock().expect("state").origins.push(origin);
            Ok(resp)
        };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    state.lock().expect("state").socket = Some(tx.clone());
    if mode == KickMode::Pusher {
        let established = json!({"event": "pusher:connection_established", "data": json!({"socket_id": "1.2", "activity_timeout": 120}).to_string()});
        let _ = tx.send(established.to_string());
    }
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(Message::text(text)).await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(msg)) = stream.next().await {
        let Message::Text(text) = msg else { continue };
        let text = text.to_string();
        state.lock().expect("state").received.push(text.clone());
        if mode == KickMode::Centrifugo
            && let Ok(v) = serde_json::from_str::<Value>(&text)
        {
            let id = v["id"].clone();
            if v.get("connect").is_some() {
                let _ = tx.send(json!({"id": id, "connect": {"client": "c1", "version": "6.9.0", "ping": 25, "pong": true, "expires": true, "ttl": 2700}}).to_string());
            } else if v.get("subscribe").is_some() {
                let _ = tx.send(json!({"id": id, "subscribe": {}}).to_string());
            }
        }
    }
    writer.abort();
    state.lock().expect("state").closed += 1;
}

/// A recorded Pusher frame's inner event wrapped the way Centrifugo pushes it.
pub fn as_centrifugo_push(pusher_frame: &str) -> String {
    let f: Value = serde_json::from_str(pusher_frame).expect("frame");
    json!({"push": {"channel": f["channel"], "pub": {"data": {"event": f["event"], "data": f["data"]}}}}).to_string()
}
