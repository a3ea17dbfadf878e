//! Twitch chat end to end: a fake IRC server on loopback feeds recorded Twitch lines to the
//! real chat source (twitch-irc), and the assertions are on the SSE frames an overlay gets.

mod common;
#[path = "common/fake_irc.rs"]
mod fake_irc;

use std::time::Duration;

use common::{Server, Sse};
use fake_irc::fixture;
use serde_json::Value;

use common::BROWSER_WAIT as WAIT;

fn config() -> String {
    format!(
        "[twitch]\npart_grace_s = 1\n[twitch.endpoints]\nirc = \"{}\"\n[twitch.emotes]\nenabled = false\n",
        fake_irc::server().addr
    )
}

fn overlay(kind: &str, channel: &str) -> String {
    format!("kind = \"{kind}\"\nchannel = \"{channel}\"\n")
}

/// Opens the overlay's stream and waits until the fake server saw the channel joined.
async fn watch(server: &Server, overlay: &str, channel: &str) -> Sse {
    let sse = server.sse(&format!("/o/{overlay}/events"), None).await;
    fake_irc::server()
        .wait(&format!("#{channel} joined"), WAIT, |f| {
            f.joined(channel) > 0
        })
        .await;
    sse
}

/// Sends a fixture to `channel` and returns the next event frame.
async fn feed(sse: &mut Sse, channel: &str, name: &str) -> common::Frame {
    assert!(
        fake_irc::server().send(channel, &fixture(name, channel)) > 0,
        "nobody joined #{channel}"
    );
    loop {
        let f = sse.next().await;
        if f.id.is_some() {
            return f;
        }
    }
}

