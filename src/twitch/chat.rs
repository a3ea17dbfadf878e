//! The Twitch chat source on the `twitch-irc` crate: joins the wanted channels (anonymously:
//! reading chat needs no account), maps what arrives into events, and leaves channels nobody
//! watches. Reconnecting after a dropped connection or a RECONNECT, and rejoining, is the
//! crate's; a line it cannot parse is logged and skipped.

use std::collections::HashSet;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use twitch_irc::message::IRCMessage;
use twitch_irc::transport::tcp::TLS;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use twitch_irc::login::{CredentialsPair, LoginCredentials};
use twitch_irc::transport::Transport;
use twitch_irc::transport::tcp::{MakeConnection, TCPTransport, TCPTransportConnectError};
use twitch_irc::{ClientConfig, TwitchIRCClient};

use super::Handles;
use super::auth::Auth;
use super::emotes::ThirdParty;
use super::irc::Mapper;
use crate::source::Status;
use twitch_irc::message::ServerMessage;

const SOURCE: &str = "twitch-chat";
/// How often the joined state is checked for `/health`.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// The address set by `[twitch.endpoints] irc`. twitch-irc hard-codes Twitch's host, but its
/// TCP transport asks a `MakeConnection` for each socket, and that call takes no arguments:
/// hence one address per process.
static ENDPOINT: RwLock<Option<String>> = RwLock::new(None);

/// Plain TCP to the configured endpoint (the Twitch CLI's or a test's fake server).
pub struct Endpoint;

#[async_trait]
impl MakeConnection for Endpoint {
    type Socket = Filtered<tokio::net::TcpStream>;

    async fn new_socket() -> Result<Self::Socket, TCPTransportConnectError> {
        let addr = ENDPOINT
            .read()
            .ok()
            .and_then(|a| a.clone())
            .unwrap_or_else(|| "127.0.0.1:6667".into());
        let socket = tokio::net::TcpStream::connect(addr).await?;
        let _ = socket.set_nodelay(true);
        Ok(Filtered::new(socket))
    }
}

/// Twitch's TLS server, through the same line filter.
pub struct Secure;

#[async_trait]
impl MakeConnection for Secure {
    type Socket = Filtered<<TLS as MakeConnection>::Socket>;

    async fn new_socket() -> Result<Self::Socket, TCPTransportConnectError> {
        Ok(Filtered::new(TLS::new_socket().await?))
    }
}

/// Longest line kept while waiting for its end; Twitch's are under 8 KiB (500 characters of
/// text plus tags).
const MAX_LINE: usize = 64 * 1024;

/// Passes on only lines that parse as IRC. twitch-irc treats an unparsable line (or one that
/// is not UTF-8) as a broken connection and reconnects, losing whatever arrives meanwhile; a
/// malformed line is logged and skipped here instead.
pub struct Filtered<S> {
    inner: S,
    pending: Vec<u8>,
    ready: Vec<u8>,
    at: usize,
}

impl<S> Filtered<S> {
    fn new(inner: S) -> Self {
        Filtered {
            inner,
            pending: Vec::new(),
            ready: Vec::new(),
            at: 0,
        }
    }

    fn take_lines(&mut self) {
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            match std::str::from_utf8(line).map(IRCMessage::parse) {
                Ok(Ok(_)) => {
                    self.ready.extend_from_slice(line);
                    self.ready.extend_from_slice(b"\r\n");
                }
                _ => {
                    tracing::warn!(line = %String::from_utf8_lossy(line), "skipped a malformed chat line")
                }
            }
        }
        if self.pending.len() > MAX_LINE {
            tracing::warn!("skipped a chat line over {MAX_LINE} bytes");
            self.pending.clear();
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Filtered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.at < this.ready.len() {
                let n = (this.ready.len() - this.at).min(buf.remaining());
                buf.put_slice(&this.ready[this.at..this.at + n]);
                this.at += n;
                if this.at == this.ready.len() {
                    this.ready.clear();
                    this.at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 4096];
            let mut read = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) if read.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    this.pending.extend_from_slice(read.filled());
                    this.take_lines();
                }
                other => return other,
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Filtered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Chat as the logged-in user when the token allows reading chat, else anonymously
/// (`justinfan`, which can read any channel). Asked again at every (re)connection, so a login
/// or a refreshed token is used from the next connection on.
pub struct Credentials {
    auth: Arc<super::auth::Auth>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials")
    }
}

