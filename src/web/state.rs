//! What the routes and event streams share: one narrow state built by `app`, below every
//! route module and above the parts it holds. Sources never see it.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use warp::Filter;

use crate::bus::Bus;
use crate::channels::Channels;
use crate::config::Config;
use crate::overlay::Overlays;
use crate::overlay::reload::Reloader;
use crate::seen::Seen;
use crate::source::{Publisher, Status};
use crate::theme;
use crate::twitch::auth::Auth;
use crate::web::access::Access;
use crate::web::fanout::Fanout;
use crate::web::sessions::{Pending, Sessions};

pub struct State {
    pub config: Config,
    /// The one rule for every state change.
    pub access: Arc<Access>,
    pub bus: Arc<Bus>,
    /// How the emulate API and the webhook callback publish, like any source.
    pub publisher: Publisher,
    /// Connection state of every source, for `/health` and the dashboard.
    pub status: Arc<Status>,
    pub themes: Arc<theme::Registry>,
    pub overlays: Arc<Overlays>,
    /// Every alert overlay's queue and safe mode: what every control path steers.
    pub alerts: Arc<crate::alerts::Alerts>,
    /// Every channel's session, counters and timers: what every control path steers.
    pub widgets: Arc<crate::widgets::Widgets>,
    /// The dashboard's playback of a recording.
    pub rehearsal: crate::replay::Rehearsal,
    pub reloader: Arc<Reloader>,
    /// Channels wanted by open streams (and pinned in overlay.toml).
    pub channels: Arc<Channels>,
    /// Twitch login state (token lifecycle).
    pub auth: Arc<Auth>,
    /// Viewer sessions (signed cookies) and their logins in progress.
    pub sessions: Sessions,
    /// The streamer's logins in progress (dashboard device code, browser state values).
    pub auth_pending: Pending,
    /// The EventSub webhook secret and the message ids already handled.
    pub webhook_secret: String,
    pub webhook_seen: Seen,
    pub started: Instant,
    /// Writes events to the parked event streams.
    pub fanout: Fanout,
    /// The platform chats that run: overlay.toml's, and those tools asked for.
    pub links: Arc<crate::platforms::Links>,
    /// Chat-socket stats messages, made once a second per chat for all its clients.
    pub chat_stats: Arc<crate::web::chat_protocol::StatsCache>,
    /// Ends the sockets (streams end when the bus closes).
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl State {
    /// The feed of a new event stream showing `overlays`, replaying what came after `since`;
    /// it keeps their channels' sources running while it lives.
    pub fn feed(
        &self,
        overlays: Vec<Arc<crate::overlay::Overlay>>,
        since: Option<u64>,
    ) -> crate::web::sse::Feed {
        let lease = crate::web::sse::lease(&self.channels, &overlays);
        crate::web::sse::Feed::new(
            self.bus.clone(),
            self.overlays.clone(),
            lease,
            overlays,
            since,
        )
    }
}

/// Injects the shared state.
pub fn with_state(
    state: Arc<State>,
) -> impl Filter<Extract = (Arc<State>,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}
