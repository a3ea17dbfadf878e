//! What widget pages show, in a real headless Chromium: labels, counter, timer and credits in
//! both bundled themes from a scripted session; a counter driven from the dashboard's button
//! and a moderator-free API call reaching an open page; a running subathon timer that shows the
//! same time left after a page reload and after a server restart.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::Duration;

use browser::Browser;
use common::{BROWSER_WAIT as WAIT, Server};
use serde_json::json;

fn overlays(theme: &str) -> Vec<(String, String)> {
    let base = |kind: &str, extra: &str| {
        format!("kind = \"{kind}\"\nchannel = \"alpha\"\ntheme = \"{theme}\"\n[options]\n{extra}")
    };
    vec![
        (
            "labels".into(),
            base(
                "labels",
                "labels = [\"latest.follower\", \"top.cheerer.session\", \"count.gifted\"]\nrotate_s = 0\n",
            ),
        ),
        (
            "deaths".into(),
            base("counter", "counter = \"deaths\"\nlabel = \"Deaths\"\n"),
        ),
        (
            "subathon".into(),
            base(
                "timer",
                "mode = \"subathon\"\nduration_s = 3600\ntier1_s = 60\ngift_s = 0\nbits100_s = 0\nlabel = \"Subathon\"\n",
            ),
        ),
        ("credits".into(), base("credits", "duration_s = 30\n")),
        ("train".into(), base("hypetrain", "")),
        ("poll".into(), base("poll", "")),
    ]
}

