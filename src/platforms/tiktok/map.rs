//! TikTok's webcast frames as our events, with no socket: bytes of one server frame in (gzip or
//! plain), events out, plus what the socket must do about it (an ack to send, the stream's
//! end). The transport ([`super`]) is one way to feed it; another (a signed URL, a browser
//! bridge) could feed it the same bytes.
//!
//! A combo gift arrives as a streak of messages with a growing count; it becomes one `gift`
//! event when the streak ends (or, if TikTok never says it ended, [`STREAK_WAIT`] after its
//! last message).

use std::collections::HashMap;
use std::io::Read as _;

use prost::Message as _;
use serde_json::json;

use super::proto;
use crate::event::{Author, ChatMessage, Element, Kind, Roles, safe_image_url};
use crate::platforms::source::Decoded;

/// A decompressed payload larger than this is refused (a real one is a few KiB).
const MAX_PAYLOAD: u64 = 4 << 20;
/// A streak with no message for this long is taken as ended at its last count.
pub const STREAK_WAIT_MS: u64 = 20_000;
/// Streaks followed at once; past this the oldest is sent as it stands.
const MAX_STREAKS: usize = 1000;
/// TikTok's unit for gifts.
pub const DIAMONDS: &str = "TIKTOK_DIAMONDS";

/// What one server frame says.
#[derive(Debug, Default)]
pub struct Read {
    /// Our events, in the frame's order.
    pub events: Vec<Decoded>,
    /// The client frame to send back (TikTok asked for an ack).
    pub ack: Option<Vec<u8>>,
    /// Likes counted in this frame, for the stats (not alerts).
    pub likes: u64,
    /// Viewers now, when the frame says.
    pub viewers: Option<u64>,
    /// The stream ended (a `stream.offline` is among the events).
    pub ended: bool,
    /// Messages of known types that did not decode, and of types overlayd does not read.
    pub malformed: usize,
    pub unknown: usize,
    /// The frame's `payload_type` (`msg`, `hb`, `im_enter_room_resp`, …).
    pub payload_type: String,
}

/// Decodes a room's frames, keeping the gift streaks that span them.
#[derive(Default)]
pub struct Decoder {
    streaks: HashMap<(u64, u64, u64), Streak>,
}

struct Streak {
    /// When its last message came (ms).
    last: u64,
    event: Decoded,
}

impl Decoder {
    /// Reads one binary frame of the socket. `now` (ms) times the streaks.
    pub fn read(&mut self, frame: &[u8], now: u64) -> Result<Read, String> {
        let frame =
            proto::PushFrame::decode(frame).map_err(|e| format!("not a webcast frame: {e}"))?;
        let mut read = Read {
            payload_type: frame.payload_type.clone(),
            ..Read::default()
        };
        if frame.payload_type != "msg" {
            return Ok(read);
        }
        let gzip = frame
            .headers
            .get("compress_type")
            .is_some_and(|c| c == "gzip")
            || frame.payload.starts_with(&[0x1f, 0x8b]);
        let payload = if gzip {
            gunzip(&frame.payload)?
        } else {
            frame.payload
        };
        let response = proto::Response::decode(payload.as_slice())
            .map_err(|e| format!("not a webcast response: {e}"))?;
        if response.needs_ack {
            read.ack = Some(ack(frame.log_id, &response.internal_ext));
        }
        for message in &response.messages {
            match self.message(message, now, &mut read) {
                Ok(()) => {}
                Err(Skip::Unknown) => read.unknown += 1,
                Err(Skip::Malformed(e)) => {
                    tracing::debug!(method = message.method, "TikTok message skipped: {e}");
                    read.malformed += 1;
                }
            }
        }
        read.events.extend(self.expired(now));
        Ok(read)
    }

    /// Streaks whose last message is [`STREAK_WAIT_MS`] old, as events.
    pub fn expired(&mut self, now: u64) -> Vec<Decoded> {
        let mut done: Vec<_> = self
            .streaks
            .iter()
            .filter(|(_, s)| now.saturating_sub(s.last) >= STREAK_WAIT_MS)
            .map(|(k, s)| (s.last, *k))
            .collect();
        done.sort();
        done.into_iter()
            .filter_map(|(_, k)| self.streaks.remove(&k).map(|s| s.event))
            .collect()
    }

    /// Every streak still open, as events (the stream or the session ended).
    pub fn finish(&mut self) -> Vec<Decoded> {
        self.expired(u64::MAX)
    }

