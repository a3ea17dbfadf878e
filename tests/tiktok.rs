//! TikTok LIVE end to end against a loopback fake (`common/fake_tiktok.rs`): the anonymous
//! cookie, the room look-up, the socket with its heartbeats and acks, frames written by hand
//! from the schema's field numbers, and what reaches the chat and alert overlays.
#![cfg(feature = "tiktok")]

mod common;
#[path = "common/fake_tiktok.rs"]
mod fake_tiktok;

use std::time::Duration;

use common::{Server, WAIT, eventually, overlay};
use fake_tiktok::{
    FakeTiktok, GiftKind, Lookup, Pb, chat, control, delete, follow, gift, like, member,
    push_frame, response, sub_notify, user,
};
use serde_json::{Value, json};

fn link(channel: &str) -> String {
    format!("[[tiktok.channels]]\nchannel = \"{channel}\"\nunique_id = \"@Fixture\"\n")
}

fn alerts(channel: &str) -> String {
    format!(
        "kind = \"alerts\"\nchannel = \"{channel}\"\n[options]\nduration_s = 30\ngap_s = 0.1\nhold_off_air = false\n"
    )
}

/// The channel's stored events, oldest first.
async fn stored(server: &Server, channel: &str) -> Vec<Value> {
    let (_, body) = server
        .get_json(&format!("/api/channels/{channel}/events?limit=100"))
        .await;
    let mut events = body["events"].as_array().cloned().unwrap_or_default();
    events.reverse();
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiktok_chat_gifts_follows_and_the_streams_end() {
    let tiktok = FakeTiktok::start().await;
    tiktok.state.lock().expect("state").withhold_first = true;
    let config = format!(
        "[twitch]\npart_grace_s = 0\n{}{}",
        tiktok.config(10, 60),
        link("multi")
    );
    let server = Server::start(
        &config,
        &[
            ("chat", &overlay("chat", "multi")),
            ("alerts", &alerts("multi")),
        ],
    )
    .await;
    assert_eq!(server.source_state("tiktok:@fixture").await.0, "idle");
    let mut sse = server.sse("/o/chat/events", None).await;
    tiktok.wait_entered(0).await;
    {
        let st = tiktok.state.lock().expect("state");
        // The home page was asked again after an answer without the cookie.
        assert_eq!(st.home_views, 2);
        let (query, cookie) = &st.lookups[0];
        assert_eq!(query["uniqueId"], "fixture");
        assert_eq!(query["aid"], "1988");
        assert_eq!(query["sourceType"], "54");
        assert_eq!(cookie, "ttwid=tok1");
        let (query, cookie, origin) = &st.connections[0];
        assert_eq!(query["room_id"], "7001");
        assert_eq!(query["ws_direct"], "1");
        assert_eq!(cookie, "ttwid=tok1");
        assert_eq!(origin, "https://www.tiktok.com");
    }
    let first = tiktok.received();
    assert_eq!(first[0].payload_type, "hb");
    assert_eq!(first[0].payload_int(1), Some(7001));
    assert_eq!(first[1].payload_type, "im_enter_room");
    assert_eq!(first[1].payload_int(1), Some(7001));
    assert_eq!(first[1].payload_str(5).as_deref(), Some("audience"));
    server.wait_source("tiktok:@fixture", "connected").await;

    let ann = || user(101, "ann.tok", "Ann");
    let bob = || user(102, "bob", "Bob");
    let rose = || GiftKind(5655, "Rose", 1);
    let messages = [
        (
            "WebcastChatMessage",
            chat(1, ann(), "hi there", Some((3, "e1")), true),
        ),
        ("WebcastGiftMessage", gift(2, bob(), rose(), 3, false, 77)),
        ("WebcastLikeMessage", like(3, ann(), 15, 15)),
        ("WebcastGiftMessage", gift(4, bob(), rose(), 5, true, 77)),
        ("WebcastSocialMessage", follow(5, bob())),
        ("WebcastSubNotifyMessage", sub_notify(6, ann(), 1)),
        ("WebcastMemberMessage", member(7, bob())),
        ("WebcastNoSuchThing", Pb::new().str(1, "whatever")),
        (
            "WebcastChatMessage",
            Pb::new().str(2, "not a user").int(3, 5),
        ),
        ("WebcastImDeleteMessage", delete(8, 1)),
    ];
    tiktok.send(push_frame(
        42,
        "msg",
        &response(&messages, Some("ext-1")),
        true,
    ));
    // Frames that are not chat, or not TikTok's, end nothing.
    tiktok.send(push_frame(43, "im_enter_room_resp", b"", false));
    tiktok.send(push_frame(44, "hb", b"", false));
    tiktok.send(b"\xff\xff\xff garbage".to_vec());
    let plain = [(
        "WebcastChatMessage",
        chat(9, bob(), "plain frame", None, false),
    )];
    tiktok.send(push_frame(45, "msg", &response(&plain, None), false));

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let f = sse.next().await;
        if f.id.is_some() {
            seen.push(f.data);
        }
    }
    let (hi, deleted, plain) = (&seen[0], &seen[1], &seen[2]);
    assert_eq!(hi["kind"], "chat.message");
    assert_eq!(hi["platform"], "tiktok");
    assert_eq!(hi["channel"], "multi");
    let author = &hi["data"]["author"];
    assert_eq!(author["login"], "ann.tok");
    assert_eq!(author["display_name"], "Ann");
    assert_eq!(author["id"], "101");
    assert_eq!(author["roles"]["moderator"], true);
    assert_eq!(
        author["avatar"],
        "https://p16.tiktokcdn.test/avatar/101.webp"
    );
    assert_eq!(
        hi["data"]["elements"],
        json!([
            {"type": "text", "value": "hi "},
            {"type": "emote", "id": "e1", "name": "[e1]", "url": "https://p16.tiktokcdn.test/emote/e1.png"},
            {"type": "text", "value": "there"},
        ])
    );
    assert_eq!(hi["at"], 1_764_600_000_001u64);
    assert_eq!(
        (
            deleted["kind"].as_str(),
            deleted["data"]["message_id"].as_str()
        ),
        (Some("chat.delete"), Some("1"))
    );
    assert_eq!(plain["data"]["text"], "plain frame");

    tiktok
        .wait_for("the ack", |s| {
            s.received.iter().any(|f| f.payload_type == "ack")
        })
        .await;
    let ack = tiktok
        .received()
        .into_iter()
        .find(|f| f.payload_type == "ack")
        .expect("ack");
    assert_eq!((ack.log_id, ack.payload.as_slice()), (42, &b"ext-1"[..]));
    assert_eq!(
        tiktok
            .received()
            .iter()
            .filter(|f| f.payload_type == "ack")
            .count(),
        1,
        "only the frame that asked is acked"
    );

    let events = stored(&server, "multi").await;
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "chat.message",
            "gift",
            "follow",
            "sub",
            "chat.delete",
            "chat.message"
        ]
    );
    let gift = &events[1];
    assert_eq!(gift["data"]["gift_name"], "Rose");
    assert_eq!(gift["data"]["count"], 5);
    assert_eq!(
        gift["data"]["amount"], 5,
        "diamonds × count, once per streak"
    );
    assert_eq!(gift["data"]["currency"], "TIKTOK_DIAMONDS");
    assert_eq!(gift["data"]["user_login"], "bob");
    assert_eq!(
        gift["data"]["image"],
        "https://p19.tiktokcdn.test/gift/5655.png"
    );
    // The gift is the alert on screen.
    eventually("the gift alert plays", WAIT, || async {
        let (_, state) = server.get_json("/api/channels/multi/alerts").await;
        (state["playing"]["id"] == gift["id"]).then_some(())
    })
    .await;
    let (_, stats) = server.get_json("/api/channels/multi/stats").await;
    assert_eq!(stats["likes"], 15, "{stats}");
    assert_eq!(stats["platforms"]["tiktok"], 2, "{stats}");

    // The stream ends: stream.offline, then the room is looked up again.
    tiktok.send(push_frame(
        46,
        "msg",
        &response(&[("WebcastControlMessage", control(10, 3))], None),
        true,
    ));
    eventually("stream.offline stored", WAIT, || async {
        let events = stored(&server, "multi").await;
        (events.last().map(|e| e["kind"].clone()) == Some(json!("stream.offline"))).then_some(())
    })
    .await;
    tiktok
        .wait_for("a second look-up", |s| s.lookups.len() >= 2)
        .await;
    assert_eq!(server.source_state("tiktok:@fixture").await.0, "connected");
    // The last page closes: the socket closes.
    drop(sse);
    server.wait_source("tiktok:@fixture", "idle").await;
    tiktok
        .wait_for("the socket closed", |s| s.closed >= 2)
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiktok_device_blocked_heartbeats_and_a_silent_socket() {
    let tiktok = FakeTiktok::start().await;
    tiktok.state.lock().expect("state").blocked.insert(0);
    let config = format!(
        "[twitch]\npart_grace_s = 0\n{}{}",
        tiktok.config(1, 3),
        link("multi")
    );
    let server = Server::start(&config, &[("chat", &overlay("chat", "multi"))]).await;
    let sse = server.sse("/o/chat/events", None).await;
    // DEVICE_BLOCKED on the first socket: the next carries a new cookie.
    tiktok.wait_entered(1).await;
    {
        let st = tiktok.state.lock().expect("state");
        assert_eq!(st.connections[0].1, "ttwid=tok1");
        assert_eq!(st.connections[1].1, "ttwid=tok2");
    }
    // Heartbeats at heartbeat_s: the first, then one a second.
    tiktok
        .wait_for("three heartbeats", |s| {
            s.received
                .iter()
                .filter(|f| f.connection == 1 && f.payload_type == "hb")
                .count()
                >= 3
        })
        .await;
    let beats: Vec<_> = tiktok
        .received()
        .into_iter()
        .filter(|f| f.connection == 1 && f.payload_type == "hb")
        .map(|f| f.at)
        .collect();
    for pair in beats.windows(2).skip(1) {
        let gap = pair[1] - pair[0];
        assert!(
            gap > Duration::from_millis(500) && gap < Duration::from_millis(2500),
            "heartbeat gap {gap:?}"
        );
    }
    // The fake says nothing (heartbeats are not answered): after stale_s the client opens a
    // new socket.
    tiktok.wait_entered(2).await;
    let entered: Vec<_> = tiktok
        .received()
        .into_iter()
        .filter(|f| f.payload_type == "im_enter_room")
        .map(|f| f.at)
        .collect();
    // Connection 0 was refused: these are connections 1 and 2.
    let silence = entered[1] - entered[0];
    assert!(
        silence >= Duration::from_millis(2900) && silence < Duration::from_secs(10),
        "reconnected after {silence:?}"
    );
    drop(sse);
    server.wait_source("tiktok:@fixture", "idle").await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiktok_look_ups_say_why_nothing_is_read() {
    let tiktok = FakeTiktok::start().await;
    tiktok.state.lock().expect("state").script.extend([
        Lookup::Offline,
        Lookup::NoSuchUser,
        Lookup::Forbidden,
        Lookup::Empty,
    ]);
    let config = format!("{}{}", tiktok.config(10, 60), link("multi"));
    let server = Server::start(&config, &[("chat", &overlay("chat", "multi"))]).await;
    let _sse = server.sse("/o/chat/events", None).await;
    let detail = server.wait_source("tiktok:@fixture", "offline").await;
    assert!(detail.contains("@fixture is not live"), "{detail}");
    let detail = server.wait_source("tiktok:@fixture", "not-found").await;
    assert!(detail.contains("TikTok has no user @fixture"), "{detail}");
    let detail = server.wait_source("tiktok:@fixture", "blocked").await;
    assert!(detail.contains("403"), "{detail}");
    assert!(detail.contains("set room_id"), "{detail}");
    tiktok
        .wait_for("the empty answer", |s| s.lookups.len() >= 4)
        .await;
    // Then live: the socket opens.
    tiktok.wait_entered(0).await;
    server.wait_source("tiktok:@fixture", "connected").await;
    {
        let st = tiktok.state.lock().expect("state");
        assert_eq!(st.lookups.len(), 5);
        // A blocked look-up drops the cookie: the next look-up has a new one.
        assert_eq!(st.lookups[2].1, "ttwid=tok1");
        assert_eq!(st.lookups[3].1, "ttwid=tok2");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_reads_tiktok_over_the_chat_socket_on_demand() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let tiktok = FakeTiktok::start().await;
    // No [[tiktok.channels]]: the tool names the host.
    let config = format!("[twitch]\npart_grace_s = 0\n{}", tiktok.config(10, 60));
    let server = Server::start(&config, &[]).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/", server.addr))
        .await
        .expect("connect");
    let subscribe = json!({"type": "subscribe", "platform": "tiktok", "identifier": "@Fixture"});
    ws.send(Message::text(subscribe.to_string()))
        .await
        .expect("send");
    let mut hear = async || loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = frame {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] != "stats" {
                return v;
            }
        }
    };
    assert_eq!(
        hear().await,
        json!({"type": "status", "status": "subscribed", "identifier": "@Fixture"})
    );
    tiktok.wait_entered(0).await;
    assert_eq!(
        hear().await,
        json!({"type": "status", "status": "started", "liveId": "7001"})
    );
    let line = chat(1, user(7, "tok.fan", "TokFan"), "hi tools", None, false);
    tiktok.send(push_frame(
        1,
        "msg",
        &response(&[("WebcastChatMessage", line)], None),
        true,
    ));
    let message = hear().await;
    assert_eq!(message["type"], "chat");
    assert_eq!(message["data"]["platform"], "tiktok");
    assert_eq!(message["data"]["data"]["author"]["username"], "tok.fan");
    assert_eq!(
        message["data"]["data"]["author"]["avatar_url"],
        "https://p16.tiktokcdn.test/avatar/7.webp"
    );
    assert_eq!(message["data"]["data"]["content"]["raw"], "hi tools");
    // The tool leaves: the host is no longer read.
    drop(ws);
    tiktok
        .wait_for("the socket closed", |s| s.closed >= 1)
        .await;
    server.stop().await;
}

