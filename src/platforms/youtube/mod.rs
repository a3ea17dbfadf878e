//! YouTube live chat without an API key: the watch page gives the live video and the "Live
//! chat" continuation, then `youtubei/v1/live_chat/get_live_chat` is polled at the pace each
//! answer asks for (clamped to `[youtube] min_poll_ms..max_poll_ms`).
//!
//! The pure parts are [`page`] (the watch page) and [`map`] (answers into events); this file is
//! the network loop.

pub mod map;
pub mod page;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use self::map::{map_action, parse_answer};
use self::page::{Liveness, Page, Target, is_consent_page, parse_page};
use super::settings::YoutubeConfig;
use super::source::{Source, failed, why};
use crate::event::Platform;
use crate::source::sleep_or_cancel;

/// How a page that does not exist is told (the state is then "not-found").
const NOT_FOUND: &str = "no such YouTube channel or video";

/// How a poll sequence ended.
enum PollEnd {
    /// The chat ended (no continuation, or the video is gone).
    Ended,
    /// The continuation is no longer accepted: look at the page again.
    Reresolve,
    Cancelled,
}

/// Runs the source for `target` until `token` is cancelled.
pub async fn run(
    source: Source,
    config: Arc<YoutubeConfig>,
    target: String,
    token: CancellationToken,
) {
    let Some(target) = Target::parse(&target) else {
        source.set("error", format!("\"{target}\" is not a YouTube target"));
        return;
    };
    let Some(http) = source.http() else { return };
    let recheck = Duration::from_secs(config.live_check_s.max(1));
    let mut failures = super::source::backoff();
    loop {
        let wait = match resolve(&http, &config.base_url, &target).await {
            Ok(page) if page.state == Liveness::Live && page.continuation.is_some() => {
                failures.up();
                // Named before "connected" is told, so whoever follows the state sees both.
                source.live(page.video_id.clone());
                source.set(
                    "connected",
                    format!(
                        "reading the live chat of video {}",
                        page.video_id.as_deref().unwrap_or("?")
                    ),
                );
                let end = poll(&source, &http, &config, &page, &token).await;
                source.live(None);
                match end {
                    PollEnd::Cancelled => return,
                    PollEnd::Reresolve => Duration::ZERO,
                    PollEnd::Ended => {
                        source.set(
                            "ended",
                            format!(
                                "the stream ended; looking again every {}s",
                                recheck.as_secs()
                            ),
                        );
                        recheck
                    }
                }
            }
            Ok(page) => {
                source.set(
                    page.state.as_str(),
                    format!(
                        "no live chat right now ({}); looking again every {}s",
                        page.state.as_str(),
                        recheck.as_secs()
                    ),
                );
                recheck
            }
            Err(e) if e.starts_with(NOT_FOUND) => source.retry(&mut failures, "not-found", &e),
            Err(e) => source.retry(&mut failures, "error", &e),
        };
        if !sleep_or_cancel(wait, &token).await {
            return;
        }
    }
}

/// Fetches and reads the target's page, getting past the cookie-consent interstitial.
async fn resolve(http: &reqwest::Client, base: &str, target: &Target) -> Result<Page, String> {
    let url = target.page(base);
    let mut html = get_page(http, &url, None).await?;
    if is_consent_page(&html) {
        // Answering the consent form with "reject all" is what a stateless client does.
        html = get_page(http, &url, Some("SOCS=CAE; CONSENT=PENDING+987")).await?;
        if is_consent_page(&html) {
            return Err("YouTube keeps showing its cookie-consent page".into());
        }
    }
    Ok(parse_page(&html))
}

async fn get_page(
    http: &reqwest::Client,
    url: &str,
    cookie: Option<&str>,
) -> Result<String, String> {
    let mut req = http.get(url).header("accept-language", "en-US,en;q=0.8");
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    let r = req.send().await.map_err(|e| failed(url, &e))?;
    let status = r.status();
    let consent = r
        .url()
        .host_str()
        .is_some_and(|h| h.starts_with("consent."));
    let body = r.text().await.map_err(|e| failed(url, &e))?;
    if consent {
        return Ok("Before you continue to YouTube".into());
    }
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(format!("{NOT_FOUND} at {url}"));
    }
    if !status.is_success() {
        return Err(format!("{url} answered {status}"));
    }
    Ok(body)
}

async fn poll(
    source: &Source,
    http: &reqwest::Client,
    config: &YoutubeConfig,
    page: &Page,
    token: &CancellationToken,
) -> PollEnd {
    let mut url = format!(
        "{}/youtubei/v1/live_chat/get_live_chat?prettyPrint=false",
        config.base_url
    );
    if let Some(key) = &page.api_key {
        url.push_str(&format!("&key={key}"));
    }
    let version = page
        .client_version
        .clone()
        .unwrap_or_else(|| config.client_version.clone());
    let mut continuation = page.continuation.clone().unwrap_or_default();
    let mut failures = super::source::backoff();
    let mut batches = map::Batches::default();
    let (min, max) = (config.min_poll_ms, config.max_poll_ms);
    loop {
        let started = Instant::now();
        let body = json!({
            "context": {"client": {"clientName": "WEB", "clientVersion": version, "hl": "en"}},
            "continuation": continuation,
        });
        let sent = http
            .post(&url)
            .header("x-youtube-client-name", "1")
            .header("x-youtube-client-version", &version)
            .header("referer", format!("{}/", config.base_url))
            .json(&body)
            .send()
            .await;
        let wait = match sent {
            Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                Ok(answer) => {
                    failures.up();
                    let answer = parse_answer(&answer);
                    for action in &answer.actions {
                        let Some(mut m) = map_action(action) else {
                            continue;
                        };
                        batches.link(&mut m, crate::event::now_ms());
                        if m.id.as_deref().is_some_and(|id| !source.first(id)) {
                            continue;
                        }
                        source.publish(Platform::Youtube, m.kind, m.data, m.at);
                    }
                    let Some((next, timeout)) = answer.next else {
                        return PollEnd::Ended;
                    };
                    continuation = next;
                    let asked = Duration::from_millis(timeout.clamp(min, max));
                    asked.saturating_sub(started.elapsed())
                }
                Err(e) => {
                    tracing::warn!(source = source.name, "unreadable chat answer skipped: {e}");
                    Duration::from_millis(max)
                }
            },
            Ok(r) => {
                let status = r.status().as_u16();
                match status {
                    400 => return PollEnd::Reresolve,
                    404 => return PollEnd::Ended,
                    _ => {
                        let why = match status {
                            429 => "YouTube rate limited (429)".to_string(),
                            403 => "YouTube refused (403)".to_string(),
                            other => format!("YouTube answered {other}"),
                        };
                        source.retry(&mut failures, "backoff", &why)
                    }
                }
            }
            Err(e) => source.retry(&mut failures, "backoff", &why(&e)),
        };
        if !failures.failing() {
            source.set(
                "connected",
                format!(
                    "reading the live chat of video {}",
                    page.video_id.as_deref().unwrap_or("?")
                ),
            );
        }
        if !sleep_or_cancel(wait, token).await {
            return PollEnd::Cancelled;
        }
    }
}
