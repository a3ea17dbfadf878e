//! Kick chat as a guest. The chatroom is looked up on kick.com (or given in config, since that
//! lookup sits behind bot protection); Kick's realtime negotiation says which socket to speak:
//! Centrifugo (current) or Pusher (legacy); both carry the same inner events, read by one
//! decoder ([`map::decode`]).
//!
//! [`map`] is the pure decoding; [`pusher`] and [`centrifugo`] the two protocols, on what
//! [`socket`] gives both; this file chooses between them and retries.

pub mod centrifugo;
pub mod map;
pub mod pusher;
pub mod socket;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use self::socket::{End, ORIGIN};
use super::settings::{KickConfig, KickLink, KickTransport};
use super::source::{Source, failed};
use crate::source::sleep_or_cancel;

/// How a slug kick.com does not know is told (the state is then "not-found").
const NOT_FOUND: &str = "there is no Kick channel";

/// The feeds a channel's chat and alerts arrive on.
fn feeds(channel_id: u64, chatroom_id: u64) -> Vec<String> {
    vec![
        format!("chatrooms.{chatroom_id}.v2"),
        format!("chatroom_{chatroom_id}"),
        format!("channel.{channel_id}"),
        format!("channel_{channel_id}"),
    ]
}

/// Runs the source for one Kick channel until `token` is cancelled.
pub async fn run(
    source: Source,
    config: Arc<KickConfig>,
    link: KickLink,
    token: CancellationToken,
) {
    let Some(http) = source.http() else { return };
    let mut ids = link.channel_id.zip(link.chatroom_id);
    let mut failures = super::source::backoff();
    let mut client_id = uuid();
    loop {
        let end = match ids {
            Some((channel_id, chatroom_id)) => {
                let provider = match config.transport {
                    KickTransport::Pusher => Provider::Pusher(config.pusher_url.clone()),
                    KickTransport::Centrifugo | KickTransport::Auto => {
                        match negotiate(&http, &config.realtime_base, channel_id, &client_id).await
                        {
                            Ok(p) => p,
                            Err(e) if config.transport == KickTransport::Auto => {
                                tracing::warn!(
                                    source = source.name,
                                    "negotiation failed ({e}); trying the Pusher socket"
                                );
                                Provider::Pusher(config.pusher_url.clone())
                            }
                            Err(e) => Provider::Failed(e),
                        }
                    }
                };
                let feeds = feeds(channel_id, chatroom_id);
                // Counted as up from the start of the session: a session that lasts
                // `source::HEALTHY` starts the back-off over when it ends.
                failures.up();
                match provider {
                    Provider::Pusher(url) => pusher::pusher(&source, &url, &feeds, &token).await,
                    Provider::Centrifugo(url) => {
                        centrifugo::centrifugo(
                            &source,
                            &http,
                            &config.realtime_base,
                            &url,
                            &client_id,
                            &feeds,
                            &token,
                        )
                        .await
                    }
                    Provider::Failed(e) => End::Failed(e),
                }
            }
            None => match lookup(&http, &config.api_base, &link.slug).await {
                Ok(found) => {
                    ids = Some(found);
                    continue;
                }
                Err(e) => End::Failed(e),
            },
        };
        let wait = match end {
            End::Cancelled => return,
            End::Refused(why) => {
                client_id = uuid();
                source.set(
                    "error",
                    format!("Kick refused the connection ({why}); trying again in 5 minutes"),
                );
                Duration::from_secs(300)
            }
            End::Failed(why) if why.starts_with(NOT_FOUND) => {
                source.retry(&mut failures, "not-found", &why)
            }
            End::Failed(why) => source.retry(&mut failures, "error", &why),
        };
        if !sleep_or_cancel(wait, &token).await {
            return;
        }
    }
}

enum Provider {
    Pusher(String),
    Centrifugo(String),
    Failed(String),
}

fn uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// The channel and chatroom ids of `slug` from kick.com.
async fn lookup(http: &reqwest::Client, api_base: &str, slug: &str) -> Result<(u64, u64), String> {
    let url = format!("{api_base}/api/v2/channels/{slug}");
    let refused = || {
        format!(
            "kick.com refused the lookup of \"{slug}\" (bot protection?): set channel_id and chatroom_id in its [[kick.channels]] entry"
        )
    };
    let r = http
        .get(&url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| failed(&url, &e))?;
    if r.status() == reqwest::StatusCode::NOT_FOUND {
        return Err(format!("{NOT_FOUND} \"{slug}\""));
    }
    if !r.status().is_success() {
        return Err(refused());
    }
    let body: Value = r.json().await.map_err(|_| refused())?;
    let channel = body.get("id").and_then(Value::as_u64);
    let chatroom = body.pointer("/chatroom/id").and_then(Value::as_u64);
    channel.zip(chatroom).ok_or_else(refused)
}

/// Asks Kick which realtime socket to use.
async fn negotiate(
    http: &reqwest::Client,
    realtime: &str,
    channel_id: u64,
    client_id: &str,
) -> Result<Provider, String> {
    let url = format!("{realtime}/channels/{channel_id}/chat/connection");
    let body = json!({
        "client": {"id": client_id, "type": "web"},
        "capabilities": {"accepted_providers": [{"provider": "centrifugo"}, {"provider": "pusher"}]},
    });
    let r = http
        .post(&url)
        .header("origin", ORIGIN)
        .json(&body)
        .send()
        .await
        .map_err(|e| failed(&url, &e))?;
    if !r.status().is_success() {
        return Err(format!("{url} answered {}", r.status()));
    }
    let answer: Value = r.json().await.map_err(|e| failed(&url, &e))?;
    for c in answer
        .pointer("/data/connections")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let socket = c.pointer("/credentials/url").and_then(Value::as_str);
        match (c.get("provider").and_then(Value::as_str), socket) {
            (Some("centrifugo"), Some(url)) => return Ok(Provider::Centrifugo(url.into())),
            (Some("pusher"), Some(url)) => return Ok(Provider::Pusher(url.into())),
            _ => {}
        }
    }
    Err(format!("{url} offered no socket this server speaks"))
}
