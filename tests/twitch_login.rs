//! Twitch login against a loopback stand-in for id.twitch.tv: the device-code flow through
//! pending and slow_down to success (`overlayd login`), the token file, refresh, logout.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use warp::Filter;

#[derive(Default)]
struct Fake {
    polls: usize,
    revoked: Vec<String>,
    refreshed: usize,
}

async fn fake_id() -> (std::net::SocketAddr, Arc<Mutex<Fake>>) {
    let state: Arc<Mutex<Fake>> = Arc::default();
    let s = state.clone();
    let routes = warp::post()
        .and(warp::path::full())
        .and(warp::body::form::<std::collections::HashMap<String, String>>())
        .map(move |path: warp::path::FullPath, form: std::collections::HashMap<String, String>| {
            let mut st = s.lock().expect("state");
            let (status, body): (u16, Value) = match path.as_str() {
                "/oauth2/device" => {
                    assert_eq!(form.get("client_id").map(String::as_str), Some("test-client"));
                    assert!(form.get("scopes").is_some_and(|s| s.contains("moderator:read:followers")));
                    (200, json!({"device_code": "dev-123", "expires_in": 60, "interval": 1, "user_code": "ABCDEFGH", "verification_uri": "https://www.twitch.tv/activate?device-code=ABCDEFGH"}))
                }
                "/oauth2/token" if form.get("grant_type").map(String::as_str) == Some("urn:ietf:params:oauth:grant-type:device_code") => {
                    assert!(!form.contains_key("client_secret"), "a public client sends no secret");
                    st.polls += 1;
                    match st.polls {
                        1 => (400, json!({"status": 400, "message": "authorization_pending"})),
                        2 => (400, json!({"status": 400, "message": "slow_down"})),
                        _ => (200, json!({"access_token": "access-1", "expires_in": 14124, "refresh_token": "refresh-1", "scope": ["moderator:read:followers"], "token_type": "bearer"})),
                    }
                }
                "/oauth2/token" if form.get("grant_type").map(String::as_str) == Some("authorization_code") => {
                    assert_eq!(form.get("client_secret").map(String::as_str), Some("shh"));
                    if form.get("code").map(String::as_str) == Some("abc") {
                        (200, json!({"access_token": "access-3", "expires_in": 14124, "refresh_token": "refresh-3", "scope": ["bits:read"], "token_type": "bearer"}))
                    } else {
                        (400, json!({"status": 400, "message": "Invalid authorization code"}))
                    }
                }
                "/oauth2/token" => {
                    st.refreshed += 1;
                    assert_eq!(form.get("grant_type").map(String::as_str), Some("refresh_token"));
                    if form.get("refresh_token").map(String::as_str) == Some("refresh-1") {
                        (200, json!({"access_token": "access-2", "expires_in": 14124, "refresh_token": "refresh-2", "scope": ["moderator:read:followers"], "token_type": "bearer"}))
                    } else {
                        (400, json!({"status": 400, "message": "Invalid refresh token"}))
                    }
                }
                "/oauth2/revoke" => {
                    st.revoked.push(form.get("token").cloned().unwrap_or_default());
                    (200, json!({}))
                }
                _ => (404, json!({"status": 404, "message": "not found"})),
            };
            warp::reply::with_status(warp::reply::json(&body), warp::http::StatusCode::from_u16(status).expect("status"))
        });
    let validate = warp::get().and(warp::path!("oauth2" / "validate")).and(warp::header::<String>("authorization")).map(|auth: String| {
        if auth.starts_with("OAuth access-") {
            warp::reply::with_status(
                warp::reply::json(&json!({"client_id": "test-client", "login": "streamer", "scopes": ["moderator:read:followers"], "user_id": "141981764", "expires_in": 14000})),
                warp::http::StatusCode::OK,
            )
        } else {
            warp::reply::with_status(warp::reply::json(&json!({"status": 401, "message": "invalid access token"})), warp::http::StatusCode::UNAUTHORIZED)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(warp::serve(validate.or(routes)).incoming(listener).run());
    (addr, state)
}

fn config(dir: &std::path::Path, addr: std::net::SocketAddr) {
    std::fs::write(
        dir.join("overlay.toml"),
        format!("[twitch]\nclient_id = \"test-client\"\n[twitch.endpoints]\nid = \"http://{addr}/oauth2\"\n"),
    )
    .expect("config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_login_goes_through_pending_and_slow_down_to_a_private_token_file() {
    let (addr, state) = fake_id().await;
    let dir = tempfile::tempdir().expect("tempdir");
    config(dir.path(), addr);
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_overlayd"))
        .arg("--config")
        .arg(dir.path().join("overlay.toml"))
        .arg("login")
        .env("RUST_LOG", "off")
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), out)
        .await
        .expect("in time")
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("enter the code ABCDEFGH"), "{stdout}");
    assert!(stdout.contains("Logged in as streamer"), "{stdout}");
    assert_eq!(state.lock().expect("state").polls, 3);
    let path = dir.path().join("data/twitch-token.json");
    let token: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("token")).expect("json");
    assert_eq!(token["access_token"], "access-1");
    assert_eq!(token["refresh_token"], "refresh-1");
    assert_eq!(token["user_id"], "141981764");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
    }

    // Refresh keeps the new refresh token; an old one is refused with Twitch's message.
    let oauth =
        overlayd::twitch::oauth::OAuth::new(&format!("http://{addr}/oauth2"), "test-client", None);
    let store = overlayd::twitch::oauth::Store::new(&dir.path().join("data"));
    let old = store.load().expect("load").expect("token");
    let fresh = oauth.refresh(&old).await.expect("refresh");
    assert_eq!(fresh.access_token, "access-2");
    assert_eq!(fresh.refresh_token.as_deref(), Some("refresh-2"));
    assert_eq!(fresh.login.as_deref(), Some("streamer"));
    let err = oauth
        .refresh(&fresh)
        .await
        .expect_err("refresh-2 is unknown to the fake");
    assert!(err.to_string().contains("Invalid refresh token"), "{err}");
    let err = oauth.validate("nonsense").await.expect_err("invalid");
    assert!(err.to_string().contains("invalid access token"), "{err}");

    // Logout revokes and deletes.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_overlayd"))
        .arg("--config")
        .arg(dir.path().join("overlay.toml"))
        .arg("logout")
        .env("RUST_LOG", "off")
        .output()
        .expect("logout");
    assert!(out.status.success());
    assert!(!path.exists());
    assert_eq!(state.lock().expect("state").revoked, ["access-1"]);
}