    fn message(&mut self, m: &proto::Message, now: u64, read: &mut Read) -> Result<(), Skip> {
        let payload = m.payload.as_slice();
        match m.method.as_str() {
            "WebcastChatMessage" => read.events.push(chat(&decode::<proto::Chat>(payload)?)?),
            "WebcastGiftMessage" => {
                let gift = decode::<proto::Gift>(payload)?;
                if let Some(event) = self.gift(&gift, now) {
                    read.events.push(event);
                }
            }
            "WebcastSocialMessage" => {
                let social = decode::<proto::Social>(payload)?;
                if social.action == 1 {
                    let user = social.user.as_ref().ok_or(Skip::Malformed("no user"))?;
                    let (name, login) = names(user);
                    read.events.push(Decoded {
                        id: Some(format!("follow:{}", user.id)),
                        kind: Kind::Follow,
                        data: json!({"user_name": name, "user_login": login, "user_id": user.id.to_string()}),
                        at: at(&social.common),
                    });
                }
            }
            "WebcastSubNotifyMessage" => {
                let sub = decode::<proto::SubNotify>(payload)?;
                let user = sub.user.as_ref().ok_or(Skip::Malformed("no user"))?;
                let (name, login) = names(user);
                let id = sub.common.as_ref().map(|c| format!("sub:{}", c.msg_id));
                let (kind, data) = if sub.sub_month > 1 {
                    (
                        Kind::Resub,
                        json!({"user_name": name, "user_login": login, "tier": "1000", "months": sub.sub_month, "streak_months": null, "message": ""}),
                    )
                } else {
                    (
                        Kind::Sub,
                        json!({"user_name": name, "user_login": login, "tier": "1000", "is_gift": false}),
                    )
                };
                read.events.push(Decoded {
                    id,
                    kind,
                    data,
                    at: at(&sub.common),
                });
            }
            "WebcastImDeleteMessage" => {
                let delete = decode::<proto::ImDelete>(payload)?;
                let when = at(&delete.common);
                for id in &delete.delete_msg_ids {
                    read.events.push(Decoded {
                        id: None,
                        kind: Kind::ChatDelete,
                        data: json!({"message_id": id.to_string()}),
                        at: when,
                    });
                }
                for user in &delete.delete_user_ids {
                    read.events.push(Decoded {
                        id: None,
                        kind: Kind::ChatClear,
                        data: json!({"user_id": user.to_string(), "user_login": null, "duration_s": null}),
                        at: when,
                    });
                }
            }
            "WebcastLikeMessage" => read.likes += u64::from(decode::<proto::Like>(payload)?.count),
            "WebcastRoomUserSeqMessage" => {
                read.viewers = Some(decode::<proto::RoomUserSeq>(payload)?.viewers);
            }
            "WebcastControlMessage" => {
                let control = decode::<proto::Control>(payload)?;
                if control.action == 3 {
                    read.events.extend(self.finish());
                    read.events.push(Decoded {
                        id: None,
                        kind: Kind::StreamOffline,
                        data: json!({}),
                        at: at(&control.common),
                    });
                    read.ended = true;
                }
            }
            // Joins are not alerts, and nothing else shows them.
            "WebcastMemberMessage" => {}
            _ => return Err(Skip::Unknown),
        }
        Ok(())
    }

    /// A gift: an event now for a gift that is not a combo or a streak's end; a combo's
    /// messages before its end are kept until then.
    fn gift(&mut self, gift: &proto::Gift, now: u64) -> Option<Decoded> {
        let details = gift.gift.clone().unwrap_or_default();
        let user = gift.user.clone().unwrap_or_default();
        let count = gift.repeat_count.max(1);
        let diamonds = u64::from(details.diamond_count) * u64::from(count);
        let (name, login) = names(&user);
        let gift_name = if details.name.is_empty() {
            format!("gift {}", gift.gift_id)
        } else {
            details.name.clone()
        };
        let msg_id = gift.common.as_ref().map_or(0, |c| c.msg_id);
        let event = Decoded {
            id: Some(format!(
                "gift:{}:{}:{}:{msg_id}",
                user.id, gift.gift_id, gift.group_id
            )),
            kind: Kind::Gift,
            data: json!({
                "user_name": name, "user_login": login, "user_id": user.id.to_string(),
                "gift_id": gift.gift_id.to_string(), "gift_name": gift_name,
                "image": image(&details.image), "count": count,
                "amount": diamonds, "currency": DIAMONDS,
                "formatted": format!("{diamonds} {}", if diamonds == 1 { "diamond" } else { "diamonds" }),
                "message": "",
            }),
            at: at(&gift.common),
        };
        let key = (user.id, gift.gift_id, gift.group_id);
        if details.gift_type != 1 || gift.repeat_end == 1 {
            self.streaks.remove(&key);
            return Some(event);
        }
        if self.streaks.len() >= MAX_STREAKS && !self.streaks.contains_key(&key) {
            let oldest = self
                .streaks
                .iter()
                .min_by_key(|(_, s)| s.last)
                .map(|(k, _)| *k);
            if let Some(s) = oldest.and_then(|k| self.streaks.remove(&k)) {
                // Sent as it stands rather than lost; the caller publishes what it returns.
                self.streaks.insert(key, Streak { last: now, event });
                return Some(s.event);
            }
        }
        self.streaks.insert(key, Streak { last: now, event });
        None
    }
}

