//! Alert control: every alert overlay's queue lives here, on the server, so every open page of
//! an overlay shows the same alert, a page that reloads comes back to the same queue, and the
//! streamer, a Stream Deck, a tool and a moderator in chat steer it through one implementation
//! ([`Alerts::command`], [`Alerts::safe_mode`]).
//!
//! Events come in through [`Alerts::offer`], the publisher's callback, which runs under the
//! bus's lock: it only records and wakes [`run`], the one task that moves time on, renders
//! the alert that starts, sends each overlay's state to its pages (`event: alerts`), publishes
//! the chat clear of safe mode and saves the state (`alerts.json` in the data dir: paused,
//! muted, the queues, safe mode and the follows already alerted survive a restart).

pub mod queue;

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
use crate::config::AlertsConfig;
use crate::event::{Event, Kind, Platform, now_ms};
use crate::overlay::{Overlay, OverlayKind, Overlays};
use crate::source::Publisher;
use queue::{Alert, Follows, Pushed, Queue, Timing};

/// State is written at most this often (a flood of alerts is one write, not thousands).
const SAVE_EVERY: Duration = Duration::from_millis(500);
/// Queued alerts a state lists (all are counted in `queued_count`).
const SHOWN_QUEUED: usize = 100;
/// The longest safe mode one request may ask for.
const MAX_SAFE_MINUTES: f64 = 24.0 * 60.0;

/// What may be done to an alert queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Pause,
    Resume,
    Skip,
    Clear,
    Mute,
    Unmute,
    /// Play a past event again (`None`: the last alert).
    Replay(Option<u64>),
}

impl Command {
    /// The command named `action` (`replay` with `id`).
    pub fn parse(action: &str, id: Option<u64>) -> Option<Command> {
        Some(match action {
            "pause" => Command::Pause,
            "resume" => Command::Resume,
            "skip" => Command::Skip,
            "clear" => Command::Clear,
            "mute" => Command::Mute,
            "unmute" => Command::Unmute,
            "replay" => Command::Replay(id),
            _ => return None,
        })
    }

    pub const ACTIONS: &'static str = "pause, resume, skip, clear, mute, unmute, replay";
}

/// Why a command could not be carried out, each saying what to do instead.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AlertError {
    #[error(
        "no alert overlay shows channel \"{0}\": add one in overlays/ (kind = \"alerts\", channel = \"{0}\")"
    )]
    NoOverlay(String),
    #[error(
        "\"{overlay}\" is not an alert overlay of channel \"{channel}\"; see GET /api/overlays"
    )]
    NotAnAlertOverlay { overlay: String, channel: String },
    #[error(
        "event {id} is not in the history of channel \"{channel}\"; see GET /api/channels/{channel}/events"
    )]
    UnknownEvent { id: u64, channel: String },
    #[error("there is no alert to replay yet on channel \"{0}\"; name one: {{\"id\": <event id>}}")]
    NothingToReplay(String),
    #[error("event {id} is a {kind} event, which no alert overlay of this channel shows")]
    NotAnAlert { id: u64, kind: &'static str },
    #[error("minutes must be more than 0 and at most {MAX_SAFE_MINUTES}")]
    BadMinutes,
}

/// Safe mode of one channel.
#[derive(Clone, Copy, Debug)]
struct Safe {
    until: Instant,
    until_ms: u64,
    all: bool,
}

#[derive(Default)]
struct Inner {
    queues: BTreeMap<String, Queue>,
    safe: BTreeMap<String, Safe>,
    follows: Follows,
    next_play: u64,
    /// Orders every state a page is sent; starts from the wall clock (µs), like event ids.
    seq: u64,
    /// Overlays whose pages must be sent their state.
    dirty: BTreeSet<String>,
    /// Channels whose chat overlays safe mode clears.
    clear_chat: BTreeSet<String>,
    save: bool,
}

impl Inner {
    fn touch(&mut self, overlay: &str) {
        self.seq += 1;
        let seq = self.seq;
        self.queues.entry(overlay.to_string()).or_default().seq = seq;
        self.dirty.insert(overlay.to_string());
        self.save = true;
    }
}

