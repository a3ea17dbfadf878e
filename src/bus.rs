//! The event bus: stamps each event with a monotonic id, keeps a bounded history per channel,
//! and fans events out to every subscriber.
//!
//! Invariants:
//! - Ids only grow. They start from the wall clock in microseconds, so a client that kept a
//!   `Last-Event-ID` across a restart of an in-memory server is behind every new id, never
//!   ahead of them (and is told to resync).
//! - `subscribe(since)` snapshots history and joins the live feed under the same lock that
//!   `publish` holds while it appends and sends: the replay and the live feed meet with no gap
//!   and no duplicate, however busy the publisher is.
//! - The live feed is a bounded broadcast ring ([`LIVE_CAPACITY`]). A subscriber that falls
//!   further behind than that is not waited for: it catches up from history
//!   ([`Subscription::catch_up`]) and, if history no longer covers the gap, is sent `resync`.
//! - History in memory is compact ([`Kept`]: an event's JSON, a few hundred bytes, not its
//!   parsed tree). Readers get it back as [`Item`]s through one bounded cache ([`Hot`]), so
//!   every reader of an event shares one item and the frames rendered from it.
//! - With a durable log, memory is only a cache of it: a channel is read back from the log the
//!   first time its recent events are asked for, and [`Bus::sweep`] forgets channels nobody
//!   has wanted for a while. Nothing is loaded at start.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::event::Event;
use crate::stats::StatsSeed;
use crate::store::{EventLog, StoreError};

/// Slots in the live ring. A subscriber more than this many events behind stops receiving live
/// events and catches up from history instead; 8192 covers a 2,000-event burst to 10,000
/// clients (the benchmark's worst case) with room to spare, at about 40 bytes a slot.
pub const LIVE_CAPACITY: usize = 8192;

/// How often every stream gets a keep-alive comment. The contract asks for at least every 15 s;
/// proxies and OBS close idle connections after 30-60 s.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How many rendered frames one event keeps (one per overlay/theme generation that asked).
/// Beyond that the oldest is dropped and rendered again on demand.
const FRAMES_PER_ITEM: usize = 8;

/// Items kept findable by id: the recent live items and the items lately made from history
/// (a few KB each with their frames). Past this the oldest is forgotten here (and made again
/// from history when asked for); the live ring may still hold it.
const HOT_ITEMS: usize = 2048;

/// A published event and the frames rendered from it, shared by every subscriber.
#[derive(Debug)]
pub struct Item {
    pub event: Event,
    /// The first overlay's frame: read without a lock, since with thousands of clients on one
    /// overlay every delivery looks it up.
    first: OnceLock<(u64, Bytes)>,
    others: Mutex<Vec<(u64, Bytes)>>,
}

impl Item {
    fn new(event: Event) -> Item {
        Item {
            event,
            first: OnceLock::new(),
            others: Mutex::new(Vec::new()),
        }
    }

    /// The frame for render key `key` if it has been rendered (and is still kept).
    pub fn cached(&self, key: u64) -> Option<Bytes> {
        match self.first.get() {
            Some((k, bytes)) if *k == key => Some(bytes.clone()),
            None => None,
            Some(_) => self
                .others
                .lock()
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, b)| b.clone()),
        }
    }

    /// The frame for render key `key`, rendered once by the first subscriber that asks and
    /// shared as the same bytes by all the others.
    pub fn frame(&self, key: u64, render: impl FnOnce(&Event) -> Bytes) -> Bytes {
        let mut render = Some(render);
        let (first_key, first) = self.first.get_or_init(|| {
            let render = render
                .take()
                .expect("render is unused before the first frame");
            (key, render(&self.event))
        });
        if *first_key == key {
            return first.clone();
        }
        let Some(render) = render else {
            return first.clone();
        };
        if let Some((_, bytes)) = self.others.lock().iter().find(|(k, _)| *k == key) {
            return bytes.clone();
        }
        // Rendered outside the lock: a slow template must not stall other overlays' readers.
        let bytes = render(&self.event);
        let mut others = self.others.lock();
        if let Some((_, existing)) = others.iter().find(|(k, _)| *k == key) {
            return existing.clone();
        }
        if others.len() >= FRAMES_PER_ITEM {
            others.remove(0);
        }
        others.push((key, bytes.clone()));
        bytes
    }
}

/// What travels on the live feed.
#[derive(Clone, Debug)]
pub enum Message {
    Event(Arc<Item>),
    /// Time for a keep-alive comment.
    KeepAlive,
    /// A control frame for the overlays of one theme (reload, error): not part of history.
    Theme {
        theme: String,
        frame: Bytes,
    },
    /// A control frame for the streams of one overlay (its settings changed).
    Overlay {
        name: String,
        frame: Bytes,
    },
    /// A frame for the chat sockets following one chat (its stats changed, and it went quiet
    /// before its clients' next message could carry them): not part of history. `version`
    /// numbers the chat's stats frames, so a client that has this one already skips it.
    ChatStats {
        channel: String,
        platform: crate::event::Platform,
        version: u64,
        frame: Bytes,
    },
}

/// Beats after every message the bus sends. Writers that read subscriptions on behalf of
/// parked streams (see `web::fanout`) listen to it and then look at each of theirs once.
#[derive(Default)]
pub struct Pulse {
    beats: AtomicU64,
    listeners: OnceLock<Vec<Arc<Listener>>>,
}

