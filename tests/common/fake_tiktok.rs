//! A loopback stand-in for TikTok LIVE: tiktok.com's home page (the `ttwid` cookie) and room
//! look-up over HTTP, and the webcast socket. Frames are protobuf written by hand here, from the
//! field numbers of `../shared/notes/tiktok.md` §4.2, with no use of overlayd's prost structs:
//! a wrong tag on either side fails the tests instead of agreeing with itself.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use warp::Filter;

use crate::common::WAIT;

/// A protobuf message being written: fields appended in order.
#[derive(Default, Clone)]
pub struct Pb(pub Vec<u8>);

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

impl Pb {
    pub fn new() -> Pb {
        Pb::default()
    }
    pub fn int(mut self, tag: u32, v: u64) -> Pb {
        varint(&mut self.0, u64::from(tag) << 3);
        varint(&mut self.0, v);
        self
    }
    pub fn bytes(mut self, tag: u32, b: &[u8]) -> Pb {
        varint(&mut self.0, (u64::from(tag) << 3) | 2);
        varint(&mut self.0, b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    pub fn str(self, tag: u32, s: &str) -> Pb {
        self.bytes(tag, s.as_bytes())
    }
    pub fn msg(self, tag: u32, m: Pb) -> Pb {
        self.bytes(tag, &m.0)
    }
    /// A `map<string,string>` entry.
    pub fn entry(self, tag: u32, k: &str, v: &str) -> Pb {
        self.msg(tag, Pb::new().str(1, k).str(2, v))
    }
}

/// One field read back: a varint or a length-delimited run of bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Int(u64),
    Bytes(Vec<u8>),
}

/// The fields of a protobuf message, in order (varint and length-delimited only, as TikTok's
/// client frames use).
pub fn fields(mut b: &[u8]) -> Vec<(u32, Field)> {
    fn read_varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first().expect("truncated varint");
            *b = rest;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        v
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = read_varint(&mut b);
        let tag = (key >> 3) as u32;
        match key & 7 {
            0 => out.push((tag, Field::Int(read_varint(&mut b)))),
            2 => {
                let n = read_varint(&mut b) as usize;
                out.push((tag, Field::Bytes(b[..n].to_vec())));
                b = &b[n..];
            }
            w => panic!("wire type {w} in a client frame"),
        }
    }
    out
}

/// A client frame as the fake read it.
#[derive(Debug, Clone)]
pub struct ClientFrame {
    pub at: Instant,
    pub connection: usize,
    pub log_id: u64,
    pub payload_type: String,
    pub payload: Vec<u8>,
}

impl ClientFrame {
    fn parse(bytes: &[u8], connection: usize) -> ClientFrame {
        let mut f = ClientFrame {
            at: Instant::now(),
            connection,
            log_id: 0,
            payload_type: String::new(),
            payload: Vec::new(),
        };
        for (tag, v) in fields(bytes) {
            match (tag, v) {
                (2, Field::Int(n)) => f.log_id = n,
                (7, Field::Bytes(b)) => f.payload_type = String::from_utf8(b).expect("utf-8"),
                (8, Field::Bytes(b)) => f.payload = b,
                _ => {}
            }
        }
        f
    }

    /// A field of the payload (a heartbeat's room id, tag 1).
    pub fn payload_int(&self, tag: u32) -> Option<u64> {
        fields(&self.payload)
            .into_iter()
            .find_map(|(t, v)| match v {
                Field::Int(n) if t == tag => Some(n),
                _ => None,
            })
    }

    pub fn payload_str(&self, tag: u32) -> Option<String> {
        fields(&self.payload)
            .into_iter()
            .find_map(|(t, v)| match v {
                Field::Bytes(b) if t == tag => String::from_utf8(b).ok(),
                _ => None,
            })
    }
}

/// What the room look-up answers, in order; once the script is empty, live.
#[derive(Debug, Clone)]
pub enum Lookup {
    Live,
    Offline,
    NoSuchUser,
    Forbidden,
    Empty,
}

