//! The legacy Pusher socket: subscribe to the channel's feeds, answer pings, pass events on.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::map::decode;
use super::socket::{End, connect, publish};
use crate::platforms::source::Source;

/// A Pusher socket with no frame for this long is dead (its activity timeout is 120 s).
const PUSHER_SILENCE: Duration = Duration::from_secs(150);

/// The legacy Pusher socket.
pub async fn pusher(
    source: &Source,
    url: &str,
    feeds: &[String],
    token: &CancellationToken,
) -> End {
    let mut ws = match connect(url).await {
        Ok(ws) => ws,
        Err(e) => return End::Failed(e),
    };
    let mut subscribed = false;
    loop {
        let frame = tokio::select! {
            _ = token.cancelled() => {
                let _ = ws.close(None).await;
                return End::Cancelled;
            }
            f = tokio::time::timeout(PUSHER_SILENCE, ws.next()) => f,
        };
        let text = match frame {
            Err(_) => return End::Failed("the Pusher socket went silent".into()),
            Ok(None) => return End::Failed("the Pusher socket closed".into()),
            Ok(Some(Err(e))) => return End::Failed(format!("the Pusher socket failed: {e}")),
            Ok(Some(Ok(Message::Text(t)))) => t.to_string(),
            Ok(Some(Ok(Message::Close(c)))) => {
                return End::Failed(format!("the Pusher socket closed: {c:?}"));
            }
            Ok(Some(Ok(_))) => continue,
        };
        let Ok(frame) = serde_json::from_str::<Value>(&text) else {
            tracing::warn!(
                source = source.name,
                "malformed Pusher frame skipped: {text:.200}"
            );
            continue;
        };
        let event = frame
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match event {
            "pusher:connection_established" if !subscribed => {
                for feed in feeds {
                    let sub =
                        json!({"event": "pusher:subscribe", "data": {"auth": "", "channel": feed}});
                    if ws.send(Message::text(sub.to_string())).await.is_err() {
                        return End::Failed("the Pusher socket closed".into());
                    }
                }
                subscribed = true;
                source.set(
                    "connected",
                    format!("reading chat over Pusher ({})", feeds[0]),
                );
            }
            "pusher:ping" => {
                let pong = json!({"event": "pusher:pong", "data": {}});
                if ws.send(Message::text(pong.to_string())).await.is_err() {
                    return End::Failed("the Pusher socket closed".into());
                }
            }
            "pusher:error" => {
                let code = frame
                    .pointer("/data/code")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                // 4000-4099: do not reconnect as is.
                if (4000..4100).contains(&code) {
                    return End::Refused(format!("Pusher error {code}"));
                }
            }
            e if e.starts_with("pusher") => {}
            e => {
                if let Some(decoded) = decode(e, frame.get("data").unwrap_or(&Value::Null)) {
                    publish(source, decoded);
                }
            }
        }
    }
}