#[test]
fn login_without_a_client_id_says_how_to_get_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("overlay.toml"), "").expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_overlayd"))
        .arg("--config")
        .arg(dir.path().join("overlay.toml"))
        .arg("login")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("client_id") && err.contains("dev.twitch.tv/console/apps"),
        "{err}"
    );
}

mod common;

async fn server_with(
    addr: std::net::SocketAddr,
    secret: bool,
    token: Option<Value>,
) -> common::Server {
    let dir = tempfile::tempdir().expect("tempdir");
    if let Some(t) = token {
        std::fs::create_dir_all(dir.path().join("data")).expect("data");
        std::fs::write(dir.path().join("data/twitch-token.json"), t.to_string()).expect("token");
    }
    let secret = if secret {
        "client_secret = \"shh\"\n"
    } else {
        ""
    };
    // Helix and EventSub point at a closed port: these tests are about the login alone.
    let config = format!(
        "[twitch]\nclient_id = \"test-client\"\n{secret}chat = false\n[twitch.endpoints]\nid = \"http://{addr}/oauth2\"\nhelix = \"http://127.0.0.1:9/helix\"\neventsub_ws = \"ws://127.0.0.1:9/ws\"\n"
    );
    common::Server::start_in(dir, &config, &[]).await
}

async fn wait_status(server: &common::Server, check: impl Fn(&Value) -> bool) -> Value {
    common::eventually("the login status", common::WAIT, || async {
        let (_, s) = server.get_json("/auth/status").await;
        check(&s).then_some(s)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_logs_in_with_a_device_code() {
    let (addr, _) = fake_id().await;
    let server = server_with(addr, false, None).await;
    let (_, s) = server.get_json("/auth/status").await;
    assert_eq!(s["logged_in"], false);
    let r = common::client()
        .post(server.url("/auth/device"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 202);
    let shown: Value = r.json().await.expect("json");
    assert_eq!(shown["user_code"], "ABCDEFGH");
    let s = wait_status(&server, |s| s["logged_in"] == true).await;
    assert_eq!(s["login"], "streamer");
    assert!(server.path().join("data/twitch-token.json").exists());
    let r = common::client()
        .post(server.url("/auth/logout"))
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 200);
    assert!(!server.path().join("data/twitch-token.json").exists());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_login_checks_the_state() {
    let (addr, _) = fake_id().await;
    let server = server_with(addr, true, None).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = no_redirects
        .get(server.url("/auth/login"))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let url = reqwest::Url::parse(&location).expect("url");
    assert_eq!(url.path(), "/oauth2/authorize");
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "test-client");
    assert_eq!(
        q["redirect_uri"],
        format!("http://{}/auth/callback", server.addr)
    );
    assert!(q["scope"].contains("bits:read"));
    let state = q["state"].clone();
    let r = no_redirects
        .get(server.url("/auth/callback?code=abc&state=forged"))
        .send()
        .await
        .expect("cb");
    assert_eq!(r.status(), 403, "a forged state is refused");
    let r = no_redirects
        .get(server.url(&format!("/auth/callback?code=abc&state={state}")))
        .send()
        .await
        .expect("cb");
    assert_eq!(r.status(), 302);
    let s = wait_status(&server, |s| s["logged_in"] == true).await;
    assert_eq!(s["login"], "streamer");
    let r = no_redirects
        .get(server.url(&format!("/auth/callback?code=abc&state={state}")))
        .send()
        .await
        .expect("cb");
    assert_eq!(r.status(), 403, "a state works once");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_near_expiry_is_refreshed_and_the_new_refresh_token_saved() {
    let (addr, state) = fake_id().await;
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
        + 60_000;
    let token = json!({"access_token": "access-1", "refresh_token": "refresh-1", "expires_at_ms": soon, "scopes": [], "login": "streamer", "user_id": "141981764"});
    let server = server_with(addr, false, Some(token)).await;
    wait_status(&server, |s| s["state"]["state"] == "ok").await;
    assert_eq!(state.lock().expect("state").refreshed, 1);
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(server.path().join("data/twitch-token.json")).expect("token"),
    )
    .expect("json");
    assert_eq!(saved["access_token"], "access-2");
    assert_eq!(saved["refresh_token"], "refresh-2");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helix_waits_for_the_rate_limit_reset_on_429() {
    let calls = Arc::new(Mutex::new(0usize));
    let c = calls.clone();
    let users = warp::path!("helix" / "users").map(move || {
        let mut n = c.lock().expect("calls");
        *n += 1;
        let reset = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            + 1;
        if *n == 1 {
            warp::http::Response::builder()
                .status(429)
                .header("ratelimit-limit", "800")
                .header("ratelimit-remaining", "0")
                .header("ratelimit-reset", reset.to_string())
                .body(
                    json!({"error": "Too Many Requests", "status": 429, "message": ""}).to_string(),
                )
                .expect("response")
        } else {
            warp::http::Response::builder()
                .status(200)
                .body(
                    json!({"data": [{"id": "1", "login": "streamer", "display_name": "Streamer"}]})
                        .to_string(),
                )
                .expect("response")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(warp::serve(users).incoming(listener).run());
    let helix = overlayd::twitch::helix::Helix::new(&format!("http://{addr}/helix"), "test-client");
    let started = std::time::Instant::now();
    let user = helix
        .user("token", "streamer")
        .await
        .expect("answered after the reset");
    assert_eq!(user.map(|u| u.id).as_deref(), Some("1"));
    assert_eq!(*calls.lock().expect("calls"), 2, "retried once");
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(500),
        "waited for the reset"
    );
}
