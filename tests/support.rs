//! Every platform's support as alerts, from recorded payloads served by the loopback fakes:
//! YouTube's Super Chat and Super Sticker (chat line and tip), a new member and a batch of
//! gifted memberships (one alert), Kick's sub and Kicks; each reaches an alert overlay once and
//! a money goal counts the tips.

mod common;
#[path = "common/fake_platforms.rs"]
mod fake_platforms;

use common::{Server, Sse, WAIT, overlay};
use fake_platforms::{Answer, FakeKick, FakeYoutube, KickMode, fixture, recorded, with_actions};
use serde_json::{Value, json};

/// Event frames on `sse` until `done` says so (bounded by [`WAIT`]).
async fn frames_until(sse: &mut Sse, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut out = Vec::new();
    while !done(&out) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Some(f) = sse.next_within(left).await else {
            panic!("only these arrived: {out:?}");
        };
        if f.id.is_some() {
            out.push(f.data);
        }
    }
    out
}

fn count(frames: &[Value], kind: &str) -> usize {
    frames.iter().filter(|f| f["kind"] == kind).count()
}

/// A recorded renderer body as the `addChatItemAction` it arrives in.
fn action(renderer: &str, body: Value) -> Value {
    json!({"addChatItemAction": {"item": {renderer: body}}})
}

