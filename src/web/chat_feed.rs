//! A chat socket's feed: the chat messages and stats of the chats one connection follows, as
//! the WebSocket frames the chat protocol sends. Each event's frame is made once for every client
//! of its chat, and a client with nothing else to do is written to by the fan-out writers
//! ([`super::fanout`]), as an overlay's event stream is: ten thousand tools on one chat do not
//! wake ten thousand tasks per message.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::chat_protocol as proto;
use super::fanout::{Batch, Drained, Feed, Ready};
use crate::bus::{Bus, Item, Message, Next, Subscription};
use crate::event::{Event, Kind, Platform};

/// The chat messages of some chats, from a point in the bus on.
pub struct ChatFeed {
    bus: Arc<Bus>,
    sub: Subscription,
    /// The chats followed: the channel their messages are published on, and the platform.
    chats: Vec<(String, Platform)>,
    ended: bool,
}

impl ChatFeed {
    /// The messages of `chats` after event `since`; `None` when there are no chats.
    pub fn new(bus: &Arc<Bus>, chats: Vec<(String, Platform)>, since: u64) -> Option<ChatFeed> {
        let mut channels: Vec<String> = chats.iter().map(|(c, _)| c.clone()).collect();
        channels.sort();
        channels.dedup();
        (!channels.is_empty()).then(|| ChatFeed {
            sub: bus.subscribe(channels, Some(since)),
            bus: bus.clone(),
            chats,
            ended: false,
        })
    }

    /// The last event this feed went past: where a feed for other chats goes on from, with
    /// nothing lost or repeated.
    pub fn last_id(&self) -> u64 {
        self.sub.last_id()
    }

    fn follows(&self, e: &Event) -> bool {
        e.kind == Kind::ChatMessage
            && self
                .chats
                .iter()
                .any(|(channel, platform)| *channel == e.channel && platform.as_str() == e.platform)
    }
}

impl Feed for ChatFeed {
    fn ready_within(&mut self, budget: &mut u64) -> Ready {
        if self.ended {
            return Ready::End(None);
        }
        let mut batch = Batch::default();
        let drained = loop {
            if batch.is_full() {
                break Drained::Full;
            }
            match self.sub.try_next_within(&self.bus, budget) {
                Next::Message(Message::Event(item)) if self.follows(&item.event) => {
                    batch.push(frame(&item));
                }
                Next::Message(Message::ChatStats {
                    channel,
                    platform,
                    frame,
                }) if self
                    .chats
                    .iter()
                    .any(|(c, p)| *c == channel && *p == platform) =>
                {
                    batch.push(frame)
                }
                Next::Empty => break Drained::Empty,
                Next::Closed => {
                    self.ended = true;
                    break Drained::End;
                }
                // The protocol has no resync, keep-alive or theme messages.
                _ => {}
            }
        };
        batch.ready(drained)
    }
}

/// A chat event's message as one WebSocket text frame, made once and shared.
fn frame(item: &Item) -> Bytes {
    item.frame(proto::FRAME_KEY, |e| {
        proto::chat(e)
            .map(|m| text_frame(m.to_string().as_bytes()))
            .unwrap_or_default()
    })
}

/// `payload` as a final, unmasked text frame (RFC 6455 §5.2: a server never masks).
pub fn text_frame(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    out.put_u8(0x81);
    match payload.len() {
        n if n < 126 => out.put_u8(n as u8),
        n if n <= 0xffff => {
            out.put_u8(126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(127);
            out.put_u64(n as u64);
        }
    }
    out.extend_from_slice(payload);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocket};

    use super::*;

    #[test]
    fn text_frames_of_every_length_form_are_read_back_by_a_client() {
        // 7-bit, 16-bit and 64-bit lengths, and each boundary.
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let text: String = (0..len).map(|i| (b'a' + (i % 26) as u8) as char).collect();
            let mut two = text_frame(text.as_bytes()).to_vec();
            two.extend_from_slice(&text_frame("after".as_bytes()));
            let mut client = WebSocket::from_raw_socket(Cursor::new(two), Role::Client, None);
            assert_eq!(
                client.read().expect("a frame"),
                Message::text(text),
                "{len}"
            );
            assert_eq!(
                client.read().expect("the next frame"),
                Message::text("after")
            );
        }
    }
}
