//! Widgets: state the server keeps per channel beside the event log, and the overlays that show
//! it — the stream session (labels, credits), named counters and timers, the hype train and the
//! running poll or prediction ([`live`]). Every control path
//! (dashboard, HTTP, the events socket, a moderator's chat command) ends in [`Widgets`]; the
//! pages of a widget overlay are sent its rendered state (`event: widget`) and fetch it on
//! every (re)connect (`GET /o/<name>/widget`), so a reload shows the same thing.
//!
//! Events come in through [`Widgets::observe`], the publisher's callback (under the bus's lock:
//! it records and wakes [`run`]). Each channel's state is saved in `widgets.sqlite3` ([`saved`]: only
//! the channels that changed are written) with the id of the last event it counted; at start,
//! what the log holds past that id is counted again ([`Widgets::catch_up`]), and a channel with
//! no saved state is recomputed from its log, from its last `stream.online`.

pub mod live;
mod saved;
pub mod session;
pub mod timer;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Message};
use crate::config::WidgetsConfig;
use crate::event::{Event, Kind, now_ms};
use crate::overlay::labels;
use crate::overlay::{Overlay, OverlayConfig, OverlayKind, Overlays};
pub use session::{Cause, Session};
pub use timer::{Op as TimerOp, Setup, Timer};

/// A command's change (a counter, a timer, a reset: not in the event log) is written within
/// this.
const SAVE_EVERY: Duration = Duration::from_millis(500);
/// What events changed is written at most this often: a crash loses nothing of it, since the
/// start counts again what the log holds past the saved state (up to the `history` events a
/// channel keeps, far more than a chat flood brings in this time).
const SAVE_EVENTS_EVERY: Duration = Duration::from_secs(5);
/// Widget pages are sent their state at most this often per pass: a busy chat changes the
/// session on every line, and nobody reads a label faster.
const RENDER_EVERY: Duration = Duration::from_millis(150);
/// How often the overlay set is looked at for changes (a file edited, a theme reloaded).
const LOOK_EVERY: Duration = Duration::from_secs(1);

/// What may be done to a counter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CounterOp {
    Add(i64),
    Set(i64),
    Reset,
}

impl CounterOp {
    pub const NAMES: &'static str = "add, subtract, set, reset";

    /// `op` with `value` (`add` and `subtract` default to 1).
    pub fn parse(op: &str, value: Option<i64>) -> Result<CounterOp, WidgetError> {
        Ok(match op {
            "add" | "increment" => CounterOp::Add(value.unwrap_or(1)),
            "subtract" | "decrement" => CounterOp::Add(-value.unwrap_or(1)),
            "set" => CounterOp::Set(value.ok_or_else(|| {
                WidgetError::BadOp("\"set\" needs \"value\": a whole number".into())
            })?),
            "reset" => CounterOp::Reset,
            other => {
                return Err(WidgetError::BadOp(format!(
                    "no counter op \"{other}\"; ops are {}",
                    CounterOp::NAMES
                )));
            }
        })
    }
}

/// Why a widget command could not be carried out, each saying what to do instead.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WidgetError {
    #[error("\"{0}\" cannot be a counter's name: use 1-32 of a-z, 0-9, _ and -")]
    BadCounter(String),
    #[error(
        "no timer overlay \"{name}\" shows channel \"{channel}\"; add one in overlays/ (kind = \"timer\", channel = \"{channel}\"){known}"
    )]
    NoTimer {
        channel: String,
        name: String,
        known: String,
    },
    #[error("{0}")]
    BadOp(String),
    #[error("timer \"{name}\": {message}")]
    Timer { name: String, message: String },
}

/// A channel's counter and timer overlays.
type Controls = Arc<[Arc<Overlay>]>;

/// One channel's widget state, as saved.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Channel {
    session: Session,
    counters: BTreeMap<String, i64>,
    /// By timer overlay name.
    timers: BTreeMap<String, Timer>,
    /// The hype train, running or last ended.
    #[serde(default)]
    train: Option<live::Train>,
    /// The poll or prediction, running or last ended.
    #[serde(default)]
    vote: Option<live::Vote>,
    /// The last event counted.
    last_id: u64,
}

struct Inner {
    channels: BTreeMap<String, Channel>,
    /// Channels whose widget pages must be sent their state.
    dirty: BTreeSet<String>,
    /// Channels whose state changed since it was last written.
    unsaved: BTreeSet<String>,
    /// A command changed something: write soon.
    urgent: bool,
    /// Orders every state a page is sent; starts from the wall clock (µs), like event ids.
    seq: u64,
}

impl Inner {
    fn touch(&mut self, channel: &str) {
        self.seq += 1;
        self.dirty.insert(channel.to_string());
        self.unsaved.insert(channel.to_string());
    }

    /// [`Inner::touch`] for a command's change, which only the saved state keeps.
    fn command(&mut self, channel: &str) {
        self.touch(channel);
        self.urgent = true;
    }