/// A gift redemption in the shape of toshiki670/yt-tool's renderer struct (no recorded one
/// exists; see tests/fixtures/youtube/SOURCES.md).
fn redemption(n: usize) -> Value {
    action(
        "liveChatSponsorshipsGiftRedemptionAnnouncementRenderer",
        json!({
            "id": format!("redeem-{n}"), "timestampUsec": "1685722977000000",
            "authorExternalChannelId": format!("UCrecipient{n}"),
            "authorName": {"simpleText": format!("@recipient{n}")},
            "message": {"runs": [{"text": "received a gift membership by "}, {"text": "@Yulia"}]},
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn youtube_support_alerts_once_each_and_a_gift_batch_once() {
    let yt = FakeYoutube::start().await;
    let pace = 100;
    let member: Value = serde_json::from_str(&fixture(
        "youtube",
        "renderer_2026.membership_new_member.json",
    ))
    .expect("json");
    let purchase: Value =
        serde_json::from_str(&fixture("youtube", "renderer_2023.gift_purchase.json"))
            .expect("json");
    let mut batch = vec![action(
        "liveChatSponsorshipsGiftPurchaseAnnouncementRenderer",
        purchase,
    )];
    batch.extend((0..5).map(redemption));
    for answer in [
        Answer::Json(recorded("get_live_chat.super_chat.json", "yt-sc", pace)),
        Answer::Json(recorded("get_live_chat.super_sticker.json", "yt-st", pace)),
        Answer::Json(with_actions(
            vec![action("liveChatMembershipItemRenderer", member)],
            3,
            pace,
        )),
        Answer::Json(with_actions(batch, 4, pace)),
        Answer::Json(recorded("get_live_chat.no_chat.json", "-", pace)),
    ] {
        yt.push(answer);
    }
    let config = format!(
        "[youtube]\nbase_url = \"{}\"\nmin_poll_ms = 50\nmax_poll_ms = 500\nlive_check_s = 1\n[[youtube.channels]]\nchannel = \"multi\"\ntarget = \"@fixture\"\n",
        yt.base()
    );
    let goal = "kind = \"goal\"\nchannel = \"multi\"\n[options]\ngoal = \"money\"\ntarget = 50\nlabel = \"Tips\"\n";
    let chat = overlay("chat", "multi");
    let alerts = overlay("alerts", "multi");
    let server = Server::start(
        &config,
        &[("alerts", &alerts), ("chat", &chat), ("tips", goal)],
    )
    .await;
    // The first stream starts the source: the others replay from the start of the log so they
    // miss nothing published before they opened.
    let mut alert_stream = server.sse("/o/alerts/events", Some(0)).await;
    let mut chat_stream = server.sse("/o/chat/events", Some(0)).await;
    let mut goal_stream = server.sse("/o/tips/events", Some(0)).await;
    let shown = frames_until(&mut alert_stream, |f| count(f, "giftbomb") == 1).await;
    // Two tips (the Super Chat, the Super Sticker), the new member, one alert for five gifts.
    let kinds: Vec<&str> = shown.iter().filter_map(|f| f["kind"].as_str()).collect();
    assert_eq!(kinds, ["tip", "tip", "sub", "giftbomb"], "{shown:?}");
    let sc = &shown[0]["data"];
    assert_eq!(
        (
            sc["type"].clone(),
            sc["formatted"].clone(),
            sc["currency"].clone()
        ),
        (json!("superchat"), json!("￥1,000"), json!("JPY"))
    );
    assert_eq!(sc["value"], json!(1000.0 * 0.0067));
    assert_eq!(shown[1]["data"]["type"], "supersticker");
    assert!(
        shown[1]["data"]["sticker"]["url"]
            .as_str()
            .unwrap_or_default()
            .starts_with("https://")
    );
    assert!(
        shown[0]["html"]
            .as_str()
            .unwrap_or_default()
            .contains("Super Chat"),
        "{}",
        shown[0]["html"]
    );
    assert_eq!(shown[3]["data"]["total"], 5);
    // The chat lines stay as they are: the paid ones with their amounts.
    let lines = frames_until(&mut chat_stream, |f| {
        f.iter()
            .filter(|l| !l["data"]["monetary"].is_null())
            .count()
            == 2
    })
    .await;
    assert_eq!(count(&lines, "tip"), 0, "a chat overlay shows no tips");
    // The goal counts both tips: ￥1,000 + ￥90 ≈ $6.70 + $0.60.
    let goal = frames_until(&mut goal_stream, |f| {
        f.last()
            .is_some_and(|g| g["html"].as_str().unwrap_or_default().contains("$7.30"))
    })
    .await;
    assert!(goal.iter().all(|g| g["kind"] != "chat.message"));
    // The log has the five gifts, each tied to the purchase: none alerted on its own.
    let (_, log) = server.get_json("/api/channels/multi/events?limit=50").await;
    let gifts: Vec<&Value> = log["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "subgift")
        .collect();
    assert_eq!(gifts.len(), 5);
    assert!(
        gifts
            .iter()
            .all(|g| g["data"]["giftbomb_id"] == "ChwKGkNPcWdfcXZfcFA4Q0ZhVEF3Z1FkU3VnQVZR")
    );
    let (_, stats) = server.get_json("/api/channels/multi/stats").await;
    assert_eq!(stats["support"]["youtube"], 4, "{stats}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kick_subs_and_kicks_alert_once_each() {
    let kick = FakeKick::start(KickMode::Pusher).await;
    let config = format!(
        "[twitch]\npart_grace_s = 0\n{}[[kick.channels]]\nchannel = \"multi\"\nslug = \"fixture\"\nchannel_id = 11\nchatroom_id = 22\n",
        kick.config("pusher")
    );
    let alerts = overlay("alerts", "multi");
    let server = Server::start(&config, &[("alerts", &alerts)]).await;
    let mut sse = server.sse("/o/alerts/events", None).await;
    kick.wait_subscribed("pusher:subscribe").await;
    for f in ["pusher.subscription.json", "pusher.kicks_gifted.json"] {
        kick.send(fixture("kick", f).trim_end());
    }
    let shown = frames_until(&mut sse, |f| count(f, "tip") == 1).await;
    let kinds: Vec<&str> = shown.iter().filter_map(|f| f["kind"].as_str()).collect();
    assert_eq!(kinds, ["resub", "tip"], "{shown:?}");
    let tip = &shown[1]["data"];
    assert_eq!(
        (
            tip["type"].clone(),
            tip["formatted"].clone(),
            tip["value"].clone()
        ),
        (json!("kicks"), json!("500 Kicks"), json!(5.0))
    );
    assert_eq!(shown[1]["platform"], "kick");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_cheer_of_the_session_plays_its_variation_with_its_sound_and_length() {
    let alerts = "kind = \"alerts\"\nchannel = \"big\"\n[options]\nduration_s = 0.3\ngap_s = 0.05\nhold_off_air = false\n\n[[options.variations]]\nkind = \"cheer\"\nlargest = true\ntemplate = \"cheer-big\"\nsound = \"sounds/alert.wav\"\nvolume = 0.3\nduration_s = 0.5\ntext_delay_s = 0.2\n";
    let server = Server::start("", &[("alerts", alerts)]).await;
    let mut sse = server.sse("/o/alerts/events", None).await;
    let mut ids = Vec::new();
    for bits in [100, 500, 300, 800] {
        let (status, e) = server
            .post_event(json!({"channel": "big", "kind": "cheer", "data": {"user_name": format!("c{bits}"), "bits": bits}}))
            .await;
        assert_eq!(status, 202, "{e}");
        ids.push(e["id"].as_u64().expect("id"));
    }
    // Each alert as it starts playing, from the overlay's state frames.
    let mut played: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while played.len() < ids.len() {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let f = sse.next_within(left).await.expect("alert states");
        let p = &f.data["playing"];
        if f.event == "alerts"
            && p.is_object()
            && played.last().is_none_or(|l| l["play"] != p["play"])
        {
            played.push(p.clone());
        }
    }
    let got: Vec<u64> = played.iter().filter_map(|p| p["id"].as_u64()).collect();
    assert_eq!(got, ids);
    let big = |p: &Value| p["html"].as_str().unwrap_or_default().contains("alert-big");
    // 100 is the first cheer (the largest so far), 500 beats it, 300 does not, 800 does.
    assert_eq!(
        played.iter().map(big).collect::<Vec<_>>(),
        [true, true, false, true]
    );
    assert_eq!(played[0]["duration_ms"], 500);
    assert_eq!(played[2]["duration_ms"], 300);
    assert_eq!(
        played[0]["sound_url"],
        "/themes/default/static/sounds/alert.wav"
    );
    assert_eq!(played[0]["volume"], 0.3);
    assert_eq!(played[0]["text_delay_ms"], 200);
    assert!(played[2]["sound_url"].is_null());
    server.stop().await;
}