/// Every alert overlay's queue, and safe mode per channel.
pub struct Alerts {
    overlays: Arc<Overlays>,
    bus: Arc<Bus>,
    config: AlertsConfig,
    file: PathBuf,
    inner: Mutex<Inner>,
    wake: Notify,
    /// The channels whose alert state changed, for the events socket.
    changes: broadcast::Sender<String>,
    /// The HTML of each overlay's alert on screen: (play, html).
    html: Mutex<HashMap<String, (u64, Arc<str>)>>,
    /// Whether an event is the largest of its kind this session (asked of the sessions, which
    /// live above the alerts; set once by the app).
    largest: std::sync::OnceLock<Box<Judge>>,
}

type Judge = dyn Fn(&Event) -> bool + Send + Sync;

impl Alerts {
    /// The alerts of `overlays`, with the state saved in `data_dir` (if any) restored.
    pub fn new(
        overlays: Arc<Overlays>,
        bus: Arc<Bus>,
        config: AlertsConfig,
        data_dir: &std::path::Path,
    ) -> Arc<Alerts> {
        let file = data_dir.join("alerts.json");
        let inner = match std::fs::read(&file) {
            Ok(bytes) => match serde_json::from_slice::<Saved>(&bytes) {
                Ok(saved) => saved.restore(),
                Err(e) => {
                    tracing::warn!("{}: {e}; alert queues start empty", file.display());
                    Inner::default()
                }
            },
            Err(_) => Inner::default(),
        };
        let mut inner = inner;
        // Pages keep the last `seq` and play they saw across a restart: start past them.
        inner.seq = now_ms().saturating_mul(1000);
        inner.next_play = inner.seq;
        for q in inner.queues.values_mut() {
            q.seq = inner.seq;
        }
        Arc::new(Alerts {
            overlays,
            bus,
            config,
            file,
            inner: Mutex::new(inner),
            wake: Notify::new(),
            changes: broadcast::channel(64).0,
            html: Mutex::default(),
            largest: std::sync::OnceLock::new(),
        })
    }

    /// Sets who says whether an event is the largest of its kind this session, for
    /// `largest = true` variations (once; later calls are ignored). Asked before the event
    /// is counted.
    pub fn judge_largest(&self, judge: impl Fn(&Event) -> bool + Send + Sync + 'static) {
        let _ = self.largest.set(Box::new(judge));
    }

