//! Loopback stand-ins for Twitch's HTTP APIs (id.twitch.tv's validate, Helix users, followers
//! and EventSub subscriptions) and for the EventSub WebSocket server. Each test starts its own.
#![allow(dead_code)] // each test binary uses part of it

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use warp::Filter;

#[derive(Default)]
pub struct State {
    /// (type, condition, session id) of every subscription created.
    pub created: Vec<(String, Value, String)>,
    pub deleted: Vec<String>,
    /// The transport of every subscription created.
    pub transports: Vec<Value>,
    pub follower_calls: usize,
    /// Outgoing queues of the WebSocket connections, in connection order.
    pub sockets: Vec<mpsc::UnboundedSender<Option<String>>>,
    /// keepalive_timeout_seconds for the next connections (default 10).
    pub keepalive: Vec<u64>,
    /// When each WebSocket connection was accepted, on the runtime's clock (paused or not).
    pub accepted: Vec<tokio::time::Instant>,
}

pub struct FakeTwitch {
    pub http: SocketAddr,
    pub ws: SocketAddr,
    pub state: Arc<Mutex<State>>,
}

pub const USER_ID: &str = "141981764";

impl FakeTwitch {
    pub async fn start() -> FakeTwitch {
        let state: Arc<Mutex<State>> = Arc::default();
        let s = state.clone();
        let validate = warp::path!("oauth2" / "validate").map(|| {
            warp::reply::json(&json!({"client_id": "test-client", "login": "streamer", "scopes": ["moderator:read:followers"], "user_id": USER_ID, "expires_in": 14000}))
        });
        let users = warp::get()
            .and(warp::path!("helix" / "users"))
            .and(warp::query::<HashMap<String, String>>())
            .map(|q: HashMap<String, String>| {
                let login = q.get("login").cloned().unwrap_or_default();
                let id = if login == "streamer" {
                    USER_ID.to_string()
                } else {
                    format!("9{}", login.len())
                };
                warp::reply::json(
                    &json!({"data": [{"id": id, "login": login, "display_name": login}]}),
                )
            });
        let st = s.clone();
        let followers = warp::get().and(warp::path!("helix" / "channels" / "followers")).map(move || {
            st.lock().expect("state").follower_calls += 1;
            warp::reply::json(&json!({"total": 2, "data": [
                {"user_id": "11", "user_login": "newest", "user_name": "Newest", "followed_at": "2026-11-23T12:00:00Z"},
                {"user_id": "10", "user_login": "older", "user_name": "Older", "followed_at": "2026-11-22T12:00:00Z"}
            ], "pagination": {}}))
        });
        let st = s.clone();
        let create = warp::post().and(warp::path!("helix" / "eventsub" / "subscriptions")).and(warp::header::<String>("client-id")).and(warp::body::json()).map(move |client: String, body: Value| {
            assert_eq!(client, "test-client");
            if body["type"] == "channel.subscription.gift" && body["condition"]["broadcaster_user_id"] == "95" {
                return warp::reply::with_status(
                    warp::reply::json(&json!({"error": "Forbidden", "status": 403, "message": "subscription missing proper authorization"})),
                    warp::http::StatusCode::FORBIDDEN,
                );
            }
            let mut st = st.lock().expect("state");
            let id = format!("sub-{}", st.created.len());
            st.transports.push(body["transport"].clone());
            st.created.push((
                body["type"].as_str().unwrap_or_default().to_string(),
                body["condition"].clone(),
                body["transport"]["session_id"].as_str().unwrap_or_default().to_string(),
            ));
            warp::reply::with_status(
                warp::reply::json(&json!({"data": [{"id": id, "status": "enabled", "type": body["type"], "version": body["version"], "condition": body["condition"], "transport": body["transport"], "cost": 0}], "total": 1, "total_cost": 0, "max_total_cost": 10})),
                warp::http::StatusCode::ACCEPTED,
            )
        });
        let list = warp::get().and(warp::path!("helix" / "eventsub" / "subscriptions")).map(|| {
            warp::reply::json(&json!({"data": [
                {"id": "stale-1", "status": "websocket_disconnected", "type": "channel.follow", "version": "2", "condition": {}, "transport": {"method": "websocket", "session_id": "old"}, "cost": 0}
            ], "total": 1}))
        });
        let st = s.clone();
        let delete = warp::delete()
            .and(warp::path!("helix" / "eventsub" / "subscriptions"))
            .and(warp::query::<HashMap<String, String>>())
            .map(move |q: HashMap<String, String>| {
                st.lock()
                    .expect("state")
                    .deleted
                    .push(q.get("id").cloned().unwrap_or_default());
                warp::reply::with_status(warp::reply(), warp::http::StatusCode::NO_CONTENT)
            });
        let streams = warp::get()
            .and(warp::path!("helix" / "streams"))
            .and(warp::query::<HashMap<String, String>>())
            .map(|q: HashMap<String, String>| {
                let live = q.get("user_login").map(String::as_str) == Some("streamer");
                let data = if live {
                    json!([{"id": "1", "user_login": "streamer", "title": "Testing overlays", "type": "live"}])
                } else {
                    json!([])
                };
                warp::reply::json(&json!({"data": data}))
            });
        let app_token = warp::post()
            .and(warp::path!("oauth2" / "token"))
            .and(warp::body::form::<HashMap<String, String>>())
            .map(|f: HashMap<String, String>| {
                assert_eq!(f.get("grant_type").map(String::as_str), Some("client_credentials"));
                assert_eq!(f.get("client_secret").map(String::as_str), Some("shh"));
                warp::reply::json(&json!({"access_token": "app-token", "expires_in": 5000000, "token_type": "bearer"}))
            });
        let routes = validate
            .or(streams)
            .or(app_token)
            .or(users)
            .or(followers)
            .or(create)
            .or(list)
            .or(delete);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let http = listener.local_addr().expect("addr");
        tokio::spawn(warp::serve(routes).incoming(listener).run());

        let ws_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind ws");
        let ws = ws_listener.local_addr().expect("addr");
        let st = s.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = ws_listener.accept().await {
                let Ok(mut socket) = tokio_tungstenite::accept_async(tcp).await else {
                    continue;
                };
                let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
                let (n, keepalive) = {
                    let mut st = st.lock().expect("state");
                    st.sockets.push(tx);
                    st.accepted.push(tokio::time::Instant::now());
                    let keepalive = if st.keepalive.is_empty() {
                        10
                    } else {
                        st.keepalive.remove(0)
                    };
                    (st.sockets.len(), keepalive)
                };
                tokio::spawn(async move {
                    let welcome = json!({
                        "metadata": {"message_id": format!("welcome-{n}"), "message_type": "session_welcome", "message_timestamp": now()},
                        "payload": {"session": {"id": format!("S{n}"), "status": "connected", "connected_at": now(), "keepalive_timeout_seconds": keepalive, "reconnect_url": null, "recovery_url": null}}
                    });
                    if socket
                        .send(Message::Text(welcome.to_string().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    loop {
                        tokio::select! {
                            out = rx.recv() => match out {
                                Some(Some(text)) => if socket.send(Message::Text(text.into())).await.is_err() { return },
                                _ => { let _ = socket.close(None).await; return }
                            },
                            incoming = socket.next() => match incoming {
                                // Twitch closes with 4001 on inbound traffic; a client must send none.
                                Some(Ok(Message::Text(_))) | Some(Ok(Message::Binary(_))) => panic!("the client sent data to EventSub"),
                                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                                _ => {}
                            }
                        }
                    }
                });
            }
        });
        FakeTwitch { http, ws, state: s }
    }

