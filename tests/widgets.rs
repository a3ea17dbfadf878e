//! Sessions, counters and timers over real sockets: a scripted stream's session over the API,
//! across a restart, after a crash (state saved before the log's last events) and with the
//! saved state lost; a reset; a counter driven from the API, a moderator's chat command from
//! the fake Twitch IRC server and the events socket, reaching an open counter overlay and the
//! label files; a subathon timer extended by subs and bits up to its cap, across a restart.

mod common;
#[path = "common/fake_irc.rs"]
mod fake_irc;

use std::time::Duration;

use common::{Server, WAIT, eventually};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const CHANNEL: &str = "c_session";

fn labels_overlay(channel: &str) -> String {
    format!(
        "kind = \"labels\"\nchannel = \"{channel}\"\n[options]\nlabels = [\"latest.follower\", \"top.cheerer.session\", \"top.cheerer.single\", \"count.gifted\", \"counter.deaths\"]\nrotate_s = 0\n"
    )
}

async fn publish(server: &Server, kind: &str, data: Value) -> u64 {
    let (status, answer) = server
        .post_event(json!({"channel": CHANNEL, "kind": kind, "data": data}))
        .await;
    assert_eq!(status, 202, "{answer}");
    answer["id"].as_u64().expect("id")
}

fn user(name: &str) -> Value {
    json!({"user_name": name, "user_login": name.to_lowercase()})
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        b.extend(e);
    }
    base
}

fn chat(name: &str, text: &str, first: bool) -> Value {
    json!({"author": {"login": name.to_lowercase(), "display_name": name}, "text": text,
           "first_message": first})
}

/// The first half of the stream: online, follows, subs, a gift bomb of five (with its five
/// gifts), cheers and chat.
async fn first_half(server: &Server) {
    publish(server, "stream.online", json!({"type": "live"})).await;
    for name in ["Ann", "Bob", "Cy"] {
        publish(server, "follow", user(name)).await;
    }
    publish(server, "sub", with(user("Bob"), json!({"tier": "1000"}))).await;
    publish(
        server,
        "resub",
        with(user("Dee"), json!({"tier": "2000", "months": 7})),
    )
    .await;
    publish(
        server,
        "giftbomb",
        with(user("Eve"), json!({"total": 5, "giftbomb_id": "bomb-1"})),
    )
    .await;
    for n in 0..5 {
        let gift = with(
            user("Eve"),
            json!({"giftbomb_id": "bomb-1", "recipient_name": format!("r{n}"), "recipient_login": format!("r{n}")}),
        );
        publish(server, "subgift", gift).await;
    }
    publish(server, "cheer", with(user("Ann"), json!({"bits": 500}))).await;
    publish(server, "cheer", with(user("Bob"), json!({"bits": 300}))).await;
    publish(server, "chat.message", chat("Ann", "hello", false)).await;
    publish(server, "chat.message", chat("Fox", "first time here", true)).await;
}

/// The second half: more cheers that make Bob the top cheerer, a raid, a follow, chat, offline.
async fn second_half(server: &Server) {
    publish(server, "cheer", with(user("Bob"), json!({"bits": 300}))).await;
    publish(server, "raid", with(user("Gus"), json!({"viewers": 42}))).await;
    publish(server, "follow", user("Hal")).await;
    publish(server, "chat.message", chat("Ann", "gg", false)).await;
    publish(server, "stream.offline", json!({})).await;
}

async fn session(server: &Server) -> Value {
    let (status, s) = server
        .get_json(&format!("/api/channels/{CHANNEL}/session"))
        .await;
    assert_eq!(status, 200, "{s}");
    s
}

