//! The token's life in the server: loaded at start, validated then and every hour (as Twitch
//! requires), refreshed before it expires with the new refresh token saved each time. A
//! revoked or invalid token is shown on the dashboard and `/health` with what to do; nothing
//! crash-loops.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::oauth::{OAuth, Store, Token};
use crate::app::App;

const SOURCE: &str = "twitch-auth";
/// "Your app must validate the OAuth token when it starts and on an hourly basis thereafter."
/// (https://dev.twitch.tv/docs/authentication/validate-tokens/)
const VALIDATE_EVERY: Duration = Duration::from_secs(3600);

pub struct Auth {
    pub oauth: Option<OAuth>,
    store: Store,
    token: RwLock<Option<Token>>,
    changed: watch::Sender<u64>,
}

impl Auth {
    pub fn new(config: &crate::config::Config) -> Arc<Auth> {
        let oauth = config
            .twitch
            .client_id
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|id| {
                OAuth::new(
                    &config.twitch.endpoints.id,
                    id,
                    config.twitch.client_secret.as_deref(),
                )
            });
        let store = Store::new(&config.data_dir);
        let token = store.load().unwrap_or_else(|e| {
            tracing::error!("{e}");
            None
        });
        Arc::new(Auth {
            oauth,
            store,
            token: RwLock::new(token),
            changed: watch::Sender::new(0),
        })
    }

    /// The current token, if logged in and valid as far as we know.
    pub fn token(&self) -> Option<Token> {
        self.token.read().clone()
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

    /// Keeps the token valid until shutdown.
    pub async fn run(self: Arc<Self>, app: Arc<App>, shutdown: CancellationToken) {
        let Some(oauth) = self.oauth.clone() else {
            app.sources.set(
                SOURCE,
                "logged-out",
                "set [twitch] client_id, then run `overlayd login`",
            );
            return;
        };
        let mut changed = self.watch();
        loop {
            let Some(token) = self.token() else {
                app.sources.set(
                    SOURCE,
                    "logged-out",
                    "log in on the dashboard or run `overlayd login`",
                );
                // Wait for a login from the dashboard.
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = changed.changed() => if r.is_err() { return },
                }
                continue;
            };
            let wait = match self.check(&oauth, token, &app).await {
                Ok(next) => next,
                // Dead token: wait for a new login.
                Err(()) => Duration::from_secs(365 * 24 * 3600),
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                r = changed.changed() => if r.is_err() { return },
            }
        }
    }

    /// Validates (refreshing when due or refused); returns when to look again.
    async fn check(&self, oauth: &OAuth, mut token: Token, app: &App) -> Result<Duration, ()> {
        let now = crate::event::now_ms();
        if token.due(now) {
            match oauth.refresh(&token).await {
                Ok(fresh) => {
                    tracing::info!("Twitch token refreshed");
                    token = fresh;
                    self.set(Some(token.clone()));
                }
                Err(super::oauth::Error::Http(e)) => {
                    app.sources.set(
                        SOURCE,
                        "error",
                        format!("cannot reach Twitch to refresh the token: {e}"),
                    );
                    return Ok(Duration::from_secs(30));
                }
                Err(e) => {
                    app.sources.set(
                        SOURCE,
                        "revoked",
                        format!("{e}; run `overlayd login` again"),
                    );
                    *self.token.write() = None;
                    return Err(());
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
                app.sources.set(
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
                Ok(until_due.min(VALIDATE_EVERY).max(Duration::from_secs(1)))
            }
            Err(super::oauth::Error::Http(e)) => {
                app.sources.set(
                    SOURCE,
                    "error",
                    format!("cannot reach Twitch to validate the token: {e}"),
                );
                Ok(Duration::from_secs(30))
            }
            Err(_) if token.refresh_token.is_some() && !token.due(now) => {
                // Refused: try a refresh right away before giving up.
                token.expires_at_ms = Some(0);
                *self.token.write() = Some(token);
                Ok(Duration::from_millis(1))
            }
            Err(e) => {
                app.sources.set(
                    SOURCE,
                    "revoked",
                    format!("{e}; run `overlayd login` again"),
                );
                *self.token.write() = None;
                Err(())
            }
        }
    }
}
