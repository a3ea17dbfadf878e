//! The Twitch edge: chat over IRC (`chat`, `irc`, `emotes`), login and tokens (`oauth`,
//! `auth`, `login`), Helix (`helix`) and EventSub over WebSocket or webhooks (`eventsub`,
//! `webhook`). Twitch's protocol types end here; what leaves is our own [`crate::event::Event`].

pub mod auth;
pub mod chat;
pub mod emotes;
pub mod eventsub;
pub mod helix;
pub mod irc;
pub mod login;
pub mod notification;
pub mod oauth;
pub mod webhook;

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use parking_lot::RwLock;
use tokio::sync::watch;

use crate::config::TwitchConfig;
use crate::source::Publisher;

/// What the Twitch sources (chat, EventSub) are handed: their config section, the login, the
/// channels EventSub covers, where to publish, and the channels whose sources run here.
#[derive(Clone)]
pub struct Handles {
    pub config: Arc<TwitchConfig>,
    pub auth: Arc<auth::Auth>,
    pub covered: Arc<Covered>,
    pub publisher: Publisher,
    pub sourced: watch::Receiver<BTreeSet<String>>,
}

/// Channels an EventSub subscription covers, written by [`eventsub`] and read by [`chat`]:
/// while EventSub delivers a channel's subs and raids, chat's notices of the same ones would
/// alert twice, so chat leaves them out.
#[derive(Default)]
pub struct Covered(RwLock<HashSet<String>>);

impl Covered {
    pub fn insert(&self, channel: &str) {
        self.0.write().insert(channel.to_string());
    }

    pub fn remove(&self, channel: &str) {
        self.0.write().remove(channel);
    }

    /// Every channel at once: the session that covered them is gone.
    pub fn clear(&self) {
        self.0.write().clear();
    }

    pub fn contains(&self, channel: &str) -> bool {
        self.0.read().contains(channel)
    }
}