#[async_trait]
impl LoginCredentials for Credentials {
    type Error = std::convert::Infallible;

    async fn get_credentials(&self) -> Result<CredentialsPair, Self::Error> {
        let token = self
            .auth
            .token()
            .filter(|t| t.scopes.iter().any(|s| s == "chat:read"));
        Ok(match token.and_then(|t| Some((t.login?, t.access_token))) {
            Some((login, token)) => CredentialsPair {
                login,
                token: Some(token),
            },
            None => CredentialsPair {
                login: "justinfan12345".into(),
                token: None,
            },
        })
    }
}

type BadgeTable = std::collections::HashMap<(String, String), String>;

/// Badge images from Helix (needs a login): Twitch's global set and each channel's own.
#[derive(Default)]
struct Badges {
    global: parking_lot::RwLock<Arc<BadgeTable>>,
    rooms: parking_lot::RwLock<std::collections::HashMap<String, Arc<BadgeTable>>>,
}

impl Badges {
    async fn load_global(&self, auth: &Auth) {
        let Some((helix, token)) = auth.helix_with_token() else {
            return;
        };
        match helix.badges(&token, None).await {
            Ok(t) => *self.global.write() = Arc::new(t),
            Err(e) => tracing::warn!("cannot load chat badge images: {e}"),
        }
    }

    async fn load_room(&self, auth: &Auth, room: &str) {
        self.rooms.write().entry(room.to_string()).or_default();
        let Some((helix, token)) = auth.helix_with_token() else {
            return;
        };
        match helix.badges(&token, Some(room)).await {
            Ok(t) => {
                self.rooms.write().insert(room.to_string(), Arc::new(t));
            }
            Err(e) => tracing::warn!(room, "cannot load channel badge images: {e}"),
        }
    }

    fn known(&self, room: &str) -> bool {
        self.rooms.read().contains_key(room)
    }

    /// Adds image URLs to a chat message's badges (channel badges win: subscriber badges are
    /// the channel's own).
    fn apply(&self, room: &str, event: &mut crate::event::Event) {
        let global = self.global.read().clone();
        let room = self.rooms.read().get(room).cloned();
        let Some(badges) = event.data["author"]["badges"].as_array_mut() else {
            return;
        };
        for badge in badges {
            let key = (
                badge["set"].as_str().unwrap_or_default().to_string(),
                badge["version"].as_str().unwrap_or_default().to_string(),
            );
            if let Some(url) = room
                .as_ref()
                .and_then(|r| r.get(&key))
                .or_else(|| global.get(&key))
            {
                badge["image"] = serde_json::Value::from(url.clone());
            }
        }
    }
}

/// Reads chat of the channels in `twitch.sourced` until `shutdown`.
pub async fn run(twitch: Handles, shutdown: CancellationToken) {
    let status = twitch.publisher.status().clone();
    match twitch.config.endpoints.irc.clone() {
        Some(addr) => {
            if let Ok(mut endpoint) = ENDPOINT.write() {
                *endpoint = Some(addr.clone());
            }
            status.set(SOURCE, "connecting", format!("plain TCP to {addr}"));
            run_with::<TCPTransport<Endpoint>>(twitch, shutdown).await;
        }
        None => {
            status.set(SOURCE, "connecting", "irc.chat.twitch.tv (TLS)");
            run_with::<TCPTransport<Secure>>(twitch, shutdown).await;
        }
    }
    status.set(SOURCE, "stopped", "shut down");
}

