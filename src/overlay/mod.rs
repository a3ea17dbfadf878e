//! Overlay instances: an overlay is a kind (chat, alerts, ...), a channel, a theme, a filter
//! and options. This module decides which events an overlay shows and renders each event into
//! the SSE frame its theme produces, once per overlay version, shared by all its clients.

pub mod file;
pub mod labels;
pub mod page;
pub mod reload;
pub mod variation;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde_json::{Value, json};

use crate::bus::Item;
use crate::event::{Event, Kind};
use crate::stats::Stats;
use crate::theme::{self, Theme, ThemeError};
pub use file::{OverlayConfig, OverlayKind};

/// One live overlay: its configuration and the theme build it renders with. Replaced whole
/// (with a new render key) when either changes.
#[derive(Debug)]
pub struct Overlay {
    pub config: OverlayConfig,
    pub theme: Arc<Theme>,
    /// Identifies this (config, theme build) pair in each event's frame cache.
    pub key: u64,
    /// The theme's fields with this overlay's values (each valid, else the default).
    pub fields: serde_json::Map<String, Value>,
    /// What is wrong with the values of its file's `[fields]`, each `file:line: …`.
    pub field_errors: Vec<String>,
}

/// Goal progress per goal overlay.
#[derive(Default)]
pub struct Goals {
    current: Mutex<HashMap<String, u64>>,
}

impl Goals {
    pub fn get(&self, overlay: &str) -> u64 {
        self.current.lock().get(overlay).copied().unwrap_or(0)
    }

    fn add(&self, overlay: &str, amount: u64) {
        *self.current.lock().entry(overlay.to_string()).or_default() += amount;
    }
}

/// What an overlay's frames may draw on besides the event itself.
pub struct Shared {
    pub stats: Stats,
    pub goals: Goals,
    /// Frames rendered so far: one per event per overlay version, however many clients.
    pub renders: AtomicU64,
    /// Templates that failed for an event and have not rendered since.
    pub failures: RenderFailures,
}

/// Templates that failed on an event, each kept (with the first failure) until it renders
/// again, and told once to whoever listens (the overlays' error boxes).
#[derive(Default)]
pub struct RenderFailures {
    failed: Mutex<BTreeMap<String, String>>,
    /// Called with (theme, message) when a template starts failing.
    on_new: std::sync::OnceLock<Box<Listener>>,
}

type Listener = dyn Fn(&str, &str) + Send + Sync;

impl RenderFailures {
    /// Sets who hears of a template that starts failing (once; later calls are ignored).
    pub fn listen(&self, f: impl Fn(&str, &str) + Send + Sync + 'static) {
        let _ = self.on_new.set(Box::new(f));
    }

    fn failed(&self, theme: &str, template: &str, message: String) {
        let key = format!("{theme}/{template}");
        let new = match self.failed.lock().entry(key) {
            std::collections::btree_map::Entry::Occupied(_) => false,
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(message.clone());
                true
            }
        };
        if new && let Some(tell) = self.on_new.get() {
            tell(theme, &message);
        }
    }

    fn rendered(&self, theme: &str, template: &str) {
        let mut failed = self.failed.lock();
        if !failed.is_empty() {
            failed.remove(&format!("{theme}/{template}"));
        }
    }

    /// Every template failing now: `theme/template: file:line: message (event N)`.
    pub fn list(&self) -> Vec<String> {
        self.failed.lock().values().cloned().collect()
    }
}

/// Every overlay by name.
pub struct Overlays {
    overlays: RwLock<BTreeMap<String, Arc<Overlay>>>,
    themes: Arc<theme::Registry>,
    pub shared: Shared,
    next_key: AtomicU64,
    /// Bumped on every change, so streams can cache their overlays and check with one load.
    version: AtomicU64,
}

impl Overlays {
    pub fn new(themes: Arc<theme::Registry>) -> Overlays {
        Overlays {
            overlays: RwLock::new(BTreeMap::new()),
            themes,
            shared: Shared {
                stats: Stats::default(),
                goals: Goals::default(),
                renders: AtomicU64::new(0),
                failures: RenderFailures::default(),
            },
            next_key: AtomicU64::new(1),
            version: AtomicU64::new(1),
        }
    }

    pub fn themes(&self) -> &theme::Registry {
        &self.themes
    }

