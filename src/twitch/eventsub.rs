//! EventSub over WebSocket: one session for all channels, subscriptions created after
//! `session_welcome` for every wanted channel, notifications mapped into our events.
//!
//! Protocol points (https://dev.twitch.tv/docs/eventsub/handling-websocket-events/):
//! - silence longer than `keepalive_timeout_seconds` means the connection is dead: a new
//!   session is started and everything subscribed again (Twitch replays nothing);
//! - on `session_reconnect` the new URL is connected at once and the old socket is closed only
//!   after the new welcome; subscriptions carry over, so nothing is subscribed again;
//! - delivery is at-least-once: `message_id`s already seen are dropped, and so is anything
//!   older than ten minutes (replay protection).

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::Handles;
use super::auth::Auth;
use super::helix::{self, Helix};
use super::notification::{TYPES, condition, map, parse_time, scope_of};
use crate::event::{Event, Kind, Platform};
use crate::seen::Seen;
use crate::source::{Backoff, sleep_or_cancel};

const SOURCE: &str = "twitch-eventsub";
/// Twitch's replay-protection window.
const MAX_AGE_MS: i64 = 10 * 60 * 1000;
/// Message ids remembered for de-duplication: far more than arrive in the ten minutes a
/// redelivery can take for one streamer.
pub const SEEN: usize = 4096;
/// Slack on top of the keepalive window before a silent connection counts as dead.
const KEEPALIVE_SLACK: Duration = Duration::from_secs(1);
/// After moving to a new session, what the old socket already carried is still read for this
/// long (then it is closed), so an event sent just before the switch is not lost.
const DRAIN: Duration = Duration::from_secs(2);
/// Between two tries for an app token (webhooks), when Twitch could not give one.
const APP_TOKEN_RETRY: Duration = Duration::from_secs(30);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Welcome {
    id: String,
    keepalive: Duration,
}

/// The back-off between sessions: 1 s doubling to a minute, starting over once a session
/// has lasted `source::HEALTHY`.
pub fn backoff() -> Backoff {
    Backoff::new(Duration::from_secs(1), Duration::from_secs(60))
}

/// Where Twitch delivers: a WebSocket session of ours, or (with a public address) webhooks to
/// `/eventsub/callback` signed with `secret`.
#[derive(Clone)]
pub enum Delivery {
    WebSocket,
    Webhook { public_url: String, secret: String },
}

/// Runs EventSub for the channels in `twitch.sourced` until shutdown, reconnecting with
/// [`backoff`].
pub async fn run(twitch: Handles, delivery: Delivery, shutdown: CancellationToken) {
    let Some(helix) = twitch.auth.helix().cloned() else {
        return;
    };
    if let Delivery::Webhook { public_url, secret } = delivery {
        webhooks(&twitch, &helix, &public_url, &secret, &shutdown).await;
        return;
    }
    let status = twitch.publisher.status().clone();
    let seen = Seen::new(SEEN);
    let mut backoff = backoff();
    let mut cleaned = false;
    let mut auth_changed = twitch.auth.watch();
    loop {
        if twitch.auth.token().is_none() {
            status.set(SOURCE, "waiting", "needs a Twitch login");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                r = auth_changed.changed() => if r.is_err() { return },
            }
            continue;
        }
        if !cleaned {
            cleaned = true;
            clean_stale(&helix, &twitch.auth).await;
        }
        let url = twitch.config.endpoints.eventsub_ws.clone();
        match session(&twitch, &helix, &url, &seen, &mut backoff, &shutdown).await {
            Ok(()) => return,
            Err(e) => {
                twitch.covered.clear();
                let wait = backoff.fail();
                status.set(
                    SOURCE,
                    "reconnecting",
                    format!("{e}; again in {:.1}s", wait.as_secs_f64()),
                );
                if !sleep_or_cancel(wait, &shutdown).await {
                    return;
                }
            }
        }
    }
}

