//! Builds every part from the configuration, runs them, and owns shutdown: one cancellation
//! token ends every task and every open stream.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use parking_lot::RwLock;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Item, Message};
use crate::config::{Config, ConfigError, OverlayConfig, OverlayKind, load_overlays};
use crate::event::Event;
use crate::overlay::{Overlay, Overlays};
use crate::theme;

/// The state every request handler and source shares.
pub struct App {
    pub config: Config,
    pub bus: Arc<Bus>,
    pub themes: Arc<theme::Registry>,
    pub overlays: Overlays,
    pub sources: Sources,
    /// Channels wanted by open streams (and pinned in overlay.toml).
    pub channels: Arc<crate::channels::Channels>,
    /// Twitch login state (token lifecycle).
    pub auth: Arc<crate::twitch::auth::Auth>,
    /// Viewer sessions (signed cookies).
    pub sessions: crate::web::viewer::Sessions,
    /// The EventSub webhook secret and the message ids already handled.
    pub webhook_secret: String,
    pub webhook_seen: crate::seen::Seen,
    /// Logins in progress (dashboard device code, browser state values).
    pub auth_pending: crate::web::auth::Pending,
    /// Channels an EventSub session covers: their chat notices are not alerted a second time.
    pub covered_by_eventsub: RwLock<std::collections::HashSet<String>>,
    /// Problems in `overlays/*.toml` right now (shown on the dashboard and `/health`).
    pub overlay_errors: RwLock<Vec<String>>,
    pub shutdown: CancellationToken,
    pub started: std::time::Instant,
    /// Writes events to the parked event streams.
    pub fanout: crate::web::fanout::Fanout,
}

impl App {
    /// Loads themes and overlays. Broken overlay files are reported, not fatal: the others run.
    pub fn new(
        config: Config,
        shutdown: CancellationToken,
    ) -> Result<Arc<App>, crate::store::StoreError> {
        let themes = Arc::new(theme::Registry::new(&config.themes_dir));
        let bus = match config.store.kind {
            crate::config::StoreKind::Memory => Bus::new(config.history),
            crate::config::StoreKind::Sqlite => {
                let store = crate::store::Sqlite::open(
                    &config.data_dir.join("events.sqlite3"),
                    config.history,
                    config.store.max_age_days,
                )?;
                Bus::with_store(config.history, Arc::new(store))?
            }
            crate::config::StoreKind::Redis => {
                let url = config.store.url.as_deref().unwrap_or_default();
                let redis = crate::store::Redis::open(url, &config.store.prefix, config.history)?;
                Bus::shared(config.history, Arc::new(redis))
            }
        };
        let fanout = crate::web::fanout::Fanout::new(bus.pulse().clone());
        let app = Arc::new(App {
            bus: Arc::new(bus),
            overlays: Overlays::new(themes.clone()),
            themes,
            sources: Sources::default(),
            channels: crate::channels::Channels::new(
                &config.twitch.channels,
                std::time::Duration::from_secs(config.twitch.part_grace_s),
            ),
            auth: crate::twitch::auth::Auth::new(&config),
            auth_pending: crate::web::auth::Pending::default(),
            sessions: crate::web::viewer::Sessions::new(&config.data_dir),
            webhook_secret: crate::twitch::webhook::secret(
                config.twitch.webhook_secret.as_deref(),
                &config.data_dir,
            ),
            webhook_seen: crate::seen::Seen::new(4096),
            covered_by_eventsub: RwLock::new(std::collections::HashSet::new()),
            overlay_errors: RwLock::new(Vec::new()),
            shutdown,
            started: std::time::Instant::now(),
            fanout,
            config,
        });
        let weak = Arc::downgrade(&app);
        app.themes
            .set_validator(Arc::new(move |t| match weak.upgrade() {
                Some(app) => app.overlays.validate(t),
                None => Ok(()),
            }));
        for e in app.themes.load_all() {
            tracing::error!("theme error: {e}");
        }
        app.reload_overlays();
        // Chat stats pick up where they were: from the shared store, which keeps them, as
        // each channel is attached; else recounted from the stored chat of each channel.
        let weak = Arc::downgrade(&app);
        app.bus.on_attach(move |channel, seed| {
            if let Some(app) = weak.upgrade() {
                app.overlays.shared.stats.seed(channel, seed);
            }
        });
        for channel in app.overlays.channels() {
            if app.bus.shared_log().is_some() {
                app.bus.attach_channel(&channel);
                continue;
            }
            let mut chat = app.bus.history(&channel, app.config.history, None);
            chat.reverse();
            for event in chat
                .iter()
                .filter(|e| e.kind == crate::event::Kind::ChatMessage)
            {
                app.overlays.shared.stats.record(event);
            }
        }
        Ok(app)
    }

