//! `overlay.toml` and `overlays/*.toml`, parsed strictly: an unknown key, a bad value or a
//! missing theme is an error that names the file, the line and what is allowed.
//! Every Twitch URL can be overridden (`[twitch.endpoints]`) for the Twitch CLI and for tests.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::event::{normalize_channel, valid_channel};
use crate::theme::watch::Watcher;

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
    youtube: crate::platforms::settings::YoutubeConfig,
    #[serde(default)]
    kick: crate::platforms::settings::KickConfig,
    #[serde(default)]
    tiktok: crate::platforms::settings::TiktokConfig,
    #[serde(default)]
    alerts: AlertsConfig,
    #[serde(default)]
    widgets: WidgetsConfig,
}

/// `[widgets]`: sessions, labels, counters and timers, beyond each overlay's own options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WidgetsConfig {
    /// Whether the broadcaster's and moderators' chat commands (`!deaths+`, `!subathon add
    /// 60`) change counters and timers.
    pub chat_commands: bool,
    /// Also write every label as a text file, `<data_dir>/labels/<channel>/<label>.txt`, for
    /// OBS Text sources.
    pub label_files: bool,
}

impl Default for WidgetsConfig {
    fn default() -> Self {
        WidgetsConfig {
            chat_commands: true,
            label_files: false,
        }
    }
}

/// `[alerts]`: the controls over every alert overlay's queue that are not per overlay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Whether the broadcaster's and moderators' chat commands act on the alerts.
    pub chat_commands: bool,
    pub commands: ChatCommands,
    /// How long safe mode lasts when it is started without a length.
    pub safe_mode_minutes: f64,
    /// Safe mode stops every alert, not only follows.
    pub safe_mode_all: bool,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            chat_commands: true,
            commands: ChatCommands::default(),
            safe_mode_minutes: 10.0,
            safe_mode_all: false,
        }
    }
}

/// `[alerts.commands]`: the chat word of each command; `""` turns one off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChatCommands {
    pub skip: String,
    pub pause: String,
    pub resume: String,
    pub replay: String,
    pub clear: String,
    pub mute: String,
    pub unmute: String,
    pub safe_mode: String,
}

impl Default for ChatCommands {
    fn default() -> Self {
        ChatCommands {
            skip: "!skip".into(),
            pause: "!pause".into(),
            resume: "!resume".into(),
            replay: "!replay".into(),
            clear: String::new(),
            mute: String::new(),
            unmute: String::new(),
            safe_mode: String::new(),
        }
    }
}

