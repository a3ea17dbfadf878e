//! What Kick's two realtime protocols share: the socket (with the Origin and browser agent Kick
//! requires), how a session ends, and publishing a decoded event once.

use std::time::Duration;

use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::event::Platform;
use crate::platforms::source::{BROWSER_UA, Decoded, Source, failed};

/// The Origin Kick's realtime sockets require.
pub const ORIGIN: &str = "https://kick.com";

/// Why a session ended.
#[derive(Debug)]
pub enum End {
    Cancelled,
    /// Kick refused us for good (bad token, banned, too many connections): wait long, and
    /// come back as a new client.
    Refused(String),
    Failed(String),
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn connect(url: &str) -> Result<Socket, String> {
    let mut request = url.into_client_request().map_err(|e| failed(url, &e))?;
    let headers = request.headers_mut();
    headers.insert("origin", http::HeaderValue::from_static(ORIGIN));
    headers.insert("user-agent", http::HeaderValue::from_static(BROWSER_UA));
    let (socket, _) = tokio::time::timeout(
        Duration::from_secs(15),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .map_err(|_| format!("{url}: no answer"))?
    .map_err(|e| failed(url, &e))?;
    Ok(socket)
}

pub fn publish(source: &Source, decoded: Decoded) {
    source.publish_decoded(Platform::Kick, decoded);
}