/// With a public address, Twitch delivers to `/eventsub/callback` instead of a WebSocket:
/// subscriptions are made with an app token and follow the wanted channels the same way.
async fn webhooks(
    twitch: &Handles,
    helix: &Helix,
    public: &str,
    secret: &str,
    shutdown: &CancellationToken,
) {
    let Some(oauth) = twitch.auth.oauth.clone() else {
        return;
    };
    let status = twitch.publisher.status();
    let callback = format!("{}/eventsub/callback", public.trim_end_matches('/'));
    let token = loop {
        match oauth.app_token().await {
            Ok(t) => break t.access_token,
            Err(e) => {
                status.set(SOURCE, "error", format!("no app token for webhooks: {e}"));
                if !sleep_or_cancel(APP_TOKEN_RETRY, shutdown).await {
                    return;
                }
            }
        }
    };
    // A clean slate: this callback's subscriptions from an earlier run are removed, never
    // duplicated.
    if let Ok(list) = helix.subscriptions(&token).await {
        for s in list
            .iter()
            .filter(|s| s["transport"]["callback"] == callback.as_str())
        {
            let _ = helix
                .unsubscribe(&token, s["id"].as_str().unwrap_or_default())
                .await;
        }
    }
    let transport = json!({"method": "webhook", "callback": callback, "secret": secret});
    let mut subscriptions = Subscriptions::default();
    let mut wanted = twitch.sourced.clone();
    loop {
        let set = wanted.borrow_and_update().clone();
        subscriptions
            .reconcile(twitch, helix, &token, &transport, &set)
            .await;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = wanted.changed() => if r.is_err() { return },
        }
    }
}

/// Deletes WebSocket subscriptions a previous run left behind (disabled when its session
/// ended), so they never pile up against the subscription limits.
async fn clean_stale(helix: &Helix, auth: &Auth) {
    let Some(token) = auth.token() else { return };
    match helix.subscriptions(&token.access_token).await {
        Ok(list) => {
            for s in list {
                if s["transport"]["method"] == "websocket" && s["status"] != "enabled" {
                    let id = s["id"].as_str().unwrap_or_default();
                    if let Err(e) = helix.unsubscribe(&token.access_token, id).await {
                        tracing::warn!("cannot delete stale subscription {id}: {e}");
                    }
                }
            }
        }
        Err(e) => tracing::warn!("cannot list EventSub subscriptions: {e}"),
    }
}

async fn connect(url: &str) -> Result<(Ws, Welcome), String> {
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(15),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .map_err(|_| format!("connecting to {url} timed out"))?
    .map_err(|e| format!("cannot connect to {url}: {e}"))?;
    // The welcome comes first; Twitch gives it within a second or two.
    let first = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("closed before the welcome".to_string()),
            }
        }
    })
    .await
    .map_err(|_| "no session_welcome within 15 s".to_string())??;
    let msg: Value = serde_json::from_str(&first).map_err(|e| format!("bad welcome: {e}"))?;
    if msg["metadata"]["message_type"] != "session_welcome" {
        return Err(format!(
            "expected session_welcome, got {}",
            msg["metadata"]["message_type"]
        ));
    }
    let session = &msg["payload"]["session"];
    let welcome = Welcome {
        id: session["id"].as_str().unwrap_or_default().to_string(),
        keepalive: Duration::from_secs(session["keepalive_timeout_seconds"].as_u64().unwrap_or(10)),
    };
    Ok((ws, welcome))
}

type Pending = Pin<Box<dyn Future<Output = Result<(Ws, Welcome), String>> + Send>>;

