//! What runs on a channel for a while and then ends: Twitch's hype train, and a poll or a
//! prediction. Kept from their EventSub events so the `hypetrain` and `poll` overlays show the
//! current state at once after a reload, and are hidden when nothing runs.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::event::{Event, Kind};

/// After the end, when a train still expected to end says nothing: it is over anyway.
const SILENT_END_MS: u64 = 5_000;

fn ms(v: &Value) -> Option<u64> {
    v.as_u64()
}

/// A percentage to one decimal, whole ones without it (`100`, `36.4`): how a bar's label
/// reads.
fn share(part: f64, whole: f64) -> Value {
    if whole <= 0.0 {
        return json!(0);
    }
    let p = (((part / whole) * 1000.0).round() / 10.0).min(100.0);
    if p.fract() == 0.0 {
        json!(p as u64)
    } else {
        json!(p)
    }
}

/// A hype train, from its latest begin, progress or end event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Train {
    level: u64,
    total: u64,
    progress: u64,
    goal: u64,
    top: Vec<Value>,
    started_at: Option<u64>,
    expires_at: Option<u64>,
    ended_at: Option<u64>,
    shared: bool,
}

impl Train {
    /// `event` applied to the train in `slot` (a new one at its begin).
    pub fn apply(slot: &mut Option<Train>, event: &Event) {
        let d = &event.data;
        let n = |k: &str| d[k].as_u64().unwrap_or(0);
        let mut train = match (event.kind, slot.take()) {
            (Kind::HypeTrainBegin, _) | (_, None) => Train::default(),
            (_, Some(t)) => t,
        };
        train.level = n("level").max(1);
        train.total = n("total");
        if event.kind != Kind::HypeTrainEnd {
            train.progress = n("progress");
            train.goal = n("goal");
            train.expires_at = ms(&d["expires_at"]).or(train.expires_at);
        }
        train.top = d["top_contributions"]
            .as_array()
            .cloned()
            .unwrap_or_else(|| train.top.clone());
        train.started_at = ms(&d["started_at"]).or(train.started_at).or(Some(event.at));
        train.shared = d["is_shared_train"] == json!(true);
        if event.kind == Kind::HypeTrainEnd {
            train.ended_at = Some(ms(&d["ended_at"]).unwrap_or(event.at));
        }
        *slot = Some(train);
    }

    /// The train as the `hypetrain` overlay sees it at `now`: `active` while it runs, the end
    /// shown for `show_result_s`, `top` contributors at most.
    pub fn snapshot(&self, now: u64, show_result_s: f64, top: usize) -> Value {
        let expires = self.expires_at.unwrap_or(0);
        let active = self.ended_at.is_none() && expires > now;
        let hide_at = match self.ended_at {
            Some(end) => end + (show_result_s * 1000.0) as u64,
            None => expires + SILENT_END_MS,
        };
        let percent = share(self.progress as f64, self.goal as f64);
        let contributors: Vec<Value> = self
            .top
            .iter()
            .take(top)
            .map(|c| {
                let kind = c["type"].as_str().unwrap_or_default();
                let total = c["total"].as_u64().unwrap_or(0);
                let formatted = match kind {
                    "bits" => format!("{total} bits"),
                    "subscription" => format!("{} subs", total.div_ceil(500).max(1)),
                    _ => total.to_string(),
                };
                json!({"user_name": c["user_name"], "user_login": c["user_login"], "type": kind,
                       "total": total, "formatted": formatted})
            })
            .collect();
        json!({
            "active": active, "ended": self.ended_at.is_some(), "shown": now < hide_at,
            "level": self.level, "total": self.total, "progress": self.progress, "goal": self.goal,
            "percent": percent, "top": contributors, "shared": self.shared,
            "expires_at": self.expires_at, "ended_at": self.ended_at, "hide_at": hide_at,
            "display": super::timer::clock(expires.saturating_sub(now)),
        })
    }
}

/// A poll or a prediction, from its latest event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vote {
    /// `poll` or `prediction`.
    kind: String,
    id: String,
    title: String,
    /// Polls' choices or predictions' outcomes, as the event has them.
    choices: Vec<Value>,
    status: String,
    /// When voting ends (a poll) or locks (a prediction).
    closes_at: Option<u64>,
    ended_at: Option<u64>,
    winner: Option<String>,
}

impl Vote {
    /// Whether `kind` is a poll's or a prediction's.
    pub fn concerns(kind: Kind) -> bool {
        matches!(
            kind,
            Kind::PollBegin
                | Kind::PollProgress
                | Kind::PollEnd
                | Kind::PredictionBegin
                | Kind::PredictionProgress
                | Kind::PredictionLock
                | Kind::PredictionEnd
        )
    }

