//! Chat statistics per channel: total messages, unique chatters, top chatters and messages per
//! minute. Fed by every `chat.message` the bus carries, whatever its source.

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;
use serde::Serialize;

use crate::event::{Event, Kind};

/// A channel's chat stats as a shared store keeps them, to start counting from.
#[derive(Debug, Default, Clone)]
pub struct StatsSeed {
    pub messages: u64,
    pub platforms: Vec<(String, u64)>,
    /// `(platform:login, display name, messages)`.
    pub chatters: Vec<(String, String, u64)>,
    /// When the recent chat messages were sent (for messages per minute).
    pub recent: Vec<u64>,
}

/// Chatters tracked per channel before the least active are forgotten: a raid of 50,000
/// viewers must not grow this without bound. Counts of forgotten chatters stay in the totals.
pub const MAX_CHATTERS: usize = 50_000;
/// The window of "messages per minute".
const RATE_WINDOW_MS: u64 = 60_000;

#[derive(Default)]
struct ChannelStats {
    messages: u64,
    chatters: HashMap<String, Chatter>,
    recent: VecDeque<u64>,
    per_platform: HashMap<String, u64>,
    /// Likes per platform (TikTok's): counted, never shown as events.
    likes: HashMap<String, u64>,
    /// Support events per platform: subs, gifts, cheers, tips.
    support: HashMap<String, u64>,
}

struct Chatter {
    display_name: String,
    count: u64,
    id: String,
    roles: ChatterRoles,
}

/// A snapshot for the API and the stats overlay.
#[derive(Clone, Debug, Serialize, Default, PartialEq)]
pub struct Snapshot {
    pub channel: String,
    pub messages: u64,
    pub chatters: usize,
    pub per_minute: usize,
    pub top: Vec<TopChatter>,
    pub platforms: HashMap<String, u64>,
    /// Likes (TikTok's) this session, of the platform asked for or all.
    pub likes: u64,
    /// Support events per platform since the server started: subs and memberships, gifts
    /// (a gift bomb once), cheers, tips (Super Chats, Super Stickers, Kicks), platform gifts.
    pub support: HashMap<String, u64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TopChatter {
    pub login: String,
    pub display_name: String,
    pub count: u64,
    /// The platform's user id, as of their last message (empty when not known).
    pub id: String,
    pub platform: String,
    pub roles: ChatterRoles,
}

/// A chatter's roles as of their last message.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct ChatterRoles {
    pub broadcaster: bool,
    pub moderator: bool,
    pub subscriber: bool,
    pub verified: bool,
}

#[derive(Default)]
pub struct Stats {
    channels: Mutex<HashMap<String, ChannelStats>>,
}

impl Stats {
    /// Who `event` counts for: `(platform:login, display name)` if it is a chat message that
    /// counts in the stats (not a replay of history).
    pub fn chatter_of(event: &Event) -> Option<(String, String)> {
        // Seeded history and replayed recordings are shown, never counted.
        if event.kind != Kind::ChatMessage || event.history || event.replay {
            return None;
        }
        let author = &event.data["author"];
        let login = author["login"].as_str().unwrap_or_default();
        let display = author["display_name"]
            .as_str()
            .filter(|d| !d.is_empty())
            .unwrap_or(login);
        Some((format!("{}:{login}", event.platform), display.to_string()))
    }

