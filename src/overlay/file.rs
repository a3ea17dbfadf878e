//! `overlays/<name>.toml`: one overlay instance each (kind, channel, theme, filter, options),
//! parsed with `file:line` errors, and the options each kind takes, with their defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::config::{ConfigError, find_key_line, line_of, toml_error};
use crate::event::{Kind, KindSet, normalize_channel, valid_channel};

/// What an overlay shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OverlayKind {
    Chat,
    Alerts,
    Events,
    Stats,
    Goal,
    /// Session labels: latest supporters, tops, counts, counters (one, or a rotating set).
    Labels,
    /// One named counter (a death counter).
    Counter,
    /// A countdown or a subathon timer.
    Timer,
    /// The session's supporters and chatters, scrolling.
    Credits,
    /// Twitch's hype train: level, progress, time left, top contributors.
    Hypetrain,
    /// A poll or a prediction with live bars, hidden when none runs.
    Poll,
}

impl OverlayKind {
    pub const ALL: [OverlayKind; 11] = [
        OverlayKind::Chat,
        OverlayKind::Alerts,
        OverlayKind::Events,
        OverlayKind::Stats,
        OverlayKind::Goal,
        OverlayKind::Labels,
        OverlayKind::Counter,
        OverlayKind::Timer,
        OverlayKind::Credits,
        OverlayKind::Hypetrain,
        OverlayKind::Poll,
    ];

    /// Whether it shows server-held state (the session, a counter, a timer) rather than
    /// events: its pages are sent the state (`event: widget`), never the events.
    pub fn is_widget(self) -> bool {
        matches!(
            self,
            OverlayKind::Labels
                | OverlayKind::Counter
                | OverlayKind::Timer
                | OverlayKind::Credits
                | OverlayKind::Hypetrain
                | OverlayKind::Poll
        )
    }