    /// Reads `overlays/` again. With no overlay files at all, the built-in overlays (one of
    /// each kind) serve the default channel, so a newcomer has something to add to OBS.
    pub fn reload_overlays(&self) -> Vec<ConfigError> {
        let (mut found, errors) = load_overlays(
            &self.config.overlays_dir,
            &self.config.default_channel(),
            &self.themes.names(),
        );
        for e in &errors {
            tracing::error!("{e}");
        }
        if found.is_empty() && errors.is_empty() {
            let channel = self.config.default_channel();
            for kind in OverlayKind::ALL {
                let o = OverlayConfig::builtin(kind, &channel);
                found.insert(o.name.clone(), o);
            }
        }
        self.overlays.set_all(found.into_values());
        *self.overlay_errors.write() = errors.iter().map(ToString::to_string).collect();
        errors
    }

    /// Applies edits in `overlays/`: changed overlays are rebuilt and their open pages get the
    /// new settings; a broken file keeps its overlay's last good version.
    pub fn apply_overlay_changes(&self) {
        let before: BTreeMap<String, OverlayConfig> = self
            .overlays
            .all()
            .iter()
            .map(|o| (o.config.name.clone(), o.config.clone()))
            .collect();
        let (found, errors) = load_overlays(
            &self.config.overlays_dir,
            &self.config.default_channel(),
            &self.themes.names(),
        );
        for e in &errors {
            tracing::error!("{e}");
        }
        *self.overlay_errors.write() = errors.iter().map(ToString::to_string).collect();
        let broken: Vec<String> = errors
            .iter()
            .filter_map(|e| e.file.file_stem().map(|s| s.to_string_lossy().to_string()))
            .collect();
        for (name, config) in &found {
            if before.get(name) != Some(config) {
                self.overlays.upsert(config.clone());
                tracing::info!(overlay = %name, "overlay updated");
                if let Some(overlay) = self.overlays.get(name) {
                    self.bus.announce(Message::Overlay {
                        name: name.clone(),
                        frame: crate::web::sse::control(
                            "overlay",
                            &crate::overlay::page::settings(&overlay, None),
                        ),
                    });
                }
            }
        }
        let builtin_only = found.is_empty() && errors.is_empty();
        for name in before.keys() {
            if !found.contains_key(name) && !broken.contains(name) && !builtin_only {
                self.overlays.remove(name);
                tracing::info!(overlay = %name, "overlay removed");
            }
        }
    }

    /// The overlay behind the viewer page of `channel`, created on first use.
    pub fn viewer_overlay(&self, channel: &str) -> Arc<Overlay> {
        let name = format!("_c_{channel}");
        if let Some(o) = self.overlays.get(&name) {
            return o;
        }
        self.overlays
            .upsert(crate::web::viewer::viewer_overlay_config(channel));
        self.overlays
            .get(&name)
            .unwrap_or_else(|| panic!("overlay {name} was just added"))
    }

    /// Whether Twitch knows `channel` (`None`: cannot tell, e.g. not logged in).
    pub async fn channel_exists(&self, channel: &str) -> Option<bool> {
        let token = self.auth.token()?;
        let client_id = self.config.twitch.client_id.as_deref()?;
        let helix =
            crate::twitch::helix::Helix::new(&self.config.twitch.endpoints.helix, client_id);
        helix
            .user(&token.access_token, channel)
            .await
            .ok()
            .map(|u| u.is_some())
    }

    /// Publishes an event from any source: stored, derived state updated (stats, goals), then
    /// sent.
    pub fn publish(&self, event: Event) -> Result<(Arc<Item>, usize), crate::store::StoreError> {
        self.bus.publish_with(event, |e| self.overlays.observe(e))
    }

