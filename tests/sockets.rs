//! The WebSockets for tools, with a real WebSocket client over loopback: the chat protocol on
//! Twitch (fake IRC), YouTube and Kick (their fakes) with every message and the error codes
//! that can occur, readers shared and released, the caps; and the events socket's resume,
//! publish and access rule.

mod common;
#[path = "common/fake_irc.rs"]
mod fake_irc;
#[path = "common/fake_platforms.rs"]
mod fake_platforms;

use std::time::Duration;

use common::{Server, WAIT, eventually, overlay};
use fake_platforms::{Answer, FakeKick, FakeYoutube, KickMode, fixture, recorded};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client of `path`, with `origin` when given.
async fn connect(server: &Server, path: &str, origin: Option<&str>) -> Socket {
    let mut request = format!("ws://{}{path}", server.addr)
        .into_client_request()
        .expect("request");
    if let Some(o) = origin {
        request
            .headers_mut()
            .insert("origin", o.parse().expect("header"));
    }
    let (socket, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("connect in time")
        .expect("upgrade");
    socket
}

async fn say(socket: &mut Socket, value: Value) {
    socket
        .send(Message::text(value.to_string()))
        .await
        .expect("send");
}

/// The next JSON message, waiting at most [`WAIT`].
async fn hear(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = frame {
            return serde_json::from_str(&t).expect("json");
        }
    }
}

/// The next message of `kind` (`"chat"`, `"stats"`, `"status"`, `"error"`, `"event"`…).
async fn hear_kind(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let m = hear(socket).await;
        if m["type"] == kind {
            return m;
        }
    }
}

/// Follows the Twitch chat of `channel`, and hears it followed and started.
async fn follow_twitch(socket: &mut Socket, channel: &str) {
    say(
        socket,
        json!({"type": "subscribe", "platform": "twitch", "identifier": channel}),
    )
    .await;
    assert_eq!(hear(socket).await["status"], "subscribed");
    assert_eq!(hear(socket).await["status"], "started");
}