fn emotes(frame: &common::Frame) -> Vec<(String, String)> {
    frame.data["data"]["elements"]
        .as_array()
        .expect("elements")
        .iter()
        .filter(|e| e["type"] == "emote")
        .map(|e| {
            (
                e["id"].as_str().unwrap_or_default().to_string(),
                e["name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_messages_arrive_with_emotes_badges_and_roles() {
    let server = Server::start(&config(), &[("chat", &overlay("chat", "c_msgs"))]).await;
    let mut sse = watch(&server, "chat", "c_msgs").await;

    let f = feed(&mut sse, "c_msgs", "privmsg_emotes.txt").await;
    assert_eq!(f.event, "chat.message");
    let d = &f.data["data"];
    assert_eq!(f.data["channel"], "c_msgs");
    assert_eq!(f.data["platform"], "twitch");
    assert_eq!(
        d["text"],
        "Kappa Keepo Kappa Kappa test Keepo Keepo 123 :) :) :P"
    );
    assert_eq!(d["author"]["login"], "randers");
    assert_eq!(d["author"]["display_name"], "randers");
    assert_eq!(d["author"]["color"], "#19E6E6");
    assert_eq!(d["author"]["roles"]["moderator"], true);
    assert_eq!(d["author"]["roles"]["subscriber"], true);
    assert_eq!(d["author"]["roles"]["broadcaster"], false);
    let badges: Vec<&str> = d["author"]["badges"]
        .as_array()
        .expect("badges")
        .iter()
        .filter_map(|b| b["set"].as_str())
        .collect();
    assert_eq!(badges, ["moderator", "subscriber"]);
    assert_eq!(emotes(&f).len(), 9);
    assert_eq!(emotes(&f)[0], ("25".to_string(), "Kappa".to_string()));
    let html = f.data["html"].as_str().unwrap_or_default();
    assert!(
        html.contains("emoticons/v2/25/") && html.contains("badge-moderator"),
        "{html}"
    );

    let f = feed(&mut sse, "c_msgs", "privmsg_unicode_emotes.txt").await;
    assert_eq!(emotes(&f), vec![("483".to_string(), "<3".to_string()); 3]);

    let f = feed(&mut sse, "c_msgs", "privmsg_action_me.txt").await;
    assert_eq!(f.data["data"]["is_action"], true);
    assert_eq!(f.data["data"]["text"], "-tags");

    let f = feed(&mut sse, "c_msgs", "privmsg_reply_parent.txt").await;
    assert_eq!(f.data["data"]["reply"]["user_login"], "retoon");
    assert_eq!(f.data["data"]["reply"]["text"], "hello");

    let f = feed(&mut sse, "c_msgs", "privmsg_bits.txt").await;
    assert!(
        f.data["data"]["bits"].as_u64().unwrap_or(0) > 0,
        "{}",
        f.data
    );

    let f = feed(&mut sse, "c_msgs", "privmsg_emote_index_out_of_range.txt").await;
    assert_eq!(
        f.data["data"]["text"],
        "Då kan du begära skadestånd och förtal Kappa"
    );

    // Chat stats follow.
    let (_, stats) = server.get_json("/api/channels/c_msgs/stats").await;
    assert_eq!(stats["messages"], 6, "{stats}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletions_timeouts_bans_and_clears() {
    let server = Server::start(&config(), &[("chat", &overlay("chat", "c_mod"))]).await;
    let mut sse = watch(&server, "chat", "c_mod").await;
    let f = feed(&mut sse, "c_mod", "clearmsg.txt").await;
    assert_eq!(f.event, "chat.delete");
    assert_eq!(
        f.data["data"]["message_id"],
        "3c92014f-340a-4dc3-a9c9-e5cf182f4a84"
    );
    assert_eq!(f.data["data"]["user_login"], "alazymeme");
    let f = feed(&mut sse, "c_mod", "clearchat_timeout.txt").await;
    assert_eq!(f.event, "chat.clear");
    assert!(f.data["data"]["user_login"].is_string());
    assert!(
        f.data["data"]["duration_s"].as_u64().is_some(),
        "{}",
        f.data
    );
    let f = feed(&mut sse, "c_mod", "clearchat_ban.txt").await;
    assert_eq!(f.data["data"]["user_login"], "weeb123");
    assert_eq!(f.data["data"]["ban"], true);
    let f = feed(&mut sse, "c_mod", "clearchat_clear_all.txt").await;
    assert!(f.data["data"]["user_login"].is_null());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_notices_become_channel_events() {
    let server = Server::start(&config(), &[("feed", &overlay("events", "c_notice"))]).await;
    let mut sse = watch(&server, "feed", "c_notice").await;
    for (file, kind) in [
        ("usernotice_sub.txt", "sub"),
        ("usernotice_resub.txt", "resub"),
        ("usernotice_subgift.txt", "subgift"),
        ("usernotice_raid.txt", "raid"),
        ("usernotice_announcement.txt", "announcement"),
        ("usernotice_submysterygift.txt", "giftbomb"),
    ] {
        let f = feed(&mut sse, "c_notice", file).await;
        assert_eq!(f.event, kind, "{file}");
        assert!(
            !f.data["html"].as_str().unwrap_or_default().is_empty(),
            "{file} rendered"
        );
    }
    let (_, recent) = server
        .get_json("/api/channels/c_notice/events?limit=10")
        .await;
    let events = recent["events"].as_array().expect("events");
    let raid = events.iter().find(|e| e["kind"] == "raid").expect("raid");
    assert_eq!(raid["data"]["viewers"], 430);
    assert_eq!(raid["data"]["user_name"], "iamelisabete");
    let bomb = events
        .iter()
        .find(|e| e["kind"] == "giftbomb")
        .expect("bomb");
    assert_eq!(bomb["data"]["total"], 20);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gifts_of_a_gift_bomb_make_one_alert() {
    let server = Server::start(&config(), &[("alerts", &overlay("alerts", "c_bomb"))]).await;
    let mut sse = watch(&server, "alerts", "c_bomb").await;
    let f = feed(&mut sse, "c_bomb", "usernotice_submysterygift.txt").await;
    assert_eq!(f.event, "giftbomb");
    for _ in 0..3 {
        fake_irc::server().send("c_bomb", &fixture("usernotice_subgift.txt", "c_bomb"));
    }
    // Only the alert queue's own state comes (`event: alerts`, no id): no event frame.
    let until = std::time::Instant::now() + Duration::from_millis(800);
    while let Some(f) = sse
        .next_within(until.saturating_duration_since(std::time::Instant::now()))
        .await
    {
        assert!(f.id.is_none(), "its gifts are not alerted: {f:?}");
    }
    let (_, recent) = server
        .get_json("/api/channels/c_bomb/events?limit=10")
        .await;
    let gifts: Vec<&Value> = recent["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "subgift")
        .collect();
    assert_eq!(gifts.len(), 3);
    assert!(
        gifts
            .iter()
            .all(|g| g["data"]["giftbomb_id"] == f.data["data"]["giftbomb_id"])
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_overlays_of_a_channel_join_once_and_the_last_leaving_parts_after_the_grace() {
    let files = [
        ("a", overlay("chat", "c_join")),
        ("b", overlay("events", "c_join")),
    ];
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let server = Server::start(&config(), &refs).await;
    let fake = fake_irc::server();
    let a = watch(&server, "a", "c_join").await;
    let b = watch(&server, "b", "c_join").await;
    let a2 = watch(&server, "a", "c_join").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        fake.joins("c_join"),
        1,
        "one JOIN for three streams of two overlays"
    );
    drop(a);
    drop(a2);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.parts("c_join"), 0, "one overlay still open");
    drop(b);
    // Still joined during the grace period (1 s here), parted after it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.parts("c_join"), 0, "not before the grace period");
    fake.wait("PART #c_join", WAIT, |f| f.parts("c_join") == 1)
        .await;
    assert_eq!(fake.joins("c_join"), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_reconnected_and_the_channel_rejoined() {
    let server = Server::start(&config(), &[("chat", &overlay("chat", "c_drop"))]).await;
    let mut sse = watch(&server, "chat", "c_drop").await;
    let fake = fake_irc::server();
    let f = feed(&mut sse, "c_drop", "privmsg_basic.txt").await;
    assert_eq!(f.event, "chat.message");
    fake.drop_connections("c_drop");
    fake.wait("rejoin", WAIT, |f| {
        f.joins("c_drop") >= 2 && f.joined("c_drop") > 0
    })
    .await;
    let f = feed(&mut sse, "c_drop", "privmsg_emotes.txt").await;
    assert_eq!(f.event, "chat.message");
    let (state, _) = server.source_state("twitch-chat").await;
    assert!(!state.is_empty(), "twitch-chat reports its state");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_line_is_skipped_and_chat_goes_on() {
    let server = Server::start(&config(), &[("chat", &overlay("chat", "c_bad"))]).await;
    let mut sse = watch(&server, "chat", "c_bad").await;
    let fake = fake_irc::server();
    fake.send("c_bad", "@badges=;;;= :broken PRIVMSG");
    fake.send(
        "c_bad",
        "@emotes=25:0-4;id=;tmi-sent-ts=x :a!a@a.tmi.twitch.tv PRIVMSG #c_bad :Kappa",
    );
    fake.send("c_bad", "\u{1}\u{1}garbage");
    let f = feed(&mut sse, "c_bad", "privmsg_basic.txt").await;
    assert_eq!(f.event, "chat.message");
    server.stop().await;
}

/// `line` as sent now: a recorded line's 2020 time is past the log's retention, so a burst of
/// them would be pruned as it is written.
fn sent_now(line: &str) -> String {
    let sent = line
        .split(';')
        .find(|t| t.starts_with("tmi-sent-ts="))
        .expect("tmi-sent-ts");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    line.replace(sent, &format!("tmi-sent-ts={now_ms}"))
}

/// Lines that arrive together are published together (one write to the log): every one of
/// them reaches the overlay, in the order sent, with increasing ids, and is in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_chat_arrives_whole_and_in_order() {
    let server = Server::start(&config(), &[("chat", &overlay("chat", "c_burst"))]).await;
    let mut sse = watch(&server, "chat", "c_burst").await;
    let template = fixture("privmsg_basic.txt", "c_burst");
    let template = sent_now(&template);
    let head = template.rsplit_once(" :").expect("text").0.to_string();
    const LINES: usize = 600;
    for n in 0..LINES {
        fake_irc::server().send("c_burst", &format!("{head} :line {n}"));
    }
    let mut ids = Vec::new();
    let mut texts = Vec::new();
    while texts.len() < LINES {
        let f = sse.next_within(WAIT).await.expect("every line arrives");
        if let Some(id) = f.id {
            ids.push(id);
            texts.push(
                f.data["data"]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    let sent: Vec<String> = (0..LINES).map(|n| format!("line {n}")).collect();
    assert_eq!(texts, sent);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase");
    let (status, logged) = server
        .get_json("/api/channels/c_burst/events?limit=1000")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        logged["events"].as_array().map(Vec::len),
        Some(LINES),
        "{logged}"
    );
    server.stop().await;
}

/// IRC lines per second through to SSE frames, and the latency each message gains on the way
/// (fake server write → frame parsed by the client): a burst for throughput, then a steady
/// 500 lines/s for latency. For the README:
/// `cargo test --release --test chat -- --ignored --nocapture irc_throughput`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement"]
async fn irc_throughput() {
    // History deep enough that a reader falling behind the burst catches up without a gap.
    let config = format!("[server]\nhistory = 60000\n{}", config());
    let server = Server::start(&config, &[("chat", &overlay("chat", "c_bench"))]).await;
    let sse = watch(&server, "chat", "c_bench").await;
    let template = sent_now(&fixture("privmsg_emotes.txt", "c_bench"));
    let head = template.split_once(" :Kappa").expect("text").0.to_string();
    let (sse, burst) = run_lines(sse, &head, 50_000, None).await;
    let (_, steady) = run_lines(sse, &head, 2_000, Some(500)).await;
    println!(
        "irc → sse: burst of {} lines in {:.2} s = {:.0} lines/s; at 500 lines/s added latency p50 {:.2} ms, p99 {:.2} ms",
        burst.count,
        burst.seconds,
        burst.count as f64 / burst.seconds,
        steady.p50_ms,
        steady.p99_ms
    );
    server.stop().await;
}

struct Run {
    count: usize,
    seconds: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as u64
}

/// Sends `lines` PRIVMSGs (at `rate` per second, or as fast as possible) and reads them back.
async fn run_lines(mut sse: Sse, head: &str, lines: usize, rate: Option<u64>) -> (Sse, Run) {
    let reader = tokio::spawn(async move {
        let mut latencies = Vec::with_capacity(lines);
        let mut last = now_us();
        while latencies.len() < lines {
            // Read as sseload reads: a byte search, no JSON tree (the reader shares the cores).
            let Some(block) = sse.next_block_within(Duration::from_secs(20)).await else {
                break;
            };
            assert!(
                !block.contains("event: resync"),
                "the reader fell behind history"
            );
            if !block.starts_with("id: ") {
                continue;
            }
            let sent: u64 = block
                .split_once("\"text\":\"Kappa ")
                .and_then(|(_, rest)| rest.split(' ').next())
                .and_then(|t| t.parse().ok())
                .expect("the send time in the message text");
            last = now_us();
            latencies.push(last.saturating_sub(sent));
        }
        (sse, latencies, last)
    });
    let start = now_us();
    let mut tick = rate.map(|r| tokio::time::interval(Duration::from_micros(1_000_000 / r)));
    for _ in 0..lines {
        if let Some(t) = tick.as_mut() {
            t.tick().await;
        }
        // Same tags (emotes included) as a real message; the text carries the send time.
        let line = format!(
            "{head} :Kappa {} Keepo Kappa Kappa test Keepo Keepo 123 :) :) :P",
            now_us()
        );
        fake_irc::server().send("c_bench", &line);
    }
    let (sse, mut lat, end) = reader.await.expect("reader");
    assert_eq!(lat.len(), lines, "every line arrived");
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    let run = Run {
        count: lines,
        seconds: (end - start) as f64 / 1e6,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    };
    (sse, run)
}

/// BTTV, FFZ and 7TV stand-ins on loopback; FFZ answers 500 to show a failing provider is
/// skipped. Returns the address and a request log.
async fn fake_emote_providers() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    use warp::Filter;
    let log: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let l = log.clone();
    let routes = warp::path::full().map(move |p: warp::path::FullPath| {
        let path = p.as_str().to_string();
        l.lock().expect("log").push(path.clone());
        let (status, body) = match path.as_str() {
            "/bttv/cached/emotes/global" => (200, serde_json::json!([{"id": "5e76d338d6581c3724c0f0b2", "code": "catJAM"}])),
            "/bttv/cached/users/twitch/12345" => (200, serde_json::json!({"channelEmotes": [{"id": "54fa8f1401e468494b85b537", "code": "OMEGALUL"}], "sharedEmotes": []})),
            "/7tv/emote-sets/global" => (200, serde_json::json!({"emotes": [{"id": "60ae958e229664e8667aea38", "name": "peepoHappy"}]})),
            "/7tv/users/twitch/12345" => (200, serde_json::json!({"emote_set": {"emotes": [{"id": "61b7b7f8bd1e1e2a1ae6a0a1", "name": "Aware"}]}})),
            p if p.starts_with("/ffz/") => (500, serde_json::json!({"error": "down"})),
            _ => (404, serde_json::json!({})),
        };
        warp::reply::with_status(warp::reply::json(&body), warp::http::StatusCode::from_u16(status).expect("status"))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(warp::serve(routes).incoming(listener).run());
    (addr, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_emotes_become_emote_elements_and_a_failing_provider_is_skipped() {
    let (addr, log) = fake_emote_providers().await;
    let config = format!(
        "[twitch]\npart_grace_s = 1\n[twitch.endpoints]\nirc = \"{}\"\n[twitch.emotes]\nbttv = \"http://{addr}/bttv\"\nffz = \"http://{addr}/ffz\"\nseventv = \"http://{addr}/7tv\"\n",
        fake_irc::server().addr
    );
    let server = Server::start(&config, &[("chat", &overlay("chat", "c_emotes"))]).await;
    let mut sse = watch(&server, "chat", "c_emotes").await;
    let served = |p: &str| log.lock().expect("log").iter().any(|x| x == p);
    common::eventually("every emote provider asked", WAIT, || async {
        (served("/bttv/cached/users/twitch/12345")
            && served("/7tv/users/twitch/12345")
            && served("/ffz/room/id/12345")
            && served("/7tv/emote-sets/global"))
        .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let template = fixture("privmsg_emotes.txt", "c_emotes");
    let head = template.split_once(" :Kappa").expect("text").0;
    let mut tags: Vec<String> = head
        .split(' ')
        .next()
        .unwrap_or_default()
        .trim_start_matches('@')
        .split(';')
        .map(str::to_string)
        .collect();
    for t in &mut tags {
        if t.starts_with("emotes=") {
            *t = "emotes=25:0-4".into();
        } else if t.starts_with("room-id=") {
            *t = format!("room-id={}", fake_irc::ROOM_ID);
        }
    }
    let rest = head.split_once(' ').map(|x| x.1).unwrap_or_default();
    let line = format!(
        "@{} {rest} :Kappa catJAM OMEGALUL Aware peepoHappy",
        tags.join(";")
    );
    fake_irc::server().send("c_emotes", &line);
    let f = loop {
        let f = sse.next().await;
        if f.id.is_some() {
            break f;
        }
    };
    let found = emotes(&f);
    let names: Vec<&str> = found.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(
        names,
        ["Kappa", "catJAM", "OMEGALUL", "Aware", "peepoHappy"],
        "{}",
        f.data
    );
    let html = f.data["html"].as_str().unwrap_or_default();
    assert!(
        html.contains("https://cdn.betterttv.net/emote/54fa8f1401e468494b85b537/1x"),
        "{html}"
    );
    assert!(
        html.contains("https://cdn.7tv.app/emote/61b7b7f8bd1e1e2a1ae6a0a1/1x.webp"),
        "{html}"
    );
    assert_eq!(
        f.data["data"]["text"],
        "Kappa catJAM OMEGALUL Aware peepoHappy"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_command_is_followed_by_a_rejoin() {
    let server = Server::start(&config(), &[("chat", &overlay("chat", "c_recon"))]).await;
    let mut sse = watch(&server, "chat", "c_recon").await;
    let fake = fake_irc::server();
    // Twitch sends RECONNECT before restarting a chat server.
    fake.send("c_recon", &fixture("reconnect.txt", "c_recon"));
    fake.wait("rejoin after RECONNECT", WAIT, |f| {
        f.joins("c_recon") >= 2 && f.joined("c_recon") > 0
    })
    .await;
    let f = feed(&mut sse, "c_recon", "privmsg_basic.txt").await;
    assert_eq!(f.event, "chat.message");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_reads_as_the_logged_in_user_when_the_token_allows() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("data")).expect("data");
    let token = serde_json::json!({"access_token": "chat-token-1", "refresh_token": null, "expires_at_ms": null,
        "scopes": ["chat:read"], "login": "chatreader", "user_id": "5"});
    std::fs::write(dir.path().join("data/twitch-token.json"), token.to_string()).expect("token");
    let server = Server::start_in(dir, &config(), &[("chat", &overlay("chat", "c_auth"))]).await;
    let _sse = watch(&server, "chat", "c_auth").await;
    let logins = fake_irc::server().logins();
    assert!(
        logins
            .iter()
            .any(|(nick, pass)| nick == "chatreader"
                && pass.as_deref() == Some("oauth:chat-token-1")),
        "{logins:?}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn badges_are_images_once_logged_in() {
    use warp::Filter;
    let validate = warp::path!("oauth2" / "validate").map(|| {
        warp::reply::json(&serde_json::json!({"client_id": "test-client", "login": "chatreader", "scopes": ["chat:read"], "user_id": "5", "expires_in": 0}))
    });
    let global = warp::path!("helix" / "chat" / "badges" / "global").map(|| {
        warp::reply::json(&serde_json::json!({"data": [
            {"set_id": "moderator", "versions": [{"id": "1", "image_url_1x": "https://static-cdn.jtvnw.net/badges/v1/3267646d-33f0-4b17-b3df-f923a41db1d0/1", "title": "Moderator"}]},
            {"set_id": "subscriber", "versions": [{"id": "12", "image_url_1x": "https://static-cdn.jtvnw.net/badges/v1/global-sub/1", "title": "Subscriber"}]}
        ]}))
    });
    let channel = warp::path!("helix" / "chat" / "badges").map(|| {
        warp::reply::json(&serde_json::json!({"data": [
            {"set_id": "subscriber", "versions": [{"id": "12", "image_url_1x": "https://static-cdn.jtvnw.net/badges/v1/channel-sub-12/1", "title": "1-Year Subscriber"}]}
        ]}))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        warp::serve(validate.or(global).or(channel))
            .incoming(listener)
            .run(),
    );

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("data")).expect("data");
    let token = serde_json::json!({"access_token": "chat-token-2", "refresh_token": null, "expires_at_ms": null,
        "scopes": ["chat:read"], "login": "chatreader", "user_id": "5"});
    std::fs::write(dir.path().join("data/twitch-token.json"), token.to_string()).expect("token");
    let config = format!(
        "[twitch]\nclient_id = \"test-client\"\npart_grace_s = 1\n[twitch.endpoints]\nirc = \"{}\"\nid = \"http://{addr}/oauth2\"\nhelix = \"http://{addr}/helix\"\neventsub_ws = \"ws://127.0.0.1:9/ws\"\n[twitch.emotes]\nenabled = false\n",
        fake_irc::server().addr
    );
    let server = Server::start_in(dir, &config, &[("chat", &overlay("chat", "c_badges"))]).await;
    let mut sse = watch(&server, "chat", "c_badges").await;
    // The channel's badges load when its room id is first seen (the ROOMSTATE after JOIN).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let line = fixture("privmsg_emotes.txt", "c_badges").replace(
        "room-id=11148817",
        &format!("room-id={}", fake_irc::ROOM_ID),
    );
    assert!(fake_irc::server().send("c_badges", &line) > 0);
    let f = loop {
        let f = sse.next().await;
        if f.id.is_some() {
            break f;
        }
    };
    let html = f.data["html"].as_str().unwrap_or_default();
    assert!(html.contains(r#"<img class="badge badge-img badge-moderator" src="https://static-cdn.jtvnw.net/badges/v1/3267646d-33f0-4b17-b3df-f923a41db1d0/1""#), "{html}");
    assert!(
        html.contains("https://static-cdn.jtvnw.net/badges/v1/channel-sub-12/1"),
        "the channel's own subscriber badge wins: {html}"
    );
    server.stop().await;
}
