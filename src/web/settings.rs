//! The dashboard's second way to write the files: create, edit, duplicate and delete
//! `overlays/<name>.toml` from a form, and add images and sounds to a theme's `static/`.
//! Files stay the source of truth: an edit keeps the file's comments, layout and the keys the
//! form does not know (`toml_edit`), is checked exactly as `overlayd check` checks a hand edit
//! (with the same words), and reaches open overlays the way a hand edit does. Every change
//! passes the one access rule.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::access::{guard, read_guard};
use super::reply::{MAX_BODY, body_up_to, json_reply, reject};
use super::state::{State, with_state};
use crate::overlay::file::{
    OverlayConfig, OverlayKind, is_viewer_name, options, valid_overlay_name,
};
use crate::theme::fields::{IMAGE_EXTS, SOUND_EXTS};

/// Largest image or sound a form may upload.
pub const MAX_UPLOAD: usize = 4 * 1024 * 1024;

pub fn routes(state: Arc<State>) -> BoxedFilter<(Response,)> {
    schema(state.clone())
        .or(form(state.clone()))
        .unify()
        .or(save(state.clone()))
        .unify()
        .or(create(state.clone()))
        .unify()
        .or(duplicate(state.clone()))
        .unify()
        .or(delete(state.clone()))
        .unify()
        .or(upload(state))
        .unify()
        .boxed()
}

/// GET /api/overlay-schema — what a new overlay can be: each kind's options with their
/// defaults, each theme's fields, the channels.
fn schema(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "overlay-schema")
        .and(warp::get())
        .and(read_guard(state.access.clone()))
        .and(with_state(state))
        .map(|state: Arc<State>| {
            let kinds: Map<String, Value> = OverlayKind::ALL
                .iter()
                .map(|k| (k.as_str().to_string(), options::defaults(*k)))
                .collect();
            let themes: Vec<Value> = state
                .themes
                .names()
                .iter()
                .filter_map(|n| state.themes.get(n))
                .map(|t| json!({"name": t.name, "title": t.title, "fields": t.fields}))
                .collect();
            json_reply(
                StatusCode::OK,
                &json!({"kinds": kinds, "themes": themes, "channels": state.overlays.channels(),
                        "default_channel": state.config.default_channel()}),
            )
        })
        .boxed()
}

fn overlay_path(state: &State, name: &str) -> PathBuf {
    state.config.overlays_dir.join(format!("{name}.toml"))
}

fn not_found(name: &str) -> warp::Rejection {
    reject(
        StatusCode::NOT_FOUND,
        format!(
            "no overlay named \"{name}\" in overlays/ (the built-in ones have no file: create one)"
        ),
    )
}

/// GET /api/overlays/{name}/form — an overlay as the form shows it: its file's settings,
/// each option with its default, each field of its theme with its value, the theme's images
/// and sounds, and what is wrong with the file now.
fn form(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "overlays" / String / "form")
        .and(warp::get())
        .and(read_guard(state.access.clone()))
        .and(with_state(state))
        .and_then(|name: String, state: Arc<State>| async move {
            let overlay = state
                .overlays
                .get(&name)
                .filter(|o| !o.config.is_viewer())
                .ok_or_else(|| not_found(&name))?;
            let c = &overlay.config;
            let defaults = options::defaults(c.kind);
            let option_list: Vec<Value> = defaults
                .as_object()
                .into_iter()
                .flatten()
                .map(|(key, default)| {
                    json!({"key": key, "default": default, "value": c.options[key],
                           "type": option_type(default)})
                })
                .collect();
            let fields: Vec<Value> = overlay
                .theme
                .fields
                .iter()
                .map(|f| {
                    let mut v = json!(f);
                    v["value"] = overlay.fields.get(&f.name).cloned().unwrap_or(Value::Null);
                    v
                })
                .collect();
            let (themes, theme) = (state.themes.clone(), c.theme.clone());
            let assets = tokio::task::spawn_blocking(move || {
                json!({
                    "images": themes.list_static(&theme, "images", &IMAGE_EXTS),
                    "sounds": themes.list_static(&theme, "sounds", &SOUND_EXTS),
                })
            })
            .await
            .unwrap_or(Value::Null);
            let path = overlay_path(&state, &name);
            let exists = tokio::fs::try_exists(&path).await.unwrap_or(false);
            let errors: Vec<String> = state
                .reloader
                .errors()
                .into_iter()
                .chain(overlay.field_errors.iter().cloned())
                .filter(|e| e.contains(&format!("{name}.toml")))
                .collect();
            Ok::<_, warp::Rejection>(json_reply(
                StatusCode::OK,
                &json!({
                    "name": c.name, "kind": c.kind.as_str(), "channel": c.channel, "theme": c.theme,
                    "title": c.title, "width": c.size.0, "height": c.size.1,
                    "options": option_list, "fields": fields, "assets": assets,
                    "has_file": exists, "errors": errors,
                }),
            ))
        })
        .boxed()
}

