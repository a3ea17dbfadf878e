//! Twitch OAuth, hand-written on reqwest: Twitch answers errors as `{"status", "message"}`
//! rather than RFC 6749's `{"error"}`, and `scope` as a list, which generic clients trip on.
//! Device-code login for a public client (no secret), refresh (the new refresh token is kept
//! every time: they rotate), validation, revocation, and a token file readable only by you.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The scopes overlayd asks for, each for one EventSub type it subscribes to.
pub const SCOPES: &[&str] = &[
    "moderator:read:followers",   // channel.follow v2, recent followers
    "channel:read:subscriptions", // subscribe, subscription.gift, subscription.message
    "bits:read",                  // cheer
    "channel:read:redemptions",   // channel points redemptions
    "channel:read:hype_train",    // hype train begin/progress/end
    "channel:read:polls",         // poll begin/progress/end
    "channel:read:predictions",   // prediction begin/progress/lock/end
    "chat:read",                  // reading chat as yourself
];

/// Refresh this long before the access token expires, so it never lapses mid-stream.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("waiting for you to approve the login")]
    Pending,
    #[error("Twitch asked to poll more slowly")]
    SlowDown,
    #[error("the login code expired or was already used; start the login again")]
    Expired,
    #[error("the login was denied on Twitch")]
    Denied,
    #[error("Twitch refused: {0}")]
    Refused(String),
    #[error("cannot reach Twitch: {0}")]
    Http(#[from] reqwest::Error),
    #[error("token file {path}: {error}")]
    Store { path: PathBuf, error: String },
}

/// A user access token and what is known about it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Token {
    pub access_token: String,
    pub refresh_token: Option<String>,
    /// Milliseconds since the epoch; `None` for tokens that do not expire.
    pub expires_at_ms: Option<u64>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub login: Option<String>,
    pub user_id: Option<String>,
}

impl Token {
    /// Whether it should be refreshed now.
    pub fn due(&self, now_ms: u64) -> bool {
        self.expires_at_ms
            .is_some_and(|at| now_ms + REFRESH_MARGIN.as_millis() as u64 >= at)
    }
}

/// The answer to `POST /device`.
#[derive(Clone, Debug, Deserialize)]
pub struct DeviceCode {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub interval: u64,
    pub expires_in: u64,
}

/// What `GET /validate` says about a token.
#[derive(Clone, Debug, Deserialize)]
pub struct Validation {
    pub client_id: String,
    pub login: Option<String>,
    pub user_id: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    pub expires_in: u64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    refresh_token: Option<String>,
    expires_in: Option<u64>,
    #[serde(default)]
    scope: Option<Value>,
}

/// Talks to Twitch's id service (`[twitch.endpoints] id`).
#[derive(Clone)]
pub struct OAuth {
    http: reqwest::Client,
    base: String,
    pub client_id: String,
    client_secret: Option<String>,
}

impl OAuth {
    pub fn new(base: &str, client_id: &str, client_secret: Option<&str>) -> OAuth {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        OAuth {
            http,
            base: base.trim_end_matches('/').to_string(),
            client_id: client_id.to_string(),
            client_secret: client_secret.map(str::to_string),
        }
    }

    /// POSTs a form to `path` of the id service and parses the answer (or Twitch's error).
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<T, Error> {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await?;
        answer(res).await
    }

    /// A token from `POST /token` with `form`.
    async fn token(&self, form: &[(&str, &str)]) -> Result<Token, Error> {
        Ok(to_token(self.post::<TokenAnswer>("/token", form).await?))
    }

    /// Starts a device-code login: show `verification_uri` and `user_code` to the user.
    pub async fn device_start(&self) -> Result<DeviceCode, Error> {
        // Twitch wants `scopes` (plural) in a form body here (twitchdev/issues#1130).
        let scopes = SCOPES.join(" ");
        self.post(
            "/device",
            &[("client_id", &self.client_id), ("scopes", &scopes)],
        )
        .await
    }

    /// Where to send a browser for the authorization-code login (confidential clients).
    pub fn authorize_url(&self, redirect_uri: &str, state: &str) -> String {
        self.authorize_url_with(redirect_uri, state, SCOPES)
    }

    /// The same with chosen scopes (a viewer's login needs none: it only says who they are).
    pub fn authorize_url_with(&self, redirect_uri: &str, state: &str, scopes: &[&str]) -> String {
        let mut url =
            reqwest::Url::parse(&format!("{}/authorize", self.base)).unwrap_or_else(|_| {
                reqwest::Url::parse("https://id.twitch.tv/oauth2/authorize").expect("static URL")
            });
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", state);
        url.to_string()
    }

    /// Trades the code from `/auth/callback` for a token (needs the client secret).
    pub async fn exchange_code(&self, code: &str, redirect_uri: &str) -> Result<Token, Error> {
        let secret = self
            .client_secret
            .as_deref()
            .ok_or_else(|| Error::Refused("browser login needs [twitch] client_secret".into()))?;
        self.token(&[
            ("client_id", &self.client_id),
            ("client_secret", secret),
            ("code", code),
            ("grant_type", "authorization_code"),
            ("redirect_uri", redirect_uri),
        ])
        .await
    }

    /// An app access token (client credentials), which webhook subscriptions require.
    pub async fn app_token(&self) -> Result<Token, Error> {
        let secret = self
            .client_secret
            .as_deref()
            .ok_or_else(|| Error::Refused("webhooks need [twitch] client_secret".into()))?;
        self.token(&[
            ("client_id", &self.client_id),
            ("client_secret", secret),
            ("grant_type", "client_credentials"),
        ])
        .await
    }

