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
pub mod youtube;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use tokio::sync::watch;

use crate::event::{Event, Kind, Platform};
use crate::seen::Seen;
use crate::source::{Backoff, Publisher};

/// What browsers send; some platforms answer other clients differently.
pub const BROWSER_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct YoutubeConfig {
    /// Where YouTube lives (tests point it at a loopback fake).
    pub base_url: String,
    /// Bounds of the wait between two polls; YouTube's `timeoutMs` is clamped to them.
    pub min_poll_ms: u64,
    pub max_poll_ms: u64,
    /// Between two looks at an offline, upcoming or ended stream.
    pub live_check_s: u64,
    /// Sent when the page does not say which web client version it is.
    pub client_version: String,
    pub channels: Vec<YoutubeLink>,
}

impl Default for YoutubeConfig {
    fn default() -> Self {
        YoutubeConfig {
            base_url: "https://www.youtube.com".into(),
            min_poll_ms: 1000,
            max_poll_ms: 5000,
            live_check_s: 30,
            client_version: "2.20261101.00.00".into(),
            channels: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YoutubeLink {
    pub channel: String,
    /// `@handle`, a `UC…` channel id or a video id.
    pub target: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum KickTransport {
    /// Whatever Kick's negotiation offers (Centrifugo today), Pusher when it cannot be asked.
    Auto,
    Centrifugo,
    Pusher,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KickConfig {
    /// kick.com, for the channel lookup.
    pub api_base: String,
    /// Kick's realtime API (negotiation and Centrifugo tokens).
    pub realtime_base: String,
    /// The legacy Pusher socket, with its app key.
    pub pusher_url: String,
    pub transport: KickTransport,
    pub channels: Vec<KickLink>,
}

impl Default for KickConfig {
    fn default() -> Self {
        KickConfig {
            api_base: "https://kick.com".into(),
            realtime_base: "https://web.kick.com/api/v1/realtime".into(),
            pusher_url: "wss://ws-us2.pusher.com/app/32cbd69e4b950bf97679?protocol=7&client=js&version=8.4.0&flash=false".into(),
            transport: KickTransport::Auto,
            channels: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KickLink {
    pub channel: String,
    pub slug: String,
    /// Kick's ids, when known: with both the kick.com lookup (behind bot protection) is
    /// skipped.
    pub channel_id: Option<u64>,
    pub chatroom_id: Option<u64>,
}

/// Checks the links; on error the key to point at and what to fix.
pub fn check(
    youtube: &mut YoutubeConfig,
    kick: &mut KickConfig,
) -> Result<(), (&'static str, String)> {
    if youtube.min_poll_ms == 0 || youtube.min_poll_ms > youtube.max_poll_ms {
        return Err((
            "min_poll_ms",
            "min_poll_ms must be at least 1 and at most max_poll_ms".into(),
        ));
    }
    let mut seen = HashSet::new();
    for link in &mut youtube.channels {
        link.channel = crate::event::normalize_channel(&link.channel);
        link.target = link.target.trim().to_string();
        if youtube::Target::parse(&link.target).is_none() {
            return Err((
                "target",
                format!(
                    "target = \"{}\" is not a YouTube @handle, channel id (UC…) or video id",
                    link.target
                ),
            ));
        }
        if !seen.insert(link.target.clone()) {
            return Err((
                "target",
                format!(
                    "target = \"{}\" is linked twice; link it to one channel",
                    link.target
                ),
            ));
        }
    }
    for link in &mut kick.channels {
        link.channel = crate::event::normalize_channel(&link.channel);
        link.slug = link.slug.trim().to_ascii_lowercase();
        if link.slug.is_empty()
            || !link
                .slug
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err((
                "slug",
                format!("slug = \"{}\" is not a Kick channel name", link.slug),
            ));
        }
        if !seen.insert(format!("kick:{}", link.slug)) {
            return Err((
                "slug",
                format!(
                    "slug = \"{}\" is linked twice; link it to one channel",
                    link.slug
                ),
            ));
        }
    }
    for link in youtube
        .channels
        .iter()
        .map(|l| &l.channel)
        .chain(kick.channels.iter().map(|l| &l.channel))
    {
        if !crate::event::valid_channel(link) {
            return Err((
                "channel",
                format!("channel = \"{link}\" is not a channel name (1-25 of a-z, 0-9, _)"),
            ));
        }
    }
    Ok(())
}

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
    mut sourced: watch::Receiver<std::collections::BTreeSet<String>>,
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

/// What a running source needs: where to publish and where to report its state.
#[derive(Clone)]
pub struct Source {
    publisher: Publisher,
    /// `youtube:@handle`, `kick:slug`.
    pub name: String,
    /// Our channel its events go to.
    pub channel: String,
    seen: Arc<Seen>,
}

impl Source {
    /// `true` the first time this source offers item `id` (items can come twice: overlapping
    /// poll windows, two feeds, a restart of the source).
    pub fn first(&self, id: &str) -> bool {
        self.seen.first_time(id)
    }

    pub fn set(&self, state: &str, detail: impl Into<String>) {
        self.publisher.status().set(&self.name, state, detail);
    }

    /// Counts a failure, reports it as `state` with `why` and the wait, and returns the wait.
    pub fn retry(&self, backoff: &mut Backoff, state: &str, why: &str) -> Duration {
        let wait = backoff.fail();
        self.set(
            state,
            format!("{why}; trying again in {:.1}s", wait.as_secs_f64()),
        );
        wait
    }

    /// An HTTP client that looks like a browser to the platform; `None` (reported) if the
    /// system's TLS setup cannot make one.
    pub fn http(&self) -> Option<reqwest::Client> {
        reqwest::Client::builder()
            .user_agent(BROWSER_UA)
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| self.set("error", why(&e)))
            .ok()
    }

    pub fn publish(
        &self,
        platform: Platform,
        kind: Kind,
        data: serde_json::Value,
        at: Option<u64>,
    ) {
        let mut event = Event::new(platform, &self.channel, kind, data);
        if let Some(at) = at {
            event.at = at;
        }
        self.publisher.publish_or_log(event);
    }
}

/// An error with what caused it ("error sending request for url (…): dns error: …"): the
/// outermost message alone rarely says what to fix.
pub fn why(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// [`why`] a request to `url` failed, naming the URL once.
pub fn failed(url: &str, e: &dyn std::error::Error) -> String {
    let text = why(e);
    if text.contains(url) {
        text
    } else {
        format!("{url}: {text}")
    }
}

/// The back-off of a platform source: 1 s doubling to 5 min.
pub fn backoff() -> Backoff {
    Backoff::new(Duration::from_secs(1), Duration::from_secs(300))
}

/// A recorded payload from `tests/fixtures/<platform>/<name>`, parsed.
#[cfg(test)]
pub(crate) fn fixture(platform: &str, name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(platform)
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("error sending request for url (http://x/y)")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn errors_say_their_cause_and_name_the_url_once() {
        let e = Outer(std::io::Error::other("dns error: no such host"));
        assert_eq!(
            failed("http://x/y", &e),
            "error sending request for url (http://x/y): dns error: no such host"
        );
        let plain = std::io::Error::other("timed out");
        assert_eq!(failed("http://x/y", &plain), "http://x/y: timed out");
    }
}
