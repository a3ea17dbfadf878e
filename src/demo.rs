//! The demo source: a realistic stream of synthetic events (chat with emotes and badges,
//! follows, subs, gift bombs, cheers, raids, redemptions) so overlays and themes can be built
//! with no Twitch account and no network.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::Rng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::event::{Author, Badge, ChatMessage, Element, Event, Kind, Platform, Roles};
use crate::source::Publisher;

const SOURCE: &str = "demo";

const USERS: &[(&str, &str)] = &[
    ("PixelPanda", "#FF7F50"),
    ("night_owl_42", "#1E90FF"),
    ("Käsebrot", "#2E8B57"),
    ("SpeedyGonzo", "#DAA520"),
    ("lurker_lena", "#9ACD32"),
    ("ModMaximus", "#00AD03"),
    ("xX_Sniper_Xx", "#B22222"),
    ("cozy_cat", "#FF69B4"),
    ("하늘", "#8A2BE2"),
    ("TheRealBob", "#5F9EA0"),
];

/// Twitch global emotes with their real ids, so demo chat shows real images when online.
const EMOTES: &[(&str, &str)] = &[
    ("Kappa", "25"),
    ("PogChamp", "305954156"),
    ("LUL", "425618"),
    ("<3", "483"),
    ("HeyGuys", "30259"),
    ("BibleThump", "86"),
];

const LINES: &[&str] = &[
    "hello chat!",
    "that was insane",
    "what game is next?",
    "GG",
    "how long have you been streaming today?",
    "the new overlay looks clean",
    "first time here, love the vibe",
    "!uptime",
    "can we get a W in chat",
    "<b>not bold</b> & not a tag",
    "lmao",
];

/// Publishes synthetic events on `channel`, `rate` per second, until shutdown. With several
/// instances on one shared store, `claimed` is this instance's share of the channels: one of
/// them plays the demo (the one whose sources run for its channel), or every instance would
/// add its own.
pub async fn run(
    publisher: Publisher,
    channel: String,
    rate: f64,
    claimed: Option<watch::Receiver<BTreeSet<String>>>,
    shutdown: CancellationToken,
) {
    let period = Duration::from_secs_f64(1.0 / rate);
    let status = publisher.status().clone();
    status.set(SOURCE, "running", format!("synthetic events on #{channel}"));
    let mut tick = tokio::time::interval(period);
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        if claimed
            .as_ref()
            .is_some_and(|c| !c.borrow().contains(&channel))
        {
            continue;
        }
        n += 1;
        for event in next_events(&channel, n) {
            publisher.publish_or_log(event);
        }
    }
    status.set(SOURCE, "stopped", "shut down");
}

/// The events of step `n`: mostly chat, a channel event every few steps.
pub fn next_events(channel: &str, n: u64) -> Vec<Event> {
    let mut rng = rand::rng();
    if !n.is_multiple_of(6) {
        return vec![chat(channel, &mut rng)];
    }
    let (user, _) = *USERS.choose(&mut rng).unwrap_or(&USERS[0]);
    let pick = rng.random_range(0..100u32);
    let ev = |kind: Kind, data: Value| Event::new(Platform::Twitch, channel, kind, data);
    match pick {
        0..=34 => vec![ev(
            Kind::Follow,
            json!({"user_name": user, "user_login": login(user)}),
        )],
        35..=49 => vec![ev(
            Kind::Sub,
            json!({"user_name": user, "user_login": login(user), "tier": "1000", "is_gift": false}),
        )],
        50..=59 => vec![ev(
            Kind::Resub,
            json!({"user_name": user, "user_login": login(user), "tier": "1000",
                   "months": rng.random_range(2..40), "streak_months": null, "message": "still here!"}),
        )],
        60..=69 => gift_bomb(channel, user, rng.random_range(3..8)),
        70..=82 => {
            let bits = *[100u64, 250, 500, 1000, 5000]
                .choose(&mut rng)
                .unwrap_or(&100);
            vec![ev(
                Kind::Cheer,
                json!({"user_name": user, "user_login": login(user), "bits": bits,
                       "message": format!("Cheer{bits} great stream"), "is_anonymous": false}),
            )]
        }
        83..=87 => vec![ev(
            Kind::Raid,
            json!({"user_name": user, "user_login": login(user), "viewers": rng.random_range(5..500)}),
        )],
        // A TikTok gift streak, as its source sends it when the streak ends.
        88..=89 => {
            let (name, diamonds) = *[("Rose", 1u64), ("Finger Heart", 5), ("Galaxy", 1000)]
                .choose(&mut rng)
                .unwrap_or(&("Rose", 1));
            let count = rng.random_range(1..10u64);
            let amount = diamonds * count;
            vec![Event::new(
                Platform::Tiktok,
                channel,
                Kind::Gift,
                json!({"user_name": user, "user_login": login(user), "user_id": "", "gift_id": "",
                       "gift_name": name, "image": "", "count": count, "amount": amount,
                       "currency": "TIKTOK_DIAMONDS", "formatted": format!("{amount} diamonds"), "message": ""}),
            )]
        }
        // A YouTube Super Chat: its chat line, and the tip that alerts.
        90..=92 => {
            let amount = *[2.0f64, 5.0, 10.0, 20.0].choose(&mut rng).unwrap_or(&5.0);
            let data = json!({
                "message_id": format!("demo-sc-{}", rand::random::<u32>()),
                "author": {"id": format!("yt-{}", login(user)), "login": login(user), "display_name": user},
                "text": "love the stream!",
                "monetary": {"amount": amount, "currency": "USD", "formatted": format!("${amount:.2}")},
            });
            let mut line = Event::new(Platform::Youtube, channel, Kind::ChatMessage, data.clone());
            let mut d = line.data.as_object().cloned().unwrap_or_default();
            crate::event::complete(Kind::ChatMessage, &mut d);
            line.data = Value::Object(d);
            let tip = crate::money::tip_of(&line.data).unwrap_or_default();
            vec![line, Event::new(Platform::Youtube, channel, Kind::Tip, tip)]
        }
        _ => vec![ev(
            Kind::Redemption,
            json!({"user_name": user, "user_login": login(user),
                   "reward": {"id": "demo-hydrate", "title": "Hydrate!", "cost": 500}, "user_input": ""}),
        )],
    }
}

