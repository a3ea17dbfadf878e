//! The EventSub webhook transport (`POST /eventsub/callback`), for a server with a public
//! HTTPS address. Every request is verified before anything else: HMAC-SHA256 over the message
//! id, the timestamp and the raw body, compared in constant time; older than ten minutes is
//! refused; a message id already handled is acknowledged but not published again
//! (<https://dev.twitch.tv/docs/eventsub/handling-webhook-events/>).

use std::path::Path;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Twitch's replay window.
pub const MAX_AGE_MS: i64 = 10 * 60 * 1000;

/// Why a request was refused (all answered 403: nothing to tell a forger).
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum Refused {
    #[error("a Twitch-Eventsub-Message-* header is missing")]
    MissingHeader,
    #[error("the signature does not match")]
    BadSignature,
    #[error("the message is older than ten minutes")]
    Stale,
    #[error("the timestamp is not RFC 3339")]
    BadTimestamp,
    #[error("the message is dated more than a minute ahead")]
    Future,
    #[error("the message id is empty")]
    NoId,
}

/// How far ahead of our clock a message may be dated (clocks drift a little, not ten minutes).
pub const MAX_AHEAD_MS: i64 = 60 * 1000;

/// Checks `signature` (`sha256=<hex>`) over `id + timestamp + body` with `secret`, and the age.
pub fn verify(
    secret: &[u8],
    id: &str,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now_ms: i64,
) -> Result<(), Refused> {
    // An empty id could never be told apart from another: every redelivery would show again.
    if id.trim().is_empty() {
        return Err(Refused::NoId);
    }
    let hex = signature
        .strip_prefix("sha256=")
        .ok_or(Refused::BadSignature)?;
    let expected = decode_hex(hex).ok_or(Refused::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| Refused::BadSignature)?;
    mac.update(id.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| Refused::BadSignature)?;
    let at = chrono::DateTime::parse_from_rfc3339(timestamp)
        .map_err(|_| Refused::BadTimestamp)?
        .timestamp_millis();
    if now_ms - at > MAX_AGE_MS {
        return Err(Refused::Stale);
    }
    // A date far ahead would stay "fresh" past the replay window.
    if at - now_ms > MAX_AHEAD_MS {
        return Err(Refused::Future);
    }
    Ok(())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `sha256=<hex>` for a message (what Twitch sends; tests sign with it too).
pub fn sign(secret: &[u8], id: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(timestamp.as_bytes());
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut out = String::from("sha256=");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// The webhook secret: `[twitch] webhook_secret`, else one generated once and kept in the data
/// dir (Twitch wants 10-100 ASCII characters).
pub fn secret(configured: Option<&str>, data_dir: &Path) -> String {
    if let Some(s) = configured.filter(|s| !s.is_empty()) {
        return s.to_string();
    }
    let path = data_dir.join("webhook-secret");
    if let Ok(s) = std::fs::read_to_string(&path)
        && s.trim().len() >= 10
    {
        return s.trim().to_string();
    }
    let fresh: String = (0..48)
        .map(|_| format!("{:x}", rand::random::<u8>() & 15))
        .collect();
    if let Err(e) = std::fs::create_dir_all(data_dir)
        .and_then(|_| crate::files::write_private(&path, fresh.as_bytes()))
    {
        tracing::error!("cannot keep the webhook secret in {}: {e}", path.display());
    }
    fresh
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(dir: &str, file: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/eventsub_webhook")
            .join(dir)
            .join(file);
        std::fs::read(path).expect("fixture")
    }

    fn header(dir: &str, name: &str) -> String {
        String::from_utf8(fixture(dir, "headers.txt"))
            .expect("utf8")
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
            .expect("header")
    }

    fn at(ts: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(ts)
            .expect("ts")
            .timestamp_millis()
    }

    #[test]
    fn twitchs_signed_examples_verify_at_their_time() {
        for dir in ["notification_signed", "challenge_signed"] {
            let secret = fixture(dir, "secret.txt");
            let body = fixture(dir, "body.json");
            let id = header(dir, "Twitch-Eventsub-Message-Id");
            let ts = header(dir, "Twitch-Eventsub-Message-Timestamp");
            let sig = header(dir, "Twitch-Eventsub-Message-Signature");
            assert_eq!(sign(&secret, &id, &ts, &body), sig, "{dir}");
            assert_eq!(
                verify(&secret, &id, &ts, &body, &sig, at(&ts) + 1000),
                Ok(()),
                "{dir}"
            );
            // A message dated far ahead of our clock is refused, a little ahead is fine.
            assert_eq!(
                verify(&secret, &id, &ts, &body, &sig, at(&ts) - MAX_AHEAD_MS - 1),
                Err(Refused::Future)
            );
            assert_eq!(
                verify(&secret, &id, &ts, &body, &sig, at(&ts) - 5000),
                Ok(())
            );
            assert_eq!(
                verify(&secret, "", &ts, &body, &sig, at(&ts)),
                Err(Refused::NoId)
            );
            // ...and are stale today.
            assert_eq!(
                verify(&secret, &id, &ts, &body, &sig, at(&ts) + MAX_AGE_MS + 1),
                Err(Refused::Stale)
            );
            let mut altered = body.clone();
            altered[10] ^= 1;
            assert_eq!(
                verify(&secret, &id, &ts, &altered, &sig, at(&ts)),
                Err(Refused::BadSignature)
            );
            assert_eq!(
                verify(b"wrong-secret", &id, &ts, &body, &sig, at(&ts)),
                Err(Refused::BadSignature)
            );
            assert_eq!(
                verify(
                    &secret,
                    &id,
                    "2021-02-19T23:47:01.8091512Z",
                    &body,
                    &sig,
                    at(&ts)
                ),
                Err(Refused::BadSignature)
            );
            assert_eq!(
                verify(&secret, &id, &ts, &body, "sha256=zz", at(&ts)),
                Err(Refused::BadSignature)
            );
        }
    }
}
