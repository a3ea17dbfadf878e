//! Channels nobody watches keep no history in memory: with the durable log (the default), a
//! cold channel is read back from it when someone opens it again, and replays exactly what a
//! warm one would — the same ids, the same frames, then live with no gap and no duplicate.

mod common;

use common::{Server, Sse, WAIT, eventually, overlay};
use serde_json::{Value, json};

const CONFIG: &str = "[server]\ncold_after_s = 1\n[twitch]\npart_grace_s = 0\n";

async fn post_chat(server: &Server, n: usize) -> u64 {
    let (status, body) = server
        .post_event(json!({"channel": "coldch", "kind": "chat.message",
                           "data": {"user_name": format!("viewer{n}"), "text": format!("line {n}")}}))
        .await;
    assert_eq!(status, 202, "{body}");
    body["id"].as_u64().expect("id")
}

/// The next `n` event frames: their ids and data.
async fn frames(sse: &mut Sse, n: usize) -> Vec<(u64, Value)> {
    let mut out = Vec::new();
    while out.len() < n {
        let f = sse.next().await;
        if let Some(id) = f.id {
            out.push((id, f.data));
        }
    }
    out
}

async fn memory(server: &Server) -> Value {
    server.health().await["history_in_memory"].clone()
}

async fn wait_cold(server: &Server) {
    eventually("the channel forgotten", WAIT, || async {
        (memory(server).await["channels"] == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_channel_replays_what_a_warm_one_would() {
    let overlays = [("chat", overlay("chat", "coldch"))];
    let overlays: Vec<(&str, &str)> = overlays.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let server = Server::start(CONFIG, &overlays).await;
    let mut ids = Vec::new();
    for n in 0..30 {
        ids.push(post_chat(&server, n).await);
    }
    let since = ids[9];
    // Published into a channel nobody has opened: in the log only.
    assert_eq!(memory(&server).await["events"], 0);
    let mut sse = server.sse("/o/chat/events", Some(since)).await;
    let (_, warm_backlog) = server
        .get_json(&format!("/o/chat/backlog?since={since}"))
        .await;
    // Its backlog read the channel into memory, where what is published next joins it.
    assert_eq!(memory(&server).await["events"], 30);
    let warm = frames(&mut sse, 20).await;
    assert_eq!(warm.iter().map(|f| f.0).collect::<Vec<_>>(), ids[10..]);
    let extra = post_chat(&server, 99).await;
    assert_eq!(memory(&server).await["events"], 31);
    let mut warm = warm;
    warm.extend(frames(&mut sse, 1).await);
    assert_eq!(warm[20].0, extra);
    drop(sse);

    // Nobody watches for cold_after: the channel's history leaves memory.
    wait_cold(&server).await;
    assert_eq!(memory(&server).await["events"], 0);
    let mut sse = server.sse("/o/chat/events", Some(since)).await;
    let cold = frames(&mut sse, 21).await;
    assert_eq!(
        cold, warm,
        "the same ids and frames, read back from the log"
    );
    // Then live, right after the replay.
    let next = post_chat(&server, 30).await;
    let live = frames(&mut sse, 1).await;
    assert_eq!(live[0].0, next);
    assert!(
        sse.next_within(std::time::Duration::from_millis(300))
            .await
            .is_none_or(|f| f.id.is_none())
    );
    drop(sse);
    wait_cold(&server).await;
    let (_, cold_backlog) = server
        .get_json(&format!("/o/chat/backlog?since={since}"))
        .await;
    let mut expected = warm_backlog.as_array().cloned().expect("backlog");
    let cold_backlog = cold_backlog.as_array().cloned().expect("backlog");
    // The cold backlog has the two lines posted since, at its end.
    assert_eq!(cold_backlog.len(), expected.len() + 2);
    assert_eq!(cold_backlog[cold_backlog.len() - 2]["id"], json!(extra));
    assert_eq!(cold_backlog[cold_backlog.len() - 1]["id"], json!(next));
    expected.extend(cold_backlog[cold_backlog.len() - 2..].iter().cloned());
    assert_eq!(cold_backlog, expected);

    // A restart reads nothing back at start; the first stream gets the same replay.
    let server = server.restart(CONFIG, &overlays).await;
    assert_eq!(
        memory(&server).await["channels"],
        0,
        "nothing loaded at start"
    );
    let mut sse = server.sse("/o/chat/events", Some(since)).await;
    let after_restart = frames(&mut sse, 22).await;
    assert_eq!(after_restart[..21], warm[..]);
    assert_eq!(after_restart[21].0, next);
    server.stop().await;
}
