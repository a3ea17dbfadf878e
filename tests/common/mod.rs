//! Test harness: the real server on 127.0.0.1:0 in a temporary folder, an HTTP client, and an
//! SSE reader that parses frames off the wire. Every wait is bounded.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use overlayd::config::Config;

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Server {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: Option<JoinHandle<anyhow::Result<()>>>,
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server with `config` as its overlay.toml and `overlays` as overlays/<name>.toml.
    pub async fn start(config: &str, overlays: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        Server::start_in(dir, config, overlays).await
    }

    pub async fn start_in(
        dir: tempfile::TempDir,
        config: &str,
        overlays: &[(&str, &str)],
    ) -> Server {
        Server::start_at(dir, "127.0.0.1:0", config, overlays).await
    }

    /// A server with one chat overlay, `chat` on `channel`, drawn by theme `theme` whose only
    /// file is `template` as its chat line.
    pub async fn with_chat_template(theme: &str, channel: &str, template: &str) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let chat = dir.path().join("themes").join(theme).join("templates/chat");
        std::fs::create_dir_all(&chat).expect("templates");
        std::fs::write(chat.join("chat.message.hbs"), template).expect("template");
        let overlay = format!("kind = \"chat\"\nchannel = \"{channel}\"\ntheme = \"{theme}\"\n");
        Server::start_in(dir, "", &[("chat", &overlay)]).await
    }

    /// [`Server::start_in`] on the address `bind` (a restart on the same port).
    pub async fn start_at(
        dir: tempfile::TempDir,
        bind: &str,
        config: &str,
        overlays: &[(&str, &str)],
    ) -> Server {
        let path = dir.path().join("overlay.toml");
        std::fs::write(&path, config).expect("write config");
        std::fs::create_dir_all(dir.path().join("overlays")).expect("overlays dir");
        for (name, text) in overlays {
            std::fs::write(
                dir.path().join("overlays").join(format!("{name}.toml")),
                text,
            )
            .expect("write overlay");
        }
        let config = Config::parse(&path, config).expect("valid config");
        let listener = tokio::net::TcpListener::bind(bind).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(overlayd::app::run(config, listener, shutdown.clone()));
        let server = Server {
            addr,
            shutdown,
            task: Some(task),
            dir,
        };
        server.wait_healthy().await;
        server
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(r) = client().get(self.url("/health")).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("server did not become healthy");
    }

    pub async fn post_event(&self, body: Value) -> (u16, Value) {
        post_json(&self.url("/api/events"), &body.to_string()).await
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = client().get(self.url(path)).send().await.expect("get");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn sse(&self, path: &str, last_event_id: Option<u64>) -> Sse {
        Sse::open(&self.url(path), last_event_id).await
    }

    /// Stops the server and returns how long that took.
    /// Stops the server and starts a new one in the same folder (its data dir and log kept).
    pub async fn restart(mut self, config: &str, overlays: &[(&str, &str)]) -> Server {
        self.halt().await;
        Server::start_in(self.dir, config, overlays).await
    }

    /// Stops the server; how long that took.
    pub async fn stop(mut self) -> Duration {
        let started = Instant::now();
        self.halt().await;
        started.elapsed()
    }

    /// Shuts the server down and waits for it (bounded), keeping its folder.
    pub async fn halt(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task)
                .await
                .expect("server stopped in time")
                .expect("server task")
                .expect("server result");
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("client")
}

pub async fn post_json(url: &str, body: &str) -> (u16, Value) {
    let r = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// One parsed SSE frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub id: Option<u64>,
    pub event: String,
    pub data: Value,
}

pub struct Sse {
    response: reqwest::Response,
    buf: String,
    /// How much of `buf` was already handed out as frames.
    read: usize,
    pub status: u16,
}

impl Sse {
    pub async fn open(url: &str, last_event_id: Option<u64>) -> Sse {
        let mut req = reqwest::Client::new()
            .get(url)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let response = tokio::time::timeout(WAIT, req.send())
            .await
            .expect("connect in time")
            .expect("connect");
        let status = response.status().as_u16();
        let mut sse = Sse {
            response,
            buf: String::new(),
            read: 0,
            status,
        };
        if status == 200 {
            // The preamble comment means the subscription is registered.
            let deadline = Instant::now() + WAIT;
            while !sse.buf.contains(": ok\n\n") {
                assert!(sse.fill(deadline).await, "stream ended before its preamble");
            }
            let end = sse.buf.find(": ok\n\n").unwrap_or(0) + 6;
            sse.buf.drain(..end);
        }
        sse
    }

