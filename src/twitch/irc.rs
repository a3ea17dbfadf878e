//! Twitch IRC messages (as parsed by `twitch-irc`) into our events. Pure functions: tested on
//! the recorded lines in `tests/fixtures/irc/` with no socket.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use twitch_irc::message::{
    ClearChatAction, ClearChatMessage, ClearMsgMessage, IRCMessage, PrivmsgMessage, ServerMessage,
    UserNoticeEvent, UserNoticeMessage,
};

use crate::event::{Author, Badge, ChatMessage, Element, Event, Kind, Reply, Roles};

/// A mass gift's individual gifts arrive right after it; this long after, a gift with no
/// community-gift id is no longer taken as part of it.
const BOMB_WINDOW: Duration = Duration::from_secs(10);

/// Remembers recent gift bombs so that their gifts are marked as belonging to them (one alert
/// for the bomb, not N+1).
#[derive(Default)]
pub struct Mapper {
    bombs: HashMap<(String, String), OpenBomb>,
}

struct OpenBomb {
    id: String,
    remaining: u64,
    until: Instant,
}

impl Mapper {
    /// Our events for one server message (none for messages overlays do not show).
    /// `more_emotes` may turn further words of a chat message into emotes (third-party
    /// providers), given the channel's room id and the elements from Twitch's own emotes.
    pub fn map(
        &mut self,
        message: &ServerMessage,
        more_emotes: impl FnOnce(&str, Vec<Element>) -> Vec<Element>,
    ) -> Vec<Event> {
        match message {
            ServerMessage::Privmsg(m) => vec![chat_message(m, more_emotes)],
            ServerMessage::ClearMsg(m) => vec![chat_delete(m)],
            ServerMessage::ClearChat(m) => vec![chat_clear(m)],
            ServerMessage::UserNotice(m) => self.user_notice(m).into_iter().collect(),
            _ => Vec::new(),
        }
    }

    fn user_notice(&mut self, m: &UserNoticeMessage) -> Option<Event> {
        let tag = |k: &str| m.source.tags.0.get(k).filter(|v| !v.is_empty()).cloned();
        let user = json!({"user_name": m.sender.name, "user_login": m.sender.login, "user_id": m.sender.id});
        let with = |mut base: Value, extra: Value| {
            if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
                b.extend(e);
            }
            base
        };
        let message = m.message_text.clone().unwrap_or_default();
        let (kind, data) = match &m.event {
            UserNoticeEvent::SubOrResub {
                is_resub,
                cumulative_months,
                streak_months,
                sub_plan,
                ..
            } => {
                if *is_resub {
                    (
                        Kind::Resub,
                        with(
                            user,
                            json!({"tier": sub_plan, "months": cumulative_months, "streak_months": streak_months, "message": message}),
                        ),
                    )
                } else {
                    (
                        Kind::Sub,
                        with(
                            user,
                            json!({"tier": sub_plan, "is_gift": false, "message": message}),
                        ),
                    )
                }
            }
            UserNoticeEvent::SubGift {
                is_sender_anonymous,
                recipient,
                sub_plan,
                ..
            } => {
                let bomb = tag("msg-param-community-gift-id")
                    .or_else(|| self.claim_bomb(&m.channel_login, &m.sender.login));
                let (name, login) = if *is_sender_anonymous {
                    (Value::Null, Value::Null)
                } else {
                    (json!(m.sender.name), json!(m.sender.login))
                };
                (
                    Kind::SubGift,
                    json!({
                        "user_name": name, "user_login": login, "tier": sub_plan,
                        "recipient_name": recipient.name, "recipient_login": recipient.login,
                        "giftbomb_id": bomb,
                    }),
                )
            }
            UserNoticeEvent::SubMysteryGift {
                mass_gift_count,
                sender_total_gifts,
                sub_plan,
            } => {
                let id = tag("msg-param-community-gift-id").unwrap_or_else(|| m.message_id.clone());
                self.open_bomb(&m.channel_login, &m.sender.login, &id, *mass_gift_count);
                (
                    Kind::GiftBomb,
                    with(
                        user,
                        json!({
                            "tier": sub_plan, "total": mass_gift_count, "cumulative_total": sender_total_gifts,
                            "is_anonymous": false, "giftbomb_id": id,
                        }),
                    ),
                )
            }
            UserNoticeEvent::AnonSubMysteryGift {
                mass_gift_count,
                sub_plan,
            } => {
                let id = tag("msg-param-community-gift-id").unwrap_or_else(|| m.message_id.clone());
                self.open_bomb(&m.channel_login, &m.sender.login, &id, *mass_gift_count);
                (
                    Kind::GiftBomb,
                    json!({
                        "user_name": null, "user_login": null, "tier": sub_plan, "total": mass_gift_count,
                        "cumulative_total": null, "is_anonymous": true, "giftbomb_id": id,
                    }),
                )
            }
            UserNoticeEvent::Raid {
                viewer_count,
                profile_image_url,
            } => (
                Kind::Raid,
                with(
                    user,
                    json!({"viewers": viewer_count, "profile_image_url": profile_image_url}),
                ),
            ),
            UserNoticeEvent::Announcement { color } => (
                Kind::Announcement,
                with(
                    user,
                    json!({
                        "text": message, "color": color.clone().unwrap_or_else(|| "PRIMARY".into()),
                        "elements": elements(&message, tag("emotes").as_deref().unwrap_or_default()),
                    }),
                ),
            ),
            _ => return None,
        };
        let mut event = Event::new(crate::event::Platform::Twitch, &m.channel_login, kind, data);
        event.at = timestamp(&m.source).unwrap_or(event.at);
        Some(event)
    }

    fn open_bomb(&mut self, channel: &str, sender: &str, id: &str, count: u64) {
        let now = Instant::now();
        self.bombs.retain(|_, b| b.until > now && b.remaining > 0);
        self.bombs.insert(
            (channel.to_string(), sender.to_string()),
            OpenBomb {
                id: id.to_string(),
                remaining: count,
                until: now + BOMB_WINDOW,
            },
        );
    }

    fn claim_bomb(&mut self, channel: &str, sender: &str) -> Option<String> {
        let key = (channel.to_string(), sender.to_string());
        let bomb = self.bombs.get_mut(&key)?;
        if bomb.remaining == 0 || bomb.until < Instant::now() {
            self.bombs.remove(&key);
            return None;
        }
        bomb.remaining -= 1;
        Some(bomb.id.clone())
    }
}