impl Pulse {
    /// Sets who is woken on every beat (once; `false` if already set).
    pub fn listen(&self, listeners: Vec<Arc<Listener>>) -> bool {
        self.listeners.set(listeners).is_ok()
    }

    /// How many beats so far.
    pub fn beats(&self) -> u64 {
        self.beats.load(Ordering::SeqCst)
    }

    fn beat(&self) {
        self.beats.fetch_add(1, Ordering::SeqCst);
        for listener in self.listeners.get().into_iter().flatten() {
            listener.beat();
        }
    }
}

/// One of a [`Pulse`]'s listeners: woken on every beat while it listens, and whenever
/// [`Listener::wake`] is called. A writer with nothing parked rests, so that a streamer's
/// handful of streams does not wake one thread per core for every chat line.
#[derive(Default)]
pub struct Listener {
    wake: tokio::sync::Notify,
    listening: std::sync::atomic::AtomicBool,
}

impl Listener {
    /// Woken by every beat from now on. Call it before reading [`Pulse::beats`] for work that
    /// needs the beats: a beat seen as not listening was counted before this, so the count
    /// read afterwards includes it.
    pub fn listen(&self) {
        self.listening.store(true, Ordering::SeqCst);
    }

    /// No longer woken by beats.
    pub fn rest(&self) {
        self.listening.store(false, Ordering::SeqCst);
    }

    /// Wakes the listener whether it listens or not.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Waits for a beat (while listening) or a [`Listener::wake`].
    pub async fn woken(&self) {
        self.wake.notified().await;
    }

    fn beat(&self) {
        if self.listening.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }
}

/// An event as history keeps it: its id, and the event as JSON (shared, so reading history
/// copies no bytes; made from a buffer of its exact size, so keeping it copies none either).
#[derive(Clone)]
struct Kept {
    id: u64,
    json: Bytes,
}

impl Kept {
    fn of(event: &Event) -> Kept {
        // An `Event` always serializes: its data is a JSON value already.
        Kept::new(event.id, serde_json::to_vec(event).unwrap_or_default())
    }

    fn new(id: u64, json: Vec<u8>) -> Kept {
        Kept {
            id,
            json: Bytes::from(json.into_boxed_slice()),
        }
    }

    fn event(&self) -> Option<Event> {
        serde_json::from_slice(&self.json)
            .map_err(|e| tracing::error!(id = self.id, "a kept event does not read back: {e}"))
            .ok()
    }
}

/// The items lately handed out, by id, oldest first in `order`.
#[derive(Default)]
struct Hot {
    items: HashMap<u64, Arc<Item>>,
    order: VecDeque<u64>,
}

impl Hot {
    fn put(&mut self, item: &Arc<Item>) {
        if self.items.insert(item.event.id, item.clone()).is_none() {
            self.order.push_back(item.event.id);
        }
        while self.order.len() > HOT_ITEMS {
            if let Some(old) = self.order.pop_front() {
                self.items.remove(&old);
            }
        }
    }
}

struct Inner {
    next_id: u64,
    /// The first id this process stamped: a `since` below it asks for events of an earlier run.
    first_id: u64,
    channels: HashMap<String, ChannelHistory>,
    /// `None` once the bus is closed: every subscription then ends.
    live: Option<broadcast::Sender<Message>>,
    /// With a shared store: the channels this instance serves, each with the id after which
    /// its stream is read.
    attached: HashMap<String, u64>,
}

impl Inner {
    /// Appends `item` to its channel's history (dropping the oldest beyond `keep`), sends it to
    /// every subscriber and beats `pulse`; returns how many were live. With `cache_only` (a
    /// local durable log holds everything) only a channel read back into memory keeps it.
    fn append(&mut self, item: Arc<Item>, keep: usize, cache_only: bool, pulse: &Pulse) -> usize {
        let history = if cache_only {
            self.channels
                .get_mut(&item.event.channel)
                .filter(|h| h.loaded || h.loading)
        } else {
            Some(self.channels.entry(item.event.channel.clone()).or_default())
        };
        if let Some(history) = history {
            let kept = Kept::of(&item.event);
            history.bytes += kept.json.len();
            history.items.push_back(kept);
            while history.items.len() > keep {
                if let Some(old) = history.items.pop_front() {
                    history.evicted = old.id;
                    history.bytes = history.bytes.saturating_sub(old.json.len());
                }
            }
        }
        let receivers = match &self.live {
            Some(tx) => tx.send(Message::Event(item)).unwrap_or(0),
            None => 0,
        };
        pulse.beat();
        receivers
    }
}

#[derive(Default)]
struct ChannelHistory {
    items: VecDeque<Kept>,
    /// The highest id dropped from `items`: a `since` below it has a gap history cannot fill.
    evicted: u64,
    /// With a durable log: `items` holds the channel's recent events as the log has them (not
    /// only those published since the channel was last forgotten).
    loaded: bool,
    /// Being read back from the log: what is published meanwhile is kept, to go after it.
    loading: bool,
    /// Since when nobody has wanted the channel ([`Bus::sweep`]).
    cold_since: Option<std::time::Instant>,
    /// The JSON bytes of `items`.
    bytes: usize,
}

/// What history holds in memory now ([`Bus::memory`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Memory {
    pub channels: usize,
    pub events: usize,
    /// The events' JSON, the bulk of what history keeps.
    pub bytes: usize,
    /// Items findable by id (recent live ones, lately read ones).
    pub hot: usize,
}

