//! The token's life in the server: loaded at start, validated then and every hour (as Twitch
//! requires), refreshed before it expires with the new refresh token saved each time. A
//! revoked or invalid token is shown on the dashboard and `/health` with what to do; nothing
//! crash-loops.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::helix::Helix;
use super::oauth::{OAuth, Store, Token};
use crate::source::Status;

const SOURCE: &str = "twitch-auth";
/// "Your app must validate the OAuth token when it starts and on an hourly basis thereafter."
/// (https://dev.twitch.tv/docs/authentication/validate-tokens/)
const VALIDATE_EVERY: Duration = Duration::from_secs(3600);
/// After a refresh or validation that could not reach Twitch, the next try.
const RETRY: Duration = Duration::from_secs(30);

/// The token and what is built from the app's client id. With no client id set there is no
/// OAuth and no Helix: chat is read anonymously and nothing else of Twitch runs.
pub struct Auth {
    pub oauth: Option<OAuth>,
    helix: Option<Helix>,
    store: Store,
    token: RwLock<Option<Token>>,
    changed: watch::Sender<u64>,
}

impl Auth {
    pub fn new(config: &crate::config::Config) -> Arc<Auth> {
        let twitch = &config.twitch;
        let oauth = twitch
            .client_id
            .as_deref()
            .map(|id| OAuth::new(&twitch.endpoints.id, id, twitch.client_secret.as_deref()));
        let helix = twitch
            .client_id
            .as_deref()
            .map(|id| Helix::new(&twitch.endpoints.helix, id));
        let store = Store::new(&config.data_dir);
        let token = store.load().unwrap_or_else(|e| {
            tracing::error!("{e}");
            None
        });
        Arc::new(Auth {
            oauth,
            helix,
            store,
            token: RwLock::new(token),
            changed: watch::Sender::new(0),
        })
    }

    /// The current token, if logged in and valid as far as we know.
    pub fn token(&self) -> Option<Token> {
        self.token.read().clone()
    }

    /// Helix with the app's client id; `None` when no client id is set.
    pub fn helix(&self) -> Option<&Helix> {
        self.helix.as_ref()
    }

    /// Helix and the current access token, when both are there.
    pub fn helix_with_token(&self) -> Option<(&Helix, String)> {
        Some((self.helix()?, self.token()?.access_token))
    }

    /// Whether Twitch knows `channel` (`None`: cannot tell, e.g. not logged in).
    pub async fn channel_exists(&self, channel: &str) -> Option<bool> {
        let (helix, token) = self.helix_with_token()?;
        helix.user(&token, channel).await.ok().map(|u| u.is_some())
    }

    /// Bumps whenever the token changes (sources that hold one pick up the new one).
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Replaces the token (a new login) and saves it.
    pub fn set(&self, token: Option<Token>) {
        if let Some(t) = &token
            && let Err(e) = self.store.save(t)
        {
            tracing::error!("{e}");
        }
        *self.token.write() = token;
        self.changed.send_modify(|n| *n += 1);
    }

    /// Forgets the token: revoked at Twitch (best effort) and deleted from disk.
    pub async fn logout(&self) {
        let token = self.token.write().take();
        if let (Some(oauth), Some(t)) = (&self.oauth, token)
            && let Err(e) = oauth.revoke(&t.access_token).await
        {
            tracing::warn!("Twitch did not confirm the revocation: {e}");
        }
        if let Err(e) = self.store.delete() {
            tracing::error!("{e}");
        }
        self.changed.send_modify(|n| *n += 1);
    }

    /// Keeps the token valid until shutdown, reporting to `status`.
    pub async fn run(self: Arc<Self>, status: Arc<Status>, shutdown: CancellationToken) {
        let Some(oauth) = self.oauth.clone() else {
            status.set(
                SOURCE,
                "logged-out",
                "set [twitch] client_id, then run `overlayd login`",
            );
            return;
        };
        let mut changed = self.watch();
        loop {
            let Some(token) = self.token() else {
                status.set(
                    SOURCE,
                    "logged-out",
                    "log in on the dashboard or run `overlayd login`",
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = changed.changed() => if r.is_err() { return },
                }
                continue;
            };
            // `None`: the token is dead; only a new login (a change) goes on.
            let wait = self.check(&oauth, token, &status).await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait.unwrap_or(Duration::MAX)), if wait.is_some() => {}
                r = changed.changed() => if r.is_err() { return },
            }
        }
    }

    /// Validates (refreshing when due or refused); returns when to look again, `None` when the
    /// token is dead.
    async fn check(&self, oauth: &OAuth, mut token: Token, status: &Status) -> Option<Duration> {
        let now = crate::event::now_ms();
        if token.due(now) {
            match oauth.refresh(&token).await {
                Ok(fresh) => {
                    tracing::info!("Twitch token refreshed");
                    token = fresh;
                    self.set(Some(token.clone()));
                }
                Err(super::oauth::Error::Http(e)) => {
                    status.set(
                        SOURCE,
                        "error",
                        format!("cannot reach Twitch to refresh the token: {e}"),
                    );
                    return Some(RETRY);
                }
                Err(e) => {
                    status.set(
                        SOURCE,
                        "revoked",
                        format!("{e}; run `overlayd login` again"),
                    );
                    *self.token.write() = None;
                    return None;
                }
            }
        }
        match oauth.validate(&token.access_token).await {
            Ok(v) => {
                if token.login != v.login || token.user_id != v.user_id {
                    token.login = v.login.clone();
                    token.user_id = v.user_id.clone();
                    self.set(Some(token.clone()));
                }
                status.set(
                    SOURCE,
                    "ok",
                    format!("logged in as {}", v.login.as_deref().unwrap_or("?")),
                );
                let until_due = token
                    .expires_at_ms
                    .map(|at| {
                        at.saturating_sub(now + super::oauth::REFRESH_MARGIN.as_millis() as u64)
                    })
                    .map_or(VALIDATE_EVERY, Duration::from_millis);
                Some(until_due.min(VALIDATE_EVERY).max(Duration::from_secs(1)))
            }
            Err(super::oauth::Error::Http(e)) => {
                status.set(
                    SOURCE,
                    "error",
                    format!("cannot reach Twitch to validate the token: {e}"),
                );
                Some(RETRY)
            }
            Err(_) if token.refresh_token.is_some() && !token.due(now) => {
                // Refused: try a refresh right away before giving up.
                token.expires_at_ms = Some(0);
                *self.token.write() = Some(token);
                Some(Duration::from_millis(1))
            }
            Err(e) => {
                status.set(
                    SOURCE,
                    "revoked",
                    format!("{e}; run `overlayd login` again"),
                );
                *self.token.write() = None;
                None
            }
        }
    }
}