fn option_type(default: &Value) -> &'static str {
    match default {
        Value::Bool(_) => "toggle",
        Value::Number(_) => "number",
        Value::String(_) => "text",
        _ => "json",
    }
}

/// What the form sends: everything it shows. Keys it leaves out are left as they are.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Posted {
    kind: Option<String>,
    channel: Option<String>,
    theme: Option<String>,
    title: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    #[serde(default)]
    options: Map<String, Value>,
    #[serde(default)]
    fields: Map<String, Value>,
}

/// A problem the form shows beside `key` (`options.duration_s`, `fields.accent`, `channel`).
fn problem(key: &str, error: impl Into<String>) -> Value {
    json!({"key": key, "error": error.into()})
}

fn refused(problems: Vec<Value>) -> Response {
    let first = problems
        .first()
        .and_then(|p| p["error"].as_str())
        .unwrap_or("invalid")
        .to_string();
    json_reply(
        StatusCode::BAD_REQUEST,
        &json!({"error": first, "errors": problems}),
    )
}

/// `posted` written over the file text `old` (empty for a new file): comments, layout and
/// unknown keys kept; an option or field at its default is added only if the file had it.
/// With `fields_of`, the fields of another theme, `[fields]` keeps only theirs.
fn edit(
    old: &str,
    posted: &Posted,
    kind: OverlayKind,
    fields_of: Option<&[&str]>,
) -> Result<String, Value> {
    use toml_edit::{DocumentMut, Item, Table, value};
    let mut doc: DocumentMut = old.parse().map_err(|e: toml_edit::TomlError| {
        problem("file", format!("the file does not parse: {e}"))
    })?;
    if let Some(k) = &posted.kind {
        doc["kind"] = value(k.as_str());
    }
    for (key, v) in [
        ("channel", &posted.channel),
        ("theme", &posted.theme),
        ("title", &posted.title),
    ] {
        if let Some(v) = v {
            doc[key] = value(v.as_str());
        }
    }
    for (key, v) in [("width", posted.width), ("height", posted.height)] {
        if let Some(v) = v {
            doc[key] = value(i64::from(v));
        }
    }
    let defaults = options::defaults(kind);
    for (section, set, default_of) in [
        ("options", &posted.options, Some(&defaults)),
        ("fields", &posted.fields, None),
    ] {
        if set.is_empty() {
            continue;
        }
        if !doc.contains_table(section) {
            let mut t = Table::new();
            t.set_implicit(false);
            doc[section] = Item::Table(t);
        }
        let table = doc[section]
            .as_table_mut()
            .ok_or_else(|| problem(section, format!("[{section}] is not a table in the file")))?;
        for (key, v) in set {
            let had = table.contains_key(key);
            let is_default = default_of.is_some_and(|d| &d[key] == v);
            if is_default && !had {
                continue;
            }
            let v = toml_value(v).ok_or_else(|| {
                problem(
                    &format!("{section}.{key}"),
                    "null is not a value: leave the key out",
                )
            })?;
            match table.get_mut(key) {
                // The value replaced, its comment and spacing kept.
                Some(Item::Value(old)) => {
                    let decor = old.decor().clone();
                    *old = v;
                    *old.decor_mut() = decor;
                }
                _ => table[key] = Item::Value(v),
            }
        }
    }
    if let Some(keep) = fields_of
        && let Some(t) = doc.get_mut("fields").and_then(|f| f.as_table_mut())
    {
        t.retain(|k, _| keep.contains(&k));
    }
    Ok(doc.to_string())
}

