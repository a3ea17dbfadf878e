//! Typed theme fields: a theme declares its knobs in `theme.toml` (`[fields.<name>]` with a
//! `type`, `label`, `default`, …); an overlay sets values under `[fields]` in its file, a page
//! URL may override one (`?field.<name>=…`). Every value is checked against its field's type
//! here, once, and reaches the page only as a typed value: `{{fields.<name>}}` in templates
//! (escaped like everything else) and a CSS custom property `--field-<name>` set through the
//! CSSOM, never pasted into CSS or script text.

use serde::Serialize;
use serde_json::{Value, json};

/// What a field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Text,
    Number,
    Slider,
    Color,
    Toggle,
    Select,
    Font,
    Image,
    Sound,
}

impl FieldType {
    const ALL: &'static str = "text, number, slider, color, toggle, select, font, image, sound";

    fn parse(s: &str) -> Option<FieldType> {
        Some(match s {
            "text" => FieldType::Text,
            "number" => FieldType::Number,
            "slider" => FieldType::Slider,
            "color" => FieldType::Color,
            "toggle" => FieldType::Toggle,
            "select" => FieldType::Select,
            "font" => FieldType::Font,
            "image" => FieldType::Image,
            "sound" => FieldType::Sound,
            _ => return None,
        })
    }
}

/// One field a theme declares.
#[derive(Clone, Debug, Serialize)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub label: String,
    pub group: String,
    /// Already valid for the field.
    pub default: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<f64>,
    /// `select`: the values allowed, with their labels.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<(String, String)>,
}

/// Longest text value.
const MAX_TEXT: usize = 200;

/// A field name: what `{{fields.<name>}}` and `--field-<name>` can carry.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The fields of a `theme.toml`'s `[fields]` table, in the order written. `Err` names the
/// field and what is wrong.
pub fn parse_schema(table: &toml::Table) -> Result<Vec<Field>, String> {
    let mut fields = Vec::new();
    for (name, spec) in table {
        let bad = |what: String| format!("[fields.{name}]: {what}");
        if !valid_name(name) {
            return Err(bad(
                "a field name is a-z, 0-9, _ and -, starting with a letter (40 at most)".into(),
            ));
        }
        let Some(spec) = spec.as_table() else {
            return Err(bad(
                "is a table: type = \"color\", label = \"…\", default = …".into(),
            ));
        };
        for key in spec.keys() {
            if ![
                "type", "label", "default", "group", "min", "max", "step", "options",
            ]
            .contains(&key.as_str())
            {
                return Err(bad(format!(
                    "unknown key `{key}`; keys are type, label, default, group, min, max, step, options"
                )));
            }
        }
        let kind = spec
            .get("type")
            .and_then(|t| t.as_str())
            .and_then(FieldType::parse)
            .ok_or_else(|| bad(format!("type is one of {}", FieldType::ALL)))?;
        let num = |key: &str| -> Result<Option<f64>, String> {
            match spec.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_float()
                    .or_else(|| v.as_integer().map(|i| i as f64))
                    .map(Some)
                    .ok_or_else(|| bad(format!("{key} is a number"))),
            }
        };
        let (min, max, step) = (num("min")?, num("max")?, num("step")?);
        if kind == FieldType::Slider && (min.is_none() || max.is_none()) {
            return Err(bad("a slider needs min and max".into()));
        }
        if let (Some(a), Some(b)) = (min, max)
            && a > b
        {
            return Err(bad("min is above max".into()));
        }
        let options = match spec.get("options") {
            None => Vec::new(),
            Some(toml::Value::Array(list)) => list
                .iter()
                .map(|v| v.as_str().map(|s| (s.to_string(), s.to_string())))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("options are strings".into()))?,
            Some(toml::Value::Table(map)) => map
                .iter()
                .map(|(k, v)| v.as_str().map(|l| (k.clone(), l.to_string())))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad("options map values to labels (strings)".into()))?,
            Some(_) => return Err(bad("options is a list or a table of labels".into())),
        };
        if kind == FieldType::Select && options.is_empty() {
            return Err(bad("a select needs options".into()));
        }
        let label = spec
            .get("label")
            .and_then(|l| l.as_str())
            .unwrap_or(name)
            .to_string();
        let group = spec
            .get("group")
            .and_then(|g| g.as_str())
            .unwrap_or("")
            .to_string();
        let mut field = Field {
            name: name.clone(),
            kind,
            label,
            group,
            default: Value::Null,
            min,
            max,
            step,
            options,
        };
        let default = spec
            .get("default")
            .ok_or_else(|| bad("needs a default".into()))?;
        let default = serde_json::to_value(default).map_err(|e| bad(e.to_string()))?;
        field.default = field
            .check(&default)
            .map_err(|e| bad(format!("default: {e}")))?;
        fields.push(field);
    }
    Ok(fields)
}