    /// Replaces the whole set (at start, or after `overlays/` changed).
    pub fn set_all(&self, configs: impl IntoIterator<Item = OverlayConfig>) {
        let mut map = BTreeMap::new();
        for config in configs {
            if let Some(overlay) = self.build(config) {
                map.insert(overlay.config.name.clone(), overlay);
            }
        }
        *self.overlays.write() = map;
        self.version.fetch_add(1, Ordering::Release);
    }

    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Adds or replaces one overlay.
    pub fn upsert(&self, config: OverlayConfig) {
        if let Some(overlay) = self.build(config) {
            self.overlays
                .write()
                .insert(overlay.config.name.clone(), overlay);
            self.version.fetch_add(1, Ordering::Release);
        }
    }

    pub fn remove(&self, name: &str) {
        self.overlays.write().remove(name);
        self.version.fetch_add(1, Ordering::Release);
    }

    fn build(&self, config: OverlayConfig) -> Option<Arc<Overlay>> {
        let theme = self
            .themes
            .get(&config.theme)
            .or_else(|| self.themes.get(theme::DEFAULT_THEME))?;
        let (fields, problems) = theme::fields::resolve(&theme.fields, &config.fields);
        let field_errors = problems
            .into_iter()
            .map(|(name, message)| match &config.source {
                Some((path, lines)) => match lines.get(&name) {
                    Some(line) => format!("{}:{line}: {message}", path.display()),
                    None => format!("{}: {message}", path.display()),
                },
                None => message,
            })
            .collect();
        Some(Arc::new(Overlay {
            config,
            theme,
            key: self.next_key.fetch_add(1, Ordering::Relaxed),
            fields,
            field_errors,
        }))
    }