/// The bus. Cheap to share behind an `Arc`.
pub struct Bus {
    inner: Mutex<Inner>,
    history_len: usize,
    /// The durable log, when there is one: written before fan-out, read for replays.
    store: Option<Arc<dyn EventLog>>,
    /// The same log when it is shared with other instances: events are then fanned out as
    /// they are read back from it ([`Bus::ingest`]), whichever instance wrote them.
    shared: Option<Arc<crate::store::Redis>>,
    /// Wakes the reader of the shared log when a channel is attached.
    pub attach_wake: tokio::sync::Notify,
    /// Called when a channel is attached, with its chat stats so far.
    on_attach: OnceLock<AttachHook>,
    /// Beaten under the `inner` lock, so beats come in the order messages are sent.
    pulse: Arc<Pulse>,
    /// Taken after `inner` when both are held, never before.
    hot: Mutex<Hot>,
}

type AttachHook = Box<dyn Fn(&str, &StatsSeed) + Send + Sync>;

impl Bus {
    /// A bus keeping the last `history_len` events of each channel.
    pub fn new(history_len: usize) -> Bus {
        let start = crate::event::now_ms().saturating_mul(1000).max(1);
        Bus::starting_at(history_len, start)
    }

    /// A bus whose first id is `first_id` (a durable store continues its own sequence).
    pub fn starting_at(history_len: usize, first_id: u64) -> Bus {
        let (tx, _) = broadcast::channel(LIVE_CAPACITY);
        Bus {
            inner: Mutex::new(Inner {
                next_id: first_id.max(1),
                first_id: first_id.max(1),
                channels: HashMap::new(),
                live: Some(tx),
                attached: HashMap::new(),
            }),
            history_len: history_len.max(1),
            store: None,
            shared: None,
            attach_wake: tokio::sync::Notify::new(),
            pulse: Arc::default(),
            on_attach: OnceLock::new(),
            hot: Mutex::new(Hot::default()),
        }
    }

    /// A bus on a durable log: ids continue after the log's last. No channel is read at
    /// start; each is read back the first time its recent events are asked for.
    pub fn with_store(history_len: usize, store: Arc<dyn EventLog>) -> Result<Bus, StoreError> {
        let (max, min) = store.bounds()?;
        let clock = crate::event::now_ms().saturating_mul(1000).max(1);
        let next = max.map_or(clock, |m| m + 1);
        let mut bus = Bus::starting_at(history_len, next);
        bus.inner.get_mut().first_id = min.unwrap_or(next);
        bus.store = Some(store);
        Ok(bus)
    }

    /// The items of `kept`, in order: the ones handed out lately as they are (with their
    /// rendered frames), the others made again from their JSON.
    fn items(&self, kept: &[Kept]) -> Vec<Arc<Item>> {
        let mut out = Vec::with_capacity(kept.len());
        let mut missing = Vec::new();
        {
            let hot = self.hot.lock();
            for (n, k) in kept.iter().enumerate() {
                match hot.items.get(&k.id) {
                    Some(item) => out.push(Some(item.clone())),
                    None => {
                        out.push(None);
                        missing.push(n);
                    }
                }
            }
        }
        // Parsed outside the lock; another reader may make the same item meanwhile, and the
        // first one put wins.
        let made: Vec<(usize, Arc<Item>)> = missing
            .into_iter()
            .filter_map(|n| Some((n, Arc::new(Item::new(kept[n].event()?)))))
            .collect();
        if !made.is_empty() {
            let mut hot = self.hot.lock();
            for (n, item) in made {
                let item = match hot.items.get(&item.event.id) {
                    Some(first) => first.clone(),
                    None => {
                        hot.put(&item);
                        item
                    }
                };
                out[n] = Some(item);
            }
        }
        out.into_iter().flatten().collect()
    }

    /// The items of `events` read from the log: the same item as a live one or one read lately,
    /// when there is one.
    fn items_of(&self, events: Vec<Event>) -> Vec<Arc<Item>> {
        let mut hot = self.hot.lock();
        events
            .into_iter()
            .map(|e| match hot.items.get(&e.id) {
                Some(item) => item.clone(),
                None => {
                    let item = Arc::new(Item::new(e));
                    hot.put(&item);
                    item
                }
            })
            .collect()
    }

    /// With a local durable log, reads `channel`'s recent events back into memory unless they
    /// are there (read outside the bus lock; events published meanwhile are kept, after them).
    fn load(&self, channel: &str) {
        let Some(store) = &self.store else { return };
        if self.shared.is_some() {
            return;
        }
        {
            let mut inner = self.inner.lock();
            let history = inner.channels.entry(channel.to_string()).or_default();
            if history.loaded {
                return;
            }
            history.loading = true;
        }
        let mut events = match store.recent_json(channel, self.history_len) {
            Ok(events) => events,
            Err(e) => {
                tracing::error!("cannot read {channel} back from the store: {e}");
                if let Some(h) = self.inner.lock().channels.get_mut(channel) {
                    h.loading = false;
                }
                return;
            }
        };
        events.reverse();
        let mut inner = self.inner.lock();
        let history = inner.channels.entry(channel.to_string()).or_default();
        if history.loaded {
            return;
        }
        let newest = events.last().map_or(0, |e| e.0);
        let since: Vec<Kept> = history
            .items
            .iter()
            .filter(|k| k.id > newest)
            .cloned()
            .collect();
        let mut items: VecDeque<Kept> = events
            .into_iter()
            .map(|(id, json)| Kept::new(id, json))
            .collect();
        items.extend(since);
        while items.len() > self.history_len {
            if let Some(old) = items.pop_front() {
                history.evicted = history.evicted.max(old.id);
            }
        }
        history.bytes = items.iter().map(|k| k.json.len()).sum();
        history.items = items;
        history.loaded = true;
        history.loading = false;
    }