fn twitch_config() -> String {
    format!(
        "[twitch]\npart_grace_s = 1\n[twitch.endpoints]\nirc = \"{}\"\n[twitch.emotes]\nenabled = false\n",
        fake_irc::server().addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_protocol_on_twitch_every_message_and_error() {
    let server = Server::start(&twitch_config(), &[]).await;
    // The root URL upgrades; a plain GET of it is still the dashboard.
    let (status, _) = server.get_json("/").await;
    assert_eq!(status, 200);
    let mut ws = connect(&server, "/", None).await;
    say(&mut ws, json!({"type": "get_stats"})).await;
    assert_eq!(hear(&mut ws).await["code"], "NO_ACTIVE_CHAT");
    say(&mut ws, json!({"type": "unsubscribe"})).await;
    assert_eq!(hear(&mut ws).await["code"], "NO_ACTIVE_CHAT");
    ws.send(Message::text("{not json")).await.expect("send");
    let bad = hear(&mut ws).await;
    assert_eq!(
        (bad["type"].as_str(), bad["code"].as_str()),
        (Some("error"), Some("INVALID_MESSAGE_TYPE"))
    );
    say(&mut ws, json!({"type": "dance"})).await;
    assert_eq!(hear(&mut ws).await["code"], "INVALID_MESSAGE_TYPE");
    // Larger than one read (1 KiB): read whole all the same.
    say(
        &mut ws,
        json!({"type": "dance", "padding": "x".repeat(20_000)}),
    )
    .await;
    assert_eq!(hear(&mut ws).await["code"], "INVALID_MESSAGE_TYPE");
    say(
        &mut ws,
        json!({"type": "subscribe", "platform": "myspace", "identifier": "someone"}),
    )
    .await;
    assert_eq!(hear(&mut ws).await["code"], "UNSUPPORTED_PLATFORM");
    say(
        &mut ws,
        json!({"type": "subscribe", "platform": "tiktok", "identifier": "not a name!"}),
    )
    .await;
    assert_eq!(hear(&mut ws).await["code"], "STREAM_NOT_FOUND");
    say(
        &mut ws,
        json!({"type": "subscribe", "platform": "twitch", "identifier": "not a login"}),
    )
    .await;
    assert_eq!(hear(&mut ws).await["code"], "STREAM_NOT_FOUND");

    let channel = "ws_chat";
    say(
        &mut ws,
        json!({"type": "subscribe", "platform": "twitch", "identifier": channel}),
    )
    .await;
    assert_eq!(
        hear(&mut ws).await,
        json!({"type": "status", "status": "subscribed", "identifier": channel})
    );
    assert_eq!(
        hear(&mut ws).await,
        json!({"type": "status", "status": "started", "liveId": channel})
    );
    // A channel no overlay names is read on demand.
    fake_irc::server()
        .wait(&format!("#{channel} joined"), WAIT, |f| {
            f.joined(channel) > 0
        })
        .await;
    fake_irc::server().send(channel, &fake_irc::fixture("privmsg_emotes.txt", channel));
    let chat = hear_kind(&mut ws, "chat").await;
    let inner = &chat["data"];
    assert_eq!(inner["type"], "chat");
    assert_eq!(inner["platform"], "twitch");
    let content = &inner["data"]["content"];
    let raw = content["raw"].as_str().expect("raw");
    let emote = content["elements"]
        .as_array()
        .expect("elements")
        .iter()
        .find(|e| e["type"] == "emote")
        .expect("an emote")
        .clone();
    // Positions count code points over raw.
    let (start, end) = (
        emote["position"][0].as_u64().expect("start") as usize,
        emote["position"][1].as_u64().expect("end") as usize,
    );
    let cut: String = raw.chars().skip(start).take(end - start).collect();
    assert_eq!(cut, emote["value"].as_str().expect("value"));
    assert!(
        content["rawHtml"]
            .as_str()
            .expect("html")
            .contains("<img class=\"emote\" src=\"https://"),
        "{content}"
    );
    assert!(inner["data"]["author"]["username"].is_string());
    // Stats are pushed when they change, and on request.
    let stats = hear_kind(&mut ws, "stats").await;
    assert_eq!(stats["data"]["totalMessages"], 1, "{stats}");
    say(&mut ws, json!({"type": "get_stats"})).await;
    let asked = hear_kind(&mut ws, "stats").await;
    assert_eq!(
        asked["data"]["uniqueUsers"][0]["messageCount"], 1,
        "{asked}"
    );
    let (_, health) = server.get_json("/health").await;
    assert!(health["activeStreams"].as_u64() >= Some(1), "{health}");
    say(&mut ws, json!({"type": "unsubscribe"})).await;
    assert_eq!(
        hear_kind(&mut ws, "status").await,
        json!({"type": "status", "status": "unsubscribed"})
    );
    // The reader goes one grace period (1 s) after its last client.
    fake_irc::server()
        .wait(&format!("#{channel} parted"), WAIT, |f| {
            f.parts(channel) > 0
        })
        .await;
    server.stop().await;
}

/// A chat message for `channel` whose text carries `seq`.
fn chat_line(channel: &str, seq: u64) -> String {
    let text = format!("line {seq}");
    json!({"channel": channel, "kind": "chat.message", "data": {
        "text": text, "message_id": format!("{channel}-{seq}"), "user_name": "viewer",
        "elements": [{"type": "text", "value": text}],
    }})
    .to_string()
}

/// A client that keeps asking while chat lines pour in gets every line, whole and in order,
/// and every answer: lines are written by the fan-out writers while the client waits, answers
/// by its task, and the socket changes hands at every request. Following a second chat midway
/// neither loses nor repeats a line of the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_lines_and_answers_share_the_socket_whole_and_in_order() {
    const LINES: u64 = 300;
    const PINGS: u8 = 20;
    let server = Server::start("", &[]).await;
    let mut ws = connect(&server, "/ws", None).await;
    follow_twitch(&mut ws, "handover_a").await;
    let url = server.url("/api/events");
    let publisher = tokio::spawn(async move {
        for seq in 1..=LINES {
            let (status, _) = common::post_json(&url, &chat_line("handover_a", seq)).await;
            assert_eq!(status, 202);
        }
    });
    let (mut tx, mut rx) = ws.split();
    let asker = tokio::spawn(async move {
        for i in 0..PINGS {
            tx.send(Message::Ping(vec![i].into())).await.expect("ping");
            tx.send(Message::text(json!({"type": "get_stats"}).to_string()))
                .await
                .expect("ask");
            if i == PINGS / 2 {
                let second =
                    json!({"type": "subscribe", "platform": "twitch", "identifier": "handover_b"});
                tx.send(Message::text(second.to_string()))
                    .await
                    .expect("subscribe");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tx
    });
    let (mut lines, mut pongs, mut stats, mut subscribed) = (Vec::new(), Vec::new(), 0, 0);
    while (lines.len() as u64) < LINES || pongs.len() < PINGS as usize || stats < PINGS {
        let frame = tokio::time::timeout(WAIT, rx.next())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "{} lines, {} pongs, {stats} stats in time",
                    lines.len(),
                    pongs.len()
                )
            })
            .expect("open")
            .expect("a whole frame");
        match frame {
            Message::Pong(p) => pongs.push(p[0]),
            Message::Text(t) => {
                let m: Value = serde_json::from_str(&t).expect("json");
                match m["type"].as_str() {
                    Some("chat") => lines.push(
                        m["data"]["data"]["content"]["raw"]
                            .as_str()
                            .expect("raw")
                            .to_string(),
                    ),
                    Some("stats") => stats += 1,
                    Some("status") if m["status"] == "subscribed" => subscribed += 1,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let expected: Vec<String> = (1..=LINES).map(|s| format!("line {s}")).collect();
    assert_eq!(lines, expected);
    assert_eq!(pongs, (0..PINGS).collect::<Vec<_>>());
    assert_eq!(subscribed, 1);
    publisher.await.expect("published");
    drop(asker.await.expect("asked"));
    server.stop().await;
}

/// A tool that follows a chat which already has messages is told where its stats stand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_a_chat_with_messages_tells_its_stats() {
    let server = Server::start("", &[]).await;
    for seq in 1..=2 {
        let line = chat_line("stats_at_once", seq);
        let (status, _) = common::post_json(&server.url("/api/events"), &line).await;
        assert_eq!(status, 202);
    }
    let mut ws = connect(&server, "/ws", None).await;
    say(
        &mut ws,
        json!({"type": "subscribe", "platform": "twitch", "identifier": "stats_at_once"}),
    )
    .await;
    assert_eq!(hear(&mut ws).await["status"], "subscribed");
    let stats = hear_kind(&mut ws, "stats").await;
    assert_eq!(stats["data"]["totalMessages"], 2, "{stats}");
    assert_eq!(
        stats["data"]["uniqueUsers"][0]["messageCount"], 2,
        "{stats}"
    );
    server.stop().await;
}

/// A chat followed starts from the moment it is followed: what its channel said while the
/// connection was open but following nothing is not replayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_chat_starts_from_now_not_from_when_the_socket_opened() {
    let server = Server::start("", &[]).await;
    let mut ws = connect(&server, "/ws", None).await;
    let url = server.url("/api/events");
    let (status, _) = common::post_json(&url, &chat_line("from_now", 1)).await;
    assert_eq!(status, 202);
    follow_twitch(&mut ws, "from_now").await;
    let (status, _) = common::post_json(&url, &chat_line("from_now", 2)).await;
    assert_eq!(status, 202);
    let chat = hear_kind(&mut ws, "chat").await;
    assert_eq!(chat["data"]["data"]["content"]["raw"], "line 2");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_follows_at_most_eight_chats() {
    let server = Server::start("", &[]).await;
    let mut ws = connect(&server, "/ws", None).await;
    for i in 0..8 {
        follow_twitch(&mut ws, &format!("cap_{i}")).await;
    }
    say(
        &mut ws,
        json!({"type": "subscribe", "platform": "twitch", "identifier": "cap_9"}),
    )
    .await;
    assert_eq!(
        hear_kind(&mut ws, "error").await["code"],
        "TOO_MANY_SUBSCRIPTIONS"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn youtube_chats_on_demand_are_shared_and_their_state_is_told() {
    let yt = FakeYoutube::start().await;
    yt.push(Answer::Json(recorded(
        "get_live_chat.normal.json",
        "w-1",
        200,
    )));
    let config = format!(
        "[twitch]\npart_grace_s = 1\n[youtube]\nbase_url = \"{}\"\nmin_poll_ms = 100\n",
        yt.base()
    );
    let server = Server::start(&config, &[]).await;
    let mut a = connect(&server, "/", None).await;
    let mut b = connect(&server, "/ws", None).await;
    for ws in [&mut a, &mut b] {
        say(
            ws,
            json!({"type": "subscribe", "identifier": "fake", "identifierType": "username"}),
        )
        .await;
        assert_eq!(hear(ws).await["status"], "subscribed");
    }
    // The fake's live video.
    assert_eq!(
        hear_kind(&mut a, "status").await,
        json!({"type": "status", "status": "started", "liveId": "fakelive001"})
    );
    for ws in [&mut a, &mut b] {
        let chat = hear_kind(ws, "chat").await;
        assert_eq!(chat["data"]["platform"], "youtube");
    }
    // Two clients, one reader.
    assert_eq!(yt.state.lock().expect("state").page_views, 1);
    // A channel id and a video id are read too (each its own chat).
    for (identifier, kind) in [
        (fake_platforms::FAKE_CHANNEL_ID, "channelId"),
        ("fakelive001", "liveId"),
    ] {
        say(
            &mut b,
            json!({"type": "subscribe", "identifier": identifier, "identifierType": kind}),
        )
        .await;
        assert_eq!(
            hear_kind(&mut b, "status").await,
            json!({"type": "status", "status": "subscribed", "identifier": identifier})
        );
        assert_eq!(
            hear_kind(&mut b, "status").await,
            json!({"type": "status", "status": "started", "liveId": "fakelive001"}),
            "{kind}"
        );
    }
    // A handle YouTube does not know.
    say(
        &mut a,
        json!({"type": "subscribe", "identifier": "nosuchhandle", "identifierType": "username"}),
    )
    .await;
    assert_eq!(hear(&mut a).await["status"], "subscribed");
    let e = hear_kind(&mut a, "error").await;
    assert_eq!(e["code"], "STREAM_NOT_FOUND", "{e}");
    drop(a);
    drop(b);
    // Released after the grace period: the source stops and its on-demand link is forgotten.
    server.wait_source("youtube:@fake", "idle").await;
    eventually("the on-demand chats released", WAIT, || async {
        (server.health().await["activeStreams"] == 0).then_some(())
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_youtube_stream_that_is_not_live_is_told() {
    let yt = FakeYoutube::start().await;
    yt.state.lock().expect("state").page = "offline".into();
    let config = format!("[youtube]\nbase_url = \"{}\"\n", yt.base());
    let server = Server::start(&config, &[]).await;
    let mut ws = connect(&server, "/", None).await;
    say(
        &mut ws,
        json!({"type": "subscribe", "identifier": "@quiet", "platform": "youtube"}),
    )
    .await;
    let e = hear_kind(&mut ws, "error").await;
    assert_eq!(e["code"], "STREAM_NOT_LIVE", "{e}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kick_chats_on_demand_and_unknown_slugs() {
    let kick = FakeKick::start(KickMode::Pusher).await;
    let server = Server::start(&kick.config("pusher"), &[]).await;
    let mut ws = connect(&server, "/", None).await;
    say(
        &mut ws,
        json!({"type": "subscribe", "platform": "kick", "identifier": "ac7ionman"}),
    )
    .await;
    assert_eq!(hear(&mut ws).await["status"], "subscribed");
    kick.wait_subscribed("pusher:subscribe").await;
    assert_eq!(hear_kind(&mut ws, "status").await["status"], "started");
    kick.send(&fixture("kick", "pusher.chat_message.json"));
    let chat = hear_kind(&mut ws, "chat").await;
    assert_eq!(chat["data"]["platform"], "kick");
    assert_eq!(
        chat["data"]["data"]["content"]["raw"],
        "If she got your location put that phone in water and run hermano"
    );
    say(
        &mut ws,
        json!({"type": "subscribe", "platform": "kick", "identifier": "nosuchslug"}),
    )
    .await;
    assert_eq!(hear(&mut ws).await["status"], "subscribed");
    assert_eq!(
        hear_kind(&mut ws, "error").await["code"],
        "STREAM_NOT_FOUND"
    );
    server.stop().await;
}

fn follow(seq: u64) -> Value {
    json!({"type": "publish", "channel": "wsev", "kind": "follow", "data": {"user_name": "f", "seq": seq}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_socket_resumes_with_nothing_lost_or_repeated_under_a_racing_publisher() {
    let server = Server::start("", &[("ev", &overlay("events", "wsev"))]).await;
    let mut ws = connect(&server, "/api/ws", None).await;
    say(&mut ws, json!({"type": "subscribe", "channels": ["wsev"]})).await;
    assert_eq!(hear(&mut ws).await["type"], "subscribed");
    let mut first = follow(1);
    first["ref"] = json!(7);
    say(&mut ws, first).await;
    let mut seen: Vec<u64> = Vec::new();
    let mut last_id = 0;
    // The answer and the event, in either order.
    for _ in 0..2 {
        let m = hear(&mut ws).await;
        match m["type"].as_str() {
            Some("published") => assert_eq!(m["ref"], 7, "{m}"),
            Some("event") => {
                seen.push(m["data"]["seq"].as_u64().expect("seq"));
                last_id = m["id"].as_u64().expect("id");
            }
            _ => panic!("unexpected {m}"),
        }
    }
    // A publisher posts 2..=200 over HTTP while the client drops and comes back.
    let url = server.url("/api/events");
    let racer = tokio::spawn(async move {
        for seq in 2..=200u64 {
            let body = json!({"channel": "wsev", "kind": "follow", "data": {"user_name": "f", "seq": seq}});
            let (status, _) = common::post_json(&url, &body.to_string()).await;
            assert_eq!(status, 202);
        }
    });
    for _ in 0..20 {
        let m = hear_kind(&mut ws, "event").await;
        seen.push(m["data"]["seq"].as_u64().expect("seq"));
        last_id = m["id"].as_u64().expect("id");
    }
    drop(ws);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut ws = connect(&server, "/api/ws", None).await;
    say(
        &mut ws,
        json!({"type": "subscribe", "channels": ["wsev"], "kinds": ["follow"], "since": last_id}),
    )
    .await;
    assert_eq!(hear(&mut ws).await["type"], "subscribed");
    while seen.len() < 200 {
        let m = hear_kind(&mut ws, "event").await;
        seen.push(m["data"]["seq"].as_u64().expect("seq"));
    }
    racer.await.expect("publisher");
    assert_eq!(seen, (1..=200).collect::<Vec<_>>(), "in order, once each");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_page_may_read_the_events_socket_but_not_publish() {
    let server = Server::start("", &[]).await;
    let mut foreign = connect(&server, "/api/ws", Some("https://evil.example")).await;
    say(&mut foreign, follow(1)).await;
    let refused = hear(&mut foreign).await;
    assert_eq!(refused["code"], "FORBIDDEN", "{refused}");
    say(
        &mut foreign,
        json!({"type": "subscribe", "channels": ["wsev"]}),
    )
    .await;
    assert_eq!(hear(&mut foreign).await["type"], "subscribed");
    // Bad frames get errors; the socket stays.
    foreign.send(Message::text("[1, 2")).await.expect("send");
    assert_eq!(hear(&mut foreign).await["code"], "BAD_MESSAGE");
    let mut local = connect(&server, "/api/ws", None).await;
    say(
        &mut local,
        json!({"channel": "wsev", "kind": "folow", "type": "publish"}),
    )
    .await;
    let bad = hear(&mut local).await;
    assert_eq!(bad["code"], "BAD_EVENT", "{bad}");
    assert!(
        bad["error"].as_str().expect("text").contains("folow"),
        "{bad}"
    );
    say(&mut local, follow(2)).await;
    assert_eq!(hear(&mut local).await["type"], "published");
    // The reader sees what the local socket published.
    let e = hear_kind(&mut foreign, "event").await;
    assert_eq!(e["data"]["seq"], 2);
    // Frames over the limit close the socket, never the server.
    let _ = foreign.send(Message::text("x".repeat(200 * 1024))).await;
    let (status, _) = server.get_json("/health").await;
    assert_eq!(status, 200);
    server.stop().await;
}
