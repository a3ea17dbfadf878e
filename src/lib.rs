//! overlayd: stream overlays for OBS, fed by Twitch and served over server-sent events.
//!
//! The modules, in the order data flows through them:
//!
//! - [`config`]: `overlay.toml` and `overlays/*.toml`, validated with file:line errors.
//! - [`twitch`]: the Twitch edge (chat, login, Helix, EventSub) and [`demo`], a synthetic
//!   source: sources turn what they receive into…
//! - [`platforms`]: YouTube and Kick chat, read without official APIs, beside Twitch's.
//! - [`event`]: …the one event type that crosses modules.
//! - [`bus`]: stamps ids, keeps per-channel history, fans out with replay-then-live.
//! - [`store`]: the durable event log the bus writes before fanning out (SQLite, or Redis
//!   shared by several instances).
//! - [`channels`]: which channels are wanted, leased by open streams, with a grace period.
//! - [`stats`]: chat statistics derived from the events.
//! - [`theme`]: handlebars themes, embedded defaults, hot reload with last-good fallback.
//! - [`overlay`]: overlay instances: which events they show, rendered once per overlay.
//! - [`web`]: warp routes: overlay pages, SSE streams, the JSON API, the dashboard, login,
//!   viewer pages and the EventSub webhook callback.
//! - [`server`]: the accept loop, with a shutdown that never waits on an open stream.
//! - [`app`]: builds every part and owns shutdown.

pub mod app;
pub mod bus;
pub mod channels;
pub mod config;
pub mod demo;
pub mod event;
pub mod frame;
pub mod overlay;
pub mod platforms;
pub mod seen;
pub mod server;
pub mod source;
pub mod stats;
pub mod store;
pub mod theme;
pub mod twitch;
pub mod web;
