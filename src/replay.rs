//! Recordings of a stream: a stretch of a channel's log as JSON lines (one event a line, with
//! its original time), and a player that sends one back, at any speed, into any channel. The
//! player keeps the gaps between events (divided by the speed), can pause, resume and stop,
//! and marks what it sends as replayed, so no stat or goal counts it unless asked. The server's
//! dashboard and `overlayd replay` use the same player; only where the events go differs.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::{Duration, Instant};

use crate::event::{Event, Kind};

/// The recordings that come with overlayd, made with the demo source: (name, what, lines).
pub const SAMPLES: &[(&str, &str, &str)] = &[
    (
        "quiet-hour",
        "A quiet hour: a line of chat every few seconds, a follow or a sub now and then",
        include_str!("replay/quiet-hour.jsonl"),
    ),
    (
        "raid-night",
        "Three busy minutes: a raid, a gift bomb, a chat flood, cheers",
        include_str!("replay/raid-night.jsonl"),
    ),
];

/// A gap longer than this (a stream left running overnight) plays as this.
const MAX_GAP_MS: u64 = 10 * 60 * 1000;

/// One event of a recording.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The channel it happened on (a playback may send it to another).
    pub channel: Option<String>,
    pub at: u64,
    pub kind: Kind,
    pub platform: String,
    pub data: Value,
}

/// The line of `event` in a recording (what `export` writes).
pub fn line_of(event: &Event) -> String {
    json!({"id": event.id, "kind": event.kind, "channel": event.channel,
           "platform": event.platform, "at": event.at, "data": event.data})
    .to_string()
}

/// The events of a recording, in time order, and a message for each line that is not one
/// (`line 12: …`): those are skipped, the rest still plays.
pub fn parse(text: &str) -> (Vec<Recorded>, Vec<String>) {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = serde_json::from_str::<Value>(line)
            .map_err(|e| format!("not JSON ({e})"))
            .and_then(|v| {
                let kind = v["kind"]
                    .as_str()
                    .ok_or("no \"kind\"".to_string())?
                    .parse::<Kind>()
                    .map_err(|e| e.to_string())?;
                let at = v["at"]
                    .as_u64()
                    .ok_or("no \"at\" (milliseconds since 1970)")?;
                let data = match &v["data"] {
                    Value::Object(_) => v["data"].clone(),
                    Value::Null => json!({}),
                    _ => return Err("\"data\" is not an object".into()),
                };
                Ok(Recorded {
                    channel: v["channel"].as_str().map(str::to_string),
                    at,
                    kind,
                    platform: v["platform"].as_str().unwrap_or("twitch").to_string(),
                    data,
                })
            });
        match parsed {
            Ok(r) => events.push(r),
            Err(e) => errors.push(format!("line {}: {e}", n + 1)),
        }
    }
    events.sort_by_key(|r| r.at);
    (events, errors)
}

/// Where a playback is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Playing,
    Paused,
    Stopped,
    Done,
}

/// How far a playback got, for whoever watches it.
#[derive(Debug, Default)]
pub struct Progress {
    pub sent: AtomicUsize,
    pub total: AtomicUsize,
    /// Lines that could not be read and events that could not be sent.
    pub errors: Mutex<Vec<String>>,
    /// Rounds done (with `loop`).
    pub rounds: AtomicUsize,
}

/// What a playback sends: the body `POST /api/events` takes, to `channel` (or, when that is
/// empty, to the channel the event happened on).
pub fn body_of(r: &Recorded, channel: &str, counted: bool) -> Value {
    let channel = if channel.is_empty() {
        r.channel.as_deref().unwrap_or_default()
    } else {
        channel
    };
    let mut body =
        json!({"channel": channel, "kind": r.kind, "platform": r.platform, "data": r.data});
    if !counted {
        body["replay"] = json!(true);
    }
    body
}

/// How a recording is played.
#[derive(Clone, Debug)]
pub struct Playback {
    /// Where to (empty: each event's own channel).
    pub channel: String,
    pub speed: f64,
    /// Again and again until stopped.
    pub repeat: bool,
    /// Counted in stats and goals as if live.
    pub counted: bool,
}

