//! What alert pages show while the queue is steered, in a real headless Chromium: two pages of
//! one overlay (one on the shared stream, one direct) play the same queue; pause, resume, skip,
//! replay and mute; paused survives a restart; an OBS source plays only while it is on air
//! (active), never on a preview-only (visible) one; the dashboard's buttons.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::sync::Arc;
use std::time::Duration;

use browser::{Browser, Tab};
use common::{BROWSER_WAIT as WAIT, Server, eventually};
use serde_json::{Value, json};

/// Counts what a page plays: alerts started (`__alerts`, play numbers, "r" for a replay) and
/// sounds (`__plays`, every call of an audio element's `play`).
const SPY: &str = r#"
window.__plays = 0; window.__alerts = [];
const play = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () { window.__plays++; return play.call(this); };
document.addEventListener('overlayd:alert', e => window.__alerts.push(e.detail.play + (e.detail.replay ? 'r' : '')));
"#;

const OVERLAY: &str =
    "kind = \"alerts\"\nchannel = \"alpha\"\n[options]\nduration_s = 30\ngap_s = 0.2\n";

async fn spied(browser: &Arc<Browser>, server: &Server, path: &str, extra: &str) -> Tab {
    let tab = browser.open("about:blank", 800, 600).await;
    tab.call_public(
        "Page.addScriptToEvaluateOnNewDocument",
        json!({"source": format!("{SPY}\n{extra}")}),
    )
    .await;
    tab.navigate(&server.url(path)).await;
    tab.wait_for("document.documentElement.dataset.connected", WAIT)
        .await;
    tab
}

