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

use parking_lot::Mutex;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

/// A process's CPU time so far (user + system), in µs: the server's, or the load tool's own.
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

/// What the clients share with the run.
struct Run {
    /// Clients told the chat started.
    ready: AtomicU64,
    /// Clients that got every event.
    done: AtomicU64,
    /// When the latest delivery arrived, µs since the epoch.
    last_delivery_us: AtomicU64,
    /// The latencies of messages read together with a stats message.
    with_stats: Mutex<Vec<u64>>,
    /// The latencies of messages read without one.
    alone: Mutex<Vec<u64>>,
    /// Stats messages received, and their bytes: the chat's stats, pushed as it moves.
    stats_frames: AtomicU64,
    stats_bytes: AtomicU64,
    /// Set once every client is done (or the run gave up waiting): the clients close then.
    stop: tokio::sync::watch::Sender<bool>,
    deadline: Instant,
}

/// Where a `ws://host:port/path` URL points.
fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("ws://").unwrap_or(url);
    match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    }
}

/// `payload` as a client's text frame (masked, as RFC 6455 requires of clients).
fn client_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x5a, 0x3c, 0x96, 0xe1];
    let mut out = vec![0x81];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// The next whole frame at the front of `buf`: its opcode, payload range and length in all.
fn next_frame(buf: &[u8]) -> Option<(u8, std::ops::Range<usize>)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let (len, head) = match b1 & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    (buf.len() >= head + len).then_some((b0 & 0x0f, head..head + len))
}