/// `tmi-sent-ts`: when Twitch received the message (ms since the epoch).
fn timestamp(source: &IRCMessage) -> Option<u64> {
    source.tags.0.get("tmi-sent-ts")?.parse().ok()
}

fn chat_message(
    m: &PrivmsgMessage,
    more_emotes: impl FnOnce(&str, Vec<Element>) -> Vec<Element>,
) -> Event {
    let emotes = m
        .source
        .tags
        .0
        .get("emotes")
        .map(String::as_str)
        .unwrap_or_default();
    let has = |set: &str| m.badges.iter().any(|b| b.name == set);
    let tag_on = |k: &str| m.source.tags.0.get(k).is_some_and(|v| v == "1");
    let author = Author {
        id: m.sender.id.clone(),
        login: m.sender.login.clone(),
        display_name: m.sender.name.clone(),
        color: m
            .name_color
            .map(|c| format!("#{:02X}{:02X}{:02X}", c.r, c.g, c.b)),
        roles: Roles {
            broadcaster: has("broadcaster"),
            moderator: has("moderator") || tag_on("mod"),
            vip: has("vip") || tag_on("vip"),
            subscriber: has("subscriber") || has("founder") || tag_on("subscriber"),
            verified: false,
        },
        badges: m
            .badges
            .iter()
            .map(|b| Badge {
                set: b.name.clone(),
                version: b.version.clone(),
                image: None,
                title: None,
            })
            .collect(),
        avatar: None,
    };
    let message = ChatMessage {
        message_id: m.message_id.clone(),
        author,
        elements: more_emotes(&m.channel_id, elements(&m.message_text, emotes)),
        text: m.message_text.clone(),
        is_action: m.is_action,
        bits: m.bits.unwrap_or(0),
        reply: m.reply_parent.as_ref().map(|r| Reply {
            message_id: r.message_id.clone(),
            user_login: r.reply_parent_user.login.clone(),
            display_name: r.reply_parent_user.name.clone(),
            text: r.message_text.clone(),
        }),
        monetary: None,
        sticker: None,
        first_message: tag_on("first-msg"),
    };
    let mut event = Event::new(
        crate::event::Platform::Twitch,
        &m.channel_login,
        Kind::ChatMessage,
        serde_json::to_value(message).unwrap_or_default(),
    );
    event.at = m.server_timestamp.timestamp_millis().max(0) as u64;
    event
}

fn chat_delete(m: &ClearMsgMessage) -> Event {
    let mut event = Event::new(
        crate::event::Platform::Twitch,
        &m.channel_login,
        Kind::ChatDelete,
        json!({"message_id": m.message_id, "user_login": m.sender_login, "text": m.message_text}),
    );
    event.at = m.server_timestamp.timestamp_millis().max(0) as u64;
    event
}