    /// Counts `event` if it is a chat message or support.
    pub fn record(&self, event: &Event) {
        let support = matches!(
            event.kind,
            Kind::Sub | Kind::Resub | Kind::GiftBomb | Kind::Cheer | Kind::Gift | Kind::Tip
        ) || (event.kind == Kind::SubGift && event.data["giftbomb_id"].is_null());
        if support && !event.history && !event.replay {
            let mut channels = self.channels.lock();
            let stats = channels.entry(event.channel.clone()).or_default();
            *stats.support.entry(event.platform.clone()).or_default() += 1;
            return;
        }
        let Some((key, display)) = Stats::chatter_of(event) else {
            return;
        };
        let mut channels = self.channels.lock();
        let stats = channels.entry(event.channel.clone()).or_default();
        stats.messages += 1;
        *stats
            .per_platform
            .entry(event.platform.clone())
            .or_default() += 1;
        stats.recent.push_back(event.at);
        while stats
            .recent
            .front()
            .is_some_and(|&t| t + RATE_WINDOW_MS < event.at)
        {
            stats.recent.pop_front();
        }
        if !stats.chatters.contains_key(&key) && stats.chatters.len() >= MAX_CHATTERS {
            forget_least_active(&mut stats.chatters, MAX_CHATTERS / 10);
        }
        let chatter = stats.chatters.entry(key).or_insert(Chatter {
            display_name: display.clone(),
            count: 0,
            id: String::new(),
            roles: ChatterRoles::default(),
        });
        chatter.count += 1;
        chatter.display_name = display;
        let author = &event.data["author"];
        let flag = |k: &str| author["roles"][k].as_bool().unwrap_or(false);
        chatter.id = author["id"].as_str().unwrap_or_default().to_string();
        chatter.roles = ChatterRoles {
            broadcaster: flag("broadcaster"),
            moderator: flag("moderator"),
            subscriber: flag("subscriber"),
            verified: flag("verified"),
        };
    }

    /// Counts `events` (oldest first) as having come before everything counted so far: the
    /// stored chat recounted after a restart, while new chat may already be coming in.
    pub fn record_earlier(&self, events: &[Event]) {
        let earlier = Stats::default();
        for event in events {
            earlier.record(event);
        }
        let earlier = std::mem::take(&mut *earlier.channels.lock());
        let mut channels = self.channels.lock();
        for (channel, old) in earlier {
            let now = channels.entry(channel).or_default();
            now.messages += old.messages;
            for (platform, n) in old.per_platform {
                *now.per_platform.entry(platform).or_default() += n;
            }
            let mut recent: Vec<u64> = old.recent.into_iter().chain(now.recent.drain(..)).collect();
            recent.sort_unstable();
            let newest = recent.last().copied().unwrap_or(0);
            now.recent = recent
                .into_iter()
                .filter(|&t| t + RATE_WINDOW_MS >= newest)
                .collect();
            for (key, chatter) in old.chatters {
                match now.chatters.get_mut(&key) {
                    // What they were called last is what the newer count knows.
                    Some(seen) => seen.count += chatter.count,
                    None => {
                        if now.chatters.len() >= MAX_CHATTERS {
                            forget_least_active(&mut now.chatters, MAX_CHATTERS / 10);
                        }
                        now.chatters.insert(key, chatter);
                    }
                }
            }
        }
    }

    /// Counts `likes` on `platform` for `channel`.
    pub fn add_likes(&self, channel: &str, platform: &str, likes: u64) {
        let mut channels = self.channels.lock();
        let stats = channels.entry(channel.to_string()).or_default();
        *stats.likes.entry(platform.to_string()).or_default() += likes;
    }

    /// Replaces `channel`'s counts with ones kept elsewhere (a shared store), so this
    /// instance counts on from the same totals.
    pub fn seed(&self, channel: &str, seed: &StatsSeed) {
        let mut stats = ChannelStats {
            messages: seed.messages,
            per_platform: seed.platforms.iter().cloned().collect(),
            recent: seed.recent.iter().copied().collect(),
            ..ChannelStats::default()
        };
        for (key, display_name, count) in &seed.chatters {
            stats.chatters.insert(
                key.clone(),
                Chatter {
                    display_name: display_name.clone(),
                    count: *count,
                    id: String::new(),
                    roles: ChatterRoles::default(),
                },
            );
        }
        self.channels.lock().insert(channel.to_string(), stats);
    }

    pub fn snapshot(&self, channel: &str, top: usize) -> Snapshot {
        self.snapshot_of(channel, None, top)
    }

