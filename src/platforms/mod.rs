//! Chat from platforms beside Twitch: YouTube ([`youtube`]), Kick ([`kick`]) and TikTok
//! (`tiktok`, a cargo feature on by default), read without official APIs or keys.
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
//!
//! [[tiktok.channels]]
//! channel = "mychannel"
//! unique_id = "name"        # the @name, without the @
//! ```
//!
//! Its events are published on that channel with `platform = "youtube" | "kick" | "tiktok"`, so one chat
//! overlay shows every platform. A source runs while its channel is wanted (an overlay or a
//! viewer page is open, or the channel is pinned), shared by all of them, and stops after the
//! grace period like Twitch's; a failing platform only ever affects itself.

pub mod kick;
pub mod settings;
pub mod source;
#[cfg(feature = "tiktok")]
pub mod tiktok;
pub mod youtube;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use self::settings::{KickLink, Platforms, TiktokLink, YoutubeLink};
use self::source::Source;
use crate::seen::Seen;
use crate::source::Publisher;

/// One platform channel linked to one of ours.
#[derive(Clone, Debug, PartialEq)]
pub enum Link {
    Youtube(YoutubeLink),
    Kick(KickLink),
    Tiktok(TiktokLink),
}

/// The file in the data dir that holds the optional TikTok session cookie (18+ rooms).
pub const TIKTOK_SESSION_FILE: &str = "tiktok-session";

impl Link {
    /// Our channel its events go to.
    pub fn channel(&self) -> &str {
        match self {
            Link::Youtube(l) => &l.channel,
            Link::Kick(l) => &l.channel,
            Link::Tiktok(l) => &l.channel,
        }
    }

    /// Its name in `/health` and on the dashboard.
    pub fn source(&self) -> String {
        match self {
            Link::Youtube(l) => format!("youtube:{}", l.target),
            Link::Kick(l) => format!("kick:{}", l.slug),
            Link::Tiktok(l) => format!("tiktok:@{}", l.unique_id),
        }
    }
}

/// Item ids remembered per link: YouTube's first answer repeats the last seconds of chat.
const SEEN: usize = 2000;

/// The links that run: those of overlay.toml, and chats asked for on demand (by a tool over
/// the chat socket) that no overlay names. An on-demand chat gets a channel of its own
/// (`youtube.<target>`, `kick.<slug>`, `tiktok.<name>`), kept wanted by its clients' leases like any channel,
/// and is forgotten once that channel is no longer wanted. At most `max` at once.
pub struct Links {
    configured: Vec<Link>,
    demand: watch::Sender<Vec<Link>>,
    max: usize,
}

/// Why a chat could not be read on demand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DemandError {
    #[error("the server already reads {0} chats on demand; close one first")]
    Full(usize),
}

impl Links {
    pub fn new(platforms: &Platforms, max: usize) -> Arc<Links> {
        let configured = platforms
            .youtube
            .channels
            .iter()
            .cloned()
            .map(Link::Youtube)
            .chain(platforms.kick.channels.iter().cloned().map(Link::Kick))
            .chain(platforms.tiktok.channels.iter().cloned().map(Link::Tiktok))
            .collect();
        Arc::new(Links {
            configured,
            demand: watch::Sender::new(Vec::new()),
            max,
        })
    }

    /// The link that reads YouTube `target`: a running one, else a new one to [`Links::start`]
    /// (once its channel is leased: a link whose channel nobody wants is forgotten).
    pub fn youtube(&self, target: &str) -> Link {
        self.find(|l| matches!(l, Link::Youtube(y) if y.target.eq_ignore_ascii_case(target)))
            .unwrap_or_else(|| {
                Link::Youtube(YoutubeLink {
                    channel: format!("youtube.{target}").to_ascii_lowercase(),
                    target: target.to_string(),
                })
            })
    }

    /// The link that reads Kick channel `slug`, as [`Links::youtube`].
    pub fn kick(&self, slug: &str) -> Link {
        let slug = slug.to_ascii_lowercase();
        self.find(|l| matches!(l, Link::Kick(k) if k.slug == slug))
            .unwrap_or_else(|| {
                Link::Kick(KickLink {
                    channel: format!("kick.{slug}"),
                    slug: slug.clone(),
                    channel_id: None,
                    chatroom_id: None,
                })
            })
    }

    /// The link that reads TikTok host `unique_id` (without the @), as [`Links::youtube`].
    /// An on-demand channel name holds `_` for the `.`s a TikTok name may have.
    pub fn tiktok(&self, unique_id: &str) -> Link {
        let unique_id = unique_id.trim_start_matches('@').to_ascii_lowercase();
        self.find(|l| matches!(l, Link::Tiktok(t) if t.unique_id == unique_id))
            .unwrap_or_else(|| {
                Link::Tiktok(TiktokLink {
                    channel: format!("tiktok.{}", unique_id.replace('.', "_")),
                    unique_id: unique_id.clone(),
                    room_id: None,
                })
            })
    }

    /// Runs `link` on demand (nothing to do for one that runs already).
    pub fn start(&self, link: &Link) -> Result<(), DemandError> {
        if self.configured.contains(link) {
            return Ok(());
        }
        self.demand(link.clone()).map(|_| ())
    }

    /// Chats being read right now: the links whose channel is wanted here.
    pub fn active(&self, sourced: &BTreeSet<String>) -> usize {
        self.all()
            .iter()
            .filter(|l| sourced.contains(l.channel()))
            .count()
    }

