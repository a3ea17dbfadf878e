//! Viewer pages and the EventSub webhook transport: verification with Twitch's signed examples
//! (re-signed with a fresh time), the challenge, replays; and in Chromium, a logged-out visit
//! that logs in through a stand-in of Twitch and then sees a webhook follow appear live.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::time::{Duration, Instant};

use common::Server;
use serde_json::{Value, json};
use warp::Filter;

const SECRET: &str = "secretabcd";

fn fixture(dir: &str, file: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/eventsub_webhook")
            .join(dir)
            .join(file),
    )
    .expect("fixture")
}

fn rfc3339(ms_ago: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    chrono::DateTime::from_timestamp_millis(now - ms_ago)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Posts a webhook request; `sign_with` may differ from what the server knows.
async fn post(
    server: &Server,
    kind: &str,
    id: &str,
    ts: &str,
    body: &[u8],
    sig: Option<String>,
    sign_with: &str,
) -> (u16, String, String) {
    let sig =
        sig.unwrap_or_else(|| overlayd::twitch::webhook::sign(sign_with.as_bytes(), id, ts, body));
    let r = common::client()
        .post(server.url("/eventsub/callback"))
        .header("Twitch-Eventsub-Message-Id", id)
        .header("Twitch-Eventsub-Message-Timestamp", ts)
        .header("Twitch-Eventsub-Message-Signature", sig)
        .header("Twitch-Eventsub-Message-Type", kind)
        .header("Twitch-Eventsub-Subscription-Type", "channel.follow")
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, ct, r.text().await.unwrap_or_default())
}

fn follow_body(channel: &str, user: &str) -> Vec<u8> {
    let mut body: Value =
        serde_json::from_slice(&fixture("notification_signed", "body.json")).expect("json");
    body["event"]["broadcaster_user_login"] = json!(channel);
    body["event"]["user_name"] = json!(user);
    body.to_string().into_bytes()
}

/// Twitch delivers webhooks only to a server with a public address.
const CONFIG: &str = "[server]\npublic_url = \"https://overlays.example.test\"\n[twitch]\nwebhook_secret = \"secretabcd\"\nchat = false\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_verified_answered_and_deduplicated() {
    let server = Server::start(
        CONFIG,
        &[("feed", "kind = \"events\"\nchannel = \"hooked\"\n")],
    )
    .await;
    // The challenge: Twitch's signed example body, answered with the raw challenge.
    let body = fixture("challenge_signed", "body.json");
    let now = rfc3339(0);
    let (status, ct, text) = post(
        &server,
        "webhook_callback_verification",
        "c-1",
        &now,
        &body,
        None,
        SECRET,
    )
    .await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/plain"), "{ct}");
    assert_eq!(
        text, "11535768-497e-14ec-8197-ba2cb5341a01",
        "byte for byte"
    );

    let mut sse = server.sse("/o/feed/events", None).await;
    let body = follow_body("hooked", "Hooky");
    let (status, _, _) = post(&server, "notification", "n-1", &now, &body, None, SECRET).await;
    assert_eq!(status, 204);
    let f = sse.next().await;
    assert_eq!(f.event, "follow");
    assert_eq!(f.data["data"]["user_name"], "Hooky");

    // Refused with 403: altered body, altered timestamp, stale timestamp, unknown secret.
    let good = overlayd::twitch::webhook::sign(SECRET.as_bytes(), "n-2", &now, &body);
    let mut altered = body.clone();
    altered[20] ^= 1;
    assert_eq!(
        post(
            &server,
            "notification",
            "n-2",
            &now,
            &altered,
            Some(good.clone()),
            SECRET
        )
        .await
        .0,
        403
    );
    assert_eq!(
        post(
            &server,
            "notification",
            "n-2",
            &rfc3339(1000),
            &body,
            Some(good),
            SECRET
        )
        .await
        .0,
        403
    );
    let stale = rfc3339(11 * 60 * 1000);
    assert_eq!(
        post(&server, "notification", "n-2", &stale, &body, None, SECRET)
            .await
            .0,
        403
    );
    assert_eq!(
        post(
            &server,
            "notification",
            "n-2",
            &now,
            &body,
            None,
            "another-secret"
        )
        .await
        .0,
        403
    );
    let r = common::client()
        .post(server.url("/eventsub/callback"))
        .body(body.clone())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 403, "no headers");

    // A repeated message id is acknowledged but not published twice.
    let body2 = follow_body("hooked", "Twice");
    assert_eq!(
        post(&server, "notification", "n-3", &now, &body2, None, SECRET)
            .await
            .0,
        204
    );
    assert_eq!(
        post(&server, "notification", "n-3", &now, &body2, None, SECRET)
            .await
            .0,
        204
    );
    assert_eq!(sse.next().await.data["data"]["user_name"], "Twice");
    assert!(
        sse.next_within(Duration::from_millis(500)).await.is_none(),
        "published once"
    );
    // ...nor after a restart: the log remembers the ids of the last ten minutes.
    drop(sse);
    let overlays = [("feed", "kind = \"events\"\nchannel = \"hooked\"\n")];
    let server = server.restart(CONFIG, &overlays).await;
    let mut sse = server.sse("/o/feed/events", None).await;
    assert_eq!(
        post(&server, "notification", "n-3", &now, &body2, None, SECRET)
            .await
            .0,
        204
    );
    assert!(
        sse.next_within(Duration::from_millis(500)).await.is_none(),
        "a redelivery after a restart is not shown again"
    );

    let revocation = fixture("revocation_example", "body.json");
    assert_eq!(
        post(
            &server,
            "revocation",
            "r-1",
            &now,
            &revocation,
            None,
            SECRET
        )
        .await
        .0,
        204
    );
    server.stop().await;
}