/// How fast the decoder reads TikTok frames on one core: a gzip frame of 20 messages (chat
/// with an emote, likes, a gift streak, joins) read over and over for about three seconds.
#[test]
#[ignore = "measurement: cargo test --release --test tiktok -- --ignored --nocapture decoding_throughput"]
fn decoding_throughput() {
    use overlayd::platforms::tiktok::map::Decoder;
    let ann = || user(101, "ann.tok", "Ann");
    let mut messages = Vec::new();
    for i in 0..20u64 {
        let m = match i % 5 {
            0 | 1 => (
                "WebcastChatMessage",
                chat(
                    i,
                    ann(),
                    "what a play, gg everyone",
                    Some((5, "e1")),
                    i == 0,
                ),
            ),
            2 => ("WebcastLikeMessage", like(i, ann(), 3, 300 + i)),
            3 => (
                "WebcastGiftMessage",
                gift(i, ann(), GiftKind(5655, "Rose", 1), i, false, 9),
            ),
            _ => ("WebcastMemberMessage", member(i, ann())),
        };
        messages.push(m);
    }
    let frame = push_frame(7, "msg", &response(&messages, Some("ext")), true);
    let mut decoder = Decoder::default();
    let started = std::time::Instant::now();
    let (mut frames, mut events) = (0u64, 0u64);
    while started.elapsed() < Duration::from_secs(3) && frames < 10_000_000 {
        for _ in 0..1000 {
            let read = decoder.read(&frame, 0).expect("decodes");
            events += read.events.len() as u64;
        }
        frames += 1000;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "tiktok decoding: {} bytes a frame, 20 messages: {:.0} frames/s, {:.0} messages/s, {:.0} events/s (one core)",
        frame.len(),
        frames as f64 / secs,
        frames as f64 * 20.0 / secs,
        events as f64 / secs
    );
    assert!(events > 0);
}