    /// Publishes from a source that cannot answer anyone: a refusal is logged and shown.
    pub fn publish_or_log(&self, event: Event) {
        if let Err(e) = self.publish(event) {
            tracing::error!("event not published: {e}");
            self.sources.set("store", "error", e.to_string());
        }
    }

    /// Rebuilds theme `name` after its files changed and tells its open overlays.
    pub fn reload_theme(&self, name: &str) {
        match self.themes.reload(name) {
            Ok(theme) => {
                self.overlays.rebind_theme(name);
                tracing::info!(
                    theme = name,
                    generation = theme.generation,
                    "theme reloaded"
                );
                let css = format!("/themes/{name}/static/style.css?g={}", theme.generation);
                self.bus.announce(Message::Theme {
                    theme: name.to_string(),
                    frame: crate::web::sse::control(
                        "theme",
                        &json!({"theme": name, "generation": theme.generation, "css": css}),
                    ),
                });
            }
            Err(e) => {
                tracing::warn!(
                    theme = name,
                    "theme error, keeping the last good version: {e}"
                );
                self.bus.announce(Message::Theme {
                    theme: name.to_string(),
                    frame: crate::web::sse::control(
                        "theme-error",
                        &json!({"theme": name, "error": e.to_string(), "detail": e}),
                    ),
                });
            }
        }
    }

    pub fn health(&self) -> Value {
        json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": self.started.elapsed().as_secs(),
            "subscribers": self.bus.subscribers(),
            "next_event_id": self.bus.next_id(),
            "overlays": self.overlays.all().len(),
            "frames_rendered": self.overlays.shared.renders.load(std::sync::atomic::Ordering::Relaxed),
            "sources": self.sources.snapshot(),
            "channels": self.channels.wanted(),
            "sourced_here": self.channels.sourced(),
            "theme_errors": self.themes.errors().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "overlay_errors": *self.overlay_errors.read(),
        })
    }

    pub fn overlay_list(&self) -> Value {
        let list: Vec<Value> = self
            .overlays
            .all()
            .iter()
            .map(|o| {
                let c = &o.config;
                json!({
                    "name": c.name, "kind": c.kind.as_str(), "channel": c.channel, "theme": c.theme,
                    "title": c.title, "url": format!("/o/{}", c.name),
                    "width": c.size.0, "height": c.size.1,
                    "theme_error": self.themes.error(&c.theme).map(|e| e.to_string()),
                })
            })
            .collect();
        json!({ "overlays": list, "kinds": crate::event::Kind::ALL })
    }

    pub fn dashboard_html(&self) -> String {
        crate::web::pages::dashboard_page(self)
    }
}

/// Connection state of each event source, for `/health` and the dashboard. Every change is
/// logged once, so the log reads as a timeline of the sources.
#[derive(Default)]
pub struct Sources {
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

impl Sources {
    pub fn set(&self, source: &str, state: &str, detail: impl Into<String>) {
        let detail = detail.into();
        let mut states = self.states.write();
        let changed = states
            .get(source)
            .is_none_or(|s| s.state != state || s.detail != detail);
        if changed {
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
    }

    pub fn snapshot(&self) -> BTreeMap<String, SourceState> {
        self.states.read().clone()
    }
}

/// Serves on `listener` until `shutdown` is cancelled, then ends every stream and returns.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("listener address")?;
    let app = App::new(config, shutdown.clone())?;
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(app.bus.clone().keep_alive(shutdown.clone()));
    // Closing the bus ends every stream, so connections can finish as soon as shutdown starts.
    let (bus, stop) = (app.bus.clone(), shutdown.clone());
    tasks.spawn(async move {
        stop.cancelled().await;
        bus.close();
    });
    // Awaited at shutdown (not aborted) so the claims are handed back at once.
    let mut claims = None;
    if let Some(redis) = app.bus.shared_log() {
        claims = Some(tokio::spawn(claim_sources(
            app.clone(),
            redis.clone(),
            shutdown.clone(),
        )));
        let (app, stop) = (app.clone(), shutdown.clone());
        tasks.spawn(async move {
            let bus = &app.bus;
            redis
                .follow(
                    || bus.attached(),
                    &bus.attach_wake,
                    |events| bus.ingest(events, |e| app.overlays.observe(e)),
                    |state, detail| app.sources.set("store", state, detail),
                    &stop,
                )
                .await;
        });
    }
    if app.config.demo {
        tasks.spawn(crate::demo::run(app.clone(), shutdown.clone()));
    }
    if app.config.twitch.client_id.is_some() {
        tasks.spawn(app.auth.clone().run(app.clone(), shutdown.clone()));
        tasks.spawn(crate::twitch::eventsub::run(
            app.clone(),
            app.auth.clone(),
            shutdown.clone(),
        ));
    }
    if app.config.twitch.chat_enabled() {
        tasks.spawn(crate::twitch::chat::run(app.clone(), shutdown.clone()));
    }
    tasks.spawn(crate::platforms::run(app.clone(), shutdown.clone()));
    match theme::watch::spawn(app.clone(), shutdown.clone()) {
        Ok(task) => {
            tasks.spawn(task);
        }
        Err(e) => tracing::warn!("theme hot reload is off: {e}"),
    }
    announce(&app, addr);
    let routes = crate::web::routes(app.clone());
    let server = crate::server::serve(listener, routes, app.clone(), shutdown.clone());
    server.await;
    if let Some(claims) = claims {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), claims).await;
    }
    tasks.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// How long a claim on a channel's sources lasts without renewal: an instance that dies
