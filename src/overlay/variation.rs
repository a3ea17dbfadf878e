//! Alert variations: which look, sound and length an alert gets, chosen by conditions on the
//! event (kind, platform, tier, months, streak, gift count, amount, "largest this session").
//! The most specific match wins; among equally specific ones the choice is weighted and
//! follows from the event's id, so every page, a re-render and a replay agree.

use serde_json::{Value, json};

use crate::event::{Event, Kind, Platform};

/// One `[[options.variations]]` entry, checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Variation {
    pub kind: Option<Kind>,
    pub platform: Option<String>,
    /// `"1000"`, `"2000"`, `"3000"`, `"prime"` or `"member"`.
    pub tier: Option<String>,
    /// At least this many months (a resub; a YouTube membership milestone).
    pub months: Option<f64>,
    /// At least this long a streak: a resub's streak months, a TikTok gift streak's count.
    pub streak: Option<f64>,
    /// At least this many gifts at once: a gift bomb's total, a platform gift's count.
    pub gifts: Option<f64>,
    pub min: Option<f64>,
    pub exact: Option<f64>,
    pub max: Option<f64>,
    /// Amounts in this currency's own units (`"JPY"`, `"KICKS"`); only events in it match.
    pub currency: Option<String>,
    /// Only the largest of its kind this session (a cheer, a gift, money, a raid).
    pub largest: bool,
    pub weight: f64,
    pub template: Option<String>,
    /// A file of the theme (`sounds/big.wav`).
    pub sound: Option<String>,
    pub volume: Option<f64>,
    pub duration_s: Option<f64>,
    /// Seconds before the alert's message shows (`.alert-message`).
    pub text_delay_s: Option<f64>,
}

const KEYS: &[&str] = &[
    "kind",
    "platform",
    "tier",
    "months",
    "streak",
    "gifts",
    "min",
    "exact",
    "max",
    "currency",
    "largest",
    "weight",
    "template",
    "sound",
    "volume",
    "duration_s",
    "text_delay_s",
];

/// A theme file name or template name: no folders up, no odd characters.
fn safe_name(name: &str, slash: bool) -> bool {
    !name.is_empty()
        && !name.contains("..")
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' || (slash && b == b'/')
        })
}

impl Variation {
    /// Every variation in `options["variations"]`, or what is wrong with the first bad one
    /// (`variations[2]: …`).
    pub fn all(options: &Value) -> Result<Vec<Variation>, String> {
        let list = match &options["variations"] {
            Value::Null => return Ok(Vec::new()),
            Value::Array(list) => list,
            _ => return Err("variations is a list of tables".into()),
        };
        list.iter()
            .enumerate()
            .map(|(i, v)| Variation::parse(v).map_err(|e| format!("variations[{i}]: {e}")))
            .collect()
    }

