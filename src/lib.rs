//! overlayd: stream overlays for OBS, fed by Twitch, YouTube and Kick, served over
//! server-sent events.
//!
//! The modules, in the order data flows through them. Handles flow down and callbacks flow up:
//! a part is handed the narrow thing it uses (a [`source::Publisher`], a watch of its channels,
//! its config section) and never the whole server; only [`app`] knows every part, and only
//! `main.rs` knows [`app`].
//!
//! - [`config`]: `overlay.toml`, validated with file:line errors.
//! - [`source`]: what every source is handed: the publisher, the status board, the back-off
//!   ([`backoff`]) and the cancellable sleep.
//! - Sources turn what they receive into events: [`twitch`] (chat, login, Helix, EventSub),
//!   [`platforms`] (YouTube and Kick chat, read without official APIs) and [`demo`], a
//!   synthetic source.
//! - [`event`]: the one event type that crosses modules; its platform is named by its source.
//!   [`money`] reads what a support event is worth, comparably across currencies.
//! - [`bus`]: stamps ids, keeps per-channel history, fans out with replay-then-live.
//! - [`store`]: the durable event log the bus writes before fanning out (SQLite, or Redis
//!   shared by several instances); [`seen`] remembers ids already handled.
//! - [`channels`]: which channels are wanted, leased by open streams, with a grace period.
//! - [`stats`]: chat statistics derived from the events.
//! - [`widgets`]: state kept beside the log: the stream session (labels, credits), counters and
//!   timers, steered like the alerts by every control path.
//! - [`theme`]: handlebars themes, embedded defaults, hot reload with last-good fallback; its
//!   watcher tells what changed through a callback.
//! - [`overlay`]: overlay instances (`overlays/*.toml` in [`overlay::file`]): which events they
//!   show, rendered once per overlay; [`overlay::reload::Reloader`] applies file changes.
//! - [`frame`]: every byte an event stream sends.
//! - [`web`]: warp routes over one narrow [`web::State`]: overlay pages, SSE streams, the JSON
//!   API, the dashboard, login, viewer pages and the EventSub webhook callback, with one
//!   access rule ([`web::access`]) for every state change.
//! - [`server`]: the accept loop, with a shutdown that never waits on an open stream.
//! - [`app`]: builds every part and owns shutdown.
//!
//! The one upward call is deliberate: a bus item renders its frame through the overlay's
//! closure ([`bus::Item::frame`]), outside the bus lock, once per overlay.

pub mod alerts;
pub mod app;
pub mod backoff;
pub mod blocking;
pub mod bus;
pub mod channels;
pub mod config;
pub mod demo;
pub mod event;
pub mod files;
pub mod frame;
pub mod money;
pub mod overlay;
pub mod platforms;
pub mod replay;
pub mod seen;
pub mod server;
pub mod source;
pub mod stats;
pub mod store;
pub mod theme;
pub mod twitch;
pub mod web;
pub mod widgets;

/// mimalloc rather than the system allocator, for the server and for every test and benchmark
/// built on this library alike: an event is made on one thread and freed on another, which
/// glibc's arenas answer with lock contention and consolidation passes (a third of a chat
/// burst's CPU went to `malloc` and `free`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
