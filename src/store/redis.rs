//! The shared log on Redis, for several instances behind a load balancer.
//!
//! Layout (every key starts with `[store] prefix`):
//! - `<p>:id`: the id counter. One Lua script takes the next id and appends the event to its
//!   channel's stream, so ids are ordered across instances and channels, and a stream never
//!   gets an id below one it already holds.
//! - `<p>:events:<channel>`: a Stream per channel, entry id `0-<event id>`, trimmed to the
//!   history length.
//! - `<p>:stats:<channel>` (hash: messages, `platform:<p>`), `<p>:chatters:<channel>`
//!   (sorted set of `platform:login` by messages) and `<p>:names:<channel>` (display names):
//!   the chat stats, updated by the same script as the event, so they never disagree with it.
//! - `<p>:channels`: every channel with events; `<p>:trimmed`: per channel, the newest id
//!   trimmed from its stream (a client resuming from before it is told to resync).
//!
//! An instance reads the streams of the channels it serves ([`Redis::follow`]) and fans out
//! what it reads, its own events included: every instance sends every event in the same
//! order, and a client may reconnect to any of them with its `Last-Event-ID`.

use std::collections::HashMap;
use std::time::Duration;

use ::redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use ::redis::{Client, Connection, Script};
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::log::{EventLog, StoreError, page_after};
use crate::backoff::Backoff;
use crate::event::{Event, Kind};
use crate::stats::StatsSeed;

/// How long one synchronous call may take before the store is reported unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one blocking read waits for new entries before asking again.
const READ_BLOCK_MS: u64 = 5_000;
/// Entries taken per read.
const READ_COUNT: usize = 1_000;

// Lua numbers are doubles: `'0-' .. id` would print a 16-digit id as 1.7e+15, so it is
// formatted with %d (exact below 2^53, which the clock-based ids stay under for centuries).
//
// A Redis that lost its data (restarted without persistence) has no counter: it starts again
// from the clock (ARGV[10]), which is beyond every id given before, so ids never go back.
const APPEND: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[10]) end
local id = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], string.format('0-%d', id),
  'channel', ARGV[2], 'kind', ARGV[3], 'platform', ARGV[4], 'at', ARGV[5],
  'history', ARGV[6], 'data', ARGV[7])
