//! What many channels cost on one instance: a SQLite log seeded with `--channels` × `--events`
//! chat events, a release server started on it, and measured: start-up to `/health`, RSS and
//! the history in memory at rest, the first stream of cold channels (time until its replay of
//! `--replay` events arrived, p50/p99), RSS and history once those are warm, and the server's
//! CPU per publish into one channel and spread over every channel. Prints one JSON line.
//! The log is dropped from the OS page cache before the start, the cold streams and a first
//! round of spread publishes, so those read the disk (Linux: `dd iflag=nocache`); it is read
//! into the cache before the second round.
//!
//! `--soak SECONDS` instead publishes `--rate` events/s spread over the channels while streams
//! open and close, printing RSS and the history in memory every `--every` seconds, for the
//! "nothing grows without bound" check.
//!
//! Linux only (it reads `/proc`). Loopback only; every loop is bounded in count and time.
//! `bench/channels.sh` builds it and runs the README's cases.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Args {
    channels: usize,
    events: usize,
    /// Channels whose first stream is timed (each gets an overlay file).
    sample: usize,
    replay: usize,
    publishes: usize,
    dir: PathBuf,
    server: PathBuf,
    soak: u64,
    rate: f64,
    every: u64,
}

fn args() -> Args {
    let mut a = Args {
        channels: 1000,
        events: 1000,
        sample: 100,
        replay: 50,
        publishes: 4000,
        dir: PathBuf::from("/tmp/overlayd-channels"),
        server: PathBuf::from("target/release/overlayd"),
        soak: 0,
        rate: 200.0,
        every: 60,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let v = pair.get(1).cloned().unwrap_or_default();
        match pair[0].as_str() {
            "--channels" => a.channels = v.parse().expect("--channels N"),
            "--events" => a.events = v.parse().expect("--events N"),
            "--sample" => a.sample = v.parse().expect("--sample N"),
            "--replay" => a.replay = v.parse().expect("--replay N"),
            "--publishes" => a.publishes = v.parse().expect("--publishes N"),
            "--dir" => a.dir = v.into(),
            "--server" => a.server = v.into(),
            "--soak" => a.soak = v.parse().expect("--soak SECONDS"),
            "--rate" => a.rate = v.parse().expect("--rate N"),
            "--every" => a.every = v.parse().expect("--every SECONDS"),
            other => panic!("unknown argument {other}"),
        }
    }
    a.sample = a.sample.min(a.channels);
    a
}

fn channel(n: usize) -> String {
    format!("ch{n}")
}

/// A chat message's data as Twitch chat gives it (author, badges, emotes): about the size of
/// a real one.
fn chat_data(n: usize) -> String {
    let text = format!("message number {n} with a Kappa emote and some words");
    json!({
        "message_id": format!("9c1a2f6e-{n:012}"),
        "author": {"id": format!("{}", 100000 + n % 5000), "login": format!("viewer{}", n % 5000),
                   "display_name": format!("Viewer{}", n % 5000), "color": "#1E90FF",
                   "roles": {"broadcaster": false, "moderator": n.is_multiple_of(17), "vip": false, "subscriber": n.is_multiple_of(3)},
                   "badges": [{"set": "subscriber", "version": "12"}, {"set": "premium", "version": "1"}]},
        "text": text,
        "elements": [{"type": "text", "value": format!("message number {n} with a ")},
                     {"type": "emote", "id": "25", "name": "Kappa", "url": "https://static-cdn.jtvnw.net/emoticons/v2/25/default/dark/1.0"},
                     {"type": "text", "value": " emote and some words"}],
        "is_action": false, "bits": 0,
    })
    .to_string()
}

