//! What the bus needs from a durable log, and the error a log answers with; the logs
//! themselves are its siblings.

use crate::event::Event;

/// A store that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("event store {place}: {message}")]
pub struct StoreError {
    /// The file or server.
    pub place: String,
    pub message: String,
}

/// The rows of a query for "the newest `limit` + 1 after an id, newest first" as a page:
/// oldest first, at most `limit`, and whether older ones were left out.
pub(crate) fn page_after(mut newest_first: Vec<Event>, limit: usize) -> (Vec<Event>, bool) {
    let cut = newest_first.len() > limit;
    newest_first.truncate(limit);
    newest_first.reverse();
    (newest_first, cut)
}

/// What the bus needs from a log.
pub trait EventLog: Send + Sync {
    /// Writes one event. A log private to this instance gets it stamped by the bus; a shared
    /// log stamps the id itself. An error means the event is refused, never silently dropped.
    fn append(&self, event: &mut Event) -> Result<(), StoreError>;

    /// Writes `events` in order, as one write where the log can (SQLite: one transaction, all
    /// or none). This default writes them one by one and stops at the first that fails, so the
    /// ones before it are kept.
    fn append_all(&self, events: &mut [Event]) -> Result<(), StoreError> {
        events.iter_mut().try_for_each(|e| self.append(e))
    }

    /// The highest id stored, and the lowest.
    fn bounds(&self) -> Result<(Option<u64>, Option<u64>), StoreError>;

    /// Events of `channel`, newest first, before id `before`.
    fn recent(
        &self,
        channel: &str,
        limit: usize,
        before: Option<u64>,
    ) -> Result<Vec<Event>, StoreError>;

    /// [`EventLog::recent`] (before nothing) as each event's id and JSON, the form history
    /// keeps in memory. A log that holds JSON text answers it without parsing a tree.
    fn recent_json(&self, channel: &str, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .recent(channel, limit, None)?
            .into_iter()
            .map(|e| (e.id, serde_json::to_vec(&e).unwrap_or_default()))
            .collect())
    }

    /// Events of `channel` after `after`, oldest first, at most `limit` (the newest of them),
    /// and `true` with them when older ones were left out.
    fn after(
        &self,
        channel: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<Event>, bool), StoreError>;

    /// Whether something of `channel` after `id` was pruned (a gap for a client resuming from
    /// `id`).
    fn pruned_after(&self, channel: &str, id: u64) -> bool;

    /// Every channel with events.
    fn channels(&self) -> Vec<String>;

    /// `true` the first time delivery `id` (an EventSub webhook message) is seen within the
    /// ten minutes Twitch may redeliver it, across restarts (and instances, for a shared log).
    fn first_delivery(&self, id: &str) -> Result<bool, StoreError>;

    /// Forgets delivery `id` (handling it failed; its redelivery must be handled).
    fn forget_delivery(&self, id: &str) -> Result<(), StoreError>;
}
