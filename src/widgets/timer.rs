//! Timers a timer overlay shows: a countdown for a duration, one to a time of day, and the
//! subathon clock that subs, gifts, bits, money and follows extend up to a cap. The server keeps
//! when it ends (wall clock), so a page reload or a restart shows the same time.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::event::{Event, Kind};
use crate::money;

/// How a timer counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Counts down `duration_s` once started; pause, resume, add, set.
    Duration,
    /// Counts down to `until` (RFC 3339); runs by itself.
    Until,
    /// A duration that events extend.
    Subathon,
}

/// A timer overlay's options, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Setup {
    pub mode: Mode,
    pub duration_ms: u64,
    pub until_ms: u64,
    /// The most a subathon can reach, start plus extensions; 0 for no cap.
    pub cap_ms: u64,
    /// Seconds per tier-1, tier-2 and tier-3 sub (new, resub or gifted-to-self).
    pub tier_s: [f64; 3],
    /// Seconds per gifted sub.
    pub gift_s: f64,
    /// Seconds per 100 bits (pro rata).
    pub bits100_s: f64,
    /// Seconds per unit of comparable money (about one US dollar; see [`money::comparable`]).
    pub money_s: f64,
    pub follow_s: f64,
}

impl Setup {
    /// The setup in `options` (a timer overlay's, already merged over the defaults).
    pub fn of(options: &Value) -> Result<Setup, String> {
        let num = |k: &str| options[k].as_f64().unwrap_or(0.0);
        let mode = match options["mode"].as_str().unwrap_or("duration") {
            "duration" => Mode::Duration,
            "until" => Mode::Until,
            "subathon" => Mode::Subathon,
            other => {
                return Err(format!(
                    "mode = \"{other}\": allowed values are \"duration\", \"until\", \"subathon\""
                ));
            }
        };
        let until = options["until"].as_str().unwrap_or_default();
        let until_ms = if mode == Mode::Until || !until.is_empty() {
            chrono::DateTime::parse_from_rfc3339(until)
                .map_err(|e| {
                    format!(
                        "until = \"{until}\": {e}; write a time like \"2026-12-24T18:00:00+01:00\""
                    )
                })?
                .timestamp_millis()
                .max(0) as u64
        } else {
            0
        };
        Ok(Setup {
            mode,
            duration_ms: (num("duration_s") * 1000.0) as u64,
            until_ms,
            cap_ms: (num("cap_s") * 1000.0) as u64,
            tier_s: [num("tier1_s"), num("tier2_s"), num("tier3_s")],
            gift_s: num("gift_s"),
            bits100_s: num("bits100_s"),
            money_s: num("money_s"),
            follow_s: num("follow_s"),
        })
    }

    /// How much `event` extends a subathon, in milliseconds.
    pub fn extension_ms(&self, event: &Event) -> u64 {
        if self.mode != Mode::Subathon {
            return 0;
        }
        let d = &event.data;
        let tier = |t: &Value| match t.as_str().unwrap_or("1000") {
            "2000" => self.tier_s[1],
            "3000" => self.tier_s[2],
            _ => self.tier_s[0],
        };
        let seconds = match event.kind {
            Kind::Sub if d["is_gift"] == json!(true) => 0.0,
            Kind::Sub | Kind::Resub => tier(&d["tier"]),
            // A bomb's own gifts are counted by the bomb.
            Kind::SubGift if !d["giftbomb_id"].is_null() => 0.0,
            Kind::SubGift => self.gift_s,
            Kind::GiftBomb => self.gift_s * money::number(&d["total"]).max(1.0),
            Kind::Cheer => self.bits100_s * money::number(&d["bits"]) / 100.0,
            Kind::Follow => self.follow_s,
            _ => money::of(event).map_or(0.0, |m| self.money_s * m.value),
        };
        (seconds.max(0.0) * 1000.0).round() as u64
    }
}