/// Seeds `dir/data/events.sqlite3` unless a seed of the same size is there.
fn seed(a: &Args) -> PathBuf {
    // Named for the log's layout too: a seed of an older layout is not reused.
    let data = a
        .dir
        .join(format!("data-{}x{}-by-channel", a.channels, a.events));
    let db = data.join("events.sqlite3");
    let marker = data.join("seeded");
    if marker.exists() {
        return data;
    }
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).expect("data dir");
    let started = Instant::now();
    // The server's own code makes the file, so the seed has its layout; the rows go in
    // through a connection of ours that does not wait for the disk.
    drop(overlayd::store::Sqlite::open(&db, a.events.max(1), 30).expect("create the log"));
    let mut conn = rusqlite::Connection::open(&db).expect("open");
    conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA cache_size = -4000000;")
        .expect("pragmas");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let tx = conn.transaction().expect("transaction");
    {
        let mut insert = tx
            .prepare("INSERT INTO events (id, channel, kind, platform, at, history, data) VALUES (?1, ?2, 'chat.message', 'twitch', ?3, 0, ?4)")
            .expect("insert");
        let mut id = 1i64;
        // Interleaved as a live server writes them: every channel's events spread over time.
        for e in 0..a.events {
            for c in 0..a.channels {
                let at = now - ((a.events - e) as i64) * 1000;
                insert
                    .execute(rusqlite::params![
                        id,
                        channel(c),
                        at,
                        chat_data(id as usize)
                    ])
                    .expect("row");
                id += 1;
            }
        }
    }
    tx.commit().expect("commit");
    drop(conn);
    std::fs::write(&marker, "").expect("marker");
    eprintln!(
        "seeded {} events in {:.1}s ({} MB)",
        a.channels * a.events,
        started.elapsed().as_secs_f64(),
        std::fs::metadata(&db).map_or(0, |m| m.len() >> 20)
    );
    data
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One HTTP/1.1 request on a fresh connection; the status and body.
fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