/// A gift bomb and the gifts that belong to it, linked by `giftbomb_id` (one alert, not N+1).
pub fn gift_bomb(channel: &str, user: &str, total: u64) -> Vec<Event> {
    let id = format!("demo-bomb-{}", rand::random::<u32>());
    let mut out = vec![Event::new(
        Platform::Twitch,
        channel,
        Kind::GiftBomb,
        json!({"user_name": user, "user_login": login(user), "tier": "1000", "total": total,
               "cumulative_total": null, "is_anonymous": false, "giftbomb_id": id}),
    )];
    let mut rng = rand::rng();
    for _ in 0..total {
        let (to, _) = *USERS.choose(&mut rng).unwrap_or(&USERS[0]);
        out.push(Event::new(
            Platform::Twitch,
            channel,
            Kind::SubGift,
            json!({"user_name": user, "user_login": login(user), "tier": "1000",
                   "recipient_name": to, "recipient_login": login(to), "giftbomb_id": id}),
        ));
    }
    out
}

fn login(name: &str) -> String {
    let l: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect::<String>()
        .to_ascii_lowercase();
    if l.is_empty() { "user".into() } else { l }
}

pub fn chat(channel: &str, rng: &mut impl Rng) -> Event {
    let (user, color) = *USERS.choose(rng).unwrap_or(&USERS[0]);
    let mut elements = vec![Element::Text {
        value: LINES.choose(rng).unwrap_or(&LINES[0]).to_string(),
    }];
    if rng.random_bool(0.5) {
        let (name, id) = *EMOTES.choose(rng).unwrap_or(&EMOTES[0]);
        elements.push(Element::Text { value: " ".into() });
        elements.push(Element::Emote {
            id: id.into(),
            name: name.into(),
            url: format!("https://static-cdn.jtvnw.net/emoticons/v2/{id}/default/dark/1.0"),
        });
    }
    let text: String = elements
        .iter()
        .map(|e| match e {
            Element::Text { value } => value.as_str(),
            Element::Emote { name, .. } => name.as_str(),
        })
        .collect();
    let moderator = user == "ModMaximus";
    let subscriber = rng.random_bool(0.4);
    let mut badges = Vec::new();
    if moderator {
        badges.push(Badge {
            set: "moderator".into(),
            version: "1".into(),
            image: None,
            title: None,
        });
    }
    if subscriber {
        badges.push(Badge {
            set: "subscriber".into(),
            version: "6".into(),
            image: None,
            title: None,
        });
    }
    let msg = ChatMessage {
        message_id: format!("demo-{}", rand::random::<u64>()),
        author: Author {
            id: format!("{}", 1000 + user.len()),
            login: login(user),
            display_name: user.into(),
            color: Some(color.into()),
            roles: Roles {
                broadcaster: false,
                moderator,
                vip: false,
                subscriber,
                verified: false,
            },
            badges,
            avatar: None,
        },
        is_action: rng.random_bool(0.05),
        text,
        elements,
        bits: 0,
        reply: None,
        monetary: None,
        sticker: None,
        first_message: false,
    };
    Event::new(
        Platform::Twitch,
        channel,
        Kind::ChatMessage,
        serde_json::to_value(msg).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_produces_every_kind_of_event_eventually() {
        let mut seen = std::collections::HashSet::new();
        for n in 1..=3000 {
            for e in next_events("demo", n) {
                assert_eq!(e.channel, "demo");
                seen.insert(e.kind);
            }
        }
        for kind in [
            Kind::ChatMessage,
            Kind::Follow,
            Kind::Sub,
            Kind::GiftBomb,
            Kind::SubGift,
            Kind::Cheer,
            Kind::Raid,
            Kind::Redemption,
        ] {
            assert!(seen.contains(&kind), "{kind}");
        }
    }

    #[test]
    fn gift_bomb_gifts_point_at_their_bomb() {
        let events = gift_bomb("demo", "Ann", 3);
        assert_eq!(events.len(), 4);
        let id = &events[0].data["giftbomb_id"];
        assert!(events[1..].iter().all(|e| &e.data["giftbomb_id"] == id));
    }
}
