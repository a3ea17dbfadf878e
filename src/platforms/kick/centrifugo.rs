//! Kick's Centrifugo socket: connect with a token from Kick's realtime API, subscribe to the
//! channel's feeds (again when the server asks), and pass their publications on.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::map::decode;
use super::socket::{End, ORIGIN, connect, publish};
use crate::platforms::source::{Source, failed};

/// Added to Centrifugo's ping interval before its silence means a dead socket.
const PING_GRACE: Duration = Duration::from_secs(20);

/// The current Centrifugo socket.
#[allow(clippy::too_many_arguments)]
pub async fn centrifugo(
    source: &Source,
    http: &reqwest::Client,
    realtime: &str,
    url: &str,
    client_id: &str,
    feeds: &[String],
    token: &CancellationToken,
) -> End {
    let auth = match centrifugo_token(http, realtime, client_id).await {
        Ok(t) => t,
        Err(e) => return End::Failed(e),
    };
    let mut ws = match connect(url).await {
        Ok(ws) => ws,
        Err(e) => return End::Failed(e),
    };
    let mut next_id = 1u64;
    let connect = json!({"id": next_id, "connect": {"token": auth, "name": "js"}});
    if ws.send(Message::text(connect.to_string())).await.is_err() {
        return End::Failed("the Centrifugo socket closed".into());
    }
    let mut silence = Duration::from_secs(25) + PING_GRACE;
    let mut refresh_at: Option<Instant> = None;
    loop {
        let refresh_in = refresh_at.map_or(Duration::from_secs(3600), |t| {
            t.saturating_duration_since(Instant::now())
        });
        let frame = tokio::select! {
            _ = token.cancelled() => {
                let _ = ws.close(None).await;
                return End::Cancelled;
            }
            _ = tokio::time::sleep(refresh_in), if refresh_at.is_some() => {
                refresh_at = None;
                match centrifugo_token(http, realtime, client_id).await {
                    Ok(t) => {
                        next_id += 1;
                        let refresh = json!({"id": next_id, "refresh": {"token": t}});
                        if ws.send(Message::text(refresh.to_string())).await.is_err() {
                            return End::Failed("the Centrifugo socket closed".into());
                        }
                    }
                    Err(e) => return End::Failed(e),
                }
                continue;
            }
            f = tokio::time::timeout(silence, ws.next()) => f,
        };
        let text = match frame {
            Err(_) => return End::Failed("the Centrifugo socket missed its pings".into()),
            Ok(None) => return End::Failed("the Centrifugo socket closed".into()),
            Ok(Some(Err(e))) => return End::Failed(format!("the Centrifugo socket failed: {e}")),
            Ok(Some(Ok(Message::Text(t)))) => t.to_string(),
            Ok(Some(Ok(Message::Close(c)))) => {
                let code = c.as_ref().map_or(0, |c| u16::from(c.code));
                let why = format!(
                    "closed with {code} {}",
                    c.as_ref().map(|c| c.reason.to_string()).unwrap_or_default()
                );
                return if (3500..4000).contains(&code) || (4500..5000).contains(&code) {
                    End::Refused(why)
                } else {
                    End::Failed(format!("the Centrifugo socket {why}"))
                };
            }
            Ok(Some(Ok(_))) => continue,
        };
        // One frame may hold several replies, one per line.
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let Ok(reply) = serde_json::from_str::<Value>(line) else {
                tracing::warn!(
                    source = source.name,
                    "malformed Centrifugo frame skipped: {line:.200}"
                );
                continue;
            };
            if reply.as_object().is_some_and(|o| o.is_empty()) {
                // A ping: answered with an empty object.
                if ws.send(Message::text("{}")).await.is_err() {
                    return End::Failed("the Centrifugo socket closed".into());
                }
                continue;
            }
            if let Some(error) = reply.get("error") {
                let code = error.get("code").and_then(Value::as_u64).unwrap_or(0);
                let message = error.get("message").and_then(Value::as_str).unwrap_or("");
                if reply.get("id").and_then(Value::as_u64) == Some(1) {
                    return End::Refused(format!("connect error {code} {message}"));
                }
                tracing::warn!(source = source.name, "Centrifugo error {code} {message}");
                continue;
            }
            if let Some(connected) = reply.get("connect") {
                if let Some(ping) = connected.get("ping").and_then(Value::as_u64) {
                    silence = Duration::from_secs(ping) + PING_GRACE;
                }
                if connected.get("expires").and_then(Value::as_bool) == Some(true)
                    && let Some(ttl) = connected.get("ttl").and_then(Value::as_u64)
                {
                    refresh_at =
                        Some(Instant::now() + Duration::from_secs(ttl.saturating_sub(120).max(1)));
                }
                for feed in feeds {
                    next_id += 1;
                    let sub = json!({"id": next_id, "subscribe": {"channel": feed, "flag": 1}});
                    if ws.send(Message::text(sub.to_string())).await.is_err() {
                        return End::Failed("the Centrifugo socket closed".into());
                    }
                }
                source.set(
                    "connected",
                    format!("reading chat over Centrifugo ({})", feeds[0]),
                );
                continue;
            }
            if let Some(refreshed) = reply.get("refresh")
                && let Some(ttl) = refreshed.get("ttl").and_then(Value::as_u64)
            {
                refresh_at =
                    Some(Instant::now() + Duration::from_secs(ttl.saturating_sub(120).max(1)));
                continue;
            }
            // The server dropped one subscription; codes 2500-2999 ask for it again.
            if let Some(unsub) = reply.pointer("/push/unsub") {
                let code = unsub.get("code").and_then(Value::as_u64).unwrap_or(0);
                let channel = reply.pointer("/push/channel").and_then(Value::as_str);
                if let (true, Some(channel)) = ((2500..3000).contains(&code), channel) {
                    next_id += 1;
                    let sub = json!({"id": next_id, "subscribe": {"channel": channel, "flag": 1}});
                    if ws.send(Message::text(sub.to_string())).await.is_err() {
                        return End::Failed("the Centrifugo socket closed".into());
                    }
                } else {
                    tracing::warn!(
                        source = source.name,
                        "Kick ended the subscription to {channel:?} ({code})"
                    );
                }
                continue;
            }
            if let Some(data) = reply.pointer("/push/pub/data") {
                let event = data
                    .get("event")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if let Some(decoded) = decode(event, data.get("data").unwrap_or(&Value::Null)) {
                    publish(source, decoded);
                }
            }
        }
    }
}

async fn centrifugo_token(
    http: &reqwest::Client,
    realtime: &str,
    client_id: &str,
) -> Result<String, String> {
    let url = format!("{realtime}/auth/connection");
    let r = http
        .post(&url)
        .header("origin", ORIGIN)
        .json(&json!({"client_id": client_id}))
        .send()
        .await
        .map_err(|e| failed(&url, &e))?;
    if !r.status().is_success() {
        return Err(format!("{url} answered {}", r.status()));
    }
    let body: Value = r.json().await.map_err(|e| failed(&url, &e))?;
    body.pointer("/data/token")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{url} gave no token"))
}
