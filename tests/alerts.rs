//! Alert control over real sockets: the HTTP commands and their access rule, a moderator's
//! chat command from the fake Twitch IRC server, safe mode, and the events socket. What pages
//! show is in `tests/alert_pages.rs` (Chromium).

mod common;
#[path = "common/fake_irc.rs"]
mod fake_irc;

use std::time::Duration;

use common::{Server, WAIT, eventually};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// An alert overlay of `channel` that plays without waiting for OBS (no page is open here).
fn alerts_overlay(channel: &str) -> String {
    format!(
        "kind = \"alerts\"\nchannel = \"{channel}\"\n[options]\nduration_s = 30\ngap_s = 0.1\nhold_off_air = false\n"
    )
}

async fn post(server: &Server, path: &str, body: Value) -> (u16, Value) {
    common::post_json(&server.url(path), &body.to_string()).await
}

async fn follow(server: &Server, channel: &str, user: &str) -> u64 {
    let (status, event) = server
        .post_event(json!({"channel": channel, "kind": "follow",
                           "data": {"user_id": user, "user_login": user, "user_name": user}}))
        .await;
    assert_eq!(status, 202, "{event}");
    event["id"].as_u64().expect("id")
}

async fn state(server: &Server, channel: &str) -> Value {
    let (status, state) = server
        .get_json(&format!("/api/channels/{channel}/alerts"))
        .await;
    assert_eq!(status, 200, "{state}");
    state
}