    fn find(&self, f: impl Fn(&Link) -> bool) -> Option<Link> {
        self.configured
            .iter()
            .chain(self.demand.borrow().iter())
            .find(|l| f(l))
            .cloned()
    }

    fn demand(&self, link: Link) -> Result<Link, DemandError> {
        let mut result = Ok(link.clone());
        self.demand.send_if_modified(|links| {
            if links.contains(&link) {
                return false;
            }
            if links.len() >= self.max {
                result = Err(DemandError::Full(self.max));
                return false;
            }
            links.push(link.clone());
            true
        });
        result
    }

    /// Forgets on-demand chats whose channel is no longer wanted.
    fn retain(&self, wanted: &BTreeSet<String>) {
        self.demand.send_if_modified(|links| {
            let before = links.len();
            links.retain(|l| wanted.contains(l.channel()));
            links.len() != before
        });
    }

    fn all(&self) -> Vec<Link> {
        let mut all = self.configured.clone();
        all.extend(self.demand.borrow().iter().cloned());
        all
    }
}

/// Runs each link's source while its channel is wanted here (`sourced`), until shutdown;
/// on-demand links are forgotten once their channel is not `wanted` anywhere.
pub async fn run(
    platforms: Platforms,
    links: Arc<Links>,
    publisher: Publisher,
    mut sourced: watch::Receiver<BTreeSet<String>>,
    mut wanted: watch::Receiver<BTreeSet<String>>,
    shutdown: CancellationToken,
) {
    let status = publisher.status().clone();
    for link in &links.configured {
        status.set(&link.source(), "idle", "starts when an overlay is open");
    }
    let youtube = Arc::new(platforms.youtube);
    let kick = Arc::new(platforms.kick);
    let tiktok = Arc::new(platforms.tiktok);
    let mut demand = links.demand.subscribe();
    let mut running: HashMap<String, CancellationToken> = HashMap::new();
    // Kept across restarts of a link's source, so a reopened overlay shows nothing twice.
    let mut seen: HashMap<String, Arc<Seen>> = HashMap::new();
    loop {
        let set = sourced.borrow_and_update().clone();
        demand.borrow_and_update();
        links.retain(&wanted.borrow_and_update());
        let all = links.all();
        for link in &all {
            let name = link.source();
            let want = set.contains(link.channel());
            if want && !running.contains_key(&name) {
                let token = shutdown.child_token();
                running.insert(name.clone(), token.clone());
                let source = Source {
                    publisher: publisher.clone(),
                    name: name.clone(),
                    channel: link.channel().to_string(),
                    seen: seen
                        .entry(name.clone())
                        .or_insert_with(|| Arc::new(Seen::new(SEEN)))
                        .clone(),
                };
                source.set("starting", "");
                match link.clone() {
                    Link::Youtube(l) => {
                        tokio::spawn(youtube::run(source, youtube.clone(), l.target, token));
                    }
                    Link::Kick(l) => {
                        tokio::spawn(kick::run(source, kick.clone(), l, token));
                    }
                    #[cfg(feature = "tiktok")]
                    Link::Tiktok(l) => {
                        let session = tiktok.session_file.clone();
                        tokio::spawn(tiktok::run(source, tiktok.clone(), l, session, token));
                    }
                    #[cfg(not(feature = "tiktok"))]
                    Link::Tiktok(_) => {
                        let _ = &tiktok;
                        source.set(
                            "error",
                            "this overlayd was built without the tiktok feature; build it with --features tiktok",
                        );
                    }
                }
            } else if !want && let Some(token) = running.remove(&name) {
                token.cancel();
                status.set(&name, "idle", "no overlay open; stopped");
            }
        }
        // On-demand chats gone from the list stop too, and their seen ids go with them (kept,
        // they would grow with every chat a tool ever asked for).
        let names: std::collections::HashSet<String> = all.iter().map(Link::source).collect();
        running.retain(|name, token| {
            let keep = names.contains(name);
            if !keep {
                token.cancel();
                status.set(name, "idle", "no client left; stopped");
            }
            keep
        });
        seen.retain(|name, _| names.contains(name));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = sourced.changed() => if changed.is_err() { return },
            changed = demand.changed() => if changed.is_err() { return },
            changed = wanted.changed() => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chats_on_demand_are_bounded_shared_and_forgotten_when_unwanted() {
        let youtube = settings::YoutubeConfig {
            channels: vec![YoutubeLink {
                channel: "mine".into(),
                target: "@Mine".into(),
            }],
            ..settings::YoutubeConfig::default()
        };
        let platforms = Platforms {
            youtube,
            ..Platforms::default()
        };
        let links = Links::new(&platforms, 2);
        // A configured link is found whatever the case, and never counts against the cap.
        let mine = links.youtube("@mine");
        assert_eq!(mine.channel(), "mine");
        assert_eq!(links.start(&mine), Ok(()));
        let a = links.kick("Alpha");
        assert_eq!(a.channel(), "kick.alpha");
        assert_eq!(links.start(&a), Ok(()));
        assert_eq!(links.start(&a), Ok(()), "the same chat twice is one");
        let b = links.youtube("@other");
        assert_eq!(links.start(&b), Ok(()));
        assert_eq!(links.start(&links.kick("gamma")), Err(DemandError::Full(2)));
        let wanted: BTreeSet<String> = ["mine".to_string(), "kick.alpha".to_string()].into();
        assert_eq!(links.active(&wanted), 2);
        links.retain(&wanted);
        assert_eq!(links.all().len(), 2, "the configured link and alpha");
        assert_eq!(links.start(&links.kick("gamma")), Ok(()));
    }
}
