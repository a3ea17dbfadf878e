//! One alert overlay's queue, as a state machine over explicit instants: what plays, what
//! waits, paused and muted, and the pages that say whether the overlay is on air. No I/O and
//! no clock of its own, so every rule is tested with made-up times.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::time::{Duration, Instant};

use crate::event::{Event, Kind};

/// Alerts one overlay holds waiting, whatever its bound (paid events pass the bound, not this):
/// a last guard of memory.
pub const MAX_QUEUED: usize = 10_000;
/// Names a merged follow alert keeps.
const MERGED_NAMES: usize = 10;

/// What became of an alert offered to a queue.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// A follow past the bound, counted into the "and N more followed" alert.
    Merged,
    /// Past the bound and neither paid, a raid nor a follow; or past [`MAX_QUEUED`].
    Refused,
}

/// Events that are never dropped however full a queue is: money, and raids.
pub fn never_dropped(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Sub
            | Kind::Resub
            | Kind::SubGift
            | Kind::GiftBomb
            | Kind::Cheer
            | Kind::Raid
            | Kind::Gift
            | Kind::Tip
    )
}
/// A page that has not said it is on air for this long no longer counts (OBS stalls the
/// timers of a source shown nowhere, so its reports stop).
pub const PRESENCE_TTL: Duration = Duration::from_secs(15);
/// Pages one overlay remembers; the oldest report is forgotten past this.
const MAX_PAGES: usize = 64;

/// An event to play as an alert.
#[derive(Clone, Debug)]
pub struct Alert {
    pub event: Arc<Event>,
    /// Played again on request: marked as such on screen, counted nowhere.
    pub replay: bool,
    /// The session's largest of its kind when it came (a variation may ask for it).
    pub largest: bool,
}

/// The alert on screen.
#[derive(Clone, Debug)]
pub struct Playing {
    pub alert: Alert,
    /// Numbers each play, so a page tells a replay of the same event from the one before.
    pub play: u64,
    pub ends: Instant,
    pub duration: Duration,
}

/// How an overlay's options time its alerts.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Alerts that wait before follows merge and the rest are refused (`max_queue`).
    pub bound: usize,
    pub gap: Duration,
    /// Alerts wait until a page of the overlay is on air.
    pub hold: bool,
}

impl Timing {
    pub fn of(options: &Value) -> Timing {
        Timing {
            bound: options["max_queue"]
                .as_u64()
                .unwrap_or(50)
                .clamp(1, MAX_QUEUED as u64) as usize,
            gap: seconds(options["gap_s"].as_f64().unwrap_or(0.6)),
            hold: options["hold_off_air"].as_bool().unwrap_or(true),
        }
    }
}

/// How long `alert` plays in an overlay with `options`: its variation's `duration_s`, else its
/// kind's `durations` entry, else `duration_s`.
pub fn duration(options: &Value, alert: &Alert) -> Duration {
    let kind = alert.event.kind;
    let d = crate::overlay::variation::of(options, &alert.event, alert.largest)
        .and_then(|v| v.duration_s)
        .or_else(|| options["durations"][kind.as_str()].as_f64())
        .or_else(|| options["duration_s"].as_f64())
        .unwrap_or(6.0);
    seconds(d)
}

fn seconds(s: f64) -> Duration {
    Duration::from_secs_f64(if s.is_finite() {
        s.clamp(0.0, 3600.0)
    } else {
        0.0
    })
}

#[derive(Debug, Default)]
pub struct Queue {
    pub paused: bool,
    pub muted: bool,
    pub playing: Option<Playing>,
    pub queued: VecDeque<Alert>,
    /// The last alert that started, for "replay the last one".
    pub last: Option<Alert>,
    /// Alerts refused because the queue was full.
    pub refused: u64,
    /// Bumped on every change a page must see (see [`super::Alerts`]).
    pub seq: u64,
    /// Nothing starts before this: the leave animation of the one before.
    gap_until: Option<Instant>,
    /// Page id -> (on air, when it last said so).
    pages: HashMap<String, (bool, Instant)>,
    /// What [`Queue::step`] last saw of the audience, to notice when it changes.
    was_on_air: bool,
}