    fn parse(v: &Value) -> Result<Variation, String> {
        let Value::Object(o) = v else {
            return Err("each variation is a table like { kind = \"cheer\", min = 1000, template = \"cheer-big\" }".into());
        };
        if let Some(k) = o.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!("unknown key `{k}`; keys are {}", KEYS.join(", ")));
        }
        let text = |k: &str| -> Result<Option<String>, String> {
            match o.get(k) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(format!("`{k}` is a string, not {other}")),
            }
        };
        let number = |k: &str| -> Result<Option<f64>, String> {
            match o.get(k) {
                None => Ok(None),
                Some(v) => v
                    .as_f64()
                    .filter(|n| *n >= 0.0)
                    .map(Some)
                    .ok_or_else(|| format!("`{k}` is a number of 0 or more, not {v}")),
            }
        };
        let kind = match text("kind")? {
            Some(k) => Some(k.parse::<Kind>().map_err(|e| e.to_string())?),
            None => return Err("a variation needs a `kind`, e.g. kind = \"cheer\"".into()),
        };
        let platform = text("platform")?;
        if let Some(p) = &platform {
            let names = Platform::ALL.map(Platform::as_str);
            if !names.contains(&p.as_str()) {
                return Err(format!(
                    "platform = \"{p}\": platforms are {}",
                    names.join(", ")
                ));
            }
        }
        let tier = text("tier")?.map(|t| normal_tier(&t)).transpose()?;
        let template = text("template")?;
        if template.as_deref().is_some_and(|t| !safe_name(t, false)) {
            return Err(
                "`template` names a file of the theme's templates/alerts/, like \"cheer-big\""
                    .into(),
            );
        }
        let sound = text("sound")?;
        if sound.as_deref().is_some_and(|s| !safe_name(s, true)) {
            return Err(
                "`sound` is a file in the theme's static/ folder, like \"sounds/big.wav\"".into(),
            );
        }
        let largest = match o.get("largest") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => return Err(format!("`largest` is true or false, not {other}")),
        };
        let variation = Variation {
            kind,
            platform,
            tier,
            months: number("months")?,
            streak: number("streak")?,
            gifts: number("gifts")?,
            min: number("min")?,
            exact: number("exact")?,
            max: number("max")?,
            currency: text("currency")?.map(|c| c.to_uppercase()),
            largest,
            weight: number("weight")?.unwrap_or(1.0),
            template,
            sound,
            volume: number("volume")?,
            duration_s: number("duration_s")?,
            text_delay_s: number("text_delay_s")?,
        };
        if variation.volume.is_some_and(|v| v > 1.0) {
            return Err("`volume` is from 0 to 1".into());
        }
        if variation.template.is_none()
            && variation.sound.is_none()
            && variation.volume.is_none()
            && variation.duration_s.is_none()
            && variation.text_delay_s.is_none()
        {
            return Err("a variation changes something: template, sound, volume, duration_s or text_delay_s".into());
        }
        Ok(variation)
    }

    /// How many conditions it sets besides its kind: more is more specific. `exact` counts
    /// twice: it bounds the amount from both sides, like `min` with `max`.
    pub fn specificity(&self) -> usize {
        usize::from(self.exact.is_some())
            + [
                self.platform.is_some(),
                self.tier.is_some(),
                self.months.is_some(),
                self.streak.is_some(),
                self.gifts.is_some(),
                self.min.is_some(),
                self.exact.is_some(),
                self.max.is_some(),
                self.currency.is_some(),
                self.largest,
            ]
            .into_iter()
            .filter(|c| *c)
            .count()
    }

    /// Whether `event` meets every condition (`largest`: it is the largest of its kind so far
    /// this session).
    pub fn matches(&self, event: &Event, largest: bool) -> bool {
        let d = &event.data;
        let num = |k: &str| crate::money::number(&d[k]);
        if self.kind != Some(event.kind) {
            return false;
        }
        if self.platform.as_ref().is_some_and(|p| *p != event.platform) {
            return false;
        }
        if let Some(t) = &self.tier {
            let tier = d["tier"]
                .as_str()
                .map(|t| normal_tier(t).unwrap_or_default());
            if tier.as_deref() != Some(t.as_str()) {
                return false;
            }
        }
        if self.months.is_some_and(|m| num("months") < m) {
            return false;
        }
        if let Some(s) = self.streak {
            let streak = match event.kind {
                Kind::Gift => num("count"),
                _ => num("streak_months"),
            };
            if streak < s {
                return false;
            }
        }
        if let Some(g) = self.gifts
            && gifts(event).is_none_or(|n| n < g)
        {
            return false;
        }
        if self.min.is_some() || self.exact.is_some() || self.max.is_some() {
            let Some(a) = amount(event, self.currency.as_deref()) else {
                return false;
            };
            if self.min.is_some_and(|m| a < m)
                || self.max.is_some_and(|m| a > m)
                || self.exact.is_some_and(|e| (a - e).abs() > 1e-9)
            {
                return false;
            }
        } else if let Some(c) = &self.currency
            && d["currency"].as_str() != Some(c.as_str())
        {
            return false;
        }
        !self.largest || largest
    }

    /// Why this variation can never match on an overlay showing `kinds` of `platforms` (empty:
    /// every platform), if it cannot.
    pub fn never(&self, shows: impl Fn(Kind) -> bool, platforms: &[String]) -> Option<String> {
        let kind = self.kind?;
        let k = kind.as_str();
        if !shows(kind) {
            return Some(format!("this overlay does not show {k} events"));
        }
        if let Some(p) = &self.platform
            && !platforms.is_empty()
            && !platforms.contains(p)
        {
            return Some(format!("this overlay does not show {p}'s events"));
        }
        let has_tier = matches!(
            kind,
            Kind::Sub | Kind::Resub | Kind::SubGift | Kind::GiftBomb
        );
        if self.tier.is_some() && !has_tier {
            return Some(format!("{k} events have no tier"));
        }
        if self.months.is_some() && kind != Kind::Resub {
            return Some(format!("{k} events have no months (resubs do)"));
        }
        if self.streak.is_some() && !matches!(kind, Kind::Resub | Kind::Gift) {
            return Some(format!("{k} events have no streak (resubs and gifts do)"));
        }
        if self.gifts.is_some() && !matches!(kind, Kind::GiftBomb | Kind::SubGift | Kind::Gift) {
            return Some(format!("{k} events have no gift count"));
        }
        let has_amount = matches!(
            kind,
            Kind::Cheer
                | Kind::Raid
                | Kind::GiftBomb
                | Kind::SubGift
                | Kind::Resub
                | Kind::Tip
                | Kind::Gift
        );
        if (self.min.is_some() || self.exact.is_some() || self.max.is_some()) && !has_amount {
            return Some(format!("{k} events have no amount"));
        }
        if self.currency.is_some() && !matches!(kind, Kind::Tip | Kind::Gift) {
            return Some(format!("{k} events have no currency (tips and gifts do)"));
        }
        if self.largest
            && !matches!(
                kind,
                Kind::Cheer | Kind::Raid | Kind::GiftBomb | Kind::SubGift | Kind::Tip | Kind::Gift
            )
        {
            return Some(format!(
                "there is no largest {k} (cheers, raids, gifts and tips have one)"
            ));
        }
        if let (Some(lo), Some(hi)) = (self.min, self.max)
            && lo > hi
        {
            return Some(format!("min = {lo} is above max = {hi}"));
        }
        if let Some(e) = self.exact
            && (self.min.is_some_and(|m| e < m) || self.max.is_some_and(|m| e > m))
        {
            return Some(format!("exact = {e} is outside min and max"));
        }
        None
    }
}

