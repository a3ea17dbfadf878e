//! A loopback stand-in for Twitch's IRC server (irc.chat.twitch.tv), speaking enough of its
//! protocol for twitch-irc: capability ACK, the 001 welcome, JOIN/PART echoes, PING/PONG. Lines
//! from `tests/fixtures/irc/` are sent to the connections that joined their channel.
//!
//! twitch-irc's address is process-wide, so a test binary shares one server; it runs on its
//! own thread (each `#[tokio::test]` has its own runtime) and tests use distinct channels.
#![allow(dead_code)] // each test binary uses part of it

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

#[derive(Default)]
struct State {
    /// (NICK, PASS) of every registration.
    logins: Vec<(String, Option<String>)>,
    joins: HashMap<String, usize>,
    parts: HashMap<String, usize>,
    connections: HashMap<u64, Conn>,
    next_id: u64,
}

struct Conn {
    tx: mpsc::UnboundedSender<Out>,
    channels: HashSet<String>,
}

enum Out {
    Line(String),
    Close,
}

/// The room (channel user) id the fake gives every channel.
pub const ROOM_ID: &str = "12345";

pub struct FakeIrc {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

static SERVER: OnceLock<FakeIrc> = OnceLock::new();

/// The fake server of this test binary.
pub fn server() -> &'static FakeIrc {
    SERVER.get_or_init(|| {
        let state: Arc<Mutex<State>> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send(listener.local_addr().expect("addr"))
                    .expect("addr to test");
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(connection(socket, st.clone()));
                }
            });
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("fake IRC started");
        FakeIrc { addr, state }
    })
}

async fn connection(socket: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    let (read, mut write) = socket.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Out>();
    let id = {
        let mut s = state.lock().expect("state");
        s.next_id += 1;
        let id = s.next_id;
        s.connections.insert(
            id,
            Conn {
                tx: tx.clone(),
                channels: HashSet::new(),
            },
        );
        id
    };
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            match out {
                Out::Line(line) => {
                    if write
                        .write_all(format!("{line}\r\n").as_bytes())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Out::Close => break,
            }
        }
        let _ = write.shutdown().await;
    });
    let mut lines = BufReader::new(read).lines();
    let mut nick = "justinfan".to_string();
    let mut pass: Option<String> = None;
    while let Ok(Some(line)) = lines.next_line().await {
        let send = |l: String| {
            let _ = tx.send(Out::Line(l));
        };
        let mut parts = line.splitn(2, ' ');
        let command = parts.next().unwrap_or_default();
        let rest = parts.next().unwrap_or_default();
        match command {
            "CAP" => send(format!(
                ":tmi.twitch.tv CAP * ACK :{}",
                rest.trim_start_matches("REQ :")
            )),
            "PASS" => pass = Some(rest.trim().to_string()),
            "NICK" => {
                nick = rest.trim().to_string();
                state
                    .lock()
                    .expect("state")
                    .logins
                    .push((nick.clone(), pass.clone()));
                send(format!(":tmi.twitch.tv 001 {nick} :Welcome, GLHF!"));
            }
            "JOIN" => {
                for ch in rest.trim().split(',') {
                    let ch = ch.trim_start_matches('#').to_string();
                    {
                        let mut s = state.lock().expect("state");
                        *s.joins.entry(ch.clone()).or_default() += 1;
                        if let Some(c) = s.connections.get_mut(&id) {
                            c.channels.insert(ch.clone());
                        }
                    }
                    send(format!(":{nick}!{nick}@{nick}.tmi.twitch.tv JOIN #{ch}"));
                    send(format!(
                        "@emote-only=0;followers-only=-1;r9k=0;room-id={ROOM_ID};slow=0;subs-only=0 :tmi.twitch.tv ROOMSTATE #{ch}"
                    ));
                }
            }
            "PART" => {
                let ch = rest.trim().trim_start_matches('#').to_string();
                {
                    let mut s = state.lock().expect("state");
                    *s.parts.entry(ch.clone()).or_default() += 1;
                    if let Some(c) = s.connections.get_mut(&id) {
                        c.channels.remove(&ch);
                    }
                }
                send(format!(":{nick}!{nick}@{nick}.tmi.twitch.tv PART #{ch}"));
            }
            "PING" => send(format!(
                ":tmi.twitch.tv PONG tmi.twitch.tv :{}",
                rest.trim_start_matches(':')
            )),
            _ => {}
        }
    }
    state.lock().expect("state").connections.remove(&id);
    let _ = tx.send(Out::Close);
    let _ = writer.await;
}

impl FakeIrc {
    pub fn joins(&self, channel: &str) -> usize {
        self.state
            .lock()
            .expect("state")
            .joins
            .get(channel)
            .copied()
            .unwrap_or(0)
    }

    /// Every (NICK, PASS) the server saw.
    pub fn logins(&self) -> Vec<(String, Option<String>)> {
        self.state.lock().expect("state").logins.clone()
    }

    pub fn parts(&self, channel: &str) -> usize {
        self.state
            .lock()
            .expect("state")
            .parts
            .get(channel)
            .copied()
            .unwrap_or(0)
    }

    /// Connections currently joined to `channel`.
    pub fn joined(&self, channel: &str) -> usize {
        self.state
            .lock()
            .expect("state")
            .connections
            .values()
            .filter(|c| c.channels.contains(channel))
            .count()
    }

    /// Sends `line` to every connection joined to `channel`; returns how many got it.
    pub fn send(&self, channel: &str, line: &str) -> usize {
        let s = self.state.lock().expect("state");
        let mut n = 0;
        for c in s
            .connections
            .values()
            .filter(|c| c.channels.contains(channel))
        {
            if c.tx.send(Out::Line(line.to_string())).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// Closes every connection joined to `channel`, as Twitch does on a restart.
    pub fn drop_connections(&self, channel: &str) {
        let mut s = self.state.lock().expect("state");
        for c in s
            .connections
            .values_mut()
            .filter(|c| c.channels.contains(channel))
        {
            let _ = c.tx.send(Out::Close);
            c.channels.clear();
        }
    }

    /// Waits until `check` holds (bounded).
    pub async fn wait(&self, what: &str, timeout: Duration, check: impl Fn(&FakeIrc) -> bool) {
        let start = Instant::now();
        while !check(self) {
            assert!(start.elapsed() < timeout, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A fixture line with its channel replaced by `channel`.
/// The recorded basic PRIVMSG on `channel` saying `text`, from a moderator or a viewer.
pub fn chat_line(channel: &str, moderator: bool, text: &str) -> String {
    let basic = fixture("privmsg_basic.txt", channel);
    let tags = if moderator {
        "badges=moderator/1;"
    } else {
        "badges=;"
    };
    let line = basic.replacen("badges=;", tags, 1).replacen(
        "mod=0",
        if moderator { "mod=1" } else { "mod=0" },
        1,
    );
    let at = line.rfind(" :").expect("text");
    format!("{} :{text}", &line[..at])
}

pub fn fixture(name: &str, channel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/irc")
        .join(name);
    let line = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let line = line.trim_end_matches(['\r', '\n']);
    // Replace the channel after the command (`PRIVMSG #pajlada :…`, `CLEARCHAT #pajlada`).
    let mut out = String::new();
    let mut replaced = false;
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if !replaced && word.starts_with('#') && i > 1 {
            out.push('#');
            out.push_str(channel);
            replaced = true;
        } else {
            out.push_str(word);
        }
    }
    out
}