#[derive(Default)]
pub struct TiktokState {
    /// `GET /` calls; the first one withholds the cookie when `withhold_first`.
    pub home_views: usize,
    pub withhold_first: bool,
    pub cookies_issued: Vec<String>,
    pub script: VecDeque<Lookup>,
    /// Each look-up's query and Cookie header.
    pub lookups: Vec<(HashMap<String, String>, String)>,
    /// Each socket attempt's query, Cookie and Origin.
    pub connections: Vec<(HashMap<String, String>, String, String)>,
    /// Attempts (0-based) answered `Handshake-Msg: DEVICE_BLOCKED`.
    pub blocked: HashSet<usize>,
    pub received: Vec<ClientFrame>,
    pub socket: Option<mpsc::UnboundedSender<Vec<u8>>>,
    pub closed: usize,
}

pub struct FakeTiktok {
    pub http: SocketAddr,
    pub ws: SocketAddr,
    pub state: Arc<Mutex<TiktokState>>,
}

fn query(raw: &str) -> HashMap<String, String> {
    url_pairs(raw).into_iter().collect()
}

fn url_pairs(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            let decode = |s: &str| {
                let s = s.replace('+', " ");
                let mut out = Vec::new();
                let b = s.as_bytes();
                let mut i = 0;
                while i < b.len() {
                    if b[i] == b'%' && i + 2 < b.len() + 1 {
                        let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("hex");
                        out.push(u8::from_str_radix(hex, 16).expect("hex"));
                        i += 3;
                    } else {
                        out.push(b[i]);
                        i += 1;
                    }
                }
                String::from_utf8(out).expect("utf-8")
            };
            (decode(k), decode(v))
        })
        .collect()
}