impl Queue {
    /// Adds `alert` at the back while fewer than `bound` wait. Past it: paid events and raids
    /// are queued all the same, follows are merged into one "and N more followed" alert, the
    /// rest are refused and counted.
    pub fn push(&mut self, alert: Alert, bound: usize) -> Pushed {
        let kind = alert.event.kind;
        let full = self.queued.len() >= bound.max(1);
        if self.queued.len() >= MAX_QUEUED || (full && !never_dropped(kind) && kind != Kind::Follow)
        {
            self.refused += 1;
            return Pushed::Refused;
        }
        if full && kind == Kind::Follow && !alert.replay {
            let name = alert.event.data["user_name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if let Some(merged) = self
                .queued
                .iter_mut()
                .rev()
                .find(|a| a.event.data["merged"].is_u64())
            {
                let event = Arc::make_mut(&mut merged.event);
                let n = event.data["merged"].as_u64().unwrap_or(0) + 1;
                event.data["merged"] = json!(n);
                event.data["user_name"] = json!(format!("and {n} more"));
                if let Some(names) = event.data["names"].as_array_mut()
                    && names.len() < MERGED_NAMES
                {
                    names.push(json!(name));
                }
                return Pushed::Merged;
            }
            let mut event = (*alert.event).clone();
            event.data["merged"] = json!(1);
            event.data["names"] = json!([name]);
            event.data["user_name"] = json!("and 1 more");
            self.queued.push_back(Alert {
                event: Arc::new(event),
                replay: false,
                largest: false,
            });
            return Pushed::Merged;
        }
        self.queued.push_back(alert);
        Pushed::Queued
    }

    /// Ends the alert on screen now; `false` when none was.
    pub fn skip(&mut self, now: Instant, timing: Timing) -> bool {
        if self.playing.take().is_none() {
            return false;
        }
        self.gap_until = Some(now + timing.gap);
        true
    }

    /// Drops everything waiting; how many were.
    pub fn clear(&mut self) -> usize {
        let n = self.queued.len();
        self.queued.clear();
        n
    }

    /// Whether a page of this overlay is on air now.
    pub fn on_air(&self, now: Instant) -> bool {
        self.pages
            .values()
            .any(|(on, seen)| *on && now.saturating_duration_since(*seen) < PRESENCE_TTL)
    }

    /// Records what page `page` says; a page that left (`None`) is forgotten.
    pub fn presence(&mut self, page: &str, on_air: Option<bool>, now: Instant) {
        match on_air {
            None => {
                self.pages.remove(page);
            }
            Some(on) => {
                if self.pages.len() >= MAX_PAGES && !self.pages.contains_key(page) {
                    let oldest = self
                        .pages
                        .iter()
                        .min_by_key(|(_, (_, seen))| *seen)
                        .map(|(k, _)| k.clone());
                    if let Some(k) = oldest {
                        self.pages.remove(&k);
                    }
                }
                self.pages.insert(page.to_string(), (on, now));
            }
        }
    }

    /// Whether the next alert waits only for a page to be on air.
    pub fn held(&self, now: Instant, timing: Timing) -> bool {
        timing.hold && !self.paused && !self.queued.is_empty() && !self.on_air(now)
    }

    /// Moves time to `now`: ends the alert whose time is up, starts the next when nothing
    /// holds it. Returns whether anything a page shows changed, and when to look again.
    pub fn step(
        &mut self,
        now: Instant,
        options: &Value,
        next_play: &mut u64,
    ) -> (bool, Option<Instant>) {
        let timing = Timing::of(options);
        let mut changed = false;
        let on_air = self.on_air(now);
        if on_air != self.was_on_air {
            self.was_on_air = on_air;
            changed = true;
        }
        if self.playing.as_ref().is_some_and(|p| now >= p.ends) {
            self.playing = None;
            self.gap_until = Some(now + timing.gap);
            changed = true;
        }
        if self.gap_until.is_some_and(|g| now >= g) {
            self.gap_until = None;
        }
        let free = self.playing.is_none() && self.gap_until.is_none();
        if free
            && !self.paused
            && (on_air || !timing.hold)
            && let Some(alert) = self.queued.pop_front()
        {
            let duration = duration(options, &alert);
            *next_play += 1;
            self.last = Some(alert.clone());
            self.playing = Some(Playing {
                alert,
                play: *next_play,
                ends: now + duration,
                duration,
            });
            changed = true;
        }
        let mut next = self.playing.as_ref().map(|p| p.ends);
        let mut sooner = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
        if let Some(g) = self.gap_until {
            sooner(g);
        }
        // When the last page on air stops counting, the audience changes by itself.
        if on_air
            && let Some(expires) = self
                .pages
                .values()
                .filter(|(on, seen)| *on && now.saturating_duration_since(*seen) < PRESENCE_TTL)
                .map(|(_, seen)| *seen + PRESENCE_TTL)
                .max()
        {
            sooner(expires);
        }
        (changed, next)
    }

    /// The alert on screen and the time it has left.
    pub fn remaining(&self, now: Instant) -> Option<(&Playing, Duration)> {
        self.playing
            .as_ref()
            .map(|p| (p, p.ends.saturating_duration_since(now)))
    }
}

/// Follows alerted per user per channel in the last day: a follow-bot's or a refollower's
/// second follow makes no second alert.
#[derive(Debug, Default)]
pub struct Follows {
    seen: HashMap<String, u64>,
    order: VecDeque<(String, u64)>,
}

/// A day, in milliseconds.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;
/// Users remembered at most (a flood of distinct bots must not grow memory without end).
const MAX_FOLLOWS: usize = 100_000;

impl Follows {
    /// The key of `event`'s follower, when it names one.
    pub fn key(event: &Event) -> Option<String> {
        let d = &event.data;
        let user = d["user_id"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .or_else(|| d["user_id"].as_u64().map(|n| n.to_string()))
            .or_else(|| {
                d["user_login"]
                    .as_str()
                    .or_else(|| d["user_name"].as_str())
                    .filter(|s| !s.is_empty())
                    .map(str::to_lowercase)
            })?;
        Some(format!("{}/{}/{}", event.channel, event.platform, user))
    }

    /// Records a follow alert of `key` at `now_ms`; `false` when it had one within a day.
    pub fn first_today(&mut self, key: &str, now_ms: u64) -> bool {
        self.prune(now_ms);
        if self.seen.contains_key(key) {
            return false;
        }
        if self.order.len() >= MAX_FOLLOWS
            && let Some((old, _)) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(key.to_string(), now_ms);
        self.order.push_back((key.to_string(), now_ms));
        true
    }

    fn prune(&mut self, now_ms: u64) {
        while let Some((key, at)) = self.order.front() {
            if now_ms.saturating_sub(*at) < DAY_MS {
                break;
            }
            self.seen.remove(key);
            self.order.pop_front();
        }
    }

    /// Every remembered follow, oldest first (saved with the queue).
    pub fn entries(&self) -> impl Iterator<Item = &(String, u64)> {
        self.order.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert(kind: Kind, id: u64) -> Alert {
        let mut e = crate::overlay::sample(kind);
        e.id = id;
        Alert {
            event: Arc::new(e),
            replay: false,
            largest: false,
        }
    }

    fn options() -> Value {
        json!({"duration_s": 2.0, "gap_s": 0.5, "durations": {"raid": 4.0}, "hold_off_air": true})
    }

    #[test]
    fn plays_in_turn_with_a_gap_and_only_on_air() {
        let t0 = Instant::now();
        let (mut q, mut n) = (Queue::default(), 0);
        q.push(alert(Kind::Follow, 1), 50);
        q.push(alert(Kind::Raid, 2), 50);
        let (_, next) = q.step(t0, &options(), &mut n);
        assert!(
            q.playing.is_none() && next.is_none(),
            "held: no page on air"
        );
        q.presence("page-a", Some(true), t0);
        let (changed, next) = q.step(t0, &options(), &mut n);
        assert!(changed);
        assert_eq!(q.playing.as_ref().map(|p| p.alert.event.id), Some(1));
        assert_eq!(next, Some(t0 + Duration::from_secs(2)));
        let t1 = t0 + Duration::from_secs(2);
        q.step(t1, &options(), &mut n);
        assert!(q.playing.is_none(), "ended; the gap runs");
        q.step(t1 + Duration::from_millis(499), &options(), &mut n);
        assert!(q.playing.is_none());
        q.presence("page-a", Some(true), t1);
        q.step(t1 + Duration::from_millis(500), &options(), &mut n);
        let p = q.playing.as_ref().expect("raid plays");
        assert_eq!((p.alert.event.id, p.duration), (2, Duration::from_secs(4)));
        assert_eq!(p.play, 2);
    }

    #[test]
    fn pause_holds_new_ones_skip_ends_the_current() {
        let t0 = Instant::now();
        let (mut q, mut n) = (Queue::default(), 0);
        let mut o = options();
        o["hold_off_air"] = json!(false);
        q.push(alert(Kind::Follow, 1), 50);
        q.step(t0, &o, &mut n);
        q.paused = true;
        q.push(alert(Kind::Follow, 2), 50);
        assert!(q.skip(t0, Timing::of(&o)));
        q.step(t0 + Duration::from_secs(10), &o, &mut n);
        assert!(q.playing.is_none() && q.queued.len() == 1, "paused");
        q.paused = false;
        q.step(t0 + Duration::from_secs(10), &o, &mut n);
        assert_eq!(q.playing.as_ref().map(|p| p.alert.event.id), Some(2));
        assert_eq!(q.clear(), 0);
    }

    #[test]
    fn a_page_that_stops_reporting_stops_counting() {
        let t0 = Instant::now();
        let (mut q, mut n) = (Queue::default(), 0);
        q.presence("obs", Some(true), t0);
        let (_, next) = q.step(t0, &options(), &mut n);
        assert_eq!(next, Some(t0 + PRESENCE_TTL), "looks again when it expires");
        assert!(!q.on_air(t0 + PRESENCE_TTL));
        let (changed, _) = q.step(t0 + PRESENCE_TTL, &options(), &mut n);
        assert!(changed, "the audience left");
        q.presence("obs", Some(false), t0);
        q.presence("obs", None, t0);
        assert!(!q.on_air(t0));
    }

    #[test]
    fn past_its_bound_follows_merge_money_and_raids_queue_the_rest_is_refused() {
        let mut q = Queue::default();
        for i in 0..5_000u64 {
            let mut a = alert(Kind::Follow, i);
            Arc::make_mut(&mut a.event).data["user_name"] = json!(format!("fan{i}"));
            q.push(a, 50);
            if i % 1000 == 999 {
                assert_eq!(q.push(alert(Kind::Cheer, 100_000 + i), 50), Pushed::Queued);
            }
        }
        assert_eq!(q.push(alert(Kind::Redemption, 9), 50), Pushed::Refused);
        assert_eq!(q.push(alert(Kind::Raid, 10), 50), Pushed::Queued);
        let merged: Vec<&Alert> = q
            .queued
            .iter()
            .filter(|a| a.event.data["merged"].is_u64())
            .collect();
        assert_eq!(merged.len(), 1, "one merged alert");
        assert_eq!(merged[0].event.data["merged"], json!(4_950));
        assert_eq!(merged[0].event.data["user_name"], json!("and 4950 more"));
        assert_eq!(
            merged[0].event.data["names"].as_array().map(Vec::len),
            Some(MERGED_NAMES)
        );
        let cheers = q
            .queued
            .iter()
            .filter(|a| a.event.kind == Kind::Cheer)
            .count();
        assert_eq!(cheers, 5, "no paid event dropped");
        assert_eq!(q.queued.len(), 50 + 1 + 5 + 1);
        assert_eq!(q.refused, 1);
    }

    #[test]
    fn one_follow_alert_per_user_per_channel_per_day() {
        let mut f = Follows::default();
        let mut e = crate::overlay::sample(Kind::Follow);
        e.data["user_id"] = json!("42");
        let key = Follows::key(&e).expect("key");
        assert!(f.first_today(&key, 1_000));
        assert!(!f.first_today(&key, 1_000 + DAY_MS - 1));
        assert!(f.first_today(&key, 1_000 + DAY_MS));
        e.channel = "other".into();
        assert!(f.first_today(&Follows::key(&e).expect("key"), 1_000 + DAY_MS));
        let mut anonymous = crate::overlay::sample(Kind::Follow);
        anonymous.data = json!({});
        assert_eq!(Follows::key(&anonymous), None);
    }
}