impl Field {
    /// `value` made valid for this field (a colour normalized), or what is wrong with it.
    pub fn check(&self, value: &Value) -> Result<Value, String> {
        match self.kind {
            FieldType::Text => {
                let s = value.as_str().ok_or("is text, in quotes")?;
                if s.chars().count() > MAX_TEXT {
                    return Err(format!("is at most {MAX_TEXT} characters"));
                }
                Ok(json!(s))
            }
            FieldType::Number | FieldType::Slider => {
                let n = value.as_f64().ok_or("is a number")?;
                if !n.is_finite() {
                    return Err("is a number".into());
                }
                if let Some(min) = self.min
                    && n < min
                {
                    return Err(format!("is at least {min}"));
                }
                if let Some(max) = self.max
                    && n > max
                {
                    return Err(format!("is at most {max}"));
                }
                Ok(json!(n))
            }
            FieldType::Color => {
                let s = value.as_str().ok_or("is a colour like \"#9146ff\"")?;
                color(s)
                    .map(|c| json!(c))
                    .ok_or_else(|| format!("\"{s}\" is not a colour: write #rgb, #rrggbb, #rrggbbaa or rgba(r, g, b, a)"))
            }
            FieldType::Toggle => value
                .as_bool()
                .map(|b| json!(b))
                .ok_or_else(|| "is true or false".into()),
            FieldType::Select => {
                let s = value.as_str().ok_or("is one of the options, in quotes")?;
                if self.options.iter().any(|(v, _)| v == s) {
                    Ok(json!(s))
                } else {
                    let list: Vec<&str> = self.options.iter().map(|(v, _)| v.as_str()).collect();
                    Err(format!("\"{s}\" is not one of: {}", list.join(", ")))
                }
            }
            FieldType::Font => {
                let s = value.as_str().ok_or("is a font name, in quotes")?;
                let ok = !s.trim().is_empty()
                    && s.len() <= 64
                    && s.chars()
                        .all(|c| c.is_alphanumeric() || c == ' ' || c == '-');
                if ok {
                    Ok(json!(s.trim()))
                } else {
                    Err(format!(
                        "\"{s}\" is not a font name (letters, digits, spaces and -)"
                    ))
                }
            }
            FieldType::Image | FieldType::Sound => {
                let s = value
                    .as_str()
                    .ok_or("is a file of the theme's static/ folder")?;
                let ok = !s.is_empty()
                    && s.len() <= 200
                    && !s.starts_with('/')
                    && s.split('/').all(|part| {
                        !part.is_empty()
                            && part != ".."
                            && part != "."
                            && part.chars().all(|c| {
                                c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
                            })
                    });
                if !ok {
                    return Err(format!(
                        "\"{s}\" is not a path in static/ (like images/logo.png)"
                    ));
                }
                let exts: &[&str] = if self.kind == FieldType::Image {
                    &IMAGE_EXTS
                } else {
                    &SOUND_EXTS
                };
                let ext = s
                    .rsplit('.')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if !exts.contains(&ext.as_str()) {
                    return Err(format!("\"{s}\" is not one of: {}", exts.join(", ")));
                }
                Ok(json!(s))
            }
        }
    }

