//! `overlay.toml` and `overlays/*.toml`, parsed strictly: an unknown key, a bad value or a
//! missing theme is an error that names the file, the line and what is allowed.
//! Every Twitch URL can be overridden (`[twitch.endpoints]`) for the Twitch CLI and for tests.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::event::{Kind, KindSet, normalize_channel, valid_channel};

/// Where a newcomer finds the server when nothing is configured.
pub const DEFAULT_BIND: &str = "127.0.0.1:7878";
/// Events kept per channel in memory: enough for a long stream's alerts and a few minutes of
/// busy chat, small enough (about 1 KB an event) to stay out of the way.
pub const DEFAULT_HISTORY: usize = 1000;
/// The channel the built-in overlays and the demo source use when none is configured.
pub const DEMO_CHANNEL: &str = "demo";

/// A configuration problem, located precisely enough to fix without guessing.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// Several problems at once, so `overlayd check` can list them all.
#[derive(Debug, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    server: ServerSection,
    #[serde(default)]
    twitch: TwitchConfig,
    #[serde(default)]
    store: StoreConfig,
    #[serde(default)]
    youtube: crate::platforms::YoutubeConfig,
    #[serde(default)]
    kick: crate::platforms::KickConfig,
}

/// Where events are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `sqlite` (a file in the data dir, the default), `redis` (shared by several instances;
    /// implied by `url`) or `memory` (lost on restart).
    pub kind: StoreKind,
    /// Events older than this are dropped from the log (0 keeps them by count only).
    pub max_age_days: u64,
    /// The Redis server, `redis://host:port/db` (with `redis://:password@…` if it needs one).
    pub url: Option<String>,
    /// Prefix of every Redis key, so several deployments can share one server.
    pub prefix: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: StoreKind::Sqlite,
            max_age_days: 30,
            url: None,
            prefix: "overlayd".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Sqlite,
    Redis,
    Memory,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ServerSection {
    bind: String,
    data_dir: PathBuf,
    history: usize,
    themes_dir: PathBuf,
    overlays_dir: PathBuf,
    admin_token: Option<String>,
    demo: bool,
    /// Events per second of the demo source.
    demo_rate: f64,
    public_url: Option<String>,
    /// `native` (default) or `poll`, for network drives where change events do not arrive.
    watcher: Watcher,
    /// Take the client address from `X-Forwarded-For` (only behind a reverse proxy you run:
    /// otherwise every proxied request would look like it came from this machine).
    trust_forwarded: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            bind: DEFAULT_BIND.into(),
            data_dir: "data".into(),
            history: DEFAULT_HISTORY,
            themes_dir: "themes".into(),
            overlays_dir: "overlays".into(),
            admin_token: None,
            demo: false,
            demo_rate: 1.0,
            public_url: None,
            watcher: Watcher::Native,
            trust_forwarded: false,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Watcher {
    Native,
    Poll,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwitchConfig {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Channels joined at start and kept ("pinned").
    pub channels: Vec<String>,
    pub webhook_secret: Option<String>,
    /// Read chat (anonymously, no account needed). On by default when channels are named.
    pub chat: Option<bool>,
    /// Seconds a channel stays joined after its last overlay or viewer left.
    pub part_grace_s: u64,
    pub endpoints: Endpoints,
    /// Third-party emote providers.
    pub emotes: EmoteProviders,
}

/// BetterTTV, FrankerFaceZ and 7TV: where they live and how often to refresh.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmoteProviders {
    pub enabled: bool,
    pub bttv: String,
    pub ffz: String,
    pub seventv: String,
    /// Emote sets change rarely; ten minutes keeps a new emote from waiting long.
    pub refresh_s: u64,
}

impl Default for EmoteProviders {
    fn default() -> Self {
        EmoteProviders {
            enabled: true,
            bttv: "https://api.betterttv.net/3".into(),
            ffz: "https://api.frankerfacez.com/v1".into(),
            seventv: "https://7tv.io/v3".into(),
            refresh_s: 600,
        }
    }
}

impl Default for TwitchConfig {
    fn default() -> Self {
        TwitchConfig {
            client_id: None,
            client_secret: None,
            channels: Vec::new(),
            webhook_secret: None,
            chat: None,
            part_grace_s: DEFAULT_PART_GRACE_S,
            endpoints: Endpoints::default(),
            emotes: EmoteProviders::default(),
        }
    }
}

/// A minute covers an OBS scene switch or restart without leaving and rejoining chat.
pub const DEFAULT_PART_GRACE_S: u64 = 60;

impl TwitchConfig {
    /// Whether the chat source runs: as set, else when any channel is named or an IRC
    /// endpoint is configured.
    pub fn chat_enabled(&self) -> bool {
        self.chat
            .unwrap_or(!self.channels.is_empty() || self.endpoints.irc.is_some())
    }
}

/// Where Twitch lives. Each one can point at the Twitch CLI's mock servers or a test fake.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Endpoints {
    /// `host:port`, plain TCP when set; Twitch's TLS server otherwise.
    pub irc: Option<String>,
    pub eventsub_ws: String,
    pub helix: String,
    pub id: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            irc: None,
            eventsub_ws: "wss://eventsub.wss.twitch.tv/ws".into(),
            helix: "https://api.twitch.tv/helix".into(),
            id: "https://id.twitch.tv/oauth2".into(),
        }
    }
}