async fn run_with<T: Transport>(twitch: Handles, shutdown: CancellationToken) {
    let Handles {
        config: settings,
        auth,
        covered,
        publisher,
        sourced: mut wanted,
    } = twitch;
    let mut config = ClientConfig::new_simple(Credentials { auth: auth.clone() });
    // Reconnect promptly after a drop (the default waits 2 s between new connections).
    config.new_connection_every = Duration::from_millis(200);
    config.connect_timeout = Duration::from_secs(10);
    let (mut incoming, client) = TwitchIRCClient::<T, Credentials>::new(config);
    let mut status = tokio::time::interval(STATUS_EVERY);
    let emotes = ThirdParty::new(settings.emotes.clone());
    let badges = Arc::new(Badges::default());
    {
        let (b, a) = (badges.clone(), auth.clone());
        tokio::spawn(async move { b.load_global(&a).await });
    }
    let mut reader = Reader {
        mapper: Mapper::default(),
        emotes: emotes.clone(),
        badges,
        auth,
        covered,
    };
    let mut refresh = tokio::time::interval(Duration::from_secs(settings.emotes.refresh_s.max(60)));
    apply(&client, &wanted.borrow_and_update());
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = wanted.changed() => {
                if changed.is_err() { break }
                apply(&client, &wanted.borrow_and_update());
            }
            message = incoming.recv() => {
                let Some(first) = message else { break };
                // What else has already arrived goes with it: a burst of chat is written to the
                // log in one transaction, not one per line.
                let mut events = Vec::new();
                let mut next = Some(first);
                let mut taken = 0;
                while let Some(message) = next.take() {
                    reader.read(&message, &mut events);
                    taken += 1;
                    if taken < BURST {
                        next = incoming.try_recv().ok();
                    }
                }
                publisher.publish_all_or_log(events);
            }
            _ = status.tick() => {
                let set = wanted.borrow().clone();
                report(publisher.status(), set, &client).await;
            }
            _ = refresh.tick(), if emotes.enabled() => {
                let e = emotes.clone();
                tokio::spawn(async move { e.refresh_global().await });
            }
        }
    }
}

/// Most messages taken from the connection at once (what had already arrived).
const BURST: usize = 256;

/// Turns what the chat connection delivers into events.
struct Reader {
    mapper: Mapper,
    emotes: Arc<ThirdParty>,
    badges: Arc<Badges>,
    auth: Arc<Auth>,
    covered: Arc<super::Covered>,
}

impl Reader {
    /// Appends `message`'s events to `out`, and loads the emotes and badges of a room seen for
    /// the first time.
    fn read(&mut self, message: &ServerMessage, out: &mut Vec<crate::event::Event>) {
        let room = match message {
            ServerMessage::Join(j) => {
                tracing::info!(channel = %j.channel_login, "joined chat");
                None
            }
            ServerMessage::RoomState(r) => Some(r.channel_id.clone()),
            ServerMessage::Privmsg(m) => Some(m.channel_id.clone()),
            _ => None,
        };
        if let Some(room) = &room
            && self.emotes.needs(room)
        {
            let (e, room) = (self.emotes.clone(), room.clone());
            tokio::spawn(async move { e.refresh_room(&room).await });
        }
        if let Some(room) = &room
            && !self.badges.known(room)
        {
            let (b, a, room) = (self.badges.clone(), self.auth.clone(), room.clone());
            tokio::spawn(async move { b.load_room(&a, &room).await });
        }
        let emotes = &self.emotes;
        for mut event in self
            .mapper
            .map(message, |room, els| emotes.apply(room, els))
        {
            // While EventSub covers the channel, it is the alert source: chat's notices of the
            // same subs and raids would alert twice.
            if !event.kind.is_chat()
                && event.kind != crate::event::Kind::Announcement
                && self.covered.contains(&event.channel)
            {
                continue;
            }
            if let Some(room) = &room
                && event.kind == crate::event::Kind::ChatMessage
            {
                self.badges.apply(room, &mut event);
            }
            out.push(event);
        }
    }
}

fn apply<T: Transport>(
    client: &TwitchIRCClient<T, Credentials>,
    wanted: &std::collections::BTreeSet<String>,
) {
    // Chats of other platforms read on demand have channels of their own (`kick.slug`).
    let set: HashSet<String> = wanted
        .iter()
        .filter(|c| crate::event::valid_channel(c))
        .cloned()
        .collect();
    if let Err(e) = client.set_wanted_channels(set) {
        tracing::warn!("cannot join chat: {e}");
    }
}

/// Tells `status` which of the `wanted` channels are joined.
async fn report<T: Transport>(
    status: &Status,
    wanted: std::collections::BTreeSet<String>,
    client: &TwitchIRCClient<T, Credentials>,
) {
    let wanted: Vec<String> = wanted
        .into_iter()
        .filter(|c| crate::event::valid_channel(c))
        .collect();
    if wanted.is_empty() {
        status.set(SOURCE, "idle", "no channel is wanted");
        return;
    }
    let mut joined = Vec::new();
    for channel in &wanted {
        if client.get_channel_status(channel.clone()).await.1 {
            joined.push(format!("#{channel}"));
        }
    }
    if joined.len() == wanted.len() {
        status.set(
            SOURCE,
            "connected",
            format!("reading {}", joined.join(", ")),
        );
    } else {
        status.set(
            SOURCE,
            "connecting",
            format!("joined {} of {} channels", joined.len(), wanted.len()),
        );
    }
}