/// What the whole scripted stream must give, with `chat` = (messages, chatters) as sent.
fn assert_whole(s: &Value, chat: (u64, u64)) {
    assert_eq!(s["latest"]["follower"]["name"], "Hal", "{s}");
    assert_eq!(s["latest"]["subscriber"]["name"], "Dee");
    assert_eq!(s["latest"]["gifter"]["name"], "Eve");
    assert_eq!(s["latest"]["cheerer"]["name"], "Bob");
    assert_eq!(s["latest"]["raider"]["name"], "Gus");
    assert_eq!(s["top"]["cheerer"]["single"]["name"], "Ann");
    assert_eq!(s["top"]["cheerer"]["single"]["amount"], 500.0);
    assert_eq!(s["top"]["cheerer"]["session"]["name"], "Bob");
    assert_eq!(s["top"]["cheerer"]["session"]["amount"], 600.0);
    assert_eq!(s["top"]["gifter"]["session"]["name"], "Eve");
    assert_eq!(s["top"]["gifter"]["single"]["amount"], 5.0);
    let t = &s["totals"];
    assert_eq!(
        (t["follows"].clone(), t["subs"].clone(), t["gifted"].clone()),
        (json!(4), json!(2), json!(5))
    );
    assert_eq!(
        (t["bits"].clone(), t["raiders"].clone()),
        (json!(1100), json!(42))
    );
    assert_eq!(
        (
            t["messages"].clone(),
            t["chatters"].clone(),
            t["new_chatters"].clone()
        ),
        (json!(chat.0), json!(chat.1), json!(1))
    );
    // A gift bomb is one event; its gifts are not counted again.
    assert_eq!(s["counts"]["giftbomb"], 1);
    assert_eq!(s["counts"]["subgift"], Value::Null);
    assert_eq!(s["counts"]["cheer"], 3);
    assert_eq!(s["new_chatters"], json!(["Fox"]));
    assert_eq!(s["live"], false);
    assert!(s["ended_at"].is_u64());
    let names = |list: &str| -> Vec<String> {
        s["credits"][list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(names("followers"), ["Ann", "Bob", "Cy", "Hal"]);
    assert_eq!(names("subscribers"), ["Bob", "Dee"]);
    assert_eq!(names("cheerers"), ["Bob", "Ann"]);
    assert_eq!(names("raiders"), ["Gus"]);
}

/// The widgets' saved state in the data dir of `dir`: a row per channel.
fn saved(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("data/widgets.sqlite3")).expect("the widgets' saved state")
}

/// `CHANNEL`'s saved state, if any.
fn saved_state(dir: &std::path::Path) -> Option<Vec<u8>> {
    use rusqlite::OptionalExtension;
    saved(dir)
        .query_row(
            "SELECT state FROM channels WHERE channel = ?1",
            [CHANNEL],
            |r| r.get(0),
        )
        .optional()
        .ok()
        .flatten()
}

/// Waits until the saved state has counted event `id` (it is written at most twice a second).
async fn saved_through(server: &Server, id: u64) -> Vec<u8> {
    eventually("the widgets saved", WAIT, || async {
        let bytes = saved_state(server.path())?;
        let v: Value = serde_json::from_slice(&bytes).ok()?;
        (v["last_id"].as_u64()? >= id).then_some(bytes)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scripted_session_gives_exact_labels_counts_and_tops_across_a_restart() {
    let overlays = [("labels", labels_overlay(CHANNEL))];
    let overlays: Vec<(&str, &str)> = overlays.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let server = Server::start("", &overlays).await;
    first_half(&server).await;
    let half = session(&server).await;
    assert_eq!(half["live"], true);
    assert_eq!(half["latest"]["follower"]["name"], "Cy");
    assert_eq!(half["top"]["cheerer"]["session"]["name"], "Ann");
    let server = server.restart("", &overlays).await;
    assert_eq!(session(&server).await, half, "the same after a restart");
    second_half(&server).await;
    let whole = session(&server).await;
    assert_whole(&whole, (3, 2));
    // The labels overlay reads the same session.
    let (_, page) = server.get_json("/o/labels/widget").await;
    let texts: Vec<&str> = page["state"]["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .filter_map(|l| l["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["Hal", "Bob (600 bits)", "Ann (500 bits)", "5", "0"],
        "{page}"
    );
    assert!(
        page["html"]
            .as_str()
            .unwrap_or_default()
            .contains("Bob (600 bits)")
    );

    // A reset starts empty, and stays empty across a restart.
    let (status, reset) = common::post_json(
        &server.url(&format!("/api/channels/{CHANNEL}/session/reset")),
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reset["cause"], "reset");
    assert_eq!(reset["latest"]["follower"], Value::Null);
    assert_eq!(reset["totals"]["follows"], 0);
    let server = server.restart("", &overlays).await;
    let after = session(&server).await;
    assert_eq!(after["totals"]["bits"], 0, "{after}");
    assert_eq!(after["cause"], "reset");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_and_a_lost_state_are_made_good_from_the_event_log() {
    let overlays = [("labels", labels_overlay(CHANNEL))];
    let overlays: Vec<(&str, &str)> = overlays.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let server = Server::start("", &overlays).await;
    // Something before this stream that must not count in it.
    publish(&server, "follow", user("Yesterday")).await;
    publish(&server, "stream.offline", json!({})).await;
    first_half(&server).await;
    let id = publish(&server, "chat.message", chat("Cy", "marker", false)).await;
    let early = saved_through(&server, id).await;
    second_half(&server).await;
    let mut server = server;
    server.halt().await;
    // As if it had died just after the first half was saved: the log has the rest.
    saved(server.path())
        .execute(
            "UPDATE channels SET state = ?1 WHERE channel = ?2",
            rusqlite::params![early, CHANNEL],
        )
        .expect("older state");
    let server = Server::start_in(server.dir, "", &overlays).await;
    assert_whole(&session(&server).await, (4, 3));

    // Lost altogether: recomputed from the log, from the last stream.online on.
    let mut server = server;
    server.halt().await;
    saved(server.path())
        .execute("DELETE FROM channels WHERE channel = ?1", [CHANNEL])
        .expect("remove");
    assert_eq!(saved_state(server.path()), None);
    let server = Server::start_in(server.dir, "", &overlays).await;
    let s = session(&server).await;
    assert_whole(&s, (4, 3));
    assert_ne!(s["credits"]["followers"][0]["name"], "Yesterday");
    server.stop().await;
}

fn counter_overlay(channel: &str) -> String {
    format!(
        "kind = \"counter\"\nchannel = \"{channel}\"\n[options]\ncounter = \"deaths\"\nlabel = \"Deaths\"\n"
    )
}

/// The next `event: widget` frame on `sse` whose state says the counter is at `value`.
async fn counter_shows(sse: &mut common::Sse, value: i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = sse
            .next_within(left)
            .await
            .unwrap_or_else(|| panic!("no widget frame with value {value}"));
        if frame.event == "widget" && frame.data["state"]["counter"]["value"] == json!(value) {
            let html = frame.data["html"].as_str().unwrap_or_default();
            assert!(html.contains(&format!(">{value}<")), "{html}");
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_moves_from_the_api_a_moderator_and_the_socket_and_reaches_its_overlay_and_file()
{
    let channel = "c_counter";
    let config = format!(
        "[twitch]\npart_grace_s = 1\n[twitch.endpoints]\nirc = \"{}\"\n[twitch.emotes]\nenabled = false\n[widgets]\nlabel_files = true\n",
        fake_irc::server().addr
    );
    let server = Server::start(&config, &[("deaths", &counter_overlay(channel))]).await;
    let mut sse = server.sse("/o/deaths/events", None).await;
    fake_irc::server()
        .wait(&format!("#{channel} joined"), WAIT, |f| {
            f.joined(channel) > 0
        })
        .await;
    let url = server.url(&format!("/api/channels/{channel}/counters/deaths"));
    let (status, answer) = common::post_json(&url, r#"{"op": "add", "value": 2}"#).await;
    assert_eq!(
        (status, answer["value"].clone()),
        (200, json!(2)),
        "{answer}"
    );
    counter_shows(&mut sse, 2).await;

    let line = |moderator: bool, text: &str| fake_irc::chat_line(channel, moderator, text);
    assert!(fake_irc::server().send(channel, &line(false, "!deaths+ 50")) > 0);
    assert!(fake_irc::server().send(channel, &line(true, "!deaths+")) > 0);
    counter_shows(&mut sse, 3).await;
    assert_eq!(
        server
            .get_json(&format!("/api/channels/{channel}/counters"))
            .await
            .1["counters"]["deaths"],
        3,
        "the viewer's line changed nothing"
    );

    // The events socket: the same op, answered with the value.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/api/ws", server.addr))
        .await
        .expect("events socket");
    ws.send(Message::text(
        json!({"type": "counter", "channel": channel, "name": "deaths", "op": "set", "value": 10, "ref": 1}).to_string(),
    ))
    .await
    .expect("send");
    let answer = answer_to(&mut ws, 1).await;
    assert_eq!(
        (answer["type"].clone(), answer["value"].clone()),
        (json!("counter"), json!(10))
    );
    counter_shows(&mut sse, 10).await;
    // A timer this channel has no overlay for: said so, with what to add.
    ws.send(Message::text(
        json!({"type": "timer", "channel": channel, "name": "nope", "op": "start", "ref": 2})
            .to_string(),
    ))
    .await
    .expect("send");
    let missing = answer_to(&mut ws, 2).await;
    assert_eq!(missing["code"], "NOT_FOUND", "{missing}");
    assert!(
        missing["error"]
            .as_str()
            .unwrap_or_default()
            .contains("kind = \"timer\""),
        "{missing}"
    );
    let (status, bad) = common::post_json(&url, r#"{"op": "double"}"#).await;
    assert_eq!(status, 400);
    assert!(
        bad["error"]
            .as_str()
            .unwrap_or_default()
            .contains("add, subtract, set, reset"),
        "{bad}"
    );

    // The label file holds the same value (written atomically, once it changes).
    let file = server
        .path()
        .join("data/labels")
        .join(channel)
        .join("counter.deaths.txt");
    eventually("the label file says 10", WAIT, || async {
        (std::fs::read_to_string(&file).ok()? == "10").then_some(())
    })
    .await;
    let follower = server
        .path()
        .join("data/labels")
        .join(channel)
        .join("latest.follower.txt");
    assert_eq!(std::fs::read_to_string(&follower).expect("label file"), "");
    server.stop().await;
}

/// The events socket's answer to the message sent with `ref`.
async fn answer_to<S>(ws: &mut S, reference: u64) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Ok(Message::Text(t))) = ws.next().await {
                let v: Value = serde_json::from_str(&t).expect("json");
                if v["ref"] == reference {
                    return v;
                }
            }
        }
    })
    .await
    .expect("answer")
}

fn subathon_overlay(channel: &str) -> String {
    format!(
        "kind = \"timer\"\nchannel = \"{channel}\"\n[options]\nmode = \"subathon\"\nduration_s = 3600\ncap_s = 4000\ntier1_s = 60\ntier2_s = 120\ngift_s = 30\nbits100_s = 20\n"
    )
}

async fn timer_state(server: &Server) -> Value {
    let (status, page) = server.get_json("/o/subathon/widget").await;
    assert_eq!(status, 200, "{page}");
    page["state"]["timer"].clone()
}

async fn timer_op(server: &Server, channel: &str, body: Value) -> (u16, Value) {
    common::post_json(
        &server.url(&format!("/api/channels/{channel}/timers/subathon")),
        &body.to_string(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subathon_is_extended_up_to_its_cap_and_survives_a_restart() {
    let channel = "c_subathon";
    let overlays = [("subathon", subathon_overlay(channel))];
    let overlays: Vec<(&str, &str)> = overlays.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let server = Server::start("", &overlays).await;
    let post = |kind: &'static str, data: Value| {
        let server = &server;
        async move {
            let (status, a) = server
                .post_event(json!({"channel": channel, "kind": kind, "data": data}))
                .await;
            assert_eq!(status, 202, "{a}");
        }
    };
    // Paused: every extension lands exactly.
    post("sub", json!({"tier": "1000"})).await;
    post("sub", json!({"tier": "2000"})).await;
    post("cheer", json!({"bits": 250})).await;
    // A follow is worth nothing here; a gifted sub of a bomb is counted by the bomb.
    post("follow", json!({})).await;
    post("giftbomb", json!({"total": 2, "giftbomb_id": "b"})).await;
    post("subgift", json!({"giftbomb_id": "b"})).await;
    let t = eventually("the extensions counted", WAIT, || async {
        let t = timer_state(&server).await;
        (t["extended_ms"] == json!(60_000 + 120_000 + 50_000 + 60_000)).then_some(t)
    })
    .await;
    assert_eq!(t["remaining_ms"], 3_600_000 + 290_000, "{t}");
    assert_eq!(t["running"], false);
    // The cap (4,000 s in all) takes 110 s of the next 5 gifts' 150 s.
    post("giftbomb", json!({"total": 5, "giftbomb_id": "c"})).await;
    let t = eventually("capped", WAIT, || async {
        let t = timer_state(&server).await;
        (t["capped_ms"] == json!(40_000)).then_some(t)
    })
    .await;
    assert_eq!(t["remaining_ms"], 4_000_000, "{t}");

    let (status, started) = timer_op(&server, channel, json!({"op": "start"})).await;
    assert_eq!(
        (status, started["running"].clone()),
        (200, json!(true)),
        "{started}"
    );
    let ends_at = started["ends_at"].as_u64().expect("ends_at");
    let (status, bad) = timer_op(&server, channel, json!({"op": "add"})).await;
    assert_eq!(status, 400);
    assert!(
        bad["error"]
            .as_str()
            .unwrap_or_default()
            .contains("seconds"),
        "{bad}"
    );
    let (status, missing) = common::post_json(
        &server.url(&format!("/api/channels/{channel}/timers/nope")),
        r#"{"op": "start"}"#,
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        missing["error"]
            .as_str()
            .unwrap_or_default()
            .contains("subathon"),
        "{missing}"
    );

    // A restart: the same end, to the millisecond (within a second of the wall clock).
    let server = server.restart("", &overlays).await;
    let t = timer_state(&server).await;
    assert_eq!(t["running"], true, "{t}");
    let now = t["now"].as_u64().expect("now");
    let remaining = t["remaining_ms"].as_u64().expect("remaining");
    assert!(
        (now + remaining).abs_diff(ends_at) <= 1_000,
        "ends at {} after the restart, {ends_at} before",
        now + remaining
    );
    // Paused again: it stops moving.
    let (_, paused) = timer_op(&server, channel, json!({"op": "pause"})).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let t = timer_state(&server).await;
    assert_eq!(t["remaining_ms"], paused["remaining_ms"]);
    assert_eq!(t["running"], false);
    server.stop().await;
}