impl FakeTiktok {
    pub async fn start() -> FakeTiktok {
        let state: Arc<Mutex<TiktokState>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind ws");
        let ws = listener.local_addr().expect("addr");
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve_socket(tcp, s.clone()));
            }
        });
        let s = state.clone();
        let home = warp::get().and(warp::path::end()).map(move || {
            let mut st = s.lock().expect("state");
            st.home_views += 1;
            if st.withhold_first && st.home_views == 1 {
                return warp::http::Response::builder()
                    .body("<html>no cookie yet</html>".to_string())
                    .expect("response");
            }
            let cookie = format!("tok{}", st.cookies_issued.len() + 1);
            st.cookies_issued.push(cookie.clone());
            warp::http::Response::builder()
                .header(
                    "set-cookie",
                    format!("ttwid={cookie}; Path=/; Domain=tiktok.com; Max-Age=31536000; HttpOnly; Secure"),
                )
                .header("set-cookie", "tt_csrf_token=abc; Path=/")
                .body("<html>TikTok</html>".to_string())
                .expect("response")
        });
        let s = state.clone();
        let room = warp::get()
            .and(warp::path!("api-live" / "user" / "room"))
            .and(warp::query::raw())
            .and(warp::header::optional::<String>("cookie"))
            .map(move |raw: String, cookie: Option<String>| {
                let mut st = s.lock().expect("state");
                st.lookups.push((query(&raw), cookie.unwrap_or_default()));
                let answer = st.script.pop_front().unwrap_or(Lookup::Live);
                let (status, body) = match answer {
                    Lookup::Live => (200, json!({"statusCode": 0, "data": {"user": {"roomId": "7001", "id": "55", "uniqueId": "fixture"}, "liveRoom": {"status": 2}}}).to_string()),
                    Lookup::Offline => (200, json!({"statusCode": 0, "data": {"user": {"roomId": "7001", "id": "55"}, "liveRoom": {"status": 4}}}).to_string()),
                    Lookup::NoSuchUser => (200, json!({"statusCode": 19881007, "message": "user_not_found", "data": {}}).to_string()),
                    Lookup::Forbidden => (403, String::new()),
                    Lookup::Empty => (200, String::new()),
                };
                warp::http::Response::builder()
                    .status(status)
                    .body(body)
                    .expect("response")
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let http = listener.local_addr().expect("addr");
        tokio::spawn(warp::serve(home.or(room)).incoming(listener).run());
        FakeTiktok { http, ws, state }
    }

    /// The `[tiktok]` settings pointing at this fake.
    pub fn config(&self, heartbeat_s: u64, stale_s: u64) -> String {
        format!(
            "[tiktok]\nweb_base = \"http://{}\"\nws_base = \"ws://{}\"\nheartbeat_s = {heartbeat_s}\nstale_s = {stale_s}\nlive_check_s = 1\n",
            self.http, self.ws
        )
    }

    /// Sends a binary frame on the open socket.
    pub fn send(&self, frame: Vec<u8>) {
        let st = self.state.lock().expect("state");
        st.socket
            .as_ref()
            .expect("a socket is open")
            .send(frame)
            .expect("socket open");
    }

    pub async fn wait_for(&self, what: &str, f: impl Fn(&TiktokState) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !f(&self.state.lock().expect("state")) {
            assert!(Instant::now() < deadline, "TikTok fake: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits for the client's `im_enter_room` on connection `n` (0-based).
    pub async fn wait_entered(&self, n: usize) {
        self.wait_for("the client entered the room", |s| {
            s.received
                .iter()
                .any(|f| f.connection == n && f.payload_type == "im_enter_room")
        })
        .await;
    }

    pub fn received(&self) -> Vec<ClientFrame> {
        self.state.lock().expect("state").received.clone()
    }
}

#[allow(clippy::result_large_err)] // the handshake callback's error type is tungstenite's
async fn serve_socket(mut tcp: tokio::net::TcpStream, state: Arc<Mutex<TiktokState>>) {
    let blocked = {
        let st = state.lock().expect("state");
        st.blocked.contains(&st.connections.len())
    };
    if blocked {
        refuse_blocked(&mut tcp, &state).await;
        return;
    }
    let s = state.clone();
    let connection = Arc::new(Mutex::new(0usize));
    let c = connection.clone();
    let callback =
        move |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
              resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
            let header = |name: &str| {
                req.headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string()
            };
            let mut st = s.lock().expect("state");
            let n = st.connections.len();
            *c.lock().expect("n") = n;
            st.connections.push((
                query(req.uri().query().unwrap_or_default()),
                header("cookie"),
                header("origin"),
            ));
            Ok(resp)
        };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    let n = *connection.lock().expect("n");
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    state.lock().expect("state").socket = Some(tx);
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if sink.send(Message::binary(frame)).await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(msg)) = stream.next().await {
        if let Message::Binary(b) = msg {
            state
                .lock()
                .expect("state")
                .received
                .push(ClientFrame::parse(&b, n));
        }
    }
    writer.abort();
    state.lock().expect("state").closed += 1;
}

/// Answers the handshake the way TikTok refuses a device: HTTP 200 (not 101) with
/// `Handshake-Msg: DEVICE_BLOCKED`. (tungstenite's server will not send a 200 refusal, so this
/// one is written by hand.)
async fn refuse_blocked(tcp: &mut tokio::net::TcpStream, state: &Arc<Mutex<TiktokState>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 64 * 1024 {
        match tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(&buf).expect("a request");
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
            .unwrap_or_default()
    };
    let path = req.path.unwrap_or_default();
    let (_, raw) = path.split_once('?').unwrap_or((path, ""));
    state
        .lock()
        .expect("state")
        .connections
        .push((query(raw), header("cookie"), header("origin")));
    let _ = tcp
        .write_all(b"HTTP/1.1 200 OK\r\nHandshake-Msg: DEVICE_BLOCKED\r\nHandshake-Status: 415\r\nContent-Length: 0\r\n\r\n")
        .await;
    let _ = tcp.shutdown().await;
}

/// A server push frame: `payload_type` with `payload`, gzip'd (and said so in a header) when
/// `gzip`.
pub fn push_frame(log_id: u64, payload_type: &str, payload: &[u8], gzip: bool) -> Vec<u8> {
    let mut frame = Pb::new().int(1, log_id + 1000).int(2, log_id);
    let body = if gzip {
        frame = frame.entry(5, "compress_type", "gzip");
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(payload).expect("gzip");
        z.finish().expect("gzip")
    } else {
        frame = frame.entry(5, "compress_type", "none");
        payload.to_vec()
    };
    frame.str(6, "pb").str(7, payload_type).bytes(8, &body).0
}

/// A `WebcastResponse` of `messages` (`(method, payload)`), asking for an ack with `ext`
/// when given.
pub fn response(messages: &[(&str, Pb)], ext: Option<&str>) -> Vec<u8> {
    let mut r = Pb::new();
    for (i, (method, payload)) in messages.iter().enumerate() {
        r = r.msg(
            1,
            Pb::new()
                .str(1, method)
                .bytes(2, &payload.0)
                .int(3, 9000 + i as u64),
        );
    }
    r = r.str(2, "cursor-1").int(8, 10_000);
    if let Some(ext) = ext {
        r = r.str(5, ext).int(9, 1);
    }
    r.0
}

pub fn common(msg_id: u64, method: &str) -> Pb {
    Pb::new()
        .str(1, method)
        .int(2, msg_id)
        .int(3, 7001)
        .int(4, 1_764_600_000_000 + msg_id)
}

/// A user: id, nickname (3), avatar (9), @name (38).
pub fn user(id: u64, unique_id: &str, nickname: &str) -> Pb {
    Pb::new()
        .int(1, id)
        .str(3, nickname)
        .msg(
            9,
            Pb::new().str(1, &format!("https://p16.tiktokcdn.test/avatar/{id}.webp")),
        )
        .str(38, unique_id)
}

/// A chat line; `emote` is `(place in the comment, id)`; `moderator` sets tag 5 of the
/// identity (18).
pub fn chat(
    msg_id: u64,
    user: Pb,
    comment: &str,
    emote: Option<(u64, &str)>,
    moderator: bool,
) -> Pb {
    let mut m = Pb::new()
        .msg(1, common(msg_id, "WebcastChatMessage"))
        .msg(2, user)
        .str(3, comment);
    if let Some((at, id)) = emote {
        m = m.msg(
            13,
            Pb::new().int(1, at).msg(
                2,
                Pb::new().str(1, id).msg(
                    2,
                    Pb::new().str(1, &format!("https://p16.tiktokcdn.test/emote/{id}.png")),
                ),
            ),
        );
    }
    let mut identity = Pb::new().int(4, 1);
    if moderator {
        identity = identity.int(5, 1);
    }
    m.msg(18, identity).str(14, "en")
}

/// TikTok's gift: its id, name and worth in diamonds.
pub struct GiftKind<'a>(pub u64, pub &'a str, pub u64);