    fn channel(&mut self, channel: &str) -> &mut Channel {
        self.channels
            .entry(channel.to_string())
            .or_insert_with(|| Channel {
                session: Session::start(now_ms(), Cause::Events),
                ..Channel::default()
            })
    }
}

/// Every channel's session, counters and timers.
pub struct Widgets {
    overlays: Arc<Overlays>,
    bus: Arc<Bus>,
    config: WidgetsConfig,
    /// `widgets.sqlite3` in the data dir; `None` if it could not be opened (said at start: the
    /// widgets then live in memory only).
    saved: Option<Arc<Mutex<saved::Saved>>>,
    labels_dir: PathBuf,
    /// The counter and timer overlays of each channel (what events and chat commands act on),
    /// made once per version of the overlay set rather than once per event.
    controls: Mutex<(u64, HashMap<String, Controls>)>,
    inner: Mutex<Inner>,
    wake: Notify,
    /// The channels whose widgets changed, for the events socket.
    changes: broadcast::Sender<String>,
    /// What each label file holds, so only changes are written.
    written: Mutex<HashMap<PathBuf, String>>,
}

impl Widgets {
    /// The widgets of `overlays`, with the state saved in `data_dir` restored (call
    /// [`Widgets::catch_up`] before events flow).
    pub fn new(
        overlays: Arc<Overlays>,
        bus: Arc<Bus>,
        config: WidgetsConfig,
        data_dir: &std::path::Path,
    ) -> Arc<Widgets> {
        let saved = match saved::Saved::open(data_dir) {
            Ok(saved) => Some(Arc::new(Mutex::new(saved))),
            Err(e) => {
                tracing::warn!(
                    "{e}: sessions, counters and timers will not survive a restart; make the data dir writable"
                );
                None
            }
        };
        let channels = saved
            .as_ref()
            .map_or_else(BTreeMap::new, |s| load(&s.lock()));
        Arc::new(Widgets {
            overlays,
            bus,
            config,
            saved,
            labels_dir: data_dir.join("labels"),
            controls: Mutex::new((0, HashMap::new())),
            inner: Mutex::new(Inner {
                channels,
                dirty: BTreeSet::new(),
                unsaved: BTreeSet::new(),
                urgent: false,
                seq: now_ms().saturating_mul(1000),
            }),
            wake: Notify::new(),
            changes: broadcast::channel(64).0,
            written: Mutex::default(),
        })
    }

    /// Counts what the log holds past the saved state (events of the last moments before a
    /// crash), and recomputes a channel of a widget overlay with no saved state from its log:
    /// from its last `stream.online`, else from the oldest event kept. Reads the log: not on the
    /// runtime. A channel no widget shows and nothing was saved for is not read at all (a
    /// thousand channels' logs are not read at every start); its session starts now.
    pub fn catch_up(&self, history: usize) {
        let mut channels: BTreeSet<String> = self
            .overlays
            .all()
            .iter()
            .filter(|o| o.config.kind.is_widget())
            .map(|o| o.config.channel.clone())
            .collect();
        channels.extend(self.inner.lock().channels.keys().cloned());
        for channel in channels {
            let saved = self.inner.lock().channels.get(&channel).map(|c| c.last_id);
            let events = match saved {
                Some(last) => self.tail_after(&channel, last, history),
                None => {
                    let mut events = self.bus.history(&channel, history, None);
                    events.reverse();
                    let online = events
                        .iter()
                        .rposition(|e| e.kind == Kind::StreamOnline && counted(e));
                    events.split_off(online.unwrap_or(0))
                }
            };
            let events: Vec<&Event> = events.iter().filter(|e| counted(e)).collect();
            if events.is_empty() {
                continue;
            }
            let controls = self.controls(&channel);
            let mut inner = self.inner.lock();
            if saved.is_none() {
                let first = events[0];
                inner.channels.insert(
                    channel.clone(),
                    Channel {
                        session: Session::start(first.at, Cause::Events),
                        ..Channel::default()
                    },
                );
            }
            for event in &events {
                self.count(&mut inner, &controls, event);
            }
            tracing::info!(channel = %channel, events = events.len(), "session caught up from the event log");
            inner.touch(&channel);
        }
    }

    /// `channel`'s events after id `last`, oldest first (at most `history`), read from the
    /// newest back in growing pages: after a clean stop there are none, and one small read
    /// says so.
    fn tail_after(&self, channel: &str, last: u64, history: usize) -> Vec<Event> {
        let mut out = Vec::new();
        let (mut before, mut page) = (None, 16usize.min(history.max(1)));
        loop {
            let chunk = self.bus.history(channel, page, before);
            let ended = chunk.len() < page;
            before = chunk.last().map(|e| e.id);
            for e in chunk {
                if e.id <= last {
                    out.reverse();
                    return out;
                }
                out.push(e);
            }
            if ended || out.len() >= history {
                out.reverse();
                return out;
            }
            page = (page * 4).min(history);
        }
    }