    /// `event` as the channel's current vote.
    pub fn from(event: &Event) -> Vote {
        let d = &event.data;
        let poll = matches!(
            event.kind,
            Kind::PollBegin | Kind::PollProgress | Kind::PollEnd
        );
        let ended = matches!(event.kind, Kind::PollEnd | Kind::PredictionEnd);
        Vote {
            kind: if poll { "poll" } else { "prediction" }.into(),
            id: d[if poll { "poll_id" } else { "prediction_id" }]
                .as_str()
                .unwrap_or_default()
                .into(),
            title: d["title"].as_str().unwrap_or_default().into(),
            choices: d[if poll { "choices" } else { "outcomes" }]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            status: d["status"].as_str().unwrap_or("active").into(),
            closes_at: ms(&d[if poll { "ends_at" } else { "locks_at" }]),
            ended_at: ended.then(|| ms(&d["ended_at"]).unwrap_or(event.at)),
            winner: d["winning_outcome_id"].as_str().map(str::to_string),
        }
    }

    /// A poll, not a prediction.
    pub fn is_poll(&self) -> bool {
        self.kind == "poll"
    }

    /// The vote as the `poll` overlay sees it: each choice's share (of votes; of channel points
    /// for a prediction), shown until `show_result_s` after its end.
    pub fn snapshot(&self, now: u64, show_result_s: f64) -> Value {
        let poll = self.is_poll();
        let weight = |c: &Value| {
            c[if poll { "votes" } else { "channel_points" }]
                .as_u64()
                .unwrap_or(0)
        };
        let total: u64 = self.choices.iter().map(weight).sum();
        let best = self.choices.iter().map(weight).max().unwrap_or(0);
        let choices: Vec<Value> = self
            .choices
            .iter()
            .map(|c| {
                let w = weight(c);
                let percent = share(w as f64, total as f64);
                let winner = match &self.winner {
                    Some(id) => c["id"].as_str() == Some(id.as_str()),
                    None => self.ended_at.is_some() && poll && w == best && total > 0,
                };
                json!({"id": c["id"], "title": c["title"], "color": c["color"], "votes": w,
                       "users": c["users"], "percent": percent, "winner": winner,
                       "top_predictors": c["top_predictors"]})
            })
            .collect();
        let hide_at = self
            .ended_at
            .map(|end| end + (show_result_s * 1000.0) as u64);
        let locked = self.status == "locked";
        json!({
            "kind": self.kind, "id": self.id, "title": self.title, "choices": choices,
            "total": total, "status": self.status, "locked": locked,
            "active": self.ended_at.is_none(), "ended": self.ended_at.is_some(),
            "shown": hide_at.is_none_or(|h| now < h), "hide_at": hide_at,
            "closes_at": self.closes_at,
            "display": super::timer::clock(self.closes_at.unwrap_or(0).saturating_sub(now)),
            "is_poll": poll, "is_prediction": !poll,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Platform;

    fn ev(kind: Kind, data: Value) -> Event {
        let mut e = Event::new(Platform::Twitch, "c", kind, data);
        e.at = 1_000;
        e
    }

    #[test]
    fn a_train_runs_until_it_ends_and_shows_its_end_a_while() {
        let mut slot = None;
        Train::apply(
            &mut slot,
            &ev(
                Kind::HypeTrainProgress,
                json!({"level": 2, "total": 700, "progress": 200, "goal": 800,
                "expires_at": 60_000, "top_contributions": [{"user_name": "Ann", "type": "bits", "total": 500}]}),
            ),
        );
        let t = slot.clone().expect("train").snapshot(10_000, 10.0, 3);
        assert_eq!(
            (
                t["active"].clone(),
                t["percent"].clone(),
                t["display"].clone()
            ),
            (json!(true), json!(25), json!("00:50"))
        );
        assert_eq!(t["top"][0]["formatted"], "500 bits");
        Train::apply(
            &mut slot,
            &ev(
                Kind::HypeTrainEnd,
                json!({"level": 3, "total": 900, "ended_at": 20_000}),
            ),
        );
        let t = slot.expect("train").snapshot(25_000, 10.0, 3);
        assert_eq!(
            (t["active"].clone(), t["shown"].clone(), t["level"].clone()),
            (json!(false), json!(true), json!(3))
        );
    }

    #[test]
    fn polls_share_votes_and_predictions_share_points() {
        let poll = Vote::from(&ev(
            Kind::PollEnd,
            json!({"poll_id": "p", "title": "T", "status": "completed",
            "choices": [{"id": "a", "title": "A", "votes": 30}, {"id": "b", "title": "B", "votes": 10}], "ended_at": 5_000}),
        ));
        let v = poll.snapshot(6_000, 15.0);
        assert_eq!(
            (
                v["choices"][0]["percent"].clone(),
                v["choices"][0]["winner"].clone()
            ),
            (json!(75), json!(true))
        );
        assert_eq!(poll.snapshot(30_000, 15.0)["shown"], false);
        let prediction = Vote::from(&ev(
            Kind::PredictionProgress,
            json!({"prediction_id": "x", "title": "W?",
            "outcomes": [{"id": "w", "channel_points": 15000}, {"id": "l"}], "locks_at": 61_000}),
        ));
        let v = prediction.snapshot(1_000, 15.0);
        assert_eq!(
            (
                v["choices"][0]["percent"].clone(),
                v["choices"][1]["percent"].clone()
            ),
            (json!(100), json!(0))
        );
        assert_eq!(
            (v["active"].clone(), v["display"].clone()),
            (json!(true), json!("01:00"))
        );
    }
}