/// hands its channels to another within this (plus one renewal period).
const CLAIM_TTL: std::time::Duration = std::time::Duration::from_secs(10);
const CLAIM_RENEW: std::time::Duration = std::time::Duration::from_secs(3);

/// With several instances on one shared store, runs each wanted channel's sources here only
/// while this instance holds the channel's claim in Redis, renewing it, and hands claims back
/// when a channel is no longer wanted or at shutdown.
async fn claim_sources(
    app: Arc<App>,
    redis: Arc<crate::store::Redis>,
    shutdown: CancellationToken,
) {
    app.channels.gate();
    let me = format!("{:016x}", rand::random::<u64>());
    let mut wanted = app.channels.watch();
    let mut held = std::collections::BTreeSet::new();
    loop {
        let want = wanted.borrow_and_update().clone();
        let mut now = std::collections::BTreeSet::new();
        for channel in &want {
            match redis.claim(channel, &me, CLAIM_TTL) {
                Ok(true) => {
                    now.insert(channel.clone());
                }
                Ok(false) => {}
                // Unreachable store: keep what runs (no other instance can claim it either).
                Err(e) => {
                    tracing::warn!("renewing the claim on {channel}'s sources: {e}");
                    if held.contains(channel) {
                        now.insert(channel.clone());
                    }
                }
            }
        }
        for channel in held.difference(&want) {
            let _ = redis.release(channel, &me);
        }
        if now != held {
            tracing::info!(channels = ?now, "sources run here for these channels");
        }
        held = now;
        app.channels.set_sourced(held.clone());
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = wanted.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(CLAIM_RENEW) => {}
        }
    }
    for channel in &held {
        let _ = redis.release(channel, &me);
    }
}

fn announce(app: &App, addr: SocketAddr) {
    let base = format!("http://{addr}");
    tracing::info!("overlayd listening on {base}/ (dashboard)");
    for o in app.overlays.all() {
        tracing::info!("  {}: {base}/o/{}", o.config.kind.as_str(), o.config.name);
    }
    if app.config.demo {
        tracing::info!(
            "demo source on: synthetic events on channel \"{}\"",
            app.config.default_channel()
        );
    }
}

/// `overlayd check`: every problem in the configuration, overlays and themes.
pub fn check(config: &Config) -> Vec<String> {
    let themes = Arc::new(theme::Registry::new(&config.themes_dir));
    let overlays = Arc::new(Overlays::new(themes.clone()));
    let validator = overlays.clone();
    themes.set_validator(Arc::new(move |t| validator.validate(t)));
    let mut problems: Vec<String> = themes.load_all().iter().map(ToString::to_string).collect();
    let (_, errors) = load_overlays(
        &config.overlays_dir,
        &config.default_channel(),
        &themes.names(),
    );
    problems.extend(errors.iter().map(ToString::to_string));
    problems
}
