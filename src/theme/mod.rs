//! Themes: handlebars templates, CSS and assets. The registry holds the last good build of each
//! theme and swaps in a new one atomically; a theme that fails to build keeps its last good
//! version live and records the error (file:line:col) for the overlay and the dashboard.

pub mod builtin;
pub mod fields;
pub mod helpers;
pub mod watch;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use handlebars::Handlebars;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::blocking::off_the_runtime;

/// Files an editor writes beside the real one while saving (Vim, Emacs, JetBrains, Kate,
/// macOS Finder): a change to one of these is not a change to the theme.
pub fn ignored(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return true;
    };
    name.starts_with('.')
        || name.starts_with('#')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name.ends_with(".kate-swp")
        || name.ends_with("___jb_old___")
        || name.ends_with("___jb_tmp___")
        || name.ends_with("___jb_bak___")
        || name == "4913"
}

/// The theme every overlay uses unless its file names another.
pub const DEFAULT_THEME: &str = "default";

/// A theme that could not be built, located for its author.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ThemeError {
    pub theme: String,
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ThemeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ThemeError {}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ThemeToml {
    name: Option<String>,
    description: Option<String>,
    /// `[fields.<name>]`: the theme's typed settings (see [`fields`]).
    fields: Option<toml::Table>,
}

/// One built theme. Immutable: a reload builds a new one.
pub struct Theme {
    pub name: String,
    pub title: String,
    pub description: String,
    /// The typed settings it declares, in the order written.
    pub fields: Vec<fields::Field>,
    /// Changes on every successful build: part of each overlay's render key and of the CSS URL.
    pub generation: u64,
    hbs: Handlebars<'static>,
    /// Where each template came from (for error messages): template name → file.
    sources: BTreeMap<String, String>,
}

impl fmt::Debug for Theme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Theme")
            .field("name", &self.name)
            .field("generation", &self.generation)
            .finish()
    }
}

impl Theme {
    pub fn has(&self, template: &str) -> bool {
        self.hbs.has_template(template)
    }

    pub fn templates(&self) -> impl Iterator<Item = &String> {
        self.sources.keys()
    }

