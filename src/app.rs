//! Builds every part from the configuration, runs them, and owns shutdown: one cancellation
//! token ends every task and every open stream. The one place that knows every part; only
//! `main.rs` knows it. Each part is handed the narrow handles it uses (a publisher, a watch of
//! its channels, its config section), and callbacks carry what must go back up.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::bus::Bus;
use crate::channels::Channels;
use crate::config::{Config, StoreKind};
use crate::overlay::Overlays;
use crate::overlay::reload::Reloader;
use crate::source::{Publisher, Status};
use crate::theme;
use crate::twitch::eventsub::Delivery;
use crate::web::State;

/// Platform chats read at once for tools that asked (the chat socket) and no overlay names:
/// each is a reader polling or holding a socket to a platform.
const ON_DEMAND_CHATS: usize = 32;

/// Message ids of EventSub webhooks remembered, as for the WebSocket transport.
const WEBHOOK_SEEN: usize = crate::twitch::eventsub::SEEN;

/// The bus on the configured store.
fn bus(config: &Config) -> Result<Bus, crate::store::StoreError> {
    Ok(match config.store.kind {
        StoreKind::Memory => Bus::new(config.history),
        StoreKind::Sqlite => {
            let store = crate::store::Sqlite::open(
                &config.data_dir.join("events.sqlite3"),
                config.history,
                config.store.max_age_days,
            )?;
            Bus::with_store(config.history, Arc::new(store))?
        }
        StoreKind::Redis => {
            let url = config.store.url.as_deref().unwrap_or_default();
            let redis = crate::store::Redis::open(url, &config.store.prefix, config.history)?;
            Bus::shared(config.history, Arc::new(redis))
        }
    })
}

/// Loads themes and overlays and builds the state the routes share. Broken overlay files are
/// reported, not fatal: the others run.
fn build(
    config: Config,
    shutdown: CancellationToken,
) -> Result<Arc<State>, crate::store::StoreError> {
    let themes = Arc::new(theme::Registry::new(&config.themes_dir));
    let bus = Arc::new(bus(&config)?);
    let overlays = Arc::new(Overlays::new(themes.clone()));
    let validator = Arc::downgrade(&overlays);
    themes.set_validator(Arc::new(move |t| match validator.upgrade() {
        Some(overlays) => overlays
            .validate(t)
            .and_then(|()| crate::widgets::validate(t)),
        None => Ok(()),
    }));
    for e in themes.load_all() {
        tracing::error!("theme error: {e}");
    }
    let reloader = Arc::new(Reloader::new(
        config.overlays_dir.clone(),
        config.default_channel(),
        themes.clone(),
        overlays.clone(),
        bus.clone(),
    ));
    reloader.reload_overlays();
    let status = Status::new();
    let alerts = crate::alerts::Alerts::new(
        overlays.clone(),
        bus.clone(),
        config.alerts.clone(),
        &config.data_dir,
    );
    let widgets = crate::widgets::Widgets::new(
        overlays.clone(),
        bus.clone(),
        config.widgets.clone(),
        &config.data_dir,
    );
    // Before any source publishes: what the log holds past the saved sessions counts first.
    widgets.catch_up(config.history);
    let judge = widgets.clone();
    alerts.judge_largest(move |e| judge.is_largest(e));
    let tallied = overlays.clone();
    let publisher = Publisher::new(
        bus.clone(),
        status.clone(),
        observer(&overlays, &alerts, &widgets),
    )
    .with_tally(Arc::new(move |channel, platform, likes| {
        tallied.shared.stats.add_likes(channel, platform, likes);
    }));
    // Chat stats pick up where they were: from the shared store, which keeps them, as each
    // channel is attached; else recounted from the stored chat of each channel.
    let seeded = Arc::downgrade(&overlays);
    bus.on_attach(move |channel, seed| {
        if let Some(overlays) = seeded.upgrade() {
            overlays.shared.stats.seed(channel, seed);
        }
    });
    if bus.shared_log().is_some() {
        for channel in overlays.channels() {
            bus.attach_channel(&channel);
        }
    } else {
        // Recounted beside the server, not before it answers: what came before this instant
        // is counted as earlier than anything counted meanwhile.
        let (bus, overlays, history) = (bus.clone(), overlays.clone(), config.history);
        let upto = bus.next_id();
        std::thread::spawn(move || {
            for channel in overlays.channels() {
                let mut chat = bus.history(&channel, history, Some(upto));
                chat.retain(|e| e.kind == crate::event::Kind::ChatMessage);
                chat.reverse();
                overlays.shared.stats.record_earlier(&chat);
            }
        });
    }
    // A template that starts failing shows in the error box of its theme's overlays (the
    // line itself shows the event's summary meanwhile).
    let told = Arc::downgrade(&bus);
    overlays.shared.failures.listen(move |theme, message| {
        if let Some(bus) = told.upgrade() {
            let frame = crate::frame::control(
                "theme-error",
                &serde_json::json!({"theme": theme, "error": format!("a template failed: {message}")}),
            );
            bus.announce(crate::bus::Message::Theme {
                theme: theme.to_string(),
                frame,
            });
        }
    });
    let fanout = crate::web::fanout::Fanout::new(bus.pulse().clone());
    Ok(Arc::new(State {
        access: Arc::new(crate::web::access::Access::new(&config)),
        channels: Channels::new(
            &config.twitch.channels,
            Duration::from_secs(config.twitch.part_grace_s),
        ),
        auth: crate::twitch::auth::Auth::new(&config),
        auth_pending: Default::default(),
        sessions: crate::web::sessions::Sessions::new(&config.data_dir),
        webhook_secret: crate::twitch::webhook::secret(
            config.twitch.webhook_secret.as_deref(),
            &config.data_dir,
        ),
        webhook_seen: crate::seen::Seen::new(WEBHOOK_SEEN),
        started: std::time::Instant::now(),
        fanout,
        links: crate::platforms::Links::new(&config.platforms, ON_DEMAND_CHATS),
        chat_stats: Default::default(),
        shutdown,
        bus,
        publisher,
        status,
        themes,
        overlays,
        alerts,
        widgets,
        rehearsal: Default::default(),
        reloader,
        config,
    }))
}

