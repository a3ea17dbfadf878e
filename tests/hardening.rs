//! Classes of attack and fault from an outside attack run, each as it would arrive: a stream
//! client that keeps sending, a rebinding page's `Host`, an id past 2^63, theme files that are
//! links out of the theme or not regular files, and a link cycle under `templates/`.

mod common;

use std::time::Duration;

use common::{Server, WAIT, overlay};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_client_that_keeps_sending_is_dropped_and_freezes_nothing() {
    let server = Server::start("", &[("feed", &overlay("events", "hard"))]).await;
    let mut floods = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("connect");
        s.write_all(b"GET /o/feed/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .expect("head");
        floods.push(s);
    }
    let junk = vec![b'x'; 16 * 1024];
    for s in &mut floods {
        // The server reads and ignores a little, then closes: writing more then fails or the
        // read side ends.
        let mut closed = false;
        for _ in 0..200 {
            if s.write_all(&junk).await.is_err() {
                closed = true;
                break;
            }
            let mut buf = [0u8; 4096];
            match tokio::time::timeout(Duration::from_millis(5), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed = true;
                    break;
                }
                _ => {}
            }
        }
        assert!(closed, "a client that kept sending was kept");
    }
    // Everyone else is served at once meanwhile.
    let started = std::time::Instant::now();
    assert_eq!(server.health().await["status"], "ok");
    assert!(started.elapsed() < Duration::from_secs(2));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_only_resolves_here_can_neither_change_nor_read_private_data() {
    let server = Server::start("", &[("feed", &overlay("events", "hard"))]).await;
    let client = common::client();
    let evil = "evil.example:7878";
    let post = client
        .post(server.url("/api/events"))
        .header("host", evil)
        .header("origin", format!("http://{evil}"))
        .body(json!({"channel": "hard", "kind": "follow"}).to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(post.status(), 403);
    let text = post.text().await.expect("body");
    assert!(text.contains("[server] hosts"), "{text}");
    for path in ["/", "/api/channels/hard/events"] {
        let r = client
            .get(server.url(path))
            .header("host", evil)
            .send()
            .await
            .expect("get");
        assert_eq!(r.status(), 403, "{path}");
    }
    // The overlay itself stays readable by any name (OBS on another machine).
    let r = client
        .get(server.url("/o/feed"))
        .header("host", evil)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    // By our own names, everything works.
    let (status, _) = server
        .post_event(json!({"channel": "hard", "kind": "follow"}))
        .await;
    assert_eq!(status, 202);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_past_two_to_the_63_replays_nothing() {
    // The default store: SQLite, whose ids are signed.
    let server = Server::start("", &[("feed", &overlay("events", "hard"))]).await;
    for seq in 1..=2 {
        server
            .post_event(json!({"channel": "hard", "kind": "follow", "data": {"seq": seq}}))
            .await;
    }
    for since in ["9223372036854775808", "18446744073709551615"] {
        let mut sse = server
            .sse(&format!("/o/feed/events?since={since}"), None)
            .await;
        assert!(
            sse.next_within(Duration::from_millis(300))
                .await
                .is_none_or(|f| f.id.is_none()),
            "since={since} replayed history"
        );
        // ...and live events still come.
        server
            .post_event(json!({"channel": "hard", "kind": "follow", "data": {"seq": "live"}}))
            .await;
        let live = sse.events(1).await;
        assert_eq!(live[0].data["data"]["seq"], "live", "since={since}");
    }
    server.stop().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn theme_files_are_regular_files_inside_the_theme_after_links() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "do not serve").expect("secret");
    let theme = dir.path().join("themes/linky");
    std::fs::create_dir_all(theme.join("static")).expect("static");
    std::fs::create_dir_all(theme.join("templates")).expect("templates");
    std::fs::write(theme.join("static/ok.css"), "body{}").expect("css");
    std::os::unix::fs::symlink(&secret, theme.join("static/leak.txt")).expect("link");
    std::os::unix::fs::symlink(theme.join("static/ok.css"), theme.join("static/alias.css"))
        .expect("link");
    // A link back up: a walk that follows it never ends.
    std::os::unix::fs::symlink(&theme, theme.join("templates/loop")).expect("loop");
    let made = std::process::Command::new("mkfifo")
        .arg(theme.join("static/pipe.css"))
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let started = std::time::Instant::now();
    let server = Server::start_in(dir, "", &[]).await;
    assert!(started.elapsed() < WAIT, "the link cycle hung the start");
    let get = |path: &'static str| {
        let url = server.url(path);
        async move {
            tokio::time::timeout(WAIT, common::client().get(url).send())
                .await
                .expect("answered in time (a FIFO must not block)")
                .expect("get")
                .status()
                .as_u16()
        }
    };
    assert_eq!(get("/themes/linky/static/ok.css").await, 200);
    assert_eq!(
        get("/themes/linky/static/alias.css").await,
        200,
        "a link inside"
    );
    assert_eq!(
        get("/themes/linky/static/leak.txt").await,
        404,
        "a link out"
    );
    assert_eq!(get("/themes/linky/static/pipe.css").await, 404, "a FIFO");
    assert_eq!(server.health().await["status"], "ok");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partials_that_include_each_other_are_a_theme_error_not_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chat = dir.path().join("themes/loopy/templates/chat");
    std::fs::create_dir_all(&chat).expect("templates");
    std::fs::write(chat.join("chat.message.hbs"), "{{> chat/row}}").expect("a");
    std::fs::write(chat.join("row.hbs"), "<p>{{> chat/chat.message}}</p>").expect("b");
    let server = Server::start_in(
        dir,
        "",
        &[(
            "chat",
            "kind = \"chat\"\nchannel = \"hard\"\ntheme = \"default\"\n",
        )],
    )
    .await;
    let health = server.health().await;
    let errors = health["theme_errors"].to_string();
    assert!(
        errors.contains("loop") && errors.contains("chat/row"),
        "{errors}"
    );
    // The server lives on and serves its overlays.
    let (status, _) = server.get_json("/api/overlays").await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_head_limit_on_every_path_and_every_request_of_a_connection() {
    let server = Server::start("", &[]).await;
    // A head that grows past the limit without end is answered and closed at once.
    let mut big = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let mut head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec();
    for i in 0..1000 {
        head.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "a".repeat(20)).as_bytes());
    }
    let _ = big.write_all(&head).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(WAIT, big.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "an endless head was held");
    // After one complete request, a half-sent second one is closed by the head timeout.
    let mut slow = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    slow.write_all(
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /health HTTP/1.1\r\nX-Slow: ",
    )
    .await
    .expect("write");
    let mut all = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), slow.read_to_end(&mut all)).await;
    assert!(
        read.is_ok(),
        "a keep-alive connection held an unfinished head past the timeout"
    );
    assert!(
        String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200"),
        "the first request was answered"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_that_explodes_is_cut_short_and_shown_as_a_theme_error() {
    let server = Server::with_chat_template(
        "heavy",
        "hard",
        "{{#each data.elements}}{{#each @root.data.elements}}{{#each @root.data.elements}}{{@root.data.text}}{{/each}}{{/each}}{{/each}}",
    )
    .await;
    let mut sse = server.sse("/o/chat/events", None).await;
    // 100³ copies of a 1 KB text would be a gigabyte per client.
    let text = "x".repeat(1000);
    let elements: Vec<serde_json::Value> = (0..100)
        .map(|_| json!({"type": "text", "value": "x"}))
        .collect();
    let started = std::time::Instant::now();
    server
        .post_event(json!({"channel": "hard", "kind": "chat.message",
                           "data": {"text": text, "elements": elements}}))
        .await;
    let frame = sse.events(1).await.remove(0);
    let html = frame.data["html"].as_str().expect("html");
    // The line is the event's summary, plain; the error goes to the overlay's error box and
    // to /health.
    assert!(
        html.starts_with("<div class=\"item-fallback") && html.contains("TestUser: xxx"),
        "{}",
        &html[..html.len().min(300)]
    );
    assert!(
        html.len() < 4096,
        "the fragment is the fallback, not the output"
    );
    let told = loop {
        let f = sse.next().await;
        if f.event == "theme-error" {
            break f;
        }
    };
    assert!(
        told.data["error"]
            .as_str()
            .unwrap_or_default()
            .contains("renders more than"),
        "{:?}",
        told.data
    );
    let health = server.health().await;
    assert!(
        health["render_errors"]
            .to_string()
            .contains("renders more than"),
        "{health}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.health().await["status"], "ok");
    server.stop().await;
}

/// A template that takes seconds (loops that print nothing, so no size bound stops them) on
/// four overlays at once, with one runtime thread: the server keeps answering meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_slow_render_delays_its_frames_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chat = dir.path().join("themes/slow/templates/chat");
    std::fs::create_dir_all(&chat).expect("templates");
    std::fs::write(
        chat.join("chat.message.hbs"),
        "{{#each data.elements}}{{#each @root.data.elements}}{{#each @root.data.elements}}{{/each}}{{/each}}{{/each}}done",
    )
    .expect("template");
    let file = "kind = \"chat\"\nchannel = \"hard\"\ntheme = \"slow\"\n";
    let names = ["s1", "s2", "s3", "s4"];
    let overlays: Vec<(&str, &str)> = names.iter().map(|n| (*n, file)).collect();
    let server = Server::start_in(dir, "", &overlays).await;
    let mut streams = Vec::new();
    for name in names {
        streams.push(server.sse(&format!("/o/{name}/events"), None).await);
    }
    let elements: Vec<serde_json::Value> = (0..N)
        .map(|_| json!({"type": "text", "value": "x"}))
        .collect();
    const N: usize = 160;
    // Asked from a thread of its own: the server runs on this test's runtime, so a check from
    // a task here would not even start while the runtime's threads were stuck.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = std::thread::spawn({
        let (done, addr) = (done.clone(), server.addr);
        move || {
            let mut times = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) && times.len() < 400 {
                let t = std::time::Instant::now();
                times.push((t, blocking_get(addr, "/health")));
                std::thread::sleep(Duration::from_millis(25));
            }
            times
        }
    });
    let started = std::time::Instant::now();
    server
        .post_event(json!({"channel": "hard", "kind": "chat.message",
                           "data": {"text": "slow", "elements": elements}}))
        .await;
    let readers: Vec<_> = streams
        .into_iter()
        .map(|mut sse| tokio::spawn(async move { sse.events(1).await.remove(0) }))
        .collect();
    while readers.iter().any(|r| !r.is_finished()) && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rendered = started.elapsed();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let times = checker.join().expect("checker");
    // Only the checks that began while the frames were still being rendered count.
    let during: Vec<Duration> = times
        .iter()
        .filter(|(t, _)| *t < started + rendered)
        .map(|(_, took)| *took)
        .collect();
    let asked = during.len();
    let slowest = during.iter().copied().max().unwrap_or_default();
    for reader in readers {
        let frame = reader.await.expect("reader");
        assert!(
            frame.data["html"]
                .as_str()
                .unwrap_or_default()
                .contains("done")
        );
    }
    println!("render {rendered:?}, {asked} health checks meanwhile, slowest {slowest:?}");
    assert!(
        slowest < Duration::from_millis(300) && asked >= 5,
        "/health took up to {slowest:?} ({asked} checks) while frames rendered for {rendered:?}"
    );
    assert!(
        rendered > Duration::from_millis(600),
        "the render ({rendered:?}) is too quick to show anything: raise N"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn theme_files_are_streamed_and_answer_ranges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stat = dir.path().join("themes/media/static");
    std::fs::create_dir_all(&stat).expect("static");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(stat.join("clip.webm"), &data).expect("clip");
    let server = Server::start_in(dir, "", &[]).await;
    let get = |range: Option<&'static str>| {
        let url = server.url("/themes/media/static/clip.webm");
        async move {
            let mut req = common::client().get(url);
            if let Some(r) = range {
                req = req.header("range", r);
            }
            let r = req.send().await.expect("get");
            let status = r.status().as_u16();
            let content_range = r
                .headers()
                .get("content-range")
                .map(|v| v.to_str().unwrap_or_default().to_string());
            let accept = r.headers().get("accept-ranges").is_some();
            (
                status,
                content_range,
                accept,
                r.bytes().await.expect("body").to_vec(),
            )
        }
    };
    let (status, _, accept, body) = get(None).await;
    assert_eq!((status, accept), (200, true));
    assert_eq!(body, data);
    let (status, cr, _, body) = get(Some("bytes=1000-1999")).await;
    assert_eq!(status, 206);
    assert_eq!(cr.as_deref(), Some("bytes 1000-1999/200000"));
    assert_eq!(body, data[1000..2000]);
    let (status, _, _, body) = get(Some("bytes=-10")).await;
    assert_eq!((status, body), (206, data[199_990..].to_vec()));
    let (status, cr, _, _) = get(Some("bytes=300000-")).await;
    assert_eq!((status, cr.as_deref()), (416, Some("bytes */200000")));
    server.stop().await;
}