fn health(addr: SocketAddr) -> Value {
    let (_, body) = http(addr, "GET", "/health", None);
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// The number after `key` in `/proc/<pid>/<file>` (a "Key: value" table), 0 if not there.
fn proc_field(pid: u32, file: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident memory of `pid` in KB.
fn rss_kb(pid: u32) -> u64 {
    proc_field(pid, "status", "VmRSS:")
}

/// CPU time (user + system) of `pid`, in seconds.
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // Fields 14 and 15 of stat (utime, stime), counted after the ")".
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The files of the server's log in its data dir.
const LOG_FILES: [&str; 2] = ["events.sqlite3", "events.sqlite3-wal"];

/// Drops the log's files from the OS page cache (`dd iflag=nocache`, which asks the kernel to
/// forget a file's clean pages), so what follows reads the disk as after a reboot or a build
/// that pushed the log out: "cold" means cold on disk too, not only outside the server.
fn evict(data: &Path) {
    for name in LOG_FILES {
        let file = data.join(name);
        if file.exists() {
            let status = Command::new("dd")
                .arg(format!("if={}", file.display()))
                .args(["iflag=nocache", "count=0", "status=none"])
                .status()
                .expect("run dd to evict the log from the page cache");
            assert!(status.success(), "dd could not evict {}", file.display());
        }
    }
}

/// Reads the log's files through, so they are in the OS page cache.
fn cache(data: &Path) {
    for name in LOG_FILES {
        if let Ok(mut file) = std::fs::File::open(data.join(name)) {
            std::io::copy(&mut file, &mut std::io::sink()).expect("read the log through");
        }
    }
}

/// Writes the config and the sampled channels' overlay files, starts the server, and times
/// its start-up to a healthy `/health`.
fn start(a: &Args, data: &Path) -> (Server, Duration) {
    let port = free_port();
    let overlays = a.dir.join("overlays");
    let _ = std::fs::remove_dir_all(&overlays);
    // Each run starts without the sessions an earlier run saved, so runs compare.
    for file in [
        "widgets.sqlite3",
        "widgets.sqlite3-wal",
        "widgets.sqlite3-shm",
    ] {
        let _ = std::fs::remove_file(data.join(file));
    }
    std::fs::create_dir_all(&overlays).expect("overlays");
    for c in 0..a.sample {
        std::fs::write(
            overlays.join(format!("o{c}.toml")),
            format!(
                "kind = \"chat\"\nchannel = \"{}\"\n",
                channel(sampled(a, c))
            ),
        )
        .expect("overlay");
    }
    let config = a.dir.join("overlay.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\nhistory = {}\ndata_dir = \"{}\"\noverlays_dir = \"overlays\"\n[twitch]\npart_grace_s = 0\n",
            a.events.max(1),
            data.display()
        ),
    )
    .expect("config");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let started = Instant::now();
    let child = Command::new(&a.server)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .spawn()
        .expect("start the server (build it: cargo build --release)");
    let server = Server { child, addr };
    for _ in 0..2000 {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(50)).is_ok()
            && health(addr)["status"] == "ok"
        {
            return (server, started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("the server did not become healthy in time");
}

/// The `c`th sampled channel: spread over all of them.
fn sampled(a: &Args, c: usize) -> usize {
    c * a.channels / a.sample.max(1)
}

/// Opens overlay `o<c>`'s stream from `since` and times the arrival of `n` event frames.
fn first_stream(addr: SocketAddr, c: usize, since: u64, n: usize) -> Duration {
    let started = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET /o/o{c}/events?since={since} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    )
    .expect("write");
    let mut reader = BufReader::new(s);
    let mut seen = 0;
    let mut line = String::new();
    while seen < n && started.elapsed() < Duration::from_secs(10) {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.starts_with("id:") {
            seen += 1;
        }
    }
    assert_eq!(seen, n, "overlay o{c} replayed {seen} of {n}");
    started.elapsed()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// A keep-alive connection that posts events one at a time, each in one packet.
struct Poster {
    s: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Poster {
    fn new(addr: SocketAddr) -> Poster {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        // One request a packet, sent at once (not held back for the last one's ACK).
        s.set_nodelay(true).expect("nodelay");
        let reader = BufReader::new(s.try_clone().expect("clone"));
        Poster { s, reader }
    }

    /// Posts `body` to `/api/events` and reads the whole answer (headers, then the body by its
    /// length).
    fn post(&mut self, body: &str) {
        let request = format!(
            "POST /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.s.write_all(request.as_bytes()).expect("write");
        let mut length = 0;
        let mut line = String::new();
        for _ in 0..64 {
            line.clear();
            self.reader.read_line(&mut line).expect("answer");
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut answer = vec![0; length];
        self.reader.read_exact(&mut answer).expect("body");
    }
}

/// Bytes `pid` has read from the disk (not from the page cache).
fn disk_read(pid: u32) -> u64 {
    proc_field(pid, "io", "read_bytes:")
}

/// Server CPU µs and disk bytes read per publish of `n` chat events, to `channels` chosen
/// round-robin.
fn publish_cpu(server: &Server, n: usize, channels: usize) -> (f64, f64) {
    let pid = server.child.id();
    let (before, read) = (cpu_s(pid), disk_read(pid));
    let mut poster = Poster::new(server.addr);
    for i in 0..n {
        let body = json!({"channel": channel(i % channels), "kind": "chat.message",
                          "data": {"user_name": "bench", "text": format!("publish {i}")}});
        poster.post(&body.to_string());
    }
    (
        (cpu_s(pid) - before) * 1e6 / n as f64,
        disk_read(pid).saturating_sub(read) as f64 / n as f64,
    )
}

fn measure(a: &Args) {
    let data = seed(a);
    evict(&data);
    let (server, startup) = start(a, &data);
    let pid = server.child.id();
    // The stored chat of overlay channels is recounted into the stats beside the server: let
    // that finish, so what follows measures history alone.
    std::thread::sleep(Duration::from_secs(3));
    let rest_kb = rss_kb(pid);
    let rest_memory = health(server.addr)["history_in_memory"].clone();
    evict(&data);
    // The newest `replay` events of each sampled channel: their ids are known from the seed's
    // interleaving (event e of channel c is id e * channels + c + 1).
    let mut times = Vec::new();
    for c in 0..a.sample {
        let ch = sampled(a, c);
        let first_replayed = a.events.saturating_sub(a.replay);
        let since = (first_replayed * a.channels + ch) as u64;
        times.push(first_stream(server.addr, c, since, a.replay.min(a.events)));
    }
    times.sort();
    let streamed_kb = rss_kb(pid);
    let streamed = health(server.addr)["history_in_memory"].clone();
    // A page on the multiplexed stream asks for frames by id (`/render`): that reads the
    // channel's recent events into memory, where they stay while the channel is wanted. Asked
    // for none, so what is measured is the history, not items made for an answer.
    for c in 0..a.sample {
        let (status, _) = http(server.addr, "GET", &format!("/o/o{c}/render?ids=0"), None);
        assert_eq!(status, 200, "render of o{c}");
    }
    let warm = health(server.addr)["history_in_memory"].clone();
    let warm_kb = rss_kb(pid);
    let (one, one_read) = publish_cpu(&server, a.publishes, 1);
    // Spread twice: first with the log just evicted (each publish reads its channel's pages
    // from the disk, as the first ones after a reboot would), then with the whole log in the
    // page cache, as the one channel's pages are: like for like, the server's own cost.
    evict(&data);
    let (uncached, uncached_read) = publish_cpu(&server, a.publishes, a.channels);
    cache(&data);
    let (spread, spread_read) = publish_cpu(&server, a.publishes, a.channels);
    let events_in_memory = warm["events"].as_u64().unwrap_or(0);
    let per_event = if events_in_memory > 0 {
        (warm_kb.saturating_sub(streamed_kb) * 1024) as f64 / events_in_memory as f64
    } else {
        0.0
    };
    let json_per_event = warm["bytes"].as_f64().unwrap_or(0.0) / events_in_memory.max(1) as f64;
    println!(
        "{}",
        json!({
            "channels": a.channels, "stored_events": a.channels * a.events,
            "startup_ms": startup.as_secs_f64() * 1000.0,
            "rss_at_rest_mb": rest_kb as f64 / 1024.0, "in_memory_at_rest": rest_memory,
            "cold_first_stream_ms": {"n": times.len(), "replayed": a.replay,
                                     "p50": percentile(&times, 0.5), "p99": percentile(&times, 0.99)},
            "rss_after_streams_mb": streamed_kb as f64 / 1024.0, "in_memory_after_streams": streamed,
            "rss_warm_mb": warm_kb as f64 / 1024.0, "in_memory_warm": warm,
            "rss_bytes_per_event_in_memory": per_event, "json_bytes_per_event": json_per_event,
            "publish_cpu_us": {"one_channel": one, "spread": spread, "ratio": spread / one,
                               "spread_uncached": uncached, "ratio_uncached": uncached / one},
            "publish_disk_read_bytes": {"one_channel": one_read, "spread": spread_read,
                                        "spread_uncached": uncached_read},
        })
    );
}

fn soak(a: &Args) {
    let data = seed(a);
    let (server, _) = start(a, &data);
    let pid = server.child.id();
    let started = Instant::now();
    let end = Duration::from_secs(a.soak);
    let gap = Duration::from_secs_f64(1.0 / a.rate.max(0.1));
    let mut next_report = Duration::ZERO;
    let mut i = 0usize;
    let mut poster = Poster::new(server.addr);
    let mut streams: Vec<TcpStream> = Vec::new();
    while started.elapsed() < end && i < 100_000_000 {
        let due = gap.mul_f64(i as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        let body = json!({"channel": channel(i % a.channels), "kind": "chat.message",
                          "data": {"user_name": format!("viewer{}", i % 20_000), "text": format!("soak {i}")}})
        .to_string();
        poster.post(&body);
        // Streams come and go: every second one more opens on a sampled overlay, and the
        // oldest closes once ten are open.
        if i.is_multiple_of(a.rate.max(1.0) as usize) && a.sample > 0 {
            let c = (i / a.rate.max(1.0) as usize) % a.sample;
            if let Ok(mut t) = TcpStream::connect_timeout(&server.addr, Duration::from_secs(5)) {
                let _ = write!(t, "GET /o/o{c}/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
                streams.push(t);
            }
            // As a page on the multiplexed stream would: its backlog reads the channel into
            // memory, kept while the stream is open and forgotten a while after.
            http(
                server.addr,
                "GET",
                &format!("/o/o{c}/backlog?since=0"),
                None,
            );
            if streams.len() > 10 {
                streams.remove(0);
            }
        }
        if started.elapsed() >= next_report {
            let memory = health(server.addr)["history_in_memory"].clone();
            println!(
                "{}",
                json!({"t_s": started.elapsed().as_secs(), "published": i, "rss_mb": rss_kb(pid) as f64 / 1024.0, "in_memory": memory})
            );
            next_report += Duration::from_secs(a.every);
        }
        i += 1;
    }
    let memory = health(server.addr)["history_in_memory"].clone();
    println!(
        "{}",
        json!({"t_s": started.elapsed().as_secs(), "published": i, "rss_mb": rss_kb(pid) as f64 / 1024.0, "in_memory": memory, "end": true})
    );
}

fn main() {
    let a = args();
    std::fs::create_dir_all(&a.dir).expect("work dir");
    if a.soak > 0 { soak(&a) } else { measure(&a) }
}