    /// `value` (already checked) as the value of the CSS custom property `--field-<name>`.
    pub fn css(&self, value: &Value, theme: &str) -> String {
        match self.kind {
            FieldType::Number | FieldType::Slider => {
                let n = value.as_f64().unwrap_or(0.0);
                format!("{n}")
            }
            FieldType::Toggle => if value == &json!(true) { "1" } else { "0" }.into(),
            FieldType::Color => value.as_str().unwrap_or("transparent").to_string(),
            FieldType::Select => {
                let s = value.as_str().unwrap_or_default();
                if s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !s.is_empty() {
                    s.to_string()
                } else {
                    css_string(s)
                }
            }
            FieldType::Font => css_string(value.as_str().unwrap_or_default()),
            FieldType::Text => css_string(value.as_str().unwrap_or_default()),
            FieldType::Image | FieldType::Sound => format!(
                "url({})",
                css_string(&format!(
                    "/themes/{theme}/static/{}",
                    value.as_str().unwrap_or_default()
                ))
            ),
        }
    }
}

pub const IMAGE_EXTS: [&str; 5] = ["png", "jpg", "jpeg", "gif", "webp"];
pub const SOUND_EXTS: [&str; 3] = ["ogg", "mp3", "wav"];

/// A CSS string token: quotes, backslashes and line ends escaped.
fn css_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\u{c}' => out.push_str("\\a "),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa` or `rgb[a](r, g, b[, a])` as `#rrggbb` or
/// `#rrggbbaa` (lowercase).
pub fn color(s: &str) -> Option<String> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix('#') {
        if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let hex = hex.to_ascii_lowercase();
        return match hex.len() {
            3 | 4 => Some(format!(
                "#{}",
                hex.chars().flat_map(|c| [c, c]).collect::<String>()
            )),
            6 | 8 => Some(format!("#{hex}")),
            _ => None,
        };
    }
    let inner = s
        .strip_prefix("rgba(")
        .or_else(|| s.strip_prefix("rgb("))?
        .strip_suffix(')')?;
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    if !(parts.len() == 3 || parts.len() == 4) {
        return None;
    }
    let mut out = String::from("#");
    for p in &parts[..3] {
        let v: u8 = p.parse().ok()?;
        out.push_str(&format!("{v:02x}"));
    }
    if let Some(a) = parts.get(3) {
        let a: f64 = a.parse().ok()?;
        if !(0.0..=1.0).contains(&a) {
            return None;
        }
        out.push_str(&format!("{:02x}", (a * 255.0).round() as u8));
    }
    Some(out)
}

/// Typed text as a field's value (a URL override, a form's text input): numbers and toggles
/// from their text, everything else as the string.
pub fn from_text(field: &Field, text: &str) -> Value {
    match field.kind {
        FieldType::Number | FieldType::Slider => text
            .trim()
            .parse::<f64>()
            .map(|n| json!(n))
            .unwrap_or(json!(text)),
        FieldType::Toggle => match text.trim() {
            "true" | "1" | "on" => json!(true),
            "false" | "0" | "off" => json!(false),
            _ => json!(text),
        },
        _ => json!(text),
    }
}