/// Plays `events` as `how` says, sending each body through `send`; follows `control` (pause,
/// resume, stop). Returns how it ended.
pub async fn play<F, Fut>(
    events: &[Recorded],
    how: &Playback,
    mut control: watch::Receiver<State>,
    progress: Arc<Progress>,
    mut send: F,
) -> State
where
    F: FnMut(Value) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let speed = if how.speed.is_finite() && how.speed > 0.0 {
        how.speed.min(1000.0)
    } else {
        1.0
    };
    progress.total.store(events.len(), Ordering::Relaxed);
    if events.is_empty() {
        return State::Done;
    }
    loop {
        let mut start = Instant::now();
        let mut offset_ms = 0u64;
        let mut previous = events[0].at;
        for r in events {
            offset_ms += r.at.saturating_sub(previous).min(MAX_GAP_MS);
            previous = r.at;
            let after = Duration::from_secs_f64(offset_ms as f64 / 1000.0 / speed);
            // Wait for the event's time, or a pause (which moves the rest later by its length),
            // or a stop.
            loop {
                let state = *control.borrow_and_update();
                match state {
                    State::Stopped | State::Done => return State::Stopped,
                    State::Paused => {
                        let paused = Instant::now();
                        if control.changed().await.is_err() {
                            return State::Stopped;
                        }
                        start += paused.elapsed();
                        continue;
                    }
                    State::Playing => {}
                }
                let due = start + after;
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => break,
                    changed = control.changed() => if changed.is_err() { return State::Stopped },
                }
            }
            if let Err(e) = send(body_of(r, &how.channel, how.counted)).await {
                let mut errors = progress.errors.lock();
                if errors.len() < 100 {
                    errors.push(e);
                }
            }
            progress.sent.fetch_add(1, Ordering::Relaxed);
        }
        progress.rounds.fetch_add(1, Ordering::Relaxed);
        if !how.repeat {
            return State::Done;
        }
        progress.sent.store(0, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The dashboard's one playback at a time.
#[derive(Default)]
pub struct Rehearsal {
    running: Mutex<Option<Running>>,
}

struct Running {
    control: watch::Sender<State>,
    progress: Arc<Progress>,
    about: Value,
    ended: Arc<Mutex<Option<State>>>,
}

impl Rehearsal {
    /// What plays and how far it got.
    pub fn status(&self) -> Value {
        let running = self.running.lock();
        let Some(r) = running.as_ref() else {
            return json!({"state": "idle"});
        };
        let state = r.ended.lock().unwrap_or(*r.control.borrow());
        let mut v = r.about.clone();
        v["state"] = json!(state);
        v["sent"] = json!(r.progress.sent.load(Ordering::Relaxed));
        v["total"] = json!(r.progress.total.load(Ordering::Relaxed));
        v["rounds"] = json!(r.progress.rounds.load(Ordering::Relaxed));
        v["errors"] = json!(*r.progress.errors.lock());
        v
    }

    /// Stops what plays (if anything) and records a new playback; its control and where
    /// its end is written.
    pub fn begin(
        &self,
        about: Value,
        progress: Arc<Progress>,
    ) -> (watch::Receiver<State>, Arc<Mutex<Option<State>>>) {
        let (control, rx) = watch::channel(State::Playing);
        let ended = Arc::new(Mutex::new(None));
        let mut running = self.running.lock();
        if let Some(old) = running.take() {
            old.control.send_replace(State::Stopped);
        }
        *running = Some(Running {
            control,
            progress,
            about,
            ended: ended.clone(),
        });
        (rx, ended)
    }

    /// Pauses, resumes or stops what plays; `false` when nothing does.
    pub fn set(&self, to: State) -> bool {
        match self.running.lock().as_ref() {
            Some(r) if r.ended.lock().is_none() => {
                r.control.send_replace(to);
                true
            }
            _ => false,
        }
    }
}

/// `overlayd export`: the lines of `channel` from the overlayd at `server`.
pub async fn export_from(
    server: &str,
    token: Option<&str>,
    channel: &str,
    from: Option<&str>,
    to: Option<&str>,
) -> anyhow::Result<String> {
    let url = format!(
        "{}/api/channels/{channel}/export",
        server.trim_end_matches('/')
    );
    let query: Vec<(&str, &str)> = [("from", from), ("to", to)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    let mut req = reqwest::Client::new().get(&url).query(&query);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {e}; is overlayd running?"))?;
    let status = res.status();
    let text = res.text().await?;
    if !status.is_success() {
        anyhow::bail!("{url}: {status}: {text}");
    }
    Ok(text)
}

/// `overlayd replay`: plays `text` into the overlayd at `server` through `POST /api/events`
/// (with the admin token when there is one), until it ends or Ctrl-C. Prints each unreadable
/// line and, at the end, how many were sent.
pub async fn replay_to(
    server: &str,
    token: Option<&str>,
    text: &str,
    channel: Option<&str>,
    speed: f64,
    repeat: bool,
    counted: bool,
) -> anyhow::Result<usize> {
    let (events, errors) = parse(text);
    for e in &errors {
        eprintln!("skipped {e}");
    }
    if events.is_empty() {
        anyhow::bail!("no event to play");
    }
    let url = format!("{}/api/events", server.trim_end_matches('/'));
    let client = reqwest::Client::new();
    let (control, rx) = watch::channel(State::Playing);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        control.send_replace(State::Stopped);
    });
    let progress = Arc::new(Progress::default());
    let send = |body: Value| {
        let mut req = client.post(&url).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        async move {
            let res = req.send().await.map_err(|e| format!("{e}"))?;
            if res.status().is_success() {
                Ok(())
            } else {
                let status = res.status();
                Err(format!(
                    "{status}: {}",
                    res.text().await.unwrap_or_default()
                ))
            }
        }
    };
    eprintln!("playing {} events at {speed}× …", events.len());
    let how = Playback {
        channel: channel.unwrap_or_default().to_string(),
        speed,
        repeat,
        counted,
    };
    play(&events, &how, rx, progress.clone(), send).await;
    for e in progress.errors.lock().iter() {
        eprintln!("not sent: {e}");
    }
    Ok(progress.sent.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_line_is_named_and_the_rest_is_kept() {
        let text = "{\"kind\":\"follow\",\"at\":2000,\"data\":{\"user_name\":\"b\"}}\nnot json\n{\"kind\":\"folow\",\"at\":1}\n\n{\"kind\":\"raid\",\"at\":1000}\n";
        let (events, errors) = parse(text);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind, Kind::Raid, "in time order");
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("line 2: not JSON"), "{errors:?}");
        assert!(
            errors[1].starts_with("line 3: unknown event kind"),
            "{errors:?}"
        );
    }

    #[test]
    fn the_samples_are_recordings() {
        for (name, _, text) in SAMPLES {
            let (events, errors) = parse(text);
            assert!(errors.is_empty(), "{name}: {errors:?}");
            assert!(events.len() > 50, "{name}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn gaps_are_kept_divided_by_the_speed_and_a_pause_moves_the_rest() {
        let (events, _) = parse(
            "{\"kind\":\"follow\",\"at\":0}\n{\"kind\":\"follow\",\"at\":1000}\n{\"kind\":\"follow\",\"at\":4000}\n",
        );
        let (tx, rx) = watch::channel(State::Playing);
        let progress = Arc::new(Progress::default());
        let sent = Arc::new(Mutex::new(Vec::new()));
        let t0 = Instant::now();
        let task = {
            let (sent, progress) = (sent.clone(), progress.clone());
            tokio::spawn(async move {
                play(
                    &events,
                    &Playback {
                        channel: "x".into(),
                        speed: 10.0,
                        repeat: false,
                        counted: false,
                    },
                    rx,
                    progress,
                    |b| {
                        sent.lock().push((t0.elapsed(), b));
                        async { Ok(()) }
                    },
                )
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(150)).await;
        tx.send_replace(State::Paused);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(sent.lock().len(), 2, "nothing while paused");
        tx.send_replace(State::Playing);
        assert_eq!(task.await.expect("player"), State::Done);
        let sent = sent.lock();
        let at: Vec<u128> = sent.iter().map(|(t, _)| t.as_millis()).collect();
        assert_eq!(at[0], 0);
        assert_eq!(at[1], 100);
        // 400 ms in, of which 150..5150 were paused.
        assert_eq!(at[2], 5400);
        assert_eq!(sent[0].1["replay"], true);
        assert_eq!(progress.sent.load(Ordering::Relaxed), 3);
    }
}