impl ChatCommands {
    /// Every (setting, chat word) pair.
    pub fn all(&self) -> [(&'static str, &str); 8] {
        [
            ("skip", &self.skip),
            ("pause", &self.pause),
            ("resume", &self.resume),
            ("replay", &self.replay),
            ("clear", &self.clear),
            ("mute", &self.mute),
            ("unmute", &self.unmute),
            ("safe_mode", &self.safe_mode),
        ]
    }
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
    /// Names this server is reached by besides loopback ones, the bind address and
    /// `public_url` (e.g. a LAN name): a state change addressed to any other is refused.
    hosts: Vec<String>,
    /// With the durable log: a channel nobody has wanted (no stream, socket or source) for this
    /// many seconds keeps no history in memory; it is read back from the log when asked for.
    cold_after_s: u64,
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
            hosts: Vec::new(),
            cold_after_s: 300,
        }
    }
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
    pub hosts: Vec<String>,
    /// `[server] cold_after_s`.
    pub cold_after: std::time::Duration,
    pub twitch: TwitchConfig,
    pub store: StoreConfig,
    /// `[youtube]`, `[kick]` and `[tiktok]`.
    pub platforms: crate::platforms::settings::Platforms,
    pub alerts: AlertsConfig,
    pub widgets: WidgetsConfig,
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
        // One rule for every part that needs it: a client id is set, or it is `None`.
        twitch.client_id = twitch
            .client_id
            .map(|id| id.trim().to_string())
            .filter(|id| !id.is_empty());
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
        let mut platforms = crate::platforms::settings::Platforms {
            youtube: file.youtube,
            kick: file.kick,
            tiktok: file.tiktok,
        };
        crate::platforms::settings::check(&mut platforms)
            .map_err(|(key, message)| err(key, message))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rel = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let data_dir = rel(file.server.data_dir);
        platforms.tiktok.session_file = Some(data_dir.join(crate::platforms::TIKTOK_SESSION_FILE));
        let mut alerts = file.alerts;
        if !(alerts.safe_mode_minutes > 0.0 && alerts.safe_mode_minutes <= 24.0 * 60.0) {
            return Err(err(
                "safe_mode_minutes",
                "safe_mode_minutes is between 0 (exclusive) and 1440 (a day)".into(),
            ));
        }
        let mut words = Vec::new();
        for (key, word) in alerts.commands.all() {
            if word.is_empty() {
                continue;
            }
            if word.chars().any(char::is_whitespace) || word.chars().count() > 32 {
                return Err(err(
                    key,
                    format!(
                        "{key} = \"{word}\": a command is one word (up to 32 characters), e.g. \"!{key}\", or \"\" for none"
                    ),
                ));
            }
            let lower = word.to_lowercase();
            if words.contains(&lower) {
                return Err(err(
                    key,
                    format!("{key} = \"{word}\" is already another command's word"),
                ));
            }
            words.push(lower);
        }
        // Chat words are matched without case.
        let c = &mut alerts.commands;
        for word in [
            &mut c.skip,
            &mut c.pause,
            &mut c.resume,
            &mut c.replay,
            &mut c.clear,
            &mut c.mute,
            &mut c.unmute,
            &mut c.safe_mode,
        ] {
            *word = word.to_lowercase();
        }
        Ok(Config {
            path: Some(path.to_path_buf()),
            bind,
            data_dir,
            history: file.server.history,
            themes_dir: rel(file.server.themes_dir),
            overlays_dir: rel(file.server.overlays_dir),
            admin_token: file.server.admin_token.filter(|t| !t.is_empty()),
            demo: file.server.demo,
            demo_rate: file.server.demo_rate,
            public_url: file.server.public_url,
            watcher: file.server.watcher,
            trust_forwarded: file.server.trust_forwarded,
            hosts: file.server.hosts,
            cold_after: std::time::Duration::from_secs(file.server.cold_after_s),
            twitch,
            store,
            platforms,
            alerts,
            widgets: file.widgets,
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

pub(crate) fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
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
pub(crate) fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// The first line that assigns `key` (or is the table header `key`), 1-based.
pub(crate) fn find_key_line(text: &str, key: &str) -> Option<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn alert_commands_are_single_distinct_words() {
        let c = Config::parse(Path::new("o.toml"), "").expect("defaults");
        assert_eq!(c.alerts.commands.skip, "!skip");
        let text = "[alerts]\n[alerts.commands]\nskip = \"!Next\"\nmute = \"!shh\"\n";
        let c = Config::parse(Path::new("o.toml"), text).expect("parses");
        assert_eq!(
            (
                c.alerts.commands.skip.as_str(),
                c.alerts.commands.mute.as_str()
            ),
            ("!next", "!shh")
        );
        let s = Config::parse(
            Path::new("o.toml"),
            "[alerts.commands]\npause = \"!skip\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(s.starts_with("o.toml:2:") && s.contains("already"), "{s}");
        let s = Config::parse(
            Path::new("o.toml"),
            "[alerts.commands]\n\nskip = \"! skip\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(s.starts_with("o.toml:3:") && s.contains("one word"), "{s}");
    }

    #[test]
    fn bad_value_type_has_a_line() {
        let text = "[server]\nhistory = \"many\"\n";
        let s = Config::parse(Path::new("o.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(s.starts_with("o.toml:2:"), "{s}");
    }
}