    /// With a local durable log, forgets the history in memory of every channel nobody has
    /// wanted (no stream, socket or source) for `cold_after`; it is read back from the log
    /// when someone asks again. Returns how many channels were forgotten.
    pub fn sweep(
        &self,
        wanted: &std::collections::BTreeSet<String>,
        cold_after: Duration,
    ) -> usize {
        if self.store.is_none() || self.shared.is_some() {
            return 0;
        }
        let now = std::time::Instant::now();
        let mut inner = self.inner.lock();
        let before = inner.channels.len();
        inner.channels.retain(|channel, history| {
            if wanted.contains(channel) {
                history.cold_since = None;
                return true;
            }
            let since = *history.cold_since.get_or_insert(now);
            now.duration_since(since) < cold_after
        });
        inner.channels.shrink_to_fit();
        before - inner.channels.len()
    }

    /// What history holds in memory now.
    pub fn memory(&self) -> Memory {
        let inner = self.inner.lock();
        let hot = self.hot.lock().items.len();
        Memory {
            channels: inner.channels.len(),
            events: inner.channels.values().map(|h| h.items.len()).sum(),
            bytes: inner.channels.values().map(|h| h.bytes).sum(),
            hot,
        }
    }

    /// A bus on a log shared with other instances. Ids come from the log; a channel's events
    /// are read from it from the moment the channel is first asked for (published to,
    /// subscribed to, or its history read).
    pub fn shared(history_len: usize, redis: Arc<crate::store::Redis>) -> Bus {
        let mut bus = Bus::starting_at(history_len, 1);
        bus.inner.get_mut().first_id = 0;
        bus.store = Some(redis.clone());
        bus.shared = Some(redis);
        bus
    }

    /// Sets what is told, once per channel attached to the shared log, that channel's chat
    /// stats so far.
    pub fn on_attach(&self, hook: impl Fn(&str, &StatsSeed) + Send + Sync + 'static) {
        let _ = self.on_attach.set(Box::new(hook));
    }

    /// The durable log the bus writes to: its own, or the one shared with other instances.
    pub fn log(&self) -> Option<Arc<dyn EventLog>> {
        match &self.shared {
            Some(redis) => Some(redis.clone()),
            None => self.store.clone(),
        }
    }

    /// The log shared with other instances, if the bus is on one.
    pub fn shared_log(&self) -> Option<Arc<crate::store::Redis>> {
        self.shared.clone()
    }

    /// Starts serving `channel` from the shared log, if the bus is on one (a failure is
    /// logged: the next call tries again).
    pub fn attach_channel(&self, channel: &str) {
        let mut inner = self.inner.lock();
        if let Err(e) = self.attach(&mut inner, channel) {
            tracing::error!("cannot read {channel} from the shared store: {e}");
        }
    }

    /// The channels attached to the shared log, each with the id after which to read it.
    pub fn attached(&self) -> Vec<(String, u64)> {
        let inner = self.inner.lock();
        inner
            .attached
            .iter()
            .map(|(c, id)| (c.clone(), *id))
            .collect()
    }

    /// Starts serving `channel` from the shared log (nothing to do without one, or when it
    /// already is): its recent events are loaded into memory, its stats handed to the hook,
    /// and the reader is woken to include its stream from this instant on.
    fn attach(&self, inner: &mut Inner, channel: &str) -> Result<(), StoreError> {
        let Some(redis) = &self.shared else {
            return Ok(());
        };
        if inner.attached.contains_key(channel) {
            return Ok(());
        }
        let mut attached = redis.attach(channel)?;
        let mut events = redis.recent(channel, self.history_len, None)?;
        events.retain(|e| e.id <= attached.cursor);
        events.reverse();
        let window = crate::event::now_ms().saturating_sub(60_000);
        attached.stats.recent = events
            .iter()
            .filter(|e| e.at >= window && crate::stats::Stats::chatter_of(e).is_some())
            .map(|e| e.at)
            .collect();
        if let Some(hook) = self.on_attach.get() {
            hook(channel, &attached.stats);
        }
        let history = inner.channels.entry(channel.to_string()).or_default();
        history.items = events.iter().map(Kept::of).collect();
        history.bytes = history.items.iter().map(|k| k.json.len()).sum();
        history.loaded = true;
        inner.attached.insert(channel.to_string(), attached.cursor);
        self.attach_wake.notify_one();
        Ok(())
    }

    /// Fans out events read back from the shared log, in id order: each goes into its
    /// channel's history, `accepted` sees it, and every subscriber is sent it. An event this
    /// instance already holds is skipped.
    pub fn ingest(&self, events: Vec<Event>, accepted: impl Fn(&Event)) {
        let mut inner = self.inner.lock();
        for event in events {
            let held = inner
                .channels
                .get(&event.channel)
                .and_then(|h| h.items.back())
                .is_some_and(|k| k.id >= event.id);
            if held {
                continue;
            }
            accepted(&event);
            inner.next_id = inner.next_id.max(event.id + 1);
            let item = Arc::new(Item::new(event));
            self.hot.lock().put(&item);
            inner.append(item, self.history_len, false, &self.pulse);
        }
    }