/// The callback up from every published event to the state derived from it: stats and goals,
/// the alert queues, and the sessions, counters and timers.
fn observer(
    overlays: &Arc<Overlays>,
    alerts: &Arc<crate::alerts::Alerts>,
    widgets: &Arc<crate::widgets::Widgets>,
) -> crate::source::Observe {
    let (overlays, alerts, widgets) = (overlays.clone(), alerts.clone(), widgets.clone());
    Arc::new(move |e: &crate::event::Event| {
        overlays.observe(e);
        // The alerts ask the sessions whether an event is the largest of its kind so far
        // (`largest` variations): before the sessions count it.
        alerts.offer(e);
        widgets.observe(e);
    })
}

/// Forgets the in-memory history of channels nobody has wanted for `cold_after` (with the
/// durable log; see [`Bus::sweep`]), looking every `cold_after / 4` (1-30 s).
async fn sweep(
    bus: Arc<Bus>,
    channels: Arc<crate::channels::Channels>,
    cold_after: Duration,
    shutdown: CancellationToken,
) {
    let every = (cold_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(30));
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let forgotten = bus.sweep(&channels.wanted(), cold_after);
                if forgotten > 0 {
                    tracing::debug!(forgotten, "cold channels' history forgotten");
                }
            }
        }
    }
}