/// The resolved values of `fields` given `set` (an overlay file's `[fields]`): each valid
/// value, else the default; and each problem as (field name, message).
pub fn resolve(
    fields: &[Field],
    set: &serde_json::Map<String, Value>,
) -> (serde_json::Map<String, Value>, Vec<(String, String)>) {
    let mut values = serde_json::Map::new();
    let mut problems = Vec::new();
    for f in fields {
        let value = match set.get(&f.name) {
            None => f.default.clone(),
            Some(v) => f.check(v).unwrap_or_else(|e| {
                problems.push((
                    f.name.clone(),
                    format!("fields.{} {e}; the default is used", f.name),
                ));
                f.default.clone()
            }),
        };
        values.insert(f.name.clone(), value);
    }
    for name in set.keys() {
        if !fields.iter().any(|f| &f.name == name) {
            let known: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
            problems.push((
                name.clone(),
                format!(
                    "fields.{name}: the theme has no such field; its fields are: {}",
                    if known.is_empty() {
                        "(none)".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        }
    }
    (values, problems)
}

/// The CSS custom properties of `values`: `--field-<name>` → value.
pub fn css_properties(
    fields: &[Field],
    values: &serde_json::Map<String, Value>,
    theme: &str,
) -> serde_json::Map<String, Value> {
    fields
        .iter()
        .filter_map(|f| {
            values
                .get(&f.name)
                .map(|v| (format!("--field-{}", f.name), json!(f.css(v, theme))))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(text: &str) -> Result<Vec<Field>, String> {
        let t: toml::Table = toml::from_str(text).expect("toml");
        parse_schema(t["fields"].as_table().expect("fields"))
    }

    #[test]
    fn every_type_checks_its_values() {
        let fields =
            schema(include_str!("../../tests/fixtures/theme_fields.toml")).expect("schema");
        let f = |n: &str| fields.iter().find(|f| f.name == n).expect("field");
        assert_eq!(f("accent").check(&json!("#ABC")), Ok(json!("#aabbcc")));
        assert_eq!(
            f("accent").check(&json!("rgba(255, 0, 16, 0.5)")),
            Ok(json!("#ff001080"))
        );
        assert!(
            f("accent")
                .check(&json!("red; background: url(x)"))
                .is_err()
        );
        assert!(
            f("size")
                .check(&json!(41))
                .unwrap_err()
                .contains("at most 40")
        );
        assert!(f("size").check(&json!("18")).is_err());
        assert!(
            f("align")
                .check(&json!("top"))
                .unwrap_err()
                .contains("left, center, right")
        );
        assert!(f("font").check(&json!("Comic\"; x")).is_err());
        assert!(f("logo").check(&json!("../secret.png")).is_err());
        assert!(
            f("logo").check(&json!("images/a.svg")).is_err(),
            "svg can hold script"
        );
        assert!(f("ding").check(&json!("sounds/a.png")).is_err());
        assert!(f("shadow").check(&json!("yes")).is_err());
        assert_eq!(
            f("title").css(&json!("a\"b\\c\n"), "t"),
            "\"a\\\"b\\\\c\\a \""
        );
        assert_eq!(
            f("logo").css(&json!("images/logo.png"), "neon"),
            "url(\"/themes/neon/static/images/logo.png\")"
        );
        assert_eq!(f("align").css(&json!("center"), "t"), "center");
        assert_eq!(f("shadow").css(&json!(false), "t"), "0");
        let (values, problems) = resolve(
            &fields,
            &json!({"accent": "nope", "size": 20, "ghost": 1})
                .as_object()
                .expect("map")
                .clone(),
        );
        assert_eq!(values["accent"], json!("#9146ff"), "the default meanwhile");
        assert_eq!(values["size"], json!(20.0));
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(from_text(f("size"), "22"), json!(22.0));
    }

    #[test]
    fn a_bad_schema_says_what_to_fix() {
        for (text, expect) in [
            (
                "[fields.a]\ntype = \"colour\"\ndefault = 1\n",
                "type is one of",
            ),
            (
                "[fields.a]\ntype = \"slider\"\ndefault = 1\n",
                "min and max",
            ),
            (
                "[fields.a]\ntype = \"select\"\ndefault = \"x\"\n",
                "needs options",
            ),
            ("[fields.a]\ntype = \"color\"\n", "needs a default"),
            (
                "[fields.a]\ntype = \"color\"\ndefault = \"blue\"\n",
                "default",
            ),
            (
                "[fields.A]\ntype = \"text\"\ndefault = \"\"\n",
                "a field name",
            ),
            (
                "[fields.a]\ntype = \"text\"\ndefault = \"\"\nlable = \"x\"\n",
                "unknown key `lable`",
            ),
        ] {
            let e = schema(text).unwrap_err();
            assert!(e.contains(expect), "{text}: {e}");
        }
    }
}