fn chat_clear(m: &ClearChatMessage) -> Event {
    let data = match &m.action {
        ClearChatAction::ChatCleared => json!({"user_login": null, "duration_s": null}),
        ClearChatAction::UserBanned {
            user_login,
            user_id,
        } => {
            json!({"user_login": user_login, "user_id": user_id, "duration_s": null, "ban": true})
        }
        ClearChatAction::UserTimedOut {
            user_login,
            user_id,
            timeout_length,
        } => json!({
            "user_login": user_login, "user_id": user_id, "duration_s": timeout_length.as_secs(), "ban": false
        }),
    };
    let mut event = Event::new(
        crate::event::Platform::Twitch,
        &m.channel_login,
        Kind::ChatClear,
        data,
    );
    event.at = m.server_timestamp.timestamp_millis().max(0) as u64;
    event
}

/// One emote occurrence from the `emotes` tag: `id:start-end,start-end/id:…`, inclusive
/// positions counted in Unicode code points (https://dev.twitch.tv/docs/irc/tags/).
#[derive(Debug, Clone, PartialEq)]
pub struct EmoteRange {
    pub id: String,
    pub start: usize,
    pub end: usize,
}

/// Parses the `emotes` tag, skipping anything malformed.
pub fn parse_emotes(tag: &str) -> Vec<EmoteRange> {
    let mut out = Vec::new();
    for group in tag.split('/').filter(|g| !g.is_empty()) {
        let Some((id, ranges)) = group.split_once(':') else {
            continue;
        };
        for range in ranges.split(',') {
            let Some((a, b)) = range.split_once('-') else {
                continue;
            };
            if let (Ok(start), Ok(end)) = (a.parse::<usize>(), b.parse::<usize>())
                && start <= end
            {
                out.push(EmoteRange {
                    id: id.to_string(),
                    start,
                    end,
                });
            }
        }
    }
    out.sort_by_key(|r| r.start);
    out
}

/// Splits `text` into text and emote elements. Twitch counts positions in code points, and its
/// ranges are sometimes shifted (by one after some characters, by the length of `ACTION ` in
/// `/me` resubs: twitchdev/issues#104, #175) or past the end: the whole message is tried at a
/// few offsets and the one where most ranges sit on word boundaries wins; what still does not
/// fit is clamped. Never panics, never splits a character, and the text is kept whole.
pub fn elements(text: &str, emotes_tag: &str) -> Vec<Element> {
    let chars: Vec<char> = text.chars().collect();
    let ranges = parse_emotes(emotes_tag);
    if ranges.is_empty() || chars.is_empty() {
        return text_element(text);
    }
    let fits = |start: isize, end: isize| {
        start >= 0
            && (end as usize) < chars.len()
            && start <= end
            && (start == 0 || chars[start as usize - 1].is_whitespace())
            && (end as usize + 1 == chars.len() || chars[end as usize + 1].is_whitespace())
    };
    let offsets: [isize; 7] = [0, -1, 1, -7, -8, -2, 2];
    let best = offsets
        .iter()
        .copied()
        .max_by_key(|off| {
            let hits = ranges
                .iter()
                .filter(|r| fits(r.start as isize + off, r.end as isize + off))
                .count();
            // Prefer the smallest shift among equals (max_by_key keeps the last maximum).
            (hits, -(off.abs()))
        })
        .unwrap_or(0);
    let mut out = Vec::new();
    let mut cursor = 0usize;
    for r in &ranges {
        let start = (r.start as isize + best).max(0) as usize;
        let end = ((r.end as isize + best).max(0) as usize).min(chars.len().saturating_sub(1));
        if start < cursor || start >= chars.len() || start > end {
            continue; // overlapping, or wholly past the end
        }
        if start > cursor {
            out.push(Element::Text {
                value: chars[cursor..start].iter().collect(),
            });
        }
        let name: String = chars[start..=end].iter().collect();
        out.push(Element::Emote {
            url: format!(
                "https://static-cdn.jtvnw.net/emoticons/v2/{}/default/dark/1.0",
                r.id
            ),
            id: r.id.clone(),
            name,
        });
        cursor = end + 1;
    }
    if cursor < chars.len() {
        out.push(Element::Text {
            value: chars[cursor..].iter().collect(),
        });
    }
    out
}

