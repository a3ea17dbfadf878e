//! Each source on its own against its loopback fake, with a bare bus and a publisher: no HTTP
//! server is started. What a source needs is what it is handed (its config section, the login,
//! a watch of its channels), so these tests build exactly that. The back-off tests run on
//! paused time: a session that drops eight times and then stays up for minutes is retried
//! after the first delay on its next drop, not after the longest.

mod common;
#[path = "common/fake_irc.rs"]
mod fake_irc;
#[path = "common/fake_platforms.rs"]
mod fake_platforms;
#[path = "common/fake_twitch.rs"]
mod fake_twitch;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Bare, WAIT, eventually};
use fake_platforms::{Answer, FakeKick, FakeYoutube, KickMode, fixture, recorded};
use fake_twitch::{FakeTwitch, USER_ID, notification, now};
use overlayd::config::Config;
use overlayd::event::Kind;
use overlayd::twitch::Handles;
use overlayd::twitch::eventsub::Delivery;
use serde_json::json;
use tokio::sync::watch;

fn config(dir: &Path, text: &str) -> Config {
    let path = dir.join("overlay.toml");
    std::fs::write(&path, text).expect("config");
    Config::parse(&path, text).expect("valid config")
}

/// The channels a source is told to run for, and the sender that keeps the watch open.
fn channels(
    names: &[&str],
) -> (
    watch::Sender<BTreeSet<String>>,
    watch::Receiver<BTreeSet<String>>,
) {
    watch::channel(names.iter().map(|s| s.to_string()).collect())
}

/// A data folder holding the streamer's token (valid for years).
fn logged_in(dir: &Path) {
    std::fs::create_dir_all(dir.join("data")).expect("data");
    let token = json!({"access_token": "access-1", "refresh_token": "refresh-1", "expires_at_ms": 4_102_444_800_000u64,
                       "scopes": ["moderator:read:followers"], "login": "streamer", "user_id": USER_ID});
    std::fs::write(dir.join("data/twitch-token.json"), token.to_string()).expect("token");
}

fn twitch(bare: &Bare, config: &Config, sourced: watch::Receiver<BTreeSet<String>>) -> Handles {
    Handles {
        config: Arc::new(config.twitch.clone()),
        auth: overlayd::twitch::auth::Auth::new(config),
        covered: Arc::default(),
        publisher: bare.publisher.clone(),
        sourced,
    }
}