/// A tier as written (`1`, `tier1`, `1000`, `prime`, `member`) as events carry it.
fn normal_tier(t: &str) -> Result<String, String> {
    Ok(match t.to_lowercase().trim_start_matches("tier").trim() {
        "1" | "1000" => "1000".into(),
        "2" | "2000" => "2000".into(),
        "3" | "3000" => "3000".into(),
        "prime" => "prime".into(),
        "member" => "member".into(),
        other => {
            return Err(format!(
                "tier = \"{other}\": tiers are 1, 2, 3, prime and member (YouTube)"
            ));
        }
    })
}

/// Gifts at once: a gift bomb's total, one gifted sub, a platform gift streak's count.
fn gifts(event: &Event) -> Option<f64> {
    let d = &event.data;
    match event.kind {
        Kind::GiftBomb => Some(crate::money::number(&d["total"])),
        Kind::SubGift => Some(1.0),
        Kind::Gift => Some(crate::money::number(&d["count"]).max(1.0)),
        _ => None,
    }
}

/// What `min`, `exact` and `max` compare, by kind: bits, viewers, gifts, months; for tips and
/// gifts the comparable value (about US dollars), or with `currency` the amount in that
/// currency (only for events in it).
pub fn amount(event: &Event, currency: Option<&str>) -> Option<f64> {
    let d = &event.data;
    let n = |k: &str| crate::money::number(&d[k]);
    match event.kind {
        Kind::Cheer => Some(n("bits")),
        Kind::Raid => Some(n("viewers")),
        Kind::GiftBomb | Kind::SubGift => gifts(event),
        Kind::Resub => Some(n("months")),
        Kind::Tip | Kind::Gift => match currency {
            Some(c) => (d["currency"].as_str() == Some(c)).then(|| n("amount")),
            None => crate::money::of(event).map(|m| m.value),
        },
        _ => None,
    }
}

