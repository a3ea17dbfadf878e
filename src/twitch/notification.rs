//! EventSub's types and payloads, with no socket: which subscription types overlayd uses
//! (with their versions, conditions and the scopes they need) and how a notification's event
//! becomes our [`Event`]. Tested on the recorded payloads in `tests/fixtures/eventsub_payloads`.

use serde_json::{Value, json};

use crate::event::{Event, Kind, Platform};

/// The scope (of the token's user, the broadcaster or a moderator) each type needs.
pub fn scope_of(kind: &str) -> Option<&'static str> {
    match kind {
        "channel.follow" => Some("moderator:read:followers"),
        "channel.subscribe" | "channel.subscription.gift" | "channel.subscription.message" => {
            Some("channel:read:subscriptions")
        }
        "channel.cheer" => Some("bits:read"),
        "channel.channel_points_custom_reward_redemption.add" => Some("channel:read:redemptions"),
        k if k.starts_with("channel.hype_train.") => Some("channel:read:hype_train"),
        k if k.starts_with("channel.poll.") => Some("channel:read:polls"),
        k if k.starts_with("channel.prediction.") => Some("channel:read:predictions"),
        _ => None,
    }
}

/// The condition of a subscription of `kind` to `broadcaster`. Follows (v2) also name a
/// moderator: the logged-in user, who is the broadcaster or one of their moderators. Raids
/// are subscribed as *to* the channel (both directions in one condition is refused).
pub fn condition(kind: &str, broadcaster: &str, me: &str) -> Value {
    match kind {
        "channel.follow" => json!({"broadcaster_user_id": broadcaster, "moderator_user_id": me}),
        "channel.raid" => json!({"to_broadcaster_user_id": broadcaster}),
        _ => json!({"broadcaster_user_id": broadcaster}),
    }
}

/// The subscription types overlayd uses, with their versions.
pub const TYPES: &[(&str, &str)] = &[
    ("channel.follow", "2"),
    ("channel.subscribe", "1"),
    ("channel.subscription.gift", "1"),
    ("channel.subscription.message", "1"),
    ("channel.cheer", "1"),
    ("channel.raid", "1"),
    ("channel.channel_points_custom_reward_redemption.add", "1"),
    ("stream.online", "1"),
    ("stream.offline", "1"),
    ("channel.hype_train.begin", "2"),
    ("channel.hype_train.progress", "2"),
    ("channel.hype_train.end", "2"),
    ("channel.poll.begin", "1"),
    ("channel.poll.progress", "1"),
    ("channel.poll.end", "1"),
    ("channel.prediction.begin", "1"),
    ("channel.prediction.progress", "1"),
    ("channel.prediction.lock", "1"),
    ("channel.prediction.end", "1"),
];

