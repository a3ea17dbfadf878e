//! The HTML page an OBS browser source loads for `/o/<name>`: a transparent shell with the
//! theme's stylesheet, the overlay's settings and the one client script. Events arrive over SSE
//! already rendered, so the page itself never changes when a theme does.

use serde_json::json;

use super::Overlay;
use crate::theme::ThemeError;
use crate::theme::helpers::escape;

/// What the page's script knows about its overlay (also sent when the overlay's file changes).
pub fn settings(overlay: &Overlay, error: Option<&ThemeError>) -> serde_json::Value {
    settings_with(overlay, error, &overlay.fields)
}

/// [`settings`] with `fields` for the theme's fields (a page's URL overrides merged in).
fn settings_with(
    overlay: &Overlay,
    error: Option<&ThemeError>,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    let c = &overlay.config;
    let theme = &overlay.theme;
    // The alert sound a theme's `alert_sound` field picks, if it has one.
    let sound = theme
        .fields
        .iter()
        .find(|f| f.name == "alert_sound" && f.kind == crate::theme::fields::FieldType::Sound)
        .and_then(|f| fields.get(&f.name))
        .and_then(|v| v.as_str())
        .map(|p| format!("/themes/{}/static/{p}", c.theme));
    json!({
        "fields": fields,
        "css": crate::theme::fields::css_properties(&theme.fields, fields, &c.theme),
        "sound_url": sound,
        "name": c.name,
        "kind": c.kind.as_str(),
        "channel": c.channel,
        "theme": c.theme,
        "generation": overlay.theme.generation,
        "options": c.options,
        "events": format!("/o/{}/events", c.name),
        "error": error.map(ToString::to_string),
    })
}

/// JSON to put inside a `<script>` block: every `<` escaped (JSON allows `\u003c`), so no
/// string in it can end the block (`</script>`) or open a comment that swallows the page's
/// script (`<!--<script`).
pub fn inline_json(value: &serde_json::Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

/// The values of `query`'s `field.<name>=<value>` pairs over the overlay's own, checked like
/// the file's; each problem says what is wrong and is shown on the page.
pub fn overrides<'a>(
    overlay: &Overlay,
    query: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (serde_json::Map<String, serde_json::Value>, Vec<String>) {
    let mut fields = overlay.fields.clone();
    let mut problems = Vec::new();
    for (key, text) in query {
        let Some(name) = key.strip_prefix("field.") else {
            continue;
        };
        match overlay.theme.fields.iter().find(|f| f.name == name) {
            None => problems.push(format!("?field.{name}: the theme has no such field")),
            Some(f) => match f.check(&crate::theme::fields::from_text(f, text)) {
                Ok(v) => {
                    fields.insert(name.to_string(), v);
                }
                Err(e) => problems.push(format!("?field.{name} {e}")),
            },
        }
    }
    (fields, problems)
}

/// `/o/<name>`.
pub fn render(overlay: &Overlay, error: Option<&ThemeError>) -> String {
    render_with(overlay, error, &overlay.fields, &[])
}

/// `/o/<name>` with field values `fields` and `problems` to show (from its URL).
pub fn render_with(
    overlay: &Overlay,
    error: Option<&ThemeError>,
    fields: &serde_json::Map<String, serde_json::Value>,
    problems: &[String],
) -> String {
    let c = &overlay.config;
    let mut notes: Vec<String> = error.map(ToString::to_string).into_iter().collect();
    notes.extend(overlay.field_errors.iter().map(|e| shown_path(e)));
    notes.extend(problems.iter().cloned());
    let mut settings = settings_with(overlay, error, fields);
    settings["error"] = if notes.is_empty() {
        serde_json::Value::Null
    } else {
        json!(notes.join("\n"))
    };
    let settings = inline_json(&settings);
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · overlayd</title>
<link rel="stylesheet" href="/assets/overlay.css">
<link id="theme-css" rel="stylesheet" href="/themes/{theme}/static/style.css?g={generation}">
</head>
<body class="overlay overlay-{kind} theme-{theme}">
<div id="root" class="root-{kind}" aria-live="polite"></div>
<div id="theme-error" class="theme-error"{hidden}>{error}</div>
<script id="overlay-settings" type="application/json">{settings}</script>
<script src="/assets/overlay.js"></script>
</body>
</html>
"#,
        title = escape(&c.title),
        theme = escape(&c.theme),
        generation = overlay.theme.generation,
        kind = c.kind.as_str(),
        hidden = if notes.is_empty() { " hidden" } else { "" },
        error = escape(&notes.join("\n")),
    )
}

/// A field error as a page shows it: the file's name, never the folder it is in.
fn shown_path(error: &str) -> String {
    match error.find(".toml:") {
        Some(end) => {
            let start = error[..end].rfind(['/', '\\']).map_or(0, |i| i + 1);
            error[start..].to_string()
        }
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_on_the_page_name_the_file_not_its_folder() {
        assert_eq!(
            shown_path("/srv/me/overlays/chat.toml:4: fields.x bad"),
            "chat.toml:4: fields.x bad"
        );
        assert_eq!(shown_path("C:\\obs\\overlays\\a.toml:2: y"), "a.toml:2: y");
    }

    #[test]
    fn inline_json_can_neither_end_the_script_nor_open_a_comment() {
        let v = serde_json::json!({"label": "<!--<script></script>"});
        let text = inline_json(&v);
        assert!(!text.contains('<'), "{text}");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&text).expect("json"),
            v
        );
    }
}
