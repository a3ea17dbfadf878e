//! The HTML page an OBS browser source loads for `/o/<name>`: a transparent shell with the
//! theme's stylesheet, the overlay's settings and the one client script. Events arrive over SSE
//! already rendered, so the page itself never changes when a theme does.

use serde_json::json;

use super::Overlay;
use crate::theme::ThemeError;
use crate::theme::helpers::escape;

/// What the page's script knows about its overlay (also sent when the overlay's file changes).
pub fn settings(overlay: &Overlay, error: Option<&ThemeError>) -> serde_json::Value {
    let c = &overlay.config;
    json!({
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

/// `/o/<name>`.
pub fn render(overlay: &Overlay, error: Option<&ThemeError>) -> String {
    let c = &overlay.config;
    let settings = settings(overlay, error);
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
        hidden = if error.is_some() { "" } else { " hidden" },
        error = error.map(|e| escape(&e.to_string())).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

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