    /// Rebinds every overlay of theme `name` to its current build (after a reload).
    pub fn rebind_theme(&self, name: &str) {
        let configs: Vec<OverlayConfig> = self
            .overlays
            .read()
            .values()
            .filter(|o| o.config.theme == name)
            .map(|o| o.config.clone())
            .collect();
        for config in configs {
            self.upsert(config);
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Overlay>> {
        self.overlays.read().get(name).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Overlay>> {
        self.overlays.read().values().cloned().collect()
    }

    /// Every problem with an overlay's `[fields]` values, `file:line: …`.
    pub fn field_errors(&self) -> Vec<String> {
        self.overlays
            .read()
            .values()
            .flat_map(|o| o.field_errors.iter().cloned())
            .collect()
    }

    /// Every channel some overlay shows.
    pub fn channels(&self) -> Vec<String> {
        let mut channels: Vec<String> = self
            .overlays
            .read()
            .values()
            .map(|o| o.config.channel.clone())
            .collect();
        channels.sort();
        channels.dedup();
        channels
    }

    /// Updates state derived from events (stats, goals). Called once per published event.
    pub fn observe(&self, event: &Event) {
        self.shared.stats.record(event);
        if event.history || event.replay {
            return;
        }
        for overlay in self.overlays.read().values() {
            let c = &overlay.config;
            if c.kind != OverlayKind::Goal || c.channel != event.channel {
                continue;
            }
            let amount = match (c.options["goal"].as_str().unwrap_or_default(), event.kind) {
                ("follow", Kind::Follow) => 1,
                // A gift bomb's gifts arrive one by one as well: each counts once.
                ("sub", Kind::Sub | Kind::Resub | Kind::SubGift) => 1,
                ("bits", Kind::Cheer) => event.data["bits"].as_u64().unwrap_or(0),
                // In cents of the comparable value (about a US dollar; see `money`).
                ("money", _) => {
                    crate::money::of(event).map_or(0, |m| (m.value * 100.0).round() as u64)
                }
                _ => 0,
            };
            if amount > 0 {
                self.shared.goals.add(&c.name, amount);
            }
        }
    }

    /// Checks that every template of `theme` renders with sample data of every kind an overlay
    /// could give it, so a strict-mode mistake is caught at save time, not mid-stream.
    pub fn validate(&self, theme: &Theme) -> Result<(), ThemeError> {
        for kind in OverlayKind::ALL {
            let mut config = OverlayConfig::builtin(kind, "sample");
            config.theme = theme.name.clone();
            for event_kind in Kind::ALL {
                if !kind.default_kinds().contains(event_kind) {
                    continue;
                }
                let event = sample(event_kind);
                if let Some(template) = template_for(&config, theme, &event) {
                    let fields = theme::fields::resolve(&theme.fields, &config.fields).0;
                    let ctx = context(&config, &fields, &event, &self.shared);
                    theme.render(&template, ctx)?;
                }
            }
        }
        Ok(())
    }
}

/// A sample event of `kind` with every field the contract promises.
pub fn sample(kind: Kind) -> Event {
    let mut data = serde_json::Map::new();
    crate::event::complete(kind, &mut data);
    let mut event = Event::new(
        crate::event::Platform::Twitch,
        "sample",
        kind,
        Value::Object(data),
    );
    event.id = 1;
    event
}

impl Overlay {
    /// Whether this overlay shows `event` at all.
    pub fn wants(&self, event: &Event) -> bool {
        let c = &self.config;
        if event.channel != c.channel || !c.kinds.contains(event.kind) {
            return false;
        }
        if !c.platforms.is_empty() && !c.platforms.contains(&event.platform) {
            return false;
        }
        let o = &c.options;
        let num = |k: &str| o[k].as_f64().unwrap_or(0.0);
        let data_num = |k: &str| event.data[k].as_f64().unwrap_or(0.0);
        match c.kind {
            OverlayKind::Alerts => {
                !event.history
                    && match event.kind {
                        Kind::Cheer => data_num("bits") >= num("min_bits"),
                        Kind::Raid => data_num("viewers") >= num("min_viewers"),
                        Kind::GiftBomb => data_num("total") >= num("min_gifts"),
                        // A gift that belongs to a gift bomb is shown by the bomb's alert.
                        Kind::SubGift => event.data["giftbomb_id"].is_null(),
                        _ => true,
                    }
            }
            OverlayKind::Chat if event.kind == Kind::ChatMessage => {
                let text = event.data["text"].as_str().unwrap_or_default();
                let login = event.data["author"]["login"].as_str().unwrap_or_default();
                let hidden = o["hide_users"].as_array().is_some_and(|l| {
                    l.iter()
                        .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(login)))
                });
                !(hidden || o["hide_commands"].as_bool() == Some(true) && text.starts_with('!'))
            }
            OverlayKind::Goal => !event.history,
            // The bomb's own row says it all; its gifts would push everything else out.
            OverlayKind::Events => {
                event.kind != Kind::SubGift || event.data["giftbomb_id"].is_null()
            }
            _ => true,
        }
    }

    /// The SSE frame of `item` for this overlay: rendered on first use, then shared. The first
    /// use renders off the runtime, and so does waiting for another stream's render of it.
    pub fn frame(&self, item: &Item, shared: &Shared) -> Bytes {
        if let Some(bytes) = item.cached(self.key) {
            return bytes;
        }
        crate::blocking::off_the_runtime(|| {
            item.frame(self.key, |event| {
                shared.renders.fetch_add(1, Ordering::Relaxed);
                crate::frame::event(event, &self.config.name, &self.html(event, shared))
            })
        })
    }

    /// The HTML this overlay's theme renders for `event` now (empty when no template applies
    /// or the template fails: the failure is logged).
    pub fn html(&self, event: &Event, shared: &Shared) -> String {
        self.html_with(event, shared, false, false)
    }

    /// [`Overlay::html`] of an alert as it plays: `replay` is `{{alert.replay}}` in the
    /// template; `largest` (the session's largest of its kind) picks among variations.
    pub fn alert_html(
        &self,
        event: &Event,
        shared: &Shared,
        replay: bool,
        largest: bool,
    ) -> String {
        self.html_with(event, shared, replay, largest)
    }

    /// The HTML of a widget overlay (labels, counter, timer, credits) for its state: `state`'s
    /// keys join `overlay` and `fields` in the render context (documented in docs/themes.md).
    /// A failing template is reported like an event's, and shows `fallback`, escaped.
    pub fn widget_html(&self, state: Value, fallback: &str, shared: &Shared) -> String {
        let template = widget_template(self.config.kind);
        let ctx = widget_context(&self.config, &self.fields, state);
        match self.theme.render(&template, ctx) {
            Ok(html) => {
                shared.failures.rendered(&self.theme.name, &template);
                html
            }
            Err(e) => {
                tracing::warn!(overlay = %self.config.name, error = %e, "template failed");
                shared.failures.failed(
                    &self.theme.name,
                    &template,
                    format!("{e} ({})", self.config.kind.as_str()),
                );
                format!(
                    "<div class=\"item-fallback\">{}</div>",
                    crate::theme::helpers::escape(fallback)
                )
            }
        }
    }

    fn html_with(&self, event: &Event, shared: &Shared, replay: bool, largest: bool) -> String {
        let alert = self.config.kind == OverlayKind::Alerts;
        let variation = alert
            .then(|| variation::of(&self.config.options, event, largest))
            .flatten();
        let template = if alert {
            variation_template(&self.theme, event, variation.as_ref())
        } else {
            template_for(&self.config, &self.theme, event)
        };
        let Some(template) = template else {
            return String::new();
        };
        let mut ctx = context(&self.config, &self.fields, event, shared);
        if replay {
            ctx["alert"]["replay"] = json!(true);
        }
        if alert {
            ctx["alert"]["largest"] = json!(largest);
            ctx["alert"]["text_delay_ms"] = json!(
                variation
                    .and_then(|v| v.text_delay_s)
                    .map_or(0, |s| (s * 1000.0).round() as u64)
            );
        }
        match self.theme.render(&template, ctx) {
            Ok(html) => {
                shared.failures.rendered(&self.theme.name, &template);
                html
            }
            Err(e) => {
                tracing::warn!(overlay = %self.config.name, event = event.id, error = %e, "template failed");
                shared.failures.failed(
                    &self.theme.name,
                    &template,
                    format!("{e} (event {}, {})", event.id, event.kind.as_str()),
                );
                // Never an empty line on stream: the event's one line, plain and escaped.
                format!(
                    "<div class=\"item-fallback fallback-{}\">{}</div>",
                    crate::theme::helpers::css_token(event.kind.as_str()),
                    crate::theme::helpers::escape(&crate::theme::helpers::summary(&json!(event)))
                )
            }
        }
    }
}

/// Which template renders `event` in an overlay of `config`'s kind, if any.
pub fn template_for(config: &OverlayConfig, theme: &Theme, event: &Event) -> Option<String> {
    let kind = event.kind.as_str();
    let pick = |dir: &str| {
        let specific = format!("{dir}/{kind}");
        if theme.has(&specific) {
            Some(specific)
        } else {
            let fallback = format!("{dir}/default");
            theme.has(&fallback).then_some(fallback)
        }
    };
    match config.kind {
        OverlayKind::Chat => (event.kind == Kind::ChatMessage)
            .then(|| "chat/chat.message".to_string())
            .filter(|t| theme.has(t)),
        OverlayKind::Alerts => alert_template(config, theme, event, false),
        OverlayKind::Events => pick("events"),
        OverlayKind::Stats => Some("stats/stats".to_string()).filter(|t| theme.has(t)),
        OverlayKind::Goal => Some("goal/goal".to_string()).filter(|t| theme.has(t)),
        // Widgets render their state, never an event (see [`Overlay::widget_html`]).
        OverlayKind::Labels
        | OverlayKind::Counter
        | OverlayKind::Timer
        | OverlayKind::Credits
        | OverlayKind::Hypetrain
        | OverlayKind::Poll => None,
    }
}

/// The template an alert overlay plays `event` with: its variation's (the most specific match,
/// weighted among equals; see [`variation`]) if the theme has it, else `alerts/<kind>`, else
/// `alerts/default`.
pub fn alert_template(
    config: &OverlayConfig,
    theme: &Theme,
    event: &Event,
    largest: bool,
) -> Option<String> {
    variation_template(
        theme,
        event,
        variation::of(&config.options, event, largest).as_ref(),
    )
}

/// [`alert_template`] with the variation already chosen.
fn variation_template(
    theme: &Theme,
    event: &Event,
    variation: Option<&variation::Variation>,
) -> Option<String> {
    let kind = event.kind.as_str();
    variation
        .and_then(|v| v.template.as_ref())
        .map(|t| format!("alerts/{t}"))
        .filter(|t| theme.has(t))
        .or_else(|| {
            [format!("alerts/{kind}"), "alerts/default".to_string()]
                .into_iter()
                .find(|t| theme.has(t))
        })
}

/// A widget overlay's render context: `overlay` and `fields`, and `state`'s keys beside them.
pub fn widget_context(
    config: &OverlayConfig,
    fields: &serde_json::Map<String, Value>,
    state: Value,
) -> Value {
    let mut ctx = json!({"fields": fields, "overlay": overlay_json(config)});
    if let (Value::Object(ctx), Value::Object(state)) = (&mut ctx, state) {
        ctx.extend(state);
    }
    ctx
}

/// `overlay` in every render context.
fn overlay_json(config: &OverlayConfig) -> Value {
    json!({
        "name": config.name,
        "kind": config.kind.as_str(),
        "title": config.title,
        "channel": config.channel,
        "options": config.options,
    })
}

/// The template a widget overlay of `kind` renders its state with: `<kind>/<kind>`.
pub fn widget_template(kind: OverlayKind) -> String {
    format!("{0}/{0}", kind.as_str())
}

/// The render context theme authors see (documented in docs/themes.md).
pub fn context(
    config: &OverlayConfig,
    fields: &serde_json::Map<String, Value>,
    event: &Event,
    shared: &Shared,
) -> Value {
    // The event's tree built here around a copy of its data, and `data` another copy, rather
    // than the event serialized into a tree: a chat burst takes a tenth less CPU.
    let data = event.data.clone();
    let event = event_json(event);
    // Moved in, not through `json!`, which would serialize each tree once more.
    let mut ctx = Value::Object(serde_json::Map::from_iter([
        ("event".to_string(), event),
        ("data".to_string(), data),
        ("fields".to_string(), Value::Object(fields.clone())),
        ("overlay".to_string(), overlay_json(config)),
    ]));
    match config.kind {
        OverlayKind::Stats => {
            let top = config.options["top"].as_u64().unwrap_or(5) as usize;
            ctx["stats"] = json!(shared.stats.snapshot(&config.channel, top));
        }
        OverlayKind::Goal => {
            ctx["goal"] = goal_context(config, shared.goals.get(&config.name));
        }
        OverlayKind::Alerts => {
            ctx["alert"] = json!({"replay": false, "largest": false, "text_delay_ms": 0})
        }
        _ => {}
    }
    ctx
}

/// `event` as the tree its `Serialize` makes, built from a copy of its data.
fn event_json(event: &Event) -> Value {
    let mut map = serde_json::Map::from_iter([
        ("id".to_string(), Value::from(event.id)),
        ("kind".to_string(), Value::from(event.kind.as_str())),
        ("channel".to_string(), Value::from(event.channel.as_str())),
        ("platform".to_string(), Value::from(event.platform.as_str())),
        ("at".to_string(), Value::from(event.at)),
        ("data".to_string(), event.data.clone()),
    ]);
    if event.history {
        map.insert("history".to_string(), Value::Bool(true));
    }
    if event.replay {
        map.insert("replay".to_string(), Value::Bool(true));
    }
    Value::Object(map)
}

pub fn goal_context(config: &OverlayConfig, counted: u64) -> Value {
    let start = config.options["start"].as_f64().unwrap_or(0.0);
    let target = config.options["target"].as_f64().unwrap_or(100.0).max(1.0);
    let money = config.options["goal"] == "money";
    // A money goal counts cents of the comparable value (about a US dollar).
    let current = start
        + if money {
            counted as f64 / 100.0
        } else {
            counted as f64
        };
    let percent = ((current / target) * 100.0).min(100.0);
    let shown = |n: f64| {
        if money {
            json!((n * 100.0).round() / 100.0)
        } else {
            json!(n.round() as u64)
        }
    };
    json!({
        "label": config.options["label"],
        "kind": config.options["goal"],
        "current": shown(current),
        "target": shown(target),
        "formatted": if money { crate::money::format_value(current) } else { (current.round() as u64).to_string() },
        "target_formatted": if money { crate::money::format_value(target) } else { (target.round() as u64).to_string() },
        "percent": (percent * 10.0).round() / 10.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlays() -> (tempfile::TempDir, Overlays) {
        let dir = tempfile::tempdir().expect("tempdir");
        let themes = Arc::new(theme::Registry::new(dir.path()));
        assert!(themes.load_all().is_empty());
        (dir, Overlays::new(themes))
    }

    #[test]
    fn the_event_in_a_render_context_is_the_event_serialized() {
        for (history, replay) in [(false, false), (true, false), (false, true)] {
            for kind in crate::event::Kind::ALL {
                let mut event = Event::new(
                    crate::event::Platform::Kick,
                    "someone",
                    kind,
                    json!({"user": {"name": "A"}, "elements": [{"type": "text", "text": "hi"}]}),
                );
                event.id = 7;
                (event.history, event.replay) = (history, replay);
                assert_eq!(event_json(&event), serde_json::to_value(&event).unwrap());
            }
        }
    }

    #[test]
    fn bundled_themes_pass_validation() {
        let (_d, o) = overlays();
        for name in o.themes().names() {
            let theme = o.themes().get(&name).expect("theme");
            o.validate(&theme).expect("valid");
        }
    }

    #[test]
    fn frames_are_one_sse_event_with_html() {
        let (_d, o) = overlays();
        o.upsert(OverlayConfig::builtin(OverlayKind::Alerts, "sample"));
        let overlay = o.get("alerts").expect("alerts");
        let bus = crate::bus::Bus::starting_at(10, 42);
        let (item, _) = bus.publish(sample(Kind::Follow)).expect("published");
        let frame = overlay.frame(&item, &o.shared);
        let text = std::str::from_utf8(&frame).expect("utf8");
        assert!(text.starts_with("id: 42\nevent: follow\ndata: {"), "{text}");
        assert!(text.ends_with("}\n\n"));
        assert_eq!(text.matches('\n').count(), 4, "{text}");
        let json: Value =
            serde_json::from_str(text[text.find('{').unwrap_or(0)..].trim()).expect("json");
        assert!(
            json["html"]
                .as_str()
                .unwrap_or_default()
                .contains("TestUser followed")
        );
        // the same bytes for every subscriber
        assert_eq!(overlay.frame(&item, &o.shared).as_ptr(), frame.as_ptr());
    }

    #[test]
    fn alert_filters_and_variations() {
        let (_d, o) = overlays();
        let mut config = OverlayConfig::builtin(OverlayKind::Alerts, "sample");
        config.options["min_bits"] = json!(100);
        config.options["variations"] =
            json!([{"kind": "cheer", "min": 1000, "template": "cheer-big"}]);
        o.upsert(config);
        let overlay = o.get("alerts").expect("alerts");
        let mut cheer = sample(Kind::Cheer);
        cheer.data["bits"] = json!(50);
        assert!(!overlay.wants(&cheer));
        cheer.data["bits"] = json!(1500);
        assert!(overlay.wants(&cheer));
        assert_eq!(
            template_for(&overlay.config, &overlay.theme, &cheer).as_deref(),
            Some("alerts/cheer-big")
        );
        cheer.data["bits"] = json!(500);
        assert_eq!(
            template_for(&overlay.config, &overlay.theme, &cheer).as_deref(),
            Some("alerts/default")
        );
        let mut gift = sample(Kind::SubGift);
        assert!(overlay.wants(&gift));
        gift.data["giftbomb_id"] = json!("bomb-1");
        assert!(
            !overlay.wants(&gift),
            "a bomb's gifts are not alerted one by one"
        );
        let mut follow = sample(Kind::Follow);
        follow.history = true;
        assert!(!overlay.wants(&follow), "history is never alerted");
    }

    #[test]
    fn chat_hides_commands_and_bots() {
        let (_d, o) = overlays();
        let mut config = OverlayConfig::builtin(OverlayKind::Chat, "sample");
        config.options["hide_users"] = json!(["Nightbot"]);
        o.upsert(config);
        let overlay = o.get("chat").expect("chat");
        let mut msg = sample(Kind::ChatMessage);
        assert!(overlay.wants(&msg));
        msg.data["text"] = json!("!uptime");
        assert!(!overlay.wants(&msg));
        msg.data["text"] = json!("hi");
        msg.data["author"]["login"] = json!("nightbot");
        assert!(!overlay.wants(&msg));
    }

    #[test]
    fn goals_count_matching_events() {
        let (_d, o) = overlays();
        let mut config = OverlayConfig::builtin(OverlayKind::Goal, "sample");
        config.options["goal"] = json!("bits");
        config.options["target"] = json!(1000);
        o.upsert(config);
        let mut cheer = sample(Kind::Cheer);
        cheer.data["bits"] = json!(250);
        o.observe(&cheer);
        o.observe(&sample(Kind::Follow));
        let overlay = o.get("goal").expect("goal");
        let g = goal_context(&overlay.config, o.shared.goals.get("goal"));
        assert_eq!(g["current"], 250);
        assert_eq!(g["percent"], 25.0);
    }
}
