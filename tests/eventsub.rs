//! EventSub end to end against loopback fakes of Twitch (Helix, id and the EventSub
//! WebSocket): subscriptions after the welcome, notifications to SSE frames, duplicates and
//! stale messages dropped, reconnect without loss or repeat, keepalive timeout.

mod common;
#[path = "common/fake_twitch.rs"]
mod fake_twitch;

use std::collections::BTreeSet;

use common::Server;
use fake_twitch::{FakeTwitch, USER_ID, logged_in, notification, now};
use serde_json::json;

const KINDS: &[(&str, &str, &str)] = &[
    ("channel_follow_v2.json", "channel.follow", "follow"),
    ("channel_subscribe.json", "channel.subscribe", "sub"),
    (
        "channel_subscription_gift.json",
        "channel.subscription.gift",
        "giftbomb",
    ),
    (
        "channel_subscription_message.json",
        "channel.subscription.message",
        "resub",
    ),
    ("channel_cheer.json", "channel.cheer", "cheer"),
    ("channel_raid.json", "channel.raid", "raid"),
    (
        "channel_points_redemption_add.json",
        "channel.channel_points_custom_reward_redemption.add",
        "redemption",
    ),
    ("stream_online.json", "stream.online", "stream.online"),
    ("stream_offline.json", "stream.offline", "stream.offline"),
    (
        "channel_hype_train_begin_v2.json",
        "channel.hype_train.begin",
        "hypetrain.begin",
    ),
    (
        "channel_hype_train_progress_v2.json",
        "channel.hype_train.progress",
        "hypetrain.progress",
    ),
    (
        "channel_hype_train_end_v2.json",
        "channel.hype_train.end",
        "hypetrain.end",
    ),
    ("channel_poll_end.json", "channel.poll.end", "poll.end"),
];

/// Every type subscribed to.
const SUBSCRIBED: usize = KINDS.len() + ALSO_SUBSCRIBED.len();

/// Subscribed to as well, with no recorded payload sent here (the poll overlay's test in
/// tests/live_pages.rs sends the progress ones).
const ALSO_SUBSCRIBED: &[&str] = &[
    "channel.poll.begin",
    "channel.poll.progress",
    "channel.prediction.begin",
    "channel.prediction.progress",
    "channel.prediction.lock",
    "channel.prediction.end",
];