    /// Stamps `event` with the next id, appends it to its channel's history and sends it to
    /// every subscriber. Never waits for a subscriber. Returns the stamped event and how many
    /// subscribers were live.
    pub fn publish(&self, event: Event) -> Result<(Arc<Item>, usize), StoreError> {
        self.publish_with(event, |_| {})
    }

    /// [`Bus::publish`], calling `accepted` with the stamped event once it is stored and before
    /// anyone is sent it: state derived from events (chat stats, goals) is up to date when the
    /// first subscriber renders the event, and never counts an event that was refused.
    pub fn publish_with(
        &self,
        mut event: Event,
        accepted: impl FnMut(&Event),
    ) -> Result<(Arc<Item>, usize), StoreError> {
        if let Some(redis) = &self.shared {
            // Attached first, so the reader reads from before this event's id; the event is
            // then fanned out (and `accepted`) as it is read back, in the order of the log.
            let subscribers = {
                let mut inner = self.inner.lock();
                self.attach(&mut inner, &event.channel)?;
                inner
                    .live
                    .as_ref()
                    .map_or(0, broadcast::Sender::receiver_count)
            };
            redis.append(&mut event)?;
            return Ok((Arc::new(Item::new(event)), subscribers));
        }
        let mut published = self.publish_local(vec![event], accepted)?;
        Ok(published.pop().expect("one event published, one item"))
    }

    /// [`Bus::publish_with`] for events that arrived together (a burst of chat), in order: one
    /// lock and, with a local log, one write for all of them. All or none with the local log;
    /// with a shared one they are appended one by one and the first refusal stops the rest.
    /// Returns how many were published.
    pub fn publish_all_with(
        &self,
        events: Vec<Event>,
        mut accepted: impl FnMut(&Event),
    ) -> Result<usize, StoreError> {
        if self.shared.is_some() {
            let count = events.len();
            for event in events {
                self.publish_with(event, &mut accepted)?;
            }
            return Ok(count);
        }
        Ok(self.publish_local(events, accepted)?.len())
    }

    /// Stamps `events` with the next ids, writes them to the local log (if any) at once, and
    /// only then hands each, in order, to `accepted`, history and the subscribers. Refused
    /// whole (no id used, nobody sent anything) when the log refuses them.
    fn publish_local(
        &self,
        mut events: Vec<Event>,
        mut accepted: impl FnMut(&Event),
    ) -> Result<Vec<(Arc<Item>, usize)>, StoreError> {
        let mut inner = self.inner.lock();
        for (n, event) in events.iter_mut().enumerate() {
            event.id = inner.next_id + n as u64;
        }
        // On disk before anyone is sent it; refused (not lost quietly) when that fails.
        if let Some(store) = &self.store {
            store.append_all(&mut events)?;
        }
        inner.next_id += events.len() as u64;
        let cache_only = self.store.is_some();
        Ok(events
            .into_iter()
            .map(|event| {
                accepted(&event);
                let item = Arc::new(Item::new(event));
                self.hot.lock().put(&item);
                let receivers =
                    inner.append(item.clone(), self.history_len, cache_only, &self.pulse);
                (item, receivers)
            })
            .collect())
    }

    /// Sends a message that is not an event (keep-alive, theme control) to every subscriber.
    pub fn announce(&self, message: Message) {
        let inner = self.inner.lock();
        if let Some(tx) = &inner.live {
            let _ = tx.send(message);
            self.pulse.beat();
        }
    }

    /// Beats after every message sent (and when the bus closes).
    pub fn pulse(&self) -> &Arc<Pulse> {
        &self.pulse
    }

    /// Joins the live feed for `channels`, first replaying every event after `since` that
    /// history still holds. `since = None` replays nothing.
    pub fn subscribe(&self, channels: Vec<String>, since: Option<u64>) -> Subscription {
        // An id beyond every event stamped here (only a client can claim one) means "nothing
        // to replay", and must not hold back the live events that come after.
        let since = match (&self.shared, since) {
            (None, Some(s)) => Some(s.min(self.next_id().saturating_sub(1))),
            (_, s) => s,
        };
        let mut sub = Subscription {
            channels,
            replay: VecDeque::new(),
            live: None,
            last_id: since.unwrap_or(0),
            gap: false,
        };
        self.fill(&mut sub, since);
        sub
    }

    fn fill(&self, sub: &mut Subscription, since: Option<u64>) {
        let mut kept: Vec<Kept> = Vec::new();
        {
            let mut inner = self.inner.lock();
            for channel in &sub.channels {
                if let Err(e) = self.attach(&mut inner, channel) {
                    tracing::error!("cannot read {channel} from the shared store: {e}");
                }
            }
            sub.live = inner.live.as_ref().map(broadcast::Sender::subscribe);
            let Some(since) = since else { return };
            sub.gap = since != 0 && since.saturating_add(1) < inner.first_id;
            if self.store.is_none() {
                for channel in &sub.channels {
                    if let Some(history) = inner.channels.get(channel) {
                        sub.gap |= since < history.evicted;
                        let start = history.items.partition_point(|k| k.id <= since);
                        kept.extend(history.items.range(start..).cloned());
                    }
                }
            }
        }
        // Read after joining the live feed, outside the lock: an event published meanwhile
        // is both in what is read here and on the feed, and the feed's copy is skipped
        // (`accept`), so nothing is missed or sent twice.
        let Some(since) = since else { return };
        let mut replay = self.items(&kept);
        if let Some(store) = &self.store {
            for channel in &sub.channels {
                // From the durable log: it reaches back across restarts.
                match store.after(channel, since, self.history_len) {
                    Ok((events, cut)) => {
                        sub.gap |= cut || store.pruned_after(channel, since);
                        replay.extend(self.items_of(events));
                    }
                    Err(e) => {
                        tracing::error!("replay from the store failed: {e}");
                        sub.gap = true;
                    }
                }
            }
        }
        if sub.channels.len() > 1 {
            replay.sort_by_key(|i| i.event.id);
        }
        sub.replay = replay.into();
    }

