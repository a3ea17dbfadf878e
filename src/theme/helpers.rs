//! Handlebars helpers for theme authors. Everything that turns untrusted text (chat, names)
//! into markup lives here, so templates never need a triple-stash: text is escaped and emote
//! `<img>` tags are built from validated ids only.

use handlebars::{
    Context, Handlebars, Helper, HelperResult, JsonRender, Output, RenderContext,
    RenderErrorReason, handlebars_helper,
};
use serde_json::Value;

/// Registers every helper on `hbs`.
pub fn register(hbs: &mut Handlebars<'static>) {
    hbs.register_helper("message", Box::new(message));
    hbs.register_helper("badges", Box::new(badges));
    hbs.register_helper("color", Box::new(ColorHelper));
    hbs.register_helper("summary", Box::new(SummaryHelper));
    hbs.register_helper("kind_class", Box::new(KindClassHelper));
    hbs.register_helper("tier", Box::new(TierHelper));
    hbs.register_helper("clock", Box::new(ClockHelper));
    hbs.register_helper("iso_time", Box::new(IsoTimeHelper));
    hbs.register_helper("plural", Box::new(PluralHelper));
}

/// HTML-escapes `s` (the same set handlebars escapes for `{{x}}`).
pub fn escape(s: &str) -> String {
    handlebars::html_escape(s)
}

/// Renders chat `elements` as escaped text and emote images.
/// `{{message data.elements}}`
fn message(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let elements = h
        .param(0)
        .map(|p| p.value())
        .ok_or(RenderErrorReason::ParamNotFoundForIndex("message", 0))?;
    out.write(&elements_html(elements))?;
    Ok(())
}

pub fn elements_html(elements: &Value) -> String {
    let mut html = String::new();
    for el in elements.as_array().into_iter().flatten() {
        match el.get("type").and_then(Value::as_str) {
            Some("emote") => {
                let id = el.get("id").and_then(Value::as_str).unwrap_or_default();
                let name = el.get("name").and_then(Value::as_str).unwrap_or_default();
                let url = el.get("url").and_then(Value::as_str).unwrap_or_default();
                match emote_url(id, url) {
                    Some(src) => html.push_str(&format!(
                        r#"<img class="emote" src="{}" alt="{}" title="{}">"#,
                        escape(&src),
                        escape(name),
                        escape(name)
                    )),
                    None => html.push_str(&escape(name)),
                }
            }
            _ => {
                let text = el.get("value").and_then(Value::as_str).unwrap_or_default();
                html.push_str(&escape(text));
            }
        }
    }
    html
}

/// Emote ids are short tokens; anything else is not an emote we build a URL for.
fn valid_emote_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The image URL of emote `id`: the given `url` only when it is exactly what one of the known
/// emote CDNs serves for that id, else Twitch's CDN (an event can carry any `url`, but only a
/// validated id reaches the page).
pub fn emote_url(id: &str, url: &str) -> Option<String> {
    if !valid_emote_id(id) {
        return None;
    }
    // Each CDN's URL of an emote is `prefix + id + suffix`; matched in place, since a chat
    // line names many emotes and a burst many lines.
    const CDNS: [(&str, &str); 11] = [
        (
            "https://static-cdn.jtvnw.net/emoticons/v2/",
            "/default/dark/1.0",
        ),
        (
            "https://static-cdn.jtvnw.net/emoticons/v2/",
            "/default/dark/2.0",
        ),
        (
            "https://static-cdn.jtvnw.net/emoticons/v2/",
            "/static/dark/1.0",
        ),
        ("https://cdn.betterttv.net/emote/", "/1x"),
        ("https://cdn.betterttv.net/emote/", "/2x"),
        ("https://cdn.frankerfacez.com/emote/", "/1"),
        ("https://cdn.frankerfacez.com/emote/", "/2"),
        ("https://cdn.7tv.app/emote/", "/1x.webp"),
        ("https://cdn.7tv.app/emote/", "/2x.webp"),
        ("https://yt3.ggpht.com/", ""),
        ("https://files.kick.com/emotes/", "/fullsize"),
    ];
    let known = CDNS.iter().any(|(prefix, suffix)| {
        url.strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            == Some(id)
    });
    Some(if known {
        url.to_string()
    } else {
        let (prefix, suffix) = CDNS[0];
        format!("{prefix}{id}{suffix}")
    })
}

