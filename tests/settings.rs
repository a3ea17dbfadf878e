//! Settings without editing files, over real sockets: the form's API writes `overlays/`
//! (keeping comments), creates, duplicates and deletes overlays that open pages follow, checks
//! field values with the words of `overlayd check`, takes `?field.` overrides, and refuses
//! uploads that are too large or not what they say. What the form shows is in
//! `tests/settings_pages.rs` (Chromium).

mod common;

use std::time::Duration;

use common::{Server, WAIT, eventually};
use serde_json::{Value, json};

/// A theme with one field of every type, and a template that prints two of them.
fn theme(dir: &std::path::Path) {
    let root = dir.join("themes/knobs");
    std::fs::create_dir_all(root.join("templates/chat")).expect("templates");
    std::fs::create_dir_all(root.join("static/images")).expect("images");
    std::fs::write(
        root.join("static/images/logo.png"),
        b"\x89PNG\r\n\x1a\nfake",
    )
    .expect("logo");
    std::fs::write(
        root.join("theme.toml"),
        include_str!("fixtures/theme_fields.toml"),
    )
    .expect("theme.toml");
    std::fs::write(
        root.join("templates/chat/chat.message.hbs"),
        "<div class=\"chat-line\"><b class=\"title\">{{fields.title}}</b> {{data.text}} <i class=\"size\">{{fields.size}}</i></div>",
    )
    .expect("template");
}

const CHAT: &str = "# my chat box\nkind = \"chat\"\nchannel = \"knobs\"  # the channel\ntheme = \"knobs\"\n\n[options]\nmax_messages = 12 # a short one\n\n[fields]\naccent = \"#00ff00\" # green\n";

async fn start() -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    theme(dir.path());
    Server::start_in(dir, "", &[("chat", CHAT)]).await
}

