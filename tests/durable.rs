//! Durable history: the SQLite log survives a restart; a client resuming with Last-Event-ID
//! after the server came back gets exactly what it missed; ids keep increasing; a read-only
//! log is refused at start with what to do.

mod common;

use common::{Server, overlay};
use serde_json::json;

fn follow(seq: u64) -> serde_json::Value {
    json!({"channel": "keep", "kind": "follow", "data": {"user_name": format!("u{seq}"), "seq": seq}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resuming_after_a_restart_gets_exactly_what_it_missed() {
    let files = [("feed", overlay("events", "keep"))];
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let server = Server::start("", &refs).await;
    let mut sse = server.sse("/o/feed/events", None).await;
    let mut ids = Vec::new();
    for seq in 0..3 {
        ids.push(
            server.post_event(follow(seq)).await.1["id"]
                .as_u64()
                .expect("id"),
        );
    }
    let seen: Vec<u64> = sse.events(3).await.iter().filter_map(|f| f.id).collect();
    assert_eq!(seen, ids);
    let last_seen = *seen.last().expect("seen");
    drop(sse);
    // Missed while the client was away, before the server stopped...
    for seq in 3..5 {
        ids.push(
            server.post_event(follow(seq)).await.1["id"]
                .as_u64()
                .expect("id"),
        );
    }
    let server = server.restart("", &refs).await;
    // ...and after it came back.
    for seq in 5..7 {
        ids.push(
            server.post_event(follow(seq)).await.1["id"]
                .as_u64()
                .expect("id"),
        );
    }
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids keep increasing across the restart: {ids:?}"
    );
    let mut sse = server.sse("/o/feed/events", Some(last_seen)).await;
    let got: Vec<u64> = sse.events(4).await.iter().filter_map(|f| f.id).collect();
    assert_eq!(got, ids[3..], "exactly the missed events, in order");
    assert!(
        sse.next_within(std::time::Duration::from_millis(300))
            .await
            .is_none(),
        "no duplicates"
    );

    // The activity log survives too, paged with `before`.
    let (_, page) = server.get_json("/api/channels/keep/events?limit=3").await;
    let newest: Vec<u64> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect();
    assert_eq!(newest, [ids[6], ids[5], ids[4]]);
    let (_, page) = server
        .get_json(&format!(
            "/api/channels/keep/events?limit=10&before={}",
            ids[4]
        ))
        .await;
    let older: Vec<u64> = page["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["id"].as_u64())
        .collect();
    assert_eq!(older, [ids[3], ids[2], ids[1], ids[0]]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_stats_survive_a_restart() {
    let files = [("stats", overlay("stats", "keep"))];
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let server = Server::start("", &refs).await;
    for who in ["ann", "bob", "ann"] {
        server
            .post_event(json!({"channel": "keep", "kind": "chat.message", "data": {"user_name": who, "text": "hi"}}))
            .await;
    }
    let server = server.restart("", &refs).await;
    // The stored chat is recounted beside the server: a line that comes in meanwhile counts
    // once, after what came before the restart.
    server
        .post_event(json!({"channel": "keep", "kind": "chat.message", "data": {"user_name": "cleo", "text": "hi"}}))
        .await;
    let stats = common::eventually("the stored chat recounted", common::WAIT, || async {
        let (_, stats) = server.get_json("/api/channels/keep/stats").await;
        (stats["messages"] == 4).then_some(stats)
    })
    .await;
    assert_eq!(stats["chatters"], 3, "{stats}");
    assert_eq!(stats["top"][0]["login"], "ann", "{stats}");
    assert_eq!(stats["top"][0]["count"], 2, "{stats}");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (_, stats) = server.get_json("/api/channels/keep/stats").await;
    assert_eq!(stats["messages"], 4, "counted once: {stats}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_log_is_refused_at_start_with_what_to_do() {
    let server = Server::start("", &[]).await;
    let dir = server.path().to_path_buf();
    let (_, _) = server.post_event(follow(1)).await;
    let keep = server.dir;
    let mut s = Server {
        addr: server.addr,
        shutdown: server.shutdown,
        task: server.task,
        dir: keep,
    };
    s.shutdown.cancel();
    if let Some(t) = s.task.take() {
        t.await.expect("task").expect("stopped");
    }
    let db = dir.join("data/events.sqlite3");
    let mut perms = std::fs::metadata(&db).expect("db").permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&db, perms).expect("chmod");
    let config = overlayd::config::Config::parse(&dir.join("overlay.toml"), "").expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let err = overlayd::app::run(config, listener, tokio_util::sync::CancellationToken::new())
        .await
        .expect_err("refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("events.sqlite3") && text.contains("read-only") && text.contains("data_dir"),
        "{text}"
    );
}
