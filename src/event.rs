//! The one event type that crosses modules: what happened, on which channel, with its data.
//! Sources (Twitch edge, demo, the emulate API) build these; the bus stamps the id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Every kind of event the bus carries. The string form is part of the wire contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    #[serde(rename = "chat.message")]
    ChatMessage,
    #[serde(rename = "chat.delete")]
    ChatDelete,
    #[serde(rename = "chat.clear")]
    ChatClear,
    #[serde(rename = "follow")]
    Follow,
    #[serde(rename = "sub")]
    Sub,
    #[serde(rename = "resub")]
    Resub,
    #[serde(rename = "subgift")]
    SubGift,
    #[serde(rename = "giftbomb")]
    GiftBomb,
    #[serde(rename = "cheer")]
    Cheer,
    #[serde(rename = "raid")]
    Raid,
    #[serde(rename = "redemption")]
    Redemption,
    #[serde(rename = "announcement")]
    Announcement,
    #[serde(rename = "stream.online")]
    StreamOnline,
    #[serde(rename = "stream.offline")]
    StreamOffline,
    #[serde(rename = "hypetrain.begin")]
    HypeTrainBegin,
    #[serde(rename = "hypetrain.progress")]
    HypeTrainProgress,
    #[serde(rename = "hypetrain.end")]
    HypeTrainEnd,
    /// A platform's own gift (TikTok's: one event per streak), worth `amount` of `currency`.
    #[serde(rename = "gift")]
    Gift,
    /// Money sent with a chat line: a YouTube Super Chat or Super Sticker, Kick's Kicks. The
    /// chat line itself still shows in chat (with its `monetary`); this is what alerts.
    #[serde(rename = "tip")]
    Tip,
    #[serde(rename = "poll.begin")]
    PollBegin,
    #[serde(rename = "poll.progress")]
    PollProgress,
    #[serde(rename = "poll.end")]
    PollEnd,
    #[serde(rename = "prediction.begin")]
    PredictionBegin,
    #[serde(rename = "prediction.progress")]
    PredictionProgress,
    #[serde(rename = "prediction.lock")]
    PredictionLock,
    #[serde(rename = "prediction.end")]
    PredictionEnd,
}

impl Kind {
    pub const ALL: [Kind; 26] = [
        Kind::ChatMessage,
        Kind::ChatDelete,
        Kind::ChatClear,
        Kind::Follow,
        Kind::Sub,
        Kind::Resub,
        Kind::SubGift,
        Kind::GiftBomb,
        Kind::Cheer,
        Kind::Raid,
        Kind::Redemption,
        Kind::Announcement,
        Kind::StreamOnline,
        Kind::StreamOffline,
        Kind::HypeTrainBegin,
        Kind::HypeTrainProgress,
        Kind::HypeTrainEnd,
        Kind::Gift,
        Kind::Tip,
        Kind::PollBegin,
        Kind::PollProgress,
        Kind::PollEnd,
        Kind::PredictionBegin,
        Kind::PredictionProgress,
        Kind::PredictionLock,
        Kind::PredictionEnd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ChatMessage => "chat.message",
            Kind::ChatDelete => "chat.delete",
            Kind::ChatClear => "chat.clear",
            Kind::Follow => "follow",
            Kind::Sub => "sub",
            Kind::Resub => "resub",
            Kind::SubGift => "subgift",
            Kind::GiftBomb => "giftbomb",
            Kind::Cheer => "cheer",
            Kind::Raid => "raid",
            Kind::Redemption => "redemption",
            Kind::Announcement => "announcement",
            Kind::StreamOnline => "stream.online",
            Kind::StreamOffline => "stream.offline",
            Kind::HypeTrainBegin => "hypetrain.begin",
            Kind::HypeTrainProgress => "hypetrain.progress",
            Kind::HypeTrainEnd => "hypetrain.end",
            Kind::Gift => "gift",
            Kind::Tip => "tip",
            Kind::PollBegin => "poll.begin",
            Kind::PollProgress => "poll.progress",
            Kind::PollEnd => "poll.end",
            Kind::PredictionBegin => "prediction.begin",
            Kind::PredictionProgress => "prediction.progress",
            Kind::PredictionLock => "prediction.lock",
            Kind::PredictionEnd => "prediction.end",
        }
    }

    /// The kinds as one comma-separated list, for error messages.
    pub fn list() -> String {
        Kind::ALL.map(Kind::as_str).join(", ")
    }

    /// Chat traffic, as opposed to the channel events an alert box or recent-events list shows.
    pub fn is_chat(self) -> bool {
        matches!(self, Kind::ChatMessage | Kind::ChatDelete | Kind::ChatClear)
    }

    /// Index into a 32-bit kind set.
    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown event kind \"{0}\"; kinds are: {list}", list = Kind::list())]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_string()))
    }
}