async fn send(server: &Server, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let r = common::client()
        .request(method, server.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn file(server: &Server, name: &str) -> String {
    std::fs::read_to_string(server.path().join("overlays").join(format!("{name}.toml")))
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_edits_the_file_keeping_its_comments_and_open_pages_follow() {
    let server = start().await;
    let (status, form) = server.get_json("/api/overlays/chat/form").await;
    assert_eq!(status, 200, "{form}");
    let accent = form["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .find(|f| f["name"] == "accent")
        .expect("accent");
    assert_eq!(
        (accent["value"].clone(), accent["type"].clone()),
        (json!("#00ff00"), json!("color"))
    );
    assert_eq!(form["assets"]["images"], json!(["images/logo.png"]));
    assert!(
        form["assets"]["sounds"]
            .as_array()
            .expect("sounds")
            .contains(&json!("sounds/alert.wav"))
    );

    let mut sse = server.sse("/o/chat/events", None).await;
    let (status, answer) = send(
        &server,
        reqwest::Method::PUT,
        "/api/overlays/chat",
        json!({"title": "Big chat", "options": {"max_messages": 20, "fade_after_s": 0},
               "fields": {"accent": "#FF0000", "size": 30}}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let text = file(&server, "chat");
    assert!(
        text.starts_with("# my chat box\nkind = \"chat\"\nchannel = \"knobs\"  # the channel\n"),
        "{text}"
    );
    assert!(text.contains("max_messages = 20 # a short one"), "{text}");
    assert!(text.contains("accent = \"#FF0000\" # green"), "{text}");
    assert!(
        !text.contains("fade_after_s"),
        "a default it did not have stays out: {text}"
    );
    // The open page is sent its new settings, as after a hand edit.
    let frame = loop {
        let f = sse.next().await;
        if f.event == "overlay" {
            break f;
        }
    };
    assert_eq!(frame.data["css"]["--field-accent"], "#ff0000");
    assert_eq!(frame.data["css"]["--field-size"], "30");
    assert_eq!(frame.data["options"]["max_messages"], 20);

    // A mistake is refused with the words `overlayd check` prints, beside its field.
    let (status, answer) = send(
        &server,
        reqwest::Method::PUT,
        "/api/overlays/chat",
        json!({"fields": {"size": 99}, "options": {"max_messages": "many"}}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let keys: Vec<&str> = answer["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["key"].as_str())
        .collect();
    assert_eq!(keys, ["options.max_messages"], "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("chat.toml:"),
        "{answer}"
    );
    let (_, answer) = send(
        &server,
        reqwest::Method::PUT,
        "/api/overlays/chat",
        json!({"fields": {"size": 99}}),
    )
    .await;
    assert_eq!(answer["errors"][0]["key"], "fields.size", "{answer}");
    assert!(
        answer["errors"][0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("at most 40"),
        "{answer}"
    );
    assert!(
        file(&server, "chat").contains("size = 30"),
        "nothing written on a mistake"
    );

    // The one access rule.
    let foreign = common::client()
        .put(server.url("/api/overlays/chat"))
        .header("origin", "https://evil.example")
        .body("{}")
        .send()
        .await
        .expect("put");
    assert_eq!(foreign.status(), 403);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_duplicate_and_delete_reach_the_files_and_the_pages() {
    let server = start().await;
    let (status, answer) = send(
        &server,
        reqwest::Method::POST,
        "/api/overlays",
        json!({"name": "side", "kind": "events", "channel": "knobs", "theme": "knobs"}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        file(&server, "side"),
        "kind = \"events\"\nchannel = \"knobs\"\ntheme = \"knobs\"\n"
    );
    let page = common::client()
        .get(server.url("/o/side"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    let (status, _) = send(
        &server,
        reqwest::Method::POST,
        "/api/overlays",
        json!({"name": "side", "kind": "chat"}),
    )
    .await;
    assert_eq!(status, 409, "a name is taken once");
    let (status, answer) = send(
        &server,
        reqwest::Method::POST,
        "/api/overlays",
        json!({"name": "../x", "kind": "chat"}),
    )
    .await;
    assert_eq!(status, 400, "{answer}");

    let (status, answer) = send(
        &server,
        reqwest::Method::POST,
        "/api/overlays/chat/duplicate",
        json!({"name": "chat2"}),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        file(&server, "chat2"),
        CHAT,
        "the copy is the file as it is, comments and all"
    );
    let (_, overlays) = server.get_json("/api/overlays").await;
    assert!(overlays.to_string().contains("\"chat2\""), "{overlays}");

    // Deleting ends the open page's stream, and keeps the file aside.
    let mut sse = server.sse("/o/chat2/events", None).await;
    let (status, answer) = send(
        &server,
        reqwest::Method::DELETE,
        "/api/overlays/chat2",
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(!server.path().join("overlays/chat2.toml").exists());
    assert!(server.path().join("overlays/chat2.toml.deleted").exists());
    server
        .post_event(json!({"channel": "knobs", "kind": "chat.message", "data": {"text": "hi"}}))
        .await;
    assert!(
        sse.ended_within(WAIT).await,
        "the deleted overlay's stream ends"
    );
    let page = common::client()
        .get(server.url("/o/chat2"))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_values_are_checked_with_file_and_line_and_urls_override_one_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    theme(dir.path());
    let bad = "kind = \"chat\"\nchannel = \"knobs\"\ntheme = \"knobs\"\n[fields]\naccent = \"red; x: y\"\nsize = 12\nghost = 1\n";
    let server = Server::start_in(dir, "", &[("bad", bad)]).await;
    let health = server.health().await;
    let errors = health["overlay_errors"].to_string();
    assert!(
        errors.contains("bad.toml:5: fields.accent") && errors.contains("is not a colour"),
        "{errors}"
    );
    assert!(errors.contains("bad.toml:7: fields.ghost"), "{errors}");
    // The page: the default meanwhile, the valid value used, the problem shown (file name only).
    let page = common::client()
        .get(server.url("/o/bad?field.size=33&field.align=top&field.font=Comic%20Neue"))
        .send()
        .await
        .expect("page");
    let html = page.text().await.expect("html");
    assert!(html.contains(r##""--field-accent":"#9146ff""##), "{html}");
    assert!(
        html.contains(r#""--field-size":"33""#),
        "the override: {html}"
    );
    assert!(
        html.contains(r#""--field-font":"\"Comic Neue\"""#),
        "{html}"
    );
    assert!(
        html.contains("?field.align") && html.contains("is not one of: left, center, right"),
        "{html}"
    );
    assert!(
        !html.contains(&server.path().display().to_string()),
        "no server path on the page"
    );
    // overlayd check says the same.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_overlayd"))
        .arg("--config")
        .arg(server.path().join("overlay.toml"))
        .arg("check")
        .output()
        .await
        .expect("check");
    let printed =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{printed}");
    assert!(printed.contains("bad.toml:5: fields.accent"), "{printed}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_bounded_and_must_be_what_they_say() {
    let server = start().await;
    // No kept-alive connections: a body refused half-way (413) closes its connection, and a
    // pooled client can pick that one for the next request before it sees it closed.
    let client = reqwest::Client::builder()
        .timeout(common::WAIT)
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let up = |name: &str, body: Vec<u8>| {
        client
            .post(server.url(&format!("/api/themes/knobs/files?name={name}")))
            .body(body)
            .send()
    };
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &[0u8; 64]].concat();
    let r = up("My Badge.PNG", png.clone()).await.expect("upload");
    assert_eq!(r.status(), 201);
    let j: Value = r.json().await.expect("json");
    assert_eq!(j["path"], "images/my-badge.png");
    assert!(
        server
            .path()
            .join("themes/knobs/static/images/my-badge.png")
            .exists()
    );
    let (_, form) = server.get_json("/api/overlays/chat/form").await;
    assert!(
        form["assets"]["images"]
            .as_array()
            .expect("images")
            .contains(&json!("images/my-badge.png"))
    );
    // Not what it says, not allowed at all, too large, through a path: refused.
    assert_eq!(up("x.ogg", png.clone()).await.expect("u").status(), 415);
    assert_eq!(
        up("x.svg", b"<svg onload=alert(1)>".to_vec())
            .await
            .expect("u")
            .status(),
        415
    );
    assert_eq!(
        up("big.png", vec![0x89; 5 * 1024 * 1024])
            .await
            .expect("u")
            .status(),
        413
    );
    let r = up("..%2F..%2Fescape.png", png).await.expect("u");
    assert_eq!(r.status(), 201);
    let j: Value = r.json().await.expect("json");
    assert_eq!(j["path"], "images/escape.png", "names lose their folders");
    let r = client
        .post(server.url("/api/themes/knobs/files?name=a.png"))
        .header("origin", "https://evil.example")
        .body(b"\x89PNG\r\n\x1a\n".to_vec())
        .send()
        .await
        .expect("u");
    assert_eq!(r.status(), 403);
    tokio::time::sleep(Duration::from_millis(10)).await;
    eventually("nothing outside the theme", WAIT, || async {
        (!server.path().join("themes/escape.png").exists()).then_some(())
    })
    .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_a_built_in_overlay_keeps_the_others_and_a_new_theme_drops_old_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    theme(dir.path());
    let server = Server::start_in(dir, "", &[]).await;
    let (status, answer) = send(
        &server,
        reqwest::Method::PUT,
        "/api/overlays/chat",
        json!({"fields": {"accent": "#123456"}}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    for name in ["chat", "alerts", "events", "stats", "goal"] {
        assert!(!file(&server, name).is_empty(), "{name}.toml written");
    }
    assert!(file(&server, "chat").contains("accent = \"#123456\""));
    assert!(
        file(&server, "alerts").contains("hold_off_air = false"),
        "{}",
        file(&server, "alerts")
    );
    let (_, list) = server.get_json("/api/overlays").await;
    for name in ["\"alerts\"", "\"events\"", "\"stats\"", "\"goal\""] {
        assert!(list.to_string().contains(name), "{list}");
    }
    // To a theme without `accent`: the value goes with the old theme.
    let (status, answer) = send(
        &server,
        reqwest::Method::PUT,
        "/api/overlays/chat",
        json!({"theme": "knobs", "fields": {}}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let text = file(&server, "chat");
    assert!(
        text.contains("accent = \"#123456\""),
        "knobs has an accent too: {text}"
    );
    let (status, answer) = send(
        &server,
        reqwest::Method::PUT,
        "/api/overlays/chat",
        json!({"theme": "neon", "fields": {}}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        !file(&server, "chat").contains("accent"),
        "{}",
        file(&server, "chat")
    );
    server.stop().await;
}