/// The validated configuration of the whole server.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (`None`: built-in defaults).
    pub path: Option<PathBuf>,
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub history: usize,
    pub themes_dir: PathBuf,
    pub overlays_dir: PathBuf,
    pub admin_token: Option<String>,
    pub demo: bool,
    pub demo_rate: f64,
    pub public_url: Option<String>,
    pub watcher: Watcher,
    pub trust_forwarded: bool,
    pub twitch: TwitchConfig,
    pub store: StoreConfig,
    pub youtube: crate::platforms::YoutubeConfig,
    pub kick: crate::platforms::KickConfig,
}

impl Config {
    /// Reads `path`; a missing file gives the built-in defaults (with the demo source on, so a
    /// newcomer sees overlays move at once) unless `required`.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                let mut config = Config::parse(path, "")?;
                config.path = None;
                config.demo = true;
                Ok(config)
            }
            Err(e) => Err(ConfigError {
                file: path.to_path_buf(),
                line: None,
                message: format!("cannot read: {e}"),
            }),
        }
    }

    /// Parses the text of an `overlay.toml`. Relative directories are taken from the file's
    /// folder, so the server behaves the same whatever directory it is started from.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        let err = |key: &str, message: String| ConfigError {
            file: path.to_path_buf(),
            line: find_key_line(text, key),
            message,
        };
        let bind: SocketAddr = file.server.bind.parse().map_err(|_| {
            err(
                "bind",
                format!(
                    "bind = \"{}\" is not an address; write ip:port, e.g. \"{DEFAULT_BIND}\"",
                    file.server.bind
                ),
            )
        })?;
        if file.server.history == 0 {
            return Err(err("history", "history must be at least 1".into()));
        }
        if !(file.server.demo_rate > 0.0 && file.server.demo_rate <= 1000.0) {
            return Err(err(
                "demo_rate",
                "demo_rate is events per second, between 0 (exclusive) and 1000".into(),
            ));
        }
        let mut twitch = file.twitch;
        for (i, channel) in twitch.channels.iter_mut().enumerate() {
            *channel = normalize_channel(channel);
            if !valid_channel(channel) {
                return Err(err(
                    "channels",
                    format!(
                        "channels[{i}] = \"{channel}\" is not a Twitch login (1-25 of a-z, 0-9, _)"
                    ),
                ));
            }
        }
        if let Some(url) = &file.server.public_url
            && !url.starts_with("https://")
        {
            return Err(err(
                "public_url",
                "public_url must start with https:// (Twitch sends webhooks to HTTPS on 443 only)"
                    .into(),
            ));
        }
        let mut store = file.store;
        match (&store.url, store.kind) {
            (Some(url), _) if !url.starts_with("redis://") && !url.starts_with("rediss://") => {
                return Err(err(
                    "url",
                    format!("url = \"{url}\" is not a Redis URL; write redis://host:port/db"),
                ));
            }
            (Some(_), StoreKind::Sqlite) => store.kind = StoreKind::Redis,
            (Some(_), StoreKind::Memory) => {
                return Err(err(
                    "url",
                    "url is a Redis server, but kind = \"memory\": remove one of them".into(),
                ));
            }
            (None, StoreKind::Redis) => {
                return Err(err(
                    "kind",
                    "kind = \"redis\" needs url = \"redis://host:port/db\" in [store]".into(),
                ));
            }
            _ => {}
        }
        if store.prefix.is_empty() || store.prefix.contains(char::is_whitespace) {
            return Err(err(
                "prefix",
                "prefix must be a non-empty word without spaces".into(),
            ));
        }
        let (mut youtube, mut kick) = (file.youtube, file.kick);
        crate::platforms::check(&mut youtube, &mut kick)
            .map_err(|(key, message)| err(key, message))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        Ok(Config {
            path: Some(path.to_path_buf()),
            bind,
            data_dir: rel(file.server.data_dir),
            history: file.server.history,
            themes_dir: rel(file.server.themes_dir),
            overlays_dir: rel(file.server.overlays_dir),
            admin_token: file.server.admin_token.filter(|t| !t.is_empty()),
            demo: file.server.demo,
            demo_rate: file.server.demo_rate,
            public_url: file.server.public_url,
            watcher: file.server.watcher,
            trust_forwarded: file.server.trust_forwarded,
            twitch,
            store,
            youtube,
            kick,
        })
    }

    /// The channel used when an overlay names none: the first configured one, else the demo.
    pub fn default_channel(&self) -> String {
        self.twitch
            .channels
            .first()
            .cloned()
            .unwrap_or_else(|| DEMO_CHANNEL.to_string())
    }
}