/// A set of kinds in one word: overlays filter every event through one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindSet(u32);

impl KindSet {
    pub const ALL: KindSet = KindSet(u32::MAX);
    pub const NONE: KindSet = KindSet(0);

    pub fn contains(self, kind: Kind) -> bool {
        self.0 & kind.bit() != 0
    }

    pub fn with(self, kind: Kind) -> KindSet {
        KindSet(self.0 | kind.bit())
    }

    pub fn union(self, other: KindSet) -> KindSet {
        KindSet(self.0 | other.0)
    }
}

impl FromIterator<Kind> for KindSet {
    fn from_iter<I: IntoIterator<Item = Kind>>(iter: I) -> Self {
        iter.into_iter().fold(KindSet::NONE, KindSet::with)
    }
}

/// Where an event came from. Part of the wire contract (`platform`).
/// Where an event came from. Every source names its own when it makes an event; there is no
/// default for another platform to overwrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    Twitch,
    Youtube,
    Kick,
    Tiktok,
}

impl Platform {
    pub const ALL: [Platform; 4] = [
        Platform::Twitch,
        Platform::Youtube,
        Platform::Kick,
        Platform::Tiktok,
    ];

    /// The name in `event.platform` and in overlays' `platforms = [...]`.
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Twitch => "twitch",
            Platform::Youtube => "youtube",
            Platform::Kick => "kick",
            Platform::Tiktok => "tiktok",
        }
    }
}

/// An event as it travels through the bus. `id` is 0 until the bus stamps it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Event {
    pub id: u64,
    pub kind: Kind,
    pub channel: String,
    pub platform: String,
    /// Milliseconds since the Unix epoch when the event happened (or was received).
    pub at: u64,
    pub data: Value,
    /// Seeded from history (e.g. recent followers fetched at start): listed, never alerted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub history: bool,
    /// Sent again from a recording (a rehearsal): shown and alerted, never counted in stats or
    /// goals.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replay: bool,
}

impl Event {
    /// A new event of `platform` on our `channel`, happening now (id 0 until published).
    pub fn new(platform: Platform, channel: impl Into<String>, kind: Kind, data: Value) -> Event {
        Event {
            id: 0,
            kind,
            channel: normalize_channel(&channel.into()),
            platform: platform.as_str().to_string(),
            at: now_ms(),
            data,
            history: false,
            replay: false,
        }
    }
}

/// Whether an image URL from a platform may reach an `<img src>` (emotes, badges, stickers,
/// the chat socket's `rawHtml`): https, and nothing that could leave the attribute or the URL.
pub fn safe_image_url(url: &str) -> bool {
    url.strip_prefix("https://").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '<' | '>' | '\\' | '`'))
    })
}

/// Channel names are Twitch logins: lowercase, no leading `#`.
pub fn normalize_channel(name: &str) -> String {
    name.trim().trim_start_matches('#').to_ascii_lowercase()
}

/// A channel name must be a Twitch login: 1 to 25 characters of `a-z`, `0-9`, `_`.
pub fn valid_channel(name: &str) -> bool {
    (1..=25).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One piece of a chat message: plain text, or an emote image.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Element {
    Text {
        value: String,
    },
    Emote {
        id: String,
        name: String,
        url: String,
    },
}

/// The author of a chat message, as the `chat.message` contract describes it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Author {
    pub id: String,
    pub login: String,
    pub display_name: String,
    pub color: Option<String>,
    pub roles: Roles,
    pub badges: Vec<Badge>,
    /// The author's picture (https), where the platform gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Roles {
    pub broadcaster: bool,
    pub moderator: bool,
    pub vip: bool,
    pub subscriber: bool,
    /// A verified account (YouTube's and Kick's check mark).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verified: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Badge {
    pub set: String,
    pub version: String,
    /// The badge's image on Twitch's CDN, when known (Helix lists them for logged-in servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// What the platform calls it, as it shows it (may be in the viewer's language).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Reply {
    pub message_id: String,
    pub user_login: String,
    pub display_name: String,
    pub text: String,
}