/// With no file in `overlays/` the built-in overlays are served; the first file written from
/// the form would make them vanish, so each is written as a file first.
async fn materialize_builtins(state: &State) -> Result<(), warp::Rejection> {
    let mut files = Vec::new();
    for overlay in state
        .overlays
        .all()
        .iter()
        .filter(|o| !o.config.is_viewer())
    {
        let c = &overlay.config;
        let defaults = options::defaults(c.kind);
        let mut text = format!(
            "# Written by the dashboard from the built-in overlay \"{}\".\nkind = \"{}\"\nchannel = \"{}\"\n",
            c.name,
            c.kind.as_str(),
            c.channel
        );
        let changed: Vec<(&String, &Value)> = c
            .options
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, v)| defaults.get(k.as_str()) != Some(v))
            .collect();
        if !changed.is_empty() {
            text.push_str("\n[options]\n");
            for (k, v) in changed {
                if let Some(v) = toml_value(v) {
                    text.push_str(&format!("{k} = {v}\n"));
                }
            }
        }
        files.push((overlay_path(state, &c.name), text));
    }
    let dir = state.config.overlays_dir.clone();
    tokio::task::spawn_blocking(move || {
        let has_files = std::fs::read_dir(&dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|x| x == "toml"))
        });
        if has_files {
            return Ok(());
        }
        for (path, text) in files {
            crate::files::replace(&path, text.as_bytes())?;
        }
        Ok::<_, std::io::Error>(())
    })
    .await
    .map_err(|e| reject(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| {
        reject(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("writing overlays/: {e}"),
        )
    })
}

/// A JSON value as TOML (`None` for null, which TOML has not).
fn toml_value(v: &Value) -> Option<toml_edit::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or(0.0).into(),
        },
        Value::String(s) => s.as_str().into(),
        Value::Array(items) => {
            let mut a = toml_edit::Array::new();
            for item in items {
                a.push(toml_value(item)?);
            }
            toml_edit::Value::Array(a)
        }
        Value::Object(map) => {
            let mut t = toml_edit::InlineTable::new();
            for (k, item) in map {
                t.insert(k, toml_value(item)?);
            }
            toml_edit::Value::InlineTable(t)
        }
    })
}

/// Checks `text` as `overlays/<name>.toml` exactly as a hand edit is checked (the overlay,
/// then its fields against its theme): the problems, each with the key it is about.
fn check(state: &State, path: &Path, text: &str) -> Result<OverlayConfig, Vec<Value>> {
    let config = OverlayConfig::parse(
        path,
        text,
        &state.config.default_channel(),
        &state.themes.names(),
    )
    .map_err(|e| vec![problem(&key_at(text, e.line), e.to_string())])?;
    let theme = state.themes.get(&config.theme).ok_or_else(|| {
        vec![problem(
            "theme",
            format!("theme \"{}\" is not loaded", config.theme),
        )]
    })?;
    let (_, problems) = crate::theme::fields::resolve(&theme.fields, &config.fields);
    if !problems.is_empty() {
        let lines = config
            .source
            .as_ref()
            .map(|(_, l)| l.clone())
            .unwrap_or_default();
        return Err(problems
            .into_iter()
            .map(|(name, message)| {
                let at = lines
                    .get(&name)
                    .map(|l| format!("{}:{l}: ", path.display()))
                    .unwrap_or_default();
                problem(&format!("fields.{name}"), format!("{at}{message}"))
            })
            .collect());
    }
    Ok(config)
}

/// The key (`options.duration_s`, `channel`) assigned on line `line` of `text`.
fn key_at(text: &str, line: Option<usize>) -> String {
    let Some(line) = line else {
        return "file".into();
    };
    let lines: Vec<&str> = text.lines().collect();
    let Some(here) = lines.get(line.saturating_sub(1)) else {
        return "file".into();
    };
    let key = here
        .split('=')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let section = lines[..line.saturating_sub(1)].iter().rev().find_map(|l| {
        let l = l.trim();
        l.strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .map(str::to_string)
    });
    match section {
        Some(s) if !key.starts_with('[') => format!("{s}.{key}"),
        _ => key,
    }
}