enum Skip {
    Unknown,
    Malformed(&'static str),
}

fn decode<M: prost::Message + Default>(bytes: &[u8]) -> Result<M, Skip> {
    M::decode(bytes).map_err(|_| Skip::Malformed("not a protobuf of its type"))
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_PAYLOAD + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("a gzip payload that does not inflate: {e}"))?;
    if out.len() as u64 > MAX_PAYLOAD {
        return Err(format!("a payload over {MAX_PAYLOAD} bytes inflated"));
    }
    Ok(out)
}

fn at(common: &Option<proto::Common>) -> Option<u64> {
    common.as_ref().map(|c| c.create_time).filter(|&t| t > 0)
}

/// A user's display name and login (the @name, lowercased).
fn names(user: &proto::User) -> (String, String) {
    let login = user.unique_id.to_lowercase();
    let name = if user.nickname.trim().is_empty() {
        user.unique_id.clone()
    } else {
        user.nickname.clone()
    };
    (name, login)
}

/// The first image URL that may reach an `<img src>`, or `""`.
fn image(image: &Option<proto::Image>) -> String {
    image
        .iter()
        .flat_map(|i| &i.url_list)
        .find(|u| safe_image_url(u))
        .cloned()
        .unwrap_or_default()
}

fn chat(c: &proto::Chat) -> Result<Decoded, Skip> {
    let user = c.user.as_ref().ok_or(Skip::Malformed("no user"))?;
    let common = c.common.as_ref().ok_or(Skip::Malformed("no common"))?;
    let identity = c.identity.clone().unwrap_or_default();
    let (name, login) = names(user);
    let avatar = image(&user.avatar_thumb);
    let message = ChatMessage {
        message_id: common.msg_id.to_string(),
        author: Author {
            id: user.id.to_string(),
            login,
            display_name: name,
            color: None,
            roles: Roles {
                broadcaster: identity.anchor,
                moderator: identity.moderator,
                vip: false,
                subscriber: identity.subscriber,
                verified: user.verified,
            },
            badges: Vec::new(),
            avatar: (!avatar.is_empty()).then_some(avatar),
        },
        elements: elements(&c.comment, &c.emotes),
        text: c.comment.clone(),
        is_action: false,
        bits: 0,
        reply: None,
        monetary: None,
        sticker: None,
        first_message: false,
    };
    Ok(Decoded {
        id: Some(message.message_id.clone()),
        kind: Kind::ChatMessage,
        data: serde_json::to_value(message).map_err(|_| Skip::Malformed("unserializable"))?,
        at: at(&c.common),
    })
}

/// The comment split at its emotes' places (counted in characters); an emote with no usable
/// image is left out, one placed past the end goes at the end.
fn elements(comment: &str, emotes: &[proto::EmoteAt]) -> Vec<Element> {
    let mut placed: Vec<(usize, Element)> = emotes
        .iter()
        .filter_map(|e| {
            let emote = e.emote.as_ref()?;
            let url = image(&emote.image);
            (!url.is_empty()).then(|| {
                (
                    e.place_in_comment as usize,
                    Element::Emote {
                        id: emote.emote_id.clone(),
                        name: format!("[{}]", emote.emote_id),
                        url,
                    },
                )
            })
        })
        .collect();
    placed.sort_by_key(|(at, _)| *at);
    let mut out = Vec::new();
    let mut text = String::new();
    let mut next = placed.into_iter().peekable();
    for (i, ch) in comment.chars().enumerate() {
        while next.peek().is_some_and(|(at, _)| *at <= i) {
            if !text.is_empty() {
                out.push(Element::Text {
                    value: std::mem::take(&mut text),
                });
            }
            out.extend(next.next().map(|(_, e)| e));
        }
        text.push(ch);
    }
    if !text.is_empty() {
        out.push(Element::Text { value: text });
    }
    out.extend(next.map(|(_, e)| e));
    out
}

/// The client's `hb` frame.
pub fn heartbeat(room_id: u64) -> Vec<u8> {
    client_frame("hb", proto::Heartbeat { room_id }.encode_to_vec(), 0)
}