    /// [`Stats::snapshot`] of one platform's chat only (`None`: every platform's).
    pub fn snapshot_of(&self, channel: &str, platform: Option<&str>, top: usize) -> Snapshot {
        let channels = self.channels.lock();
        let Some(stats) = channels.get(channel) else {
            return Snapshot {
                channel: channel.to_string(),
                ..Snapshot::default()
            };
        };
        let now = crate::event::now_ms();
        let mut list: Vec<TopChatter> = stats
            .chatters
            .iter()
            .filter_map(|(key, c)| {
                let (from, login) = key.split_once(':').unwrap_or(("", key.as_str()));
                platform.is_none_or(|p| p == from).then(|| TopChatter {
                    login: login.to_string(),
                    display_name: c.display_name.clone(),
                    count: c.count,
                    id: c.id.clone(),
                    platform: from.to_string(),
                    roles: c.roles,
                })
            })
            .collect();
        let (messages, chatters) = match platform {
            None => (stats.messages, stats.chatters.len()),
            Some(p) => (
                stats.per_platform.get(p).copied().unwrap_or_default(),
                list.len(),
            ),
        };
        list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.login.cmp(&b.login)));
        list.truncate(top);
        Snapshot {
            channel: channel.to_string(),
            messages,
            chatters,
            per_minute: stats
                .recent
                .iter()
                .filter(|&&t| t + RATE_WINDOW_MS >= now)
                .count(),
            top: list,
            platforms: stats.per_platform.clone(),
            likes: match platform {
                None => stats.likes.values().sum(),
                Some(p) => stats.likes.get(p).copied().unwrap_or_default(),
            },
            support: stats.support.clone(),
        }
    }
}

/// Forgets `n` of the least active chatters in one pass, so a channel at the cap pays for a
/// scan once per `n` new chatters, not on every one.
fn forget_least_active(chatters: &mut HashMap<String, Chatter>, n: usize) {
    if n == 0 || chatters.is_empty() {
        return;
    }
    let mut counts: Vec<u64> = chatters.values().map(|c| c.count).collect();
    let n = n.min(counts.len());
    let cut = *counts.select_nth_unstable(n - 1).1;
    // Everyone below the cut goes; those at it go until `n` are gone.
    let below = counts.iter().filter(|&&c| c < cut).count();
    let mut at_cut = n - below;
    chatters.retain(|_, c| {
        if c.count < cut {
            false
        } else if c.count == cut && at_cut > 0 {
            at_cut -= 1;
            false
        } else {
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, Value};

    fn chat(login: &str) -> Event {
        let mut data = Map::new();
        data.insert("user_name".into(), Value::from(login));
        crate::event::complete(Kind::ChatMessage, &mut data);
        Event::new(
            crate::event::Platform::Twitch,
            "c",
            Kind::ChatMessage,
            Value::Object(data),
        )
    }

    #[test]
    fn counts_messages_chatters_and_top() {
        let stats = Stats::default();
        for login in ["ann", "bob", "ann", "cy", "ann", "bob"] {
            stats.record(&chat(login));
        }
        let s = stats.snapshot("c", 2);
        assert_eq!(s.messages, 6);
        assert_eq!(s.chatters, 3);
        assert_eq!(s.per_minute, 6);
        let top: Vec<_> = s.top.iter().map(|t| (t.login.as_str(), t.count)).collect();
        assert_eq!(top, [("ann", 3), ("bob", 2)]);
        assert_eq!(stats.snapshot("other", 5).messages, 0);
    }

    #[test]
    fn the_least_active_are_forgotten_in_one_pass() {
        let mut chatters: HashMap<String, Chatter> = (0..10u64)
            .map(|i| {
                let c = Chatter {
                    display_name: format!("c{i}"),
                    count: i % 5,
                    id: String::new(),
                    roles: ChatterRoles::default(),
                };
                (format!("c{i}"), c)
            })
            .collect();
        forget_least_active(&mut chatters, 3);
        assert_eq!(chatters.len(), 7);
        // Counts were 0,0,1,1,2,2,3,3,4,4: both zeros and one of the ones are gone.
        let mut left: Vec<u64> = chatters.values().map(|c| c.count).collect();
        left.sort_unstable();
        assert_eq!(left, [1, 2, 2, 3, 3, 4, 4]);
    }
}
