//! Rehearsing a stream over real sockets: export a stretch of a channel's log, play it into
//! another channel with the dashboard's player or `overlayd replay` (same kinds, same data,
//! gaps kept at the speed asked), pause and stop, a malformed line named and skipped, and
//! replayed events kept out of stats and goals.

mod common;

use std::time::{Duration, Instant};

use common::{Server, WAIT, eventually};
use serde_json::{Value, json};

async fn post(server: &Server, path: &str, body: Value) -> (u16, Value) {
    common::post_json(&server.url(path), &body.to_string()).await
}

/// How many events `channel` has.
async fn count(server: &Server, channel: &str) -> usize {
    let (_, r) = server
        .get_json(&format!("/api/channels/{channel}/events?limit=100"))
        .await;
    r["events"].as_array().map_or(0, Vec::len)
}

/// Waits until `channel` has `n` events.
async fn arrived(server: &Server, channel: &str, n: usize) {
    eventually(&format!("{n} events in {channel}"), WAIT, || async move {
        (count(server, channel).await == n).then_some(())
    })
    .await;
}

/// A recording of three events 0, 1 and 3 seconds apart, with a bad line between.
fn recording() -> String {
    [
        r#"{"kind":"follow","at":1000000,"channel":"src","platform":"twitch","data":{"user_name":"First"}}"#,
        r#"{"kind":"chat.message","at":1001000,"data":{"text":"hello from the past","author":{"display_name":"Old"}}}"#,
        "this line is broken",
        r#"{"kind":"raid","at":1003000,"data":{"user_name":"Raider","viewers":12}}"#,
    ]
    .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_plays_back_into_another_channel_with_its_kinds_data_and_gaps() {
    let goal = "kind = \"goal\"\nchannel = \"rehearsal\"\n[options]\ngoal = \"follow\"\n";
    let server = Server::start("", &[("goal", goal)]).await;
    // A stretch of a real channel: posted with gaps of 0, 0.6 and 1.8 s.
    for (n, gap) in [0u64, 600, 1200].iter().enumerate() {
        tokio::time::sleep(Duration::from_millis(*gap)).await;
        let body = match n {
            0 => {
                json!({"channel": "live", "kind": "follow", "data": {"user_name": "Ann", "tag": "a"}})
            }
            1 => {
                json!({"channel": "live", "kind": "chat.message", "data": {"text": "gg", "author": {"display_name": "Bob"}}})
            }
            _ => {
                json!({"channel": "live", "kind": "cheer", "data": {"user_name": "Cleo", "bits": 500}})
            }
        };
        server.post_event(body).await;
    }
    let (status, _) = server
        .get_json("/api/channels/live/export?from=yesterday")
        .await;
    assert_eq!(status, 400, "a bad bound is refused");
    let r = common::client()
        .get(server.url("/api/channels/live/export"))
        .send()
        .await
        .expect("export");
    assert_eq!(r.status(), 200);
    let exported = r.text().await.expect("lines");
    let lines: Vec<Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{exported}");
    assert_eq!(lines[0]["data"]["tag"], "a", "what was sent is kept");
    assert!(!exported.contains("token"), "nothing but events");
    let original: Vec<u64> = lines
        .iter()
        .map(|l| l["at"].as_u64().expect("at"))
        .collect();

    // Played at speed 10 into another channel, through the dashboard's player.
    let mut sse = server.sse("/o/goal/events", None).await;
    let stats_before = server.get_json("/api/channels/rehearsal/stats").await.1;
    let started = Instant::now();
    let (status, answer) = post(
        &server,
        "/api/replay",
        json!({"recording": exported, "channel": "rehearsal", "speed": 10}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let (_, recent) = eventually("the three events replayed", WAIT, || async {
        let (s, r) = server
            .get_json("/api/channels/rehearsal/events?limit=10")
            .await;
        (r["events"].as_array().map(Vec::len) == Some(3)).then_some((s, r))
    })
    .await;
    let took = started.elapsed();
    let mut replayed: Vec<Value> = recent["events"].as_array().cloned().unwrap_or_default();
    replayed.reverse();
    for (was, now) in lines.iter().zip(&replayed) {
        assert_eq!(was["kind"], now["kind"]);
        assert_eq!(was["data"], now["data"], "the same data");
        assert_eq!(now["replay"], true, "marked as replayed");
        assert_eq!(now["channel"], "rehearsal");
    }
    // Relative timing at speed 10: 1.8 s of the original in about 0.18 s.
    let gaps: Vec<i64> = replayed
        .windows(2)
        .map(|w| w[1]["at"].as_i64().unwrap_or(0) - w[0]["at"].as_i64().unwrap_or(0))
        .collect();
    let want: Vec<i64> = original
        .windows(2)
        .map(|w| (w[1] - w[0]) as i64 / 10)
        .collect();
    for (g, w) in gaps.iter().zip(&want) {
        assert!(
            (g - w).abs() <= 60,
            "gap {g} ms, want {w} ms ±60 (speed 10)"
        );
    }
    assert!(took < Duration::from_secs(2), "{took:?}");
    // Shown, never counted: the goal and the chat stats did not move.
    let goal_frame = loop {
        let f = sse.next().await;
        if f.event == "follow" {
            break f;
        }
    };
    assert!(
        goal_frame.data["html"]
            .as_str()
            .unwrap_or_default()
            .contains(">0 / 100<")
            && goal_frame.data["replay"] == true,
        "{:?}",
        goal_frame.data
    );
    let stats_after = server.get_json("/api/channels/rehearsal/stats").await.1;
    assert_eq!(
        stats_before["messages"], stats_after["messages"],
        "{stats_after}"
    );
    assert_eq!(stats_after["messages"], 0);
    let (_, status) = server.get_json("/api/replay").await;
    assert_eq!(
        (status["state"].clone(), status["sent"].clone()),
        (json!("done"), json!(3)),
        "{status}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playback_pauses_stops_and_names_a_bad_line() {
    let server = Server::start("", &[]).await;
    // At speed 1: the second event is due 1 s in, the third 3 s in.
    let (status, answer) = post(
        &server,
        "/api/replay",
        json!({"recording": recording(), "channel": "paused"}),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer["errors"].as_array().map(Vec::len),
        Some(1),
        "{answer}"
    );
    let error = answer["errors"][0].as_str().unwrap_or_default();
    assert!(error.starts_with("line 3: not JSON"), "{answer}");
    assert_eq!(answer["total"], 3, "{answer}");
    arrived(&server, "paused", 1).await;
    let (status, s) = post(&server, "/api/replay/pause", json!({})).await;
    assert_eq!((status, s["state"].clone()), (200, json!("paused")), "{s}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(count(&server, "paused").await, 1, "nothing while paused");
    post(&server, "/api/replay/resume", json!({})).await;
    arrived(&server, "paused", 2).await;
    let (status, s) = post(&server, "/api/replay/stop", json!({})).await;
    assert_eq!(status, 200, "{s}");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(count(&server, "paused").await, 2, "nothing after stop");
    assert_eq!(server.get_json("/api/replay").await.1["state"], "stopped");
    // A sample plays from the same player; the access rule holds.
    let (status, s) = post(
        &server,
        "/api/replay",
        json!({"sample": "raid-night", "channel": "sample", "speed": 100}),
    )
    .await;
    assert_eq!(status, 202, "{s}");
    let (status, _) = post(
        &server,
        "/api/replay",
        json!({"sample": "nope", "channel": "x"}),
    )
    .await;
    assert_eq!(status, 404);
    let foreign = common::client()
        .post(server.url("/api/replay/stop"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("post");
    assert_eq!(foreign.status(), 403);
    post(&server, "/api/replay/stop", json!({})).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_exports_and_replays_through_the_api() {
    let server = Server::start("", &[]).await;
    server
        .post_event(json!({"channel": "cli", "kind": "follow", "data": {"user_name": "Dee"}}))
        .await;
    let bin = env!("CARGO_BIN_EXE_overlayd");
    let url = format!("http://{}", server.addr);
    let out = tokio::process::Command::new(bin)
        .arg("--config")
        .arg(server.path().join("overlay.toml"))
        .args(["export", "--channel", "cli", "--server", &url])
        .output()
        .await
        .expect("export");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(text.lines().count(), 1, "{text}");
    let file = server.path().join("rec.jsonl");
    std::fs::write(&file, recording()).expect("write");
    let out = tokio::process::Command::new(bin)
        .arg("--config")
        .arg(server.path().join("overlay.toml"))
        .arg("replay")
        .arg(&file)
        .args(["--channel", "cli_copy", "--speed", "50", "--server", &url])
        .output()
        .await
        .expect("replay");
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{said}");
    assert!(said.contains("skipped line 3: not JSON"), "{said}");
    assert!(said.contains("sent 3 events"), "{said}");
    let r = server
        .get_json("/api/channels/cli_copy/events?limit=10")
        .await
        .1;
    let kinds: Vec<&str> = r["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["raid", "chat.message", "follow"]);
    server.stop().await;
}

/// Writes the two bundled recordings from the demo source (run by hand:
/// `cargo test --test replay -- --ignored record_samples`).
#[test]
#[ignore = "writes src/replay/*.jsonl: cargo test --test replay -- --ignored record_samples"]
fn record_samples() {
    use overlayd::event::{Event, Kind, Platform};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/replay");
    let start = 1_796_068_800_000u64; // 2026-11-30 20:00 UTC
    let mut rng = rand::rng();
    let write = |name: &str, events: Vec<Event>| {
        let mut text = String::new();
        for (n, mut e) in events.into_iter().enumerate() {
            e.id = 1_796_068_800_000_000 + n as u64;
            text.push_str(&overlayd::replay::line_of(&e));
            text.push('\n');
        }
        std::fs::write(dir.join(format!("{name}.jsonl")), text).expect("write");
    };
    use rand::Rng;
    // A quiet hour: a line every 5-20 s, a channel event every few minutes.
    let mut quiet = Vec::new();
    let mut at = start;
    let mut n = 0u64;
    while at < start + 3_600_000 {
        let mut batch = if n % 18 == 17 {
            overlayd::demo::next_events("demo", 6)
        } else {
            vec![overlayd::demo::chat("demo", &mut rng)]
        };
        for e in &mut batch {
            e.at = at;
        }
        quiet.extend(batch);
        at += rng.random_range(5_000..20_000);
        n += 1;
    }
    write("quiet-hour", quiet);
    // A raid night: chat, a raid, a flood of chat, a gift bomb, cheers.
    let mut busy = Vec::new();
    let mut push = |at: u64, mut e: Event| {
        e.at = start + at;
        busy.push(e);
    };
    for i in 0..20 {
        push(i * 1_000, overlayd::demo::chat("demo", &mut rng));
    }
    push(
        20_000,
        Event::new(
            Platform::Twitch,
            "demo",
            Kind::Raid,
            json!({"user_name": "cozy_cat", "user_login": "cozy_cat", "viewers": 312}),
        ),
    );
    for i in 0..400 {
        push(21_000 + i * 150, overlayd::demo::chat("demo", &mut rng));
    }
    for (j, e) in overlayd::demo::gift_bomb("demo", "PixelPanda", 10)
        .into_iter()
        .enumerate()
    {
        push(60_000 + j as u64 * 50, e);
    }
    for i in 0..12 {
        push(
            90_000 + i * 5_000,
            overlayd::demo::next_events("demo", 12).remove(0),
        );
    }
    for (i, bits) in [100u64, 500, 1000, 5000, 250].iter().enumerate() {
        push(
            100_000 + i as u64 * 15_000,
            Event::new(
                Platform::Twitch,
                "demo",
                Kind::Cheer,
                json!({"user_name": "SpeedyGonzo", "user_login": "speedygonzo", "bits": bits, "message": format!("Cheer{bits} hype"), "is_anonymous": false}),
            ),
        );
    }
    busy.sort_by_key(|e| e.at);
    write("raid-night", busy);
}
