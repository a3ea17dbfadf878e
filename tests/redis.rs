//! Several instances on one Redis: an event posted to one reaches the clients of another; a
//! client moving between instances with `Last-Event-ID` misses nothing and sees nothing
//! twice; chat stats are shared; a channel's sources run on one instance, not on each. Each
//! test starts its own `redis-server` on a loopback port
//! (`.ci/run` installs it; `OVERLAYD_REDIS` may name the binary).

mod common;
#[path = "common/fake_irc.rs"]
mod fake_irc;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, WAIT, eventually, overlay};
use serde_json::{Value, json};

/// A `redis-server` of this test's own, stopped when dropped.
struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    fn start() -> RedisServer {
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").expect("free port");
            probe.local_addr().expect("addr").port()
        };
        RedisServer::start_on(port)
    }

    fn start_on(port: u16) -> RedisServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut server = RedisServer {
            child: None,
            port,
            dir,
        };
        server.launch();
        server
    }

    /// Starts `redis-server` on this port (no persistence) and waits until it answers.
    fn launch(&mut self) {
        let binary = std::env::var("OVERLAYD_REDIS").unwrap_or_else(|_| "redis-server".into());
        self.child = Some(
            Command::new(&binary)
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(self.dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot start {binary}: {e}; install redis-server (.ci/run does)")
                }),
        );
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not answer on port {}", self.port);
    }

    /// Stops the server and starts an empty one on the same port (no persistence: every key
    /// is gone, as after a crash of a cache-only Redis).
    fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    fn config(&self) -> String {
        format!(
            "[store]\nurl = \"redis://127.0.0.1:{}/\"\nprefix = \"test\"\n",
            self.port
        )
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn follow(seq: u64) -> Value {
    json!({"channel": "shared", "kind": "follow", "data": {"user_name": format!("u{seq}"), "seq": seq}})
}

fn chat(login: &str) -> Value {
    json!({"channel": "shared", "kind": "chat.message", "data": {"user_name": login, "text": "hi"}})
}

async fn post(server: &Server, body: Value) -> u64 {
    let (status, reply) = server.post_event(body).await;
    assert_eq!(status, 202, "{reply}");
    reply["id"].as_u64().expect("id")
}

async fn two_instances(redis: &RedisServer) -> (Server, Server) {
    let files = [("feed", overlay("events", "shared"))];
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let a = Server::start(&redis.config(), &refs).await;
    let b = Server::start(&redis.config(), &refs).await;
    (a, b)
}

fn seqs(frames: &[common::Frame]) -> Vec<u64> {
    frames
        .iter()
        .map(|f| f.data["data"]["seq"].as_u64().expect("seq"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_posted_to_one_instance_reaches_the_clients_of_another() {
    let redis = RedisServer::start();
    let (a, b) = two_instances(&redis).await;
    let mut on_a = a.sse("/o/feed/events", None).await;
    let mut on_b = b.sse("/o/feed/events", None).await;
    let mut ids = Vec::new();
    for seq in 0..3 {
        // Alternating instances: both clients still see one order, the ids'.
        let to = if seq % 2 == 0 { &a } else { &b };
        ids.push(post(to, follow(seq)).await);
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");
    for sse in [&mut on_a, &mut on_b] {
        let frames = sse.events(3).await;
        assert_eq!(seqs(&frames), [0, 1, 2]);
        let seen: Vec<u64> = frames.iter().filter_map(|f| f.id).collect();
        assert_eq!(seen, ids);
    }
    // Recent events are served from the shared log by either instance.
    let (_, recent) = b.get_json("/api/channels/shared/events?limit=10").await;
    let listed: Vec<u64> = recent["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect();
    assert_eq!(listed, ids.iter().rev().copied().collect::<Vec<_>>());
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moving_between_instances_misses_nothing_and_sees_nothing_twice() {
    let redis = RedisServer::start();
    let (a, b) = two_instances(&redis).await;
    // A publisher keeps publishing to both instances while the client moves.
    let total = 60u64;
    let publisher = {
        let urls = [a.url("/api/events"), b.url("/api/events")];
        tokio::spawn(async move {
            for seq in 0..total {
                let url = &urls[(seq % 2) as usize];
                let (status, reply) = common::post_json(url, &follow(seq).to_string()).await;
                assert_eq!(status, 202, "{reply}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut got: Vec<common::Frame> = Vec::new();
    let mut on_a = a.sse("/o/feed/events?since=0", None).await;
    while got.len() < 10 {
        got.push(on_a.next().await);
    }
    let last = got.last().and_then(|f| f.id).expect("an id");
    drop(on_a);
    // Away for a moment, then back on the other instance with the last id seen.
    tokio::time::sleep(Duration::from_millis(60)).await;
    let mut on_b = b.sse("/o/feed/events", Some(last)).await;
    while got.len() < total as usize {
        got.push(on_b.next().await);
    }
    publisher.await.expect("publisher");
    assert_eq!(seqs(&got), (0..total).collect::<Vec<_>>());
    let ids: Vec<u64> = got.iter().filter_map(|f| f.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order, once each");
    // And nothing more arrives: no duplicate after the last.
    assert!(
        on_b.next_within(Duration::from_millis(300))
            .await
            .is_none_or(|f| f.event != "follow")
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_stats_are_shared_and_survive_every_instance_restarting() {
    let redis = RedisServer::start();
    let (a, b) = two_instances(&redis).await;
    for (server, login) in [(&a, "ann"), (&b, "bob"), (&a, "ann"), (&b, "ann")] {
        post(server, chat(login)).await;
    }
    let stats = eventually("four messages counted", WAIT, || async {
        let (_, stats) = b.get_json("/api/channels/shared/stats").await;
        (stats["messages"] == 4).then_some(stats)
    })
    .await;
    assert_eq!(stats["messages"], 4, "{stats}");
    assert_eq!(stats["chatters"], 2, "{stats}");
    assert_eq!(stats["top"][0]["login"], "ann", "{stats}");
    assert_eq!(stats["top"][0]["count"], 3, "{stats}");
    a.stop().await;
    b.stop().await;
    // A new instance on the same Redis starts from the same totals, and counts on.
    let (c, _d) = two_instances(&redis).await;
    let (_, stats) = c.get_json("/api/channels/shared/stats").await;
    assert_eq!(stats["messages"], 4, "{stats}");
    assert_eq!(stats["top"][0]["count"], 3, "{stats}");
    post(&c, chat("cy")).await;
    let stats = eventually("stats counting on", WAIT, || async {
        let (_, stats) = c.get_json("/api/channels/shared/stats").await;
        (stats["messages"] == 5).then_some(stats)
    })
    .await;
    assert_eq!(stats["chatters"], 3, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_is_not_there_is_reported_at_start() {
    let port = {
        let probe = TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("addr").port()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("overlay.toml");
    let text = format!("[store]\nurl = \"redis://127.0.0.1:{port}/\"\n");
    let config = overlayd::config::Config::parse(&path, &text).expect("valid config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let result =
        overlayd::app::run(config, listener, tokio_util::sync::CancellationToken::new()).await;
    let message = result.expect_err("refused").to_string();
    assert!(
        message.contains(&format!("redis://127.0.0.1:{port}/"))
            && message.contains("is redis-server running there?"),
        "{message}"
    );
}

#[test]
fn store_settings_are_checked_with_file_and_line() {
    let path = std::path::Path::new("overlay.toml");
    let parse = |text: &str| overlayd::config::Config::parse(path, text).map(|_| ());
    let e = parse("[store]\nkind = \"redis\"\n").expect_err("no url");
    assert_eq!(
        e.to_string(),
        "overlay.toml:2: kind = \"redis\" needs url = \"redis://host:port/db\" in [store]"
    );
    let e = parse("[store]\n\nurl = \"http://x\"\n").expect_err("not redis");
    assert!(
        e.to_string()
            .starts_with("overlay.toml:3: url = \"http://x\" is not a Redis URL")
    );
    assert!(parse("[store]\nurl = \"redis://127.0.0.1:1/\"\n").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_restarts_empty_is_refused_meanwhile_and_then_used_again() {
    let mut redis = RedisServer::start();
    let (a, b) = two_instances(&redis).await;
    let mut on_b = b.sse("/o/feed/events", None).await;
    let before = post(&a, follow(0)).await;
    assert_eq!(seqs(&on_b.events(1).await), [0]);
    // Redis goes away: posts are refused (not lost quietly), and /health says why.
    redis.stop();
    let (status, reply) = a.post_event(follow(1)).await;
    assert_eq!(status, 503, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap_or_default()
            .contains("is redis-server running there?")
    );
    // It comes back empty: ids continue upwards, and instance B's reader finds it again.
    redis.restart();
    let after = eventually("posts accepted after Redis came back", WAIT, || async {
        let (status, reply) = a.post_event(follow(2)).await;
        (status == 202).then(|| reply["id"].as_u64().expect("id"))
    })
    .await;
    assert!(after > before, "ids went back: {before} then {after}");
    let frames = on_b.events(1).await;
    assert_eq!(seqs(&frames), [2]);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_reads_a_channel_for_all_and_another_takes_over_when_it_stops() {
    let redis = RedisServer::start();
    let irc = fake_irc::server();
    let config = format!(
        "{}[twitch]\npart_grace_s = 0\n[twitch.endpoints]\nirc = \"{}\"\n[twitch.emotes]\nenabled = false\n",
        redis.config(),
        irc.addr
    );
    let files = [("chat", overlay("chat", "dup"))];
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let a = Server::start(&config, &refs).await;
    let b = Server::start(&config, &refs).await;
    let mut on_a = a.sse("/o/chat/events", None).await;
    let mut on_b = b.sse("/o/chat/events", None).await;
    irc.wait("#dup joined", WAIT, |f| f.joined("dup") > 0).await;
    // Both instances want the channel; only one joins it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        irc.joined("dup"),
        1,
        "one chat connection for two instances"
    );
    assert_eq!(
        irc.send("dup", &fake_irc::fixture("privmsg_basic.txt", "dup")),
        1
    );
    for sse in [&mut on_a, &mut on_b] {
        let frames = sse.events(1).await;
        assert_eq!(frames[0].event, "chat.message");
        // Exactly once: nothing else follows.
        assert!(
            sse.next_within(Duration::from_millis(300))
                .await
                .is_none_or(|f| f.id.is_none())
        );
    }
    // The instance reading the channel stops; the other takes the channel over.
    let (_, health) = a.get_json("/health").await;
    let a_reads = health["sourced_here"]
        .as_array()
        .is_some_and(|l| !l.is_empty());
    let (stays, mut sse) = if a_reads {
        drop(on_a);
        a.stop().await;
        (b, on_b)
    } else {
        drop(on_b);
        b.stop().await;
        (a, on_a)
    };
    eventually("the channel taken over", WAIT, || async {
        (irc.joined("dup") == 1 && stays.health().await["sourced_here"] == json!(["dup"]))
            .then_some(())
    })
    .await;
    assert_eq!(
        irc.send("dup", &fake_irc::fixture("privmsg_basic.txt", "dup")),
        1
    );
    assert_eq!(sse.events(1).await[0].event, "chat.message");
    stays.stop().await;
}

/// Posts a signed EventSub webhook notification (a follow on "shared") with message id `id`.
async fn webhook(server: &Server, id: &str, user: &str) -> u16 {
    let path: std::path::PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests/fixtures/eventsub_webhook/notification_signed/body.json",
    ]
    .iter()
    .collect();
    let mut body: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("json");
    body["event"]["broadcaster_user_login"] = json!("shared");
    body["event"]["user_name"] = json!(user);
    let body = body.to_string().into_bytes();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let ts = chrono::DateTime::from_timestamp_millis(now_ms)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let sig = overlayd::twitch::webhook::sign(b"secretabcd", id, &ts, &body);
    common::client()
        .post(server.url("/eventsub/callback"))
        .header("Twitch-Eventsub-Message-Id", id)
        .header("Twitch-Eventsub-Message-Timestamp", ts)
        .header("Twitch-Eventsub-Message-Signature", sig)
        .header("Twitch-Eventsub-Message-Type", "notification")
        .header("Twitch-Eventsub-Subscription-Type", "channel.follow")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_redelivered_to_another_instance_is_shown_once_and_a_refused_one_is_retried() {
    let mut redis = RedisServer::start();
    let config = format!(
        "[server]\npublic_url = \"https://overlays.example.test\"\n{}[twitch]\nwebhook_secret = \"secretabcd\"\nchat = false\n",
        redis.config()
    );
    let files = [("feed", overlay("events", "shared"))];
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let a = Server::start(&config, &refs).await;
    let b = Server::start(&config, &refs).await;
    let mut sse = b.sse("/o/feed/events", None).await;
    // Twitch delivers, then redelivers the same message to the other instance.
    assert_eq!(webhook(&a, "w-1", "Once").await, 204);
    assert_eq!(webhook(&b, "w-1", "Once").await, 204);
    let frames = sse.events(1).await;
    assert_eq!(frames[0].data["data"]["user_name"], "Once");
    // The store is down: refused, so Twitch retries; the retry (here to the other instance,
    // once the store is back) is shown.
    redis.stop();
    assert_eq!(webhook(&a, "w-2", "Retried").await, 503);
    redis.restart();
    eventually("the retry accepted", WAIT, || async {
        (webhook(&b, "w-2", "Retried").await == 204).then_some(())
    })
    .await;
    let frames = sse.events(1).await;
    assert_eq!(frames[0].data["data"]["user_name"], "Retried");
    assert!(
        sse.next_within(Duration::from_millis(300))
            .await
            .is_none_or(|f| f.id.is_none()),
        "shown once"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_instance_plays_the_demo_for_all() {
    let redis = RedisServer::start();
    let config = format!(
        "{}[server]\ndemo = true\ndemo_rate = 20\n[twitch]\nchat = false\n",
        redis.config()
    );
    let files = [("feed", overlay("chat", "demo"))];
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let a = Server::start(&config, &refs).await;
    let b = Server::start(&config, &refs).await;
    let _on_a = a.sse("/o/feed/events", None).await;
    let mut on_b = b.sse("/o/feed/events", None).await;
    // Wait for the first demo message, then count for 1.5 s: 20 a second from one instance
    // (about 25 chat lines, one step in six is a channel event), not twice that.
    let _ = on_b.events(1).await;
    let start = Instant::now();
    let mut lines = 0;
    while start.elapsed() < Duration::from_millis(1500) {
        if let Some(f) = on_b.next_within(Duration::from_millis(100)).await
            && f.id.is_some()
        {
            lines += 1;
        }
    }
    assert!((10..=36).contains(&lines), "{lines} demo lines in 1.5 s");
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_starts_from_thousands_of_chatters_kept_in_redis() {
    let redis = RedisServer::start();
    // Stats as a long stream leaves them: 2,500 chatters (more than one slice of names).
    {
        let client =
            redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port)).expect("client");
        let mut c = client.get_connection().expect("connection");
        let mut pipe = redis::pipe();
        for i in 0..2500u64 {
            let key = format!("twitch:viewer{i}");
            pipe.cmd("ZADD")
                .arg("test:chatters:shared")
                .arg(i + 1)
                .arg(&key)
                .ignore();
            pipe.cmd("HSET")
                .arg("test:names:shared")
                .arg(&key)
                .arg(format!("Viewer{i}"))
                .ignore();
        }
        pipe.cmd("HSET")
            .arg("test:stats:shared")
            .arg("messages")
            .arg(3_126_250)
            .ignore();
        pipe.query::<()>(&mut c).expect("seeded");
    }
    let files = [("stats", overlay("stats", "shared"))];
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let a = Server::start(&redis.config(), &refs).await;
    let (_, stats) = a.get_json("/api/channels/shared/stats").await;
    assert_eq!(stats["messages"], 3_126_250, "{stats}");
    assert_eq!(stats["chatters"], 2500, "{stats}");
    assert_eq!(stats["top"][0]["display_name"], "Viewer2499", "{stats}");
    assert_eq!(stats["top"][0]["count"], 2500, "{stats}");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resuming_from_before_what_was_trimmed_is_told_to_resync() {
    let redis = RedisServer::start();
    // A history of 5: the stream is trimmed back to 5 once it holds 22.
    let config = format!("{}[server]\nhistory = 5\n", redis.config());
    let files = [("feed", overlay("events", "shared"))];
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let a = Server::start(&config, &refs).await;
    let mut ids = Vec::new();
    for seq in 0..22 {
        ids.push(post(&a, follow(seq)).await);
    }
    // From event 10: events 11-16 were trimmed. The client is told, then gets what is left.
    let mut sse = a.sse("/o/feed/events", Some(ids[10])).await;
    let first = sse.next().await;
    assert_eq!(first.event, "resync");
    assert_eq!(seqs(&sse.events(5).await), [17, 18, 19, 20, 21]);
    // From event 17 nothing is missing: no resync.
    let mut sse = a.sse("/o/feed/events", Some(ids[17])).await;
    let first = sse.next().await;
    assert_eq!(
        first.event, "follow",
        "the first frame is the next event, not a resync"
    );
    let mut frames = vec![first];
    frames.extend(sse.events(3).await);
    assert_eq!(seqs(&frames), [18, 19, 20, 21]);
    a.stop().await;
}
