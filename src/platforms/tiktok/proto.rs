//! The part of TikTok's webcast protobuf schema overlayd reads, as prost structs (derived: no
//! build script, no protoc). Tag numbers are the public schemas' (`../shared/notes/tiktok.md`
//! §4.2); fields the two public schemas disagree on are read as the wider type (`bytes` for a
//! string-or-bytes field). Fields not listed here are skipped by prost as unknown.

use std::collections::HashMap;

/// The socket's envelope, both ways: `payload_type` says what `payload` is.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushFrame {
    #[prost(uint64, tag = "1")]
    pub seq_id: u64,
    #[prost(uint64, tag = "2")]
    pub log_id: u64,
    #[prost(uint64, tag = "3")]
    pub service: u64,
    #[prost(uint64, tag = "4")]
    pub method: u64,
    #[prost(map = "string, string", tag = "5")]
    pub headers: HashMap<String, String>,
    #[prost(string, tag = "6")]
    pub payload_encoding: String,
    /// `msg`, `hb`, `ack`, `im_enter_room`, `im_enter_room_resp`.
    #[prost(string, tag = "7")]
    pub payload_type: String,
    #[prost(bytes = "vec", tag = "8")]
    pub payload: Vec<u8>,
}

/// A `msg` frame's payload (after gzip when the frame says so).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Response {
    #[prost(message, repeated, tag = "1")]
    pub messages: Vec<Message>,
    #[prost(string, tag = "2")]
    pub cursor: String,
    /// Echoed in the ack; a string in one schema, bytes in the other.
    #[prost(bytes = "vec", tag = "5")]
    pub internal_ext: Vec<u8>,
    #[prost(uint64, tag = "8")]
    pub heartbeat_duration: u64,
    #[prost(bool, tag = "9")]
    pub needs_ack: bool,
}

/// One message of a response: its type name and its own protobuf.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    /// `WebcastChatMessage`, `WebcastGiftMessage`, ….
    #[prost(string, tag = "1")]
    pub method: String,
    #[prost(bytes = "vec", tag = "2")]
    pub payload: Vec<u8>,
    #[prost(uint64, tag = "3")]
    pub msg_id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Heartbeat {
    #[prost(uint64, tag = "1")]
    pub room_id: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EnterRoom {
    #[prost(uint64, tag = "1")]
    pub room_id: u64,
    #[prost(uint64, tag = "4")]
    pub live_id: u64,
    #[prost(string, tag = "5")]
    pub identity: String,
    #[prost(string, tag = "9")]
    pub filter_welcome_msg: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Common {
    #[prost(string, tag = "1")]
    pub method: String,
    #[prost(uint64, tag = "2")]
    pub msg_id: u64,
    #[prost(uint64, tag = "3")]
    pub room_id: u64,
    /// Milliseconds since 1970.
    #[prost(uint64, tag = "4")]
    pub create_time: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    #[prost(string, repeated, tag = "1")]
    pub url_list: Vec<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct User {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "3")]
    pub nickname: String,
    #[prost(message, optional, tag = "9")]
    pub avatar_thumb: Option<Image>,
    #[prost(bool, tag = "12")]
    pub verified: bool,
    /// The @name.
    #[prost(string, tag = "38")]
    pub unique_id: String,
}

/// How the author stands with the streamer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Identity {
    #[prost(bool, tag = "1")]
    pub gift_giver: bool,
    #[prost(bool, tag = "2")]
    pub subscriber: bool,
    #[prost(bool, tag = "3")]
    pub mutual: bool,
    #[prost(bool, tag = "4")]
    pub follower: bool,
    #[prost(bool, tag = "5")]
    pub moderator: bool,
    #[prost(bool, tag = "6")]
    pub anchor: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Emote {
    #[prost(string, tag = "1")]
    pub emote_id: String,
    #[prost(message, optional, tag = "2")]
    pub image: Option<Image>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EmoteAt {
    /// Where in the comment (in characters) the emote stands.
    #[prost(uint32, tag = "1")]
    pub place_in_comment: u32,
    #[prost(message, optional, tag = "2")]
    pub emote: Option<Emote>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Chat {
    #[prost(message, optional, tag = "1")]
    pub common: Option<Common>,
    #[prost(message, optional, tag = "2")]
    pub user: Option<User>,
    #[prost(string, tag = "3")]
    pub comment: String,
    #[prost(message, repeated, tag = "13")]
    pub emotes: Vec<EmoteAt>,
    #[prost(message, optional, tag = "18")]
    pub identity: Option<Identity>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct GiftDetails {
    #[prost(message, optional, tag = "1")]
    pub image: Option<Image>,
    /// 1: a combo gift, sent in streaks.
    #[prost(uint32, tag = "11")]
    pub gift_type: u32,
    #[prost(uint32, tag = "12")]
    pub diamond_count: u32,
    #[prost(string, tag = "16")]
    pub name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Gift {
    #[prost(message, optional, tag = "1")]
    pub common: Option<Common>,
    #[prost(uint64, tag = "2")]
    pub gift_id: u64,
    #[prost(uint32, tag = "5")]
    pub repeat_count: u32,
    #[prost(uint32, tag = "6")]
    pub combo_count: u32,
    #[prost(message, optional, tag = "7")]
    pub user: Option<User>,
    #[prost(uint32, tag = "9")]
    pub repeat_end: u32,
    #[prost(uint64, tag = "11")]
    pub group_id: u64,
    #[prost(message, optional, tag = "15")]
    pub gift: Option<GiftDetails>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Social {
    #[prost(message, optional, tag = "1")]
    pub common: Option<Common>,
    #[prost(message, optional, tag = "2")]
    pub user: Option<User>,
    /// 1: a follow; 2-5: shares.
    #[prost(uint64, tag = "4")]
    pub action: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Like {
    #[prost(message, optional, tag = "1")]
    pub common: Option<Common>,
    #[prost(uint32, tag = "2")]
    pub count: u32,
    #[prost(uint32, tag = "3")]
    pub total: u32,
    #[prost(message, optional, tag = "5")]
    pub user: Option<User>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RoomUserSeq {
    #[prost(message, optional, tag = "1")]
    pub common: Option<Common>,
    /// Viewers now (called `total` in one schema).
    #[prost(uint64, tag = "3")]
    pub viewers: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Control {
    #[prost(message, optional, tag = "1")]
    pub common: Option<Common>,
    /// 3: the stream ended.
    #[prost(uint32, tag = "2")]
    pub action: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ImDelete {
    #[prost(message, optional, tag = "1")]
    pub common: Option<Common>,
    #[prost(uint64, repeated, tag = "2")]
    pub delete_msg_ids: Vec<u64>,
    #[prost(uint64, repeated, tag = "3")]
    pub delete_user_ids: Vec<u64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SubNotify {
    #[prost(message, optional, tag = "1")]
    pub common: Option<Common>,
    #[prost(message, optional, tag = "2")]
    pub user: Option<User>,
    #[prost(uint64, tag = "4")]
    pub sub_month: u64,
}