/// One client: a plain TCP socket with a minimal WebSocket reader (as sseload reads SSE), so
/// that the load tool's work per delivery is small and what is measured is the server.
/// Subscribes, waits to be told the chat started, then records each message's latency until
/// `events` arrived or the deadline passed. A client that has them all keeps its socket open
/// until every client is done (as sseload's do): ten thousand closes in the middle of the last
/// event's fan-out would be timed as that event's delivery.
async fn client(url: String, channel: String, events: u64, run: Arc<Run>) -> u64 {
    let (host, path) = split_url(&url);
    let mut got = 0u64;
    let (mut with_stats, mut alone) = (Vec::new(), Vec::with_capacity(events as usize));
    let deadline = run.deadline;
    let mut stop = run.stop.subscribe();
    let _ = tokio::time::timeout_at(deadline.into(), async {
        let Ok(mut tcp) = TcpStream::connect(&host).await else {
            return;
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        if tcp.write_all(request.as_bytes()).await.is_err() {
            return;
        }
        let mut buf: Vec<u8> = Vec::with_capacity(16 * 1024);
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 8192 || !matches!(tcp.read_buf(&mut buf).await, Ok(n) if n > 0) {
                return;
            }
        };
        if !buf.starts_with(b"HTTP/1.1 101") {
            return;
        }
        buf.drain(..head_end);
        let subscribe = json!({"type": "subscribe", "platform": "twitch", "identifier": channel});
        if tcp
            .write_all(&client_frame(subscribe.to_string().as_bytes()))
            .await
            .is_err()
        {
            return;
        }
        let mut started = false;
        let mut this_read = Vec::new();
        while got < events {
            let mut used = 0;
            let mut stats = false;
            while let Some((opcode, payload)) = next_frame(&buf[used..]) {
                let text = &buf[used + payload.start..used + payload.end];
                used += payload.end;
                match opcode {
                    0x1 if !started => {
                        started = text.windows(9).any(|w| w == b"\"started\"");
                        run.ready.fetch_add(u64::from(started), Ordering::Relaxed);
                    }
                    0x1 if text.ends_with(b"\"type\":\"stats\"}") => {
                        stats = true;
                        run.stats_frames.fetch_add(1, Ordering::Relaxed);
                        run.stats_bytes
                            .fetch_add(text.len() as u64, Ordering::Relaxed);
                    }
                    // A chat message of ours: `… ts=<µs> …` in its text (the first place).
                    0x1 => {
                        if let Some(at) = text.windows(4).position(|w| w == b" ts=") {
                            let digits = &text[at + 4..];
                            let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
                            if let Some(ts) = std::str::from_utf8(&digits[..n])
                                .ok()
                                .and_then(|d| d.parse::<u64>().ok())
                            {
                                let now = now_us();
                                this_read.push(now.saturating_sub(ts));
                                run.last_delivery_us.fetch_max(now, Ordering::Relaxed);
                                got += 1;
                            }
                        }
                    }
                    0x8 => return,
                    _ => {}
                }
            }
            buf.drain(..used);
            // Messages that came in one read with a stats message: timed apart as well.
            match stats {
                true => with_stats.append(&mut this_read),
                false => alone.append(&mut this_read),
            }
            if got >= events {
                run.done.fetch_add(1, Ordering::Relaxed);
                let _ = stop.wait_for(|stop| *stop).await;
                break;
            }
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(16 * 1024);
            }
            // A client still short of events when the run stops (one was lost) stops too.
            tokio::select! {
                read = tcp.read_buf(&mut buf) => if !matches!(read, Ok(n) if n > 0) {
                    return;
                },
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    })
    .await;
    run.with_stats.lock().extend(with_stats);
    run.alone.lock().extend(alone);
    got
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// The clients read on a thread of their own (one, as sseload's do by default); publishing and
/// the rest run on the main thread.
fn main() {
    let receivers = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let readers = receivers.handle().clone();
    std::thread::Builder::new()
        .name("wsload-recv".into())
        .spawn(move || receivers.block_on(std::future::pending::<()>()))
        .expect("a thread");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(run(readers));
}

async fn run(readers: tokio::runtime::Handle) {
    let a = args();
    let http = reqwest::Client::new();
    let pss_before = pss_kb(a.pid);
    let run = Arc::new(Run {
        ready: AtomicU64::new(0),
        done: AtomicU64::new(0),
        last_delivery_us: AtomicU64::new(0),
        with_stats: Mutex::default(),
        alone: Mutex::default(),
        stats_frames: AtomicU64::new(0),
        stats_bytes: AtomicU64::new(0),
        stop: tokio::sync::watch::Sender::new(false),
        deadline: Instant::now() + Duration::from_secs(300),
    });
    let ready = &run.ready;
    let connect_start = Instant::now();
    let mut tasks = Vec::with_capacity(a.clients);
    for _ in 0..a.clients {
        tasks.push(readers.spawn(client(
            a.ws.clone(),
            a.channel.clone(),
            a.events,
            run.clone(),
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
    // The server's peak memory, sampled every 100 ms (as sseload samples it) until the end.
    let pss_peak = Arc::new(AtomicU64::new(pss_idle.unwrap_or(0)));
    let sampler = {
        let (peak, mut stop, pid) = (pss_peak.clone(), run.stop.subscribe(), a.pid);
        tokio::spawn(async move {
            while tokio::time::timeout(Duration::from_millis(100), stop.wait_for(|s| *s))
                .await
                .is_err()
            {
                peak.fetch_max(pss_kb(pid).unwrap_or(0), Ordering::Relaxed);
            }
        })
    };
    let cpu_before = cpu_us(a.pid);
    let own_cpu_before = cpu_us(Some(std::process::id()));
    let started = Instant::now();
    let first_publish_us = now_us();
    let period = (a.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / a.rate));
    let mut accepted = 0u64;
    for seq in 1..=a.events {
        let text = format!("bench seq={seq} ts={}", now_us());
        let body = json!({"channel": a.channel, "kind": "chat.message", "data": {
            "text": text, "message_id": format!("b{seq}"), "user_name": format!("u{}", seq % 50),
            "elements": [{"type": "text", "value": text}],
        }});
        let sent = http.post(&a.publish).json(&body).send().await;
        accepted += u64::from(sent.is_ok_and(|r| r.status().is_success()));
        if let Some(p) = period {
            let next = started + p * seq as u32;
            tokio::time::sleep_until(next.into()).await;
        }
    }
    let publish_s = started.elapsed().as_secs_f64();
    // Every client done, or nothing delivered for ten seconds (a client lost an event).
    let mut last_seen = (run.last_delivery_us.load(Ordering::Relaxed), Instant::now());
    while run.done.load(Ordering::Relaxed) < connected && Instant::now() < run.deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let last = run.last_delivery_us.load(Ordering::Relaxed);
        if last != last_seen.0 {
            last_seen = (last, Instant::now());
        } else if last_seen.1.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    let cpu_after = cpu_us(a.pid);
    let own_cpu_after = cpu_us(Some(std::process::id()));
    // As sseload counts: from the first publish to the last delivery.
    let elapsed = run
        .last_delivery_us
        .load(Ordering::Relaxed)
        .saturating_sub(first_publish_us) as f64
        / 1e6;
    let _ = run.stop.send(true);
    let _ = sampler.await;
    let mut delivered = 0u64;
    for t in tasks {
        delivered += t.await.unwrap_or(0);
    }
    let mut with_stats = run.with_stats.lock().clone();
    with_stats.sort_unstable();
    let mut alone = run.alone.lock().clone();
    alone.sort_unstable();
    // Every delivery: both kinds together.
    let mut lat = [alone.as_slice(), with_stats.as_slice()].concat();
    lat.sort_unstable();
    let stats_frames = run.stats_frames.load(Ordering::Relaxed);
    let expected = a.events * a.clients as u64;
    let per_delivery = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(b), Some(e)) if delivered > 0 => Some((e - b) as f64 / delivered as f64),
        _ => None,
    };
    let cpu_per = per_delivery(cpu_before, cpu_after);
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
        "deliveries_per_s": delivered as f64 / elapsed.max(1e-6),
        "latency_ms": {"p50": percentile(&lat, 0.5), "p99": percentile(&lat, 0.99), "max": percentile(&lat, 1.0)},
        "without_stats": {
            "deliveries": alone.len(),
            "latency_ms": {"p50": percentile(&alone, 0.5), "p99": percentile(&alone, 0.99), "max": percentile(&alone, 1.0)},
        },
        "with_stats": {
            "deliveries": with_stats.len(),
            "latency_ms": {"p50": percentile(&with_stats, 0.5), "p99": percentile(&with_stats, 0.99), "max": percentile(&with_stats, 1.0)},
            "stats_messages": stats_frames,
            "stats_bytes_mean": run.stats_bytes.load(Ordering::Relaxed).checked_div(stats_frames),
        },
        "server": {"cpu_us_per_delivery": cpu_per, "idle_kb_per_conn": idle_kb, "pss_kb_idle": pss_idle,
                   "pss_kb_peak": pss_peak.load(Ordering::Relaxed)},
        "loadgen": {"cpu_us_per_delivery": per_delivery(own_cpu_before, own_cpu_after)},
        "published_ok": accepted, "publish_s": publish_s, "publish_rate": accepted as f64 / publish_s.max(1e-6),
    });
    println!("{line}");
}