    /// Renders `template` with `context`. A strict-mode miss is an error located in the file;
    /// so is a fragment over [`MAX_FRAGMENT`], which stops the render as it passes the limit
    /// (nested `{{#each}}` over a large event can otherwise make megabytes for every client).
    /// Its time is not bounded, so it runs [`off_the_runtime`]: a slow template delays the
    /// frames it makes, never the requests other tasks answer.
    /// The context is taken whole: handlebars would otherwise copy the tree before every render.
    pub fn render(&self, template: &str, context: Value) -> Result<String, ThemeError> {
        let context = handlebars::Context::from(context);
        let mut out = Bounded {
            buf: Vec::with_capacity(1024),
            over: false,
        };
        let result = off_the_runtime(|| {
            self.hbs
                .render_with_context_to_write(template, &context, &mut out)
        });
        let file = self
            .sources
            .get(template)
            .cloned()
            .unwrap_or_else(|| template.to_string());
        if out.over {
            return Err(ThemeError {
                theme: self.name.clone(),
                file,
                line: None,
                column: None,
                message: format!(
                    "renders more than {} KiB for one event; does a loop repeat itself?",
                    MAX_FRAGMENT / 1024
                ),
            });
        }
        result.map_err(|e| ThemeError {
            theme: self.name.clone(),
            file,
            line: e.line_no,
            column: e.column_no,
            message: e.reason().to_string(),
        })?;
        Ok(String::from_utf8(out.buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
}

/// The most one event's fragment may be: a long chat line with every emote is a few KiB.
pub const MAX_FRAGMENT: usize = 256 * 1024;

/// A render target that refuses to grow past [`MAX_FRAGMENT`].
struct Bounded {
    buf: Vec<u8>,
    over: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > MAX_FRAGMENT {
            self.over = true;
            return Err(std::io::Error::other("fragment too large"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// All themes, by name: the last good build of each, and the current error of each.
pub struct Registry {
    dir: PathBuf,
    themes: RwLock<BTreeMap<String, Arc<Theme>>>,
    errors: RwLock<BTreeMap<String, ThemeError>>,
    generation: AtomicU64,
    /// Checks a freshly built theme before it goes live (the overlay layer renders samples).
    validate: RwLock<Option<Validator>>,
}

/// A check run on every build before the swap.
pub type Validator = Arc<dyn Fn(&Theme) -> Result<(), ThemeError> + Send + Sync>;

impl Registry {
    /// Builds every bundled theme and every theme folder in `dir`.
    pub fn new(dir: &Path) -> Registry {
        Registry {
            dir: dir.to_path_buf(),
            themes: RwLock::new(BTreeMap::new()),
            errors: RwLock::new(BTreeMap::new()),
            generation: AtomicU64::new(1),
            validate: RwLock::new(None),
        }
    }

    pub fn set_validator(&self, validator: Validator) {
        *self.validate.write() = Some(validator);
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// (Re)builds every theme that exists; returns the errors.
    pub fn load_all(&self) -> Vec<ThemeError> {
        let mut names = self.discover();
        // The default theme first: a theme that fails to build falls back to it.
        names.sort_by_key(|n| n != DEFAULT_THEME);
        names
            .into_iter()
            .filter_map(|name| self.reload(&name).err())
            .collect()
    }

    /// Theme names: the bundled ones and every valid folder name in the themes dir.
    pub fn discover(&self) -> Vec<String> {
        let mut names: Vec<String> = builtin::THEMES.iter().map(|(n, _)| n.to_string()).collect();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if entry.path().is_dir() && valid_theme_name(&name) && !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names.sort();
        names
    }

    /// Rebuilds theme `name`. On success the new build goes live and its error clears; on
    /// failure the last good build stays live and the error is recorded.
    pub fn reload(&self, name: &str) -> Result<Arc<Theme>, ThemeError> {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let validator = self.validate.read().clone();
        let built = build(&self.dir, name, generation).and_then(|theme| {
            if let Some(check) = validator {
                check(&theme)?;
            }
            Ok(theme)
        });
        match built {
            Ok(theme) => {
                let theme = Arc::new(theme);
                self.themes.write().insert(name.to_string(), theme.clone());
                self.errors.write().remove(name);
                Ok(theme)
            }
            Err(e) => {
                // A theme that never built falls back to the default theme's last good build,
                // so its overlays still show something while the author fixes it.
                if !self.themes.read().contains_key(name)
                    && let Some(default) = self.get(DEFAULT_THEME)
                {
                    self.themes.write().insert(name.to_string(), default);
                }
                self.errors.write().insert(name.to_string(), e.clone());
                Err(e)
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Theme>> {
        self.themes.read().get(name).cloned()
    }

    pub fn names(&self) -> Vec<String> {
        self.themes.read().keys().cloned().collect()
    }

    pub fn error(&self, name: &str) -> Option<ThemeError> {
        self.errors.read().get(name).cloned()
    }

    pub fn errors(&self) -> Vec<ThemeError> {
        self.errors.read().values().cloned().collect()
    }

    /// The sound for alerts of `kind`: `sounds/<kind>` then `sounds/alert`, each as .ogg, .mp3
    /// or .wav, from the theme, else the default theme's chime.
    pub fn sound(&self, name: &str, kind: &str) -> Option<Asset> {
        let kind: String = kind
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect();
        for base in [kind.as_str(), "alert"] {
            for ext in ["ogg", "mp3", "wav"] {
                if let Some(a) = self.asset(name, &format!("sounds/{base}.{ext}")) {
                    return Some(a);
                }
            }
        }
        None
    }

    /// The files of theme `name`'s `static/<folder>/` with one of `exts` (the theme's own, its
    /// bundled ones and the default theme's), as paths from `static/`. Blocking: call it off
    /// the runtime threads.
    pub fn list_static(&self, name: &str, folder: &str, exts: &[&str]) -> Vec<String> {
        let wanted = |p: &str| {
            let ext = p
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            exts.contains(&ext.as_str())
        };
        let mut found = std::collections::BTreeSet::new();
        if !valid_theme_name(name) {
            return Vec::new();
        }
        for theme in [name, DEFAULT_THEME] {
            let dir = self.dir.join(theme).join("static").join(folder);
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    let file = entry.file_name().to_string_lossy().to_string();
                    let rel = format!("{folder}/{file}");
                    // Regular files only, and not through a link out of the theme.
                    let regular =
                        std::fs::symlink_metadata(entry.path()).is_ok_and(|m| m.is_file());
                    if regular && wanted(&file) && safe_relative(&rel).is_some() {
                        found.insert(rel);
                    }
                }
            }
            let prefix = format!("static/{folder}/");
            let bundled = builtin::files(theme).iter().map(|(p, _)| *p).chain(
                builtin::DEFAULT_BINARY
                    .iter()
                    .map(|(p, _)| *p)
                    .filter(|_| theme == DEFAULT_THEME),
            );
            for path in bundled {
                if let Some(rest) = path.strip_prefix(&prefix)
                    && wanted(rest)
                {
                    found.insert(format!("{folder}/{rest}"));
                }
            }
        }
        found.into_iter().collect()
    }

    /// A static asset of theme `name`: the theme's folder first, then the bundled theme, then
    /// the default theme. `path` is relative to `static/` and may not leave it.
    pub fn asset(&self, name: &str, path: &str) -> Option<Asset> {
        let rel = safe_relative(path)?;
        if !valid_theme_name(name) {
            return None;
        }
        for theme in [name, DEFAULT_THEME] {
            let root = self.dir.join(theme).join("static");
            if let Some((file, len)) = file_inside(&root, &rel) {
                return Some(Asset {
                    body: Body::File { path: file, len },
                    content_type: content_type(path),
                });
            }
            let key = format!("static/{path}");
            if let Some((_, text)) = builtin::files(theme).iter().find(|(p, _)| *p == key) {
                return Some(Asset::builtin(path, text.as_bytes()));
            }
            if theme == DEFAULT_THEME
                && let Some((_, bytes)) = builtin::DEFAULT_BINARY.iter().find(|(p, _)| *p == key)
            {
                return Some(Asset::builtin(path, bytes));
            }
        }
        None
    }
}

/// The file `rel` below `root` (its real path and length), if it is a regular file that is
/// still inside `root` once every link is followed (a link out of the theme, a FIFO or a
/// device is never served). Blocking: call it off the runtime threads.
pub fn file_inside(root: &Path, rel: &Path) -> Option<(PathBuf, u64)> {
    let real_root = root.canonicalize().ok()?;
    let real = root.join(rel).canonicalize().ok()?;
    let meta = std::fs::metadata(&real).ok()?;
    (real.starts_with(&real_root) && meta.is_file()).then_some((real, meta.len()))
}

/// A file served from a theme's `static/` folder.
pub struct Asset {
    pub body: Body,
    pub content_type: &'static str,
}

/// Where an asset's bytes are: compiled in, or a file on disk (streamed, never read whole).
pub enum Body {
    Builtin(&'static [u8]),
    File { path: PathBuf, len: u64 },
}

impl Asset {
    fn builtin(path: &str, bytes: &'static [u8]) -> Asset {
        Asset {
            body: Body::Builtin(bytes),
            content_type: content_type(path),
        }
    }
}

pub fn content_type(path: &str) -> &'static str {
    let ext = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match ext.as_str() {
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "mp3" => "audio/mpeg",
        "ogg" => "audio/ogg",
        "wav" => "audio/wav",
        "webm" => "video/webm",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// Theme names are folder names and URL segments.
pub fn valid_theme_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// `path` as a relative path of normal components only: no `..`, no root, no drive, no
/// backslash (which Windows would treat as a separator).
pub fn safe_relative(path: &str) -> Option<PathBuf> {
    if path.is_empty() || path.contains('\\') || path.contains(':') || path.contains('\0') {
        return None;
    }
    let mut out = PathBuf::new();
    for part in path.split('/') {
        let mut comps = Path::new(part).components();
        match (comps.next(), comps.next()) {
            (Some(Component::Normal(c)), None) if !part.starts_with('.') => out.push(c),
            _ => return None,
        }
    }
    Some(out)
}

/// A template's text and where it came from (a file, or the built-in theme), for errors.
struct Source {
    text: String,
    origin: String,
}

/// Builds theme `name`: bundled default files, then the bundled theme's, then its folder's.
fn build(dir: &Path, name: &str, generation: u64) -> Result<Theme, ThemeError> {
    let error = |file: String, message: String| ThemeError {
        theme: name.to_string(),
        file,
        line: None,
        column: None,
        message,
    };
    let mut templates: BTreeMap<String, Source> = BTreeMap::new();
    let mut theme_toml: Option<(String, String)> = None;
    for theme in [DEFAULT_THEME, name] {
        for (path, text) in builtin::files(theme) {
            let origin = format!("(built-in) {theme}/{path}");
            if let Some(t) = template_name(path) {
                templates.insert(
                    t,
                    Source {
                        text: text.to_string(),
                        origin,
                    },
                );
            } else if *path == "theme.toml" && theme == name {
                theme_toml = Some((text.to_string(), origin));
            }
        }
    }
    let root = dir.join(name);
    if root.is_dir() {
        let mut files = Vec::new();
        walk(&root.join("templates"), &root, &mut files);
        for file in files {
            let rel = file
                .strip_prefix(&root)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            let Some(t) = template_name(&rel) else {
                continue;
            };
            // Errors name the file from the themes folder: shown in the overlay, an absolute
            // path would tell every viewer where the server keeps its files.
            let shown = format!("{name}/{rel}");
            let text = std::fs::read_to_string(&file)
                .map_err(|e| error(shown.clone(), format!("cannot read: {e}")))?;
            templates.insert(
                t,
                Source {
                    text,
                    origin: shown,
                },
            );
        }
        let toml_path = root.join("theme.toml");
        if let Ok(text) = std::fs::read_to_string(&toml_path) {
            theme_toml = Some((text, format!("{name}/theme.toml")));
        }
    } else if builtin::files(name).is_empty() {
        return Err(error(format!("{name}/"), "no such theme folder".into()));
    }
    let meta: ThemeToml = match &theme_toml {
        Some((text, origin)) => toml::from_str(text).map_err(|e| ThemeError {
            theme: name.to_string(),
            file: origin.clone(),
            line: e.span().map(|s| text[..s.start].matches('\n').count() + 1),
            column: None,
            message: e.message().to_string(),
        })?,
        None => ThemeToml::default(),
    };
    let declared = match (&meta.fields, &theme_toml) {
        (Some(table), Some((text, origin))) => fields::parse_schema(table).map_err(|message| {
            // `[fields.<name>]: …`: the line of that table.
            let header = message.split(']').next().unwrap_or_default().to_string() + "]";
            ThemeError {
                theme: name.to_string(),
                file: origin.clone(),
                line: text
                    .lines()
                    .position(|l| l.trim_start().starts_with(&header))
                    .map(|i| i + 1),
                column: None,
                message,
            }
        })?,
        _ => Vec::new(),
    };

    // Handlebars follows partials by recursion: a loop of them overflows the stack and aborts
    // the process. Found here, it is a theme error like any other.
    if let Some(cycle) = include_cycle(&templates) {
        let origin = templates
            .get(&cycle[0])
            .map(|s| s.origin.clone())
            .unwrap_or_default();
        return Err(error(
            origin,
            format!(
                "partials include each other in a loop: {}; break the loop",
                cycle.join(" → ")
            ),
        ));
    }
    let mut hbs = Handlebars::new();
    hbs.set_strict_mode(true);
    helpers::register(&mut hbs);
    let mut sources = BTreeMap::new();
    for (template, Source { text, origin }) in templates {
        hbs.register_template_string(&template, &text)
            .map_err(|e| ThemeError {
                theme: name.to_string(),
                file: origin.clone(),
                line: e.pos().map(|p| p.0),
                column: e.pos().map(|p| p.1),
                message: e.reason().to_string(),
            })?;
        sources.insert(template, origin);
    }
    Ok(Theme {
        name: name.to_string(),
        title: meta.name.unwrap_or_else(|| name.to_string()),
        description: meta.description.unwrap_or_default(),
        fields: declared,
        generation,
        hbs,
        sources,
    })
}

/// The partials `text` names (`{{> name}}`, `{{#> name}}`, quoted or not; dynamic ones,
/// `{{> (lookup …)}}`, cannot be followed and are left out).
fn partial_refs(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("{{") {
        rest = &rest[at + 2..];
        let tag = rest.trim_start_matches(['~', '#']).trim_start();
        let Some(after) = tag.strip_prefix('>') else {
            continue;
        };
        let after = after.trim_start();
        let name: String = match after.strip_prefix('"').or_else(|| after.strip_prefix('\'')) {
            Some(quoted) => quoted
                .chars()
                .take_while(|c| *c != '"' && *c != '\'')
                .collect(),
            None => after
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '}' && *c != '~' && *c != '(')
                .collect(),
        };
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

/// The inline partials `text` defines (`{{#*inline "name"}}…{{/inline}}`), with their bodies.
fn inline_partials(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("{{#*inline") {
        rest = &rest[at + "{{#*inline".len()..];
        let name: String = rest
            .trim_start()
            .trim_start_matches(['"', '\''])
            .chars()
            .take_while(|c| *c != '"' && *c != '\'' && *c != '}' && !c.is_whitespace())
            .collect();
        let body_start = rest.find("}}").map_or(rest.len(), |i| i + 2);
        let body_end = rest.find("{{/inline}}").unwrap_or(rest.len());
        out.push((name, rest[body_start.min(body_end)..body_end].to_string()));
    }
    out
}

/// A loop of partials that include each other (a template, or an inline partial, naming
/// itself again through any path), as the names along it.
fn include_cycle(templates: &BTreeMap<String, Source>) -> Option<Vec<String>> {
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, source) in templates {
        graph.insert(name.clone(), partial_refs(&source.text));
        for (inline, body) in inline_partials(&source.text) {
            graph.insert(inline, partial_refs(&body));
        }
    }
    // Depth-first, with the path on a stack: an edge back into the path is a loop.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if graph.contains_key(next)
                && let Some(c) = visit(next, graph, path, done)
            {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, &graph, &mut Vec::new(), &mut done))
}

/// `templates/chat/chat.message.hbs` → `chat/chat.message`.
fn template_name(path: &str) -> Option<String> {
    let rest = path.strip_prefix("templates/")?.strip_suffix(".hbs")?;
    Some(rest.to_string())
}

/// The files below `dir`, skipping hidden files and editor droppings. Directory links are not followed (a link back up would make the
/// walk endless), and a file link counts only when it resolves to a regular file inside
/// `dir`'s theme (`root`).
fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if ignored(&path) {
            continue;
        }
        if kind.is_dir() {
            walk(&path, root, out);
        } else if kind.is_file() {
            out.push(path);
        } else if kind.is_symlink() {
            let inside = root
                .canonicalize()
                .ok()
                .zip(path.canonicalize().ok())
                .is_some_and(|(r, p)| p.starts_with(r) && p.is_file());
            if inside {
                out.push(path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sources(files: &[(&str, &str)]) -> BTreeMap<String, Source> {
        files
            .iter()
            .map(|(n, t)| {
                (
                    n.to_string(),
                    Source {
                        text: t.to_string(),
                        origin: format!("{n}.hbs"),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn partials_that_include_each_other_are_found() {
        assert_eq!(
            include_cycle(&sources(&[("a", "x {{> b}}"), ("b", "{{~> \"a\" this}}")])),
            Some(vec!["a".to_string(), "b".into(), "a".into()])
        );
        assert!(
            include_cycle(&sources(&[("a", "{{> a}}")])).is_some(),
            "itself"
        );
        let inline = "{{#*inline \"row\"}}{{> row}}{{/inline}}{{> row}}";
        assert!(
            include_cycle(&sources(&[("t", inline)])).is_some(),
            "inline"
        );
        // A tree of partials, a dynamic one and a missing one are fine.
        assert_eq!(
            include_cycle(&sources(&[
                ("a", "{{> b}}{{> c}}{{> (lookup this \"p\")}}{{> nowhere}}"),
                ("b", "{{> c}}"),
                ("c", "leaf {{#if x}}{{/if}}")
            ])),
            None
        );
    }

    #[test]
    fn bundled_themes_build() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reg = Registry::new(dir.path());
        assert!(reg.load_all().is_empty());
        assert_eq!(reg.names(), ["default", "neon"]);
        let neon = reg.get("neon").expect("neon");
        // neon overrides the alert template and inherits the chat one
        assert!(neon.sources["alerts/default"].contains("neon"));
        assert!(neon.sources["chat/chat.message"].contains("default"));
    }

    #[test]
    fn disk_files_override_and_broken_ones_keep_the_last_good_build() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tpl = dir.path().join("default/templates/goal");
        std::fs::create_dir_all(&tpl).expect("mkdir");
        std::fs::write(tpl.join("goal.hbs"), "<b>{{goal.label}}</b>").expect("write");
        let reg = Registry::new(dir.path());
        assert!(reg.load_all().is_empty());
        let ctx = json!({"goal": {"label": "Subs"}});
        let theme = reg.get("default").expect("default");
        assert_eq!(
            theme.render("goal/goal", ctx).expect("render"),
            "<b>Subs</b>"
        );

        std::fs::write(tpl.join("goal.hbs"), "<b>\n  {{#if goal}}oops</b>").expect("write");
        let err = reg.reload("default").unwrap_err();
        assert!(err.file.ends_with("goal.hbs"), "{err}");
        assert_eq!(err.line, Some(2), "{err}");
        assert!(reg.error("default").is_some());
        let still = reg.get("default").expect("default");
        assert_eq!(still.generation, theme.generation);

        std::fs::write(tpl.join("goal.hbs"), "<i>{{goal.label}}</i>").expect("write");
        assert!(reg.reload("default").is_ok());
        assert!(reg.error("default").is_none());
    }

    #[test]
    fn strict_mode_names_the_missing_variable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reg = Registry::new(dir.path());
        reg.load_all();
        let theme = reg.get("default").expect("default");
        let err = theme.render("goal/goal", json!({})).unwrap_err();
        assert!(err.message.contains("goal"), "{err}");
        assert!(err.line.is_some());
    }

    #[test]
    fn asset_paths_cannot_escape_the_theme() {
        for bad in [
            "../x",
            "a/../../b",
            "/etc/passwd",
            "a\\..\\b",
            "C:/x",
            ".hidden",
            "",
        ] {
            assert!(safe_relative(bad).is_none(), "{bad}");
        }
        assert!(safe_relative("img/a.png").is_some());
        let dir = tempfile::tempdir().expect("tempdir");
        let reg = Registry::new(dir.path());
        assert!(reg.asset("default", "style.css").is_some());
        assert!(reg.asset("neon", "style.css").is_some());
        assert!(reg.asset("default", "../theme.toml").is_none());
        assert!(reg.asset("..", "style.css").is_none());
    }
}