/// Writes `text` to `path` (through a temporary file: a reader never sees half of it), then
/// applies `overlays/` at once, as the watcher would a moment later.
async fn write(state: &State, path: &Path, text: String) -> Result<(), warp::Rejection> {
    let path = path.to_path_buf();
    let written =
        tokio::task::spawn_blocking(move || crate::files::replace(&path, text.as_bytes()))
            .await
            .map_err(|e| reject(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    written.map_err(|e| {
        reject(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("writing the file: {e}"),
        )
    })?;
    apply(state).await;
    Ok(())
}

async fn apply(state: &State) {
    let reloader = state.reloader.clone();
    let _ = tokio::task::spawn_blocking(move || reloader.apply_overlay_changes()).await;
}

fn parse_posted(body: &Bytes) -> Result<Posted, warp::Rejection> {
    serde_json::from_slice(body).map_err(|e| {
        reject(
            StatusCode::BAD_REQUEST,
            format!("{e}; send {{\"kind\", \"channel\", \"theme\", \"title\", \"options\": {{…}}, \"fields\": {{…}}}}"),
        )
    })
}

/// The refusal of `name` as a new overlay file's: it is the URL `/o/<name>`, and viewer pages'
/// names are not for files.
fn bad_name(name: &str) -> Option<Response> {
    (!valid_overlay_name(name) || is_viewer_name(name)).then(|| {
        refused(vec![problem(
            "name",
            format!(
                "\"{name}\" cannot be an overlay name (it is the URL /o/<name>): use letters, digits, - and _"
            ),
        )])
    })
}

/// Edits (or, with `new`, creates) `overlays/<name>.toml` from `posted`.
async fn save_file(
    state: &State,
    name: &str,
    posted: Posted,
    new: bool,
) -> Result<Response, warp::Rejection> {
    if let Some(refusal) = bad_name(name) {
        return Ok(refusal);
    }
    let path = overlay_path(state, name);
    let old = match tokio::fs::read_to_string(&path).await {
        Ok(_) if new => {
            return Err(reject(
                StatusCode::CONFLICT,
                format!("an overlay named \"{name}\" exists; pick another name"),
            ));
        }
        Ok(text) => text,
        Err(_) if new => String::new(),
        // The built-in overlays have no file: saving one writes it.
        Err(_) if state.overlays.get(name).is_some() => String::new(),
        Err(_) => return Err(not_found(name)),
    };
    let kind_text = posted
        .kind
        .clone()
        .or_else(|| {
            state
                .overlays
                .get(name)
                .map(|o| o.config.kind.as_str().to_string())
        })
        .unwrap_or_default();
    let kind: OverlayKind = match serde_json::from_value(json!(kind_text)) {
        Ok(k) => k,
        Err(_) => {
            return Ok(refused(vec![problem(
                "kind",
                format!("kind \"{kind_text}\" is one of {}", OverlayKind::list()),
            )]));
        }
    };
    let mut posted = posted;
    posted.kind = Some(kind.as_str().to_string());
    // Another theme: values of fields it does not have go (they meant nothing to it).
    let before = state.overlays.get(name).map(|o| o.config.theme.clone());
    let other_theme = posted
        .theme
        .as_ref()
        .filter(|t| before.as_ref().is_some_and(|b| b != *t))
        .and_then(|t| state.themes.get(t));
    let keep: Option<Vec<&str>> = other_theme
        .as_ref()
        .map(|t| t.fields.iter().map(|f| f.name.as_str()).collect());
    let text = match edit(&old, &posted, kind, keep.as_deref()) {
        Ok(t) => t,
        Err(p) => return Ok(refused(vec![p])),
    };
    materialize_builtins(state).await?;
    if let Err(problems) = check(state, &path, &text) {
        return Ok(refused(problems));
    }
    write(state, &path, text).await?;
    Ok(json_reply(
        if new {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &json!({"name": name, "url": format!("/o/{name}"), "file": format!("overlays/{name}.toml")}),
    ))
}

/// PUT /api/overlays/{name}
fn save(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "overlays" / String)
        .and(warp::put())
        .and(guard(state.access.clone()))
        .and(body_up_to(MAX_BODY as usize))
        .and(with_state(state))
        .and_then(|name: String, body: Bytes, state: Arc<State>| async move {
            let posted = parse_posted(&body)?;
            save_file(&state, &name, posted, false).await
        })
        .boxed()
}

#[derive(Deserialize)]
struct Named {
    name: String,
    #[serde(flatten)]
    rest: Map<String, Value>,
}

/// POST /api/overlays `{"name", "kind", …}`
fn create(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "overlays")
        .and(warp::post())
        .and(guard(state.access.clone()))
        .and(body_up_to(MAX_BODY as usize))
        .and(with_state(state))
        .and_then(|body: Bytes, state: Arc<State>| async move {
            let named: Named = serde_json::from_slice(&body).map_err(|e| {
                reject(
                    StatusCode::BAD_REQUEST,
                    format!("{e}; send {{\"name\", \"kind\", …}}"),
                )
            })?;
            let posted: Posted = serde_json::from_value(Value::Object(named.rest))
                .map_err(|e| reject(StatusCode::BAD_REQUEST, e.to_string()))?;
            if posted.kind.is_none() {
                return Ok(refused(vec![problem(
                    "kind",
                    format!("a new overlay needs a kind: {}", OverlayKind::list()),
                )]));
            }
            save_file(&state, &named.name, posted, true).await
        })
        .boxed()
}

/// POST /api/overlays/{name}/duplicate `{"name": <new name>}` — the file copied as it is.
fn duplicate(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "overlays" / String / "duplicate")
        .and(warp::post())
        .and(guard(state.access.clone()))
        .and(body_up_to(MAX_BODY as usize))
        .and(with_state(state))
        .and_then(|name: String, body: Bytes, state: Arc<State>| async move {
            let named: Named = serde_json::from_slice(&body).map_err(|e| {
                reject(
                    StatusCode::BAD_REQUEST,
                    format!("{e}; send {{\"name\": \"<new name>\"}}"),
                )
            })?;
            let from = overlay_path(&state, &name);
            let text = tokio::fs::read_to_string(&from)
                .await
                .map_err(|_| not_found(&name))?;
            let to = overlay_path(&state, &named.name);
            if let Some(refusal) = bad_name(&named.name) {
                return Ok(refusal);
            }
            if tokio::fs::try_exists(&to).await.unwrap_or(false) {
                return Err(reject(
                    StatusCode::CONFLICT,
                    format!(
                        "an overlay named \"{}\" exists; pick another name",
                        named.name
                    ),
                ));
            }
            write(&state, &to, text).await?;
            Ok::<_, warp::Rejection>(json_reply(
                StatusCode::CREATED,
                &json!({"name": named.name, "url": format!("/o/{}", named.name)}),
            ))
        })
        .boxed()
}

