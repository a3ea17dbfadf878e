//! The themes compiled into the binary. `themes/<name>/` on disk overrides these file by file,
//! so a fresh checkout (or a bare binary) works with no files at all.

/// One embedded file: its path inside the theme folder and its contents.
pub type File = (&'static str, &'static str);

macro_rules! embed {
    ($theme:literal: $($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("builtin/", $theme, "/", $path)))),*]
    };
}

/// The complete default theme: every other theme falls back to it for files it lacks.
pub const DEFAULT: &[File] = embed!("default":
    "theme.toml",
    "templates/chat/chat.message.hbs",
    "templates/alerts/default.hbs",
    "templates/alerts/cheer-big.hbs",
    "templates/events/default.hbs",
    "templates/stats/stats.hbs",
    "templates/goal/goal.hbs",
    "templates/labels/labels.hbs",
    "templates/counter/counter.hbs",
    "templates/timer/timer.hbs",
    "templates/credits/credits.hbs",
    "templates/hypetrain/hypetrain.hbs",
    "templates/poll/poll.hbs",
    "static/style.css",
);

/// A second bundled theme with a clearly different look.
pub const NEON: &[File] = embed!("neon":
    "theme.toml",
    "templates/alerts/default.hbs",
    "templates/labels/labels.hbs",
    "templates/counter/counter.hbs",
    "templates/timer/timer.hbs",
    "templates/credits/credits.hbs",
    "templates/hypetrain/hypetrain.hbs",
    "templates/poll/poll.hbs",
    "static/style.css",
);

/// Binary files of the default theme.
pub const DEFAULT_BINARY: &[(&str, &[u8])] = &[(
    "static/sounds/alert.wav",
    include_bytes!("builtin/default/static/sounds/alert.wav"),
)];

/// Bundled themes by name.
pub const THEMES: &[(&str, &[File])] = &[("default", DEFAULT), ("neon", NEON)];

pub fn files(theme: &str) -> &'static [File] {
    THEMES
        .iter()
        .find(|(name, _)| *name == theme)
        .map_or(&[], |(_, files)| files)
}