/// A timer's state: where it stands, and what extended it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timer {
    pub running: bool,
    /// When it reaches zero (ms since the epoch), while running.
    ends_at: u64,
    /// Time left while paused.
    left: u64,
    /// The start plus every extension and addition so far (what the cap bounds).
    granted: u64,
    /// Extensions from events.
    extended: u64,
    /// Extension refused because of the cap.
    capped: u64,
    /// Started at least once (a duration timer waits for its start).
    started: bool,
}

/// What may be done to a timer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    Start,
    Pause,
    /// Milliseconds, less than zero to take time away.
    Add(i64),
    /// Milliseconds left.
    Set(u64),
    Reset,
}

impl Op {
    pub const NAMES: &'static str = "start, resume, pause, add, set, reset";

    /// The operation `name`, with `seconds` for `add` and `set`.
    pub fn parse(name: &str, seconds: Option<f64>) -> Result<Op, String> {
        let ms = |s: f64| (s * 1000.0).round() as i64;
        Ok(match name {
            "start" | "resume" => Op::Start,
            "pause" | "stop" => Op::Pause,
            "reset" => Op::Reset,
            "add" => Op::Add(ms(seconds.ok_or("\"add\" needs \"seconds\": a number")?)),
            "set" => Op::Set(
                ms(seconds
                    .filter(|s| *s >= 0.0)
                    .ok_or("\"set\" needs \"seconds\": 0 or more")?)
                .max(0) as u64,
            ),
            other => return Err(format!("no timer op \"{other}\"; ops are {}", Op::NAMES)),
        })
    }
}

impl Timer {
    /// A timer as its setup starts it: paused at its duration (a countdown to a time runs).
    pub fn new(setup: &Setup) -> Timer {
        Timer {
            running: setup.mode == Mode::Until,
            ends_at: setup.until_ms,
            left: setup.duration_ms,
            granted: setup.duration_ms,
            started: setup.mode == Mode::Until,
            ..Timer::default()
        }
    }

    pub fn remaining(&self, setup: &Setup, now: u64) -> u64 {
        match (setup.mode, self.running) {
            (Mode::Until, _) => setup.until_ms.saturating_sub(now),
            (_, true) => self.ends_at.saturating_sub(now),
            (_, false) => self.left,
        }
    }

    /// Carries out `op` at `now`.
    pub fn apply(&mut self, setup: &Setup, op: Op, now: u64) -> Result<(), String> {
        if setup.mode == Mode::Until {
            return Err(
                "a countdown to a time runs by itself: change `until` in its overlay's file".into(),
            );
        }
        let left = self.remaining(setup, now);
        match op {
            Op::Start if !self.running => {
                self.running = true;
                self.started = true;
                self.ends_at = now + left;
            }
            Op::Pause if self.running => {
                self.running = false;
                self.left = left;
            }
            Op::Start | Op::Pause => {}
            Op::Add(ms) => {
                let new_left = (left as i64 + ms).max(0) as u64;
                if ms > 0 {
                    self.granted += ms as u64;
                }
                self.set_left(new_left, now);
            }
            Op::Set(ms) => self.set_left(ms, now),
            Op::Reset => *self = Timer::new(setup),
        }
        Ok(())
    }

    fn set_left(&mut self, left: u64, now: u64) {
        if self.running {
            self.ends_at = now + left;
        } else {
            self.left = left;
        }
    }

    /// Extends a subathon by what `event` is worth, up to the cap; a timer that ran out stays
    /// out (the subathon is over). Whether it changed.
    pub fn extend(&mut self, setup: &Setup, event: &Event, now: u64) -> bool {
        let mut ms = setup.extension_ms(event);
        if ms == 0 || (self.started && self.remaining(setup, now) == 0) {
            return false;
        }
        if setup.cap_ms > 0 {
            let room = setup.cap_ms.saturating_sub(self.granted);
            self.capped += ms.saturating_sub(room);
            ms = ms.min(room);
            if ms == 0 {
                return true;
            }
        }
        self.granted += ms;
        self.extended += ms;
        let left = self.remaining(setup, now) + ms;
        self.set_left(left, now);
        true
    }