fn text_element(text: &str) -> Vec<Element> {
    if text.is_empty() {
        Vec::new()
    } else {
        vec![Element::Text {
            value: text.to_string(),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(els: &[Element]) -> Vec<String> {
        els.iter()
            .map(|e| match e {
                Element::Text { value } => format!("t:{value}"),
                Element::Emote { id, name, .. } => format!("e:{id}:{name}"),
            })
            .collect()
    }

    fn joined(els: &[Element]) -> String {
        els.iter()
            .map(|e| match e {
                Element::Text { value } => value.as_str(),
                Element::Emote { name, .. } => name.as_str(),
            })
            .collect()
    }

    #[test]
    fn a_first_message_is_marked_and_others_are_not() {
        let line = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/irc/privmsg_reply_parent.txt"
        ))
        .expect("fixture");
        for (tag, first) in [("first-msg=0", false), ("first-msg=1", true)] {
            let line = line.trim().replacen("first-msg=0", tag, 1);
            let irc = IRCMessage::parse(&line).expect("irc line");
            let message = ServerMessage::try_from(irc).expect("privmsg");
            let events = Mapper::default().map(&message, |_, e| e);
            assert_eq!(
                events[0].data["first_message"] == serde_json::json!(true),
                first
            );
        }
    }

    #[test]
    fn emoji_before_the_emote_counts_as_one_position() {
        let text = "👉 <3 👉 <3 👉 <3";
        let els = elements(text, "483:2-3,7-8,12-13");
        assert_eq!(
            names(&els),
            [
                "t:👉 ", "e:483:<3", "t: 👉 ", "e:483:<3", "t: 👉 ", "e:483:<3"
            ]
        );
        assert_eq!(joined(&els), text);
    }

    #[test]
    fn several_emotes_and_ranges_in_any_order() {
        let text = "Kappa Keepo Kappa Kappa test Keepo Keepo 123 :) :) :P";
        let els = elements(
            text,
            "1902:6-10,29-33,35-39/499:45-46,48-49/490:51-52/25:0-4,12-16,18-22",
        );
        let emotes: Vec<String> = names(&els)
            .into_iter()
            .filter(|n| n.starts_with("e:"))
            .collect();
        assert_eq!(
            emotes,
            [
                "e:25:Kappa",
                "e:1902:Keepo",
                "e:25:Kappa",
                "e:25:Kappa",
                "e:1902:Keepo",
                "e:1902:Keepo",
                "e:499::)",
                "e:499::)",
                "e:490::P"
            ]
        );
        assert_eq!(joined(&els), text);
    }

    #[test]
    fn a_range_past_the_end_is_clamped_without_panic() {
        // "…förtal Kappa": Kappa is at 40-44 in code points; Twitch said 41-45.
        let text = "Då kan du begära skadestånd och förtal Kappa";
        let els = elements(text, "25:41-45");
        assert_eq!(names(&els).last().map(String::as_str), Some("e:25:Kappa"));
        assert_eq!(joined(&els), text);
        // Wholly out of range: text only, intact.
        let els = elements(text, "25:44-48");
        assert_eq!(joined(&els), text);
        let els = elements(text, "25:400-480");
        assert_eq!(names(&els), [format!("t:{text}")]);
    }

    #[test]
    fn off_by_one_after_cyrillic_is_realigned() {
        let text = "Я не такой красивый. Не урод, но до тебя далеко LUL";
        let els = elements(text, "425618:49-51");
        assert_eq!(names(&els).last().map(String::as_str), Some("e:425618:LUL"));
        assert_eq!(joined(&els), text);
    }

    #[test]
    fn action_offset_in_resubs_is_realigned() {
        let text = "Kappa TEST TEST Kappa :)";
        let els = elements(text, "25:7-11,23-27/499:29-30");
        let emotes: Vec<String> = names(&els)
            .into_iter()
            .filter(|n| n.starts_with("e:"))
            .collect();
        assert_eq!(emotes, ["e:25:Kappa", "e:25:Kappa", "e:499::)"]);
        assert_eq!(joined(&els), text);
    }

    #[test]
    fn malformed_tags_and_overlaps_are_skipped() {
        let text = "abc def";
        assert_eq!(joined(&elements(text, "x/1:a-b/2:3-1/3")), text);
        let els = elements(text, "1:0-2/2:1-5");
        assert_eq!(names(&els), ["e:1:abc", "t: def"]);
        assert!(elements("", "1:0-3").is_empty());
    }

    #[test]
    fn multibyte_text_is_never_split() {
        for tag in ["1:0-0", "1:1-1", "1:0-9", "1:2-3,3-4", "1:5-2"] {
            let text = "日本語 🎉é";
            assert_eq!(joined(&elements(text, tag)), text, "{tag}");
        }
    }
}