async fn session(
    twitch: &Handles,
    helix: &Helix,
    url: &str,
    seen: &Seen,
    backoff: &mut Backoff,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let status = twitch.publisher.status();
    let (mut ws, welcome) = connect(url).await?;
    backoff.up();
    let mut keepalive = welcome.keepalive;
    let session_id = welcome.id;
    status.set(SOURCE, "connected", format!("session {session_id}"));
    let transport = json!({"method": "websocket", "session_id": session_id});
    let mut wanted = twitch.sourced.clone();
    let mut subscriptions = Subscriptions::default();
    let set = wanted.borrow_and_update().clone();
    subscriptions
        .reconcile_user(twitch, helix, &transport, &set)
        .await;
    let mut pending: Option<Pending> = None;
    let mut draining: Option<(Ws, tokio::time::Instant)> = None;
    loop {
        tokio::select! {
            // The old socket first: its events were sent before the new session's.
            biased;
            old = async {
                let (old, until) = draining.as_mut().expect("guarded");
                tokio::time::timeout_at(*until, old.next()).await
            }, if draining.is_some() => {
                match old {
                    Ok(Some(Ok(Message::Text(t)))) => {
                        handle(twitch, &t, seen);
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => {
                        if let Some((mut old, _)) = draining.take() {
                            let _ = old.close(None).await;
                        }
                    }
                }
            }
            _ = shutdown.cancelled() => {
                let _ = ws.close(None).await;
                return Ok(());
            }
            frame = tokio::time::timeout(keepalive + KEEPALIVE_SLACK, ws.next()) => {
                let text = match frame {
                    Err(_) => return Err(format!("nothing for {keepalive:?} (keepalive): connection presumed dead")),
                    Ok(None) => return Err("connection closed".into()),
                    Ok(Some(Err(e))) => return Err(format!("connection failed: {e}")),
                    Ok(Some(Ok(Message::Close(frame)))) => return Err(format!("closed by Twitch: {frame:?}")),
                    Ok(Some(Ok(Message::Text(t)))) => t.to_string(),
                    Ok(Some(Ok(_))) => continue,
                };
                if let Some(next) = handle(twitch, &text, seen) {
                    tracing::info!("EventSub session moving to {next}");
                    pending = Some(Box::pin(async move { connect(&next).await }));
                }
            }
            moved = async { pending.as_mut().expect("guarded").await }, if pending.is_some() => {
                pending = None;
                let (new_ws, welcome) = moved?;
                // Only now the old socket goes: events kept flowing on it until the welcome,
                // and what it already carried is still read for a moment.
                let old = std::mem::replace(&mut ws, new_ws);
                draining = Some((old, tokio::time::Instant::now() + DRAIN));
                keepalive = welcome.keepalive;
                status.set(SOURCE, "connected", format!("session {} (reconnected)", welcome.id));
            }
            changed = wanted.changed() => {
                if changed.is_err() { return Ok(()) }
                let set = wanted.borrow_and_update().clone();
                subscriptions.reconcile_user(twitch, helix, &transport, &set).await;
            }
        }
    }
}

/// One text frame. Returns the reconnect URL when Twitch asks to move.
fn handle(twitch: &Handles, text: &str, seen: &Seen) -> Option<String> {
    let Ok(msg) = serde_json::from_str::<Value>(text) else {
        tracing::warn!("skipped a malformed EventSub frame: {text:.200}");
        return None;
    };
    let meta = &msg["metadata"];
    match meta["message_type"].as_str().unwrap_or_default() {
        "notification" => {
            let id = meta["message_id"].as_str().unwrap_or_default();
            if !seen.first_time(id) {
                tracing::debug!(id, "duplicate EventSub message dropped");
                return None;
            }
            if let Some(at) = meta["message_timestamp"].as_str().and_then(parse_time)
                && crate::event::now_ms() as i64 - at > MAX_AGE_MS
            {
                tracing::warn!(id, "EventSub message older than ten minutes dropped");
                return None;
            }
            let kind = meta["subscription_type"].as_str().unwrap_or_default();
            match map(kind, &msg["payload"]["event"]) {
                Some(event) => twitch.publisher.publish_or_log(event),
                None => tracing::debug!(kind, "EventSub notification not shown by overlays"),
            }
            None
        }
        "session_reconnect" => msg["payload"]["session"]["reconnect_url"]
            .as_str()
            .map(str::to_string),
        "revocation" => {
            let sub = &msg["payload"]["subscription"];
            twitch.publisher.status().set(
                SOURCE,
                "revoked",
                format!(
                    "Twitch revoked {} ({})",
                    sub["type"].as_str().unwrap_or("?"),
                    sub["status"].as_str().unwrap_or("?")
                ),
            );
            None
        }
        _ => None,
    }
}

/// The subscription ids of each channel subscribed over one transport (a WebSocket session,
/// or the webhook callback).
#[derive(Default)]
struct Subscriptions(HashMap<String, Vec<String>>);

impl Subscriptions {
    /// [`Subscriptions::reconcile`] with the logged-in user's token (WebSocket sessions).
    async fn reconcile_user(
        &mut self,
        twitch: &Handles,
        helix: &Helix,
        transport: &Value,
        wanted: &BTreeSet<String>,
    ) {
        let Some(token) = twitch.auth.token() else {
            return;
        };
        self.reconcile(twitch, helix, &token.access_token, transport, wanted)
            .await;
    }

    /// Makes the subscriptions match `wanted`, the one algorithm of both transports: each newly
    /// wanted channel is looked up, seeded with its recent followers when it has no history,
    /// subscribed to every type (reporting the types Twitch refused and the scope each needs)
    /// and marked covered; each channel no longer wanted is unsubscribed and unmarked. A
    /// channel whose lookup failed is tried again on the next change.
    async fn reconcile(
        &mut self,
        twitch: &Handles,
        helix: &Helix,
        token: &str,
        transport: &Value,
        wanted: &BTreeSet<String>,
    ) {
        let status = twitch.publisher.status();
        let me = twitch
            .auth
            .token()
            .and_then(|t| t.user_id)
            .unwrap_or_default();
        let webhook = transport["method"] == "webhook";
        let new: Vec<String> = wanted
            .iter()
            .filter(|c| crate::event::valid_channel(c) && !self.0.contains_key(*c))
            .cloned()
            .collect();
        for channel in &new {
            let user = match helix.user(token, channel).await {
                Ok(Some(u)) => u,
                Ok(None) => {
                    tracing::warn!(channel, "no such Twitch channel");
                    self.0.insert(channel.clone(), Vec::new());
                    continue;
                }
                Err(e) => {
                    status.set(SOURCE, "error", format!("#{channel}: {e}"));
                    continue;
                }
            };
            if !twitch.publisher.bus().has_history(channel)
                && let Some(user_token) = twitch.auth.token()
            {
                seed_followers(twitch, helix, &user_token.access_token, channel, &user.id).await;
            }
            let (ids, missing) =
                subscribe_all(helix, token, channel, &user.id, &me, transport).await;
            let live = match helix.stream(token, channel).await {
                Ok(Some(s)) => format!("live: {}", s["title"].as_str().unwrap_or_default()),
                Ok(None) => "offline".to_string(),
                Err(_) => "live status unknown".to_string(),
            };
            let over = if webhook {
                format!(" to {}", transport["callback"].as_str().unwrap_or_default())
            } else {
                String::new()
            };
            let mut detail = format!("#{channel} ({live}): {} subscriptions{over}", ids.len());
            let state = if !missing.is_empty() {
                // Most types need the broadcaster's own login (or a moderator's): say which.
                detail.push_str(&format!("; not allowed: {}", missing.join("; ")));
                "partial"
            } else if webhook {
                "webhooks"
            } else {
                "connected"
            };
            status.set(SOURCE, state, detail);
            if !ids.is_empty() {
                twitch.covered.insert(channel);
            }
            self.0.insert(channel.clone(), ids);
        }
        let gone: Vec<String> = self
            .0
            .keys()
            .filter(|c| !wanted.contains(*c))
            .cloned()
            .collect();
        for channel in gone {
            for id in self.0.remove(&channel).unwrap_or_default() {
                if let Err(e) = helix.unsubscribe(token, &id).await {
                    tracing::warn!(channel, "cannot unsubscribe: {e}");
                }
            }
            twitch.covered.remove(&channel);
        }
    }
}

/// Followers shown before any live event: a channel with no history gets its ten most recent
/// followers from Helix, oldest first, marked as history (listed, never alerted). Later viewers
/// find them in history and cause no call.
async fn seed_followers(
    twitch: &Handles,
    helix: &Helix,
    token: &str,
    channel: &str,
    broadcaster_id: &str,
) {
    match helix.followers(token, broadcaster_id, 10).await {
        Ok(list) => {
            for f in list.iter().rev() {
                let mut event = Event::new(
                    Platform::Twitch,
                    channel,
                    Kind::Follow,
                    json!({"user_name": f["user_name"], "user_login": f["user_login"], "user_id": f["user_id"], "followed_at": f["followed_at"]}),
                );
                event.history = true;
                if let Some(at) = f["followed_at"].as_str().and_then(parse_time) {
                    event.at = at.max(0) as u64;
                }
                twitch.publisher.publish_or_log(event);
            }
        }
        Err(e) => tracing::warn!(channel, "cannot fetch recent followers: {e}"),
    }
}

/// Subscribes `broadcaster` to every type over `transport`. Returns the subscription ids and,
/// for each type Twitch refused for lack of rights, which scope it needs.
async fn subscribe_all(
    helix: &Helix,
    token: &str,
    channel: &str,
    broadcaster: &str,
    me: &str,
    transport: &Value,
) -> (Vec<String>, Vec<String>) {
    let mut ids = Vec::new();
    let mut missing = Vec::new();
    for (kind, version) in TYPES {
        let condition = condition(kind, broadcaster, me);
        match helix
            .subscribe(token, kind, version, condition, transport.clone())
            .await
        {
            Ok(id) => ids.push(id),
            Err(helix::Error::Forbidden(m)) => missing.push(match scope_of(kind) {
                Some(scope) => format!("{kind} needs {scope} ({m})"),
                None => format!("{kind}: {m}"),
            }),
            Err(helix::Error::Conflict) => {}
            Err(e) => tracing::warn!(channel, kind, "cannot subscribe: {e}"),
        }
    }
    (ids, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_seen_once() {
        let seen = Seen::new(SEEN);
        assert!(seen.first_time("a"));
        assert!(!seen.first_time("a"));
        for i in 0..SEEN {
            seen.first_time(&i.to_string());
        }
        assert!(seen.first_time("a"), "forgotten after SEEN others");
    }
}