    /// The timer as pages and the API see it (documented in docs/themes.md).
    pub fn snapshot(&self, name: &str, setup: &Setup, now: u64) -> Value {
        let remaining = self.remaining(setup, now);
        let running = self.running || setup.mode == Mode::Until;
        json!({
            "name": name,
            "mode": match setup.mode { Mode::Duration => "duration", Mode::Until => "until", Mode::Subathon => "subathon" },
            "running": running && remaining > 0,
            "started": self.started,
            "finished": self.started && remaining == 0,
            "remaining_ms": remaining,
            "ends_at": if running { now + remaining } else { 0 },
            "now": now,
            "display": clock(remaining),
            "granted_ms": self.granted,
            "extended_ms": self.extended,
            "extended_display": clock(self.extended),
            "capped_ms": self.capped,
            "cap_ms": setup.cap_ms,
        })
    }
}

/// `1:02:03`, `02:03`: what a clock shows for `ms` left (whole seconds, rounded up, so it
/// never shows 0:00 while time is left).
pub fn clock(ms: u64) -> String {
    let s = ms.div_ceil(1000);
    let (h, m, s) = (s / 3600, (s / 60) % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Platform;

    fn subathon(cap_s: f64) -> Setup {
        Setup::of(
            &json!({"mode": "subathon", "duration_s": 3600, "cap_s": cap_s,
            "tier1_s": 60, "tier2_s": 120, "tier3_s": 300, "gift_s": 60, "bits100_s": 30,
            "money_s": 10, "follow_s": 0, "until": ""}),
        )
        .expect("setup")
    }

    fn ev(kind: Kind, data: Value) -> Event {
        Event::new(Platform::Twitch, "c", kind, data)
    }

    #[test]
    fn a_paused_subathon_is_extended_up_to_its_cap() {
        let setup = subathon(3600.0 + 200.0);
        let mut t = Timer::new(&setup);
        assert!(t.extend(&setup, &ev(Kind::Sub, json!({"tier": "2000"})), 0));
        assert!(t.extend(&setup, &ev(Kind::Cheer, json!({"bits": 250})), 0));
        assert_eq!(t.remaining(&setup, 99_999), 3_600_000 + 120_000 + 75_000);
        // 5 gifts are 300 s, but only 5 s of room are left.
        assert!(t.extend(&setup, &ev(Kind::GiftBomb, json!({"total": 5})), 0));
        assert_eq!(t.remaining(&setup, 0), 3_800_000);
        assert_eq!(t.capped, 295_000);
        t.apply(&setup, Op::Start, 1_000).expect("start");
        assert_eq!(t.remaining(&setup, 11_000), 3_790_000);
        t.apply(&setup, Op::Pause, 11_000).expect("pause");
        assert_eq!(t.remaining(&setup, 500_000), 3_790_000);
    }

    #[test]
    fn a_finished_subathon_stays_finished_and_until_runs_by_itself() {
        let setup = subathon(0.0);
        let mut t = Timer::new(&setup);
        t.apply(&setup, Op::Start, 0).expect("start");
        assert!(!t.extend(&setup, &ev(Kind::Sub, json!({})), 3_600_000));
        assert_eq!(t.snapshot("s", &setup, 3_600_000)["finished"], true);
        let until =
            Setup::of(&json!({"mode": "until", "until": "2026-01-01T00:00:10Z"})).expect("setup");
        let t = Timer::new(&until);
        assert_eq!(t.remaining(&until, until.until_ms - 4_000), 4_000);
        assert!(Timer::new(&until).apply(&until, Op::Pause, 0).is_err());
        assert!(Setup::of(&json!({"mode": "until", "until": "tomorrow"})).is_err());
        assert_eq!(clock(3_723_000), "1:02:03");
        assert_eq!(clock(1), "00:01");
    }
}