/// `{{badges data.author.badges}}`: one span per badge, classed by its set.
fn badges(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let list = h.param(0).map(|p| p.value().clone()).unwrap_or(Value::Null);
    for badge in list.as_array().into_iter().flatten() {
        let set = badge.get("set").and_then(Value::as_str).unwrap_or_default();
        let version = badge
            .get("version")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if set.is_empty() {
            continue;
        }
        // Only Twitch's badge CDN, and only URL-safe characters, reach an <img>.
        let image = badge
            .get("image")
            .and_then(Value::as_str)
            .filter(|u| u.starts_with("https://static-cdn.jtvnw.net/badges/v1/"))
            .filter(|u| {
                u.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/:.-_".contains(&b))
            });
        if let Some(src) = image {
            out.write(&format!(
                r#"<img class="badge badge-img badge-{}" src="{}" alt="{}" title="{} {}">"#,
                escape(&css_token(set)),
                escape(src),
                escape(set),
                escape(set),
                escape(version)
            ))?;
            continue;
        }
        out.write(&format!(
            r#"<span class="badge badge-{}" title="{} {}"></span>"#,
            escape(&css_token(set)),
            escape(set),
            escape(version)
        ))?;
    }
    Ok(())
}

/// Keeps `[a-z0-9-]` so a value can be a CSS class.
pub fn css_token(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

handlebars_helper!(ColorHelper: |c: Value| {
    // Only #RGB / #RRGGBB reach a style attribute; anything else gets the theme's colour.
    let s = c.as_str().unwrap_or_default();
    let ok = (s.len() == 4 || s.len() == 7) && s.starts_with('#') && s[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok { s.to_string() } else { "inherit".to_string() }
});

handlebars_helper!(KindClassHelper: |k: str| css_token(k));

handlebars_helper!(TierHelper: |t: Value| tier_name(&t.render()));

handlebars_helper!(PluralHelper: |n: Value, word: str| {
    let n = n.as_f64().unwrap_or(0.0);
    if n == 1.0 { word.to_string() } else { format!("{word}s") }
});

handlebars_helper!(ClockHelper: |at: u64| {
    let secs = at / 1000;
    format!("{:02}:{:02}", (secs / 3600) % 24, (secs / 60) % 60)
});

handlebars_helper!(IsoTimeHelper: |at: u64| iso_time(at));

handlebars_helper!(SummaryHelper: |event: Value| summary(&event));

/// A Twitch sub tier ("1000", "prime") as people say it ("Tier 1", "Prime").
pub fn tier_name(tier: &str) -> String {
    match tier {
        "1000" => "Tier 1".into(),
        "2000" => "Tier 2".into(),
        "3000" => "Tier 3".into(),
        "Prime" | "prime" => "Prime".into(),
        other => other.to_string(),
    }
}

/// RFC 3339 UTC time of a millisecond timestamp, to the second.
pub fn iso_time(at_ms: u64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms.min(i64::MAX as u64) as i64)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One line of plain text describing an event (escaped by handlebars when written).
pub fn summary(event: &Value) -> String {
    let data = &event["data"];
    let s = |k: &str| data.get(k).map(|v| v.render()).unwrap_or_default();
    let user = data
        .get("user_name")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .unwrap_or("Anonymous")
        .to_string();
    let n = |k: &str| data.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    match event["kind"].as_str().unwrap_or_default() {
        "follow" => format!("{user} followed"),
        "sub" => format!("{user} subscribed ({})", tier_name(&s("tier"))),
        "resub" => format!("{user} resubscribed for {} months", s("months")),
        "subgift" => format!("{user} gifted a sub to {}", s("recipient_name")),
        "giftbomb" => {
            let total = n("total");
            let subs = if total == 1.0 { "sub" } else { "subs" };
            format!("{user} gifted {} {subs}", s("total"))
        }
        "cheer" => format!("{user} cheered {} bits", s("bits")),
        "raid" => format!("{user} raided with {} viewers", s("viewers")),
        "redemption" => format!("{user} redeemed {}", data["reward"]["title"].render()),
        "announcement" => format!("Announcement: {}", s("text")),
        "stream.online" => "Stream went live".into(),
        "stream.offline" => "Stream ended".into(),
        "hypetrain.begin" => "Hype train started!".into(),
        "hypetrain.progress" => format!("Hype train level {}", s("level")),
        "hypetrain.end" => format!("Hype train ended at level {}", s("level")),
        "gift" => {
            let count = n("count");
            if count > 1.0 {
                format!("{user} sent {} × {}", s("gift_name"), s("count"))
            } else {
                format!("{user} sent {}", s("gift_name"))
            }
        }
        "tip" => match data["type"].as_str() {
            Some("supersticker") => format!("{user} sent a {} Super Sticker", s("formatted")),
            Some("kicks") => format!("{user} sent {}", s("formatted")),
            _ => format!("{user} sent a {} Super Chat", s("formatted")),
        },
        "poll.begin" => format!("Poll: {}", s("title")),
        "poll.progress" => format!("Poll: {}", s("title")),
        "poll.end" => format!("Poll ended: {}", s("title")),
        "prediction.begin" | "prediction.progress" => format!("Prediction: {}", s("title")),
        "prediction.lock" => format!("Prediction locked: {}", s("title")),
        "prediction.end" => format!("Prediction ended: {}", s("title")),
        "chat.message" => format!("{}: {}", data["author"]["display_name"].render(), s("text")),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_is_escaped_and_emotes_are_images() {
        let els = json!([
            {"type": "text", "value": "<img src=x onerror=alert(1)> "},
            {"type": "emote", "id": "25", "name": "Kappa", "url": "javascript:alert(1)"}
        ]);
        let html = elements_html(&els);
        assert!(
            html.starts_with("&lt;img src&#x3D;x onerror&#x3D;alert(1)&gt; "),
            "{html}"
        );
        assert!(html.contains(
            r#"<img class="emote" src="https://static-cdn.jtvnw.net/emoticons/v2/25/default/dark/1.0" alt="Kappa""#
        ), "{html}");
        assert!(!html.contains("javascript"));
    }

    #[test]
    fn an_emote_with_a_bad_id_is_text() {
        let els = json!([{"type": "emote", "id": "\"><script>", "name": "<b>", "url": ""}]);
        assert_eq!(elements_html(&els), "&lt;b&gt;");
    }

    #[test]
    fn known_cdn_urls_are_kept() {
        let url = "https://cdn.betterttv.net/emote/5e76d338d6581c3724c0f0b2/1x";
        assert_eq!(
            emote_url("5e76d338d6581c3724c0f0b2", url).as_deref(),
            Some(url)
        );
    }

    #[test]
    fn an_emote_url_is_kept_only_when_a_cdn_serves_that_id_there() {
        let id = "abc_1-Z";
        for url in [
            "https://static-cdn.jtvnw.net/emoticons/v2/abc_1-Z/default/dark/2.0",
            "https://static-cdn.jtvnw.net/emoticons/v2/abc_1-Z/static/dark/1.0",
            "https://cdn.frankerfacez.com/emote/abc_1-Z/2",
            "https://cdn.7tv.app/emote/abc_1-Z/1x.webp",
            "https://yt3.ggpht.com/abc_1-Z",
            "https://files.kick.com/emotes/abc_1-Z/fullsize",
        ] {
            assert_eq!(emote_url(id, url).as_deref(), Some(url));
        }
        let twitch = "https://static-cdn.jtvnw.net/emoticons/v2/abc_1-Z/default/dark/1.0";
        for url in [
            "",
            "https://cdn.7tv.app/emote/other/1x.webp",
            "https://cdn.7tv.app/emote/abc_1-Z/1x.webp?x",
            "https://evil.example/emote/abc_1-Z/1x",
            "https://yt3.ggpht.com/abc_1-Z/more",
        ] {
            assert_eq!(emote_url(id, url).as_deref(), Some(twitch), "{url}");
        }
    }

    #[test]
    fn iso_time_formats_utc() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_time(1_763_900_000_000), "2025-11-23T12:13:20Z");
    }

    #[test]
    fn summaries_read_naturally() {
        let e = json!({"kind": "giftbomb", "data": {"user_name": "Ann", "total": 5}});
        assert_eq!(summary(&e), "Ann gifted 5 subs");
        let e = json!({"kind": "cheer", "data": {"user_name": null, "bits": 100}});
        assert_eq!(summary(&e), "Anonymous cheered 100 bits");
    }
}
