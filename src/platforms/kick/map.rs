//! Kick's chat events as ours, with no socket: a Pusher or Centrifugo event's JSON decoded into
//! an event (chat with its emote tokens, roles and replies; subs, gifts, bans, deletions).
//! Tested on the recorded frames in `tests/fixtures/kick`.

use serde_json::{Value, json};

use crate::event::{Author, Badge, ChatMessage, Element, Kind, Monetary, Reply, Roles};
use crate::platforms::source::Decoded;

/// Decodes one Kick event (its name with or without the `App\Events\` prefix; its data a JSON
/// string, or already an object). Events overlays do not show give `None`.
pub fn decode(event: &str, data: &Value) -> Option<Decoded> {
    let parsed;
    let data = match data {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).ok()?;
            &parsed
        }
        other => other,
    };
    let name = event.rsplit('\\').next().unwrap_or(event);
    let at = data
        .get("created_at")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_millis().max(0) as u64);
    let s = |v: &Value, p: &str| {
        v.pointer(p)
            .map(|x| match x {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .unwrap_or_default()
    };
    let (id, kind, out) = match name {
        "ChatMessageEvent" => {
            let message = chat_message(data)?;
            (
                Some(message.message_id.clone()),
                Kind::ChatMessage,
                serde_json::to_value(message).ok()?,
            )
        }
        "MessageDeletedEvent" => (
            None,
            Kind::ChatDelete,
            json!({"message_id": s(data, "/message/id")}),
        ),
        "UserBannedEvent" => {
            let permanent = data.get("permanent").and_then(Value::as_bool) == Some(true);
            // Kick gives timeouts in minutes.
            let duration = (!permanent)
                .then(|| data.get("duration").and_then(Value::as_u64))
                .flatten()
                .map(|m| m * 60);
            (
                None,
                Kind::ChatClear,
                json!({"user_id": s(data, "/user/id"), "user_login": s(data, "/user/slug"), "duration_s": duration}),
            )
        }
        "ChatroomClearEvent" => (
            None,
            Kind::ChatClear,
            json!({"user_id": null, "user_login": null, "duration_s": null}),
        ),
        "SubscriptionEvent" => {
            let user = s(data, "/username");
            let months = data.get("months").and_then(Value::as_u64).unwrap_or(1);
            let login = user.to_lowercase();
            if months > 1 {
                (
                    None,
                    Kind::Resub,
                    json!({"user_name": user, "user_login": login, "tier": "1000", "months": months, "streak_months": null, "message": ""}),
                )
            } else {
                (
                    None,
                    Kind::Sub,
                    json!({"user_name": user, "user_login": login, "tier": "1000", "is_gift": false}),
                )
            }
        }
        "GiftedSubscriptionsEvent" => {
            let gifter = s(data, "/gifter_username");
            let total = data
                .get("gifted_usernames")
                .and_then(Value::as_array)
                .map_or(1, Vec::len);
            (
                None,
                Kind::GiftBomb,
                json!({"user_name": gifter, "user_login": gifter.to_lowercase(), "tier": "1000", "total": total, "cumulative_total": null, "is_anonymous": gifter.is_empty(), "giftbomb_id": null}),
            )
        }
        "KicksGifted" => {
            let amount = data.pointer("/gift/amount").and_then(Value::as_f64)?;
            let text = s(data, "/message");
            let sender = data.get("sender")?;
            let message = ChatMessage {
                message_id: s(data, "/gift_transaction_id"),
                author: Author {
                    id: s(sender, "/id"),
                    login: s(sender, "/username").to_lowercase(),
                    display_name: s(sender, "/username"),
                    color: sender
                        .get("username_color")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    roles: Roles::default(),
                    badges: Vec::new(),
                    avatar: None,
                },
                elements: elements(&text),
                text: text.clone(),
                is_action: false,
                bits: 0,
                reply: None,
                monetary: Some(Monetary {
                    amount,
                    currency: "KICKS".into(),
                    formatted: format!("{amount} Kicks"),
                    color: None,
                }),
                sticker: None,
                first_message: false,
            };
            (
                Some(message.message_id.clone()),
                Kind::ChatMessage,
                serde_json::to_value(message).ok()?,
            )
        }
        _ => return None,
    };
    Some(Decoded {
        id: id.filter(|i| !i.is_empty()),
        kind,
        data: out,
        at,
    })
}

fn chat_message(data: &Value) -> Option<ChatMessage> {
    let sender = data.get("sender")?;
    let str_of = |v: &Value, key: &str| match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let mut roles = Roles::default();
    let mut badges = Vec::new();
    for b in sender
        .pointer("/identity/badges")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let kind = b.get("type").and_then(Value::as_str).unwrap_or_default();
        match kind {
            "broadcaster" => roles.broadcaster = true,
            "moderator" => roles.moderator = true,
            "vip" => roles.vip = true,
            "subscriber" | "founder" => roles.subscriber = true,
            "verified" => roles.verified = true,
            _ => {}
        }
        badges.push(Badge {
            set: kind.to_string(),
            version: b
                .get("count")
                .and_then(Value::as_u64)
                .map_or("1".into(), |c| c.to_string()),
            image: None,
            title: b.get("text").and_then(Value::as_str).map(str::to_string),
        });
    }
    let content = str_of(data, "content");
    let reply = (data.get("type").and_then(Value::as_str) == Some("reply"))
        .then(|| {
            let meta = data.get("metadata")?;
            let name = meta.pointer("/original_sender/username")?.as_str()?;
            Some(Reply {
                message_id: str_of(meta.get("original_message")?, "id"),
                user_login: name.to_lowercase(),
                display_name: name.to_string(),
                text: str_of(meta.get("original_message")?, "content"),
            })
        })
        .flatten();
    let elements = elements(&content);
    // The text as a viewer reads it: emote tokens by their names.
    let text = elements
        .iter()
        .map(|e| match e {
            Element::Text { value } => value.as_str(),
            Element::Emote { name, .. } => name.as_str(),
        })
        .collect();
    Some(ChatMessage {
        message_id: str_of(data, "id"),
        author: Author {
            id: str_of(sender, "id"),
            login: str_of(sender, "slug"),
            display_name: str_of(sender, "username"),
            color: sender
                .pointer("/identity/color")
                .and_then(Value::as_str)
                .map(str::to_string),
            roles,
            badges,
            avatar: None,
        },
        text,
        elements,
        is_action: false,
        bits: 0,
        reply,
        monetary: None,
        sticker: None,
        first_message: false,
    })
}

