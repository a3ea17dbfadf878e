//! Viewer pages: `/c` (log in with Twitch, pick a channel) and `/c/<channel>` (the embedded
//! player and chat beside the channel's ten most recent events, live). Sessions are a signed,
//! HttpOnly, SameSite cookie whose key is kept in the data dir, so they survive a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use serde::Deserialize;
use sha2::Sha256;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::{App, redirect, reject, with_app};
use crate::config::{OverlayConfig, OverlayKind};
use crate::event::{normalize_channel, valid_channel};
use crate::theme::helpers::escape;

const COOKIE: &str = "overlayd_session";
/// A viewer stays logged in for a month (then logs in again with one click).
const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Time allowed between leaving for Twitch and coming back.
const STATE_TTL: Duration = Duration::from_secs(600);

/// Signs and checks session cookies.
pub struct Sessions {
    key: Vec<u8>,
    /// Logins in progress: state → (where to go after, when started).
    states: Mutex<HashMap<String, (String, Instant)>>,
}

/// Who a session belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct Viewer {
    pub login: String,
    pub user_id: String,
}

impl Sessions {
    /// The signing key lives in `data_dir/session-key` (created once, readable by you only).
    pub fn new(data_dir: &std::path::Path) -> Sessions {
        let path = data_dir.join("session-key");
        let key = match std::fs::read(&path) {
            Ok(k) if k.len() >= 32 => k,
            _ => {
                let k: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
                if let Err(e) = std::fs::create_dir_all(data_dir)
                    .and_then(|_| crate::twitch::oauth::write_private(&path, &k))
                {
                    tracing::error!("cannot keep the session key in {}: {e}", path.display());
                }
                k
            }
        };
        Sessions {
            key,
            states: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, payload: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(payload.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The cookie value for `viewer`: `login.user_id.expiry.signature`.
    pub fn issue(&self, viewer: &Viewer) -> String {
        let expires = crate::event::now_ms() + SESSION_TTL.as_millis() as u64;
        let payload = format!("{}.{}.{expires}", viewer.login, viewer.user_id);
        format!("{payload}.{}", self.mac(&payload))
    }

    pub fn check(&self, cookie: &str) -> Option<Viewer> {
        let (payload, sig) = cookie.rsplit_once('.')?;
        let expected = self.mac(payload);
        if !super::constant_eq(sig.as_bytes(), expected.as_bytes()) {
            return None;
        }
        let mut parts = payload.split('.');
        let (login, user_id, expires) = (
            parts.next()?,
            parts.next()?,
            parts.next()?.parse::<u64>().ok()?,
        );
        (expires > crate::event::now_ms()).then(|| Viewer {
            login: login.into(),
            user_id: user_id.into(),
        })
    }
}

pub fn routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    home(app.clone())
        .or(channel_page(app.clone()))
        .unify()
        .or(channel_events(app.clone()))
        .unify()
        .or(login(app.clone()))
        .unify()
        .or(callback(app.clone()))
        .unify()
        .or(logout(app))
        .unify()
        .boxed()
}

fn viewer() -> impl Filter<Extract = (Option<String>,), Error = std::convert::Infallible> + Clone {
    warp::cookie::optional::<String>(COOKIE)
}

fn page(title: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} · overlayd</title><link rel="stylesheet" href="/assets/viewer.css"></head><body>{body}</body></html>"#,
        escape(title)
    );
    let mut res = Response::new(html.into());
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[derive(Deserialize)]
struct HomeQuery {
    channel: Option<String>,
}

/// GET /c — log in, then pick a channel.
fn home(app: Arc<App>) -> BoxedFilter<(Response,)> {
    warp::path!("c")
        .and(warp::get())
        .and(warp::query::<HomeQuery>())
        .and(viewer())
        .and(with_app(app))
        .and_then(|q: HomeQuery, cookie: Option<String>, app: Arc<App>| async move {
            let who = cookie.and_then(|c| app.sessions.check(&c));
            let Some(who) = who else {
                return Ok::<_, warp::Rejection>(page(
                    "Watch a channel",
                    r#"<main class="home"><h1>Watch a channel</h1><p>Log in with Twitch to open a channel with its live events.</p>
<a class="button" href="/c/login?next=/c">Log in with Twitch</a></main>"#,
                ));
            };
            let mut message = String::new();
            if let Some(raw) = q.channel {
                let name = normalize_channel(&raw);
                if name.is_empty() {
                    message = "Type a channel name.".into();
                } else if !valid_channel(&name) {
                    message = format!("\"{}\" cannot be a Twitch channel: use 1 to 25 letters, digits or _.", escape(raw.trim()));
                } else {
                    match app.channel_exists(&name).await {
                        Some(false) => message = format!("There is no Twitch channel \"{}\".", escape(&name)),
                        _ => return Ok(redirect(&format!("/c/{name}"))),
                    }
                }
            }
            Ok(page(
                "Watch a channel",
                &format!(
                    r#"<main class="home"><p class="who">Logged in as <b>{}</b> · <a href="/c/logout">log out</a></p><h1>Watch a channel</h1>
<form action="/c" method="get"><input name="channel" placeholder="channel name" autofocus><button>Open</button></form>
<p class="message" role="alert">{message}</p></main>"#,
                    escape(&who.login)
                ),
            ))
        })
        .boxed()
}

/// GET /c/{channel} — the player, the chat and the channel's recent events, live.
fn channel_page(app: Arc<App>) -> BoxedFilter<(Response,)> {
    warp::path!("c" / String)
        .and(warp::get())
        .and(warp::header::optional::<String>("host"))
        .and(viewer())
        .and(with_app(app))
        .and_then(|raw: String, host: Option<String>, cookie: Option<String>, app: Arc<App>| async move {
            let name = normalize_channel(&raw);
            if ["login", "callback", "logout"].contains(&name.as_str()) || !valid_channel(&name) {
                return Err(warp::reject::not_found());
            }
            if cookie.and_then(|c| app.sessions.check(&c)).is_none() {
                return Ok(redirect(&format!("/c/login?next=/c/{name}")));
            }
            let overlay = app.viewer_overlay(&name);
            // Twitch's embeds refuse to load unless `parent` names the page's host.
            let parent = host.as_deref().unwrap_or("localhost").split(':').next().unwrap_or("localhost").to_string();
            let body = format!(
                r#"<header class="bar"><a href="/c">overlayd</a><h1>#{name}</h1></header>
<main class="channel" data-channel="{name}">
  <section class="player"><iframe id="player" title="Twitch player" allowfullscreen src="https://player.twitch.tv/?channel={name}&amp;parent={parent}&amp;muted=true"></iframe></section>
  <aside class="side">
    <section class="events"><h2>Recent events</h2><div id="events" class="root-events"></div></section>
    <section class="chat"><iframe id="chat" title="Twitch chat" src="https://www.twitch.tv/embed/{name}/chat?parent={parent}&amp;darkpopout"></iframe></section>
  </aside>
</main>
<link rel="stylesheet" href="/themes/{theme}/static/style.css">
<script>window.OVERLAYD_CHANNEL = {{"events": "/c/{name}/events", "limit": 10}};</script>
<script src="/assets/viewer.js"></script>"#,
                name = escape(&name),
                parent = escape(&parent),
                theme = escape(&overlay.config.theme),
            );
            Ok(page(&format!("#{name}"), &body))
        })
        .boxed()
}

/// GET /c/{channel}/events — the channel's events for viewers: the last ten first, then live.
fn channel_events(app: Arc<App>) -> BoxedFilter<(Response,)> {
    warp::path!("c" / String / "events")
        .and(warp::get())
        .and(viewer())
        .and(warp::header::optional::<u64>("last-event-id"))
        .and(with_app(app))
        .and_then(
            |raw: String, cookie: Option<String>, last: Option<u64>, app: Arc<App>| async move {
                let name = normalize_channel(&raw);
                if !valid_channel(&name) {
                    return Err(warp::reject::not_found());
                }
                if cookie.and_then(|c| app.sessions.check(&c)).is_none() {
                    return Err(reject(StatusCode::UNAUTHORIZED, "log in at /c first"));
                }
                let overlay = app.viewer_overlay(&name);
                Ok(super::pages::event_stream(
                    app,
                    vec![overlay],
                    Some(last.unwrap_or(0)),
                ))
            },
        )
        .boxed()
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

/// GET /c/login — to Twitch, and back to `next`.
fn login(app: Arc<App>) -> BoxedFilter<(Response,)> {
    warp::path!("c" / "login")
        .and(warp::get())
        .and(warp::query::<LoginQuery>())
        .and(warp::header::optional::<String>("host"))
        .and(with_app(app))
        .and_then(|q: LoginQuery, host: Option<String>, app: Arc<App>| async move {
            let Some(oauth) = app.auth.oauth.clone().filter(|o| o.has_secret()) else {
                return Err(reject(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "viewer login needs [twitch] client_id and client_secret (a Confidential application) in overlay.toml",
                ));
            };
            // Only local paths: never an open redirect.
            let next = q.next.filter(|n| n.starts_with("/c") && !n.starts_with("//")).unwrap_or_else(|| "/c".into());
            let state = super::random_state();
            {
                let mut states = app.sessions.states.lock();
                states.retain(|_, (_, at)| at.elapsed() < STATE_TTL);
                states.insert(state.clone(), (next, Instant::now()));
            }
            let uri = callback_uri(&app, host.as_deref());
            Ok(redirect(&oauth.authorize_url_with(&uri, &state, &[])))
        })
        .boxed()
}

fn callback_uri(app: &App, host: Option<&str>) -> String {
    match &app.config.public_url {
        Some(url) => format!("{}/c/callback", url.trim_end_matches('/')),
        None => format!("http://{}/c/callback", host.unwrap_or("localhost:7878")),
    }
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// GET /c/callback — checks the state, learns who logged in, sets the session cookie.
fn callback(app: Arc<App>) -> BoxedFilter<(Response,)> {
    warp::path!("c" / "callback")
        .and(warp::get())
        .and(warp::query::<CallbackQuery>())
        .and(warp::header::optional::<String>("host"))
        .and(with_app(app))
        .and_then(|q: CallbackQuery, host: Option<String>, app: Arc<App>| async move {
            if let Some(e) = q.error {
                return Ok::<_, warp::Rejection>(page("Login", &format!("<main class=home><h1>Login cancelled</h1><p>Twitch said: {}</p><a href=/c>Back</a></main>", escape(&e))));
            }
            let next = q
                .state
                .as_deref()
                .and_then(|s| app.sessions.states.lock().remove(s))
                .filter(|(_, at)| at.elapsed() < STATE_TTL)
                .map(|(next, _)| next)
                .ok_or_else(|| reject(StatusCode::FORBIDDEN, "unknown or expired login state: start again at /c"))?;
            let oauth = app.auth.oauth.clone().ok_or_else(|| reject(StatusCode::SERVICE_UNAVAILABLE, "no Twitch application configured"))?;
            let code = q.code.ok_or_else(|| reject(StatusCode::BAD_REQUEST, "no code from Twitch"))?;
            let token = oauth
                .exchange_code(&code, &callback_uri(&app, host.as_deref()))
                .await
                .map_err(|e| reject(StatusCode::BAD_GATEWAY, e.to_string()))?;
            let who = oauth
                .validate(&token.access_token)
                .await
                .map_err(|e| reject(StatusCode::BAD_GATEWAY, e.to_string()))?;
            // The viewer's token only tells us who they are: give it back at once.
            let _ = oauth.revoke(&token.access_token).await;
            let viewer = Viewer { login: who.login.unwrap_or_default(), user_id: who.user_id.unwrap_or_default() };
            let secure = if app.config.public_url.is_some() { "; Secure" } else { "" };
            let mut res = redirect(&next);
            let cookie = format!(
                "{COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
                app.sessions.issue(&viewer),
                SESSION_TTL.as_secs()
            );
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            Ok(res)
        })
        .boxed()
}

/// GET /c/logout
fn logout(app: Arc<App>) -> BoxedFilter<(Response,)> {
    warp::path!("c" / "logout")
        .and(warp::get())
        .and(with_app(app))
        .map(|_app: Arc<App>| {
            let mut res = redirect("/c");
            res.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_static(
                    "overlayd_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0",
                ),
            );
            res
        })
        .boxed()
}

/// The built-in overlay a viewer page shows for `channel`: the recent-events list.
pub fn viewer_overlay_config(channel: &str) -> OverlayConfig {
    let mut c = OverlayConfig::builtin(OverlayKind::Events, channel);
    c.name = format!("_c_{channel}");
    c.title = format!("#{channel}");
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_signed_and_expire() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = Sessions::new(dir.path());
        let v = Viewer {
            login: "ann".into(),
            user_id: "1".into(),
        };
        let cookie = s.issue(&v);
        assert_eq!(s.check(&cookie), Some(v.clone()));
        // The key survives a restart.
        assert_eq!(Sessions::new(dir.path()).check(&cookie), Some(v));
        let forged = cookie.replacen("ann", "bob", 1);
        assert_eq!(s.check(&forged), None);
        assert_eq!(s.check("ann.1.1.deadbeef"), None);
    }
}