    /// The counter and timer overlays of `channel`.
    fn controls(&self, channel: &str) -> Controls {
        let version = self.overlays.version();
        let mut cache = self.controls.lock();
        if cache.0 != version {
            let mut by_channel: HashMap<String, Vec<Arc<Overlay>>> = HashMap::new();
            for o in self.overlays.all() {
                if matches!(o.config.kind, OverlayKind::Counter | OverlayKind::Timer) {
                    by_channel
                        .entry(o.config.channel.clone())
                        .or_default()
                        .push(o);
                }
            }
            *cache = (
                version,
                by_channel.into_iter().map(|(c, v)| (c, v.into())).collect(),
            );
        }
        cache
            .1
            .get(channel)
            .cloned()
            .unwrap_or_else(|| Arc::from(Vec::new()))
    }

    /// Follows the channels whose widgets change.
    pub fn changes(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    /// The publisher's callback: counts `event` in its channel's session and timers, and carries
    /// out a moderator's counter or timer command. Runs under the bus's lock.
    pub fn observe(&self, event: &Event) {
        if !counted(event) {
            return;
        }
        let controls = self.controls(&event.channel);
        let mut inner = self.inner.lock();
        self.count(&mut inner, &controls, event);
        inner.touch(&event.channel);
        drop(inner);
        self.wake.notify_one();
    }

    fn count(&self, inner: &mut Inner, overlays: &[Arc<Overlay>], event: &Event) {
        let now = event.at;
        let ch = inner.channel(&event.channel);
        if event.id != 0 && event.id <= ch.last_id {
            return;
        }
        ch.last_id = ch.last_id.max(event.id);
        ch.session.apply(event);
        match event.kind {
            Kind::HypeTrainBegin | Kind::HypeTrainProgress | Kind::HypeTrainEnd => {
                live::Train::apply(&mut ch.train, event);
            }
            k if live::Vote::concerns(k) => ch.vote = Some(live::Vote::from(event)),
            _ => {}
        }
        for o in timers_of(overlays, &event.channel) {
            let Ok(setup) = Setup::of(&o.config.options) else {
                continue;
            };
            let timer = ch
                .timers
                .entry(o.config.name.clone())
                .or_insert_with(|| Timer::new(&setup));
            timer.extend(&setup, event, now);
        }
        if event.kind == Kind::ChatMessage && self.config.chat_commands {
            chat_command(ch, overlays, event);
        }
    }

    /// Whether `event` is larger than every one of its kind in its channel's session so far
    /// (asked before it is counted: the alerts' `largest` variations).
    pub fn is_largest(&self, event: &Event) -> bool {
        let inner = self.inner.lock();
        match inner.channels.get(&event.channel) {
            Some(c) => c.session.is_largest(event),
            None => Session::default().is_largest(event),
        }
    }

    /// `GET /api/channels/<channel>/session`.
    pub fn session(&self, channel: &str) -> Value {
        let inner = self.inner.lock();
        match inner.channels.get(channel) {
            Some(c) => c.session.snapshot(channel),
            None => Session::start(now_ms(), Cause::Events).snapshot(channel),
        }
    }

    /// Starts `channel`'s session over, empty; answers the new session.
    pub fn reset_session(&self, channel: &str) -> Value {
        let mut inner = self.inner.lock();
        let ch = inner.channel(channel);
        let live = ch.session.live;
        ch.session = Session::start(now_ms(), Cause::Reset);
        ch.session.live = live;
        let answer = ch.session.snapshot(channel);
        inner.command(channel);
        drop(inner);
        tracing::info!(channel = %channel, "session reset");
        self.wake.notify_one();
        answer
    }

    /// Carries out `op` on `channel`'s counter `name` (made at 0 when new); answers
    /// `{"channel", "name", "value"}`.
    pub fn counter(&self, channel: &str, name: &str, op: CounterOp) -> Result<Value, WidgetError> {
        if !labels::valid_counter(name) {
            return Err(WidgetError::BadCounter(name.to_string()));
        }
        let mut inner = self.inner.lock();
        let value = apply_counter(inner.channel(channel), name, op);
        inner.command(channel);
        drop(inner);
        self.wake.notify_one();
        Ok(json!({"channel": channel, "name": name, "value": value}))
    }

    /// Every counter of `channel`.
    pub fn counters(&self, channel: &str) -> BTreeMap<String, i64> {
        let inner = self.inner.lock();
        inner
            .channels
            .get(channel)
            .map(|c| c.counters.clone())
            .unwrap_or_default()
    }

    /// Carries out `op` on the timer of overlay `name` (of `channel`); answers its state.
    pub fn timer(&self, channel: &str, name: &str, op: TimerOp) -> Result<Value, WidgetError> {
        let overlays = self.overlays.all();
        let Some(overlay) = timers_of(&overlays, channel).find(|o| o.config.name == name) else {
            let known: Vec<&str> = timers_of(&overlays, channel)
                .map(|o| o.config.name.as_str())
                .collect();
            return Err(WidgetError::NoTimer {
                channel: channel.to_string(),
                name: name.to_string(),
                known: if known.is_empty() {
                    String::new()
                } else {
                    format!("; its timers are {}", known.join(", "))
                },
            });
        };
        let error = |message: String| WidgetError::Timer {
            name: name.to_string(),
            message,
        };
        let setup = Setup::of(&overlay.config.options).map_err(error)?;
        let now = now_ms();
        let mut inner = self.inner.lock();
        let timer = inner
            .channel(channel)
            .timers
            .entry(name.to_string())
            .or_insert_with(|| Timer::new(&setup));
        timer.apply(&setup, op, now).map_err(error)?;
        let answer = timer.snapshot(name, &setup, now);
        inner.command(channel);
        drop(inner);
        tracing::info!(channel = %channel, timer = name, ?op, "timer");
        self.wake.notify_one();
        Ok(answer)
    }

    /// `channel`'s widgets as the events socket sends them: session, counters, timers.
    pub fn state(&self, channel: &str) -> Value {
        let overlays = self.overlays.all();
        let now = now_ms();
        let inner = self.inner.lock();
        let empty = Channel::default();
        let ch = inner.channels.get(channel).unwrap_or(&empty);
        let timers: serde_json::Map<String, Value> = timers_of(&overlays, channel)
            .filter_map(|o| {
                let setup = Setup::of(&o.config.options).ok()?;
                let name = &o.config.name;
                let t = ch
                    .timers
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| Timer::new(&setup));
                Some((name.clone(), t.snapshot(name, &setup, now)))
            })
            .collect();
        json!({
            "channel": channel,
            "session": ch.session.snapshot(channel),
            "counters": ch.counters,
            "timers": timers,
        })
    }