/// A stand-in for id.twitch.tv that approves every browser login at once (as if the viewer
/// clicked Authorize) and knows the viewer as `viewer1`.
async fn fake_id() -> std::net::SocketAddr {
    let authorize = warp::get()
        .and(warp::path!("oauth2" / "authorize"))
        .and(warp::query::<std::collections::HashMap<String, String>>())
        .map(|q: std::collections::HashMap<String, String>| {
            let to = format!("{}?code=abc&state={}", q["redirect_uri"], q["state"]);
            warp::redirect::found(warp::http::Uri::try_from(to).expect("uri"))
        });
    let token = warp::post().and(warp::path!("oauth2" / "token")).and(warp::body::form::<std::collections::HashMap<String, String>>()).map(|f: std::collections::HashMap<String, String>| {
        assert_eq!(f.get("client_secret").map(String::as_str), Some("shh"));
        warp::reply::json(&json!({"access_token": "viewer-token", "expires_in": 3600, "refresh_token": "r", "scope": [], "token_type": "bearer"}))
    });
    let validate = warp::get().and(warp::path!("oauth2" / "validate")).map(|| warp::reply::json(&json!({"client_id": "test-client", "login": "viewer1", "scopes": [], "user_id": "77", "expires_in": 3600})));
    let revoke = warp::post()
        .and(warp::path!("oauth2" / "revoke"))
        .map(warp::reply);
    // Helix knows every channel but one.
    let users = warp::get()
        .and(warp::path!("helix" / "users"))
        .and(warp::query::<std::collections::HashMap<String, String>>())
        .map(|q: std::collections::HashMap<String, String>| {
            let login = q.get("login").cloned().unwrap_or_default();
            let data = if login == "nosuchchannel" {
                json!([])
            } else {
                json!([{"id": "1", "login": login, "display_name": login}])
            };
            warp::reply::json(&json!({"data": data}))
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        warp::serve(authorize.or(token).or(validate).or(revoke).or(users))
            .incoming(listener)
            .run(),
    );
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_logs_in_opens_a_channel_and_sees_a_follow_live() {
    let id = fake_id().await;
    let config = format!(
        "[twitch]\nclient_id = \"test-client\"\nclient_secret = \"shh\"\nwebhook_secret = \"{SECRET}\"\nchat = false\n[twitch.endpoints]\nid = \"http://{id}/oauth2\"\nhelix = \"http://{id}/helix\"\neventsub_ws = \"ws://127.0.0.1:9/ws\"\n"
    );
    // The server itself is logged in, so it can tell whether a channel exists.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("data")).expect("data");
    let streamer = json!({"access_token": "server-token", "refresh_token": null, "expires_at_ms": null,
        "scopes": [], "login": "streamer", "user_id": "1"});
    std::fs::write(
        dir.path().join("data/twitch-token.json"),
        streamer.to_string(),
    )
    .expect("token");
    let server = Server::start_in(dir, &config, &[]).await;
    // Logged out: sent to log in, and back to the channel afterwards.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = plain
        .get(server.url("/c/somechan"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 302);
    assert_eq!(r.headers()["location"], "/c/login?next=/c/somechan");
    let r = plain
        .get(server.url("/c/somechan/events"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 401);

    // Something already happened on the channel before anyone watched. (Webhooks reach only
    // a server with a public address, which this login flow on localhost has not; they have
    // their own test above.)
    let follow = |channel: &str, user: &str| json!({"channel": channel, "kind": "follow", "data": {"user_name": user, "user_login": user.to_lowercase()}});
    assert_eq!(
        server.post_event(follow("somechan", "EarlyBird")).await.0,
        202
    );

    let browser = browser::Browser::launch().await;
    let tab = browser.open(&server.url("/c/somechan"), 1280, 800).await;
    tab.wait_for(
        "location.pathname === '/c/somechan' && document.documentElement.dataset.connected",
        Duration::from_secs(15),
    )
    .await;
    let player = tab.eval("document.getElementById('player').src").await;
    assert_eq!(
        player,
        json!(format!(
            "https://player.twitch.tv/?channel=somechan&parent=127.0.0.1&muted=true"
        ))
    );
    let chat = tab.eval("document.getElementById('chat').src").await;
    assert_eq!(
        chat,
        json!("https://www.twitch.tv/embed/somechan/chat?parent=127.0.0.1&darkpopout")
    );
    tab.wait_for(
        "document.getElementById('events').textContent.includes('EarlyBird followed')",
        Duration::from_secs(5),
    )
    .await;
    // The session cookie is HttpOnly: scripts cannot read it.
    assert_eq!(
        tab.eval("document.cookie.includes('overlayd_session')")
            .await,
        json!(false)
    );

    let sent = Instant::now();
    assert_eq!(
        server
            .post_event(follow("somechan", "LiveFollower"))
            .await
            .0,
        202
    );
    tab.wait_for(
        "document.getElementById('events').textContent.includes('LiveFollower followed')",
        Duration::from_secs(1),
    )
    .await;
    println!("event to screen: {:?}", sent.elapsed());

    // Another channel's events never show here.
    server.post_event(follow("elsewhere", "NotHere")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        tab.eval("document.getElementById('events').textContent.includes('NotHere')")
            .await,
        json!(false)
    );

    // The home page explains bad input.
    tab.navigate(&server.url("/c?channel=")).await;
    tab.wait_for(
        "document.querySelector('.message')?.textContent.includes('Type a channel name')",
        Duration::from_secs(5),
    )
    .await;
    tab.navigate(&server.url("/c?channel=bad%20name!")).await;
    tab.wait_for(
        "document.querySelector('.message')?.textContent.includes('cannot be a Twitch channel')",
        Duration::from_secs(5),
    )
    .await;
    tab.navigate(&server.url("/c?channel=nosuchchannel")).await;
    tab.wait_for(
        "document.querySelector('.message')?.textContent.includes('There is no Twitch channel')",
        Duration::from_secs(5),
    )
    .await;
    tab.navigate(&server.url("/c?channel=SomeChan")).await;
    tab.wait_for(
        "location.pathname === '/c/somechan'",
        Duration::from_secs(5),
    )
    .await;
    server.stop().await;
}
