//! A headless Chromium driven over the DevTools protocol (CDP) on a WebSocket: just enough to
//! open tabs, evaluate JavaScript, wait for conditions and take screenshots. One profile per
//! browser, as OBS has one profile for all its browser sources.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Mutex, oneshot};
use tokio_tungstenite::tungstenite::Message;

type Pending = Arc<std::sync::Mutex<HashMap<u64, oneshot::Sender<Value>>>>;
type Sink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;

pub struct Browser {
    child: tokio::process::Child,
    _profile: tempfile::TempDir,
    sink: Mutex<Sink>,
    pending: Pending,
    next_id: AtomicU64,
}

impl Drop for Browser {
    /// Chromium's helper processes outlive a killed main process (and keep inotify instances,
    /// of which a user has 128): end the whole process group.
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.child.id()
            && pid > 1
        {
            // The group is Chromium's own (`process_group(0)` at spawn), never ours.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// The browser binary: `OVERLAYD_BROWSER`, else the first of the usual Debian names.
pub fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("OVERLAYD_BROWSER")
        && !path.is_empty()
    {
        return PathBuf::from(path);
    }
    for name in ["chromium-headless-shell", "chromium", "google-chrome"] {
        for dir in ["/usr/bin", "/usr/local/bin"] {
            let p = Path::new(dir).join(name);
            if p.exists() {
                return p;
            }
        }
    }
    panic!(
        "no headless Chromium found: run `bash .ci/run` (it installs chromium-headless-shell), \
         or set OVERLAYD_BROWSER to a Chromium binary"
    );
}

impl Browser {
    pub async fn launch() -> Arc<Browser> {
        // Chromium now and then dies while starting on a loaded machine: a second start (with
        // a fresh profile) is tried before the test fails, and the failure says what it said.
        let mut said: Vec<String> = Vec::new();
        let mut attempt = 0;
        let (profile, child, mut lines, ws_url) = loop {
            attempt += 1;
            let profile = tempfile::tempdir().expect("profile dir");
            let mut command = tokio::process::Command::new(binary());
            command
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-extensions",
                    "--disable-dev-shm-usage",
                    "--autoplay-policy=no-user-gesture-required",
                    "--hide-scrollbars",
                    "--remote-debugging-address=127.0.0.1",
                    "--remote-debugging-port=0",
                ])
                .arg(format!("--user-data-dir={}", profile.path().display()))
                .arg("about:blank")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true);
            #[cfg(unix)]
            command.process_group(0);
            let mut child = command.spawn().expect("start Chromium");
            let stderr = child.stderr.take().expect("stderr");
            let mut lines = BufReader::new(stderr).lines();
            let found = tokio::time::timeout(Duration::from_secs(20), async {
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(url) = line.split("DevTools listening on ").nth(1) {
                        return Some(url.trim().to_string());
                    }
                    said.push(line);
                }
                None
            })
            .await
            .expect("Chromium started in time");
            match found {
                Some(url) => break (profile, child, lines, url),
                None if attempt < 2 => continue,
                None => panic!(
                    "Chromium exited before it listened, twice; it said:\n{}",
                    said.join("\n")
                ),
            }
        };
        // Keep draining stderr so the browser never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (ws, _) = tokio_tungstenite::connect_async(&ws_url)
            .await
            .expect("CDP connect");
        let (sink, mut stream) = ws.split();
        let pending: Pending = Arc::default();
        let p = pending.clone();
        tokio::spawn(async move {
            while let Some(Ok(msg)) = stream.next().await {
                let Message::Text(text) = msg else { continue };
                let Ok(v) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if let Some(id) = v["id"].as_u64()
                    && let Some(tx) = p.lock().expect("pending").remove(&id)
                {
                    let _ = tx.send(v);
                }
            }
        });
        Arc::new(Browser {
            child,
            _profile: profile,
            sink: Mutex::new(sink),
            pending,
            next_id: AtomicU64::new(1),
        })
    }

    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        match self.try_call(session, method, params).await {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        }
    }

    async fn try_call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending").insert(id, tx);
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        self.sink
            .lock()
            .await
            .send(Message::Text(msg.to_string().into()))
            .await
            .expect("CDP send");
        let reply = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .unwrap_or_else(|_| panic!("CDP {method} timed out"))
            .expect("CDP reply");
        if let Some(err) = reply.get("error") {
            return Err(format!("CDP {method} failed: {err}"));
        }
        Ok(reply["result"].clone())
    }

    /// Opens `url` in a new tab of this profile, `width`×`height` CSS pixels.
    pub async fn open(self: &Arc<Self>, url: &str, width: u32, height: u32) -> Tab {
        let target = self
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await["targetId"]
            .as_str()
            .expect("target")
            .to_string();
        let session = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target, "flatten": true}),
            )
            .await["sessionId"]
            .as_str()
            .expect("session")
            .to_string();
        let tab = Tab {
            browser: self.clone(),
            session,
        };
        tab.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
        tab.call("Page.enable", json!({})).await;
        tab.call("Page.navigate", json!({"url": url})).await;
        tab.wait_for(
            "document.readyState === 'complete'",
            Duration::from_secs(15),
        )
        .await;
        tab
    }
}

pub struct Tab {
    browser: Arc<Browser>,
    session: String,
}

impl Tab {
    async fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params).await
    }

    /// Evaluates `js` in the page (awaiting a promise) and returns its value.
    pub async fn eval(&self, js: &str) -> Value {
        match self.try_eval(js).await {
            Ok(v) => v,
            Err(e) => panic!("{e}\n{js}"),
        }
    }

    async fn try_eval(&self, js: &str) -> Result<Value, String> {
        let r = self
            .browser
            .try_call(
                Some(&self.session),
                "Runtime.evaluate",
                json!({"expression": js, "awaitPromise": true, "returnByValue": true}),
            )
            .await?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(format!("page script failed: {ex}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Any CDP method on this tab.
    pub async fn call_public(&self, method: &str, params: Value) -> Value {
        self.call(method, params).await
    }

    /// Loads `url` in this tab.
    pub async fn navigate(&self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
    }

    /// Polls `condition` until it is truthy; returns how long that took.
    pub async fn wait_for(&self, condition: &str, timeout: Duration) -> Duration {
        let started = Instant::now();
        loop {
            // A navigation in progress answers "target navigated": look again.
            let v = self.try_eval(&format!("!!({condition})")).await;
            if v == Ok(Value::Bool(true)) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < timeout,
                "timed out waiting for: {condition}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Saves a PNG of the tab (transparent where the page is).
    pub async fn screenshot(&self, path: &Path) {
        self.call(
            "Emulation.setDefaultBackgroundColorOverride",
            json!({"color": {"r": 0, "g": 0, "b": 0, "a": 0}}),
        )
        .await;
        let r = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let data = r["data"].as_str().expect("png data");
        let bytes = base64_decode(data);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, bytes).expect("write screenshot");
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => 0,
        }
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|b| *b != b'=' && !b.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    out
}