redis.call('SADD', KEYS[3], ARGV[2])
-- Trimmed in batches to the history length, remembering the newest id trimmed: a client
-- resuming from before it has a gap (Redis's own max-deleted-entry-id ignores trimming).
local keep = tonumber(ARGV[1])
local len = redis.call('XLEN', KEYS[2])
if len > keep + math.floor(keep / 10) + 16 then
  local old = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', len - keep)
  redis.call('XTRIM', KEYS[2], 'MAXLEN', keep)
  redis.call('HSET', KEYS[7], ARGV[2], old[#old][1])
end
if ARGV[8] ~= '' then
  redis.call('HINCRBY', KEYS[4], 'messages', 1)
  redis.call('HINCRBY', KEYS[4], 'platform:' .. ARGV[4], 1)
  redis.call('ZINCRBY', KEYS[5], 1, ARGV[8])
  redis.call('HSET', KEYS[6], ARGV[8], ARGV[9])
end
return id
";

// Only the ARGV[1] most active chatters are taken (what an instance keeps in memory), with
// their names fetched in slices (Lua's unpack takes a few thousand values at most).
const SNAPSHOT: &str = r"
local top = redis.call('ZREVRANGE', KEYS[3], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local names = {}
local members = {}
for i = 1, #top, 2 do members[#members + 1] = top[i] end
for i = 1, #members, 1000 do
  local slice = {}
  for j = i, math.min(i + 999, #members) do slice[#slice + 1] = members[j] end
  local got = redis.call('HMGET', KEYS[4], unpack(slice))
  for j = 1, #slice do names[#names + 1] = got[j] or '' end
end
return {redis.call('GET', KEYS[1]), redis.call('HGETALL', KEYS[2]), top, names}
";

/// The reply of [`SNAPSHOT`]: the id counter, the stats hash, the most active chatters with
/// their counts, and their display names in the same order ("" when unknown).
type Snapshot = (
    Option<u64>,
    HashMap<String, u64>,
    Vec<(String, f64)>,
    Vec<String>,
);

/// Takes or renews the claim on a channel's sources (KEYS[1]) for instance ARGV[1], for
/// ARGV[2] ms; 1 when this instance holds it.
const CLAIM: &str = r"
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not owner then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// What an instance needs to start serving a channel: the stats so far, and the id after
/// which it must read the channel's stream; both taken at the same instant.
#[derive(Debug, Clone)]
pub struct Attached {
    pub cursor: u64,
    pub stats: StatsSeed,
}

pub struct Redis {
    client: Client,
    /// The URL without its password, for messages.
    shown: String,
    prefix: String,
    keep: usize,
    /// The connection for calls made while the bus is locked (append, replay, attach):
    /// a plain blocking one, opened again after an error.
    conn: Mutex<Option<Connection>>,
    append: Script,
    snapshot: Script,
    claim: Script,
    release: Script,
}

impl Redis {
    /// Connects and checks the server can be used, so a wrong URL or a stopped server is
    /// reported at start.
    pub fn open(url: &str, prefix: &str, keep: usize) -> Result<Redis, StoreError> {
        let shown = match url.split_once('@') {
            Some((scheme_auth, host)) => {
                let scheme = scheme_auth.split("://").next().unwrap_or("redis");
                format!("{scheme}://…@{host}")
            }
            None => url.to_string(),
        };
        let client = Client::open(url).map_err(|e| StoreError {
            place: shown.clone(),
            message: format!("{e}; write [store] url as redis://host:port/db"),
        })?;
        let redis = Redis {
            client,
            shown,
            prefix: prefix.to_string(),
            keep: keep.max(1),
            conn: Mutex::new(None),
            append: Script::new(APPEND),
            snapshot: Script::new(SNAPSHOT),
            claim: Script::new(CLAIM),
            release: Script::new(RELEASE),
        };
        // Ids start from the clock like an in-memory bus's, so a Last-Event-ID kept from an
        // earlier run is behind them, never ahead.
        let start = crate::event::now_ms().saturating_mul(1000);
        redis.call(|c| {
            ::redis::cmd("SET")
                .arg(redis.key("id"))
                .arg(start)
                .arg("NX")
                .query::<Option<String>>(c)
        })?;
        Ok(redis)
    }

    fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.prefix)
    }

    fn stream(&self, channel: &str) -> String {
        format!("{}:events:{channel}", self.prefix)
    }

    fn error(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError {
            place: self.shown.clone(),
            message: format!("{e}; is redis-server running there?"),
        }
    }

    /// Runs `f` on the blocking connection, connecting first if needed; a failed call drops
    /// the connection so the next one starts clean.
    fn call<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> ::redis::RedisResult<T>,
    ) -> Result<T, StoreError> {
        let mut slot = self.conn.lock();
        if slot.is_none() {
            let conn = self
                .client
                .get_connection_with_timeout(CALL_TIMEOUT)
                .map_err(|e| self.error(e))?;
            conn.set_read_timeout(Some(CALL_TIMEOUT))
                .and_then(|()| conn.set_write_timeout(Some(CALL_TIMEOUT)))
                .map_err(|e| self.error(e))?;
            *slot = Some(conn);
        }
        let conn = slot.as_mut().expect("connected above");
        f(conn).map_err(|e| {
            *slot = None;
            self.error(e)
        })
    }

    /// Starts serving `channel`: its chat stats so far and the id after which its stream
    /// must be read, taken atomically so no event is counted twice or missed.
    pub fn attach(&self, channel: &str) -> Result<Attached, StoreError> {
        let (cursor, stats, chatters, names): Snapshot = self.call(|c| {
            self.snapshot
                .key(self.key("id"))
                .key(self.key(&format!("stats:{channel}")))
                .key(self.key(&format!("chatters:{channel}")))
                .key(self.key(&format!("names:{channel}")))
                .arg(crate::stats::MAX_CHATTERS)
                .invoke(c)
        })?;
        let mut seed = StatsSeed {
            messages: stats.get("messages").copied().unwrap_or(0),
            ..StatsSeed::default()
        };
        for (field, count) in stats {
            if let Some(platform) = field.strip_prefix("platform:") {
                seed.platforms.push((platform.to_string(), count));
            }
        }
        for ((key, count), name) in chatters
            .into_iter()
            .zip(names.into_iter().map(Some).chain(std::iter::repeat(None)))
        {
            let display = name.filter(|n| !n.is_empty()).unwrap_or_else(|| {
                key.split_once(':')
                    .map_or(key.as_str(), |(_, l)| l)
                    .to_string()
            });
            seed.chatters.push((key, display, count as u64));
        }
        Ok(Attached {
            cursor: cursor.unwrap_or(0),
            stats: seed,
        })
    }

    /// Takes or renews this instance's claim on running `channel`'s sources, for `ttl`: `true`
    /// when it holds it. An instance that stops renewing loses it after `ttl`.
    pub fn claim(&self, channel: &str, instance: &str, ttl: Duration) -> Result<bool, StoreError> {
        let held: i64 = self.call(|c| {
            self.claim
                .key(self.key(&format!("sources:{channel}")))
                .arg(instance)
                .arg(ttl.as_millis() as u64)
                .invoke(c)
        })?;
        Ok(held == 1)
    }

    /// Gives up the claim on `channel` if this instance holds it.
    pub fn release(&self, channel: &str, instance: &str) -> Result<(), StoreError> {
        let _: i64 = self.call(|c| {
            self.release
                .key(self.key(&format!("sources:{channel}")))
                .arg(instance)
                .invoke(c)
        })?;
        Ok(())
    }

    /// `true` the first time any instance asks about delivery `id` within ten minutes (the
    /// window in which Twitch may redeliver a webhook, to whichever instance).
    fn first_delivery_shared(&self, id: &str) -> Result<bool, StoreError> {
        let set: Option<String> = self.call(|c| {
            ::redis::cmd("SET")
                .arg(self.key(&format!("delivered:{id}")))
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(600_000)
                .query(c)
        })?;
        Ok(set.is_some())
    }

    /// Forgets delivery `id` (handling it failed; its redelivery must be handled).
    fn forget_delivery_shared(&self, id: &str) -> Result<(), StoreError> {
        self.call(|c| {
            ::redis::cmd("DEL")
                .arg(self.key(&format!("delivered:{id}")))
                .query::<i64>(c)
        })?;
        Ok(())
    }

    fn range(&self, cmd: &mut ::redis::Cmd) -> Result<Vec<Event>, StoreError> {
        let reply: StreamRangeReply = self.call(|c| cmd.query(c))?;
        Ok(reply.ids.iter().filter_map(decode).collect())
    }

    /// Follows the streams of the channels `wanted` names (with the id after which each is to
    /// be read), asking it again after every read and whenever `wake` fires, and hands every
    /// batch of new events, in id order, to `deliver`, until `shutdown`. A lost connection is
    /// opened again and reading resumes where it stopped.
    pub async fn follow(
        &self,
        wanted: impl Fn() -> Vec<(String, u64)>,
        wake: &Notify,
        mut deliver: impl FnMut(Vec<Event>),
        state: impl Fn(&str, String),
        shutdown: &CancellationToken,
    ) {
        let mut cursors: HashMap<String, u64> = HashMap::new();
        // Quick at first: the store is usually back within a second.
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            let connected = async {
                let config = ::redis::AsyncConnectionConfig::new().set_response_timeout(None);
                let mut reader = self
                    .client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                let control = self.client.get_multiplexed_async_connection().await?;
                let id: i64 = ::redis::cmd("CLIENT")
                    .arg("ID")
                    .query_async(&mut reader)
                    .await?;
                Ok::<_, ::redis::RedisError>((reader, control, id))
            };
            let (mut reader, mut control, client_id) = tokio::select! {
                _ = shutdown.cancelled() => return,
                c = connected => match c {
                    Ok(c) => c,
                    Err(e) => {
                        state("error", self.error(e).to_string());
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(backoff.fail()) => {}
                        }
                        continue;
                    }
                }
            };
            backoff.up();
            state("connected", format!("reading {}", self.shown));
            loop {
                for (channel, start) in wanted() {
                    cursors.entry(channel).or_insert(start);
                }
                if cursors.is_empty() {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = wake.notified() => continue,
                    }
                }
                let mut cmd = ::redis::cmd("XREAD");
                cmd.arg("COUNT")
                    .arg(READ_COUNT)
                    .arg("BLOCK")
                    .arg(READ_BLOCK_MS)
                    .arg("STREAMS");
                let channels: Vec<&String> = cursors.keys().collect();
                for c in &channels {
                    cmd.arg(self.stream(c));
                }
                for c in &channels {
                    cmd.arg(format!("0-{}", cursors[*c]));
                }
                let read = cmd.query_async::<Option<StreamReadReply>>(&mut reader);
                tokio::pin!(read);
                let reply = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = &mut read => r,
                    _ = wake.notified() => {
                        // A channel was added: end the blocking read now, then read again
                        // with it included.
                        let _: Result<i64, _> = ::redis::cmd("CLIENT")
                            .arg("UNBLOCK")
                            .arg(client_id)
                            .query_async(&mut control)
                            .await;
                        read.await
                    }
                };
                match reply {
                    Ok(reply) => {
                        let mut events = Vec::new();
                        for key in reply.map(|r| r.keys).unwrap_or_default() {
                            for entry in &key.ids {
                                let Some(event) = decode(entry) else {
                                    tracing::warn!(
                                        entry = entry.id,
                                        "skipped an unreadable entry in {}",
                                        key.key
                                    );
                                    continue;
                                };
                                if let Some(cursor) = cursors.get_mut(&event.channel) {
                                    *cursor = (*cursor).max(event.id);
                                }
                                events.push(event);
                            }
                        }
                        if !events.is_empty() {
                            events.sort_by_key(|e| e.id);
                            deliver(events);
                        }
                    }
                    Err(e) => {
                        tracing::error!("reading from Redis failed: {e}");
                        state("error", self.error(e).to_string());
                        break;
                    }
                }
            }
        }
    }
}