/// DELETE /api/overlays/{name} — the file is kept beside as `<name>.toml.deleted` (no
/// overlay is read from it; rename it back to undo).
fn delete(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "overlays" / String)
        .and(warp::delete())
        .and(guard(state.access.clone()))
        .and(with_state(state))
        .and_then(|name: String, state: Arc<State>| async move {
            let path = overlay_path(&state, &name);
            if !valid_overlay_name(&name) || !tokio::fs::try_exists(&path).await.unwrap_or(false) {
                return Err(not_found(&name));
            }
            let kept = path.with_extension("toml.deleted");
            tokio::fs::rename(&path, &kept).await.map_err(|e| {
                reject(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("removing the file: {e}"),
                )
            })?;
            apply(&state).await;
            Ok::<_, warp::Rejection>(json_reply(
                StatusCode::OK,
                &json!({"deleted": name, "kept_as": format!("overlays/{name}.toml.deleted")}),
            ))
        })
        .boxed()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    name: String,
}

/// What a file's first bytes say it is, among the types a theme may hold.
fn sniff(bytes: &[u8]) -> Option<(&'static str, &'static [&'static str])> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    Some(if starts(b"\x89PNG\r\n\x1a\n") {
        ("images", &["png"])
    } else if starts(b"\xff\xd8\xff") {
        ("images", &["jpg", "jpeg"])
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        ("images", &["gif"])
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WEBP") {
        ("images", &["webp"])
    } else if starts(b"RIFF") && bytes.get(8..12) == Some(b"WAVE") {
        ("sounds", &["wav"])
    } else if starts(b"OggS") {
        ("sounds", &["ogg"])
    } else if starts(b"ID3") || (bytes.len() > 1 && bytes[0] == 0xff && bytes[1] & 0xe0 == 0xe0) {
        ("sounds", &["mp3"])
    } else {
        return None;
    })
}