    pub fn has_secret(&self) -> bool {
        self.client_secret.is_some()
    }

    /// One poll of a device-code login.
    pub async fn device_poll(&self, code: &DeviceCode) -> Result<Token, Error> {
        self.token(&[
            ("client_id", &self.client_id),
            ("device_code", &code.device_code),
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ])
        .await
    }

    /// Polls at the interval Twitch gives (slower when told to) until approved, denied or
    /// expired. `tick` is called with each state for whoever shows progress.
    pub async fn device_wait(
        &self,
        code: &DeviceCode,
        mut tick: impl FnMut(&Error),
    ) -> Result<Token, Error> {
        let mut interval = Duration::from_secs(code.interval.max(1));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(code.expires_in.max(1));
        loop {
            tokio::time::sleep(interval).await;
            match self.device_poll(code).await {
                Ok(token) => return Ok(token),
                Err(e @ Error::Pending) => tick(&e),
                Err(e @ Error::SlowDown) => {
                    interval += Duration::from_secs(5);
                    tick(&e);
                }
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Expired);
            }
        }
    }

    /// A fresh access token from `token`'s refresh token. Public clients send no secret.
    pub async fn refresh(&self, token: &Token) -> Result<Token, Error> {
        let refresh = token
            .refresh_token
            .as_deref()
            .ok_or_else(|| Error::Refused("this token cannot be refreshed; log in again".into()))?;
        let mut form = vec![
            ("client_id", self.client_id.as_str()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
        ];
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret));
        }
        let mut fresh = self.token(&form).await?;
        fresh.login = token.login.clone();
        fresh.user_id = token.user_id.clone();
        if fresh.scopes.is_empty() {
            fresh.scopes = token.scopes.clone();
        }
        Ok(fresh)
    }

    /// Twitch asks apps to validate at start and hourly. `Refused` means the token is dead.
    pub async fn validate(&self, access_token: &str) -> Result<Validation, Error> {
        let res = self
            .http
            .get(format!("{}/validate", self.base))
            .header("Authorization", format!("OAuth {access_token}"))
            .send()
            .await?;
        answer(res).await
    }

    pub async fn revoke(&self, access_token: &str) -> Result<(), Error> {
        let res = self
            .http
            .post(format!("{}/revoke", self.base))
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("token", access_token),
            ])
            .send()
            .await?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(Error::Refused(message(res).await))
        }
    }
}

fn to_token(a: TokenAnswer) -> Token {
    let scopes = match a.scope {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
        _ => Vec::new(),
    };
    Token {
        access_token: a.access_token,
        refresh_token: a.refresh_token,
        expires_at_ms: a
            .expires_in
            .filter(|&s| s > 0)
            .map(|s| crate::event::now_ms() + s * 1000),
        scopes,
        login: None,
        user_id: None,
    }
}

async fn message(res: reqwest::Response) -> String {
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    body["message"]
        .as_str()
        .or_else(|| body["error"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| status.to_string())
}

/// Parses a success body, or maps Twitch's `{"status","message"}` to an error.
async fn answer<T: serde::de::DeserializeOwned>(res: reqwest::Response) -> Result<T, Error> {
    if res.status().is_success() {
        return Ok(res.json().await?);
    }
    let msg = message(res).await;
    Err(match msg.as_str() {
        "authorization_pending" => Error::Pending,
        "slow_down" => Error::SlowDown,
        "invalid device code" | "expired_token" => Error::Expired,
        "access_denied" => Error::Denied,
        _ => Error::Refused(msg),
    })
}

/// The token file in the data dir.
pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn new(data_dir: &Path) -> Store {
        Store {
            path: data_dir.join("twitch-token.json"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn load(&self) -> Result<Option<Token>, Error> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| self.error(e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Writes the token readable by this user only (mode 0600 on Unix; on Windows the file
    /// inherits the user's profile folder permissions), replacing the old one atomically.
    pub fn save(&self, token: &Token) -> Result<(), Error> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| self.error(e))?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(token).map_err(|e| self.error(e))?;
        crate::files::write_private(&tmp, text.as_bytes()).map_err(|e| self.error(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.error(e))
    }

    pub fn delete(&self) -> Result<(), Error> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.error(e)),
            _ => Ok(()),
        }
    }

    fn error(&self, e: impl std::fmt::Display) -> Error {
        Error::Store {
            path: self.path.clone(),
            error: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_answers_with_scope_as_list_or_string() {
        let a: TokenAnswer = serde_json::from_str(r#"{"access_token":"a","expires_in":14124,"refresh_token":"r","scope":["x:y"],"token_type":"bearer"}"#).unwrap();
        let t = to_token(a);
        assert_eq!(t.scopes, ["x:y"]);
        assert!(t.expires_at_ms.is_some());
        let a: TokenAnswer = serde_json::from_str(r#"{"access_token":"a","refresh_token":"r","expires_in":5,"scope":"a b","token_type":"bearer"}"#).unwrap();
        assert_eq!(to_token(a).scopes, ["a", "b"]);
        assert!(
            to_token(serde_json::from_str(r#"{"access_token":"a","expires_in":5}"#).unwrap())
                .due(crate::event::now_ms())
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_token_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let t = Token {
            access_token: "a".into(),
            refresh_token: None,
            expires_at_ms: None,
            scopes: vec![],
            login: None,
            user_id: None,
        };
        store.save(&t).unwrap();
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(store.load().unwrap(), Some(t));
    }
}