    /// The channel's events, newest first, before `before`: from the durable log when there
    /// is one (the whole retained activity), else from memory.
    pub fn history(&self, channel: &str, limit: usize, before: Option<u64>) -> Vec<Event> {
        if let Some(store) = &self.store {
            match store.recent(channel, limit, before) {
                Ok(events) => return events,
                Err(e) => tracing::error!("reading the store failed, using memory: {e}"),
            }
        }
        self.recent(channel, limit, before)
            .iter()
            .map(|i| i.event.clone())
            .collect()
    }

    /// The most recent events of `channel` in memory (read back from the durable log first if
    /// they are not), newest first.
    pub fn recent(&self, channel: &str, limit: usize, before: Option<u64>) -> Vec<Arc<Item>> {
        self.recent_where(channel, limit, |id| before.is_none_or(|b| id < b))
    }

    /// [`Bus::recent`] of the events whose id passes `keep` (only those are made into items).
    pub fn recent_where(
        &self,
        channel: &str,
        limit: usize,
        keep: impl Fn(u64) -> bool,
    ) -> Vec<Arc<Item>> {
        self.attach_channel(channel);
        self.load(channel);
        let kept: Vec<Kept> = {
            let inner = self.inner.lock();
            let Some(history) = inner.channels.get(channel) else {
                return Vec::new();
            };
            history
                .items
                .iter()
                .rev()
                .filter(|k| keep(k.id))
                .take(limit)
                .cloned()
                .collect()
        };
        self.items(&kept)
    }

    /// Whether `channel` has any event in history (the recent-followers seed runs only once).
    pub fn has_history(&self, channel: &str) -> bool {
        let in_memory = self
            .inner
            .lock()
            .channels
            .get(channel)
            .is_some_and(|h| !h.items.is_empty());
        in_memory
            || self
                .store
                .as_ref()
                .is_some_and(|s| s.recent(channel, 1, None).is_ok_and(|e| !e.is_empty()))
    }

    /// Number of live subscribers right now.
    pub fn subscribers(&self) -> usize {
        self.inner
            .lock()
            .live
            .as_ref()
            .map_or(0, broadcast::Sender::receiver_count)
    }

    /// The id the next event will get.
    pub fn next_id(&self) -> u64 {
        self.inner.lock().next_id
    }

    /// Ends every subscription (after what each has already been sent) and refuses new ones.
    pub fn close(&self) {
        let mut inner = self.inner.lock();
        inner.live = None;
        self.pulse.beat();
    }

    /// Sends a keep-alive to every subscriber every [`KEEP_ALIVE`] until the bus closes:
    /// one timer for all streams instead of one per connection.
    pub async fn keep_alive(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(KEEP_ALIVE);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => self.announce(Message::KeepAlive),
            }
        }
    }
}

/// One subscriber's view of the bus: a replay queue, then the live feed.
pub struct Subscription {
    channels: Vec<String>,
    replay: VecDeque<Arc<Item>>,
    live: Option<broadcast::Receiver<Message>>,
    /// The id of the last event handed out (or the `since` the subscription started from).
    last_id: u64,
    /// History could not cover everything after `since`: the client should resync.
    gap: bool,
}

/// What a subscription yields next.
#[derive(Debug)]
pub enum Next {
    Message(Message),
    /// The subscriber fell behind and history did not cover the gap.
    Resync,
    /// Nothing is ready now.
    Empty,
    /// The bus closed.
    Closed,
}

impl Subscription {
    pub fn channels(&self) -> &[String] {
        &self.channels
    }

    /// The id of the last event handed out, or the `since` the subscription started from.
    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    /// The next message without waiting. Events of other channels are skipped here, so a
    /// caller only sees its own channels.
    pub fn try_next(&mut self, bus: &Bus) -> Next {
        let mut unlimited = u64::MAX;
        self.try_next_within(bus, &mut unlimited)
    }

    /// [`Subscription::try_next`], reading at most `budget` more messages from the live feed
    /// (skipped ones count too). A caller that knows how many messages the bus sent since it
    /// last found this feed empty (see [`Pulse`]) need not read once more to find it empty.
    pub fn try_next_within(&mut self, bus: &Bus, budget: &mut u64) -> Next {
        if std::mem::take(&mut self.gap) {
            return Next::Resync;
        }
        if let Some(item) = self.replay.pop_front() {
            self.last_id = item.event.id;
            return Next::Message(Message::Event(item));
        }
        loop {
            if *budget == 0 {
                return Next::Empty;
            }
            let Some(live) = self.live.as_mut() else {
                return Next::Closed;
            };
            match live.try_recv() {
                Ok(message) => {
                    *budget -= 1;
                    if let Some(next) = self.accept(message) {
                        return next;
                    }
                }
                Err(broadcast::error::TryRecvError::Empty) => return Next::Empty,
                Err(broadcast::error::TryRecvError::Closed) => {
                    self.live = None;
                    return Next::Closed;
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    // The new feed holds only messages sent after this call began.
                    self.catch_up(bus);
                    *budget = 0;
                    return self.try_next_within(bus, budget);
                }
            }
        }
    }