/// A number in [0, 1) that follows from `id` alone (splitmix64): the weighted choice among
/// equal matches, the same on every page and every render of the event.
fn unit(id: u64) -> f64 {
    let mut z = id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// The variation `event` gets among `variations`: the most specific match, weighted among
/// equals; `None` when none matches.
pub fn choose<'a>(
    variations: &'a [Variation],
    event: &Event,
    largest: bool,
) -> Option<&'a Variation> {
    let matching: Vec<&Variation> = variations
        .iter()
        .filter(|v| v.matches(event, largest))
        .collect();
    let best = matching.iter().map(|v| v.specificity()).max()?;
    let ties: Vec<&Variation> = matching
        .into_iter()
        .filter(|v| v.specificity() == best)
        .collect();
    let total: f64 = ties.iter().map(|v| v.weight).sum();
    if total <= 0.0 {
        return ties.first().copied();
    }
    let mut pick = unit(event.id) * total;
    for v in &ties {
        if pick < v.weight {
            return Some(v);
        }
        pick -= v.weight;
    }
    ties.last().copied()
}

/// The variation of an alert overlay with `options` for `event`.
pub fn of(options: &Value, event: &Event, largest: bool) -> Option<Variation> {
    let all = Variation::all(options).ok()?;
    choose(&all, event, largest).cloned()
}

