//! The Twitch chat source on the `twitch-irc` crate: joins the wanted channels (anonymously:
//! reading chat needs no account), maps what arrives into events, and leaves channels nobody
//! watches. Reconnecting after a dropped connection or a RECONNECT, and rejoining, is the
//! crate's; a line it cannot parse is logged and skipped.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use twitch_irc::login::StaticLoginCredentials;
use twitch_irc::transport::Transport;
use twitch_irc::transport::tcp::{MakeConnection, TCPTransport, TCPTransportConnectError};
use twitch_irc::{ClientConfig, SecureTCPTransport, TwitchIRCClient};

use super::irc::Mapper;
use crate::app::App;

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
    type Socket = tokio::net::TcpStream;

    async fn new_socket() -> Result<Self::Socket, TCPTransportConnectError> {
        let addr = ENDPOINT
            .read()
            .ok()
            .and_then(|a| a.clone())
            .unwrap_or_else(|| "127.0.0.1:6667".into());
        let socket = tokio::net::TcpStream::connect(addr).await?;
        let _ = socket.set_nodelay(true);
        Ok(socket)
    }
}

/// Runs until shutdown.
pub async fn run(app: Arc<App>, shutdown: CancellationToken) {
    match app.config.twitch.endpoints.irc.clone() {
        Some(addr) => {
            if let Ok(mut endpoint) = ENDPOINT.write() {
                *endpoint = Some(addr.clone());
            }
            app.sources
                .set(SOURCE, "connecting", format!("plain TCP to {addr}"));
            run_with::<TCPTransport<Endpoint>>(app, shutdown).await;
        }
        None => {
            app.sources
                .set(SOURCE, "connecting", "irc.chat.twitch.tv (TLS)");
            run_with::<SecureTCPTransport>(app, shutdown).await;
        }
    }
}

async fn run_with<T: Transport>(app: Arc<App>, shutdown: CancellationToken) {
    let mut config = ClientConfig::new_simple(StaticLoginCredentials::anonymous());
    // Reconnect promptly after a drop (the default waits 2 s between new connections).
    config.new_connection_every = Duration::from_millis(200);
    config.connect_timeout = Duration::from_secs(10);
    let (mut incoming, client) = TwitchIRCClient::<T, StaticLoginCredentials>::new(config);
    let mut wanted = app.channels.watch();
    let mut mapper = Mapper::default();
    let mut status = tokio::time::interval(STATUS_EVERY);
    apply(&client, &wanted.borrow_and_update());
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = wanted.changed() => {
                if changed.is_err() { break }
                apply(&client, &wanted.borrow_and_update());
            }
            message = incoming.recv() => {
                let Some(message) = message else { break };
                if let twitch_irc::message::ServerMessage::Join(j) = &message {
                    tracing::info!(channel = %j.channel_login, "joined chat");
                }
                for event in mapper.map(&message) {
                    app.publish(event);
                }
            }
            _ = status.tick() => report(&app, &client).await,
        }
    }
    app.sources.set(SOURCE, "stopped", "shut down");
}

fn apply<T: Transport>(
    client: &TwitchIRCClient<T, StaticLoginCredentials>,
    wanted: &std::collections::BTreeSet<String>,
) {
    let set: HashSet<String> = wanted.iter().cloned().collect();
    if let Err(e) = client.set_wanted_channels(set) {
        tracing::warn!("cannot join chat: {e}");
    }
}

async fn report<T: Transport>(app: &App, client: &TwitchIRCClient<T, StaticLoginCredentials>) {
    let wanted = app.channels.wanted();
    if wanted.is_empty() {
        app.sources.set(SOURCE, "idle", "no channel is wanted");
        return;
    }
    let mut joined = Vec::new();
    for channel in &wanted {
        if client.get_channel_status(channel.clone()).await.1 {
            joined.push(format!("#{channel}"));
        }
    }
    if joined.len() == wanted.len() {
        app.sources.set(
            SOURCE,
            "connected",
            format!("reading {}", joined.join(", ")),
        );
    } else {
        app.sources.set(
            SOURCE,
            "connecting",
            format!("joined {} of {} channels", joined.len(), wanted.len()),
        );
    }
}