/// An event stream read off a raw socket, as a browser's EventSource would: the `retry:` the
/// server asked for, and the ids and `seq`s of the events, until `want` of them or the end.
async fn raw_stream(
    addr: std::net::SocketAddr,
    last: Option<u64>,
    want: usize,
    ready: Option<tokio::sync::mpsc::Sender<()>>,
) -> (Option<u64>, Vec<(u64, u64)>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let resume = last.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
    s.write_all(
        format!("GET /o/feed/events HTTP/1.1\r\nHost: 127.0.0.1\r\n{resume}\r\n").as_bytes(),
    )
    .await
    .expect("head");
    let (mut text, mut retry, mut events) = (String::new(), None, Vec::new());
    let mut told = ready;
    let deadline = tokio::time::Instant::now() + WAIT;
    while events.len() < want {
        let mut b = [0u8; 8192];
        let n = match tokio::time::timeout_at(deadline, s.read(&mut b)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => break,
        };
        text.push_str(&String::from_utf8_lossy(&b[..n]));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            if let Some(r) = block.lines().find_map(|l| l.strip_prefix("retry: ")) {
                retry = r.trim().parse().ok();
            }
            if block.contains(": ok")
                && let Some(t) = told.take()
            {
                let _ = t.send(()).await;
            }
            let id = block.lines().find_map(|l| l.strip_prefix("id: "));
            let data = block.lines().find_map(|l| l.strip_prefix("data: "));
            if let (Some(id), Some(data)) = (id, data) {
                let v: serde_json::Value = serde_json::from_str(data).expect("json");
                events.push((
                    id.trim().parse().expect("id"),
                    v["data"]["seq"].as_u64().expect("seq"),
                ));
            }
        }
    }
    if events.len() == want && last.is_none() {
        // Read on to the end of the stream (the shutdown).
        let mut b = [0u8; 1024];
        while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, s.read(&mut b)).await {
            if n == 0 {
                break;
            }
        }
    }
    (retry, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_under_500_open_streams_loses_nothing_and_they_come_back_spread_out() {
    const STREAMS: usize = 500;
    let files = [("feed", overlay("events", "many"))];
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let server = Server::start("", &refs).await;
    let addr = server.addr;
    let post = |seq: u64| json!({"channel": "many", "kind": "follow", "data": {"seq": seq}});
    // Each client acts as a browser's EventSource: on a drop it waits the `retry:` it was
    // given and reconnects with Last-Event-ID.
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(STREAMS);
    let mut clients = Vec::new();
    for _ in 0..STREAMS {
        let ready = ready_tx.clone();
        clients.push(tokio::spawn(async move {
            let (retry, first) = raw_stream(addr, None, 3, Some(ready)).await;
            let retry = retry.expect("a retry in the preamble");
            tokio::time::sleep(Duration::from_millis(retry)).await;
            let back = std::time::Instant::now();
            let last = first.last().map(|(id, _)| *id);
            let (_, second) = raw_stream(addr, last, 3, None).await;
            let seqs: Vec<u64> = first.iter().chain(&second).map(|(_, s)| *s).collect();
            (seqs, back, retry)
        }));
    }
    for _ in 0..STREAMS {
        ready_rx.recv().await.expect("ready");
    }
    for seq in 1..=3 {
        server.post_event(post(seq)).await;
    }
    let dir = {
        let mut s = server;
        s.halt().await;
        s.dir
    };
    let server = Server::start_at(dir, &addr.to_string(), "", &refs).await;
    // Posted before any source is back: they must come in the replay.
    for seq in 4..=6 {
        server.post_event(post(seq)).await;
    }
    let mut backs = Vec::new();
    let mut retries = std::collections::BTreeSet::new();
    for c in clients {
        let (seqs, back, retry) = c.await.expect("client");
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6], "nothing lost or repeated");
        backs.push(back);
        retries.insert(retry);
    }
    let first = backs.iter().min().copied().expect("clients");
    let last = backs.iter().max().copied().expect("clients");
    assert!(
        last - first >= Duration::from_millis(1000),
        "reconnects came within {:?} of each other",
        last - first
    );
    assert!(retries.len() > 100, "{} distinct waits", retries.len());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_webhooks_are_taken_without_a_public_address() {
    let server = Server::start("[twitch]\nwebhook_secret = \"secretabcd\"\n", &[]).await;
    let r = common::client()
        .post(server.url("/eventsub/callback"))
        .header("Twitch-Eventsub-Message-Id", "x")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), 404);
    assert!(r.text().await.expect("body").contains("public_url"));
    server.stop().await;
}

/// `GET path` over a blocking socket, answered in full; how long it took.
fn blocking_get(addr: std::net::SocketAddr, path: &str) -> Duration {
    use std::io::{Read, Write};
    let t = std::time::Instant::now();
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut body = Vec::new();
    s.read_to_end(&mut body).expect("answer");
    assert!(
        body.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    t.elapsed()
}