async fn script(server: &Server) {
    let post = |kind: &str, data: serde_json::Value| {
        server.post_event(json!({"channel": "alpha", "kind": kind, "data": data}))
    };
    post("stream.online", json!({})).await;
    post("follow", json!({"user_name": "PixelPanda"})).await;
    post("cheer", json!({"user_name": "NightOwl", "bits": 500})).await;
    post("cheer", json!({"user_name": "NightOwl", "bits": 250})).await;
    post("giftbomb", json!({"user_name": "GiftyMcGift", "total": 5})).await;
    post("sub", json!({"user_name": "Sunny", "tier": "1000"})).await;
    post(
        "raid",
        json!({"user_name": "FriendlyStreamer", "viewers": 42}),
    )
    .await;
    post("follow", json!({"user_name": "LateFollower"})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_widget_shows_the_session_in_both_themes() {
    for theme in ["default", "neon"] {
        let files = overlays(theme);
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let server = Server::start("", &refs).await;
        script(&server).await;
        let browser = Browser::launch().await;
        let labels = browser.open(&server.url("/o/labels"), 500, 200).await;
        labels
            .wait_for(
                "document.querySelector('.labels')?.textContent.includes('LateFollower')",
                WAIT,
            )
            .await;
        let text = labels
            .eval("document.querySelector('.labels').innerText")
            .await;
        let text = text.as_str().unwrap_or_default();
        assert!(text.contains("NightOwl (750 bits)"), "{theme}: {text}");
        assert!(text.contains('5'), "{theme}: {text}");
        // Steps of the subathon while it waits, then a counter from the API.
        common::post_json(
            &server.url("/api/channels/alpha/counters/deaths"),
            r#"{"op": "set", "value": 3}"#,
        )
        .await;
        let counter = browser.open(&server.url("/o/deaths"), 300, 120).await;
        counter
            .wait_for(
                "document.querySelector('.counter-value')?.textContent.trim() === '3'",
                WAIT,
            )
            .await;
        let timer = browser.open(&server.url("/o/subathon"), 400, 160).await;
        // 3600 s plus one tier-1 sub: 1:01:00, paused.
        timer
            .wait_for(
                "document.querySelector('[data-timer-clock]')?.textContent === '1:01:00'",
                WAIT,
            )
            .await;
        let credits = browser.open(&server.url("/o/credits?at=3"), 600, 800).await;
        credits
            .wait_for(
                "document.querySelector('.credits-roll')?.textContent.includes('FriendlyStreamer')",
                WAIT,
            )
            .await;
        let sections = credits
            .eval("[...document.querySelectorAll('.credits-section h2')].map(h => h.textContent).join('|')")
            .await;
        let sections = sections.as_str().unwrap_or_default();
        for s in ["Followers", "Subscribers", "Gifted subs", "Cheers", "Raids"] {
            assert!(sections.contains(s), "{theme}: {sections}");
        }
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_moves_a_counter_and_a_timer_keeps_its_time_across_reloads_and_restarts() {
    let files = overlays("default");
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let server = Server::start("", &refs).await;
    let browser = Browser::launch().await;
    let counter = browser.open(&server.url("/o/deaths"), 300, 120).await;
    counter
        .wait_for("document.documentElement.dataset.widgetSeq", WAIT)
        .await;
    let dash = browser.open(&server.url("/"), 1280, 900).await;
    dash.wait_for(
        "document.querySelector('.widget-controls[data-widget=counter] button[data-op=add]')",
        WAIT,
    )
    .await;
    dash.eval("document.querySelector('.widget-controls[data-widget=counter] button[data-op=add]').click(); true")
        .await;
    counter
        .wait_for(
            "document.querySelector('.counter-value')?.textContent.trim() === '1'",
            WAIT,
        )
        .await;
    // The dashboard's timer buttons: start it.
    dash.eval("document.querySelector('.widget-controls[data-widget=timer] button[data-op=start]').click(); true")
        .await;
    let timer = browser.open(&server.url("/o/subathon"), 400, 160).await;
    timer
        .wait_for("document.querySelector('.timer.is-running')", WAIT)
        .await;
    let left = |v: serde_json::Value| v.as_str().and_then(|s| s.parse::<i64>().ok()).unwrap_or(-1);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let before = left(
        timer
            .eval("document.documentElement.dataset.timerLeft")
            .await,
    );
    let measured = std::time::Instant::now();
    assert!((3596..=3599).contains(&before), "{before}");
    // What the page must show `measured.elapsed()` later, to the second.
    let expected =
        |measured: std::time::Instant| before - measured.elapsed().as_secs_f64().round() as i64;
    timer.navigate(&server.url("/o/subathon")).await;
    timer
        .wait_for("document.querySelector('.timer.is-running')", WAIT)
        .await;
    let after = left(
        timer
            .eval("document.documentElement.dataset.timerLeft")
            .await,
    );
    let want = expected(measured);
    assert!(
        (after - want).abs() <= 1,
        "after the reload {after}, expected {want}"
    );
    // A restart of the server: the page reconnects and shows the same time.
    let server = server.restart("", &refs).await;
    timer.navigate(&server.url("/o/subathon")).await;
    timer
        .wait_for("document.querySelector('.timer.is-running')", WAIT)
        .await;
    let restarted = left(
        timer
            .eval("document.documentElement.dataset.timerLeft")
            .await,
    );
    let want = expected(measured);
    assert!(
        (restarted - want).abs() <= 1,
        "after the restart {restarted}, expected {want}"
    );
    server.stop().await;
}

/// The README's pictures of every widget kind in both themes, from a session the demo source
/// filled. Run by hand: `cargo test --test widget_pages -- --ignored screenshots`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/screenshots; run by hand"]
async fn screenshots() {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    for theme in ["default", "neon"] {
        let mut files = overlays(theme);
        files[0].1 = files[0]
            .1
            .replace("rotate_s = 0", "rotate_s = 0\nempty = \"nobody yet\"")
            .replace("\"count.gifted\"", "\"count.gifted\", \"latest.raider\"");
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let server = Server::start("", &refs).await;
        // The script goes live first: its stream.online starts the session the demo fills.
        script(&server).await;
        for n in 1..=120u64 {
            for event in overlayd::demo::next_events("alpha", n) {
                let body = json!({"channel": "alpha", "kind": event.kind, "data": event.data});
                server.post_event(body).await;
            }
        }
        common::post_json(
            &server.url("/api/channels/alpha/counters/deaths"),
            r#"{"op": "set", "value": 7}"#,
        )
        .await;
        common::post_json(
            &server.url("/api/channels/alpha/timers/subathon"),
            r#"{"op": "start"}"#,
        )
        .await;
        let browser = Browser::launch().await;
        for (name, path, w, h) in [
            ("labels", "/o/labels", 500, 220),
            ("counter", "/o/deaths", 300, 120),
            ("timer", "/o/subathon", 400, 170),
            ("credits", "/o/credits?at=9", 600, 700),
            // No train or poll runs here: the dashboard's sample of each.
            ("hypetrain", "/o/train?sample=1", 600, 170),
            ("poll", "/o/poll?sample=1", 500, 260),
        ] {
            let tab = browser.open(&server.url(path), w, h).await;
            tab.wait_for("document.documentElement.dataset.widgetSeq", WAIT)
                .await;
            tokio::time::sleep(Duration::from_millis(900)).await;
            tab.screenshot(&out.join(format!("{theme}-{name}.png")))
                .await;
        }
        server.stop().await;
    }
}
