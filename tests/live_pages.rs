//! The hype-train and poll overlays in a real headless Chromium, driven by Twitch's recorded
//! EventSub payloads from the loopback EventSub fake: hidden while nothing runs, live bars and
//! time left while it does, the result after the end, and the same after a page reload.

#[path = "common/browser.rs"]
mod browser;
mod common;
#[path = "common/fake_twitch.rs"]
mod fake_twitch;

use browser::Browser;
use common::{BROWSER_WAIT as WAIT, Server};
use fake_twitch::{FakeTwitch, logged_in, notification, now};
use serde_json::{Value, json};

/// RFC 3339 time `ms` from now.
fn from_now(ms: i64) -> String {
    let at = overlayd::event::now_ms() as i64 + ms;
    chrono::DateTime::from_timestamp_millis(at)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Fixture `file` as a notification, with `times` (event keys) set to moments from now.
fn live(file: &str, kind: &str, id: &str, times: &[(&str, i64)]) -> Value {
    let mut n = notification(file, kind, id, &now());
    for (key, ms) in times {
        n["payload"]["event"][*key] = json!(from_now(*ms));
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hype_train_and_poll_overlays_follow_eventsub() {
    let fake = FakeTwitch::start().await;
    let overlays = [
        (
            "train",
            "kind = \"hypetrain\"\nchannel = \"streamer\"\n[options]\nshow_result_s = 30\n",
        ),
        (
            "poll",
            "kind = \"poll\"\nchannel = \"streamer\"\n[options]\nshow_result_s = 30\n",
        ),
        (
            "neon-poll",
            "kind = \"poll\"\nchannel = \"streamer\"\ntheme = \"neon\"\n",
        ),
    ];
    let server = Server::start_in(logged_in(), &fake.config(), &overlays).await;
    let browser = Browser::launch().await;
    let train = browser.open(&server.url("/o/train"), 600, 200).await;
    let poll = browser.open(&server.url("/o/poll"), 500, 320).await;
    let neon = browser.open(&server.url("/o/neon-poll"), 500, 320).await;
    for tab in [&train, &poll, &neon] {
        tab.wait_for("document.documentElement.dataset.widgetSeq", WAIT)
            .await;
        // Nothing runs: nothing shows.
        assert_eq!(
            tab.eval("document.getElementById('root').hidden").await,
            true
        );
    }
    fake.wait("subscribed", |f| {
        f.created()
            .iter()
            .any(|(t, _, _)| t == "channel.poll.progress")
    })
    .await;

    fake.send(
        1,
        &live(
            "channel_hype_train_progress_v2.json",
            "channel.hype_train.progress",
            "t-1",
            &[("started_at", -60_000), ("expires_at", 120_000)],
        ),
    );
    train
        .wait_for("document.querySelector('.hypetrain.is-active')", WAIT)
        .await;
    let text = train
        .eval("document.querySelector('.hypetrain').innerText")
        .await;
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.contains("Level 1") && text.contains("PogChamp") && text.contains("137 / 500"),
        "{text}"
    );
    let width = train
        .eval("document.querySelector('.hypetrain-fill').style.width")
        .await;
    assert_eq!(width, "27.4%");
    assert_eq!(
        train.eval("document.getElementById('root').hidden").await,
        false
    );
    // Time left counts down from the server's clock: about two minutes.
    let clock = train
        .eval("document.querySelector('[data-clock]').textContent")
        .await;
    assert!(
        ["02:00", "01:59", "01:58"].contains(&clock.as_str().unwrap_or_default()),
        "{clock}"
    );

    fake.send(
        1,
        &live(
            "channel_poll_progress.json",
            "channel.poll.progress",
            "p-1",
            &[("started_at", -10_000), ("ends_at", 60_000)],
        ),
    );
    for tab in [&poll, &neon] {
        tab.wait_for(
            "document.querySelectorAll('.poll-choice').length === 3",
            WAIT,
        )
        .await;
    }
    let percents = poll
        .eval("[...document.querySelectorAll('.poll-percent')].map(p => p.textContent).join(' ')")
        .await;
    // 12, 14 and 7 of 33 votes.
    assert_eq!(percents, "36.4% 42.4% 21.2%");
    // A reload shows the same poll at once.
    poll.navigate(&server.url("/o/poll")).await;
    poll.wait_for(
        "document.querySelectorAll('.poll-choice').length === 3",
        WAIT,
    )
    .await;
    let title = poll
        .eval("document.querySelector('.poll-title').textContent")
        .await;
    assert_eq!(title, "Aren’t shoes just really hard socks?");

    fake.send(
        1,
        &live(
            "channel_poll_end.json",
            "channel.poll.end",
            "p-2",
            &[("ended_at", 0)],
        ),
    );
    poll.wait_for("document.querySelector('.poll.is-ended')", WAIT)
        .await;
    let winner = poll
        .eval("document.querySelector('.poll-choice.is-winner .poll-choice-title').textContent")
        .await;
    assert_eq!(winner, "Yellow", "140 of 340 votes");

    fake.send(
        1,
        &live(
            "channel_hype_train_end_v2.json",
            "channel.hype_train.end",
            "t-2",
            &[("ended_at", 0)],
        ),
    );
    train
        .wait_for("document.querySelector('.hypetrain.is-ended')", WAIT)
        .await;
    let result = train
        .eval("document.querySelector('.hypetrain-result').textContent")
        .await;
    assert!(
        result
            .as_str()
            .unwrap_or_default()
            .starts_with("Ended at level"),
        "{result}"
    );

    // A prediction takes the poll's place: shares of channel points (Twitch's example leaves
    // the second outcome's counts out: 0).
    fake.send(
        1,
        &live(
            "channel_prediction_progress.json",
            "channel.prediction.progress",
            "r-1",
            &[("started_at", -5_000), ("locks_at", 60_000)],
        ),
    );
    poll.wait_for("document.querySelector('.poll.poll-prediction')", WAIT)
        .await;
    let shares = poll
        .eval("[...document.querySelectorAll('.poll-choice')].map(c => c.innerText.replace(/\\s+/g, ' ').trim()).join(' | ')")
        .await;
    assert_eq!(shares, "Yeah! 100% | No! 0%");
    server.stop().await;
}