    /// What the pages of widget overlay `name` show now: `{seq, name, kind, html, state}`.
    pub fn page_state(&self, name: &str) -> Option<Value> {
        let overlay = self
            .overlays
            .get(name)
            .filter(|o| o.config.kind.is_widget())?;
        // The state is read in place (a copy of the channel would copy every chatter); the
        // template renders after the lock.
        let (seq, (state, fallback)) = {
            let inner = self.inner.lock();
            let empty = Channel::default();
            let ch = inner
                .channels
                .get(&overlay.config.channel)
                .unwrap_or(&empty);
            (inner.seq, widget_state(&overlay.config, ch, now_ms()))
        };
        let html = overlay.widget_html(state.clone(), &fallback, &self.overlays.shared);
        Some(json!({
            "seq": seq, "name": name, "kind": overlay.config.kind.as_str(),
            "html": html, "state": state,
        }))
    }

    /// The page state of widget overlay `name` with a made-up session (the dashboard's
    /// preview, and a theme's check).
    pub fn sample_state(overlay: &Overlay, shared: &crate::overlay::Shared) -> Value {
        let ch = sample_channel(&overlay.config);
        let (state, fallback) = widget_state(&overlay.config, &ch, now_ms());
        let html = overlay.widget_html(state.clone(), &fallback, shared);
        json!({"seq": 0, "name": overlay.config.name, "kind": overlay.config.kind.as_str(),
               "html": html, "state": state})
    }

    fn take_dirty(&self) -> Vec<String> {
        std::mem::take(&mut self.inner.lock().dirty)
            .into_iter()
            .collect()
    }

    fn mark_all(&self) {
        let mut inner = self.inner.lock();
        for o in self.overlays.all() {
            if o.config.kind.is_widget() {
                inner.seq += 1;
                inner.dirty.insert(o.config.channel.clone());
            }
        }
    }

    /// Every label of `channel` and its text, for the label files.
    fn label_texts(&self, channel: &str) -> Vec<(String, String)> {
        let inner = self.inner.lock();
        let Some(ch) = inner.channels.get(channel) else {
            return Vec::new();
        };
        let session = ch.session.snapshot(channel);
        let counter_labels: Vec<String> =
            ch.counters.keys().map(|c| format!("counter.{c}")).collect();
        labels::fixed()
            .map(str::to_string)
            .chain(counter_labels)
            .map(|name| {
                let l = labels::label(&name, &session, &ch.counters, "");
                let text = l["text"].as_str().unwrap_or_default().to_string();
                (name, text)
            })
            .collect()
    }

    /// Writes the label files of `channels` that changed, each atomically.
    async fn write_labels(&self, channels: &[String]) {
        let mut writes = Vec::new();
        {
            let mut written = self.written.lock();
            for channel in channels {
                for (name, text) in self.label_texts(channel) {
                    let path = self.labels_dir.join(channel).join(format!("{name}.txt"));
                    if written.get(&path) != Some(&text) {
                        written.insert(path.clone(), text.clone());
                        writes.push((path, text));
                    }
                }
            }
        }
        if writes.is_empty() {
            return;
        }
        let done = tokio::task::spawn_blocking(move || {
            for (path, text) in writes {
                if let Some(dir) = path.parent()
                    && let Err(e) = std::fs::create_dir_all(dir)
                {
                    tracing::warn!("label files: {}: {e}", dir.display());
                    continue;
                }
                if let Err(e) = crate::files::replace(&path, text.as_bytes()) {
                    tracing::warn!("label file {}: {e}", path.display());
                }
            }
        })
        .await;
        if done.is_err() {
            tracing::warn!("writing label files stopped");
        }
    }

