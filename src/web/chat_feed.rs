//! A chat socket's feed: the chat messages and stats of the chats one connection follows, as
//! the WebSocket frames the chat protocol sends. Each event's frame is made once for every client
//! of its chat, and a client with nothing else to do is written to by the fan-out writers
//! ([`super::fanout`]), as an overlay's event stream is: ten thousand tools on one chat do not
//! wake ten thousand tasks per message.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::chat_protocol::{self as proto, StatsSlot};
use super::fanout::{Batch, Drained, Feed, Ready};
use crate::bus::{Bus, Item, Message, Next, Subscription};
use crate::event::{Event, Kind, Platform};

/// The chat messages of some chats, from a point in the bus on.
pub struct ChatFeed {
    bus: Arc<Bus>,
    sub: Subscription,
    /// The chats followed.
    chats: Vec<Followed>,
    ended: bool,
}

/// A chat a feed follows: the channel its messages are published on, the platform, its stats
/// slot and the number of the last stats frame this feed wrote.
struct Followed {
    channel: String,
    platform: Platform,
    stats: Arc<StatsSlot>,
    told: u64,
}

impl ChatFeed {
    /// The messages of `chats` (each with its stats slot) after event `since`; `None` when
    /// there are no chats. Stats are written from the next change on: the stats a chat stands
    /// at are told when it is followed.
    pub fn new(
        bus: &Arc<Bus>,
        chats: Vec<(String, Platform, Arc<StatsSlot>)>,
        since: u64,
    ) -> Option<ChatFeed> {
        let mut channels: Vec<String> = chats.iter().map(|(c, _, _)| c.clone()).collect();
        channels.sort();
        channels.dedup();
        (!channels.is_empty()).then(|| ChatFeed {
            sub: bus.subscribe(channels, Some(since)),
            bus: bus.clone(),
            chats: chats
                .into_iter()
                .map(|(channel, platform, stats)| Followed {
                    told: stats.version(),
                    channel,
                    platform,
                    stats,
                })
                .collect(),
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
                .any(|c| c.channel == e.channel && c.platform.as_str() == e.platform)
    }

    /// Adds to `batch` the stats frames newer than this feed wrote, of every chat it follows.
    fn add_stats(&mut self, batch: &mut Batch) {
        for chat in &mut self.chats {
            if let Some((version, frame)) = chat.stats.newer_than(chat.told) {
                chat.told = version;
                batch.push(frame);
            }
        }
    }
}

impl Feed for ChatFeed {
    fn ready_within(&mut self, budget: &mut u64, limit: usize) -> Ready {
        if self.ended {
            return Ready::End(None);
        }
        let mut batch = Batch::up_to(limit);
        // Whether a chat message is written: the stats that changed go in the same write.
        let mut chat = false;
        let drained = loop {
            if batch.is_full() {
                break Drained::Full;
            }
            match self.sub.try_next_within(&self.bus, budget) {
                Next::Message(Message::Event(item)) if self.follows(&item.event) => {
                    batch.push(frame(&item));
                    chat = true;
                }
                Next::Message(Message::ChatStats {
                    channel,
                    platform,
                    version,
                    frame,
                }) => {
                    let quiet = self.chats.iter_mut().find(|c| {
                        c.channel == channel && c.platform == platform && c.told < version
                    });
                    if let Some(quiet) = quiet {
                        quiet.told = version;
                        batch.push(frame);
                    }
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
        if chat {
            self.add_stats(&mut batch);
        }
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

    /// A chat line in Twitch channel `c`.
    fn line(text: &str) -> Event {
        let mut data = serde_json::Map::new();
        data.insert("user_name".into(), "ann".into());
        data.insert("text".into(), text.into());
        crate::event::complete(Kind::ChatMessage, &mut data);
        Event::new(Platform::Twitch, "c", Kind::ChatMessage, data.into())
    }

    /// Everything a feed has ready now, as the texts of its frames.
    fn texts(feed: &mut ChatFeed) -> Vec<String> {
        let Ready::Frames { bytes, .. } = feed.ready() else {
            return Vec::new();
        };
        let mut client =
            WebSocket::from_raw_socket(Cursor::new(bytes.to_vec()), Role::Client, None);
        std::iter::from_fn(|| client.read().ok())
            .map(|m| m.into_text().expect("text").to_string())
            .collect()
    }

    #[test]
    fn a_chats_changed_stats_go_with_its_next_message_and_on_the_bus_only_once_quiet() {
        let bus = Arc::new(Bus::new(100));
        let cache = Arc::new(proto::StatsCache::default());
        let stats = crate::stats::Stats::default();
        let following = cache.follow("c", Platform::Twitch);
        let mut feed = ChatFeed::new(
            &bus,
            vec![("c".into(), Platform::Twitch, following.slot().clone())],
            0,
        )
        .expect("a feed");
        let say = |text: &str| {
            let event = line(text);
            stats.record(&event);
            bus.publish(event).expect("published");
        };
        let kinds = |texts: &[String]| -> Vec<String> {
            texts
                .iter()
                .map(|t| {
                    let v: serde_json::Value = serde_json::from_str(t).expect("json");
                    v["type"].as_str().expect("a type").to_string()
                })
                .collect()
        };
        say("one");
        assert_eq!(kinds(&texts(&mut feed)), ["chat"]);
        let frame = |t: &str| text_frame(t.as_bytes());
        assert!(
            cache.tick(&stats, frame).is_empty(),
            "kept for the next message"
        );
        assert!(texts(&mut feed).is_empty(), "no write of their own");
        say("two");
        let written = texts(&mut feed);
        assert_eq!(kinds(&written), ["chat", "stats"], "in the same write");
        assert!(written[1].contains("\"totalMessages\":1"), "{}", written[1]);
        // The count moved again, and the chat goes quiet: on the bus, once.
        std::thread::sleep(proto::StatsCache::FRESH);
        assert!(
            cache.tick(&stats, frame).is_empty(),
            "kept for the next message"
        );
        let quiet = cache.tick(&stats, frame);
        assert_eq!(quiet.len(), 1, "quiet: on the bus");
        for q in quiet.into_iter().chain(std::iter::once(proto::Quiet {
            channel: "c".into(),
            platform: Platform::Twitch,
            version: 1,
            frame: text_frame(b"{\"type\":\"stats\",\"old\":true}"),
        })) {
            bus.announce(crate::bus::Message::ChatStats {
                channel: q.channel,
                platform: q.platform,
                version: q.version,
                frame: q.frame,
            });
        }
        let written = texts(&mut feed);
        assert_eq!(
            kinds(&written),
            ["stats"],
            "the newest, once; an older one skipped"
        );
        assert!(written[0].contains("\"totalMessages\":2"), "{}", written[0]);
    }

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

    #[test]
    fn a_streams_own_task_gathers_a_smaller_batch_than_a_writer() {
        use crate::web::fanout::{MAX_BATCH, TASK_BATCH};
        let bus = Arc::new(Bus::new(1000));
        let cache = Arc::new(proto::StatsCache::default());
        let following = cache.follow("c", Platform::Twitch);
        let mut feed = ChatFeed::new(
            &bus,
            vec![("c".into(), Platform::Twitch, following.slot().clone())],
            0,
        )
        .expect("a feed");
        // 400 lines of about 600 bytes each: some 240 KB ready at once.
        for n in 0..400 {
            bus.publish(line(&format!("{n} {}", "x".repeat(300))))
                .expect("published");
        }
        let size = |ready: Ready| match ready {
            Ready::Frames { bytes, more: true } => bytes.len(),
            _ => panic!("a full batch, with more ready"),
        };
        // A task has the stream because its socket filled: it gathers no more than the socket
        // is likely to take, and what it holds while it waits stays small.
        let task = size(feed.ready());
        assert!((TASK_BATCH..TASK_BATCH + 2048).contains(&task), "{task}");
        // A writer serves streams whose sockets took everything so far: one write for more.
        let mut unlimited = u64::MAX;
        let writer = size(feed.ready_within(&mut unlimited, MAX_BATCH));
        assert!((MAX_BATCH..MAX_BATCH + 2048).contains(&writer), "{writer}");
        assert!(
            task * 3 < writer,
            "a slow client's batch is a fraction of a writer's"
        );
    }
}