    /// Sends a frame on WebSocket connection `n` (1-based).
    pub fn send(&self, n: usize, frame: &Value) {
        let st = self.state.lock().expect("state");
        let _ = st.sockets[n - 1].send(Some(frame.to_string()));
    }

    pub fn connections(&self) -> usize {
        self.state.lock().expect("state").sockets.len()
    }

    pub fn created(&self) -> Vec<(String, Value, String)> {
        self.state.lock().expect("state").created.clone()
    }

    pub async fn wait(&self, what: &str, check: impl Fn(&FakeTwitch) -> bool) {
        let start = Instant::now();
        while !check(self) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// overlay.toml pointing every Twitch endpoint here (chat off: no IRC in these tests).
    pub fn config(&self) -> String {
        format!(
            "[twitch]\nclient_id = \"test-client\"\nchannels = [\"streamer\"]\nchat = false\npart_grace_s = 1\n[twitch.endpoints]\nid = \"http://{h}/oauth2\"\nhelix = \"http://{h}/helix\"\neventsub_ws = \"ws://{w}/ws\"\n",
            h = self.http,
            w = self.ws
        )
    }
}

/// RFC 3339 now, as Twitch writes timestamps (nanoseconds, `Z`).
pub fn now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// A notification frame for fixture payload `file`, moved to channel `streamer`.
pub fn notification(file: &str, kind: &str, message_id: &str, timestamp: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/eventsub_payloads")
        .join(file);
    let mut payload: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json");
    for key in ["broadcaster_user_login", "to_broadcaster_user_login"] {
        if payload["event"].get(key).is_some() {
            payload["event"][key] = json!("streamer");
        }
    }
    json!({
        "metadata": {"message_id": message_id, "message_type": "notification", "message_timestamp": timestamp,
                     "subscription_type": kind, "subscription_version": "1"},
        "payload": payload
    })
}

/// A server folder holding the streamer's token (valid for years).
pub fn logged_in() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("data")).expect("data");
    let token = json!({"access_token": "access-1", "refresh_token": "refresh-1", "expires_at_ms": 4_102_444_800_000u64,
                       "scopes": ["moderator:read:followers"], "login": "streamer", "user_id": USER_ID});
    std::fs::write(dir.path().join("data/twitch-token.json"), token.to_string()).expect("token");
    dir
}