/// What an overlay shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OverlayKind {
    Chat,
    Alerts,
    Events,
    Stats,
    Goal,
}

impl OverlayKind {
    pub const ALL: [OverlayKind; 5] = [
        OverlayKind::Chat,
        OverlayKind::Alerts,
        OverlayKind::Events,
        OverlayKind::Stats,
        OverlayKind::Goal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OverlayKind::Chat => "chat",
            OverlayKind::Alerts => "alerts",
            OverlayKind::Events => "events",
            OverlayKind::Stats => "stats",
            OverlayKind::Goal => "goal",
        }
    }

    /// The event kinds an overlay of this kind shows when its file lists none.
    pub fn default_kinds(self) -> KindSet {
        use Kind::*;
        match self {
            OverlayKind::Chat | OverlayKind::Stats => {
                [ChatMessage, ChatDelete, ChatClear].into_iter().collect()
            }
            OverlayKind::Alerts => [
                Follow,
                Sub,
                Resub,
                SubGift,
                GiftBomb,
                Cheer,
                Raid,
                Redemption,
                HypeTrainBegin,
                HypeTrainEnd,
            ]
            .into_iter()
            .collect(),
            OverlayKind::Events => Kind::ALL.into_iter().filter(|k| !k.is_chat()).collect(),
            OverlayKind::Goal => [Follow, Sub, Resub, SubGift, GiftBomb, Cheer]
                .into_iter()
                .collect(),
        }
    }

    /// The size a browser source of this kind usually wants (the dashboard suggests it).
    pub fn suggested_size(self) -> (u32, u32) {
        match self {
            OverlayKind::Chat => (400, 600),
            OverlayKind::Alerts => (800, 600),
            OverlayKind::Events => (320, 480),
            OverlayKind::Stats => (320, 240),
            OverlayKind::Goal => (600, 120),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverlayFile {
    kind: OverlayKind,
    channel: Option<Spanned<String>>,
    theme: Option<Spanned<String>>,
    kinds: Option<Vec<Spanned<String>>>,
    platforms: Option<Vec<Spanned<String>>>,
    title: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    #[serde(default)]
    options: toml::Table,
}

/// One overlay instance: `overlays/<name>.toml`, served at `/o/<name>`.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlayConfig {
    pub name: String,
    pub kind: OverlayKind,
    pub channel: String,
    pub theme: String,
    pub kinds: KindSet,
    /// The platforms whose events it shows; empty for all (Twitch, YouTube, Kick).
    pub platforms: Vec<String>,
    pub title: String,
    pub size: (u32, u32),
    pub options: serde_json::Value,
}

/// The platforms events come from.
pub const PLATFORMS: [&str; 3] = ["twitch", "youtube", "kick"];

impl OverlayConfig {
    /// The overlay of `kind` that exists with no files at all.
    pub fn builtin(kind: OverlayKind, channel: &str) -> OverlayConfig {
        OverlayConfig {
            name: kind.as_str().to_string(),
            kind,
            channel: channel.to_string(),
            theme: crate::theme::DEFAULT_THEME.to_string(),
            kinds: kind.default_kinds(),
            platforms: Vec::new(),
            title: kind.as_str().to_string(),
            size: kind.suggested_size(),
            options: options::defaults(kind),
        }
    }

    /// Parses `overlays/<name>.toml`. `themes` are the theme names that exist.
    pub fn parse(
        path: &Path,
        text: &str,
        default_channel: &str,
        themes: &[String],
    ) -> Result<OverlayConfig, ConfigError> {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let located = |span: std::ops::Range<usize>, message: String| ConfigError {
            file: path.to_path_buf(),
            line: Some(line_of(text, span.start)),
            message,
        };
        if !valid_overlay_name(&name) {
            return Err(ConfigError {
                file: path.to_path_buf(),
                line: None,
                message: format!(
                    "\"{name}\" cannot be an overlay name (it is the URL /o/<name>): use letters, digits, - and _"
                ),
            });
        }
        let file: OverlayFile = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        let channel = match file.channel {
            Some(c) => {
                let normalized = normalize_channel(c.get_ref());
                if !valid_channel(&normalized) {
                    return Err(located(
                        c.span(),
                        format!(
                            "channel = \"{}\" is not a Twitch login (1-25 of a-z, 0-9, _)",
                            c.get_ref()
                        ),
                    ));
                }
                normalized
            }
            None => default_channel.to_string(),
        };
        let theme = match file.theme {
            Some(t) => {
                if !themes.iter().any(|name| name == t.get_ref()) {
                    return Err(located(
                        t.span(),
                        format!(
                            "unknown theme \"{}\"; themes found: {}",
                            t.get_ref(),
                            themes.join(", ")
                        ),
                    ));
                }
                t.into_inner()
            }
            None => crate::theme::DEFAULT_THEME.to_string(),
        };
        let kinds = match file.kinds {
            Some(list) => {
                let mut set = KindSet::NONE;
                for k in list {
                    let kind: Kind = k
                        .get_ref()
                        .parse()
                        .map_err(|e: crate::event::UnknownKind| located(k.span(), e.to_string()))?;
                    set = set.with(kind);
                }
                set
            }
            None => file.kind.default_kinds(),
        };
        let mut platforms = Vec::new();
        for p in file.platforms.unwrap_or_default() {
            if !PLATFORMS.contains(&p.get_ref().as_str()) {
                return Err(located(
                    p.span(),
                    format!(
                        "unknown platform \"{}\"; platforms are {}",
                        p.get_ref(),
                        PLATFORMS.join(", ")
                    ),
                ));
            }
            platforms.push(p.into_inner());
        }
        let options = options::validate(file.kind, file.options).map_err(|message| {
            let line = message
                .key
                .as_deref()
                .and_then(|k| find_key_line(text, k))
                .or_else(|| find_key_line(text, "[options]"));
            ConfigError {
                file: path.to_path_buf(),
                line,
                message: message.text,
            }
        })?;
        Ok(OverlayConfig {
            title: file.title.unwrap_or_else(|| name.clone()),
            size: (
                file.width.unwrap_or(file.kind.suggested_size().0),
                file.height.unwrap_or(file.kind.suggested_size().1),
            ),
            name,
            kind: file.kind,
            channel,
            theme,
            kinds,
            platforms,
            options,
        })
    }
}

/// Overlay names become URL path segments: keep them to a safe alphabet.
pub fn valid_overlay_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Loads every `*.toml` in `dir`, collecting all errors. A missing folder is no overlays.
pub fn load_overlays(
    dir: &Path,
    default_channel: &str,
    themes: &[String],
) -> (BTreeMap<String, OverlayConfig>, Vec<ConfigError>) {
    let mut overlays = BTreeMap::new();
    let mut errors = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (overlays, errors);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    for path in paths {
        let result = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError {
                file: path.clone(),
                line: None,
                message: format!("cannot read: {e}"),
            })
            .and_then(|text| OverlayConfig::parse(&path, &text, default_channel, themes));
        match result {
            Ok(o) => {
                overlays.insert(o.name.clone(), o);
            }
            Err(e) => errors.push(e),
        }
    }
    (overlays, errors)
}

fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let mut message = e.message().trim().to_string();
    let mut line = e.span().map(|s| line_of(text, s.start));
    // serde names the unknown key but the span covers the whole table: find the key's line.
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some(key) = rest.split('`').next()
    {
        line = find_key_line(text, key).or(line);
        message = message
            .replacen("expected one of", "allowed keys:", 1)
            .replacen("expected", "allowed:", 1);
    }
    ConfigError {
        file: path.to_path_buf(),
        line,
        message,
    }
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// The first line that assigns `key` (or is the table header `key`), 1-based.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            if key.starts_with('[') {
                return l.starts_with(key);
            }
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

pub mod options {
    //! Per-kind overlay options: defaults, and a strict check of what a file sets.

    use serde_json::{Value, json};

    use super::OverlayKind;
    use crate::event::Kind;

    pub struct OptionError {
        pub key: Option<String>,
        pub text: String,
    }

    /// Every option of `kind` with its default value.
    pub fn defaults(kind: OverlayKind) -> Value {
        match kind {
            OverlayKind::Chat => json!({
                "max_messages": 30, "fade_after_s": 0, "hide_commands": true,
                "hide_users": [], "show_badges": true, "show_platform": true
            }),
            OverlayKind::Alerts => json!({
                "duration_s": 6.0, "durations": {}, "sound": true, "volume": 0.6,
                "min_bits": 1, "min_viewers": 1, "min_gifts": 1,
                "variations": []
            }),
            OverlayKind::Events => json!({"limit": 10}),
            OverlayKind::Stats => json!({"top": 5}),
            OverlayKind::Goal => {
                json!({"goal": "follow", "target": 100, "start": 0, "label": "Follower goal"})
            }
        }
    }

