//! What tools send, as tools send it: partial objects are filled in at every depth and render
//! in both bundled themes, wrong types are named, a template that fails on one event shows the
//! event's summary and is reported once, and a burst of follows stops at the queue's bound.

mod common;

use std::time::Duration;

use common::{Server, WAIT, eventually};
use serde_json::{Value, json};

/// A partial body of every kind, as a bot or a script would send it.
fn partial_events() -> Vec<Value> {
    let mut events = vec![
        json!({"kind": "chat.message", "data": {"author": {"display_name": "Cool Bot"}, "text": "from a bot"}}),
        json!({"kind": "chat.message", "data": {"author": {"login": "scripted"}, "text": "login only"}}),
        json!({"kind": "chat.message", "data": {"text": "a reply", "reply": {"display_name": "Ann"},
               "author": {"display_name": "Bob", "badges": [{"set": "moderator"}]}}}),
        json!({"kind": "chat.message", "data": {"text": "money", "monetary": {"amount": 5},
               "author": {"display_name": "Big Spender"}}}),
        json!({"kind": "follow", "data": {"user_login": "loginonly"}}),
        json!({"kind": "redemption", "data": {"user_name": "Hydrator", "reward": {"title": "Hydrate"}}}),
    ];
    for kind in [
        "sub",
        "resub",
        "subgift",
        "giftbomb",
        "cheer",
        "raid",
        "announcement",
        "stream.online",
        "stream.offline",
        "hypetrain.begin",
        "hypetrain.progress",
        "hypetrain.end",
    ] {
        events.push(json!({"kind": kind, "data": {}}));
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_objects_of_every_kind_render_in_both_bundled_themes() {
    let mut files = Vec::new();
    for theme in ["default", "neon"] {
        for kind in ["chat", "alerts", "events"] {
            let extra = if kind == "alerts" {
                "[options]\nhold_off_air = false\nduration_s = 0.01\ngap_s = 0\nmax_queue = 1000\n"
            } else {
                ""
            };
            files.push((
                format!("{kind}-{theme}"),
                format!("kind = \"{kind}\"\nchannel = \"tol\"\ntheme = \"{theme}\"\n{extra}"),
            ));
        }
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let server = Server::start("", &refs).await;
    let mut streams = Vec::new();
    for (name, _) in &files {
        streams.push((
            name.clone(),
            server.sse(&format!("/o/{name}/events"), None).await,
        ));
    }
    let events = partial_events();
    for e in &events {
        let mut body = e.clone();
        body["channel"] = json!("tol");
        let (status, answer) = server.post_event(body).await;
        assert_eq!(status, 202, "{e}: {answer}");
    }
    for (name, sse) in &mut streams {
        let wanted = if name.starts_with("chat") {
            4
        } else if name.starts_with("events") {
            events.len() - 4
        } else {
            // Alerts show follows, subs, gifts, cheers, raids, redemptions, hype trains.
            10
        };
        let mut seen = 0;
        while seen < wanted {
            let f = tokio::time::timeout(WAIT, sse.next())
                .await
                .expect("a frame in time");
            if f.id.is_none() {
                continue;
            }
            let html = f.data["html"].as_str().unwrap_or_default();
            if f.event.starts_with("chat.") && !name.starts_with("chat") {
                continue;
            }
            assert!(
                !html.trim().is_empty(),
                "{name}: {} rendered nothing",
                f.event
            );
            assert!(
                !html.contains("item-fallback"),
                "{name}: {} fell back: {html}",
                f.event
            );
            seen += 1;
        }
    }
    let health = server.health().await;
    assert_eq!(health["render_errors"], json!([]), "{health}");
    // What was filled in reaches the event.
    let (_, recent) = server.get_json("/api/channels/tol/events?limit=50").await;
    let bot = recent["events"]
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["data"]["text"] == "from a bot")
        .expect("the bot's line");
    assert_eq!(bot["data"]["author"]["login"], "coolbot");
    assert_eq!(bot["data"]["author"]["roles"]["moderator"], false);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_type_is_named_on_http_and_on_the_events_socket() {
    let server = Server::start("", &[]).await;
    let (status, answer) = server
        .post_event(json!({"channel": "tol", "kind": "chat.message",
                           "data": {"author": {"roles": {"moderator": "yes"}}}}))
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("data.author.roles.moderator: expected a boolean"),
        "{answer}"
    );
    let (status, answer) = server
        .post_event(json!({"channel": "tol", "kind": "cheer", "data": {"bits": "lots"}}))
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("data.bits: expected a number"),
        "{answer}"
    );
    use futures_util::{SinkExt, StreamExt};
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/api/ws", server.addr))
        .await
        .expect("socket");
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        json!({"type": "publish", "channel": "tol", "kind": "raid", "data": {"viewers": "many"}})
            .to_string(),
    ))
    .await
    .expect("send");
    let answer = loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(t) = m {
            break serde_json::from_str::<Value>(&t).expect("json");
        }
    };
    assert_eq!(answer["code"], "BAD_EVENT", "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("data.viewers: expected a number"),
        "{answer}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_that_fails_on_one_event_shows_its_summary_and_is_reported_once() {
    // Passes the check with sample lines (text only), fails in strict mode on a line with an
    // emote (which has no `value`).
    let server = Server::with_chat_template(
        "picky",
        "tol",
        "<div class=\"chat-line\">{{#each data.elements}}{{this.value}}{{/each}}</div>",
    )
    .await;
    let mut sse = server.sse("/o/chat/events", None).await;
    let post = |text: &str, emote: bool| {
        let mut elements = vec![json!({"type": "text", "value": text})];
        if emote {
            elements.push(json!({"type": "emote", "id": "25", "name": "Kappa",
                                 "url": "https://static-cdn.jtvnw.net/emoticons/v2/25/default/dark/1.0"}));
        }
        json!({"channel": "tol", "kind": "chat.message",
               "data": {"text": text, "elements": elements, "author": {"display_name": "Dana"}}})
    };
    assert!(
        server.health().await["theme_errors"]
            .as_array()
            .is_some_and(Vec::is_empty)
    );
    let (_, first) = server.post_event(post("one <b>bold</b>", true)).await;
    server.post_event(post("two", true)).await;
    let mut htmls = Vec::new();
    let mut told = 0;
    while htmls.len() < 2 {
        let f = sse.next().await;
        match f.event.as_str() {
            "chat.message" => htmls.push(f.data["html"].as_str().unwrap_or_default().to_string()),
            "theme-error" => told += 1,
            _ => {}
        }
    }
    assert!(
        htmls[0].contains("item-fallback")
            && htmls[0].contains("Dana: one &lt;b&gt;bold&lt;/b&gt;"),
        "{}",
        htmls[0]
    );
    assert!(htmls[1].contains("Dana: two"), "{}", htmls[1]);
    let health = server.health().await;
    let errors = health["render_errors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(errors.len(), 1, "once per template: {errors:?}");
    let error = errors[0].as_str().unwrap_or_default();
    assert!(
        error.contains("chat.message.hbs:1") && error.contains(&format!("event {}", first["id"])),
        "{error}"
    );
    // It renders again: the report goes.
    server.post_event(post("three", false)).await;
    eventually("the report clears once it renders", WAIT, || async {
        server.health().await["render_errors"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    })
    .await;
    assert_eq!(told, 1, "the overlay's error box is told once");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_follows_stops_at_the_bound_merged_and_no_paid_event_is_dropped() {
    let overlay = "kind = \"alerts\"\nchannel = \"flood\"\n[options]\nhold_off_air = false\nduration_s = 60\nmax_queue = 50\n";
    let server = Server::start("", &[("alerts", overlay)]).await;
    let client = common::client();
    let url = server.url("/api/events");
    let mut posters = Vec::new();
    for part in 0..4u64 {
        let (client, url) = (client.clone(), url.clone());
        posters.push(tokio::spawn(async move {
            for i in 0..1_250u64 {
                let n = part * 1_250 + i;
                let body = if n % 1_000 == 500 {
                    json!({"channel": "flood", "kind": "cheer", "data": {"user_name": format!("payer{n}"), "bits": 100}})
                } else {
                    json!({"channel": "flood", "kind": "follow", "data": {"user_name": format!("bot{n}"), "user_id": format!("b{n}")}})
                };
                let r = client.post(&url).json(&body).send().await.expect("post");
                assert_eq!(r.status(), 202);
            }
        }));
    }
    for p in posters {
        p.await.expect("poster");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, state) = server.get_json("/api/channels/flood/alerts").await;
    let queued = state["queued"].as_array().expect("queued");
    let count = state["queued_count"].as_u64().expect("count") as usize;
    let merged: Vec<&Value> = queued.iter().filter(|a| a["merged"].is_u64()).collect();
    assert_eq!(merged.len(), 1, "{state}");
    let cheers = queued.iter().filter(|a| a["kind"] == "cheer").count()
        + usize::from(state["playing"]["kind"] == "cheer");
    assert_eq!(cheers, 5, "every paid event is kept: {state}");
    assert!(count <= 50 + 1 + 5, "bounded: {count}");
    let follows_alerted = queued
        .iter()
        .filter(|a| a["kind"] == "follow" && !a["merged"].is_u64())
        .count()
        + usize::from(state["playing"]["kind"] == "follow");
    assert_eq!(
        follows_alerted as u64 + merged[0]["merged"].as_u64().unwrap_or(0),
        4_995,
        "every follow is in one alert or the merged one: {state}"
    );
    assert!(
        merged[0]["summary"]
            .as_str()
            .unwrap_or_default()
            .ends_with("more followed"),
        "{state}"
    );
    server.stop().await;
}
