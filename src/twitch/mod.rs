//! The Twitch edge: IRC chat today (EventSub, Helix and OAuth to come). Twitch's protocol
//! types end here; what leaves this module is our own [`crate::event::Event`].

pub mod auth;
pub mod chat;
pub mod emotes;
pub mod eventsub;
pub mod helix;
pub mod irc;
pub mod login;
pub mod oauth;
pub mod webhook;
