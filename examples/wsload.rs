//! A load generator for the chat socket: N chat-protocol clients on one channel, M chat
//! messages posted to `POST /api/events`, every delivery timed. Prints one JSON line in the
//! shape of `../shared/bench`'s sseload (deliveries/s, latency percentiles, server CPU per
//! delivery, server memory per idle connection). Loopback only; every wait is bounded.
//!
//! `cargo run --release --example wsload -- --ws ws://127.0.0.1:18091/ws \
//!  --publish http://127.0.0.1:18091/api/events --pid <server pid> -n 1000 -m 200 --rate 0`
//! (`bench/ws.sh` starts the server and runs it.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

struct Args {
    ws: String,
    publish: String,
    pid: Option<u32>,
    clients: usize,
    events: u64,
    rate: f64,
    label: String,
    channel: String,
}

fn args() -> Args {
    let mut a = Args {
        ws: "ws://127.0.0.1:18091/ws".into(),
        publish: "http://127.0.0.1:18091/api/events".into(),
        pid: None,
        clients: 1000,
        events: 200,
        rate: 0.0,
        label: "overlayd-chat-ws".into(),
        channel: "bench".into(),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let v = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--ws" => a.ws = v,
            "--publish" => a.publish = v,
            "--pid" => a.pid = v.parse().ok(),
            "-n" => a.clients = v.parse().unwrap_or(a.clients),
            "-m" => a.events = v.parse().unwrap_or(a.events),
            "--rate" => a.rate = v.parse().unwrap_or(0.0),
            "--label" => a.label = v,
            "--channel" => a.channel = v,
            other => eprintln!("ignored argument {other}"),
        }
    }
    a
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

/// The server's CPU time so far (user + system), in µs.
fn cpu_us(pid: Option<u32>) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // Linux reports in clock ticks of 100 Hz on every common configuration.
    Some(ticks * 10_000)
}

/// The server's proportional set size, in KB.
fn pss_kb(pid: Option<u32>) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", pid?)).ok()?;
    text.lines()
        .find(|l| l.starts_with("Pss:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

type Latencies = Arc<Mutex<Vec<u64>>>;

/// One client: subscribes, waits to be told the chat started, then records each message's
/// latency until `events` arrived or the deadline passed.
async fn client(
    url: String,
    channel: String,
    events: u64,
    ready: Arc<AtomicU64>,
    latencies: Latencies,
    deadline: Instant,
) -> u64 {
    let Ok(Ok((mut ws, _))) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::connect_async(url.as_str()),
    )
    .await
    else {
        return 0;
    };
    let subscribe = json!({"type": "subscribe", "platform": "twitch", "identifier": channel});
    if ws.send(Message::text(subscribe.to_string())).await.is_err() {
        return 0;
    }
    let mut got = 0u64;
    let mut mine = Vec::with_capacity(events as usize);
    while got < events {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(Ok(frame))) = tokio::time::timeout(left, ws.next()).await else {
            break;
        };
        let Message::Text(text) = frame else { continue };
        let Ok(m) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        match m["type"].as_str() {
            Some("status") if m["status"] == "started" => {
                ready.fetch_add(1, Ordering::Relaxed);
            }
            Some("chat") => {
                let raw = m["data"]["data"]["content"]["raw"]
                    .as_str()
                    .unwrap_or_default();
                if let Some(ts) = raw
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("ts="))
                    .and_then(|t| t.parse::<u64>().ok())
                {
                    mine.push(now_us().saturating_sub(ts));
                    got += 1;
                }
            }
            _ => {}
        }
    }
    latencies.lock().extend(mine);
    got
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let a = args();
    let http = reqwest::Client::new();
    let pss_before = pss_kb(a.pid);
    let ready = Arc::new(AtomicU64::new(0));
    let latencies: Latencies = Arc::default();
    let deadline = Instant::now() + Duration::from_secs(300);
    let connect_start = Instant::now();
    let mut tasks = Vec::with_capacity(a.clients);
    for _ in 0..a.clients {
        tasks.push(tokio::spawn(client(
            a.ws.clone(),
            a.channel.clone(),
            a.events,
            ready.clone(),
            latencies.clone(),
            deadline,
        )));
    }
    let ready_by = Instant::now() + Duration::from_secs(120);
    while (ready.load(Ordering::Relaxed) as usize) < a.clients && Instant::now() < ready_by {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connected = ready.load(Ordering::Relaxed);
    let connect_ms = connect_start.elapsed().as_secs_f64() * 1000.0;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pss_idle = pss_kb(a.pid);
    let cpu_before = cpu_us(a.pid);
    let started = Instant::now();
    let period = (a.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / a.rate));
    for seq in 1..=a.events {
        let text = format!("bench seq={seq} ts={}", now_us());
        let body = json!({"channel": a.channel, "kind": "chat.message", "data": {
            "text": text, "message_id": format!("b{seq}"), "user_name": format!("u{}", seq % 50),
            "elements": [{"type": "text", "value": text}],
        }});
        let _ = http.post(&a.publish).json(&body).send().await;
        if let Some(p) = period {
            let next = started + p * seq as u32;
            tokio::time::sleep_until(next.into()).await;
        }
    }
    let mut delivered = 0u64;
    for t in tasks {
        delivered += t.await.unwrap_or(0);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = cpu_us(a.pid);
    let mut lat = latencies.lock().clone();
    lat.sort_unstable();
    let expected = a.events * a.clients as u64;
    let cpu_per = match (cpu_before, cpu_after) {
        (Some(b), Some(e)) if delivered > 0 => Some((e - b) as f64 / delivered as f64),
        _ => None,
    };
    let idle_kb = match (pss_before, pss_idle) {
        (Some(b), Some(i)) if connected > 0 => {
            Some((i.saturating_sub(b)) as f64 / connected as f64)
        }
        _ => None,
    };
    let line = json!({
        "tool": "wsload", "label": a.label, "clients_requested": a.clients, "connected": connected,
        "connect_ms": connect_ms, "events": a.events, "rate_target": a.rate,
        "deliveries": delivered, "expected": expected, "lost": expected.saturating_sub(delivered),
        "deliveries_per_s": delivered as f64 / elapsed,
        "latency_ms": {"p50": percentile(&lat, 0.5), "p99": percentile(&lat, 0.99), "max": percentile(&lat, 1.0)},
        "server": {"cpu_us_per_delivery": cpu_per, "idle_kb_per_conn": idle_kb, "pss_kb_idle": pss_idle},
    });
    println!("{line}");
}