/// Waits until the channel's alert on screen is event `id` (`None`: nothing plays).
async fn playing(server: &Server, channel: &str, id: Option<u64>) -> Value {
    eventually(&format!("alert {id:?} on screen"), WAIT, || async move {
        let s = state(server, channel).await;
        (s["playing"]["id"].as_u64() == id).then_some(s)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_over_http_under_the_access_rule() {
    let server = Server::start(
        "",
        &[
            ("alerts", &alerts_overlay("hq")),
            ("second", &alerts_overlay("hq")),
        ],
    )
    .await;
    let first = follow(&server, "hq", "ann").await;
    let s = playing(&server, "hq", Some(first)).await;
    assert_eq!(s["overlays"].as_array().map(Vec::len), Some(2), "{s}");
    assert_eq!(s["playing"]["summary"], "ann followed");

    // Paused: the next waits; the one on screen plays on until skipped.
    let (status, s) = post(&server, "/api/channels/hq/alerts/pause", json!({})).await;
    assert_eq!((status, s["paused"].clone()), (200, json!(true)), "{s}");
    let second = follow(&server, "hq", "bob").await;
    let (_, s) = post(&server, "/api/channels/hq/alerts/skip", json!({})).await;
    assert_eq!(s["playing"], Value::Null);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let s = state(&server, "hq").await;
    assert_eq!(
        (s["playing"].clone(), s["queued"][0]["id"].clone()),
        (Value::Null, json!(second))
    );
    post(&server, "/api/channels/hq/alerts/resume", json!({})).await;
    playing(&server, "hq", Some(second)).await;

    // Replay an old event by id: marked, and no new event is published (nothing counts twice).
    let before = server.get_json("/api/channels/hq/events?limit=50").await.1;
    let (status, s) = post(
        &server,
        "/api/channels/hq/alerts/replay",
        json!({"id": first}),
    )
    .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(
        (
            s["queued"][0]["id"].clone(),
            s["queued"][0]["replay"].clone()
        ),
        (json!(first), json!(true))
    );
    post(&server, "/api/channels/hq/alerts/skip", json!({})).await;
    let s = playing(&server, "hq", Some(first)).await;
    assert_eq!(s["playing"]["replay"], true);
    let after = server.get_json("/api/channels/hq/events?limit=50").await.1;
    assert_eq!(
        before["events"], after["events"],
        "a replay publishes nothing"
    );

    // One overlay only; mute, clear; and the last alert replayed with no body.
    let (_, s) = post(
        &server,
        "/api/channels/hq/alerts/mute?overlay=second",
        json!({}),
    )
    .await;
    assert_eq!(s["muted"], true);
    assert_eq!(s["overlays"].as_array().map(Vec::len), Some(1));
    assert_eq!(state(&server, "hq").await["overlays"][0]["muted"], false);
    follow(&server, "hq", "cat").await;
    let (_, s) = post(&server, "/api/channels/hq/alerts/clear", json!({})).await;
    assert_eq!(s["queued"], json!([]));
    let r = common::client()
        .post(server.url("/api/channels/hq/alerts/replay"))
        .send()
        .await
        .expect("replay");
    let s: Value = r.json().await.expect("json");
    assert_eq!(
        s["queued"][0]["id"],
        json!(first),
        "the last one that started: {s}"
    );

    // Mistakes say what to do.
    for (path, body, code, text) in [
        (
            "/api/channels/hq/alerts/rewind",
            json!({}),
            404,
            "commands are",
        ),
        (
            "/api/channels/nobody/alerts/pause",
            json!({}),
            404,
            "no alert overlay",
        ),
        (
            "/api/channels/hq/alerts/pause?overlay=nope",
            json!({}),
            404,
            "not an alert overlay",
        ),
        (
            "/api/channels/hq/alerts/replay",
            json!({"id": 12345}),
            404,
            "not in the history",
        ),
        (
            "/api/channels/hq/alerts/replay",
            json!({"id": "x"}),
            400,
            "event id",
        ),
        (
            "/api/channels/hq/safe-mode",
            json!({"minutes": -1}),
            400,
            "minutes",
        ),
    ] {
        let (status, answer) = post(&server, path, body).await;
        assert_eq!(status, code, "{path}: {answer}");
        assert!(
            answer["error"].as_str().unwrap_or_default().contains(text),
            "{path}: {answer}"
        );
    }

    // The one access rule: a page of another site, a rebinding name, no token from afar.
    let client = common::client();
    let foreign = client
        .post(server.url("/api/channels/hq/alerts/pause"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("post");
    assert_eq!(foreign.status(), 403);
    let rebound = client
        .get(server.url("/api/channels/hq/alerts"))
        .header("host", "evil.example:7878")
        .send()
        .await
        .expect("get");
    assert_eq!(rebound.status(), 403);
    let presence = client
        .post(server.url("/o/alerts/presence"))
        .header("origin", "https://evil.example")
        .body(r#"{"page": "p", "on_air": true}"#)
        .send()
        .await
        .expect("presence");
    assert_eq!(presence.status(), 403);
    assert_eq!(state(&server, "hq").await["paused"], false);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderators_skip_from_chat_skips_and_a_viewers_does_nothing() {
    let config = format!(
        "[twitch]\npart_grace_s = 1\n[twitch.endpoints]\nirc = \"{}\"\n[twitch.emotes]\nenabled = false\n",
        fake_irc::server().addr
    );
    let channel = "c_alertcmd";
    let server = Server::start(&config, &[("alerts", &alerts_overlay(channel))]).await;
    // An open stream of the overlay joins the channel's chat.
    let _sse = server.sse("/o/alerts/events", None).await;
    fake_irc::server()
        .wait(&format!("#{channel} joined"), WAIT, |f| {
            f.joined(channel) > 0
        })
        .await;
    let id = follow(&server, channel, "fan").await;
    playing(&server, channel, Some(id)).await;
    let line = |moderator: bool, text: &str| fake_irc::chat_line(channel, moderator, text);
    assert!(fake_irc::server().send(channel, &line(false, "!skip")) > 0);
    // A line sent after it is read after it: once this one is in the log, the !skip was seen.
    assert!(fake_irc::server().send(channel, &line(false, "marker one")) > 0);
    eventually("the viewer's lines read", WAIT, || async {
        let events = server
            .get_json(&format!("/api/channels/{channel}/events?limit=5"))
            .await
            .1;
        (events["events"][0]["data"]["text"] == "marker one").then_some(())
    })
    .await;
    assert_eq!(
        state(&server, channel).await["playing"]["id"],
        json!(id),
        "a viewer cannot skip"
    );
    assert!(fake_irc::server().send(channel, &line(true, "!SKIP please")) > 0);
    playing(&server, channel, None).await;
    assert!(fake_irc::server().send(channel, &line(true, "!pause")) > 0);
    eventually("paused by a moderator", WAIT, || async {
        (state(&server, channel).await["paused"] == true).then_some(())
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn safe_mode_clears_stops_follows_and_ends_by_itself() {
    let chat = "kind = \"chat\"\nchannel = \"safe\"\n";
    let server = Server::start("", &[("alerts", &alerts_overlay("safe")), ("chat", chat)]).await;
    let mut chat_stream = server.sse("/o/chat/events", None).await;
    let first = follow(&server, "safe", "one").await;
    playing(&server, "safe", Some(first)).await;
    follow(&server, "safe", "two").await;
    // Three seconds of safe mode.
    let (status, s) = post(
        &server,
        "/api/channels/safe/safe-mode",
        json!({"minutes": 0.05}),
    )
    .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["queued"], json!([]), "queued alerts are cleared");
    assert!(s["safe_mode"]["until_ms"].as_u64().is_some(), "{s}");
    // Its chat overlays are cleared, on every platform.
    let clear = loop {
        let f = chat_stream.next().await;
        if f.event == "chat.clear" {
            break f;
        }
    };
    assert_eq!(clear.data["data"]["all_platforms"], true);
    for bot in ["bot1", "bot2", "bot3"] {
        follow(&server, "safe", bot).await;
    }
    assert_eq!(
        state(&server, "safe").await["queued"],
        json!([]),
        "follows are stopped"
    );
    let (_, raid) = server
        .post_event(json!({"channel": "safe", "kind": "raid", "data": {"viewers": 5}}))
        .await;
    assert_eq!(
        state(&server, "safe").await["queued"][0]["id"],
        raid["id"],
        "other alerts still come"
    );
    eventually("safe mode ends by itself", WAIT, || async {
        state(&server, "safe").await["safe_mode"]
            .is_null()
            .then_some(())
    })
    .await;
    let later = follow(&server, "safe", "three").await;
    let s = state(&server, "safe").await;
    assert_eq!(s["queued"][1]["id"], json!(later), "{s}");
    // "one" followed already today: no second alert, now or after a restart.
    follow(&server, "safe", "one").await;
    assert_eq!(
        state(&server, "safe").await["queued"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let server = server
        .restart("", &[("alerts", &alerts_overlay("safe")), ("chat", chat)])
        .await;
    follow(&server, "safe", "one").await;
    let s = state(&server, "safe").await;
    let ids: Vec<Value> = s["queued"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["id"].clone())
        .collect();
    assert!(!ids.is_empty() && ids.len() <= 3, "{s}");
    assert!(
        s["queued"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|a| a["summary"] != "one followed"),
        "{s}"
    );
    // DELETE ends it early.
    post(&server, "/api/channels/safe/safe-mode", json!({})).await;
    let r = common::client()
        .delete(server.url("/api/channels/safe/safe-mode"))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 200);
    assert!(state(&server, "safe").await["safe_mode"].is_null());
    server.stop().await;
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next message of type `kind`, each waited for at most [`WAIT`].
async fn hear(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = frame {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] == kind {
                return v;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_socket_commands_alerts_and_hears_every_change() {
    let server = Server::start("", &[("alerts", &alerts_overlay("sock"))]).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{}/api/ws", server.addr))
        .await
        .expect("connect");
    let say = |v: Value| Message::text(v.to_string());
    socket
        .send(say(json!({"type": "subscribe", "channels": ["sock"]})))
        .await
        .expect("send");
    hear(&mut socket, "subscribed").await;
    socket
        .send(say(
            json!({"type": "alerts", "channel": "sock", "action": "pause", "ref": 7}),
        ))
        .await
        .expect("send");
    let answer = hear(&mut socket, "alerts").await;
    assert_eq!(
        (answer["paused"].clone(), answer["ref"].clone()),
        (json!(true), json!(7))
    );
    // A change from another path reaches the socket too.
    post(&server, "/api/channels/sock/alerts/resume", json!({})).await;
    let mut resumed = false;
    for _ in 0..10 {
        if hear(&mut socket, "alerts").await["paused"] == false {
            resumed = true;
            break;
        }
    }
    assert!(resumed, "the resume was heard");
    socket
        .send(say(
            json!({"type": "safe_mode", "channel": "sock", "minutes": 5}),
        ))
        .await
        .expect("send");
    let answer = hear(&mut socket, "alerts").await;
    assert!(answer["safe_mode"]["until_ms"].is_u64(), "{answer}");
    socket
        .send(say(
            json!({"type": "alerts", "channel": "sock", "action": "dance"}),
        ))
        .await
        .expect("send");
    let error = hear(&mut socket, "error").await;
    assert!(
        error["error"]
            .as_str()
            .unwrap_or_default()
            .contains("actions are"),
        "{error}"
    );
    server.stop().await;
}
