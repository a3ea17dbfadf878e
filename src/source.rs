//! What every event source is handed: a [`Publisher`] to publish with, the [`Status`] board it
//! reports its connection state to, one [`Backoff`] for its retries (from [`crate::backoff`],
//! which the store's reader uses too) and [`sleep_or_cancel`] for its waits. Sources (Twitch chat, EventSub, YouTube, Kick, the demo) get these narrow
//! handles and never the whole server, so each can run against its fake with a bare bus.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use crate::backoff::{Backoff, HEALTHY};
use crate::bus::{Bus, Item};
use crate::event::Event;
use crate::store::StoreError;

/// Connection state of each event source, for `/health` and the dashboard. Every change is
/// logged once, so the log reads as a timeline of the sources.
pub struct Status {
    states: RwLock<BTreeMap<String, SourceState>>,
    /// Bumped on every change, for those who follow a source (the chat socket).
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            states: RwLock::default(),
            changed: tokio::sync::watch::Sender::new(0),
        }
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SourceState {
    pub state: String,
    pub detail: String,
    pub since_ms: u64,
    /// The last failure ("error" or "backoff" state), kept after the source recovers so the
    /// dashboard can still say what went wrong, and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_ms: Option<u64>,
    /// What the source reads right now, when it has a name (YouTube's live video id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live: Option<String>,
}

impl Status {
    pub fn new() -> Arc<Status> {
        Arc::new(Status::default())
    }

    /// Records `source`'s state; a failure state ("error", "backoff") is also kept as its
    /// last error.
    pub fn set(&self, source: &str, state: &str, detail: impl Into<String>) {
        let detail = detail.into();
        let mut states = self.states.write();
        let changed = states
            .get(source)
            .is_none_or(|s| s.state != state || s.detail != detail);
        if !changed {
            return;
        }
        let live = states.get(source).and_then(|s| s.live.clone());
        tracing::info!(source, state, "{detail}");
        let now = crate::event::now_ms();
        let (mut last_error, mut last_error_ms) = states
            .get(source)
            .map(|s| (s.last_error.clone(), s.last_error_ms))
            .unwrap_or_default();
        if matches!(state, "error" | "backoff") {
            last_error = Some(detail.clone());
            last_error_ms = Some(now);
        }
        states.insert(
            source.to_string(),
            SourceState {
                state: state.to_string(),
                detail,
                since_ms: now,
                last_error,
                last_error_ms,
                live,
            },
        );
        drop(states);
        self.changed.send_modify(|n| *n += 1);
    }

    /// Names what `source` reads now (or `None` once it reads nothing).
    pub fn set_live(&self, source: &str, live: Option<String>) {
        if let Some(s) = self.states.write().get_mut(source) {
            s.live = live;
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// Changes whenever any source's state does.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// One source's state, if it ever reported.
    pub fn get(&self, source: &str) -> Option<SourceState> {
        self.states.read().get(source).cloned()
    }

    pub fn snapshot(&self) -> BTreeMap<String, SourceState> {
        self.states.read().clone()
    }
}

/// What is told of every event the bus accepts, before anyone is sent it (chat stats, goals).
pub type Observe = Arc<dyn Fn(&Event) + Send + Sync>;

/// The callback up to the stats for what counts but is no event: `(channel, platform, likes)`.
pub type Tally = Arc<dyn Fn(&str, &str, u64) + Send + Sync>;

/// Publishes events from any source onto the bus. Cheap to clone: every source holds one.
#[derive(Clone)]
pub struct Publisher {
    bus: Arc<Bus>,
    status: Arc<Status>,
    observe: Observe,
    tally: Tally,
}

impl Publisher {
    /// A publisher onto `bus`; `observe` is the callback up to derived state (it sees each
    /// event once it is stored, and never one that was refused).
    pub fn new(bus: Arc<Bus>, status: Arc<Status>, observe: Observe) -> Publisher {
        Publisher {
            bus,
            status,
            observe,
            tally: Arc::new(|_, _, _| {}),
        }
    }

    /// This publisher with `tally` told of likes (TikTok's), which count in the stats only.
    pub fn with_tally(mut self, tally: Tally) -> Publisher {
        self.tally = tally;
        self
    }

    /// Counts `likes` on `platform` for `channel`'s stats.
    pub fn tally_likes(&self, channel: &str, platform: &str, likes: u64) {
        (self.tally)(channel, platform, likes);
    }

    /// A publisher with no derived state, for a source tested on its own.
    pub fn bare(bus: Arc<Bus>, status: Arc<Status>) -> Publisher {
        Publisher::new(bus, status, Arc::new(|_| {}))
    }

    /// Stores `event`, updates derived state, then sends it. Returns the stamped event and how
    /// many subscribers were live.
    pub fn publish(&self, mut event: Event) -> Result<(Arc<Item>, usize), StoreError> {
        crate::money::annotate(&mut event);
        self.bus.publish_with(event, |e| (self.observe)(e))
    }

    /// Publishes from a source that cannot answer anyone: a refusal is logged and shown.
    pub fn publish_or_log(&self, event: Event) {
        if let Err(e) = self.publish(event) {
            tracing::error!("event not published: {e}");
            self.status.set("store", "error", e.to_string());
        }
    }

    /// [`Publisher::publish_or_log`] for events that arrived together, in order, written to the
    /// log at once (see [`Bus::publish_all_with`]).
    pub fn publish_all_or_log(&self, mut events: Vec<Event>) {
        events.iter_mut().for_each(crate::money::annotate);
        if let Err(e) = self.bus.publish_all_with(events, |e| (self.observe)(e)) {
            tracing::error!("events not published: {e}");
            self.status.set("store", "error", e.to_string());
        }
    }

    /// The status board this publisher's sources report to.
    pub fn status(&self) -> &Arc<Status> {
        &self.status
    }

    pub fn bus(&self) -> &Arc<Bus> {
        &self.bus
    }
}

/// Sleeps `d` unless `token` is cancelled first (then `false`).
pub async fn sleep_or_cancel(d: Duration, token: &CancellationToken) -> bool {
    tokio::select! {
        _ = token.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_keeps_the_last_error_after_recovery() {
        let s = Status::default();
        s.set("x", "error", "dns");
        s.set("x", "connected", "ok");
        let state = s.get("x").expect("reported");
        assert_eq!(state.state, "connected");
        assert_eq!(state.last_error.as_deref(), Some("dns"));
    }
}