    /// Every kind's name, for messages: `chat, alerts, …`.
    pub fn list() -> String {
        OverlayKind::ALL.map(OverlayKind::as_str).join(", ")
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OverlayKind::Chat => "chat",
            OverlayKind::Alerts => "alerts",
            OverlayKind::Events => "events",
            OverlayKind::Stats => "stats",
            OverlayKind::Goal => "goal",
            OverlayKind::Labels => "labels",
            OverlayKind::Counter => "counter",
            OverlayKind::Timer => "timer",
            OverlayKind::Credits => "credits",
            OverlayKind::Hypetrain => "hypetrain",
            OverlayKind::Poll => "poll",
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
                Gift,
                Tip,
            ]
            .into_iter()
            .collect(),
            // Every vote of a poll would push the rest out of a list: its start and end show.
            OverlayKind::Events => Kind::ALL
                .into_iter()
                .filter(|k| !k.is_chat() && !matches!(k, PollProgress | PredictionProgress))
                .collect(),
            OverlayKind::Goal => [Follow, Sub, Resub, SubGift, GiftBomb, Cheer, Gift, Tip]
                .into_iter()
                .collect(),
            OverlayKind::Labels
            | OverlayKind::Counter
            | OverlayKind::Timer
            | OverlayKind::Credits
            | OverlayKind::Hypetrain
            | OverlayKind::Poll => KindSet::NONE,
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
            OverlayKind::Labels => (500, 80),
            OverlayKind::Counter => (300, 120),
            OverlayKind::Timer => (400, 140),
            OverlayKind::Credits => (800, 1080),
            OverlayKind::Hypetrain => (600, 160),
            OverlayKind::Poll => (500, 320),
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
    /// Values of the theme's fields (checked against the theme when the overlay is built).
    #[serde(default)]
    fields: toml::Table,
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
    /// `[fields]` as written: checked against the theme's fields when the overlay is built.
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Where the file is and the line of each `[fields]` key, for those checks' errors.
    pub source: Option<(PathBuf, BTreeMap<String, usize>)>,
}

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
            fields: serde_json::Map::new(),
            source: None,
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
            let names = crate::event::Platform::ALL.map(crate::event::Platform::as_str);
            if !names.contains(&p.get_ref().as_str()) {
                return Err(located(
                    p.span(),
                    format!(
                        "unknown platform \"{}\"; platforms are {}",
                        p.get_ref(),
                        names.join(", ")
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
        if file.kind == OverlayKind::Alerts {
            let variations =
                crate::overlay::variation::Variation::all(&options).unwrap_or_default();
            for (i, v) in variations.iter().enumerate() {
                if let Some(why) = v.never(|k| kinds.contains(k), &platforms) {
                    return Err(ConfigError {
                        file: path.to_path_buf(),
                        line: find_key_line(text, "variations")
                            .or_else(|| find_key_line(text, "[[options.variations]]")),
                        message: format!("variations[{i}] can never match: {why}"),
                    });
                }
            }
        }
        let mut lines = BTreeMap::new();
        let mut fields = serde_json::Map::new();
        for (key, value) in file.fields {
            if let Some(line) = key_line_after(text, "[fields]", &key) {
                lines.insert(key.clone(), line);
            }
            let value = serde_json::to_value(&value).unwrap_or_default();
            fields.insert(key, value);
        }
        Ok(OverlayConfig {
            fields,
            source: Some((path.to_path_buf(), lines)),
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

/// The line of `key = …` in the table that starts at the header line `header`, 1-based.
fn key_line_after(text: &str, header: &str, key: &str) -> Option<usize> {
    let start = text.lines().position(|l| l.trim() == header)?;
    text.lines()
        .enumerate()
        .skip(start + 1)
        .take_while(|(_, l)| !l.trim_start().starts_with('['))
        .find(|(_, l)| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|(i, _)| i + 1)
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

/// Viewer pages' overlays are named with this (a name no file can give: `_` is allowed, but
/// these are made, never read from `overlays/`).
const VIEWER_PREFIX: &str = "_c_";

impl OverlayConfig {
    /// The overlay behind the viewer page of `channel`: the recent-events list.
    pub fn viewer(channel: &str) -> OverlayConfig {
        let mut c = OverlayConfig::builtin(OverlayKind::Events, channel);
        c.name = format!("{VIEWER_PREFIX}{channel}");
        c.title = format!("#{channel}");
        c
    }

    /// Whether this is a viewer page's overlay (not one of the streamer's).
    pub fn is_viewer(&self) -> bool {
        is_viewer_name(&self.name)
    }
}

/// Whether `name` is one viewer pages' overlays are made with (a form may not write one).
pub fn is_viewer_name(name: &str) -> bool {
    name.starts_with(VIEWER_PREFIX)
}

pub mod options {
    //! Per-kind overlay options: defaults, and a strict check of what a file sets.

    use serde_json::{Value, json};

    use crate::event::Kind;
    use crate::overlay::file::OverlayKind;

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
                "variations": [], "gap_s": 0.6, "hold_off_air": true, "max_queue": 50
            }),
            OverlayKind::Events => json!({"limit": 10}),
            OverlayKind::Stats => json!({"top": 5}),
            OverlayKind::Goal => {
                json!({"goal": "follow", "target": 100, "start": 0, "label": "Follower goal"})
            }
            OverlayKind::Labels => json!({
                "labels": ["latest.follower", "latest.subscriber", "latest.cheerer"],
                "rotate_s": 8, "empty": "nobody yet"
            }),
            OverlayKind::Counter => json!({"counter": "deaths", "label": "Deaths", "command": ""}),
            OverlayKind::Timer => json!({
                "mode": "duration", "duration_s": 600, "until": "", "cap_s": 0,
                "tier1_s": 60, "tier2_s": 120, "tier3_s": 300, "gift_s": 60,
                "bits100_s": 30, "money_s": 30, "follow_s": 0,
                "label": "", "end_text": "Time's up!", "command": ""
            }),
            OverlayKind::Credits => json!({
                "title": "Thanks for watching!",
                "sections": ["followers", "subscribers", "gifters", "cheerers", "raiders", "money", "chatters"],
                "duration_s": 40, "repeat": true
            }),
            OverlayKind::Hypetrain => {
                json!({"label": "Hype train", "top": 3, "show_result_s": 10})
            }
            OverlayKind::Poll => {
                json!({"polls": true, "predictions": true, "show_result_s": 15})
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
        if kind == OverlayKind::Timer && merged["mode"] == "until" && merged["until"] == "" {
            return Err(OptionError {
                key: Some("mode".into()),
                text: "mode = \"until\" needs until = \"2026-12-24T18:00:00+01:00\" (when it ends)"
                    .into(),
            });
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
                if !["follow", "sub", "bits", "money"].contains(&goal) {
                    return Err(format!(
                        "goal = \"{goal}\": allowed values are \"follow\", \"sub\", \"bits\", \"money\""
                    ));
                }
            }
            (OverlayKind::Labels, "labels") => {
                let names = value.as_array().cloned().unwrap_or_default();
                if names.is_empty() {
                    return Err(
                        "labels lists at least one label, e.g. [\"latest.follower\"]".into(),
                    );
                }
                for n in names {
                    let n = n.as_str().unwrap_or_default();
                    if !crate::overlay::labels::known(n) {
                        return Err(format!(
                            "unknown label \"{n}\"; labels are {}",
                            crate::overlay::labels::list()
                        ));
                    }
                }
            }
            (OverlayKind::Counter, "counter") => {
                let name = value.as_str().unwrap_or_default();
                if !crate::overlay::labels::valid_counter(name) {
                    return Err(format!(
                        "counter = \"{name}\": a counter's name is 1-32 of a-z, 0-9, _ and -"
                    ));
                }
            }
            (OverlayKind::Counter | OverlayKind::Timer, "command") => {
                let word = value.as_str().unwrap_or_default();
                if word.chars().any(char::is_whitespace) {
                    return Err(format!(
                        "command = \"{word}\": one word, like \"!deaths\" (\"\" for the default)"
                    ));
                }
            }
            (OverlayKind::Timer, "mode") => {
                let mode = value.as_str().unwrap_or_default();
                if !["duration", "until", "subathon"].contains(&mode) {
                    return Err(format!(
                        "mode = \"{mode}\": allowed values are \"duration\", \"until\", \"subathon\""
                    ));
                }
            }
            (OverlayKind::Timer, "until") => {
                let until = value.as_str().unwrap_or_default();
                if !until.is_empty() && chrono::DateTime::parse_from_rfc3339(until).is_err() {
                    return Err(format!(
                        "until = \"{until}\": write a time like \"2026-12-24T18:00:00+01:00\""
                    ));
                }
            }
            (OverlayKind::Credits, "sections") => {
                for s in value.as_array().into_iter().flatten() {
                    let s = s.as_str().unwrap_or_default();
                    if !crate::overlay::labels::CREDITS.contains(&s) {
                        return Err(format!(
                            "unknown credits section \"{s}\"; sections are {}",
                            crate::overlay::labels::CREDITS.join(", ")
                        ));
                    }
                }
            }
            (OverlayKind::Alerts, "variations") => {
                crate::overlay::variation::Variation::all(&json!({ "variations": value }))?;
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
    fn every_example_overlay_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("overlays/examples");
        let (found, errors) = load_overlays(&dir, "demo", &themes());
        assert!(errors.is_empty(), "{errors:?}");
        assert!(found.len() >= 7, "{:?}", found.keys());
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
        let text = "kind = \"chat\"\n\nplatforms = [\"twitter\"]\n";
        let s = OverlayConfig::parse(Path::new("overlays/a.toml"), text, "x", &themes())
            .unwrap_err()
            .to_string();
        assert_eq!(
            s,
            "overlays/a.toml:3: unknown platform \"twitter\"; platforms are twitch, youtube, kick, tiktok"
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