/// What an alert's page state says of its variation: sound, volume and text delay.
pub fn page_json(v: Option<&Variation>, theme: &str) -> Value {
    let Some(v) = v else {
        return json!({});
    };
    json!({
        "sound_url": v.sound.as_ref().map(|s| format!("/themes/{theme}/static/{s}")),
        "volume": v.volume,
        "text_delay_ms": v.text_delay_s.map(|s| (s * 1000.0).round() as u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: Kind, id: u64, data: Value) -> Event {
        let mut e = Event::new(Platform::Twitch, "c", kind, data);
        e.id = id;
        e
    }

    fn variations(list: Value) -> Vec<Variation> {
        Variation::all(&json!({ "variations": list })).expect("valid")
    }

    #[test]
    fn the_most_specific_match_wins() {
        let v = variations(json!([
            {"kind": "cheer", "template": "any"},
            {"kind": "cheer", "min": 100, "template": "hundred"},
            {"kind": "cheer", "min": 1000, "max": 4999, "template": "thousand"},
            {"kind": "cheer", "exact": 5000, "template": "five-k"},
            {"kind": "cheer", "largest": true, "min": 100, "template": "record"},
            {"kind": "resub", "tier": "3", "months": 12, "template": "loyal"},
        ]));
        let pick = |kind, data, largest| {
            choose(&v, &ev(kind, 7, data), largest).and_then(|v| v.template.clone())
        };
        assert_eq!(
            pick(Kind::Cheer, json!({"bits": 50}), false).as_deref(),
            Some("any")
        );
        assert_eq!(
            pick(Kind::Cheer, json!({"bits": 500}), false).as_deref(),
            Some("hundred")
        );
        assert_eq!(
            pick(Kind::Cheer, json!({"bits": 1500}), false).as_deref(),
            Some("thousand")
        );
        assert_eq!(
            pick(Kind::Cheer, json!({"bits": 5000}), false).as_deref(),
            Some("five-k")
        );
        // Two conditions beat one: the session's largest cheer over "100 or more".
        assert_eq!(
            pick(Kind::Cheer, json!({"bits": 500}), true).as_deref(),
            Some("record")
        );
        let resub = |tier, months| json!({"tier": tier, "months": months});
        assert_eq!(
            pick(Kind::Resub, resub("3000", 12), false).as_deref(),
            Some("loyal")
        );
        assert_eq!(pick(Kind::Resub, resub("3000", 11), false), None);
        assert_eq!(pick(Kind::Resub, resub("1000", 24), false), None);
    }

    #[test]
    fn ties_are_chosen_by_weight_and_the_same_every_time() {
        let v = variations(json!([
            {"kind": "follow", "template": "a", "weight": 3},
            {"kind": "follow", "template": "b"},
        ]));
        let n = 20_000u64;
        let a = (1..=n)
            .filter(|id| {
                let e = ev(Kind::Follow, id * 7919 + 1_796_000_000_000_000, json!({}));
                choose(&v, &e, false).and_then(|v| v.template.as_deref()) == Some("a")
            })
            .count() as f64
            / n as f64;
        assert!((a - 0.75).abs() < 0.02, "{a}");
        let e = ev(Kind::Follow, 42, json!({}));
        let first = choose(&v, &e, false).cloned();
        assert!((0..10).all(|_| choose(&v, &e, false).cloned() == first));
    }

    #[test]
    fn amounts_compare_across_currencies_as_documented() {
        let v = variations(json!([
            {"kind": "tip", "min": 5, "max": 20, "template": "mid"},
            {"kind": "tip", "currency": "JPY", "min": 10000, "template": "yen"},
        ]));
        let tip = |amount: f64, currency: &str| {
            let data = crate::money::tip_of(
                &json!({"author": {}, "monetary": {"amount": amount, "currency": currency}}),
            )
            .expect("tip");
            ev(Kind::Tip, 1, data)
        };
        let pick = |e: &Event| choose(&v, e, false).and_then(|v| v.template.clone());
        // ¥1,000 is about $6.70: in the $5-20 range.
        assert_eq!(pick(&tip(1000.0, "JPY")).as_deref(), Some("mid"));
        assert_eq!(pick(&tip(10.0, "EUR")).as_deref(), Some("mid"));
        assert_eq!(pick(&tip(50.0, "USD")), None);
        // ¥10,000 is $67, above the range, but the yen variation counts yen.
        assert_eq!(pick(&tip(10000.0, "JPY")).as_deref(), Some("yen"));
        // ₩100,000 is about $73: above the range, and not in yen.
        assert_eq!(pick(&tip(100_000.0, "KRW")), None);
    }

    #[test]
    fn impossible_variations_are_named_and_bad_ones_refused() {
        let never = |v: Value| {
            variations(json!([v]))[0].never(|k| k != Kind::Redemption, &["twitch".to_string()])
        };
        assert!(
            never(json!({"kind": "follow", "min": 5, "template": "x"}))
                .is_some_and(|w| w.contains("no amount"))
        );
        assert!(
            never(json!({"kind": "redemption", "template": "x"}))
                .is_some_and(|w| w.contains("does not show"))
        );
        assert!(never(json!({"kind": "cheer", "platform": "kick", "template": "x"})).is_some());
        assert!(never(json!({"kind": "cheer", "min": 10, "max": 5, "template": "x"})).is_some());
        assert!(never(json!({"kind": "cheer", "tier": "1", "template": "x"})).is_some());
        assert_eq!(
            never(json!({"kind": "cheer", "min": 10, "template": "x"})),
            None
        );
        for (bad, says) in [
            (json!({"kind": "cheer"}), "changes something"),
            (
                json!({"kind": "cheer", "colour": "red", "template": "x"}),
                "unknown key `colour`",
            ),
            (
                json!({"kind": "cheer", "tier": "gold", "template": "x"}),
                "tiers are",
            ),
            (json!({"kind": "cheer", "sound": "../x.wav"}), "static/"),
            (json!({"min": 5, "template": "x"}), "needs a `kind`"),
        ] {
            let e = Variation::all(&json!({"variations": [bad]})).expect_err("refused");
            assert!(e.contains(says), "{e}");
        }
    }
}