/// The event an entry holds; `None` for an entry that is not one of ours.
fn decode(entry: &StreamId) -> Option<Event> {
    let id = entry.id.strip_prefix("0-")?.parse().ok()?;
    let data: String = entry.get("data")?;
    Some(Event {
        id,
        kind: entry.get::<String>("kind")?.parse::<Kind>().ok()?,
        channel: entry.get("channel")?,
        platform: entry.get("platform")?,
        at: entry.get("at")?,
        // Flags: 1 seeded from history, 2 replayed from a recording.
        history: entry
            .get::<String>("history")
            .and_then(|h| h.parse::<u8>().ok())
            .is_some_and(|h| h & 1 != 0),
        replay: entry
            .get::<String>("history")
            .and_then(|h| h.parse::<u8>().ok())
            .is_some_and(|h| h & 2 != 0),
        data: serde_json::from_str(&data).ok()?,
    })
}

impl EventLog for Redis {
    fn first_delivery(&self, id: &str) -> Result<bool, StoreError> {
        self.first_delivery_shared(id)
    }

    fn forget_delivery(&self, id: &str) -> Result<(), StoreError> {
        self.forget_delivery_shared(id)
    }

    fn append(&self, event: &mut Event) -> Result<(), StoreError> {
        let data = serde_json::to_string(&event.data).map_err(|e| self.error(e))?;
        let (chatter, display) = crate::stats::Stats::chatter_of(event).unwrap_or_default();
        let channel = &event.channel;
        let id: u64 = self.call(|c| {
            self.append
                .key(self.key("id"))
                .key(self.stream(channel))
                .key(self.key("channels"))
                .key(self.key(&format!("stats:{channel}")))
                .key(self.key(&format!("chatters:{channel}")))
                .key(self.key(&format!("names:{channel}")))
                .key(self.key("trimmed"))
                .arg(self.keep)
                .arg(channel)
                .arg(event.kind.as_str())
                .arg(&event.platform)
                .arg(event.at)
                .arg(u8::from(event.history) | u8::from(event.replay) << 1)
                .arg(&data)
                .arg(&chatter)
                .arg(&display)
                .arg(crate::event::now_ms().saturating_mul(1000))
                .invoke(c)
        })?;
        event.id = id;
        Ok(())
    }