    /// Follows the channels whose alert state changes.
    pub fn changes(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    /// Every alert overlay the streamer configured.
    fn alert_overlays(&self) -> Vec<Arc<Overlay>> {
        self.overlays
            .all()
            .into_iter()
            .filter(|o| o.config.kind == OverlayKind::Alerts)
            .collect()
    }

    /// The alert overlays a command for `channel` (and `overlay`, if named) acts on.
    fn targets(
        &self,
        channel: &str,
        overlay: Option<&str>,
    ) -> Result<Vec<Arc<Overlay>>, AlertError> {
        let all: Vec<Arc<Overlay>> = self
            .alert_overlays()
            .into_iter()
            .filter(|o| o.config.channel == channel)
            .collect();
        match overlay {
            Some(name) => {
                let one: Vec<_> = all.into_iter().filter(|o| o.config.name == name).collect();
                if one.is_empty() {
                    return Err(AlertError::NotAnAlertOverlay {
                        overlay: name.to_string(),
                        channel: channel.to_string(),
                    });
                }
                Ok(one)
            }
            None if all.is_empty() => Err(AlertError::NoOverlay(channel.to_string())),
            None => Ok(all),
        }
    }

    /// The publisher's callback: queues `event` on every alert overlay that shows it (unless
    /// safe mode stops it, or its follower was alerted today) and carries out a moderator's
    /// chat command. Runs under the bus's lock: records and wakes, nothing more.
    pub fn offer(&self, event: &Event) {
        if event.history {
            return;
        }
        // A recording's chat lines steer nothing (a rehearsal must not pause the real queue).
        if event.kind == Kind::ChatMessage && !event.replay {
            self.chat_command(event);
        }
        let targets: Vec<Arc<Overlay>> = self
            .alert_overlays()
            .into_iter()
            .filter(|o| o.wants(event))
            .collect();
        if targets.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut inner = self.inner.lock();
        if let Some(safe) = inner.safe.get(&event.channel)
            && now < safe.until
            && (safe.all || event.kind == Kind::Follow)
        {
            return;
        }
        // A rehearsal's follows are not real ones: they neither use up nor record a user's day.
        if event.kind == Kind::Follow
            && !event.replay
            && let Some(key) = Follows::key(event)
            && !inner.follows.first_today(&key, now_ms())
        {
            inner.save = true;
            return;
        }
        let largest = !event.replay && self.largest.get().is_some_and(|judge| judge(event));
        let event = Arc::new(event.clone());
        for overlay in targets {
            let name = &overlay.config.name;
            let bound = Timing::of(&overlay.config.options).bound;
            let queue = inner.queues.entry(name.clone()).or_default();
            let pushed = queue.push(
                Alert {
                    event: event.clone(),
                    replay: false,
                    largest,
                },
                bound,
            );
            if pushed == Pushed::Refused {
                tracing::warn!(overlay = %name, kind = event.kind.as_str(), "alert queue full: an alert was not queued");
            }
            inner.touch(name);
        }
        drop(inner);
        self.wake.notify_one();
    }

    /// A chat line of the broadcaster or a moderator that is one of the configured commands.
    fn chat_command(&self, event: &Event) {
        if !self.config.chat_commands {
            return;
        }
        let roles = &event.data["author"]["roles"];
        if roles["broadcaster"] != json!(true) && roles["moderator"] != json!(true) {
            return;
        }
        let text = event.data["text"].as_str().unwrap_or_default();
        let mut words = text.split_whitespace();
        let Some(word) = words.next().map(str::to_lowercase) else {
            return;
        };
        let Some((action, _)) = self
            .config
            .commands
            .all()
            .into_iter()
            .find(|(_, w)| !w.is_empty() && *w == word)
        else {
            return;
        };
        let channel = &event.channel;
        let who = event.data["author"]["login"].as_str().unwrap_or_default();
        let done = if action == "safe_mode" {
            let minutes = match words.next() {
                Some("off" | "end" | "stop") => None,
                Some(n) => Some(n.parse().unwrap_or(self.config.safe_mode_minutes)),
                None => Some(self.config.safe_mode_minutes),
            };
            self.safe_mode(channel, minutes).map(|_| ())
        } else {
            let command = Command::parse(action, None).expect("every command word has an action");
            self.targets(channel, None)
                .map(|targets| self.apply(&targets, command, None))
        };
        match done {
            Ok(()) => tracing::info!(channel = %channel, by = who, "chat command {word}"),
            Err(e) => tracing::info!(channel = %channel, by = who, "chat command {word}: {e}"),
        }
    }

    /// Carries out `command` on the alert overlays of `channel` (or the one named), and
    /// answers the channel's alert state. Not for the bus's callback: a replay by id reads
    /// the event log.
    pub fn command(
        &self,
        channel: &str,
        overlay: Option<&str>,
        command: Command,
    ) -> Result<Value, AlertError> {
        let targets = self.targets(channel, overlay)?;
        let found = match command {
            Command::Replay(Some(id)) => {
                let event = self.find(channel, id)?;
                if !targets.iter().any(|o| o.wants(&live(&event))) {
                    return Err(AlertError::NotAnAlert {
                        id,
                        kind: event.kind.as_str(),
                    });
                }
                Some(event)
            }
            Command::Replay(None) => {
                let has_last = {
                    let inner = self.inner.lock();
                    targets.iter().any(|o| {
                        inner
                            .queues
                            .get(&o.config.name)
                            .is_some_and(|q| q.last.is_some())
                    })
                };
                if has_last {
                    None
                } else {
                    // Nothing played since the start: the latest event an alert would show.
                    let latest = self
                        .bus
                        .history(channel, 200, None)
                        .into_iter()
                        .find(|e| targets.iter().any(|o| o.wants(&live(e))))
                        .ok_or_else(|| AlertError::NothingToReplay(channel.to_string()))?;
                    Some(latest)
                }
            }
            _ => None,
        };
        self.apply(&targets, command, found);
        Ok(self.state(channel, overlay))
    }

    /// The event `id` of `channel`, from the log.
    fn find(&self, channel: &str, id: u64) -> Result<Event, AlertError> {
        self.bus
            .history(channel, 1, Some(id.saturating_add(1)))
            .into_iter()
            .find(|e| e.id == id)
            .ok_or_else(|| AlertError::UnknownEvent {
                id,
                channel: channel.to_string(),
            })
    }

    fn apply(&self, targets: &[Arc<Overlay>], command: Command, found: Option<Event>) {
        let now = Instant::now();
        let found = found.map(Arc::new);
        let mut inner = self.inner.lock();
        for overlay in targets {
            let name = &overlay.config.name;
            let q = inner.queues.entry(name.clone()).or_default();
            match command {
                Command::Pause => q.paused = true,
                Command::Resume => q.paused = false,
                Command::Mute => q.muted = true,
                Command::Unmute => q.muted = false,
                Command::Skip => {
                    q.skip(now, Timing::of(&overlay.config.options));
                }
                Command::Clear => {
                    q.clear();
                }
                Command::Replay(_) => {
                    let event = match &found {
                        // Each overlay replays only what it shows.
                        Some(e) if overlay.wants(&live(e)) => Some(e.clone()),
                        Some(_) => None,
                        None => q.last.as_ref().map(|a| a.event.clone()),
                    };
                    if let Some(event) = event {
                        // Asked for by hand: past the bound too.
                        q.push(
                            Alert {
                                event,
                                replay: true,
                                largest: false,
                            },
                            queue::MAX_QUEUED,
                        );
                    }
                }
            }
            inner.touch(name);
        }
        drop(inner);
        self.wake.notify_one();
    }

    /// Starts safe mode on `channel` for `minutes` (or ends it: `None`), and answers the
    /// channel's alert state. Clears the queued alerts of its alert overlays and its chat
    /// overlays; stops follow alerts (every alert with `safe_mode_all`) until it ends.
    pub fn safe_mode(&self, channel: &str, minutes: Option<f64>) -> Result<Value, AlertError> {
        if let Some(m) = minutes
            && !(m > 0.0 && m <= MAX_SAFE_MINUTES)
        {
            return Err(AlertError::BadMinutes);
        }
        let targets: Vec<Arc<Overlay>> = self
            .alert_overlays()
            .into_iter()
            .filter(|o| o.config.channel == channel)
            .collect();
        let mut inner = self.inner.lock();
        match minutes {
            Some(m) => {
                let length = Duration::from_secs_f64(m * 60.0);
                inner.safe.insert(
                    channel.to_string(),
                    Safe {
                        until: Instant::now() + length,
                        until_ms: now_ms() + length.as_millis() as u64,
                        all: self.config.safe_mode_all,
                    },
                );
                for o in &targets {
                    inner
                        .queues
                        .entry(o.config.name.clone())
                        .or_default()
                        .clear();
                }
                inner.clear_chat.insert(channel.to_string());
                tracing::warn!(channel, minutes = m, "safe mode on");
            }
            None => {
                if inner.safe.remove(channel).is_some() {
                    tracing::info!(channel, "safe mode ended");
                }
            }
        }
        for o in &targets {
            inner.touch(&o.config.name);
        }
        inner.save = true;
        drop(inner);
        let _ = self.changes.send(channel.to_string());
        self.wake.notify_one();
        Ok(self.state(channel, None))
    }

    /// What page `page` of overlay `name` says: on air, off air, or gone (`None`). Answers
    /// whether the overlay is on air now and the `seq` of its state (a page that missed a
    /// change sees it differ and asks for the state).
    pub fn presence(
        &self,
        name: &str,
        page: &str,
        on_air: Option<bool>,
    ) -> Result<(bool, u64), AlertError> {
        let overlay = self
            .overlays
            .get(name)
            .filter(|o| o.config.kind == OverlayKind::Alerts)
            .ok_or_else(|| AlertError::NotAnAlertOverlay {
                overlay: name.to_string(),
                channel: String::new(),
            })?;
        let now = Instant::now();
        let mut inner = self.inner.lock();
        let q = inner.queues.entry(overlay.config.name.clone()).or_default();
        q.presence(page, on_air, now);
        let answer = (q.on_air(now), q.seq);
        drop(inner);
        self.wake.notify_one();
        Ok(answer)
    }

    /// The alert state of `channel`: safe mode, each alert overlay (`overlays`) and, at the
    /// top, the first one's (or the named one's) `paused`, `muted`, `playing` and `queued`.
    pub fn state(&self, channel: &str, overlay: Option<&str>) -> Value {
        let now = Instant::now();
        let inner = self.inner.lock();
        let list: Vec<Value> = self
            .alert_overlays()
            .iter()
            .filter(|o| o.config.channel == channel)
            .filter(|o| overlay.is_none_or(|n| o.config.name == n))
            .map(|o| {
                let q = inner.queues.get(&o.config.name);
                overlay_json(o, q, now)
            })
            .collect();
        let safe = safe_json(inner.safe.get(channel), now);
        drop(inner);
        let mut state = list.first().cloned().unwrap_or_else(
            || json!({"paused": false, "muted": false, "playing": null, "queued": []}),
        );
        state["channel"] = json!(channel);
        state["safe_mode"] = safe;
        state["overlays"] = json!(list);
        state
    }

    /// What the pages of overlay `name` show: its state with the HTML of the alert on screen
    /// (rendered once per play, off the lock). `None` for an overlay that is not an alert one.
    pub fn page_state(&self, name: &str) -> Option<Value> {
        let overlay = self
            .overlays
            .get(name)
            .filter(|o| o.config.kind == OverlayKind::Alerts)?;
        let now = Instant::now();
        let (mut state, playing) = {
            let inner = self.inner.lock();
            let q = inner.queues.get(name);
            let playing = q.and_then(|q| q.playing.clone());
            (overlay_json(&overlay, q, now), playing)
        };
        if let Some(p) = playing {
            let cached = self
                .html
                .lock()
                .get(name)
                .filter(|(play, _)| *play == p.play)
                .map(|(_, html)| html.clone());
            let html = cached.unwrap_or_else(|| {
                let html: Arc<str> = overlay
                    .alert_html(
                        &p.alert.event,
                        &self.overlays.shared,
                        p.alert.replay,
                        p.alert.largest,
                    )
                    .into();
                self.html
                    .lock()
                    .insert(name.to_string(), (p.play, html.clone()));
                html
            });
            state["playing"]["html"] = json!(&*html);
            state["playing"]["platform"] = json!(p.alert.event.platform);
            let v = crate::overlay::variation::of(
                &overlay.config.options,
                &p.alert.event,
                p.alert.largest,
            );
            if let Value::Object(extra) =
                crate::overlay::variation::page_json(v.as_ref(), &overlay.config.theme)
            {
                for (k, x) in extra {
                    state["playing"][k] = x;
                }
            }
            state["sound"] = json!(overlay.config.options["sound"] != json!(false));
        }
        Some(state)
    }

    /// Moves every queue on to now; the overlays to send, the channels to clear and when to
    /// look again.
    fn step(&self) -> (Vec<String>, Vec<String>, Option<Instant>, bool) {
        let now = Instant::now();
        let overlays = self.alert_overlays();
        let mut inner = self.inner.lock();
        let inner = &mut *inner;
        let mut next: Option<Instant> = None;
        let mut sooner = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        for o in &overlays {
            let q = inner.queues.entry(o.config.name.clone()).or_default();
            let (changed, when) = q.step(now, &o.config.options, &mut inner.next_play);
            if changed {
                inner.seq += 1;
                q.seq = inner.seq;
                inner.dirty.insert(o.config.name.clone());
                inner.save = true;
            }
            if let Some(t) = when {
                sooner(t);
            }
        }
        let ended: Vec<String> = inner
            .safe
            .iter()
            .filter(|(_, s)| now >= s.until)
            .map(|(c, _)| c.clone())
            .collect();
        for channel in &ended {
            inner.safe.remove(channel);
            tracing::info!(channel = %channel, "safe mode ended");
            for o in overlays.iter().filter(|o| &o.config.channel == channel) {
                inner.touch(&o.config.name);
            }
            let _ = self.changes.send(channel.clone());
        }
        for s in inner.safe.values() {
            sooner(s.until);
        }
        let dirty = std::mem::take(&mut inner.dirty).into_iter().collect();
        let clear = std::mem::take(&mut inner.clear_chat).into_iter().collect();
        (dirty, clear, next, std::mem::take(&mut inner.save))
    }

    fn saved(&self) -> Vec<u8> {
        let inner = self.inner.lock();
        serde_json::to_vec(&Saved::of(&inner)).unwrap_or_default()
    }

    async fn save(&self) {
        let (bytes, file) = (self.saved(), self.file.clone());
        let written =
            tokio::task::spawn_blocking(move || crate::files::replace(&file, &bytes)).await;
        if let Ok(Err(e)) = written {
            tracing::warn!("saving {}: {e}", self.file.display());
        }
    }
}

/// Moves every alert queue on in time, sends each overlay's state to its pages when it
/// changes, clears the chat overlays safe mode asks to, and saves; until shutdown.
pub async fn run(alerts: Arc<Alerts>, publisher: Publisher, shutdown: CancellationToken) {
    let mut last_save = Instant::now() - SAVE_EVERY;
    let mut unsaved = false;
    loop {
        let (dirty, clear, mut next, save) = alerts.step();
        for channel in clear {
            let data = json!({"all_platforms": true, "reason": "safe mode"});
            let event = Event::new(Platform::Twitch, channel, Kind::ChatClear, data);
            publisher.publish_or_log(event);
        }
        let mut channels = BTreeSet::new();
        for name in dirty {
            if let Some(state) = alerts.page_state(&name) {
                if let Some(c) = state["channel"].as_str() {
                    channels.insert(c.to_string());
                }
                let frame = crate::frame::control("alerts", &state);
                alerts.bus.announce(Message::Overlay { name, frame });
            }
        }
        for channel in channels {
            let _ = alerts.changes.send(channel);
        }
        unsaved |= save;
        if unsaved {
            if last_save.elapsed() >= SAVE_EVERY {
                alerts.save().await;
                last_save = Instant::now();
                unsaved = false;
            } else {
                let at = last_save + SAVE_EVERY;
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = alerts.wake.notified() => {}
            _ = sleep => {}
        }
    }
    alerts.save().await;
}

/// `event` as if it had just happened: a replay may show what was seeded from history.
fn live(event: &Event) -> Event {
    let mut e = event.clone();
    e.history = false;
    e
}

/// One overlay's state as pages, the dashboard and tools read it (no HTML).
fn overlay_json(overlay: &Overlay, q: Option<&Queue>, now: Instant) -> Value {
    let empty = Queue::default();
    let q = q.unwrap_or(&empty);
    let timing = Timing::of(&overlay.config.options);
    let playing = q.remaining(now).map(|(p, left)| {
        let mut v = alert_json(&p.alert);
        v["play"] = json!(p.play);
        v["duration_ms"] = json!(p.duration.as_millis() as u64);
        v["remaining_ms"] = json!(left.as_millis() as u64);
        v
    });
    json!({
        "overlay": overlay.config.name,
        "channel": overlay.config.channel,
        "seq": q.seq,
        "paused": q.paused,
        "muted": q.muted,
        "on_air": q.on_air(now),
        "hold_off_air": timing.hold,
        "held": q.held(now, timing),
        "playing": playing,
        // The first of them; all are counted.
        "queued": q.queued.iter().take(SHOWN_QUEUED).map(alert_json).collect::<Vec<_>>(),
        "queued_count": q.queued.len(),
        "max_queue": timing.bound,
        "refused": q.refused,
    })
}

fn alert_json(a: &Alert) -> Value {
    let mut v = json!({
        "id": a.event.id,
        "kind": a.event.kind,
        "replay": a.replay,
        "summary": crate::theme::helpers::summary(&json!(&*a.event)),
    });
    if let Some(n) = a.event.data["merged"].as_u64() {
        v["merged"] = json!(n);
    }
    v
}

fn safe_json(safe: Option<&Safe>, now: Instant) -> Value {
    match safe {
        Some(s) if now < s.until => json!({
            "until_ms": s.until_ms,
            "remaining_s": s.until.saturating_duration_since(now).as_secs(),
            "all": s.all,
        }),
        _ => Value::Null,
    }
}

/// What `alerts.json` holds. The alert on screen is saved at the head of its queue: after a
/// restart it plays again from the start.
#[derive(Serialize, Deserialize, Default)]
struct Saved {
    #[serde(default)]
    overlays: BTreeMap<String, SavedQueue>,
    /// Channel -> safe mode's end (ms since the epoch) and whether it stops every alert.
    #[serde(default)]
    safe: BTreeMap<String, (u64, bool)>,
    #[serde(default)]
    follows: Vec<(String, u64)>,
}

#[derive(Serialize, Deserialize, Default)]
struct SavedQueue {
    #[serde(default)]
    paused: bool,
    #[serde(default)]
    muted: bool,
    #[serde(default)]
    queued: Vec<(Event, bool)>,
    #[serde(default)]
    last: Option<(Event, bool)>,
}

impl Saved {
    fn of(inner: &Inner) -> Saved {
        let pair = |a: &Alert| ((*a.event).clone(), a.replay);
        Saved {
            overlays: inner
                .queues
                .iter()
                .map(|(name, q)| {
                    let queued = q
                        .playing
                        .iter()
                        .map(|p| &p.alert)
                        .chain(q.queued.iter())
                        .map(pair)
                        .collect();
                    let saved = SavedQueue {
                        paused: q.paused,
                        muted: q.muted,
                        queued,
                        last: q.last.as_ref().map(pair),
                    };
                    (name.clone(), saved)
                })
                .collect(),
            safe: inner
                .safe
                .iter()
                .map(|(c, s)| (c.clone(), (s.until_ms, s.all)))
                .collect(),
            follows: inner.follows.entries().cloned().collect(),
        }
    }

    fn restore(self) -> Inner {
        let mut inner = Inner::default();
        // Which queued alert was the largest is not kept: a restart plays it as any other.
        let alert = |(event, replay): (Event, bool)| Alert {
            event: Arc::new(event),
            replay,
            largest: false,
        };
        for (name, saved) in self.overlays {
            let q = inner.queues.entry(name).or_default();
            q.paused = saved.paused;
            q.muted = saved.muted;
            q.last = saved.last.map(alert);
            for a in saved.queued {
                q.push(alert(a), queue::MAX_QUEUED);
            }
        }
        let (now, wall) = (Instant::now(), now_ms());
        for (channel, (until_ms, all)) in self.safe {
            if until_ms > wall {
                let until = now + Duration::from_millis(until_ms - wall);
                inner.safe.insert(
                    channel,
                    Safe {
                        until,
                        until_ms,
                        all,
                    },
                );
            }
        }
        for (key, at) in self.follows {
            inner.follows.first_today(&key, at);
        }
        inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::OverlayConfig;

    fn setup(dir: &std::path::Path) -> (Arc<Bus>, Arc<Alerts>) {
        let themes = Arc::new(crate::theme::Registry::new(dir));
        assert!(themes.load_all().is_empty());
        let overlays = Arc::new(Overlays::new(themes));
        let mut config = OverlayConfig::builtin(OverlayKind::Alerts, "chan");
        config.options["duration_s"] = json!(5.0);
        config.options["hold_off_air"] = json!(false);
        overlays.upsert(config);
        let bus = Arc::new(Bus::new(100));
        let alerts = Alerts::new(overlays, bus.clone(), AlertsConfig::default(), dir);
        (bus, alerts)
    }

    fn follow(bus: &Bus, alerts: &Alerts, user: &str) -> u64 {
        let data = json!({"user_id": user, "user_login": user, "user_name": user});
        let e = Event::new(Platform::Twitch, "chan", Kind::Follow, data);
        let (item, _) = bus.publish_with(e, |e| alerts.offer(e)).expect("published");
        item.event.id
    }

    fn playing(alerts: &Alerts) -> Option<u64> {
        alerts.state("chan", None)["playing"]["id"].as_u64()
    }

    #[tokio::test(start_paused = true)]
    async fn safe_mode_clears_stops_follows_and_ends_by_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (bus, alerts) = setup(dir.path());
        let publisher = Publisher::new(bus.clone(), crate::source::Status::new(), {
            let a = alerts.clone();
            Arc::new(move |e: &Event| a.offer(e))
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(alerts.clone(), publisher, stop.clone()));
        let first = follow(&bus, &alerts, "a");
        follow(&bus, &alerts, "b");
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(playing(&alerts), Some(first));
        assert_eq!(
            alerts.state("chan", None)["queued"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );

        let state = alerts.safe_mode("chan", Some(2.0)).expect("safe mode");
        assert_eq!(state["queued"], json!([]), "the queue is cleared");
        assert!(state["safe_mode"]["remaining_s"].as_u64() > Some(100));
        follow(&bus, &alerts, "bot1");
        follow(&bus, &alerts, "bot2");
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(playing(&alerts), None, "no follow alert in safe mode");
        let cleared = bus.history("chan", 10, None);
        assert!(
            cleared.iter().any(|e| e.kind == Kind::ChatClear),
            "the chat overlays are cleared"
        );
        // Two minutes after it started it has ended on its own.
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(alerts.state("chan", None)["safe_mode"], Value::Null);
        let after = follow(&bus, &alerts, "c");
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(playing(&alerts), Some(after));
        // "a" followed again today: no second alert.
        follow(&bus, &alerts, "a");
        assert_eq!(alerts.state("chan", None)["queued"], json!([]));
        stop.cancel();
        task.await.expect("driver");
    }

    #[tokio::test(start_paused = true)]
    async fn paused_muted_and_the_queue_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (bus, alerts) = setup(dir.path());
        alerts.command("chan", None, Command::Pause).expect("pause");
        alerts.command("chan", None, Command::Mute).expect("mute");
        let id = follow(&bus, &alerts, "x");
        let publisher = Publisher::new(
            bus.clone(),
            crate::source::Status::new(),
            Arc::new(|_: &Event| {}),
        );
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(alerts.clone(), publisher, stop.clone()));
        tokio::time::sleep(Duration::from_millis(10)).await;
        stop.cancel();
        task.await.expect("driver");
        let (_, again) = setup(dir.path());
        let state = again.state("chan", None);
        assert_eq!(
            (state["paused"].clone(), state["muted"].clone()),
            (json!(true), json!(true))
        );
        assert_eq!(state["queued"][0]["id"], json!(id));
        assert_eq!(
            again.command("nochan", None, Command::Skip).unwrap_err(),
            AlertError::NoOverlay("nochan".into())
        );
        assert!(matches!(
            again.command("chan", None, Command::Replay(Some(999_999))),
            Err(AlertError::UnknownEvent { .. })
        ));
    }

    #[test]
    fn a_rehearsal_neither_steers_the_queue_nor_uses_up_a_follow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (bus, alerts) = setup(dir.path());
        let mut command = Event::new(
            Platform::Twitch,
            "chan",
            Kind::ChatMessage,
            json!({"text": "!pause", "author": {"login": "m", "roles": {"moderator": true}}}),
        );
        command.replay = true;
        bus.publish_with(command, |e| alerts.offer(e))
            .expect("replayed");
        assert_eq!(alerts.state("chan", None)["paused"], json!(false));
        let data = json!({"user_id": "7", "user_login": "fan", "user_name": "fan"});
        let mut rehearsed = Event::new(Platform::Twitch, "chan", Kind::Follow, data);
        rehearsed.replay = true;
        bus.publish_with(rehearsed, |e| alerts.offer(e))
            .expect("replayed");
        // The real follow of the same user still alerts.
        follow(&bus, &alerts, "7");
        let queued = alerts.state("chan", None)["queued_count"].as_u64();
        assert_eq!(queued, Some(2), "{}", alerts.state("chan", None));
    }

    #[test]
    fn only_the_broadcaster_and_moderators_command_in_chat() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (bus, alerts) = setup(dir.path());
        let line = |moderator: bool| {
            let data = json!({"text": "!pause now", "author": {"login": "m", "roles": {"moderator": moderator}}});
            Event::new(Platform::Youtube, "chan", Kind::ChatMessage, data)
        };
        bus.publish_with(line(false), |e| alerts.offer(e))
            .expect("viewer");
        assert_eq!(alerts.state("chan", None)["paused"], json!(false));
        bus.publish_with(line(true), |e| alerts.offer(e))
            .expect("mod");
        assert_eq!(alerts.state("chan", None)["paused"], json!(true));
    }
}
