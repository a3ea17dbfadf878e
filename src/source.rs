//! What every event source is handed: a [`Publisher`] to publish with, the [`Status`] board it
//! reports its connection state to, one [`Backoff`] for its retries and [`sleep_or_cancel`]
//! for its waits. Sources (Twitch chat, EventSub, YouTube, Kick, the demo) get these narrow
//! handles and never the whole server, so each can run against its fake with a bare bus.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Item};
use crate::event::Event;
use crate::store::StoreError;

/// Connection state of each event source, for `/health` and the dashboard. Every change is
/// logged once, so the log reads as a timeline of the sources.
#[derive(Default)]
pub struct Status {
    states: RwLock<BTreeMap<String, SourceState>>,
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
            },
        );
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

/// Publishes events from any source onto the bus. Cheap to clone: every source holds one.
#[derive(Clone)]
pub struct Publisher {
    bus: Arc<Bus>,
    status: Arc<Status>,
    observe: Observe,
}

impl Publisher {
    /// A publisher onto `bus`; `observe` is the callback up to derived state (it sees each
    /// event once it is stored, and never one that was refused).
    pub fn new(bus: Arc<Bus>, status: Arc<Status>, observe: Observe) -> Publisher {
        Publisher {
            bus,
            status,
            observe,
        }
    }

    /// A publisher with no derived state, for a source tested on its own.
    pub fn bare(bus: Arc<Bus>, status: Arc<Status>) -> Publisher {
        Publisher::new(bus, status, Arc::new(|_| {}))
    }

    /// Stores `event`, updates derived state, then sends it. Returns the stamped event and how
    /// many subscribers were live.
    pub fn publish(&self, event: Event) -> Result<(Arc<Item>, usize), StoreError> {
        self.bus.publish_with(event, |e| (self.observe)(e))
    }

    /// Publishes from a source that cannot answer anyone: a refusal is logged and shown.
    pub fn publish_or_log(&self, event: Event) {
        if let Err(e) = self.publish(event) {
            tracing::error!("event not published: {e}");
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

/// After this long connected (or answering), a source counts as healthy again: its next
/// failure waits the first delay, not the doubled one of its earlier failures. Long enough
/// that a source which connects and drops at once keeps backing off.
pub const HEALTHY: Duration = Duration::from_secs(60);

/// A source's failures in a row and the wait each one earns: doubling from `first` up to
/// `max`, with ±20 % jitter so many instances do not retry in step. It starts over once the
/// source has been up for [`HEALTHY`]; a long stream with a flaky network never ends up
/// waiting the maximum after every drop.
#[derive(Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    healthy: Duration,
    failures: u32,
    up_since: Option<Instant>,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            healthy: HEALTHY,
            failures: 0,
            up_since: None,
        }
    }

    /// Marks the source as working (connected, or answered). Repeated calls keep the time it
    /// first came up.
    pub fn up(&mut self) {
        if self.up_since.is_none() {
            self.up_since = Some(Instant::now());
        }
    }

    /// Counts a failure and returns the wait before the next attempt.
    pub fn fail(&mut self) -> Duration {
        if let Some(since) = self.up_since.take()
            && since.elapsed() >= self.healthy
        {
            self.failures = 0;
        }
        let wait = delay(self.failures, self.first, self.max);
        self.failures = self.failures.saturating_add(1);
        wait
    }

    /// Whether the last thing that happened was a failure.
    pub fn failing(&self) -> bool {
        self.failures > 0 && self.up_since.is_none()
    }
}

/// The wait after the `attempt`-th failure in a row (from 0), with jitter.
fn delay(attempt: u32, first: Duration, max: Duration) -> Duration {
    let base = first
        .saturating_mul(1u32 << attempt.min(16))
        .min(max)
        .as_secs_f64();
    let jitter = 0.8 + rand::random::<f64>() * 0.4;
    Duration::from_secs_f64(base * jitter)
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

    fn within(d: Duration, base: Duration) -> bool {
        d >= base.mul_f64(0.8) && d <= base.mul_f64(1.2)
    }

    #[tokio::test(start_paused = true)]
    async fn back_off_doubles_to_its_cap_and_starts_over_after_a_healthy_period() {
        let (first, max) = (Duration::from_secs(1), Duration::from_secs(60));
        let mut b = Backoff::new(first, max);
        let waits: Vec<Duration> = (0..8)
            .map(|_| {
                b.up();
                b.fail()
            })
            .collect();
        assert!(within(waits[0], first), "{waits:?}");
        assert!(within(waits[3], first * 8), "{waits:?}");
        assert!(within(waits[7], max), "{waits:?}");
        assert!(b.failing());
        // Up, but not for long: still backing off.
        b.up();
        assert!(!b.failing());
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(within(b.fail(), max));
        // Up for longer than HEALTHY: the next drop waits the first delay again.
        b.up();
        tokio::time::advance(HEALTHY).await;
        assert!(within(b.fail(), first));
        assert!(within(b.fail(), first * 2));
    }

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
