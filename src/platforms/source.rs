//! What a running platform source is handed: where to publish (with de-duplication of items
//! seen before), where to report its state, its back-off, and an HTTP client that looks like
//! a browser; and how a failed request is told.

use std::sync::Arc;
use std::time::Duration;

use crate::event::{Event, Kind, Platform};
use crate::seen::Seen;
use crate::source::{Backoff, Publisher};

/// What browsers send; some platforms answer other clients differently.
pub const BROWSER_UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36";

/// One of our events decoded from a platform's message.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// For de-duplication: the same item can arrive twice (two feeds, a reconnect).
    pub id: Option<String>,
    pub kind: Kind,
    pub data: serde_json::Value,
    /// When the platform says it happened (ms), if it does.
    pub at: Option<u64>,
}

/// What a running source needs: where to publish and where to report its state.
#[derive(Clone)]
pub struct Source {
    pub(super) publisher: Publisher,
    /// `youtube:@handle`, `kick:slug`.
    pub name: String,
    /// Our channel its events go to.
    pub channel: String,
    pub(super) seen: Arc<Seen>,
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

    /// Names what the source reads now (a live video's id), or nothing.
    pub fn live(&self, id: Option<String>) {
        self.publisher.status().set_live(&self.name, id);
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
        self.http_as(BROWSER_UA)
    }

    /// [`Source::http`] with another browser's agent.
    pub fn http_as(&self, agent: &str) -> Option<reqwest::Client> {
        reqwest::Client::builder()
            .user_agent(agent)
            .timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| self.set("error", why(&e)))
            .ok()
    }

    /// Counts likes in this source's channel's stats.
    pub fn tally_likes(&self, platform: Platform, likes: u64) {
        self.publisher
            .tally_likes(&self.channel, platform.as_str(), likes);
    }

    /// Publishes `decoded` unless its id was seen before.
    pub fn publish_decoded(&self, platform: Platform, decoded: Decoded) {
        if decoded.id.as_deref().is_some_and(|id| !self.first(id)) {
            return;
        }
        self.publish(platform, decoded.kind, decoded.data, decoded.at);
    }

    pub fn publish(
        &self,
        platform: Platform,
        kind: Kind,
        data: serde_json::Value,
        at: Option<u64>,
    ) {
        // A paid chat line shows in chat as it is, and alerts as a tip.
        let tip = (kind == Kind::ChatMessage)
            .then(|| crate::money::tip_of(&data))
            .flatten();
        let mut event = Event::new(platform, &self.channel, kind, data);
        if let Some(at) = at {
            event.at = at;
        }
        let at = event.at;
        self.publisher.publish_or_log(event);
        if let Some(tip) = tip {
            let mut tip = Event::new(platform, &self.channel, Kind::Tip, tip);
            tip.at = at;
            self.publisher.publish_or_log(tip);
        }
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
