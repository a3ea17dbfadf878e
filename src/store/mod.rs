//! The durable event log. Every event is written before it is fanned out, so what a client was
//! sent is always in the log; ids continue across restarts, and a client that reconnects after
//! a restart with `Last-Event-ID` gets what it missed.
//!
//! Two logs implement [`EventLog`]:
//! - [`Sqlite`], the default: a file in the data dir, for one instance.
//! - [`Redis`]: a Redis Stream per channel, shared by several instances. Ids come from Redis
//!   so they are ordered across instances, and every instance reads the streams of the
//!   channels it serves, so an event posted to one reaches the clients of all.

mod log;
mod redis;
mod sqlite;

pub use self::log::{EventLog, StoreError};
pub use self::redis::{Attached, Redis};
pub use self::sqlite::Sqlite;