async fn start(fake: &FakeTwitch) -> Server {
    Server::start_in(
        logged_in(),
        &fake.config(),
        &[("feed", "kind = \"events\"\nchannel = \"streamer\"\n")],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_follow_the_welcome_and_notifications_become_frames() {
    let fake = FakeTwitch::start().await;
    let server = start(&fake).await;
    fake.wait("every subscription on S1", |f| {
        f.created().len() >= SUBSCRIBED
    })
    .await;
    let created = fake.created();
    let types: BTreeSet<&str> = created.iter().map(|(t, _, _)| t.as_str()).collect();
    let expected: BTreeSet<&str> = KINDS
        .iter()
        .map(|(_, t, _)| *t)
        .chain(ALSO_SUBSCRIBED.iter().copied())
        .collect();
    assert_eq!(types, expected);
    assert!(created.iter().all(|(_, _, session)| session == "S1"));
    let follow = created
        .iter()
        .find(|(t, _, _)| t == "channel.follow")
        .expect("follow");
    assert_eq!(
        follow.1,
        json!({"broadcaster_user_id": USER_ID, "moderator_user_id": USER_ID})
    );
    let raid = created
        .iter()
        .find(|(t, _, _)| t == "channel.raid")
        .expect("raid");
    assert_eq!(raid.1, json!({"to_broadcaster_user_id": USER_ID}));
    assert_eq!(
        fake.state.lock().expect("state").deleted,
        ["stale-1"],
        "the stale subscription of an earlier run"
    );

    // The channel had no history: its recent followers were fetched once and listed, oldest
    // first, as history (never alerted).
    let (_, recent) = server
        .get_json("/api/channels/streamer/events?limit=10")
        .await;
    let names: Vec<&str> = recent["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["data"]["user_name"].as_str())
        .collect();
    assert_eq!(names, ["Newest", "Older"], "{recent}");
    assert!(
        recent["events"]
            .as_array()
            .expect("events")
            .iter()
            .all(|e| e["history"] == true)
    );
    let _second_viewer = server.sse("/o/feed/events", Some(0)).await;
    assert_eq!(
        fake.state.lock().expect("state").follower_calls,
        1,
        "a second viewer makes no Helix call"
    );

    let mut sse = server.sse("/o/feed/events", None).await;
    for (i, (file, kind, ours)) in KINDS.iter().enumerate() {
        fake.send(1, &notification(file, kind, &format!("m-{i}"), &now()));
        let f = sse.next().await;
        assert_eq!(f.event, *ours, "{file}");
        assert_eq!(f.data["channel"], "streamer");
    }
    // At-least-once delivery: a repeated message id is dropped; so is a replay older than 10 min.
    fake.send(
        1,
        &notification("channel_follow_v2.json", "channel.follow", "m-0", &now()),
    );
    fake.send(
        1,
        &notification(
            "channel_follow_v2.json",
            "channel.follow",
            "m-old",
            "2020-01-01T00:00:00.000Z",
        ),
    );
    fake.send(
        1,
        &json!({"metadata": {"message_type": "notification"}, "payload": "garbage"}),
    );
    fake.send(
        1,
        &notification("channel_cheer.json", "channel.cheer", "m-last", &now()),
    );
    let f = sse.next().await;
    assert_eq!(
        f.event, "cheer",
        "the duplicate and the stale follow were dropped"
    );
    assert_eq!(server.source_state("twitch-auth").await.0, "ok");
    let (_, detail) = server.source_state("twitch-eventsub").await;
    assert!(detail.contains("live: Testing overlays"), "{detail}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_moves_the_session_without_loss_repeat_or_resubscribing() {
    let fake = FakeTwitch::start().await;
    let server = start(&fake).await;
    fake.wait("subscriptions", |f| f.created().len() >= SUBSCRIBED)
        .await;
    let mut sse = server.sse("/o/feed/events", None).await;
    let reconnect = json!({
        "metadata": {"message_id": "r-1", "message_type": "session_reconnect", "message_timestamp": now()},
        "payload": {"session": {"id": "S1", "status": "reconnecting", "keepalive_timeout_seconds": null,
                                "reconnect_url": format!("ws://{}/ws?reconnect=1", fake.ws), "connected_at": now()}}
    });
    fake.send(1, &reconnect);
    // Events keep coming on the old socket while the client moves.
    fake.send(
        1,
        &notification("channel_follow_v2.json", "channel.follow", "during", &now()),
    );
    fake.wait("second connection", |f| f.connections() == 2)
        .await;
    // Two sockets have no order between them: the old one's event is in before the new one's.
    let first: Vec<String> = sse.events(1).await.into_iter().map(|f| f.event).collect();
    assert_eq!(first, ["follow"]);
    fake.send(
        2,
        &notification("channel_cheer.json", "channel.cheer", "after", &now()),
    );
    // The same message redelivered on the new socket is dropped.
    fake.send(
        2,
        &notification("channel_follow_v2.json", "channel.follow", "during", &now()),
    );
    fake.send(
        2,
        &notification("channel_raid.json", "channel.raid", "last", &now()),
    );
    let kinds: Vec<String> = sse.events(2).await.into_iter().map(|f| f.event).collect();
    assert_eq!(
        kinds,
        ["cheer", "raid"],
        "the redelivered follow is dropped"
    );
    assert_eq!(
        fake.created().len(),
        SUBSCRIBED,
        "no new subscriptions after a reconnect"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_past_the_keepalive_starts_a_new_session_and_subscribes_again() {
    let fake = FakeTwitch::start().await;
    fake.state.lock().expect("state").keepalive = vec![1, 10];
    let server = start(&fake).await;
    fake.wait("subscriptions on S1", |f| {
        f.created().iter().filter(|c| c.2 == "S1").count() == SUBSCRIBED
    })
    .await;
    // S1 says nothing more: after 1 s (+ slack) the client gives up on it.
    fake.wait("a new session", |f| f.connections() >= 2).await;
    fake.wait("subscriptions on S2", |f| {
        f.created().iter().filter(|c| c.2 == "S2").count() == SUBSCRIBED
    })
    .await;
    let mut sse = server.sse("/o/feed/events", None).await;
    fake.send(
        2,
        &notification("channel_follow_v2.json", "channel.follow", "k-1", &now()),
    );
    assert_eq!(sse.next().await.event, "follow");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_overlays_of_a_channel_share_one_set_of_subscriptions_released_after_the_last() {
    let fake = FakeTwitch::start().await;
    let dir = logged_in();
    let overlays = [
        ("a", "kind = \"events\"\nchannel = \"guest\"\n"),
        ("b", "kind = \"alerts\"\nchannel = \"guest\"\n"),
        ("c", "kind = \"chat\"\nchannel = \"guest\"\n"),
    ];
    let server = Server::start_in(dir, &fake.config(), &overlays).await;
    fake.wait("the pinned channel's subscriptions", |f| {
        f.created().len() >= SUBSCRIBED
    })
    .await;
    let guest = |f: &FakeTwitch| {
        f.created()
            .iter()
            .filter(|(_, c, _)| {
                c["broadcaster_user_id"] == "95" || c["to_broadcaster_user_id"] == "95"
            })
            .count()
    };
    let streams = vec![
        server.sse("/o/a/events", None).await,
        server.sse("/o/b/events", None).await,
        server.sse("/o/c/events", None).await,
        server.sse("/o/a/events", None).await,
    ];
    // All but channel.subscription.gift, which the fake refuses for this channel.
    fake.wait("guest subscriptions", |f| guest(f) == SUBSCRIBED - 1)
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        guest(&fake),
        SUBSCRIBED - 1,
        "one set for four streams of three overlays"
    );
    let (_, detail) = server.source_state("twitch-eventsub").await;
    assert!(
        detail.contains("channel.subscription.gift needs channel:read:subscriptions"),
        "the missing scope is named: {detail}"
    );
    drop(streams);
    // Released one grace period (1 s here) after the last stream closed.
    fake.wait("guest subscriptions deleted", |f| {
        f.state
            .lock()
            .expect("state")
            .deleted
            .iter()
            .filter(|id| id.starts_with("sub-"))
            .count()
            == SUBSCRIBED - 1
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_public_url_subscriptions_use_webhooks() {
    let fake = FakeTwitch::start().await;
    let dir = logged_in();
    let config = fake.config().replace(
        "[twitch]\n",
        "[server]\npublic_url = \"https://overlays.example.test\"\n[twitch]\nclient_secret = \"shh\"\nwebhook_secret = \"0123456789abcdef\"\n",
    );
    let server = Server::start_in(dir, &config, &[]).await;
    fake.wait("webhook subscriptions", |f| f.created().len() >= SUBSCRIBED)
        .await;
    let transports = fake.state.lock().expect("state").transports.clone();
    assert!(
        transports.iter().all(|t| t["method"] == "webhook"
            && t["callback"] == "https://overlays.example.test/eventsub/callback"
            && t["secret"] == "0123456789abcdef"),
        "{transports:?}"
    );
    assert_eq!(fake.connections(), 0, "no WebSocket session with webhooks");
    server.stop().await;
}