    /// The next message, waiting for one if none is ready. Cancel-safe.
    pub async fn next(&mut self, bus: &Bus) -> Next {
        loop {
            // Replay and gaps first; otherwise straight to `recv`, which looks before it waits
            // (a `try_recv` first would take the channel's lock once more per delivery).
            if self.gap || !self.replay.is_empty() {
                return self.try_next(bus);
            }
            let Some(live) = self.live.as_mut() else {
                return Next::Closed;
            };
            match live.recv().await {
                Ok(message) => {
                    if let Some(next) = self.accept(message) {
                        return next;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => {
                    self.live = None;
                    return Next::Closed;
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up(bus),
            }
        }
    }

    /// Keeps a live message if it is for this subscriber and not already seen in the replay.
    fn accept(&mut self, message: Message) -> Option<Next> {
        if let Message::Event(item) = &message {
            if item.event.id <= self.last_id || !self.channels.contains(&item.event.channel) {
                return None;
            }
            self.last_id = item.event.id;
        }
        Some(Next::Message(message))
    }

    /// Rejoins the live feed after falling behind, replaying from history what was missed.
    fn catch_up(&mut self, bus: &Bus) {
        let since = self.last_id;
        bus.fill(self, Some(since));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Kind;
    use serde_json::json;

    fn ev(channel: &str) -> Event {
        Event::new(
            crate::event::Platform::Twitch,
            channel,
            Kind::Follow,
            json!({}),
        )
    }

    fn drain(sub: &mut Subscription, bus: &Bus) -> Vec<u64> {
        let mut ids = Vec::new();
        while let Next::Message(Message::Event(item)) = sub.try_next(bus) {
            ids.push(item.event.id);
        }
        ids
    }

    #[test]
    fn ids_grow_and_replay_resumes_after_since() {
        let bus = Bus::starting_at(100, 1);
        let ids: Vec<u64> = (0..5)
            .map(|_| bus.publish(ev("a")).expect("published").0.event.id)
            .collect();
        assert_eq!(ids, [1, 2, 3, 4, 5]);
        let mut sub = bus.subscribe(vec!["a".into()], Some(2));
        bus.publish(ev("a")).expect("published");
        assert_eq!(drain(&mut sub, &bus), [3, 4, 5, 6]);
    }

    #[test]
    fn events_published_together_get_the_next_ids_in_order_on_disk_and_live() {
        let dir = tempfile::tempdir().expect("dir");
        let log = crate::store::Sqlite::open(&dir.path().join("e.sqlite3"), 100, 30).expect("log");
        let bus = Bus::with_store(100, Arc::new(log)).expect("bus");
        let first = bus.publish(ev("a")).expect("published").0.event.id;
        let mut sub = bus.subscribe(vec!["a".into(), "b".into()], None);
        let mut seen = Vec::new();
        let count = bus
            .publish_all_with(vec![ev("a"), ev("b"), ev("a")], |e| seen.push(e.id))
            .expect("published");
        assert_eq!(count, 3);
        let next = [first + 1, first + 2, first + 3];
        assert_eq!(seen, next, "each observed, stamped, in order");
        assert_eq!(drain(&mut sub, &bus), next);
        let store = bus.store.as_ref().expect("store");
        let on_disk: Vec<u64> = store
            .recent("a", 10, None)
            .expect("read")
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(on_disk, [first + 3, first + 1, first]);
        assert_eq!(
            bus.publish(ev("b")).expect("published").0.event.id,
            first + 4
        );
    }

    /// A log that refuses every write.
    struct Refusing;

    impl EventLog for Refusing {
        fn append(&self, _: &mut Event) -> Result<(), StoreError> {
            Err(StoreError {
                place: "test".into(),
                message: "disk full".into(),
            })
        }
        fn bounds(&self) -> Result<(Option<u64>, Option<u64>), StoreError> {
            Ok((None, None))
        }
        fn recent(&self, _: &str, _: usize, _: Option<u64>) -> Result<Vec<Event>, StoreError> {
            Ok(Vec::new())
        }
        fn after(&self, _: &str, _: u64, _: usize) -> Result<(Vec<Event>, bool), StoreError> {
            Ok((Vec::new(), false))
        }
        fn pruned_after(&self, _: &str, _: u64) -> bool {
            false
        }
        fn channels(&self) -> Vec<String> {
            Vec::new()
        }
        fn first_delivery(&self, _: &str) -> Result<bool, StoreError> {
            Ok(true)
        }
        fn forget_delivery(&self, _: &str) -> Result<(), StoreError> {
            Ok(())
        }
    }

    #[test]
    fn a_refused_batch_is_sent_to_nobody_and_takes_no_ids() {
        let bus = Bus::with_store(100, Arc::new(Refusing)).expect("bus");
        let next = bus.next_id();
        let mut sub = bus.subscribe(vec!["a".into()], None);
        let mut observed = 0;
        let refused = bus.publish_all_with(vec![ev("a"), ev("a")], |_| observed += 1);
        assert!(refused.is_err());
        assert_eq!(observed, 0);
        assert!(drain(&mut sub, &bus).is_empty());
        assert_eq!(bus.next_id(), next);
    }

    #[test]
    fn other_channels_never_reach_a_subscriber() {
        let bus = Bus::starting_at(100, 1);
        let mut sub = bus.subscribe(vec!["a".into()], Some(0));
        bus.publish(ev("b")).expect("published");
        bus.publish(ev("a")).expect("published");
        assert_eq!(drain(&mut sub, &bus), [2]);
    }

    #[test]
    fn history_is_bounded_and_a_gap_is_reported() {
        let bus = Bus::starting_at(3, 1);
        for _ in 0..10 {
            bus.publish(ev("a")).expect("published");
        }
        assert_eq!(bus.recent("a", 10, None).len(), 3);
        let mut sub = bus.subscribe(vec!["a".into()], Some(2));
        assert!(matches!(sub.try_next(&bus), Next::Resync));
        assert_eq!(drain(&mut sub, &bus), [8, 9, 10]);
    }

    #[test]
    fn the_pulse_counts_every_message_so_a_budget_finds_them_all() {
        let bus = Bus::starting_at(100, 1);
        let mut sub = bus.subscribe(vec!["a".into()], None);
        let before = bus.pulse().beats();
        bus.publish(ev("b")).expect("published");
        bus.publish(ev("a")).expect("published");
        bus.announce(Message::KeepAlive);
        bus.publish(ev("a")).expect("published");
        let mut budget = bus.pulse().beats() - before;
        assert_eq!(budget, 4);
        // The other channel's event is read and skipped within the budget.
        let mut got = Vec::new();
        loop {
            match sub.try_next_within(&bus, &mut budget) {
                Next::Message(Message::Event(item)) => got.push(item.event.id),
                Next::Message(Message::KeepAlive) => got.push(0),
                Next::Empty => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!((got, budget), (vec![2, 0, 3], 0));
        // A spent budget reads nothing more, even with a message waiting.
        bus.publish(ev("a")).expect("published");
        assert!(matches!(sub.try_next_within(&bus, &mut 0), Next::Empty));
        assert_eq!(drain(&mut sub, &bus), [4]);
        let before = bus.pulse().beats();
        bus.close();
        assert_eq!(bus.pulse().beats(), before + 1);
        assert!(matches!(sub.try_next_within(&bus, &mut 1), Next::Closed));
    }

    #[tokio::test]
    async fn a_resting_listener_is_not_woken_by_beats_but_is_by_a_wake() {
        let bus = Bus::starting_at(100, 1);
        let (busy, idle) = (Arc::new(Listener::default()), Arc::new(Listener::default()));
        assert!(bus.pulse().listen(vec![busy.clone(), idle.clone()]));
        busy.listen();
        bus.publish(ev("a")).expect("published");
        let soon = |l: Arc<Listener>| async move {
            tokio::time::timeout(Duration::from_millis(50), l.woken())
                .await
                .is_ok()
        };
        assert!(soon(busy.clone()).await, "a listener is woken by a beat");
        assert!(!soon(idle.clone()).await, "a resting one is not");
        busy.rest();
        bus.publish(ev("a")).expect("published");
        assert!(!soon(busy.clone()).await, "nor once it rests");
        idle.wake();
        assert!(soon(idle).await, "a wake reaches it all the same");
    }

    #[test]
    fn a_lagging_subscriber_catches_up_from_history_without_loss() {
        let bus = Bus::starting_at(LIVE_CAPACITY * 2, 1);
        let mut sub = bus.subscribe(vec!["a".into()], Some(0));
        let total = LIVE_CAPACITY as u64 + 100;
        for _ in 0..total {
            bus.publish(ev("a")).expect("published");
        }
        let ids = drain(&mut sub, &bus);
        assert_eq!(ids, (1..=total).collect::<Vec<_>>());
    }

    #[test]
    fn since_from_an_earlier_run_asks_for_resync() {
        let bus = Bus::starting_at(10, 1000);
        let mut sub = bus.subscribe(vec!["a".into()], Some(5));
        assert!(matches!(sub.try_next(&bus), Next::Resync));
    }

    #[test]
    fn close_ends_subscriptions() {
        let bus = Bus::starting_at(10, 1);
        let mut sub = bus.subscribe(vec!["a".into()], None);
        bus.close();
        assert!(matches!(sub.try_next(&bus), Next::Closed));
    }

    #[test]
    fn history_keeps_json_and_its_readers_share_one_item() {
        let bus = Bus::starting_at(10, 1);
        let (live, _) = bus.publish(ev("a")).expect("published");
        let read = bus.recent("a", 10, None);
        assert!(
            Arc::ptr_eq(&read[0], &live),
            "the live item, frames and all"
        );
        {
            let mut hot = bus.hot.lock();
            hot.items.clear();
            hot.order.clear();
        }
        let (one, two) = (bus.recent("a", 10, None), bus.recent("a", 10, None));
        assert_eq!(one[0].event, live.event, "made again from its JSON");
        assert!(Arc::ptr_eq(&one[0], &two[0]));
        let memory = bus.memory();
        assert_eq!((memory.channels, memory.events), (1, 1));
        assert!(memory.bytes > 0 && memory.bytes < 200, "{memory:?}");
        // Without a durable log nothing is forgotten, however cold.
        assert_eq!(bus.sweep(&Default::default(), Duration::ZERO), 0);
    }

    #[test]
    fn a_frame_is_rendered_once_per_key() {
        let bus = Bus::starting_at(10, 1);
        let (item, _) = bus.publish(ev("a")).expect("published");
        let mut renders = 0;
        for key in [7, 7, 8, 7, 8, 9] {
            let got = item.frame(key, |_| {
                renders += 1;
                Bytes::from(key.to_string())
            });
            assert_eq!(got, key.to_string());
        }
        assert_eq!(renders, 3);
    }
}