/// Splits Kick's `[emote:<id>:<name>]` tokens out of a message.
pub fn elements(content: &str) -> Vec<Element> {
    let mut out = Vec::new();
    let mut rest = content;
    let mut text = String::new();
    while let Some(start) = rest.find("[emote:") {
        let token = &rest[start + "[emote:".len()..];
        let parsed = token.find(']').and_then(|end| {
            let (id, name) = token[..end].split_once(':')?;
            (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) && !name.is_empty())
                .then(|| (id.to_string(), name.to_string(), end))
        });
        match parsed {
            Some((id, name, end)) => {
                text.push_str(&rest[..start]);
                if !text.is_empty() {
                    out.push(Element::Text {
                        value: std::mem::take(&mut text),
                    });
                }
                out.push(Element::Emote {
                    url: format!("https://files.kick.com/emotes/{id}/fullsize"),
                    id,
                    name,
                });
                rest = &token[end + 1..];
            }
            None => {
                text.push_str(&rest[..start + 1]);
                rest = &rest[start + 1..];
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Element::Text { value: text });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(name: &str) -> Value {
        crate::platforms::source::fixture("kick", name)
    }

    fn decoded(name: &str) -> Decoded {
        let f = frame(name);
        decode(f["event"].as_str().expect("event"), &f["data"]).expect("decoded")
    }

    #[test]
    fn emote_tokens_become_emotes() {
        let m = decoded("pusher.chat_message.emotes.json");
        assert_eq!(m.kind, Kind::ChatMessage);
        let els = m.data["elements"].as_array().expect("elements");
        assert_eq!(els.len(), 3);
        assert_eq!(
            els[0],
            json!({"type": "emote", "id": "37232", "name": "PeepoClap", "url": "https://files.kick.com/emotes/37232/fullsize"})
        );
        assert_eq!(m.data["text"], "PeepoClapPeepoClapPeepoClap");
        assert_eq!(m.data["author"]["login"], "utamaro1");
        assert_eq!(m.data["author"]["color"], "#E26EFF");
        assert_eq!(
            elements("a [emote:1:x] b [emote:bad] c"),
            vec![
                Element::Text { value: "a ".into() },
                Element::Emote {
                    id: "1".into(),
                    name: "x".into(),
                    url: "https://files.kick.com/emotes/1/fullsize".into()
                },
                Element::Text {
                    value: " b [emote:bad] c".into()
                },
            ]
        );
    }

    #[test]
    fn roles_badges_and_replies() {
        let m = decoded("pusher.chat_message.roles_mod_vip_og_sub.json");
        let roles = &m.data["author"]["roles"];
        assert_eq!(
            (
                roles["moderator"].clone(),
                roles["vip"].clone(),
                roles["subscriber"].clone()
            ),
            (json!(true), json!(true), json!(true))
        );
        assert_eq!(
            m.data["author"]["badges"][3],
            json!({"set": "subscriber", "version": "24", "title": "Subscriber"})
        );
        let r = decoded("pusher.chat_message.reply.json");
        assert_eq!(
            r.data["reply"]["message_id"],
            "08ee7ab6-cf63-49ac-badf-38bc8e3e0cd3"
        );
        assert_eq!(r.data["reply"]["display_name"], "b58y0");
        assert_eq!(r.at, Some(1_790_525_557_000));
    }

    #[test]
    fn moderation_subs_and_kicks() {
        let d = decoded("pusher.message_deleted.json");
        assert_eq!(
            (d.kind, d.data["message_id"].clone()),
            (
                Kind::ChatDelete,
                json!("7ba14761-bbc7-44a9-a2d7-5c22b1407226")
            )
        );
        let b = decoded("pusher.user_banned.timeout.json");
        assert_eq!(b.kind, Kind::ChatClear);
        assert_eq!(
            b.data,
            json!({"user_id": "109550867", "user_login": "rittikj", "duration_s": 60})
        );
        let s = decoded("pusher.subscription.json");
        assert_eq!((s.kind, s.data["months"].clone()), (Kind::Resub, json!(13)));
        let k = decoded("pusher.kicks_gifted.json");
        assert_eq!(
            k.data["monetary"],
            json!({"amount": 500.0, "currency": "KICKS", "formatted": "500 Kicks"})
        );
        // No recorded GiftedSubscriptionsEvent: the shape is kicksdk's and GiftDeck's.
        let gifts = json!({"chatroom_id": 1, "gifted_usernames": ["a", "b", "c"], "gifter_username": "Santa"}).to_string();
        let g = decode(
            "App\\Events\\GiftedSubscriptionsEvent",
            &Value::String(gifts),
        )
        .expect("gifts");
        assert_eq!(
            (
                g.kind,
                g.data["total"].clone(),
                g.data["user_login"].clone()
            ),
            (Kind::GiftBomb, json!(3), json!("santa"))
        );
        let unbanned = frame("pusher.user_unbanned.json");
        assert_eq!(
            decode(
                unbanned["event"].as_str().expect("event"),
                &unbanned["data"]
            ),
            None
        );
    }
}
