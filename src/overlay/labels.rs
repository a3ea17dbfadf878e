//! The labels a `labels` overlay (and a text file for an OBS Text source) can show, by name:
//! what each reads from a session's snapshot and a channel's counters. The names are part of
//! what theme authors and streamers write (documented in docs/themes.md).

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// Each fixed label: its name, its title, and where it reads in a session snapshot.
const FIXED: &[(&str, &str, Source)] = &[
    (
        "latest.follower",
        "Latest follower",
        Source::Person("latest", "follower"),
    ),
    (
        "latest.subscriber",
        "Latest subscriber",
        Source::Person("latest", "subscriber"),
    ),
    (
        "latest.gifter",
        "Latest gifter",
        Source::Person("latest", "gifter"),
    ),
    (
        "latest.cheerer",
        "Latest cheerer",
        Source::Person("latest", "cheerer"),
    ),
    (
        "latest.raider",
        "Latest raider",
        Source::Person("latest", "raider"),
    ),
    (
        "latest.money",
        "Latest supporter",
        Source::Person("latest", "money"),
    ),
    (
        "top.cheerer.session",
        "Top cheerer",
        Source::Top("cheerer", "session"),
    ),
    (
        "top.cheerer.single",
        "Biggest cheer",
        Source::Top("cheerer", "single"),
    ),
    (
        "top.gifter.session",
        "Top gifter",
        Source::Top("gifter", "session"),
    ),
    (
        "top.gifter.single",
        "Biggest gift",
        Source::Top("gifter", "single"),
    ),
    (
        "top.money.session",
        "Top supporter",
        Source::Top("money", "session"),
    ),
    (
        "top.money.single",
        "Biggest tip",
        Source::Top("money", "single"),
    ),
    ("count.follows", "Follows", Source::Total("follows")),
    ("count.subs", "Subs", Source::Total("subs")),
    ("count.gifted", "Gifted subs", Source::Total("gifted")),
    ("count.bits", "Bits", Source::Total("bits")),
    ("count.raids", "Raids", Source::Total("raids")),
    ("count.money", "Money", Source::Total("money_formatted")),
    ("count.messages", "Messages", Source::Total("messages")),
    ("count.chatters", "Chatters", Source::Total("chatters")),
    (
        "count.new_chatters",
        "New chatters",
        Source::Total("new_chatters"),
    ),
];

/// The sections a credits roll can have, in their usual order.
pub const CREDITS: &[&str] = &[
    "followers",
    "subscribers",
    "gifters",
    "cheerers",
    "raiders",
    "money",
    "chatters",
];

/// A section's heading.
pub fn credits_title(section: &str) -> &'static str {
    match section {
        "followers" => "Followers",
        "subscribers" => "Subscribers",
        "gifters" => "Gifted subs",
        "cheerers" => "Cheers",
        "raiders" => "Raids",
        "money" => "Supporters",
        "chatters" => "Chatters",
        _ => "",
    }
}

#[derive(Clone, Copy)]
enum Source {
    /// `snapshot[a][b]`, a person with an amount.
    Person(&'static str, &'static str),
    /// `snapshot.top[a][b]`.
    Top(&'static str, &'static str),
    /// `snapshot.totals[a]`.
    Total(&'static str),
}

/// The prefix of a counter's label: `counter.deaths`.
const COUNTER: &str = "counter.";

/// Whether `name` is a label: a fixed one or `counter.<name>`.
pub fn known(name: &str) -> bool {
    FIXED.iter().any(|(n, _, _)| *n == name)
        || name.strip_prefix(COUNTER).is_some_and(valid_counter)
}

/// Every label name, for messages.
pub fn list() -> String {
    let mut names: Vec<&str> = FIXED.iter().map(|(n, _, _)| *n).collect();
    names.push("counter.<name>");
    names.join(", ")
}

/// Every fixed label's name.
pub fn fixed() -> impl Iterator<Item = &'static str> {
    FIXED.iter().map(|(n, _, _)| *n)
}

/// A counter's name: also a file name and a chat word, so a small alphabet.
pub fn valid_counter(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The label `name` now: `{name, title, text, who, amount, empty}`; `text` is what a text
/// file holds (`empty` stands in when nobody did it yet).
pub fn label(name: &str, session: &Value, counters: &BTreeMap<String, i64>, empty: &str) -> Value {
    if let Some(counter) = name.strip_prefix(COUNTER) {
        let value = counters.get(counter).copied().unwrap_or(0);
        return json!({"name": name, "title": counter, "text": value.to_string(),
                      "who": null, "amount": value, "empty": false});
    }
    let Some((_, title, source)) = FIXED.iter().find(|(n, _, _)| *n == name) else {
        return json!({"name": name, "title": name, "text": empty, "who": null, "amount": null, "empty": true});
    };
    let person = |p: &Value| {
        if p.is_null() {
            return (Value::Null, Value::Null, empty.to_string(), true);
        }
        let who = p["name"].as_str().unwrap_or_default();
        let formatted = p["formatted"].as_str().unwrap_or_default();
        let text = if formatted.is_empty() {
            who.to_string()
        } else {
            format!("{who} ({formatted})")
        };
        (json!(who), p["amount"].clone(), text, false)
    };
    let (who, amount, text, is_empty) = match *source {
        Source::Person(a, b) => person(&session[a][b]),
        Source::Top(a, b) => person(&session["top"][a][b]),
        Source::Total(t) => {
            let v = &session["totals"][t];
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            (Value::Null, v.clone(), text, false)
        }
    };
    json!({"name": name, "title": title, "text": text, "who": who, "amount": amount, "empty": is_empty})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_people_totals_and_counters() {
        let session = json!({
            "latest": {"follower": {"name": "Ann", "formatted": ""}, "cheerer": null},
            "top": {"cheerer": {"session": {"name": "Bob", "amount": 600.0, "formatted": "600 bits"}}},
            "totals": {"follows": 3, "money_formatted": "$5.00"},
        });
        let counters = BTreeMap::from([("deaths".to_string(), 4)]);
        let text = |n: &str| label(n, &session, &counters, "-")["text"].clone();
        assert_eq!(text("latest.follower"), "Ann");
        assert_eq!(text("latest.cheerer"), "-");
        assert_eq!(text("top.cheerer.session"), "Bob (600 bits)");
        assert_eq!(text("count.follows"), "3");
        assert_eq!(text("count.money"), "$5.00");
        assert_eq!(text("counter.deaths"), "4");
        assert_eq!(text("counter.wins"), "0");
        assert!(known("counter.wins") && known("top.money.single"));
        assert!(!known("counter.Wins") && !known("latest.nobody"));
    }
}