/// Serves on `listener` until `shutdown` is cancelled, then ends every stream and returns.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr().context("listener address")?;
    // Building opens the store and reads saved state and the log: off the runtime threads.
    let stop = shutdown.clone();
    let state = tokio::task::spawn_blocking(move || build(config, stop))
        .await
        .context("building the server")??;
    let config = &state.config;
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(state.bus.clone().keep_alive(shutdown.clone()));
    tasks.spawn(crate::web::sockets::push_stats(state.clone()));
    tasks.spawn(sweep(
        state.bus.clone(),
        state.channels.clone(),
        config.cold_after,
        shutdown.clone(),
    ));
    // Closing the bus ends every stream, so connections can finish as soon as shutdown starts.
    let (bus, stop) = (state.bus.clone(), shutdown.clone());
    tasks.spawn(async move {
        stop.cancelled().await;
        bus.close();
    });
    // Awaited at shutdown (not aborted) so the claims are handed back at once.
    let mut claims = None;
    let shared = state.bus.shared_log();
    if let Some(redis) = shared.clone() {
        claims = Some(tokio::spawn(claim_sources(
            state.channels.clone(),
            redis.clone(),
            shutdown.clone(),
        )));
        let (state, stop) = (state.clone(), shutdown.clone());
        let observe = observer(&state.overlays, &state.alerts, &state.widgets);
        tasks.spawn(async move {
            let bus = &state.bus;
            redis
                .follow(
                    || bus.attached(),
                    &bus.attach_wake,
                    |events| bus.ingest(events, |e| observe(e)),
                    |s, detail| state.status.set("store", s, detail),
                    &stop,
                )
                .await;
        });
    }
    // Awaited at shutdown (not aborted): it saves the alert queues last.
    let alerts = tokio::spawn(crate::alerts::run(
        state.alerts.clone(),
        state.publisher.clone(),
        shutdown.clone(),
    ));
    // Awaited at shutdown (not aborted): it saves the sessions, counters and timers last.
    let widgets = tokio::spawn(crate::widgets::run(state.widgets.clone(), shutdown.clone()));
    if config.demo {
        let claimed = shared.is_some().then(|| state.channels.sourced_rx());
        tasks.spawn(crate::demo::run(
            state.publisher.clone(),
            config.default_channel(),
            config.demo_rate,
            claimed,
            shutdown.clone(),
        ));
    }
    let twitch = crate::twitch::Handles {
        config: Arc::new(config.twitch.clone()),
        auth: state.auth.clone(),
        covered: Arc::default(),
        publisher: state.publisher.clone(),
        sourced: state.channels.sourced_rx(),
    };
    if config.twitch.client_id.is_some() {
        tasks.spawn(
            state
                .auth
                .clone()
                .run(state.status.clone(), shutdown.clone()),
        );
        let delivery = match &config.public_url {
            Some(url) => Delivery::Webhook {
                public_url: url.clone(),
                secret: state.webhook_secret.clone(),
            },
            None => Delivery::WebSocket,
        };
        tasks.spawn(crate::twitch::eventsub::run(
            twitch.clone(),
            delivery,
            shutdown.clone(),
        ));
    }
    if config.twitch.chat_enabled() {
        tasks.spawn(crate::twitch::chat::run(twitch, shutdown.clone()));
    }
    tasks.spawn(crate::platforms::run(
        config.platforms.clone(),
        state.links.clone(),
        state.publisher.clone(),
        state.channels.sourced_rx(),
        state.channels.wanted_rx(),
        shutdown.clone(),
    ));
    let reloader = state.reloader.clone();
    match theme::watch::spawn(
        config.themes_dir.clone(),
        config.overlays_dir.clone(),
        config.watcher,
        move |what| reloader.changed(what),
        shutdown.clone(),
    ) {
        Ok(task) => {
            tasks.spawn(task);
        }
        Err(e) => tracing::warn!("theme hot reload is off: {e}"),
    }
    announce(&state, addr);
    let routes = crate::web::routes(state.clone());
    crate::server::serve(listener, routes, state.clone(), shutdown.clone()).await;
    if let Some(claims) = claims {
        let _ = tokio::time::timeout(Duration::from_secs(2), claims).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), alerts).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), widgets).await;
    state.fanout.stop();
    tasks.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// How long a claim on a channel's sources lasts without renewal: an instance that dies
/// hands its channels to another within this (plus one renewal period).
const CLAIM_TTL: Duration = Duration::from_secs(10);
const CLAIM_RENEW: Duration = Duration::from_secs(3);

/// With several instances on one shared store, runs each wanted channel's sources here only
/// while this instance holds the channel's claim in Redis, renewing it, and hands claims back
/// when a channel is no longer wanted or at shutdown.
async fn claim_sources(
    channels: Arc<Channels>,
    redis: Arc<crate::store::Redis>,
    shutdown: CancellationToken,
) {
    channels.gate();
    let me = format!("{:016x}", rand::random::<u64>());
    let mut wanted = channels.wanted_rx();
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
        channels.set_sourced(held.clone());
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

fn announce(state: &State, addr: SocketAddr) {
    let base = format!("http://{addr}");
    tracing::info!("overlayd listening on {base}/ (dashboard)");
    for o in state
        .overlays
        .all()
        .iter()
        .filter(|o| !o.config.is_viewer())
    {
        tracing::info!("  {}: {base}/o/{}", o.config.kind.as_str(), o.config.name);
    }
    if state.config.demo {
        tracing::info!(
            "demo source on: synthetic events on channel \"{}\"",
            state.config.default_channel()
        );
    }
}

/// `overlayd check`: every problem in the configuration, overlays and themes.
pub fn check(config: &Config) -> Vec<String> {
    let themes = Arc::new(theme::Registry::new(&config.themes_dir));
    let overlays = Arc::new(Overlays::new(themes.clone()));
    let validator = overlays.clone();
    themes.set_validator(Arc::new(move |t| {
        validator
            .validate(t)
            .and_then(|()| crate::widgets::validate(t))
    }));
    let mut problems: Vec<String> = themes.load_all().iter().map(ToString::to_string).collect();
    let (found, errors) = crate::overlay::file::load_overlays(
        &config.overlays_dir,
        &config.default_channel(),
        &themes.names(),
    );
    problems.extend(errors.iter().map(ToString::to_string));
    overlays.set_all(found.into_values());
    problems.extend(overlays.field_errors());
    problems
}