/// A file name as a theme keeps it: lowercase letters, digits, `-`, `_` and one extension.
fn clean_name(name: &str) -> Option<String> {
    let name = name.rsplit(['/', '\\']).next()?.trim().to_lowercase();
    let (stem, ext) = name.rsplit_once('.')?;
    let stem: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let stem = stem.trim_matches('-');
    if stem.is_empty() || stem.len() > 64 || !ext.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some(format!("{stem}.{ext}"))
}

/// POST /api/themes/{theme}/files?name=<file> — an image (png, jpg, gif, webp) or a sound
/// (ogg, mp3, wav) into the theme's `static/images/` or `static/sounds/`: at most
/// [`MAX_UPLOAD`], its type read from its bytes and matching its name.
fn upload(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("api" / "themes" / String / "files")
        .and(warp::post())
        .and(guard(state.access.clone()))
        .and(warp::query::<UploadQuery>())
        .and(body_up_to(MAX_UPLOAD))
        .and(with_state(state))
        .and_then(|theme: String, q: UploadQuery, body: Bytes, state: Arc<State>| async move {
            if state.themes.get(&theme).is_none() {
                return Err(reject(StatusCode::NOT_FOUND, format!("no theme named \"{theme}\"")));
            }
            let name = clean_name(&q.name).ok_or_else(|| {
                reject(StatusCode::BAD_REQUEST, "name the file like logo.png or ding.ogg")
            })?;
            let ext = name.rsplit('.').next().unwrap_or_default().to_string();
            let (folder, exts) = sniff(&body).ok_or_else(|| {
                reject(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "this is not an image (png, jpg, gif, webp) or a sound (ogg, mp3, wav)",
                )
            })?;
            if !exts.contains(&ext.as_str()) {
                return Err(reject(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!("the file is a {} but is named .{ext}", exts[0]),
                ));
            }
            let dir = state.config.themes_dir.join(&theme).join("static").join(folder);
            let path = dir.join(&name);
            let written = tokio::task::spawn_blocking(move || {
                // Never through a link someone left in the theme.
                if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_file()) {
                    return Err(std::io::Error::other("a non-file of that name is in the way"));
                }
                crate::files::replace(&path, &body)
            })
            .await
            .map_err(|e| reject(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            written.map_err(|e| reject(StatusCode::INTERNAL_SERVER_ERROR, format!("saving: {e}")))?;
            Ok::<_, warp::Rejection>(json_reply(
                StatusCode::CREATED,
                &json!({"path": format!("{folder}/{name}"), "url": format!("/themes/{theme}/static/{folder}/{name}")}),
            ))
        })
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_keeps_comments_layout_and_unknown_keys() {
        let old = "# my alerts\nkind = \"alerts\"\nchannel = \"me\"  # the channel\n\n[options]\nduration_s = 6 # long enough\n";
        let posted = Posted {
            options: json!({"duration_s": 8, "volume": 0.6, "sound": false})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            fields: json!({"accent": "#ff0000"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            ..Posted::default()
        };
        let new = edit(old, &posted, OverlayKind::Alerts, None).expect("edit");
        assert!(
            new.starts_with("# my alerts\nkind = \"alerts\"\nchannel = \"me\"  # the channel\n"),
            "{new}"
        );
        assert!(new.contains("duration_s = 8 # long enough"), "{new}");
        assert!(
            !new.contains("volume"),
            "a default not in the file stays out: {new}"
        );
        assert!(new.contains("sound = false"), "{new}");
        assert!(new.contains("[fields]\naccent = \"#ff0000\""), "{new}");
    }

    #[test]
    fn uploads_are_what_they_say_they_are() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest").map(|s| s.0), Some("images"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt ").map(|s| s.0), Some("sounds"));
        assert!(sniff(b"<svg onload=alert(1)>").is_none());
        assert_eq!(clean_name("My Logo!.PNG").as_deref(), Some("my-logo.png"));
        assert_eq!(
            clean_name("../../etc/passwd.png").as_deref(),
            Some("passwd.png")
        );
        assert_eq!(clean_name("noext"), None);
        assert_eq!(
            key_at("kind = \"chat\"\n[options]\nmax_messages = -1\n", Some(3)),
            "options.max_messages"
        );
    }
}
