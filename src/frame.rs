//! Every byte an event stream sends, made here and nowhere else: the HTTP head of a stream
//! written straight on its socket, the preamble, event frames, control frames, keep-alives
//! and the resync notice. Event frames are made once per overlay and shared by every client.

use std::io::Write;

use bytes::Bytes;
use serde_json::Value;

use crate::event::{Event, Kind};

/// The response headers of an event stream. `x-accel-buffering: no` tells a reverse proxy in
/// front of a hosted instance not to buffer it.
pub const HEADERS: [(&str, &str); 3] = [
    ("content-type", "text/event-stream"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),
];

/// The whole HTTP head of a stream served straight on its socket: [`HEADERS`], and
/// `connection: close` (the socket is the stream's alone).
pub const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nx-accel-buffering: no\r\nconnection: close\r\n\r\n";

/// Sent first: how soon a browser should reconnect after a drop, and a comment that tells the
/// client the subscription is registered (a `200` alone does not). The wait is spread over
/// `RETRY_MS` per stream: when overlayd restarts, hundreds of open sources would otherwise all
/// come back in the same instant.
pub fn preamble() -> Vec<u8> {
    let (low, high) = RETRY_MS;
    let retry = low + rand::random::<u64>() % (high - low + 1);
    format!("retry: {retry}\n: ok\n\n").into_bytes()
}

/// The range a stream's reconnect wait is drawn from (ms): soon, and spread over two seconds.
pub const RETRY_MS: (u64, u64) = (1000, 3000);

/// A comment line: keeps proxies and OBS from closing an idle stream.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// Told to a client that fell too far behind: it reloads what it shows from the backlog.
pub const RESYNC: &[u8] = b"event: resync\ndata: {\"reason\":\"lagged\"}\n\n";

/// One event frame: `id`, `event` and a single `data` line of JSON (the wire contract's
/// `{"id", "kind", "channel", "platform", "at", "data", "html"}`, plus the overlay's name).
pub fn event(event: &Event, overlay: &str, html: &str) -> Bytes {
    #[derive(serde::Serialize)]
    struct Wire<'a> {
        id: u64,
        kind: Kind,
        channel: &'a str,
        platform: &'a str,
        at: u64,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        history: bool,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        replay: bool,
        overlay: &'a str,
        data: &'a Value,
        html: &'a str,
    }
    let mut buf = Vec::with_capacity(256 + html.len());
    let _ = write!(buf, "id: {}\nevent: {}\ndata: ", event.id, event.kind);
    // serde_json escapes newlines inside strings, so the JSON is one line as SSE requires.
    let _ = serde_json::to_writer(
        &mut buf,
        &Wire {
            id: event.id,
            kind: event.kind,
            channel: &event.channel,
            platform: &event.platform,
            at: event.at,
            history: event.history,
            replay: event.replay,
            overlay,
            data: &event.data,
            html,
        },
    );
    buf.extend_from_slice(b"\n\n");
    Bytes::from(buf)
}

/// A control frame (no id: it is not part of history).
pub fn control(event: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// The JSON of a frame made by [`event`] or [`control`] (its one `data` line).
pub fn json_of(frame: &[u8]) -> Option<&[u8]> {
    let start = frame.windows(6).position(|w| w == b"data: ")? + 6;
    let rest = &frame[start..];
    let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Platform;

    #[test]
    fn reconnect_waits_are_spread() {
        let waits: std::collections::BTreeSet<String> = (0..50)
            .map(|_| String::from_utf8(preamble()).expect("ascii"))
            .collect();
        assert!(waits.len() > 5, "{waits:?}");
        for p in &waits {
            let ms: u64 = p
                .strip_prefix("retry: ")
                .and_then(|r| r.split('\n').next())
                .and_then(|n| n.parse().ok())
                .expect("retry");
            assert!((RETRY_MS.0..=RETRY_MS.1).contains(&ms), "{p}");
            assert!(p.ends_with("\n: ok\n\n"));
        }
    }

    #[test]
    fn the_head_carries_every_stream_header() {
        let head = std::str::from_utf8(HEAD).expect("ascii");
        for (name, value) in HEADERS {
            assert!(head.contains(&format!("\r\n{name}: {value}\r\n")), "{name}");
        }
        assert!(head.ends_with("\r\n\r\n"));
    }

    #[test]
    fn an_event_frame_is_one_data_line_whose_json_can_be_read_back() {
        let mut e = Event::new(
            Platform::Twitch,
            "c",
            Kind::ChatMessage,
            serde_json::json!({"text": "two\nlines"}),
        );
        e.id = 7;
        let f = event(&e, "chat", "<p>a\nb</p>");
        let text = std::str::from_utf8(&f).expect("utf-8");
        assert!(
            text.starts_with("id: 7\nevent: chat.message\ndata: {"),
            "{text}"
        );
        assert_eq!(text.matches('\n').count(), 4, "{text}");
        let json: Value = serde_json::from_slice(json_of(&f).expect("data")).expect("json");
        assert_eq!(json["data"]["text"], "two\nlines");
        assert_eq!(json["platform"], "twitch");
        let c = control("theme", &serde_json::json!({"theme": "x"}));
        assert_eq!(json_of(&c), Some(&b"{\"theme\":\"x\"}"[..]));
    }
}