/// The client's `im_enter_room` frame, sent once after the first heartbeat.
pub fn enter_room(room_id: u64) -> Vec<u8> {
    let enter = proto::EnterRoom {
        room_id,
        live_id: 12,
        identity: "audience".into(),
        filter_welcome_msg: "0".into(),
    };
    client_frame("im_enter_room", enter.encode_to_vec(), 0)
}

/// The ack of a response that asked for one: its frame's `log_id`, its `internal_ext`.
fn ack(log_id: u64, internal_ext: &[u8]) -> Vec<u8> {
    client_frame("ack", internal_ext.to_vec(), log_id)
}

fn client_frame(payload_type: &str, payload: Vec<u8>, log_id: u64) -> Vec<u8> {
    proto::PushFrame {
        log_id,
        payload_encoding: "pb".into(),
        payload_type: payload_type.into(),
        payload,
        ..proto::PushFrame::default()
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(messages: Vec<proto::Message>, ack: bool) -> Vec<u8> {
        let response = proto::Response {
            messages,
            internal_ext: b"ext".to_vec(),
            needs_ack: ack,
            ..proto::Response::default()
        };
        proto::PushFrame {
            log_id: 9,
            payload_type: "msg".into(),
            payload: response.encode_to_vec(),
            ..proto::PushFrame::default()
        }
        .encode_to_vec()
    }

    fn gift(count: u32, end: bool, combo: bool) -> proto::Message {
        let gift = proto::Gift {
            common: Some(proto::Common {
                msg_id: u64::from(count),
                ..proto::Common::default()
            }),
            gift_id: 1,
            repeat_count: count,
            user: Some(proto::User {
                id: 5,
                unique_id: "Ann".into(),
                ..proto::User::default()
            }),
            repeat_end: u32::from(end),
            group_id: 3,
            gift: Some(proto::GiftDetails {
                gift_type: if combo { 1 } else { 0 },
                diamond_count: 10,
                name: "Rose".into(),
                ..proto::GiftDetails::default()
            }),
            ..proto::Gift::default()
        };
        proto::Message {
            method: "WebcastGiftMessage".into(),
            payload: gift.encode_to_vec(),
            msg_id: 1,
        }
    }

    #[test]
    fn a_streak_is_one_gift_at_its_end_or_when_it_goes_quiet() {
        let mut d = Decoder::default();
        let r = d.read(
            &frame(vec![gift(1, false, true), gift(2, false, true)], false),
            0,
        );
        assert!(r.expect("read").events.is_empty());
        let r = d
            .read(&frame(vec![gift(3, true, true)], true), 10)
            .expect("read");
        assert_eq!(r.events.len(), 1);
        assert_eq!(r.events[0].data["amount"], 30);
        assert_eq!(r.events[0].data["count"], 3);
        assert!(r.ack.is_some());
        // A streak TikTok never ends is sent at its last count once it has been quiet.
        d.read(&frame(vec![gift(4, false, true)], false), 1_000)
            .expect("read");
        assert!(d.expired(1_000 + STREAK_WAIT_MS - 1).is_empty());
        let late = d.expired(1_000 + STREAK_WAIT_MS);
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].data["amount"], 40);
        // A gift that is not a combo is one event at once.
        let r = d
            .read(&frame(vec![gift(2, false, false)], false), 0)
            .expect("read");
        assert_eq!(r.events[0].data["amount"], 20);
        assert!(r.ack.is_none());
    }

    #[test]
    fn emotes_stand_where_the_comment_places_them() {
        let emote = |at: u32, id: &str| proto::EmoteAt {
            place_in_comment: at,
            emote: Some(proto::Emote {
                emote_id: id.into(),
                image: Some(proto::Image {
                    url_list: vec!["javascript:x".into(), format!("https://cdn.test/{id}")],
                }),
            }),
        };
        let els = elements(
            "héllo",
            &[emote(99, "end"), emote(0, "start"), emote(2, "mid")],
        );
        let kinds: Vec<String> = els
            .iter()
            .map(|e| match e {
                Element::Text { value } => value.clone(),
                Element::Emote { id, url, .. } => format!("<{id} {url}>"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "<start https://cdn.test/start>",
                "hé",
                "<mid https://cdn.test/mid>",
                "llo",
                "<end https://cdn.test/end>"
            ]
        );
    }

    #[test]
    fn a_payload_that_inflates_past_the_bound_is_refused() {
        use std::io::Write as _;
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; (MAX_PAYLOAD + 10) as usize])
            .expect("gzip");
        let bomb = proto::PushFrame {
            payload_type: "msg".into(),
            payload: z.finish().expect("gzip"),
            ..proto::PushFrame::default()
        };
        let e = Decoder::default()
            .read(&bomb.encode_to_vec(), 0)
            .expect_err("refused");
        assert!(e.contains("inflated"), "{e}");
    }
}