/// `chat.message` data, typed for the sources that build it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChatMessage {
    pub message_id: String,
    pub author: Author,
    pub text: String,
    pub elements: Vec<Element>,
    pub is_action: bool,
    pub bits: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<Reply>,
    /// Money attached to the message: a YouTube Super Chat or Super Sticker, Kick's Kicks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monetary: Option<Monetary>,
    /// A YouTube Super Sticker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticker: Option<Sticker>,
    /// The author's first message in the channel ever (Twitch's `first-msg` tag).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first_message: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Monetary {
    /// The amount in the currency's units (1000 for "¥1,000", 5.5 for "$5.50").
    pub amount: f64,
    /// ISO 4217 code where known ("JPY"), else the platform's own unit ("KICKS") or symbol.
    pub currency: String,
    /// As the platform showed it ("￥1,000").
    pub formatted: String,
    /// The platform's colour for this tier (`#rrggbb`), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Sticker {
    pub url: String,
    pub alt: String,
}

/// The fields a kind's templates may use, with the value each gets when it is not sent. Also
/// the shape [`check_types`] holds sent data to: a `null` here takes any value.
fn defaults(kind: Kind, data: &Map<String, Value>) -> Value {
    let text_of = |k: &str| {
        data.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let user = text_of("user_name")
        .or_else(|| text_of("user_login"))
        .unwrap_or("TestUser")
        .to_string();
    let login = text_of("user_login")
        .map(str::to_string)
        .unwrap_or_else(|| login_of(&user));
    match kind {
        Kind::ChatMessage => {
            let text = text_of("text").unwrap_or("Hello chat!").to_string();
            let author = data.get("author").and_then(Value::as_object);
            let a = |k: &str| {
                author
                    .and_then(|a| a.get(k))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            };
            // What most bots know is a name: the login follows from it, or the reverse.
            let display = a("display_name")
                .or_else(|| a("login"))
                .or_else(|| text_of("user_name"))
                .unwrap_or("TestUser")
                .to_string();
            let author_login = a("login")
                .map(str::to_string)
                .unwrap_or_else(|| login_of(&display));
            json!({
                "message_id": format!("test-{}", rand::random::<u64>()),
                "author": {
                    "id": format!("test-{author_login}"), "login": author_login, "display_name": display,
                    "color": null,
                    "roles": {"broadcaster": false, "moderator": false, "vip": false, "subscriber": false},
                    "badges": []
                },
                "text": text,
                "elements": [{"type": "text", "value": text}],
                "is_action": false,
                "bits": 0,
            })
        }
        Kind::ChatDelete => json!({"message_id": "", "user_login": login}),
        Kind::ChatClear => json!({"user_login": null, "duration_s": null}),
        Kind::Follow => json!({"user_name": user, "user_login": login}),
        Kind::Sub => {
            json!({"user_name": user, "user_login": login, "tier": "1000", "is_gift": false})
        }
        Kind::Resub => json!({
            "user_name": user, "user_login": login, "tier": "1000", "months": 3,
            "streak_months": null, "message": ""
        }),
        Kind::SubGift => json!({
            "user_name": user, "user_login": login, "tier": "1000",
            "recipient_name": "Recipient", "recipient_login": "recipient", "giftbomb_id": null
        }),
        Kind::GiftBomb => json!({
            "user_name": user, "user_login": login, "tier": "1000", "total": 5,
            "cumulative_total": null, "is_anonymous": false, "giftbomb_id": null
        }),
        Kind::Cheer => json!({
            "user_name": user, "user_login": login, "bits": 100, "message": "", "is_anonymous": false
        }),
        Kind::Raid => json!({"user_name": user, "user_login": login, "viewers": 10}),
        Kind::Redemption => json!({
            "user_name": user, "user_login": login, "reward": {"id": "test", "title": "Hydrate", "cost": 100},
            "user_input": ""
        }),
        Kind::Announcement => {
            json!({"user_name": user, "user_login": login, "text": "Announcement!", "color": "PRIMARY"})
        }
        Kind::StreamOnline => json!({"type": "live"}),
        Kind::StreamOffline => json!({}),
        Kind::HypeTrainBegin | Kind::HypeTrainProgress => {
            json!({"level": 1, "total": 100, "progress": 100, "goal": 1000})
        }
        Kind::HypeTrainEnd => json!({"level": 1, "total": 100}),
        Kind::PollBegin | Kind::PollProgress | Kind::PollEnd => json!({
            "poll_id": "test-poll", "title": "Pineapple on pizza?",
            "choices": [{"id": "a", "title": "Yes", "votes": 12, "channel_points_votes": 0},
                        {"id": "b", "title": "No", "votes": 30, "channel_points_votes": 0}],
            "status": if kind == Kind::PollEnd { "completed" } else { "active" },
            "started_at": null, "ends_at": null, "ended_at": null
        }),
        Kind::PredictionBegin
        | Kind::PredictionProgress
        | Kind::PredictionLock
        | Kind::PredictionEnd => json!({
            "prediction_id": "test-prediction", "title": "Do we win this round?",
            "outcomes": [{"id": "w", "title": "Yes", "color": "blue", "users": 8, "channel_points": 12000, "top_predictors": []},
                         {"id": "l", "title": "No", "color": "pink", "users": 3, "channel_points": 4000, "top_predictors": []}],
            "status": match kind { Kind::PredictionLock => "locked", Kind::PredictionEnd => "resolved", _ => "active" },
            "winning_outcome_id": if kind == Kind::PredictionEnd { json!("w") } else { Value::Null },
            "started_at": null, "locks_at": null, "locked_at": null, "ended_at": null
        }),
        Kind::Gift => json!({
            "user_name": user, "user_login": login, "user_id": "", "gift_id": "",
            "gift_name": "Rose", "image": "", "count": 1, "amount": 1,
            "currency": "TIKTOK_DIAMONDS", "formatted": "1 diamond", "message": "",
            // Set from amount and currency as it is published (`money::annotate`).
            "value": null,
        }),
        Kind::Tip => {
            let amount = data.get("amount").and_then(Value::as_f64).unwrap_or(5.0);
            let currency = data
                .get("currency")
                .and_then(Value::as_str)
                .unwrap_or("USD");
            json!({
                "user_name": user, "user_login": login, "user_id": "", "type": "superchat",
                "amount": amount, "currency": currency,
                "formatted": if currency == "USD" { format!("${amount:.2}") } else { format!("{amount} {currency}") },
                // Set from amount and currency as it is published (`money::annotate`).
                "value": null,
                "message": "", "sticker": null, "color": null
            })
        }
    }
}

/// The defaults of the objects `chat.message` may carry, filled in when one is sent.
fn nested_defaults(key: &str) -> Option<Value> {
    Some(match key {
        "reply" => json!({"message_id": "", "user_login": "", "display_name": "", "text": ""}),
        "monetary" => json!({"amount": 0, "currency": "", "formatted": ""}),
        "sticker" => json!({"url": "", "alt": ""}),
        _ => return None,
    })
}

/// A login made from a display name: lowercase, letters, digits and `_` only.
fn login_of(name: &str) -> String {
    let login: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if login.is_empty() {
        "testuser".into()
    } else {
        login
    }
}

/// Fills the fields a kind needs that `data` lacks, at every depth (a partial `author` gets
/// an id, a login from its display name or the reverse, no colour, no roles, no badges; a
/// `reply`, `monetary`, `sticker` or badge that is sent gets its missing fields), keeping
/// everything that was sent (the emulate API and the benchmark tag events with fields of their
/// own).
pub fn complete(kind: Kind, data: &mut Map<String, Value>) {
    let shape = defaults(kind, data);
    fill(kind, data, &shape);
}

/// [`check_types`], then [`complete`], with the defaults made once: how a posted event is
/// taken.
pub fn check_and_complete(kind: Kind, data: &mut Map<String, Value>) -> Result<(), String> {
    let shape = defaults(kind, data);
    check_shape(kind, data, &shape)?;
    fill(kind, data, &shape);
    Ok(())
}

fn fill(kind: Kind, data: &mut Map<String, Value>, shape: &Value) {
    if let Value::Object(defaults) = shape {
        merge(data, defaults);
    }
    if kind == Kind::ChatMessage {
        for key in ["reply", "monetary", "sticker"] {
            if let (Some(Value::Object(sent)), Some(Value::Object(d))) =
                (data.get_mut(key), nested_defaults(key))
            {
                merge(sent, &d);
            }
        }
        if let Some(Value::Array(badges)) = data.get_mut("author").and_then(|a| a.get_mut("badges"))
        {
            for badge in badges.iter_mut() {
                if let Value::Object(b) = badge {
                    merge(
                        b,
                        &json!({"set": "", "version": "1"})
                            .as_object()
                            .cloned()
                            .unwrap_or_default(),
                    );
                }
            }
        }
    }
}

/// Adds each of `defaults` that `data` lacks, into objects at every depth.
fn merge(data: &mut Map<String, Value>, defaults: &Map<String, Value>) {
    for (key, default) in defaults {
        match (data.get_mut(key), default) {
            (None, _) => {
                data.insert(key.clone(), default.clone());
            }
            (Some(Value::Object(sent)), Value::Object(d)) => merge(sent, d),
            _ => {}
        }
    }
}

/// What is wrong with the types in sent `data` of `kind`, as `data.author.roles.moderator:
/// expected a boolean, not "yes"`: each known field must have its default's type (a field whose
/// default is `null` may be anything; unknown fields are kept as sent).
pub fn check_types(kind: Kind, data: &Map<String, Value>) -> Result<(), String> {
    check_shape(kind, data, &defaults(kind, data))
}

fn check_shape(kind: Kind, data: &Map<String, Value>, shape: &Value) -> Result<(), String> {
    let Value::Object(shape) = shape else {
        return Ok(());
    };
    check_object("data", data, shape)?;
    if kind == Kind::ChatMessage {
        for key in ["reply", "monetary", "sticker"] {
            if let (Some(sent), Some(Value::Object(d))) = (data.get(key), nested_defaults(key)) {
                match sent {
                    Value::Object(o) => check_object(&format!("data.{key}"), o, &d)?,
                    Value::Null => {}
                    other => return Err(format!("data.{key}: expected an object, not {other}")),
                }
            }
        }
        if let Some(Value::Array(items)) = data.get("elements") {
            for (i, e) in items.iter().enumerate() {
                let at = format!("data.elements[{i}]");
                let fields: &[&str] = match e["type"].as_str() {
                    Some("text") => &["value"],
                    Some("emote") => &["id", "name", "url"],
                    _ => return Err(format!("{at}.type: expected \"text\" or \"emote\"")),
                };
                for f in fields {
                    if !e[f].is_string() {
                        return Err(format!("{at}.{f}: expected a string"));
                    }
                }
            }
        }
        if let Some(Value::Array(badges)) = data.get("author").and_then(|a| a.get("badges")) {
            for (i, b) in badges.iter().enumerate() {
                let shape = json!({"set": "", "version": ""});
                match b {
                    Value::Object(o) => check_object(
                        &format!("data.author.badges[{i}]"),
                        o,
                        shape.as_object().expect("an object"),
                    )?,
                    other => {
                        return Err(format!(
                            "data.author.badges[{i}]: expected an object, not {other}"
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

fn check_object(
    path: &str,
    sent: &Map<String, Value>,
    shape: &Map<String, Value>,
) -> Result<(), String> {
    for (key, default) in shape {
        let Some(value) = sent.get(key) else { continue };
        let at = format!("{path}.{key}");
        let expected = match (default, value) {
            (Value::Null, _) => continue,
            (Value::Object(d), Value::Object(v)) => {
                check_object(&at, v, d)?;
                continue;
            }
            (Value::String(_), Value::String(_))
            | (Value::Number(_), Value::Number(_))
            | (Value::Bool(_), Value::Bool(_))
            | (Value::Array(_), Value::Array(_)) => continue,
            (Value::String(_), _) => "a string",
            (Value::Number(_), _) => "a number",
            (Value::Bool(_), _) => "a boolean",
            (Value::Array(_), _) => "a list",
            (Value::Object(_), _) => "an object",
        };
        let mut shown = value.to_string();
        if shown.len() > 40 {
            shown = format!("{}…", shown.chars().take(40).collect::<String>());
        }
        return Err(format!("{at}: expected {expected}, not {shown}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in Kind::ALL {
            assert_eq!(kind.as_str().parse::<Kind>().ok(), Some(kind));
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(Value::from(kind.as_str()))
            );
        }
    }

    #[test]
    fn unknown_kind_lists_the_kinds() {
        let err = "folow".parse::<Kind>().unwrap_err().to_string();
        assert!(err.contains("\"folow\""), "{err}");
        assert!(err.contains("follow, sub, resub"), "{err}");
    }

    #[test]
    fn kind_sets_hold_what_was_put_in() {
        let set: KindSet = [Kind::Follow, Kind::Raid].into_iter().collect();
        assert!(set.contains(Kind::Follow) && set.contains(Kind::Raid));
        assert!(!set.contains(Kind::ChatMessage));
        assert!(KindSet::ALL.contains(Kind::HypeTrainEnd));
    }

    #[test]
    fn complete_keeps_sent_fields_and_adds_missing_ones() {
        let mut data = Map::new();
        data.insert("seq".into(), json!(7));
        data.insert("user_name".into(), json!("Alice"));
        complete(Kind::Follow, &mut data);
        assert_eq!(data["seq"], json!(7));
        assert_eq!(data["user_login"], json!("alice"));
    }

    #[test]
    fn partial_objects_are_filled_at_every_depth_and_wrong_types_named() {
        let mut data = json!({"author": {"display_name": "Cool Bot"}, "text": "hi",
                              "reply": {"display_name": "Ann"}, "monetary": {"amount": 5}})
        .as_object()
        .cloned()
        .unwrap_or_default();
        assert_eq!(check_types(Kind::ChatMessage, &data), Ok(()));
        complete(Kind::ChatMessage, &mut data);
        let a = &data["author"];
        assert_eq!(
            (a["login"].clone(), a["display_name"].clone()),
            (json!("coolbot"), json!("Cool Bot"))
        );
        assert_eq!(a["roles"]["moderator"], false);
        assert_eq!(a["color"], Value::Null);
        assert_eq!(data["elements"], json!([{"type": "text", "value": "hi"}]));
        assert_eq!(data["reply"]["text"], "");
        assert_eq!(data["monetary"]["currency"], "");
        let mut only_login = json!({"author": {"login": "bob"}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        complete(Kind::ChatMessage, &mut only_login);
        assert_eq!(only_login["author"]["display_name"], "bob");
        let mut follow = json!({"user_login": "carol"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        complete(Kind::Follow, &mut follow);
        assert_eq!(follow["user_name"], "carol");
        for (kind, bad, error) in [
            (
                Kind::ChatMessage,
                json!({"author": {"roles": {"moderator": "yes"}}}),
                "data.author.roles.moderator: expected a boolean, not \"yes\"",
            ),
            (
                Kind::Cheer,
                json!({"bits": "100"}),
                "data.bits: expected a number",
            ),
            (
                Kind::ChatMessage,
                json!({"elements": [{"type": "img"}]}),
                "data.elements[0].type",
            ),
            (
                Kind::ChatMessage,
                json!({"author": {"badges": ["x"]}}),
                "data.author.badges[0]",
            ),
            (
                Kind::Redemption,
                json!({"reward": {"cost": "free"}}),
                "data.reward.cost: expected a number",
            ),
        ] {
            let e = check_types(kind, bad.as_object().expect("object")).unwrap_err();
            assert!(e.contains(error), "{e}");
        }
    }

    #[test]
    fn channel_names_are_logins() {
        assert_eq!(normalize_channel("#Forsen "), "forsen");
        assert!(valid_channel("some_user_42"));
        assert!(!valid_channel(""));
        assert!(!valid_channel("bad name"));
        assert!(!valid_channel("../etc"));
    }
}