/// A gift message: a combo gift (type 1) at `repeat_count` of streak `group`, ending the
/// streak when `end`.
pub fn gift(msg_id: u64, user: Pb, kind: GiftKind, repeat_count: u64, end: bool, group: u64) -> Pb {
    let GiftKind(gift_id, name, diamonds) = kind;
    Pb::new()
        .msg(1, common(msg_id, "WebcastGiftMessage"))
        .int(2, gift_id)
        .int(5, repeat_count)
        .int(6, repeat_count)
        .msg(7, user)
        .int(9, u64::from(end))
        .int(11, group)
        .msg(
            15,
            Pb::new()
                .msg(
                    1,
                    Pb::new().str(1, &format!("https://p19.tiktokcdn.test/gift/{gift_id}.png")),
                )
                .int(11, 1)
                .int(12, diamonds)
                .str(16, name),
        )
}

pub fn follow(msg_id: u64, user: Pb) -> Pb {
    Pb::new()
        .msg(1, common(msg_id, "WebcastSocialMessage"))
        .msg(2, user)
        .int(4, 1)
}

pub fn sub_notify(msg_id: u64, user: Pb, months: u64) -> Pb {
    Pb::new()
        .msg(1, common(msg_id, "WebcastSubNotifyMessage"))
        .msg(2, user)
        .int(4, months)
}

pub fn delete(msg_id: u64, message: u64) -> Pb {
    Pb::new()
        .msg(1, common(msg_id, "WebcastImDeleteMessage"))
        .int(2, message)
}

pub fn like(msg_id: u64, user: Pb, count: u64, total: u64) -> Pb {
    Pb::new()
        .msg(1, common(msg_id, "WebcastLikeMessage"))
        .int(2, count)
        .int(3, total)
        .msg(5, user)
}

pub fn member(msg_id: u64, user: Pb) -> Pb {
    Pb::new()
        .msg(1, common(msg_id, "WebcastMemberMessage"))
        .msg(2, user)
        .int(10, 1)
}

pub fn control(msg_id: u64, action: u64) -> Pb {
    Pb::new()
        .msg(1, common(msg_id, "WebcastControlMessage"))
        .int(2, action)
}
