//! `[youtube]`, `[kick]` and `[tiktok]` in overlay.toml: where each platform lives, how often to look, and
//! which platform channel is linked to which of ours, checked with what to fix.

use std::collections::HashSet;

use serde::Deserialize;

use super::youtube::page::Target;

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

#[derive(Debug, Clone, Deserialize, PartialEq)]
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

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KickLink {
    pub channel: String,
    pub slug: String,
    /// Kick's ids, when known: with both the kick.com lookup (behind bot protection) is
    /// skipped.
    pub channel_id: Option<u64>,
    pub chatroom_id: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TiktokConfig {
    /// tiktok.com: the anonymous cookie and the room look-up.
    pub web_base: String,
    /// TikTok's webcast socket.
    pub ws_base: String,
    /// Between two heartbeats on the socket.
    pub heartbeat_s: u64,
    /// A socket with no frame for this long is taken as dead and opened again.
    pub stale_s: u64,
    /// Between two looks at a host who is not live.
    pub live_check_s: u64,
    pub channels: Vec<TiktokLink>,
    /// Where the optional session cookie (18+ rooms) is kept: `tiktok-session` in the data
    /// dir, set from `[server] data_dir`, never from this section.
    #[serde(skip)]
    pub session_file: Option<std::path::PathBuf>,
}

impl Default for TiktokConfig {
    fn default() -> Self {
        TiktokConfig {
            web_base: "https://www.tiktok.com".into(),
            ws_base: "wss://webcast-ws.tiktok.com".into(),
            heartbeat_s: 10,
            stale_s: 60,
            live_check_s: 60,
            channels: Vec::new(),
            session_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TiktokLink {
    pub channel: String,
    /// The TikTok @name, without the @.
    pub unique_id: String,
    /// The live room's id, when the look-up is refused (18+ rooms, blocked look-ups).
    pub room_id: Option<u64>,
}

/// Whether `name` can be a TikTok @name (lowercased, without the @): letters, digits, `_`, `.`.
pub fn valid_unique_id(name: &str) -> bool {
    (2..=24).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// The value of a TikTok `sessionid` cookie as a streamer pastes it (with or without
/// `sessionid=`), if it can be one: printable, no spaces or `;`.
pub fn session_value(text: &str) -> Option<&str> {
    let value = text.trim();
    let value = value.strip_prefix("sessionid=").unwrap_or(value);
    (!value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() && b != b';')).then_some(value)
}

/// The platforms' sections of overlay.toml, checked.
#[derive(Debug, Clone, Default)]
pub struct Platforms {
    pub youtube: YoutubeConfig,
    pub kick: KickConfig,
    pub tiktok: TiktokConfig,
}

/// Whether `slug` (lowercased) can be a Kick channel name: letters, digits, `_` and `-`.
pub fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Checks the links; on error the key to point at and what to fix.
pub fn check(platforms: &mut Platforms) -> Result<(), (&'static str, String)> {
    let Platforms {
        youtube,
        kick,
        tiktok,
    } = platforms;
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
        if Target::parse(&link.target).is_none() {
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
        if !valid_slug(&link.slug) {
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
    for t in [tiktok.heartbeat_s, tiktok.stale_s, tiktok.live_check_s] {
        if t == 0 {
            return Err((
                "heartbeat_s",
                "heartbeat_s, stale_s and live_check_s in [tiktok] are at least 1 (seconds)".into(),
            ));
        }
    }
    if tiktok.stale_s <= tiktok.heartbeat_s {
        return Err((
            "stale_s",
            "stale_s must be longer than heartbeat_s in [tiktok]".into(),
        ));
    }
    for link in &mut tiktok.channels {
        link.channel = crate::event::normalize_channel(&link.channel);
        link.unique_id = link
            .unique_id
            .trim()
            .trim_start_matches('@')
            .to_ascii_lowercase();
        if !valid_unique_id(&link.unique_id) {
            return Err((
                "unique_id",
                format!(
                    "unique_id = \"{}\" is not a TikTok @name (2-24 of a-z, 0-9, _ and .)",
                    link.unique_id
                ),
            ));
        }
        if !seen.insert(format!("tiktok:{}", link.unique_id)) {
            return Err((
                "unique_id",
                format!(
                    "unique_id = \"{}\" is linked twice; link it to one channel",
                    link.unique_id
                ),
            ));
        }
    }
    for link in youtube
        .channels
        .iter()
        .map(|l| &l.channel)
        .chain(kick.channels.iter().map(|l| &l.channel))
        .chain(tiktok.channels.iter().map(|l| &l.channel))
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