    /// Writes the state of every channel that changed since the last time, in one write.
    async fn save(&self) {
        let rows: Vec<(String, Vec<u8>)> = {
            let mut inner = self.inner.lock();
            inner.urgent = false;
            let unsaved = std::mem::take(&mut inner.unsaved);
            unsaved
                .into_iter()
                .filter_map(|c| {
                    let bytes = serde_json::to_vec(inner.channels.get(&c)?).ok()?;
                    Some((c, bytes))
                })
                .collect()
        };
        let Some(saved) = self.saved.clone().filter(|_| !rows.is_empty()) else {
            return;
        };
        match tokio::task::spawn_blocking(move || saved.lock().save(&rows)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("saving the sessions: {e}"),
            Err(e) => tracing::warn!("saving the sessions stopped: {e}"),
        }
    }

    /// How long after the last write the next one is due: `None` when nothing waits.
    fn save_due(&self) -> Option<Duration> {
        let inner = self.inner.lock();
        match (inner.unsaved.is_empty(), inner.urgent) {
            (true, _) => None,
            (false, true) => Some(SAVE_EVERY),
            (false, false) => Some(SAVE_EVENTS_EVERY),
        }
    }
}

/// Every channel's saved state (a state that cannot be read is recomputed from the log, and
/// says so).
fn load(saved: &saved::Saved) -> BTreeMap<String, Channel> {
    let mut channels = BTreeMap::new();
    for (channel, bytes) in saved.load() {
        match serde_json::from_slice::<Channel>(&bytes) {
            Ok(state) => {
                channels.insert(channel, state);
            }
            Err(e) => tracing::warn!(
                "the saved session of {channel}: {e}; it is recomputed from the event log"
            ),
        }
    }
    channels
}

/// Whether `event` counts in sessions, timers and commands: live (not seeded history) and not
/// a rehearsal's replay.
fn counted(event: &Event) -> bool {
    !event.history && !event.replay
}

fn timers_of<'a>(
    overlays: &'a [Arc<Overlay>],
    channel: &'a str,
) -> impl Iterator<Item = &'a Arc<Overlay>> + 'a {
    overlays
        .iter()
        .filter(move |o| o.config.kind == OverlayKind::Timer && o.config.channel == channel)
}

fn apply_counter(ch: &mut Channel, name: &str, op: CounterOp) -> i64 {
    let value = ch.counters.entry(name.to_string()).or_default();
    // A counter counts things that happened: a moderator's extra `-` stops at zero.
    *value = match op {
        CounterOp::Add(n) => value.saturating_add(n).max(0),
        CounterOp::Set(n) => n.max(0),
        CounterOp::Reset => 0,
    };
    *value
}

/// The chat word of a counter or timer overlay: its `command` option, else `!<name>`.
fn command_word(config: &OverlayConfig, name: &str) -> String {
    match config.options["command"].as_str() {
        Some(w) if !w.is_empty() => w.to_lowercase(),
        _ => format!("!{name}"),
    }
}

/// A broadcaster's or moderator's counter command (`!deaths+`, `!deaths- 2`, `!deaths= 5`) or
/// timer command (`!subathon pause`, `resume`, `add 300`, `set 3600`). Reset is no chat
/// command: one line must not end a subathon.
fn chat_command(ch: &mut Channel, overlays: &[Arc<Overlay>], event: &Event) {
    let roles = &event.data["author"]["roles"];
    if roles["broadcaster"] != json!(true) && roles["moderator"] != json!(true) {
        return;
    }
    let text = event.data["text"].as_str().unwrap_or_default();
    let mut words = text.split_whitespace();
    let Some(first) = words.next().map(str::to_lowercase) else {
        return;
    };
    if !first.starts_with('!') {
        return;
    }
    let arg = words.next();
    let number = arg.and_then(|a| a.parse::<f64>().ok());
    let who = event.data["author"]["login"].as_str().unwrap_or_default();
    for o in overlays
        .iter()
        .filter(|o| o.config.channel == event.channel)
    {
        match o.config.kind {
            OverlayKind::Counter => {
                let name = o.config.options["counter"].as_str().unwrap_or_default();
                let word = command_word(&o.config, name);
                let Some(sign) = first.strip_prefix(word.as_str()) else {
                    continue;
                };
                let n = number.map(|n| n as i64);
                let op = match sign {
                    "+" => CounterOp::Add(n.unwrap_or(1)),
                    "-" => CounterOp::Add(-n.unwrap_or(1)),
                    "=" => match n {
                        Some(n) => CounterOp::Set(n),
                        None => continue,
                    },
                    _ => continue,
                };
                let value = apply_counter(ch, name, op);
                tracing::info!(channel = %event.channel, by = who, counter = name, value, "chat command {first}");
                return;
            }
            OverlayKind::Timer if first == command_word(&o.config, &o.config.name) => {
                let Ok(setup) = Setup::of(&o.config.options) else {
                    return;
                };
                let op = match arg.map(str::to_lowercase).as_deref() {
                    Some("reset") | None => return,
                    Some(a) => match TimerOp::parse(a, words.next().and_then(|w| w.parse().ok())) {
                        Ok(op) => op,
                        Err(e) => {
                            tracing::info!(channel = %event.channel, by = who, "chat command {first}: {e}");
                            return;
                        }
                    },
                };
                let timer = ch
                    .timers
                    .entry(o.config.name.clone())
                    .or_insert_with(|| Timer::new(&setup));
                match timer.apply(&setup, op, event.at) {
                    Ok(()) => {
                        tracing::info!(channel = %event.channel, by = who, timer = %o.config.name, "chat command {first}")
                    }
                    Err(e) => {
                        tracing::info!(channel = %event.channel, by = who, "chat command {first}: {e}")
                    }
                }
                return;
            }
            _ => {}
        }
    }
}