#[tokio::test]
async fn the_demo_publishes_on_its_channel_twitch_events_super_chats_and_tiktok_gifts() {
    let bare = Bare::new();
    let mut sub = bare.bus.subscribe(vec!["demo".into()], None);
    tokio::spawn(overlayd::demo::run(
        bare.publisher.clone(),
        "demo".into(),
        200.0,
        None,
        bare.shutdown.clone(),
    ));
    let events = bare.events(&mut sub, 12).await;
    // A Super Chat comes from YouTube (its chat line and its tip), a gift from TikTok.
    let from_youtube = |e: &overlayd::event::Event| {
        e.kind == Kind::Tip || e.kind == Kind::ChatMessage && !e.data["monetary"].is_null()
    };
    assert!(
        events.iter().all(|e| e.channel == "demo"
            && (e.platform == "twitch"
                || e.platform == "youtube" && from_youtube(e)
                || e.platform == "tiktok" && e.kind == Kind::Gift)),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e.kind == Kind::ChatMessage));
    assert!(
        events.iter().any(|e| !e.kind.is_chat()),
        "an alert every few steps"
    );
    assert_eq!(
        bare.wait_source("demo", "running").await,
        "synthetic events on #demo"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twitch_chat_reads_the_fake_irc_server_onto_a_bare_bus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(
        dir.path(),
        &format!(
            "[twitch]\n[twitch.endpoints]\nirc = \"{}\"\n[twitch.emotes]\nenabled = false\n",
            fake_irc::server().addr
        ),
    );
    let bare = Bare::new();
    let channel = "sources_chat";
    let (_keep, sourced) = channels(&[channel]);
    let mut sub = bare.bus.subscribe(vec![channel.into()], None);
    tokio::spawn(overlayd::twitch::chat::run(
        twitch(&bare, &config, sourced),
        bare.shutdown.clone(),
    ));
    fake_irc::server()
        .wait(&format!("#{channel} joined"), WAIT, |f| {
            f.joined(channel) > 0
        })
        .await;
    let sent = fake_irc::server().send(channel, &fake_irc::fixture("privmsg_basic.txt", channel));
    assert!(sent > 0);
    let event = bare.events(&mut sub, 1).await.remove(0);
    assert_eq!(event.kind, Kind::ChatMessage);
    assert_eq!(event.platform, "twitch");
    assert!(event.data["text"].is_string(), "{}", event.data);
    bare.wait_source("twitch-chat", "connected").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventsub_subscribes_and_publishes_onto_a_bare_bus() {
    let fake = FakeTwitch::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    logged_in(dir.path());
    let config = config(dir.path(), &fake.config());
    let bare = Bare::new();
    let (_keep, sourced) = channels(&["streamer"]);
    let handles = twitch(&bare, &config, sourced);
    let covered = handles.covered.clone();
    let mut sub = bare.bus.subscribe(vec!["streamer".into()], None);
    tokio::spawn(overlayd::twitch::eventsub::run(
        handles,
        Delivery::WebSocket,
        bare.shutdown.clone(),
    ));
    fake.wait("every type subscribed", |f| f.created().len() >= 12)
        .await;
    // Recent followers seed an empty channel as history, oldest first.
    let seeded = bare.events(&mut sub, 2).await;
    assert!(seeded.iter().all(|e| e.history && e.kind == Kind::Follow));
    assert_eq!(seeded[0].data["user_login"], "older");
    fake.send(
        1,
        &notification("channel_raid.json", "channel.raid", "m-1", &now()),
    );
    let raid = bare.events(&mut sub, 1).await.remove(0);
    assert_eq!((raid.kind, raid.platform.as_str()), (Kind::Raid, "twitch"));
    assert!(
        covered.contains("streamer"),
        "chat leaves covered alerts out"
    );
    let detail = bare.wait_source("twitch-eventsub", "connected").await;
    assert!(detail.contains("#streamer"), "{detail}");
}

/// Runs the platform sources of `config` for the channels in `sourced`.
fn platforms(bare: &Bare, config: &Config, sourced: watch::Receiver<BTreeSet<String>>) {
    tokio::spawn(overlayd::platforms::run(
        config.platforms.clone(),
        overlayd::platforms::Links::new(&config.platforms, 4),
        bare.publisher.clone(),
        sourced.clone(),
        sourced,
        bare.shutdown.clone(),
    ));
}

/// The gaps between a source's attempts, on paused time.
fn gaps(at: &[tokio::time::Instant]) -> Vec<Duration> {
    at.windows(2).map(|w| w[1] - w[0]).collect()
}

#[tokio::test]
async fn eventsub_backs_off_and_starts_over_after_a_healthy_session() {
    let fake = FakeTwitch::start().await;
    // Eight sessions that die after their 1 s keepalive window, then one that lives.
    fake.state.lock().expect("state").keepalive = vec![1, 1, 1, 1, 1, 1, 1, 1, 3600];
    let dir = tempfile::tempdir().expect("tempdir");
    logged_in(dir.path());
    let config = config(dir.path(), &fake.config());
    let bare = Bare::new();
    // No channel: the sessions alone, no Helix calls while time is paused.
    let (_keep, sourced) = channels(&[]);
    tokio::spawn(overlayd::twitch::eventsub::run(
        twitch(&bare, &config, sourced),
        Delivery::WebSocket,
        bare.shutdown.clone(),
    ));
    fake.wait("the first session", |f| f.connections() >= 1)
        .await;
    // From here on the clock only moves when everything waits.
    tokio::time::pause();
    eventually("nine sessions", Duration::from_secs(3600), || async {
        (fake.connections() >= 9).then_some(())
    })
    .await;
    let accepted = fake.state.lock().expect("state").accepted.clone();
    let grown = gaps(&accepted);
    // Each gap is the keepalive window (2 s) plus the wait; the waits double to the minute.
    assert!(
        grown[7] >= Duration::from_secs(49),
        "backed off to the cap: {grown:?}"
    );
    assert!(grown[0] < Duration::from_secs(4), "{grown:?}");
    // The ninth session stays up for five minutes, then drops.
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(fake.connections(), 9, "the healthy session held");
    let dropped = tokio::time::Instant::now();
    fake.state.lock().expect("state").sockets[8]
        .send(None)
        .expect("open");
    eventually("the tenth session", Duration::from_secs(3600), || async {
        (fake.connections() >= 10).then_some(())
    })
    .await;
    let tenth = fake.state.lock().expect("state").accepted[9];
    let wait = tenth - dropped;
    assert!(
        wait <= Duration::from_millis(1300),
        "after a healthy session the first delay again, not the longest: {wait:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn youtube_reads_the_fake_onto_a_bare_bus() {
    let yt = FakeYoutube::start().await;
    yt.push(Answer::Json(recorded(
        "get_live_chat.normal.json",
        "s-1",
        200,
    )));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(
        dir.path(),
        &format!(
            "[youtube]\nbase_url = \"{}\"\nmin_poll_ms = 100\n[[youtube.channels]]\nchannel = \"multi\"\ntarget = \"@fake\"\n",
            yt.base()
        ),
    );
    let bare = Bare::new();
    let (_keep, sourced) = channels(&["multi"]);
    let mut sub = bare.bus.subscribe(vec!["multi".into()], None);
    platforms(&bare, &config, sourced);
    let event = bare.events(&mut sub, 1).await.remove(0);
    assert_eq!(
        (event.kind, event.platform.as_str()),
        (Kind::ChatMessage, "youtube")
    );
    bare.wait_source("youtube:@fake", "connected").await;
}

#[tokio::test]
async fn youtube_backs_off_and_starts_over_after_a_healthy_stretch() {
    let yt = FakeYoutube::start().await;
    for _ in 0..8 {
        yt.push(Answer::Status(429));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(
        dir.path(),
        &format!(
            "[youtube]\nbase_url = \"{}\"\nmin_poll_ms = 1000\nmax_poll_ms = 1000\n[[youtube.channels]]\nchannel = \"multi\"\ntarget = \"@fake\"\n",
            yt.base()
        ),
    );
    let bare = Bare::new();
    let (_keep, sourced) = channels(&["multi"]);
    platforms(&bare, &config, sourced);
    yt.wait_for("the first poll", |s| !s.polls.is_empty()).await;
    tokio::time::pause();
    // Eight refusals (waits doubling), then a minute and a half of good answers a second apart.
    eventually("100 polls", Duration::from_secs(3600), || async {
        (yt.state.lock().expect("state").paused_polls.len() >= 100).then_some(())
    })
    .await;
    yt.push(Answer::Status(429));
    let polls = eventually("two more polls", Duration::from_secs(3600), || async {
        let st = yt.state.lock().expect("state");
        (st.script.is_empty() && st.paused_polls.len() >= 103).then(|| st.paused_polls.clone())
    })
    .await;
    let g = gaps(&polls);
    assert!(g[6] >= Duration::from_secs(40), "backed off: {:?}", &g[..9]);
    // The refused poll is one of the last three gaps' starts; the wait after it is the first.
    let last = g[g.len() - 3..].iter().max().copied().unwrap_or_default();
    assert!(
        last <= Duration::from_millis(1300),
        "after a healthy stretch the first delay again: {:?}",
        &g[g.len() - 3..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kick_reads_the_fake_onto_a_bare_bus() {
    let kick = FakeKick::start(KickMode::Pusher).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(
        dir.path(),
        &format!(
            "{}[[kick.channels]]\nchannel = \"multi\"\nslug = \"fixture\"\nchannel_id = 11\nchatroom_id = 22\n",
            kick.config("pusher")
        ),
    );
    let bare = Bare::new();
    let (_keep, sourced) = channels(&["multi"]);
    let mut sub = bare.bus.subscribe(vec!["multi".into()], None);
    platforms(&bare, &config, sourced);
    kick.wait_subscribed("pusher:subscribe").await;
    kick.send(&fixture("kick", "pusher.chat_message.json"));
    let event = bare.events(&mut sub, 1).await.remove(0);
    assert_eq!(
        (event.kind, event.platform.as_str()),
        (Kind::ChatMessage, "kick")
    );
    bare.wait_source("kick:fixture", "connected").await;
}