async fn command(server: &Server, action: &str, body: Value) -> Value {
    let (status, answer) = common::post_json(
        &server.url(&format!("/api/channels/alpha/alerts/{action}")),
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{action}: {answer}");
    answer
}

async fn follow(server: &Server, user: &str) -> u64 {
    let (status, e) = server
        .post_event(json!({"channel": "alpha", "kind": "follow", "data": {"user_name": user, "user_id": user}}))
        .await;
    assert_eq!(status, 202, "{e}");
    e["id"].as_u64().expect("id")
}

/// Waits until the server counts a page of the overlay on air (or off air).
async fn on_air(server: &Server, on: bool) {
    eventually(&format!("on air = {on}"), WAIT, || async move {
        let s = server.get_json("/api/channels/alpha/alerts").await.1;
        (s["on_air"] == on).then_some(())
    })
    .await;
}

fn showing(text: &str) -> String {
    format!("document.querySelector('#root .alert')?.textContent.includes({text:?}) === true")
}

const NOTHING: &str = "document.querySelector('#root .alert') === null";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pages_of_one_overlay_play_one_queue_as_it_is_steered() {
    let server = Server::start("", &[("alerts", OVERLAY)]).await;
    let browser = Browser::launch().await;
    let pages = [
        spied(&browser, &server, "/o/alerts", "").await,
        spied(&browser, &server, "/o/alerts?transport=direct", "").await,
    ];
    assert_eq!(
        pages[0]
            .eval("document.documentElement.dataset.connected")
            .await,
        "shared"
    );
    assert_eq!(
        pages[1]
            .eval("document.documentElement.dataset.connected")
            .await,
        "direct"
    );
    on_air(&server, true).await;

    // Paused: a new alert plays on neither page.
    command(&server, "pause", json!({})).await;
    let waiting = follow(&server, "Waiting").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for page in &pages {
        assert_eq!(page.eval(NOTHING).await, true, "paused");
    }
    // Resumed: it plays once on each.
    command(&server, "resume", json!({})).await;
    for page in &pages {
        page.wait_for(&showing("Waiting followed"), WAIT).await;
        assert_eq!(
            page.eval("document.querySelector('#root .alert-replay-tag') === null")
                .await,
            true
        );
        assert_eq!(page.eval("window.__alerts.length").await, 1);
        assert_eq!(page.eval("window.__plays").await, 1, "its sound played");
    }
    // Skip ends it on both.
    command(&server, "skip", json!({})).await;
    for page in &pages {
        page.wait_for(NOTHING, WAIT).await;
    }
    // A replay of it plays again, marked.
    command(&server, "replay", json!({"id": waiting})).await;
    for page in &pages {
        page.wait_for(
            &format!("{} && document.querySelector('#root .alert-replay[data-replay=\"true\"] .alert-replay-tag') !== null", showing("Waiting followed")),
            WAIT,
        )
        .await;
        let alerts = page.eval("window.__alerts").await;
        assert_eq!(alerts.as_array().map(Vec::len), Some(2), "{alerts}");
        assert!(
            alerts[1].as_str().unwrap_or_default().ends_with('r'),
            "{alerts}"
        );
    }
    // Muted: the next alert shows, and no audio element is played.
    command(&server, "skip", json!({})).await;
    command(&server, "mute", json!({})).await;
    follow(&server, "Quiet").await;
    for page in &pages {
        page.wait_for(&showing("Quiet followed"), WAIT).await;
        assert_eq!(page.eval("window.__plays").await, 2, "silent while muted");
    }
    // A page that reloads mid-alert comes back to the same alert, not to a new one.
    pages[1]
        .navigate(&server.url("/o/alerts?transport=direct"))
        .await;
    pages[1].wait_for(&showing("Quiet followed"), WAIT).await;
    assert_eq!(pages[1].eval("window.__alerts.length").await, 1);
    assert_eq!(
        pages[1].eval("window.__plays").await,
        0,
        "joined halfway: no sound"
    );

    // Paused survives a restart of overlayd; the pages reconnect by themselves.
    command(&server, "skip", json!({})).await;
    command(&server, "pause", json!({})).await;
    let addr = server.addr;
    let dir = {
        let mut s = server;
        s.halt().await;
        s.dir
    };
    let server = Server::start_at(dir, &addr.to_string(), "", &[("alerts", OVERLAY)]).await;
    let state = server.get_json("/api/channels/alpha/alerts").await.1;
    assert_eq!(
        (state["paused"].clone(), state["muted"].clone()),
        (json!(true), json!(true)),
        "{state}"
    );
    on_air(&server, true).await;
    follow(&server, "After").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for page in &pages {
        assert_eq!(
            page.eval(NOTHING).await,
            true,
            "still paused after the restart"
        );
    }
    command(&server, "resume", json!({})).await;
    for page in &pages {
        page.wait_for(&showing("After followed"), WAIT).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_obs_source_plays_alerts_only_while_on_air() {
    let server = Server::start("", &[("alerts", OVERLAY)]).await;
    let browser = Browser::launch().await;
    // OBS injects `window.obsstudio` before page scripts run; do the same.
    let obs = "window.obsstudio = { pluginVersion: '2.24.0' };";
    let page = spied(&browser, &server, "/o/alerts", obs).await;
    // Nothing fires at load: the page starts from document.visibilityState (visible here).
    on_air(&server, true).await;
    let dispatch = |event: &str, detail: Value| {
        format!("window.dispatchEvent(new CustomEvent('{event}', {{detail: {detail}}})); true")
    };
    page.eval(&dispatch(
        "obsSourceActiveChanged",
        json!({"active": false}),
    ))
    .await;
    on_air(&server, false).await;
    follow(&server, "Patient").await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(page.eval(NOTHING).await, true, "held while off air");
    let state = server.get_json("/api/channels/alpha/alerts").await.1;
    assert_eq!(
        (state["held"].clone(), state["playing"].clone()),
        (json!(true), Value::Null),
        "{state}"
    );
    // In the Studio Mode preview only: visible, not active. Still held.
    page.eval(&dispatch(
        "obsSourceVisibleChanged",
        json!({"visible": true}),
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(page.eval(NOTHING).await, true, "a preview does not play it");
    assert_eq!(page.eval("window.__alerts.length").await, 0);
    // On air: it plays.
    page.eval(&dispatch("obsSourceActiveChanged", json!({"active": true})))
        .await;
    page.wait_for(&showing("Patient followed"), WAIT).await;
    // Off air mid-alert: this page hides it and stays silent.
    page.eval(&dispatch(
        "obsSourceActiveChanged",
        json!({"active": false}),
    ))
    .await;
    page.wait_for(NOTHING, WAIT).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_steers_the_queue_and_replays_a_recent_event() {
    let server = Server::start("", &[("alerts", OVERLAY)]).await;
    let browser = Browser::launch().await;
    let obs = spied(&browser, &server, "/o/alerts", "").await;
    on_air(&server, true).await;
    let first = follow(&server, "Listed").await;
    obs.wait_for(&showing("Listed followed"), WAIT).await;
    let dash = browser.open(&server.url("/"), 1200, 900).await;
    // What plays, with the buttons.
    dash.wait_for(
        "document.querySelector('[data-alerts=\"alerts\"] .playing')?.textContent.includes('Listed followed') === true",
        WAIT,
    )
    .await;
    dash.eval("document.querySelector('[data-alerts=\"alerts\"] button[data-action=\"pause\"]').click(); true")
        .await;
    eventually("paused from the dashboard", WAIT, || async {
        let s = server.get_json("/api/channels/alpha/alerts").await.1;
        (s["paused"] == true).then_some(())
    })
    .await;
    dash.wait_for(
        "document.querySelector('[data-alerts=\"alerts\"] button[data-action=\"resume\"]:not([hidden])') !== null",
        WAIT,
    )
    .await;
    dash.eval("document.querySelector('[data-alerts=\"alerts\"] button[data-action=\"resume\"]').click(); true")
        .await;
    dash.eval("document.querySelector('[data-alerts=\"alerts\"] button[data-action=\"skip\"]').click(); true")
        .await;
    obs.wait_for(NOTHING, WAIT).await;
    // The recent events list: its row's replay button plays it again on the overlay.
    dash.wait_for(
        &format!(
            "document.querySelector('.recent [data-event=\"{first}\"] button.replay') !== null"
        ),
        WAIT,
    )
    .await;
    dash.eval(&format!(
        "document.querySelector('.recent [data-event=\"{first}\"] button.replay').click(); true"
    ))
    .await;
    obs.wait_for(
        &format!(
            "{} && document.querySelector('#root .alert-replay') !== null",
            showing("Listed followed")
        ),
        WAIT,
    )
    .await;
    // Safe mode: one button, a banner while it lasts.
    dash.eval("document.querySelector('button.safe-mode[data-channel=\"alpha\"]').click(); true")
        .await;
    dash.wait_for(
        "document.querySelector('.safe-banner[data-channel=\"alpha\"]:not([hidden])')?.textContent.includes('Safe mode') === true",
        WAIT,
    )
    .await;
    let s = server.get_json("/api/channels/alpha/alerts").await.1;
    assert!(s["safe_mode"]["until_ms"].is_u64(), "{s}");
    // The dashboard's previews never count as on air.
    let preview = dash
        .eval("document.querySelector('.preview iframe').getAttribute('src')")
        .await;
    assert_eq!(preview, "/o/alerts?preview=1");
    server.stop().await;
}
