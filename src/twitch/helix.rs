//! The Helix API client (base URL configurable): users, channel followers and EventSub
//! subscriptions. Sends `Client-Id` and the bearer token; on 429 waits for `Ratelimit-Reset`.

use std::time::Duration;

use serde_json::{Value, json};

/// Longest wait for a rate-limit reset before giving up on the call.
const MAX_RATE_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the Twitch token was refused ({0}); run `overlayd login` again")]
    Unauthorized(String),
    #[error("the Twitch token lacks a scope: {0}; run `overlayd login` again to grant it")]
    Forbidden(String),
    #[error("already exists")]
    Conflict,
    #[error("Helix answered {0}: {1}")]
    Status(u16, String),
    #[error("cannot reach Helix: {0}")]
    Http(#[from] reqwest::Error),
}

#[derive(Clone)]
pub struct Helix {
    http: reqwest::Client,
    base: String,
    client_id: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: String,
    pub login: String,
    pub display_name: String,
}

impl Helix {
    pub fn new(base: &str, client_id: &str) -> Helix {
        Helix {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .unwrap_or_default(),
            base: base.trim_end_matches('/').to_string(),
            client_id: client_id.to_string(),
        }
    }

    async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Error> {
        for _ in 0..3 {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .header("Client-Id", &self.client_id)
                .bearer_auth(token);
            if let Some(b) = body {
                req = req.json(b);
            }
            let res = req.send().await?;
            let status = res.status().as_u16();
            if status == 429 {
                // Ratelimit-Reset is a Unix time in seconds.
                let reset = res
                    .headers()
                    .get("ratelimit-reset")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                let now = crate::event::now_ms() / 1000;
                let wait = Duration::from_secs(reset.saturating_sub(now).max(1)).min(MAX_RATE_WAIT);
                tracing::warn!("Helix rate limit reached; waiting {wait:?}");
                tokio::time::sleep(wait).await;
                continue;
            }
            let text = res.text().await.unwrap_or_default();
            let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let message = value["message"].as_str().unwrap_or(&text).to_string();
            return match status {
                200..=299 => Ok(value),
                401 => Err(Error::Unauthorized(message)),
                403 => Err(Error::Forbidden(message)),
                409 => Err(Error::Conflict),
                s => Err(Error::Status(s, message)),
            };
        }
        Err(Error::Status(429, "rate limited".into()))
    }

    pub async fn user(&self, token: &str, login: &str) -> Result<Option<User>, Error> {
        let v = self
            .call(
                token,
                reqwest::Method::GET,
                &format!("/users?login={login}"),
                None,
            )
            .await?;
        Ok(v["data"].as_array().and_then(|d| d.first()).map(|u| User {
            id: u["id"].as_str().unwrap_or_default().to_string(),
            login: u["login"].as_str().unwrap_or_default().to_string(),
            display_name: u["display_name"].as_str().unwrap_or_default().to_string(),
        }))
    }

    /// The channel's live stream, if it is live (`None`: offline).
    pub async fn stream(&self, token: &str, login: &str) -> Result<Option<Value>, Error> {
        let v = self
            .call(
                token,
                reqwest::Method::GET,
                &format!("/streams?user_login={login}"),
                None,
            )
            .await?;
        Ok(v["data"].as_array().and_then(|d| d.first()).cloned())
    }

    /// Chat badge images: Twitch's global ones, or a channel's own (`broadcaster_id`), as
    /// (set, version) → 1x image URL.
    pub async fn badges(
        &self,
        token: &str,
        broadcaster_id: Option<&str>,
    ) -> Result<std::collections::HashMap<(String, String), String>, Error> {
        let path = match broadcaster_id {
            Some(id) => format!("/chat/badges?broadcaster_id={id}"),
            None => "/chat/badges/global".to_string(),
        };
        let v = self.call(token, reqwest::Method::GET, &path, None).await?;
        let mut out = std::collections::HashMap::new();
        for set in v["data"].as_array().into_iter().flatten() {
            let set_id = set["set_id"].as_str().unwrap_or_default();
            for version in set["versions"].as_array().into_iter().flatten() {
                if let (Some(id), Some(url)) =
                    (version["id"].as_str(), version["image_url_1x"].as_str())
                {
                    out.insert((set_id.to_string(), id.to_string()), url.to_string());
                }
            }
        }
        Ok(out)
    }

    /// The channel's most recent followers, newest first.
    pub async fn followers(
        &self,
        token: &str,
        broadcaster_id: &str,
        first: u32,
    ) -> Result<Vec<Value>, Error> {
        let v = self
            .call(
                token,
                reqwest::Method::GET,
                &format!("/channels/followers?broadcaster_id={broadcaster_id}&first={first}"),
                None,
            )
            .await?;
        Ok(v["data"].as_array().cloned().unwrap_or_default())
    }

    /// Creates an EventSub subscription over `transport` (a WebSocket session, or a webhook
    /// with an app token); returns its id.
    pub async fn subscribe(
        &self,
        token: &str,
        kind: &str,
        version: &str,
        condition: Value,
        transport: Value,
    ) -> Result<String, Error> {
        let body = json!({"type": kind, "version": version, "condition": condition, "transport": transport});
        let v = self
            .call(
                token,
                reqwest::Method::POST,
                "/eventsub/subscriptions",
                Some(&body),
            )
            .await?;
        Ok(v["data"][0]["id"].as_str().unwrap_or_default().to_string())
    }

    /// Every subscription of this client (first page; enough for one streamer).
    pub async fn subscriptions(&self, token: &str) -> Result<Vec<Value>, Error> {
        let v = self
            .call(token, reqwest::Method::GET, "/eventsub/subscriptions", None)
            .await?;
        Ok(v["data"].as_array().cloned().unwrap_or_default())
    }

    pub async fn unsubscribe(&self, token: &str, id: &str) -> Result<(), Error> {
        self.call(
            token,
            reqwest::Method::DELETE,
            &format!("/eventsub/subscriptions?id={id}"),
            None,
        )
        .await
        .map(|_| ())
    }
}
