//! One channel's stream session, derived from its events: latest supporters, counts per kind,
//! the largest single and cumulative cheerer, gifter and money giver, chatters, and the lists
//! the credits roll. Pure data: fed one event at a time, serialized whole to survive restarts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::event::{Event, Kind};
use crate::money;

/// People kept per credits list (followers, subscribers, raiders): a 20,000-follow bot raid must
/// not grow the saved session without bound. Counts go on past it.
const MAX_LISTED: usize = 1_000;
/// Supporters (cheerers, gifters, money givers) and chatters tracked; past it, newcomers'
/// money and messages still count in the totals, but not as new supporters or chatters.
const MAX_TRACKED: usize = 20_000;

/// What started a session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// `stream.online`.
    Online,
    /// The streamer's reset (dashboard, API, events socket).
    Reset,
    /// The first event of a channel that never had one (or recomputed from the log).
    #[default]
    Events,
}

/// Someone in a session's lists, with what they did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub name: String,
    pub login: String,
    pub platform: String,
    /// Bits, gifted subs, viewers, months or comparable money, by list.
    pub amount: f64,
    /// The amount as shown: `"500 bits"`, `"€5.00"`, `"Tier 1"`.
    pub formatted: String,
    pub at: u64,
}

/// What one supporter gave this session.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Giver {
    name: String,
    login: String,
    platform: String,
    bits: f64,
    gifts: f64,
    money: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Chatter {
    name: String,
    platform: String,
    messages: u64,
    /// Their first message in the channel ever (Twitch's `first-msg`).
    first: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub started_at: u64,
    pub ended_at: Option<u64>,
    /// Started by `stream.online` and not ended by `stream.offline`.
    pub live: bool,
    pub cause: Cause,
    /// Events per kind.
    counts: BTreeMap<String, u64>,
    /// `follower`, `subscriber`, `gifter`, `cheerer`, `raider`, `money`.
    latest: BTreeMap<String, Person>,
    /// The single largest `cheer`, `gift` (gifted subs at once) and `money`.
    largest: BTreeMap<String, Person>,
    followers: Vec<Person>,
    subscribers: Vec<Person>,
    raiders: Vec<Person>,
    givers: BTreeMap<String, Giver>,
    chatters: BTreeMap<String, Chatter>,
    totals: Totals,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Totals {
    follows: u64,
    subs: u64,
    gifted: u64,
    bits: u64,
    raids: u64,
    raiders: u64,
    /// Comparable money (approximate US dollars; see [`money::comparable`]).
    money: f64,
    messages: u64,
    chatters: u64,
    new_chatters: u64,
}

/// Who did it: `(key, person)` from the usual `user_name`/`user_login` or a chat author.
fn who(event: &Event) -> (String, Person) {
    let d = &event.data;
    let anonymous = d["is_anonymous"] == json!(true);
    let (name, login) = if event.kind == Kind::ChatMessage {
        let a = &d["author"];
        let login = a["login"].as_str().unwrap_or_default();
        let name = a["display_name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or(login);
        (name.to_string(), login.to_string())
    } else if anonymous {
        ("Anonymous".to_string(), String::new())
    } else {
        let login = d["user_login"].as_str().unwrap_or_default();
        let name = d["user_name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or(login);
        (name.to_string(), login.to_string())
    };
    let key = format!("{}:{}", event.platform, login.to_lowercase());
    let person = Person {
        name,
        login,
        platform: event.platform.clone(),
        amount: 0.0,
        formatted: String::new(),
        at: event.at,
    };
    (key, person)
}

fn tier_name(tier: &Value) -> String {
    crate::theme::helpers::tier_name(tier.as_str().unwrap_or("1000"))
}

/// Adds `person` to a credits list once: someone who subscribes again (a resub after a sub)
/// keeps their place, with what they did last.
fn push_bounded(list: &mut Vec<Person>, person: Person) {
    let same = |p: &Person| {
        !person.login.is_empty()
            && p.platform == person.platform
            && p.login.eq_ignore_ascii_case(&person.login)
    };
    if let Some(seen) = list.iter_mut().find(|p| same(p)) {
        *seen = person;
    } else if list.len() < MAX_LISTED {
        list.push(person);
    }
}

impl Session {
    /// A new, empty session starting at `at`.
    pub fn start(at: u64, cause: Cause) -> Session {
        Session {
            started_at: at,
            live: cause == Cause::Online,
            cause,
            ..Session::default()
        }
    }

    /// Counts `event` (a live one: history and replays are the caller's to skip). A
    /// `stream.online` starts a new session in place; a `stream.offline` ends this one, which
    /// still counts what comes after (an outro's follows) until the next one starts.
    pub fn apply(&mut self, event: &Event) {
        match event.kind {
            Kind::StreamOnline => {
                *self = Session::start(event.at, Cause::Online);
                return;
            }
            Kind::StreamOffline => {
                self.live = false;
                self.ended_at = Some(event.at);
            }
            _ => {}
        }
        if matches!(event.kind, Kind::ChatDelete | Kind::ChatClear) {
            return;
        }
        // A gift bomb's own gifts are counted by the bomb.
        if event.kind == Kind::SubGift && !event.data["giftbomb_id"].is_null() {
            return;
        }
        *self
            .counts
            .entry(event.kind.as_str().to_string())
            .or_default() += 1;
        let (key, mut person) = who(event);
        let d = &event.data;
        match event.kind {
            Kind::Follow => {
                self.totals.follows += 1;
                self.latest.insert("follower".into(), person.clone());
                push_bounded(&mut self.followers, person.clone());
            }
            Kind::Sub | Kind::Resub => {
                self.totals.subs += 1;
                let months = money::number(&d["months"]);
                person.amount = months.max(1.0);
                person.formatted = if event.kind == Kind::Resub && months > 0.0 {
                    format!("{} · {} months", tier_name(&d["tier"]), months)
                } else {
                    tier_name(&d["tier"])
                };
                self.latest.insert("subscriber".into(), person.clone());
                push_bounded(&mut self.subscribers, person.clone());
            }
            Kind::SubGift | Kind::GiftBomb => {
                let n = if event.kind == Kind::GiftBomb {
                    money::number(&d["total"]).max(1.0)
                } else {
                    1.0
                };
                self.totals.gifted += n as u64;
                person.amount = n;
                person.formatted = format!("{n} gifted");
                self.latest.insert("gifter".into(), person.clone());
                self.record_largest("gift", &person);
                self.give(&key, &person, |g| g.gifts += n);
            }
            Kind::Cheer => {
                let bits = money::number(&d["bits"]);
                self.totals.bits += bits as u64;
                person.amount = bits;
                person.formatted = format!("{bits} bits");
                self.latest.insert("cheerer".into(), person.clone());
                self.record_largest("cheer", &person);
                self.give(&key, &person, |g| g.bits += bits);
            }
            Kind::Raid => {
                let viewers = money::number(&d["viewers"]);
                self.totals.raids += 1;
                self.totals.raiders += viewers as u64;
                person.amount = viewers;
                person.formatted = format!("{viewers} viewers");
                self.latest.insert("raider".into(), person.clone());
                self.record_largest("raid", &person);
                push_bounded(&mut self.raiders, person.clone());
            }
            Kind::ChatMessage => self.chat(event, &key, &person),
            _ => {}
        }
        if let Some(m) = money::of(event) {
            self.totals.money += m.value;
            person.amount = m.value;
            person.formatted = m.formatted;
            self.latest.insert("money".into(), person.clone());
            self.record_largest("money", &person);
            self.give(&key, &person, |g| g.money += m.value);
        }
    }

    fn chat(&mut self, event: &Event, key: &str, person: &Person) {
        self.totals.messages += 1;
        if let Some(c) = self.chatters.get_mut(key) {
            c.messages += 1;
            return;
        }
        // Past the bound a chatter cannot be told from one counted before: distinct chatters
        // stop being counted there, rather than every line counting as a new one.
        if self.chatters.len() >= MAX_TRACKED {
            return;
        }
        self.totals.chatters += 1;
        let first = event.data["first_message"] == json!(true);
        if first {
            self.totals.new_chatters += 1;
        }
        self.chatters.insert(
            key.to_string(),
            Chatter {
                name: person.name.clone(),
                platform: person.platform.clone(),
                messages: 1,
                first,
            },
        );
    }

    /// Whether `event` (not counted yet) is larger than every one of its kind this session:
    /// a cheer's bits, a gift's count, a raid's viewers, money's comparable value.
    pub fn is_largest(&self, event: &Event) -> bool {
        let what = match event.kind {
            Kind::Cheer => "cheer",
            // A bomb's own gifts are counted by the bomb.
            Kind::SubGift if !event.data["giftbomb_id"].is_null() => return false,
            Kind::GiftBomb | Kind::SubGift => "gift",
            Kind::Raid => "raid",
            Kind::Tip | Kind::Gift => "money",
            _ => return false,
        };
        // What a variation's `min` compares is what "largest" compares.
        let Some(amount) = crate::overlay::variation::amount(event, None) else {
            return false;
        };
        self.largest.get(what).is_none_or(|p| amount > p.amount)
    }

    fn record_largest(&mut self, what: &str, person: &Person) {
        let bigger = self
            .largest
            .get(what)
            .is_none_or(|p| person.amount > p.amount);
        if bigger {
            self.largest.insert(what.to_string(), person.clone());
        }
    }

    fn give(&mut self, key: &str, person: &Person, add: impl FnOnce(&mut Giver)) {
        // Anonymous gifts have no one to add up under.
        if person.login.is_empty() {
            return;
        }
        if !self.givers.contains_key(key) && self.givers.len() >= MAX_TRACKED {
            return;
        }
        let giver = self.givers.entry(key.to_string()).or_insert_with(|| Giver {
            name: person.name.clone(),
            login: person.login.clone(),
            platform: person.platform.clone(),
            ..Giver::default()
        });
        giver.name = person.name.clone();
        add(giver);
    }

    /// Supporters ordered by what `amount` says they gave, largest first (ties: by name).
    fn ranked(&self, amount: impl Fn(&Giver) -> f64, unit: impl Fn(f64) -> String) -> Vec<Value> {
        let mut givers: Vec<(&Giver, f64)> = self
            .givers
            .values()
            .map(|g| (g, amount(g)))
            .filter(|(_, a)| *a > 0.0)
            .collect();
        givers.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.name.cmp(&b.0.name)));
        givers
            .into_iter()
            .take(MAX_LISTED)
            .map(|(g, a)| {
                json!({"name": g.name, "login": g.login, "platform": g.platform,
                       "amount": a, "formatted": unit(a)})
            })
            .collect()
    }

    /// Chatters by messages, most first.
    fn top_chatters(&self, n: usize) -> Vec<Value> {
        let mut chatters: Vec<&Chatter> = self.chatters.values().collect();
        chatters.sort_by(|a, b| b.messages.cmp(&a.messages).then(a.name.cmp(&b.name)));
        chatters
            .into_iter()
            .take(n)
            .map(|c| {
                json!({"name": c.name, "platform": c.platform, "amount": c.messages,
                            "formatted": format!("{} messages", c.messages), "first": c.first})
            })
            .collect()
    }

    /// The session as the API, the labels and the credits see it (documented in
    /// docs/themes.md): every key is always there, `null` when nobody did it yet.
    pub fn snapshot(&self, channel: &str) -> Value {
        let bits = |a: f64| format!("{a} bits");
        let gifts = |a: f64| format!("{a} gifted");
        let cheerers = self.ranked(|g| g.bits, bits);
        let gifters = self.ranked(|g| g.gifts, gifts);
        let money_givers = self.ranked(|g| g.money, money::format_value);
        let person = |p: Option<&Person>| p.map_or(Value::Null, |p| json!(p));
        let latest: serde_json::Map<String, Value> = [
            "follower",
            "subscriber",
            "gifter",
            "cheerer",
            "raider",
            "money",
        ]
        .into_iter()
        .map(|k| (k.to_string(), person(self.latest.get(k))))
        .collect();
        let top = |single: &str, ranked: &[Value]| {
            json!({"single": person(self.largest.get(single)),
                   "session": ranked.first().cloned().unwrap_or(Value::Null)})
        };
        let t = &self.totals;
        json!({
            "channel": channel,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "live": self.live,
            "cause": self.cause,
            "counts": self.counts,
            "totals": {
                "follows": t.follows, "subs": t.subs, "gifted": t.gifted, "bits": t.bits,
                "raids": t.raids, "raiders": t.raiders,
                "money": (t.money * 100.0).round() / 100.0,
                "money_formatted": money::format_value(t.money),
                "messages": t.messages, "chatters": t.chatters, "new_chatters": t.new_chatters,
            },
            "latest": latest,
            "top": {
                "cheerer": top("cheer", &cheerers),
                "gifter": top("gift", &gifters),
                "money": top("money", &money_givers),
            },
            "new_chatters": self.chatters.values().filter(|c| c.first).map(|c| json!(c.name)).collect::<Vec<_>>(),
            "credits": {
                "followers": self.followers,
                "subscribers": self.subscribers,
                "gifters": gifters,
                "cheerers": cheerers,
                "raiders": self.raiders,
                "money": money_givers,
                "chatters": self.top_chatters(25),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Platform;

    fn ev(kind: Kind, data: Value) -> Event {
        let mut data = data.as_object().cloned().unwrap_or_default();
        crate::event::complete(kind, &mut data);
        Event::new(Platform::Twitch, "c", kind, Value::Object(data))
    }

    #[test]
    fn a_gift_bomb_counts_once_and_tops_are_single_and_cumulative() {
        let mut s = Session::start(0, Cause::Events);
        s.apply(&ev(Kind::Cheer, json!({"user_name": "Ann", "bits": 500})));
        s.apply(&ev(Kind::Cheer, json!({"user_name": "Bob", "bits": 300})));
        s.apply(&ev(Kind::Cheer, json!({"user_name": "Bob", "bits": 300})));
        s.apply(&ev(
            Kind::GiftBomb,
            json!({"user_name": "Cy", "total": 5, "giftbomb_id": "b1"}),
        ));
        for _ in 0..5 {
            s.apply(&ev(
                Kind::SubGift,
                json!({"user_name": "Cy", "giftbomb_id": "b1"}),
            ));
        }
        let v = s.snapshot("c");
        assert_eq!(v["top"]["cheerer"]["single"]["name"], "Ann");
        assert_eq!(v["top"]["cheerer"]["session"]["name"], "Bob");
        assert_eq!(v["top"]["cheerer"]["session"]["amount"], 600.0);
        assert_eq!(v["totals"]["gifted"], 5);
        assert_eq!(v["counts"]["subgift"], Value::Null);
        assert_eq!(v["latest"]["gifter"]["name"], "Cy");
        assert_eq!(v["latest"]["follower"], Value::Null);
        s.apply(&ev(Kind::Sub, json!({"user_name": "Ann"})));
        s.apply(&ev(Kind::Resub, json!({"user_name": "Ann", "months": 2})));
        let subs = &s.snapshot("c")["credits"]["subscribers"];
        assert_eq!(subs.as_array().map(Vec::len), Some(1), "{subs}");
        assert_eq!(subs[0]["formatted"], "Tier 1 · 2 months");
    }

    #[test]
    fn online_starts_over_and_offline_ends_but_keeps_counting() {
        let mut s = Session::start(0, Cause::Events);
        s.apply(&ev(Kind::Follow, json!({"user_name": "Old"})));
        s.apply(&ev(Kind::StreamOnline, json!({})));
        assert!(s.live);
        assert_eq!(s.snapshot("c")["latest"]["follower"], Value::Null);
        s.apply(&ev(Kind::StreamOffline, json!({})));
        s.apply(&ev(Kind::Follow, json!({"user_name": "Late"})));
        let v = s.snapshot("c");
        assert_eq!(v["live"], false);
        assert_eq!(v["latest"]["follower"]["name"], "Late");
        assert_eq!(v["totals"]["follows"], 1);
    }
}