    async fn fill(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, self.response.chunk()).await {
            Ok(Ok(Some(bytes))) => {
                self.buf.push_str(&String::from_utf8_lossy(&bytes));
                true
            }
            _ => false,
        }
    }

    /// The next frame (comments skipped), or `None` on timeout or end of stream.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Frame> {
        let block = self.next_block_within(wait).await?;
        let mut frame = Frame {
            id: None,
            event: "message".into(),
            data: Value::Null,
        };
        let mut data = String::new();
        for line in block.lines() {
            if let Some(v) = line.strip_prefix("id: ") {
                frame.id = v.parse().ok();
            } else if let Some(v) = line.strip_prefix("event: ") {
                frame.event = v.to_string();
            } else if let Some(v) = line.strip_prefix("data: ") {
                data.push_str(v);
            }
        }
        frame.data = serde_json::from_str(&data).unwrap_or(Value::String(data));
        Some(frame)
    }

    /// The next frame's lines as sent (comments skipped), unparsed: for a reader that must
    /// cost less than the server it measures.
    pub async fn next_block_within(&mut self, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        loop {
            while let Some(end) = self.buf[self.read..].find("\n\n") {
                let block = &self.buf[self.read..self.read + end];
                self.read += end + 2;
                let fields = ["id: ", "event: ", "data: "];
                if block
                    .lines()
                    .any(|l| fields.iter().any(|f| l.starts_with(f)))
                {
                    return Some(block.to_string());
                }
            }
            // What was read is dropped once, not after every frame.
            self.buf.drain(..self.read);
            self.read = 0;
            if !self.fill(deadline).await {
                return None;
            }
        }
    }

    pub async fn next(&mut self) -> Frame {
        self.next_within(WAIT).await.expect("a frame in time")
    }

    /// Reads until `n` event frames (with ids) arrived.
    pub async fn events(&mut self, n: usize) -> Vec<Frame> {
        let mut out = Vec::new();
        while out.len() < n {
            let f = self.next().await;
            if f.id.is_some() {
                out.push(f);
            }
        }
        out
    }

    /// Whether the server ended the stream within `wait`.
    pub async fn ended_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.response.chunk()).await {
                Ok(Ok(Some(_))) => continue,
                Ok(Ok(None)) | Ok(Err(_)) => return true,
                Err(_) => return false,
            }
        }
    }
}

/// `overlays/<name>.toml` text for an overlay of `kind` on `channel`.
pub fn overlay(kind: &str, channel: &str) -> String {
    format!("kind = \"{kind}\"\nchannel = \"{channel}\"\n")
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")
}

/// How long a test waits for a headless browser to show something (it starts slower than a
/// socket answers).
pub const BROWSER_WAIT: Duration = Duration::from_secs(15);

/// Polls `check` until it gives `Some`, at most `deadline`; the one polling loop of the tests.
/// Panics with `what` when the deadline passes.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Server {
    /// `/health` as JSON.
    pub async fn health(&self) -> Value {
        let (status, health) = self.get_json("/health").await;
        assert_eq!(status, 200, "{health}");
        health
    }

    /// A source's `(state, detail)` from `/health` (empty strings before it reports).
    pub async fn source_state(&self, source: &str) -> (String, String) {
        let health = self.health().await;
        let s = &health["sources"][source];
        (
            s["state"].as_str().unwrap_or_default().to_string(),
            s["detail"].as_str().unwrap_or_default().to_string(),
        )
    }

    /// Waits until `source` reports `state`; its detail.
    pub async fn wait_source(&self, source: &str, state: &str) -> String {
        eventually(&format!("{source} {state}"), WAIT, || async {
            let (s, detail) = self.source_state(source).await;
            (s == state).then_some(detail)
        })
        .await
    }
}

/// A source run on its own: a bare bus and a publisher onto it, no HTTP server.
pub struct Bare {
    pub bus: std::sync::Arc<overlayd::bus::Bus>,
    pub status: std::sync::Arc<overlayd::source::Status>,
    pub publisher: overlayd::source::Publisher,
    pub shutdown: CancellationToken,
}

impl Bare {
    pub fn new() -> Bare {
        let bus = std::sync::Arc::new(overlayd::bus::Bus::new(1000));
        let status = overlayd::source::Status::new();
        Bare {
            publisher: overlayd::source::Publisher::bare(bus.clone(), status.clone()),
            bus,
            status,
            shutdown: CancellationToken::new(),
        }
    }

    /// The next `n` events published on `channel` (waiting at most [`WAIT`] for them).
    pub async fn events(
        &self,
        sub: &mut overlayd::bus::Subscription,
        n: usize,
    ) -> Vec<overlayd::event::Event> {
        let mut out = Vec::new();
        while out.len() < n {
            let next = tokio::time::timeout(WAIT, sub.next(&self.bus))
                .await
                .unwrap_or_else(|_| panic!("{} of {n} events came", out.len()));
            match next {
                overlayd::bus::Next::Message(overlayd::bus::Message::Event(item)) => {
                    out.push(item.event.clone())
                }
                overlayd::bus::Next::Closed => panic!("the bus closed"),
                _ => {}
            }
        }
        out
    }

    /// Waits until `source` reports `state`; its detail.
    pub async fn wait_source(&self, source: &str, state: &str) -> String {
        eventually(&format!("{source} {state}"), WAIT, || async {
            self.status
                .get(source)
                .filter(|s| s.state == state)
                .map(|s| s.detail)
        })
        .await
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