    fn bounds(&self) -> Result<(Option<u64>, Option<u64>), StoreError> {
        let max: Option<u64> = self.call(|c| ::redis::cmd("GET").arg(self.key("id")).query(c))?;
        Ok((max, None))
    }

    fn recent(
        &self,
        channel: &str,
        limit: usize,
        before: Option<u64>,
    ) -> Result<Vec<Event>, StoreError> {
        let end = before.map_or("+".to_string(), |b| format!("(0-{b}"));
        self.range(
            ::redis::cmd("XREVRANGE")
                .arg(self.stream(channel))
                .arg(end)
                .arg("-")
                .arg("COUNT")
                .arg(limit),
        )
    }

    fn after(
        &self,
        channel: &str,
        after: u64,
        limit: usize,
    ) -> Result<(Vec<Event>, bool), StoreError> {
        let events = self.range(
            ::redis::cmd("XREVRANGE")
                .arg(self.stream(channel))
                .arg("+")
                .arg(format!("(0-{after}"))
                .arg("COUNT")
                .arg(limit + 1),
        )?;
        Ok(page_after(events, limit))
    }

    fn pruned_after(&self, channel: &str, id: u64) -> bool {
        if id == 0 {
            return false;
        }
        // The append script records the newest id it trimmed from each channel.
        let trimmed: Result<Option<String>, _> = self.call(|c| {
            ::redis::cmd("HGET")
                .arg(self.key("trimmed"))
                .arg(channel)
                .query(c)
        });
        trimmed
            .ok()
            .flatten()
            .and_then(|t| t.strip_prefix("0-").and_then(|d| d.parse::<u64>().ok()))
            .is_some_and(|t| t > id)
    }

    fn channels(&self) -> Vec<String> {
        self.call(|c| ::redis::cmd("SMEMBERS").arg(self.key("channels")).query(c))
            .unwrap_or_default()
    }
}
