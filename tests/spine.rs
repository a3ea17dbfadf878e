//! The core spine over real sockets: replay with Last-Event-ID, channel isolation, slow
//! clients, shutdown with open streams, and every kind of bad input.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{Server, overlay, post_json};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONFIG: &str = "[server]\nhistory = 5000\n";

fn follow(channel: &str, seq: u64) -> serde_json::Value {
    json!({"channel": channel, "kind": "follow", "data": {"user_name": format!("u{seq}"), "seq": seq}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_with_last_event_id_gets_exactly_the_missed_events_while_publishing() {
    let server = Server::start(CONFIG, &[("feed", &overlay("events", "alpha"))]).await;
    let url = server.url("/api/events");
    // A publisher that keeps publishing the whole time.
    const TOTAL: u64 = 300;
    let publisher = tokio::spawn(async move {
        let mut ids = Vec::new();
        for seq in 0..TOTAL {
            let (status, body) = post_json(&url, &follow("alpha", seq).to_string()).await;
            assert_eq!(status, 202, "{body}");
            ids.push(body["id"].as_u64().expect("id"));
            if seq % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        ids
    });
    let mut seen: Vec<u64> = Vec::new();
    let mut seqs: Vec<u64> = Vec::new();
    let mut reconnects = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while (seqs.len() as u64) < TOTAL && Instant::now() < deadline {
        let mut sse = server
            .sse("/o/feed/events", seen.last().copied().or(Some(0)))
            .await;
        // Read a few events, then drop the connection mid-stream.
        for _ in 0..25 {
            let Some(frame) = sse.next_within(Duration::from_secs(5)).await else {
                break;
            };
            if let Some(id) = frame.id {
                seen.push(id);
                seqs.push(frame.data["data"]["seq"].as_u64().expect("seq"));
            }
            if seqs.len() as u64 == TOTAL {
                break;
            }
        }
        drop(sse);
        reconnects += 1;
    }
    let published = publisher.await.expect("publisher");
    assert!(
        reconnects >= 5,
        "the client was cut off several times ({reconnects})"
    );
    assert_eq!(
        seen, published,
        "every event exactly once, in publish order"
    );
    assert_eq!(seqs, (0..TOTAL).collect::<Vec<_>>());
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_query_replays_for_clients_that_cannot_set_headers() {
    let server = Server::start(CONFIG, &[("feed", &overlay("events", "alpha"))]).await;
    let mut ids = Vec::new();
    for seq in 0..5 {
        ids.push(
            server.post_event(follow("alpha", seq)).await.1["id"]
                .as_u64()
                .expect("id"),
        );
    }
    let mut sse = server
        .sse(&format!("/o/feed/events?since={}", ids[1]), None)
        .await;
    let got: Vec<u64> = sse.events(3).await.iter().filter_map(|f| f.id).collect();
    assert_eq!(got, ids[2..]);
    // The header wins over the query (a browser reconnecting sends both).
    let mut sse = common::Sse::open(
        &server.url(&format!("/o/feed/events?since={}", ids[0])),
        Some(ids[3]),
    )
    .await;
    assert_eq!(sse.next().await.id, Some(ids[4]));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlays_on_different_channels_see_only_their_own() {
    let server = Server::start(
        CONFIG,
        &[
            ("a", &overlay("events", "alpha")),
            ("b", &overlay("events", "bravo")),
        ],
    )
    .await;
    let mut a = server.sse("/o/a/events", None).await;
    let mut b = server.sse("/o/b/events", None).await;
    for seq in 0..10 {
        let channel = if seq % 2 == 0 { "alpha" } else { "bravo" };
        server.post_event(follow(channel, seq)).await;
    }
    let a_frames = a.events(5).await;
    let b_frames = b.events(5).await;
    assert!(a_frames.iter().all(|f| f.data["channel"] == "alpha"));
    assert!(b_frames.iter().all(|f| f.data["channel"] == "bravo"));
    assert!(
        a.next_within(Duration::from_millis(300)).await.is_none(),
        "nothing more for a"
    );
    assert!(
        b.next_within(Duration::from_millis(300)).await.is_none(),
        "nothing more for b"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlay_gets_only_its_kinds() {
    let chat = "kind = \"chat\"\nchannel = \"alpha\"\n";
    let server = Server::start(CONFIG, &[("chat", chat)]).await;
    let mut sse = server.sse("/o/chat/events", None).await;
    server.post_event(follow("alpha", 1)).await;
    server
        .post_event(json!({"channel": "alpha", "kind": "chat.message", "data": {"text": "hi"}}))
        .await;
    let f = sse.next().await;
    assert_eq!(f.event, "chat.message");
    assert!(f.data["html"].as_str().unwrap_or_default().contains("hi"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_does_not_delay_the_others() {
    let server = Server::start(CONFIG, &[("feed", &overlay("events", "alpha"))]).await;
    // The stalled client: subscribes, then never reads a byte.
    let mut stalled = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    stalled
        .write_all(
            b"GET /o/feed/events?since=0 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
        )
        .await
        .expect("request");
    let mut head = [0u8; 64];
    let _ = stalled.read(&mut head).await.expect("head");
    let mut healthy = server.sse("/o/feed/events", None).await;
    // Big events fill the stalled socket's buffers within a few hundred.
    let pad = "x".repeat(16 * 1024);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    const N: u64 = 400;
    for seq in 0..N {
        let t = Instant::now();
        let body = json!({"channel": "alpha", "kind": "follow", "data": {"seq": seq, "pad": pad}});
        let (status, _) = server.post_event(body).await;
        assert_eq!(status, 202);
        slowest = slowest.max(t.elapsed());
    }
    let frames = healthy.events(N as usize).await;
    let elapsed = started.elapsed();
    let seqs: Vec<u64> = frames
        .iter()
        .map(|f| f.data["data"]["seq"].as_u64().unwrap_or(u64::MAX))
        .collect();
    assert_eq!(seqs, (0..N).collect::<Vec<_>>());
    assert!(
        slowest < Duration::from_secs(1),
        "a publish waited on the stalled client: {slowest:?}"
    );
    assert!(
        elapsed < Duration::from_secs(20),
        "healthy client was held up: {elapsed:?}"
    );
    // The stalled client reads again: it gets every event in order, each once (history
    // holds them all, so with no resync), ending with the last.
    let seqs = read_seqs(&mut stalled, N - 1).await;
    assert_eq!(seqs, (0..N).collect::<Vec<_>>());
    server.stop().await;
}

/// Reads a raw event stream until the event with `seq = last` and returns the seqs in arrival
/// order. A `resync` frame is returned as `u64::MAX`.
async fn read_seqs(stream: &mut tokio::net::TcpStream, last: u64) -> Vec<u64> {
    let mut seqs = Vec::new();
    read_frames(stream, |frame| {
        if frame.contains("event: resync") {
            seqs.push(u64::MAX);
        }
        let data = frame.lines().find_map(|l| l.strip_prefix("data: "));
        let value: serde_json::Value =
            serde_json::from_str(data.unwrap_or_default()).unwrap_or_default();
        if let Some(seq) = value["data"]["seq"].as_u64() {
            seqs.push(seq);
        }
        seqs.last() == Some(&last)
    })
    .await;
    seqs
}

/// Reads a raw event stream until the frame with id `last` and returns the ids seen.
async fn read_ids(stream: &mut tokio::net::TcpStream, last: u64) -> Vec<u64> {
    let mut ids = Vec::new();
    read_frames(stream, |frame| {
        if let Some(id) = frame.lines().find_map(|l| l.strip_prefix("id: ")) {
            ids.push(id.parse().expect("numeric id"));
        }
        ids.last() == Some(&last)
    })
    .await;
    ids
}

/// Hands each frame of a raw event stream to `done` until it returns `true` (at most 60 s
/// and 64 MiB).
async fn read_frames(stream: &mut tokio::net::TcpStream, mut done: impl FnMut(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut text = String::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    while total < 64 << 20 {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            other => panic!("stream ended or stalled after {total} bytes: {other:?}"),
        };
        total += n;
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        while let Some(end) = text.find("\n\n") {
            let frame: String = text.drain(..end + 2).collect();
            if done(&frame) {
                return;
            }
        }
    }
    panic!("no end within 64 MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_get_every_event_once_in_order_while_four_publishers_race() {
    let server = Server::start(CONFIG, &[("feed", &overlay("events", "alpha"))]).await;
    const CLIENTS: usize = 300;
    const PER_PUBLISHER: u64 = 40;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut s = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        s.write_all(b"GET /o/feed/events HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("request");
        clients.push(s);
    }
    // Every subscription is registered once its preamble arrived.
    for s in &mut clients {
        let mut got = String::new();
        let mut buf = [0u8; 512];
        while !got.contains(": ok\n\n") {
            let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
                .await
                .expect("preamble in time")
                .expect("read");
            assert!(n > 0, "closed before the preamble");
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    let publishers: Vec<_> = (0..4u64)
        .map(|p| {
            let url = server.url("/api/events");
            tokio::spawn(async move {
                for i in 0..PER_PUBLISHER {
                    let seq = p * PER_PUBLISHER + i;
                    let (status, _) = post_json(&url, &follow("alpha", seq).to_string()).await;
                    assert_eq!(status, 202);
                }
            })
        })
        .collect();
    for p in publishers {
        p.await.expect("publisher");
    }
    // The last event published ends each read; ids tell the order the bus gave them.
    let (_, last) = server.post_event(follow("alpha", 1_000)).await;
    let last_id = last["id"].as_u64().expect("id");
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut s| tokio::spawn(async move { read_ids(&mut s, last_id).await }))
        .collect();
    let mut first: Option<Vec<u64>> = None;
    for r in readers {
        let ids = r.await.expect("reader");
        assert_eq!(ids.len() as u64, 4 * PER_PUBLISHER + 1, "every event once");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
        match &first {
            Some(f) => assert_eq!(&ids, f, "all clients see the same events"),
            None => first = Some(ids),
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_leave_while_idle_are_released_at_once() {
    let server = Server::start(CONFIG, &[("feed", &overlay("events", "alpha"))]).await;
    let subscribers = || async {
        let (_, health) = server.get_json("/health").await;
        health["subscribers"].as_u64().expect("subscribers")
    };
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(server.sse("/o/feed/events", None).await);
    }
    // One event reaches them all, so each is idle (parked with a writer) afterwards.
    server.post_event(follow("alpha", 1)).await;
    for c in &mut clients {
        assert_eq!(c.next().await.data["data"]["seq"], 1);
    }
    assert_eq!(subscribers().await, 20);
    clients.truncate(5);
    common::eventually(
        "15 closed streams released within 2 s",
        Duration::from_secs(2),
        || async { (subscribers().await == 5).then_some(()) },
    )
    .await;
    // The five left get the next event.
    server.post_event(follow("alpha", 2)).await;
    for c in &mut clients {
        assert_eq!(c.next().await.data["data"]["seq"], 2);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_open_streams_completes_within_a_second() {
    let server = Server::start(CONFIG, &[("feed", &overlay("events", "alpha"))]).await;
    let mut streams = Vec::new();
    for _ in 0..20 {
        streams.push(server.sse("/o/feed/events", None).await);
    }
    // One more that never reads.
    let mut stalled = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    stalled
        .write_all(b"GET /o/feed/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    server.post_event(follow("alpha", 1)).await;
    let took = server.stop().await;
    assert!(took < Duration::from_secs(1), "shutdown took {took:?}");
    for s in &mut streams {
        assert!(s.ended_within(Duration::from_secs(2)).await, "stream ended");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_is_rendered_once_per_overlay_whatever_the_client_count() {
    let server = Server::start(CONFIG, &[("feed", &overlay("alerts", "alpha"))]).await;
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(server.sse("/o/feed/events", None).await);
    }
    let before = server.get_json("/health").await.1["frames_rendered"]
        .as_u64()
        .expect("count");
    server.post_event(follow("alpha", 1)).await;
    let mut bodies = HashSet::new();
    for c in &mut clients {
        bodies.insert(c.next().await.data.to_string());
    }
    assert_eq!(bodies.len(), 1, "every client got the same frame");
    let after = server.get_json("/health").await.1["frames_rendered"]
        .as_u64()
        .expect("count");
    assert_eq!(after - before, 1, "rendered once for 8 clients");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_error_and_loses_nothing() {
    let server = Server::start(CONFIG, &[("feed", &overlay("events", "alpha"))]).await;
    let url = server.url("/api/events");
    let (_, first) = server.post_event(follow("alpha", 1)).await;

    let (status, body) = post_json(&url, "{\"kind\": \"follow\",, }").await;
    assert_eq!(status, 400);
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(msg.contains("line 1, column 19"), "{msg}");

    let (status, body) = post_json(&url, r#"{"kind": "folow"}"#).await;
    assert_eq!(status, 400);
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("\"folow\"") && msg.contains("chat.message") && msg.contains("hypetrain.end"),
        "{msg}"
    );

    let big = json!({"kind": "follow", "data": {"pad": "x".repeat(70 * 1024)}}).to_string();
    let (status, _) = post_json(&url, &big).await;
    assert_eq!(status, 413);

    let (status, body) = post_json(&url, r#"{"kind": "follow", "colour": 1}"#).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("colour")
    );

    // What was accepted before is still there.
    let (_, recent) = server.get_json("/api/channels/alpha/events?limit=10").await;
    let ids: Vec<_> = recent["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(ids, [first["id"].clone()]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_from_other_machines_need_the_admin_token() {
    let config = "[server]\ntrust_forwarded = true\nadmin_token = \"s3cret\"\n";
    let server = Server::start(config, &[("feed", &overlay("events", "alpha"))]).await;
    let c = common::client();
    let body = follow("alpha", 1).to_string();
    let send = |auth: Option<&'static str>| {
        let mut r = c
            .post(server.url("/api/events"))
            .header("x-forwarded-for", "203.0.113.7")
            .body(body.clone());
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.send()
    };
    assert_eq!(send(None).await.expect("send").status(), 401);
    assert_eq!(
        send(Some("Bearer wrong")).await.expect("send").status(),
        403
    );
    assert_eq!(
        send(Some("Bearer s3cret")).await.expect("send").status(),
        202
    );
    // Reading stays open to everyone.
    let r = c
        .get(server.url("/api/channels/alpha/events"))
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    // A web page of another site cannot post through the streamer's browser, even locally.
    let r = c
        .post(server.url("/api/events"))
        .header("origin", "https://evil.example")
        .body(body.clone())
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);
    server.stop().await;

    let open = Server::start("[server]\ntrust_forwarded = true\n", &[]).await;
    let r = c
        .post(open.url("/api/events"))
        .header("x-forwarded-for", "203.0.113.7")
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        403,
        "no token configured: remote changes are refused"
    );
    open.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_events_api_and_health() {
    let server = Server::start(CONFIG, &[("feed", &overlay("events", "alpha"))]).await;
    for seq in 0..15 {
        server.post_event(follow("alpha", seq)).await;
    }
    let (status, body) = server.get_json("/api/channels/alpha/events?limit=10").await;
    assert_eq!(status, 200);
    let seqs: Vec<u64> = body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["data"]["seq"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(seqs, (5..15).rev().collect::<Vec<_>>(), "newest first");
    let (_, health) = server.get_json("/health").await;
    assert_eq!(health["status"], "ok");
    let (status, _) = server.get_json("/o/nope/events").await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_overlays_serve_with_no_files() {
    let server = Server::start("", &[]).await;
    let (_, list) = server.get_json("/api/overlays").await;
    let names: Vec<&str> = list["overlays"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "alerts",
            "chat",
            "counter",
            "credits",
            "events",
            "goal",
            "hypetrain",
            "labels",
            "poll",
            "stats",
            "timer"
        ]
    );
    let page = common::client()
        .get(server.url("/o/chat"))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("text");
    assert!(page.contains("/assets/overlay.js") && page.contains("root-chat"));
    let dash = common::client()
        .get(server.url("/"))
        .send()
        .await
        .expect("dash")
        .text()
        .await
        .expect("text");
    assert!(dash.contains("/o/alerts"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn theme_assets_cannot_be_read_outside_the_theme() {
    let server = Server::start("", &[]).await;
    std::fs::write(server.path().join("secret.txt"), "token").expect("write");
    let c = common::client();
    let ok = c
        .get(server.url("/themes/default/static/style.css"))
        .send()
        .await
        .expect("css");
    assert_eq!(ok.status(), 200);
    assert!(
        ok.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/css")
    );
    for bad in [
        "/themes/default/static/../../secret.txt",
        "/themes/default/static/%2e%2e/%2e%2e/secret.txt",
        "/themes/..%2f..%2f/static/secret.txt",
        "/themes/default/static/..%5c..%5csecret.txt",
    ] {
        let r = c.get(server.url(bad)).send().await.expect("get");
        assert_eq!(r.status(), 404, "{bad}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_sounds_come_from_the_theme_or_the_default_chime() {
    let server = Server::start("", &[]).await;
    let c = common::client();
    let r = c
        .get(server.url("/themes/default/sound/follow"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/wav");
    let bytes = r.bytes().await.expect("body");
    assert_eq!(&bytes[..4], b"RIFF");
    // A theme's own sound for a kind wins.
    let dir = server.path().join("themes/neon/static/sounds");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("raid.ogg"), b"OggS-test").expect("write");
    let r = c
        .get(server.url("/themes/neon/sound/raid"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.headers()["content-type"], "audio/ogg");
    let r = c
        .get(server.url("/themes/neon/sound/follow"))
        .send()
        .await
        .expect("get");
    assert_eq!(
        r.headers()["content-type"],
        "audio/wav",
        "falls back to the default chime"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poll_watcher_reloads_themes_too() {
    // For network drives, where native change events do not arrive.
    let server = Server::start(
        "[server]\nwatcher = \"poll\"\n",
        &[("feed", &overlay("events", "alpha"))],
    )
    .await;
    let mut sse = server.sse("/o/feed/events", None).await;
    let dir = server.path().join("themes/default/templates/events");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("default.hbs"),
        "<p class=\"polled\">{{summary event}}</p>",
    )
    .expect("write");
    let frame = loop {
        let f = sse
            .next_within(Duration::from_secs(10))
            .await
            .expect("a theme frame");
        if f.event == "theme" {
            break f;
        }
    };
    assert_eq!(frame.data["theme"], "default");
    server.post_event(follow("alpha", 1)).await;
    let f = sse.next().await;
    assert!(
        f.data["html"]
            .as_str()
            .unwrap_or_default()
            .contains("class=\"polled\""),
        "{}",
        f.data
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stats_frame_counts_the_message_it_carries() {
    let server = Server::start("", &[("stats", &overlay("stats", "alpha"))]).await;
    let mut sse = server.sse("/o/stats/events", None).await;
    for n in 1..=5 {
        server
            .post_event(json!({"channel": "alpha", "kind": "chat.message", "data": {"user_name": "ann", "text": "hi"}}))
            .await;
        let html = sse.next().await.data["html"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            html.contains(&format!(
                "<span class=\"value\">{n}</span><span class=\"label\">messages"
            )),
            "{html}"
        );
    }
    server.stop().await;
}