    /// Merges `set` over the defaults, refusing unknown keys and values of the wrong type.
    pub fn validate(kind: OverlayKind, set: toml::Table) -> Result<Value, OptionError> {
        let mut merged = defaults(kind);
        let known: Vec<String> = merged
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        for (key, value) in set {
            let Some(default) = merged.get(&key) else {
                return Err(OptionError {
                    text: format!(
                        "unknown option `{key}` for an overlay of kind {}; options are: {}",
                        kind.as_str(),
                        known.join(", ")
                    ),
                    key: Some(key),
                });
            };
            let value = serde_json::to_value(&value).map_err(|e| OptionError {
                key: Some(key.clone()),
                text: format!("option `{key}`: {e}"),
            })?;
            let same_type = match (default, &value) {
                (Value::Number(_), Value::Number(n)) => n.as_f64().is_some_and(|f| f >= 0.0),
                (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
            };
            if !same_type {
                return Err(OptionError {
                    text: format!(
                        "option `{key}` must be {} like the default {default}, not {value}",
                        type_name(default)
                    ),
                    key: Some(key),
                });
            }
            check(kind, &key, &value).map_err(|text| OptionError {
                key: Some(key.clone()),
                text,
            })?;
            merged[&key] = value;
        }
        Ok(merged)
    }

    fn check(kind: OverlayKind, key: &str, value: &Value) -> Result<(), String> {
        match (kind, key) {
            (OverlayKind::Alerts, "durations") => {
                for k in value.as_object().into_iter().flat_map(|o| o.keys()) {
                    k.parse::<Kind>().map_err(|e| format!("durations: {e}"))?;
                }
            }
            (OverlayKind::Goal, "goal") => {
                let goal = value.as_str().unwrap_or_default();
                if !["follow", "sub", "bits"].contains(&goal) {
                    return Err(format!(
                        "goal = \"{goal}\": allowed values are \"follow\", \"sub\", \"bits\""
                    ));
                }
            }
            (OverlayKind::Alerts, "variations") => {
                for v in value.as_array().into_iter().flatten() {
                    let ok = v
                        .get("kind")
                        .and_then(Value::as_str)
                        .is_some_and(|k| k.parse::<Kind>().is_ok())
                        && v.get("min").is_some_and(Value::is_number)
                        && v.get("template").and_then(Value::as_str).is_some_and(|t| {
                            !t.is_empty()
                                && t.bytes().all(|b| {
                                    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'
                                })
                        });
                    if !ok {
                        return Err("each variation is { kind = \"cheer\", min = 1000, template = \"cheer-big\" }".into());
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn type_name(v: &Value) -> &'static str {
        match v {
            Value::Bool(_) => "true or false",
            Value::Number(_) => "a non-negative number",
            Value::String(_) => "a string",
            Value::Array(_) => "a list",
            Value::Object(_) => "a table",
            Value::Null => "empty",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn themes() -> Vec<String> {
        vec!["default".into(), "neon".into()]
    }

    #[test]
    fn empty_config_gives_defaults() {
        let c = Config::parse(Path::new("overlay.toml"), "").expect("defaults");
        assert_eq!(c.bind.to_string(), DEFAULT_BIND);
        assert_eq!(c.history, DEFAULT_HISTORY);
    }

    #[test]
    fn unknown_key_names_file_line_and_allowed_keys() {
        let text = "[server]\nbind = \"127.0.0.1:1\"\nhistroy = 5\n";
        let e = Config::parse(Path::new("overlay.toml"), text).unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("overlay.toml:3: unknown field `histroy`"),
            "{s}"
        );
        assert!(
            s.contains("allowed keys: `bind`") && s.contains("history"),
            "{s}"
        );
    }

    #[test]
    fn bad_bind_is_explained() {
        let text = "[server]\n\nbind = \"localhost\"\n";
        let s = Config::parse(Path::new("o.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(s.starts_with("o.toml:3:") && s.contains("ip:port"), "{s}");
    }

    #[test]
    fn bad_value_type_has_a_line() {
        let text = "[server]\nhistory = \"many\"\n";
        let s = Config::parse(Path::new("o.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(s.starts_with("o.toml:2:"), "{s}");
    }

    #[test]
    fn overlay_with_missing_theme_lists_themes() {
        let text = "kind = \"chat\"\nchannel = \"foo\"\ntheme = \"neno\"\n";
        let e = OverlayConfig::parse(Path::new("overlays/chat.toml"), text, "x", &themes())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "overlays/chat.toml:3: unknown theme \"neno\"; themes found: default, neon"
        );
    }

    #[test]
    fn overlay_with_unknown_kind_value() {
        let text = "kind = \"chatbox\"\n";
        let s = OverlayConfig::parse(Path::new("overlays/a.toml"), text, "x", &themes())
            .unwrap_err()
            .to_string();
        assert!(
            s.starts_with("overlays/a.toml:1:") && s.contains("chat"),
            "{s}"
        );
    }

    #[test]
    fn overlay_platforms_are_checked() {
        let text = "kind = \"chat\"\nplatforms = [\"youtube\", \"kick\"]\n";
        let o = OverlayConfig::parse(Path::new("overlays/a.toml"), text, "x", &themes())
            .expect("valid");
        assert_eq!(o.platforms, ["youtube", "kick"]);
        let text = "kind = \"chat\"\n\nplatforms = [\"tiktok\"]\n";
        let s = OverlayConfig::parse(Path::new("overlays/a.toml"), text, "x", &themes())
            .unwrap_err()
            .to_string();
        assert_eq!(
            s,
            "overlays/a.toml:3: unknown platform \"tiktok\"; platforms are twitch, youtube, kick"
        );
    }

    #[test]
    fn overlay_with_unknown_event_kind() {
        let text = "kind = \"alerts\"\nkinds = [\"follow\", \"folow\"]\n";
        let s = OverlayConfig::parse(Path::new("overlays/a.toml"), text, "x", &themes())
            .unwrap_err()
            .to_string();
        assert!(
            s.starts_with("overlays/a.toml:2:") && s.contains("\"folow\""),
            "{s}"
        );
    }

    #[test]
    fn overlay_option_errors_point_at_the_option() {
        let text = "kind = \"chat\"\n[options]\nmax_messages = 10\nmax_msgs = 3\n";
        let s = OverlayConfig::parse(Path::new("overlays/c.toml"), text, "x", &themes())
            .unwrap_err()
            .to_string();
        assert!(
            s.starts_with("overlays/c.toml:4: unknown option `max_msgs`"),
            "{s}"
        );
        let text = "kind = \"chat\"\n[options]\nmax_messages = \"ten\"\n";
        let s = OverlayConfig::parse(Path::new("overlays/c.toml"), text, "x", &themes())
            .unwrap_err()
            .to_string();
        assert!(s.starts_with("overlays/c.toml:3:"), "{s}");
    }

    #[test]
    fn overlay_defaults_and_options_merge() {
        let text = "kind = \"chat\"\nchannel = \"#Foo\"\n[options]\nmax_messages = 5\n";
        let o = OverlayConfig::parse(Path::new("overlays/chat.toml"), text, "x", &themes())
            .expect("valid");
        assert_eq!(o.channel, "foo");
        assert_eq!(o.options["max_messages"], 5);
        assert_eq!(o.options["hide_commands"], true);
        assert!(o.kinds.contains(Kind::ChatMessage));
        assert!(!o.kinds.contains(Kind::Follow));
    }
}