/// An RFC 3339 time as milliseconds since the epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// An EventSub notification's event as our event. `None` for types overlays do not show.
pub fn map(kind: &str, e: &Value) -> Option<Event> {
    let s = |k: &str| e[k].clone();
    // A time of the payload as ms since the epoch, `null` when absent.
    let time = |k: &str| {
        e[k].as_str()
            .and_then(parse_time)
            .map_or(Value::Null, |t| json!(t.max(0)))
    };
    let user = |prefix: &str| {
        json!({
            "user_name": e[format!("{prefix}user_name")], "user_login": e[format!("{prefix}user_login")],
            "user_id": e[format!("{prefix}user_id")],
        })
    };
    let merge = |mut a: Value, b: Value| {
        if let (Value::Object(a), Value::Object(b)) = (&mut a, b) {
            a.extend(b);
        }
        a
    };
    let (channel_key, kind, data) = match kind {
        "channel.follow" => (
            "broadcaster_user_login",
            Kind::Follow,
            merge(user(""), json!({"followed_at": s("followed_at")})),
        ),
        "channel.subscribe" => {
            let gift = e["is_gift"].as_bool().unwrap_or(false);
            // A gifted sub's alert is the gift's (channel.subscription.gift): mark it as part
            // of one so it is listed but not alerted twice.
            let bomb = if gift {
                json!("eventsub-gift")
            } else {
                Value::Null
            };
            if gift {
                (
                    "broadcaster_user_login",
                    Kind::SubGift,
                    json!({
                        "user_name": null, "user_login": null, "tier": s("tier"),
                        "recipient_name": s("user_name"), "recipient_login": s("user_login"), "giftbomb_id": bomb,
                    }),
                )
            } else {
                (
                    "broadcaster_user_login",
                    Kind::Sub,
                    merge(user(""), json!({"tier": s("tier"), "is_gift": false})),
                )
            }
        }
        "channel.subscription.gift" => {
            let total = e["total"].as_u64().unwrap_or(1);
            let anonymous = e["is_anonymous"].as_bool().unwrap_or(false);
            let who = if anonymous {
                json!({"user_name": null, "user_login": null})
            } else {
                user("")
            };
            if total > 1 {
                (
                    "broadcaster_user_login",
                    Kind::GiftBomb,
                    merge(
                        who,
                        json!({
                            "tier": s("tier"), "total": total, "cumulative_total": s("cumulative_total"),
                            "is_anonymous": anonymous, "giftbomb_id": null,
                        }),
                    ),
                )
            } else {
                (
                    "broadcaster_user_login",
                    Kind::SubGift,
                    merge(
                        who,
                        json!({
                            "tier": s("tier"), "recipient_name": null, "recipient_login": null, "giftbomb_id": null,
                        }),
                    ),
                )
            }
        }
        "channel.subscription.message" => (
            "broadcaster_user_login",
            Kind::Resub,
            merge(
                user(""),
                json!({
                    "tier": s("tier"), "months": s("cumulative_months"), "streak_months": s("streak_months"),
                    "message": e["message"]["text"],
                }),
            ),
        ),
        "channel.cheer" => {
            let anonymous = e["is_anonymous"].as_bool().unwrap_or(false);
            (
                "broadcaster_user_login",
                Kind::Cheer,
                merge(
                    user(""),
                    json!({
                        "bits": s("bits"), "message": s("message"), "is_anonymous": anonymous,
                    }),
                ),
            )
        }
        "channel.raid" => (
            "to_broadcaster_user_login",
            Kind::Raid,
            json!({
                "user_name": s("from_broadcaster_user_name"), "user_login": s("from_broadcaster_user_login"),
                "user_id": s("from_broadcaster_user_id"), "viewers": s("viewers"),
            }),
        ),
        "channel.channel_points_custom_reward_redemption.add" => (
            "broadcaster_user_login",
            Kind::Redemption,
            merge(
                user(""),
                json!({
                    "reward": {"id": e["reward"]["id"], "title": e["reward"]["title"], "cost": e["reward"]["cost"]},
                    "user_input": s("user_input"), "status": s("status"),
                }),
            ),
        ),
        "stream.online" => (
            "broadcaster_user_login",
            Kind::StreamOnline,
            json!({"type": s("type"), "started_at": s("started_at")}),
        ),
        "stream.offline" => ("broadcaster_user_login", Kind::StreamOffline, json!({})),
        "channel.hype_train.begin" | "channel.hype_train.progress" | "channel.hype_train.end" => {
            let k = match kind {
                "channel.hype_train.begin" => Kind::HypeTrainBegin,
                "channel.hype_train.progress" => Kind::HypeTrainProgress,
                _ => Kind::HypeTrainEnd,
            };
            (
                "broadcaster_user_login",
                k,
                json!({
                    "level": s("level"), "total": s("total"), "progress": s("progress"), "goal": s("goal"),
                    "top_contributions": s("top_contributions"),
                    "started_at": time("started_at"), "expires_at": time("expires_at"),
                    "ended_at": time("ended_at"), "cooldown_ends_at": time("cooldown_ends_at"),
                    "is_shared_train": e["is_shared_train"] == json!(true),
                }),
            )
        }
        "channel.poll.begin" | "channel.poll.progress" | "channel.poll.end" => {
            let k = match kind {
                "channel.poll.begin" => Kind::PollBegin,
                "channel.poll.progress" => Kind::PollProgress,
                _ => Kind::PollEnd,
            };
            let n = |c: &Value, k: &str| c[k].as_u64().unwrap_or(0);
            let choices: Vec<Value> = e["choices"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    json!({"id": c["id"], "title": c["title"], "votes": n(c, "votes"),
                           "channel_points_votes": n(c, "channel_points_votes")})
                })
                .collect();
            (
                "broadcaster_user_login",
                k,
                json!({
                    "poll_id": s("id"), "title": s("title"), "choices": choices,
                    // "completed", "terminated" or "archived" at the end.
                    "status": e.get("status").cloned().unwrap_or(json!("active")),
                    "started_at": time("started_at"), "ends_at": time("ends_at"),
                    "ended_at": time("ended_at"),
                }),
            )
        }
        "channel.prediction.begin"
        | "channel.prediction.progress"
        | "channel.prediction.lock"
        | "channel.prediction.end" => {
            let k = match kind {
                "channel.prediction.begin" => Kind::PredictionBegin,
                "channel.prediction.progress" => Kind::PredictionProgress,
                "channel.prediction.lock" => Kind::PredictionLock,
                _ => Kind::PredictionEnd,
            };
            // Twitch's own example omits `users` and `channel_points` of an outcome nobody
            // picked: read as 0.
            let n = |c: &Value, k: &str| c[k].as_u64().unwrap_or(0);
            let outcomes: Vec<Value> = e["outcomes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| {
                    let top: Vec<Value> = o["top_predictors"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|p| {
                            json!({"user_name": p["user_name"], "user_login": p["user_login"],
                                        "channel_points_used": n(p, "channel_points_used"),
                                        "channel_points_won": p["channel_points_won"]})
                        })
                        .collect();
                    json!({"id": o["id"], "title": o["title"], "color": o["color"],
                           "users": n(o, "users"), "channel_points": n(o, "channel_points"),
                           "top_predictors": top})
                })
                .collect();
            (
                "broadcaster_user_login",
                k,
                json!({
                    "prediction_id": s("id"), "title": s("title"), "outcomes": outcomes,
                    // "resolved", "canceled" at the end.
                    "status": e.get("status").cloned().unwrap_or(json!(if k == Kind::PredictionLock { "locked" } else { "active" })),
                    "winning_outcome_id": e.get("winning_outcome_id").cloned().unwrap_or(Value::Null),
                    "started_at": time("started_at"), "locks_at": time("locks_at"),
                    "locked_at": time("locked_at"), "ended_at": time("ended_at"),
                }),
            )
        }
        _ => return None,
    };
    let channel = e[channel_key].as_str()?;
    Some(Event::new(Platform::Twitch, channel, kind, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/eventsub_payloads")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("json")
    }

    #[test]
    fn every_fixture_maps_to_its_kind() {
        for (file, kind, expected) in [
            ("channel_follow_v2.json", "channel.follow", Kind::Follow),
            ("channel_subscribe.json", "channel.subscribe", Kind::Sub),
            (
                "channel_subscription_gift.json",
                "channel.subscription.gift",
                Kind::GiftBomb,
            ),
            (
                "channel_subscription_message.json",
                "channel.subscription.message",
                Kind::Resub,
            ),
            ("channel_cheer.json", "channel.cheer", Kind::Cheer),
            ("channel_raid.json", "channel.raid", Kind::Raid),
            (
                "channel_points_redemption_add.json",
                "channel.channel_points_custom_reward_redemption.add",
                Kind::Redemption,
            ),
            ("stream_online.json", "stream.online", Kind::StreamOnline),
            ("stream_offline.json", "stream.offline", Kind::StreamOffline),
            (
                "channel_hype_train_begin_v2.json",
                "channel.hype_train.begin",
                Kind::HypeTrainBegin,
            ),
            (
                "channel_hype_train_progress_v2.json",
                "channel.hype_train.progress",
                Kind::HypeTrainProgress,
            ),
            (
                "channel_hype_train_end_v2.json",
                "channel.hype_train.end",
                Kind::HypeTrainEnd,
            ),
            (
                "channel_poll_progress.json",
                "channel.poll.progress",
                Kind::PollProgress,
            ),
            ("channel_poll_end.json", "channel.poll.end", Kind::PollEnd),
            (
                "channel_prediction_progress.json",
                "channel.prediction.progress",
                Kind::PredictionProgress,
            ),
        ] {
            let payload = fixture(file);
            let event = map(kind, &payload["event"]).unwrap_or_else(|| panic!("{file} maps"));
            assert_eq!(event.kind, expected, "{file}");
            assert!(!event.channel.is_empty(), "{file}");
        }
    }

    #[test]
    fn polls_and_predictions_keep_their_choices_times_and_missing_counts_as_zero() {
        let poll = map(
            "channel.poll.end",
            &fixture("channel_poll_end.json")["event"],
        )
        .expect("poll");
        assert_eq!(poll.data["status"], "completed");
        assert_eq!(poll.data["choices"][1]["votes"], 140);
        assert_eq!(poll.data["ended_at"], 1_594_833_371_171i64);
        let p = map(
            "channel.prediction.progress",
            &fixture("channel_prediction_progress.json")["event"],
        )
        .expect("prediction");
        let outcomes = &p.data["outcomes"];
        assert_eq!(outcomes[0]["channel_points"], 15000);
        // Twitch's example leaves them out for the second outcome.
        assert_eq!(
            (
                outcomes[1]["users"].clone(),
                outcomes[1]["channel_points"].clone()
            ),
            (json!(0), json!(0))
        );
        assert_eq!(
            outcomes[1]["top_predictors"][0]["channel_points_used"],
            5000
        );
        assert_eq!(p.data["status"], "active");
        assert!(p.data["locks_at"].is_u64());
        let train = map(
            "channel.hype_train.progress",
            &fixture("channel_hype_train_progress_v2.json")["event"],
        )
        .expect("train");
        assert_eq!(train.data["expires_at"], 1_594_833_371_171i64);
    }
}
