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
pub mod oauth;
pub mod webhook;
