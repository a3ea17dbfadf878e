//! The one back-off of every retry loop (sources, the shared store's reader): doubling waits
//! with jitter that start over once the thing retried has worked for a while.

use std::time::Duration;

use tokio::time::Instant;

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
}
