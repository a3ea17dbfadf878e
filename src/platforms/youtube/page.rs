//! YouTube's watch page, read with no socket: what a `target` names, and the live video, its
//! "Live chat" continuation, API key and client version found in the page's HTML.

use serde_json::Value;

/// What `[[youtube.channels]] target` names.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Handle(String),
    Channel(String),
    Video(String),
}

impl Target {
    pub fn parse(s: &str) -> Option<Target> {
        let id_chars = |t: &str| {
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if let Some(h) = s.strip_prefix('@') {
            return (!h.is_empty() && !h.contains(['/', '?', '#', ' ']))
                .then(|| Target::Handle(s.into()));
        }
        if s.len() == 24 && s.starts_with("UC") && id_chars(s) {
            return Some(Target::Channel(s.into()));
        }
        if s.len() == 11 && id_chars(s) {
            return Some(Target::Video(s.into()));
        }
        None
    }

    /// The page that shows what is live now.
    pub fn page(&self, base: &str) -> String {
        match self {
            Target::Handle(h) => format!("{base}/{h}/live"),
            Target::Channel(c) => format!("{base}/channel/{c}/live"),
            Target::Video(v) => format!("{base}/watch?v={v}"),
        }
    }
}

/// What a watch page says.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub video_id: Option<String>,
    pub state: Liveness,
    pub api_key: Option<String>,
    pub client_version: Option<String>,
    pub continuation: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Liveness {
    Live,
    Upcoming,
    Ended,
    Offline,
}

impl Liveness {
    pub fn as_str(self) -> &'static str {
        match self {
            Liveness::Live => "live",
            Liveness::Upcoming => "upcoming",
            Liveness::Ended => "ended",
            Liveness::Offline => "offline",
        }
    }
}

/// Whether `html` is YouTube's cookie-consent interstitial instead of the page.
pub fn is_consent_page(html: &str) -> bool {
    html.contains("Before you continue to YouTube") || html.contains("consent.youtube.com/save")
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

/// Reads a watch page (or a channel's `/live` page).
pub fn parse_page(html: &str) -> Page {
    let video_id = between(html, "<link rel=\"canonical\" href=\"", "\"")
        .and_then(|href| href.split_once("v=").map(|(_, v)| v))
        .map(|v| v.chars().take(11).collect::<String>())
        .or_else(|| between(html, "\"videoId\":\"", "\"").map(str::to_string))
        .filter(|v| v.len() == 11);
    let data = initial_data(html);
    let continuation = data
        .as_ref()
        .and_then(live_chat_continuation)
        .or_else(|| between(html, "\"continuation\":\"", "\"").map(str::to_string));
    let state = if html.contains("\"isLiveNow\":true") {
        Liveness::Live
    } else if html.contains("\"isUpcoming\":true") {
        Liveness::Upcoming
    } else if html.contains("\"isReplay\":true") {
        Liveness::Ended
    } else if video_id.is_some() && continuation.is_some() {
        Liveness::Live
    } else {
        Liveness::Offline
    };
    Page {
        video_id,
        state,
        api_key: between(html, "\"INNERTUBE_API_KEY\":\"", "\"").map(str::to_string),
        client_version: between(html, "\"INNERTUBE_CONTEXT_CLIENT_VERSION\":\"", "\"")
            .map(str::to_string),
        continuation,
    }
}

/// `ytInitialData`, the JSON object the page assigns.
fn initial_data(html: &str) -> Option<Value> {
    let at = html.find("ytInitialData")?;
    let rest = &html[at..];
    let start = rest.find('{')?;
    serde_json::Deserializer::from_str(&rest[start..])
        .into_iter::<Value>()
        .next()?
        .ok()
}

/// The "Live chat" view's continuation (the second item of the view selector; the first is
/// "Top chat", which hides messages), else whatever the chat renderer starts with.
fn live_chat_continuation(data: &Value) -> Option<String> {
    let reload = |item: &Value| {
        item.pointer("/continuation/reloadContinuationData/continuation")
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if let Some(items) = find_key(data, "subMenuItems").and_then(Value::as_array) {
        if let Some(c) = items.get(1).and_then(reload) {
            return Some(c);
        }
        if let Some(c) = items.first().and_then(reload) {
            return Some(c);
        }
    }
    let renderer = find_key(data, "liveChatRenderer")?;
    let first = renderer.pointer("/continuations/0")?.as_object()?;
    first
        .values()
        .find_map(|v| v.get("continuation").and_then(Value::as_str))
        .map(str::to_string)
}

fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(map) => map
            .get(key)
            .or_else(|| map.values().find_map(|v| find_key(v, key))),
        Value::Array(items) => items.iter().find_map(|v| find_key(v, key)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            Target::parse("@Some_one"),
            Some(Target::Handle("@Some_one".into()))
        );
        assert!(matches!(
            Target::parse("UCz4FjAv44II95JampuGwDTg"),
            Some(Target::Channel(_))
        ));
        assert!(matches!(
            Target::parse("dQw4w9WgXcQ"),
            Some(Target::Video(_))
        ));
        assert_eq!(Target::parse("not a thing"), None);
        assert_eq!(Target::parse("@"), None);
    }

    #[test]
    fn a_page_gives_the_live_chat_not_top_chat() {
        let html = r#"<html><link rel="canonical" href="https://www.youtube.com/watch?v=abcdefghijk">
<script>ytcfg.set({"INNERTUBE_API_KEY":"KEY","INNERTUBE_CONTEXT_CLIENT_VERSION":"2.2026"});
var ytInitialData = {"contents":{"liveChatRenderer":{"header":{"viewSelector":{"subMenuItems":[
{"title":"Top chat","continuation":{"reloadContinuationData":{"continuation":"TOP"}}},
{"title":"Live chat","continuation":{"reloadContinuationData":{"continuation":"LIVE"}}}]}}}},"isLiveNow":true};</script>"#;
        let page = parse_page(html);
        assert_eq!(page.video_id.as_deref(), Some("abcdefghijk"));
        assert_eq!(page.continuation.as_deref(), Some("LIVE"));
        assert_eq!(page.state, Liveness::Live);
        assert_eq!(page.api_key.as_deref(), Some("KEY"));
        assert_eq!(page.client_version.as_deref(), Some("2.2026"));
        assert_eq!(parse_page("<html>nothing</html>").state, Liveness::Offline);
        assert!(is_consent_page("<h1>Before you continue to YouTube</h1>"));
    }
}