/// A widget overlay's render state (`labels`, `counter`, `timer` or `credits`, with the
/// session) and the plain text shown if its template fails.
fn widget_state(config: &OverlayConfig, ch: &Channel, now: u64) -> (Value, String) {
    let o = &config.options;
    let channel = &config.channel;
    let session = ch.session.snapshot(channel);
    match config.kind {
        OverlayKind::Labels => {
            let empty = o["empty"].as_str().unwrap_or_default();
            let list: Vec<Value> = o["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|n| labels::label(n, &session, &ch.counters, empty))
                .collect();
            let fallback = list
                .iter()
                .map(|l| {
                    format!(
                        "{}: {}",
                        l["title"].as_str().unwrap_or_default(),
                        l["text"].as_str().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(" · ");
            let first = list.first().cloned().unwrap_or(Value::Null);
            (
                json!({"labels": list, "label": first, "rotate_s": o["rotate_s"], "session": session}),
                fallback,
            )
        }
        OverlayKind::Counter => {
            let name = o["counter"].as_str().unwrap_or_default();
            let value = ch.counters.get(name).copied().unwrap_or(0);
            let label = o["label"].as_str().unwrap_or_default();
            (
                json!({"counter": {"name": name, "label": label, "value": value,
                                   "command": command_word(config, name)}}),
                format!("{label}: {value}"),
            )
        }
        OverlayKind::Timer => match Setup::of(o) {
            Ok(setup) => {
                let t = ch
                    .timers
                    .get(&config.name)
                    .cloned()
                    .unwrap_or_else(|| Timer::new(&setup));
                let mut timer = t.snapshot(&config.name, &setup, now);
                timer["label"] = o["label"].clone();
                timer["end_text"] = o["end_text"].clone();
                timer["command"] = json!(command_word(config, &config.name));
                let fallback = timer["display"].as_str().unwrap_or_default().to_string();
                (json!({"timer": timer}), fallback)
            }
            Err(e) => (json!({"timer": {"error": e}}), e),
        },
        OverlayKind::Credits => {
            let sections: Vec<Value> = o["sections"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|s| {
                    let people = session["credits"][s].clone();
                    let none = people.as_array().is_none_or(Vec::is_empty);
                    json!({"key": s, "title": labels::credits_title(s), "people": people, "empty": none})
                })
                .filter(|s| s["empty"] == json!(false))
                .collect();
            let fallback = o["title"].as_str().unwrap_or_default().to_string();
            (
                json!({"credits": {"title": o["title"], "sections": sections,
                                   "duration_s": o["duration_s"], "repeat": o["repeat"]},
                       "session": session}),
                fallback,
            )
        }
        OverlayKind::Hypetrain => {
            let show = o["show_result_s"].as_f64().unwrap_or(10.0);
            let top = o["top"].as_u64().unwrap_or(3) as usize;
            let train = ch
                .train
                .as_ref()
                .map(|t| t.snapshot(now, show, top))
                .unwrap_or_else(
                    || json!({"active": false, "ended": false, "shown": false, "hide_at": 0}),
                );
            let fallback = format!("Hype train level {}", train["level"]);
            let ends_at = if train["active"] == json!(true) {
                train["expires_at"].clone()
            } else {
                Value::Null
            };
            (
                json!({"train": train.clone(), "label": o["label"], "now": now,
                       "ends_at": ends_at, "hide_at": train["hide_at"]}),
                fallback,
            )
        }
        OverlayKind::Poll => {
            let show = o["show_result_s"].as_f64().unwrap_or(15.0);
            let wanted = |v: &live::Vote| {
                if v.is_poll() {
                    o["polls"] != json!(false)
                } else {
                    o["predictions"] != json!(false)
                }
            };
            let vote = ch
                .vote
                .as_ref()
                .filter(|v| wanted(v))
                .map(|v| v.snapshot(now, show))
                .unwrap_or_else(|| json!({"active": false, "ended": false, "shown": false, "hide_at": 0, "choices": []}));
            let fallback = vote["title"].as_str().unwrap_or_default().to_string();
            let ends_at = if vote["active"] == json!(true) {
                vote["closes_at"].clone()
            } else {
                Value::Null
            };
            (
                json!({"poll": vote.clone(), "now": now, "ends_at": ends_at, "hide_at": vote["hide_at"]}),
                fallback,
            )
        }
        _ => (json!({}), String::new()),
    }
}

/// A made-up channel with a session of every kind of supporter, a counter at 7 and a subathon
/// with time added: what a preview or a theme's check renders.
fn sample_channel(config: &OverlayConfig) -> Channel {
    use crate::event::Platform;
    let now = now_ms();
    let mut ch = Channel {
        session: Session::start(now, Cause::Online),
        ..Channel::default()
    };
    ch.session.live = true;
    let names = ["Ann", "Bob", "Cy", "Dee", "Eve"];
    let data = |kind: Kind, d: Value| {
        let mut d = d.as_object().cloned().unwrap_or_default();
        crate::event::complete(kind, &mut d);
        Event::new(Platform::Twitch, "sample", kind, Value::Object(d))
    };
    let mut events = Vec::new();
    for (i, n) in names.iter().enumerate() {
        events.push(data(Kind::Follow, json!({"user_name": n})));
        events.push(data(
            Kind::ChatMessage,
            json!({"author": {"display_name": n}, "text": "hi", "first_message": i == 0}),
        ));
    }
    events.push(data(Kind::Sub, json!({"user_name": "Bob", "tier": "1000"})));
    events.push(data(
        Kind::Resub,
        json!({"user_name": "Cy", "tier": "2000", "months": 12}),
    ));
    events.push(data(
        Kind::GiftBomb,
        json!({"user_name": "Dee", "total": 10}),
    ));
    events.push(data(Kind::Cheer, json!({"user_name": "Eve", "bits": 1000})));
    events.push(data(Kind::Cheer, json!({"user_name": "Ann", "bits": 250})));
    events.push(data(
        Kind::Raid,
        json!({"user_name": "FriendlyStreamer", "viewers": 42}),
    ));
    let mut sc = Event::new(
        Platform::Youtube,
        "sample",
        Kind::ChatMessage,
        json!({"author": {"login": "ytfan", "display_name": "YT Fan"}, "text": "great stream",
               "monetary": {"amount": 10.0, "currency": "USD", "formatted": "$10.00"}}),
    );
    sc.at = now;
    events.push(sc);
    for e in &events {
        ch.session.apply(e);
    }
    let counter = config.options["counter"]
        .as_str()
        .unwrap_or("deaths")
        .to_string();
    ch.counters.insert(counter, 7);
    let top = json!([{"user_name": "Eve", "user_login": "eve", "type": "bits", "total": 1000},
                     {"user_name": "Dee", "user_login": "dee", "type": "subscription", "total": 2500}]);
    live::Train::apply(
        &mut ch.train,
        &data(
            Kind::HypeTrainProgress,
            json!({"level": 3, "total": 4200, "progress": 650, "goal": 1000,
            "expires_at": now + 180_000, "started_at": now, "top_contributions": top}),
        ),
    );
    ch.vote = Some(live::Vote::from(&data(
        Kind::PollProgress,
        json!({"poll_id": "sample", "title": "Which boss next?", "status": "active", "ends_at": now + 90_000,
               "choices": [{"id": "a", "title": "The dragon", "votes": 42}, {"id": "b", "title": "The lich", "votes": 27},
                           {"id": "c", "title": "Both at once", "votes": 11}]}),
    )));
    if let Ok(setup) = Setup::of(&config.options) {
        let mut t = Timer::new(&setup);
        for e in &events {
            t.extend(&setup, e, now);
        }
        let _ = t.apply(&setup, TimerOp::Start, now);
        ch.timers.insert(config.name.clone(), t);
    }
    ch
}

/// Checks that `theme`'s widget templates render with a sample of every widget kind, so a
/// mistake is caught at save time, not mid-stream.
pub fn validate(theme: &crate::theme::Theme) -> Result<(), crate::theme::ThemeError> {
    for kind in OverlayKind::ALL.into_iter().filter(|k| k.is_widget()) {
        let template = crate::overlay::widget_template(kind);
        if !theme.has(&template) {
            continue;
        }
        let mut config = OverlayConfig::builtin(kind, "sample");
        config.theme = theme.name.clone();
        let fields = crate::theme::fields::resolve(&theme.fields, &config.fields).0;
        let (state, _) = widget_state(&config, &sample_channel(&config), now_ms());
        let ctx = crate::overlay::widget_context(&config, &fields, state);
        theme.render(&template, ctx)?;
    }
    Ok(())
}

/// Sends each widget overlay's state to its pages when it changes, writes the label files and
/// saves; until shutdown.
pub async fn run(widgets: Arc<Widgets>, shutdown: CancellationToken) {
    let mut last_save = Instant::now() - SAVE_EVERY;
    let mut version = 0;
    loop {
        let v = widgets.overlays.version();
        if v != version {
            version = v;
            widgets.mark_all();
        }
        let dirty = widgets.take_dirty();
        if !dirty.is_empty() {
            let overlays = widgets.overlays.all();
            for o in overlays
                .iter()
                .filter(|o| o.config.kind.is_widget() && dirty.contains(&o.config.channel))
            {
                let name = o.config.name.clone();
                if let Some(state) = widgets.page_state(&name) {
                    let frame = crate::frame::control("widget", &state);
                    widgets.bus.announce(Message::Overlay { name, frame });
                }
            }
            for channel in &dirty {
                let _ = widgets.changes.send(channel.clone());
            }
            if widgets.config.label_files {
                widgets.write_labels(&dirty).await;
            }
        }
        let mut next = None;
        if let Some(due) = widgets.save_due() {
            if last_save.elapsed() >= due {
                widgets.save().await;
                last_save = Instant::now();
            } else {
                next = Some(last_save + due);
            }
        }
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => tokio::time::sleep(LOOK_EVERY).await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = widgets.wake.notified() => {
                // Let a burst gather into one pass.
                if !crate::source::sleep_or_cancel(RENDER_EVERY, &shutdown).await { break }
            }
            _ = sleep => {}
        }
    }
    widgets.save().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(dir: &std::path::Path) -> (Arc<Bus>, Arc<Overlays>, Arc<Widgets>) {
        let themes = Arc::new(crate::theme::Registry::new(dir));
        assert!(themes.load_all().is_empty());
        let overlays = Arc::new(Overlays::new(themes));
        let mut counter = crate::overlay::OverlayConfig::builtin(OverlayKind::Counter, "chan");
        counter.name = "deaths".into();
        let mut timer = crate::overlay::OverlayConfig::builtin(OverlayKind::Timer, "chan");
        timer.name = "subathon".into();
        timer.options["mode"] = json!("subathon");
        overlays.set_all([counter, timer]);
        let bus = Arc::new(Bus::new(100));
        let widgets = Widgets::new(overlays.clone(), bus.clone(), WidgetsConfig::default(), dir);
        (bus, overlays, widgets)
    }

    fn chat(moderator: bool, text: &str) -> Event {
        let mut d =
            json!({"author": {"login": "m", "roles": {"moderator": moderator}}, "text": text})
                .as_object()
                .cloned()
                .unwrap_or_default();
        crate::event::complete(Kind::ChatMessage, &mut d);
        Event::new(
            crate::event::Platform::Twitch,
            "chan",
            Kind::ChatMessage,
            Value::Object(d),
        )
    }

    #[test]
    fn bundled_themes_render_every_widget_with_a_sample_session() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_bus, overlays, _w) = setup(dir.path());
        for name in overlays.themes().names() {
            let theme = overlays.themes().get(&name).expect("theme");
            validate(&theme).expect("valid");
            for kind in OverlayKind::ALL.into_iter().filter(|k| k.is_widget()) {
                let mut config = OverlayConfig::builtin(kind, "sample");
                config.theme = name.clone();
                overlays.upsert(config);
                let overlay = overlays.get(kind.as_str()).expect("overlay");
                let html = Widgets::sample_state(&overlay, &overlays.shared)["html"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let expect = match kind {
                    OverlayKind::Labels => "Eve",
                    OverlayKind::Counter => ">7<",
                    OverlayKind::Timer => "data-timer-clock",
                    OverlayKind::Hypetrain => "Eve",
                    OverlayKind::Poll => "The dragon",
                    _ => "FriendlyStreamer",
                };
                assert!(html.contains(expect), "{name} {kind:?}: {html}");
            }
        }
    }

    #[test]
    fn moderators_steer_counters_and_timers_in_chat_and_viewers_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_bus, _o, w) = setup(dir.path());
        for (moderator, text) in [
            (true, "!deaths+"),
            (true, "!deaths+ 3"),
            (false, "!deaths+ 100"),
            (true, "!deaths-"),
            (true, "!subathon add 60"),
            (false, "!subathon add 6000"),
            (true, "!subathon reset"),
        ] {
            w.observe(&chat(moderator, text));
        }
        assert_eq!(w.counters("chan")["deaths"], 3);
        let t = &w.state("chan")["timers"]["subathon"];
        assert_eq!(t["remaining_ms"], 660_000);
        w.observe(&chat(true, "!deaths= 0"));
        w.observe(&chat(true, "!deaths-"));
        assert_eq!(w.counters("chan")["deaths"], 0);
    }
}
