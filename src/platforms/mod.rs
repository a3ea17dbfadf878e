//! Chat from platforms beside Twitch: YouTube ([`youtube`]) and Kick ([`kick`]), read without
//! official APIs or keys.
//!
//! Each platform channel is linked to one of our channels in overlay.toml:
//!
//! ```toml
//! [[youtube.channels]]
//! channel = "mychannel"     # the overlays' channel its chat joins
//! target = "@handle"        # or a UC… channel id, or an 11-character video id
//!
//! [[kick.channels]]
//! channel = "mychannel"
//! slug = "name"
//! ```
//!
//! Its events are published on that channel with `platform = "youtube" | "kick"`, so one chat
//! overlay shows every platform. A source runs while its channel is wanted (an overlay or a
//! viewer page is open, or the channel is pinned), shared by all of them, and stops after the
//! grace period like Twitch's; a failing platform only ever affects itself.

pub mod kick;
pub mod settings;
pub mod source;
pub mod youtube;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use self::settings::{KickConfig, KickLink, YoutubeConfig, YoutubeLink};
use self::source::Source;
use crate::seen::Seen;
use crate::source::Publisher;

/// One platform channel linked to one of ours.
#[derive(Clone, Debug)]
enum Link {
    Youtube(YoutubeLink),
    Kick(KickLink),
}

impl Link {
    fn channel(&self) -> &str {
        match self {
            Link::Youtube(l) => &l.channel,
            Link::Kick(l) => &l.channel,
        }
    }

    /// Its name in `/health` and on the dashboard.
    fn source(&self) -> String {
        match self {
            Link::Youtube(l) => format!("youtube:{}", l.target),
            Link::Kick(l) => format!("kick:{}", l.slug),
        }
    }
}

/// Item ids remembered per link: YouTube's first answer repeats the last seconds of chat.
const SEEN: usize = 2000;

/// Runs each linked source while its channel is wanted here (`sourced`), until shutdown.
pub async fn run(
    youtube: YoutubeConfig,
    kick: KickConfig,
    publisher: Publisher,
    mut sourced: watch::Receiver<BTreeSet<String>>,
    shutdown: CancellationToken,
) {
    let links: Vec<Link> = youtube
        .channels
        .iter()
        .cloned()
        .map(Link::Youtube)
        .chain(kick.channels.iter().cloned().map(Link::Kick))
        .collect();
    if links.is_empty() {
        return;
    }
    let status = publisher.status().clone();
    for link in &links {
        status.set(&link.source(), "idle", "starts when an overlay is open");
    }
    let (youtube, kick) = (Arc::new(youtube), Arc::new(kick));
    let mut running: HashMap<usize, CancellationToken> = HashMap::new();
    // Kept across restarts of a link's source, so a reopened overlay shows nothing twice.
    let seen: Vec<Arc<Seen>> = links.iter().map(|_| Arc::new(Seen::new(SEEN))).collect();
    loop {
        let set = sourced.borrow_and_update().clone();
        for (i, link) in links.iter().enumerate() {
            let want = set.contains(link.channel());
            if want && !running.contains_key(&i) {
                let token = shutdown.child_token();
                running.insert(i, token.clone());
                let source = Source {
                    publisher: publisher.clone(),
                    name: link.source(),
                    channel: link.channel().to_string(),
                    seen: seen[i].clone(),
                };
                source.set("starting", "");
                match link.clone() {
                    Link::Youtube(l) => {
                        tokio::spawn(youtube::run(source, youtube.clone(), l.target, token));
                    }
                    Link::Kick(l) => {
                        tokio::spawn(kick::run(source, kick.clone(), l, token));
                    }
                }
            } else if !want && let Some(token) = running.remove(&i) {
                token.cancel();
                status.set(&link.source(), "idle", "no overlay open; stopped");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = sourced.changed() => if changed.is_err() { return },
        }
    }
}
