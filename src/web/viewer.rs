//! Viewer pages: `/c` (log in with Twitch, pick a channel) and `/c/<channel>` (the embedded
//! player and chat beside the channel's ten most recent events, live). Sessions are a signed,
//! HttpOnly, SameSite cookie whose key is kept in the data dir, so they survive a restart.

use std::sync::Arc;

use serde::Deserialize;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

use super::access::random_state;
use super::reply::{redirect, reject};
use super::sessions::{COOKIE, SESSION_TTL, Viewer};
use super::state::{State, with_state};
use crate::event::{normalize_channel, valid_channel};
use crate::theme::helpers::escape;

pub fn routes(state: Arc<State>) -> BoxedFilter<(Response,)> {
    home(state.clone())
        .or(channel_page(state.clone()))
        .unify()
        .or(channel_events(state.clone()))
        .unify()
        .or(login(state.clone()))
        .unify()
        .or(callback(state.clone()))
        .unify()
        .or(logout(state))
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
fn home(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("c")
        .and(warp::get())
        .and(warp::query::<HomeQuery>())
        .and(viewer())
        .and(with_state(state))
        .and_then(|q: HomeQuery, cookie: Option<String>, state: Arc<State>| async move {
            let who = cookie.and_then(|c| state.sessions.check(&c));
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
                    match state.auth.channel_exists(&name).await {
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
fn channel_page(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("c" / String)
        .and(warp::get())
        .and(warp::header::optional::<String>("host"))
        .and(viewer())
        .and(with_state(state))
        .and_then(|raw: String, host: Option<String>, cookie: Option<String>, state: Arc<State>| async move {
            let name = normalize_channel(&raw);
            if ["login", "callback", "logout"].contains(&name.as_str()) || !valid_channel(&name) {
                return Err(warp::reject::not_found());
            }
            if cookie.and_then(|c| state.sessions.check(&c)).is_none() {
                return Ok(redirect(&format!("/c/login?next=/c/{name}")));
            }
            let overlay = state.reloader.viewer_overlay(&name, &state.channels.wanted());
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
fn channel_events(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("c" / String / "events")
        .and(warp::get())
        .and(viewer())
        .and(warp::header::optional::<u64>("last-event-id"))
        .and(with_state(state))
        .and_then(
            |raw: String, cookie: Option<String>, last: Option<u64>, state: Arc<State>| async move {
                let name = normalize_channel(&raw);
                if !valid_channel(&name) {
                    return Err(warp::reject::not_found());
                }
                if cookie.and_then(|c| state.sessions.check(&c)).is_none() {
                    return Err(reject(StatusCode::UNAUTHORIZED, "log in at /c first"));
                }
                let overlay = state
                    .reloader
                    .viewer_overlay(&name, &state.channels.wanted());
                Ok(super::pages::event_stream(
                    state,
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
fn login(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("c" / "login")
        .and(warp::get())
        .and(warp::query::<LoginQuery>())
        .and(warp::header::optional::<String>("host"))
        .and(with_state(state))
        .and_then(|q: LoginQuery, host: Option<String>, state: Arc<State>| async move {
            let Some(oauth) = state.auth.oauth.clone().filter(|o| o.has_secret()) else {
                return Err(reject(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "viewer login needs [twitch] client_id and client_secret (a Confidential application) in overlay.toml",
                ));
            };
            // Only local paths: never an open redirect.
            let next = q.next.filter(|n| n.starts_with("/c") && !n.starts_with("//")).unwrap_or_else(|| "/c".into());
            let login = random_state();
            state.sessions.states.insert(login.clone(), next);
            let uri = callback_uri(&state, host.as_deref());
            Ok(redirect(&oauth.authorize_url_with(&uri, &login, &[])))
        })
        .boxed()
}

fn callback_uri(state: &State, host: Option<&str>) -> String {
    match &state.config.public_url {
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
fn callback(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("c" / "callback")
        .and(warp::get())
        .and(warp::query::<CallbackQuery>())
        .and(warp::header::optional::<String>("host"))
        .and(with_state(state))
        .and_then(|q: CallbackQuery, host: Option<String>, state: Arc<State>| async move {
            if let Some(e) = q.error {
                return Ok::<_, warp::Rejection>(page("Login", &format!("<main class=home><h1>Login cancelled</h1><p>Twitch said: {}</p><a href=/c>Back</a></main>", escape(&e))));
            }
            let next = q
                .state
                .as_deref()
                .and_then(|s| state.sessions.states.take(s))
                .ok_or_else(|| reject(StatusCode::FORBIDDEN, "unknown or expired login state: start again at /c"))?;
            let oauth = state.auth.oauth.clone().ok_or_else(|| reject(StatusCode::SERVICE_UNAVAILABLE, "no Twitch application configured"))?;
            let code = q.code.ok_or_else(|| reject(StatusCode::BAD_REQUEST, "no code from Twitch"))?;
            let token = oauth
                .exchange_code(&code, &callback_uri(&state, host.as_deref()))
                .await
                .map_err(|e| reject(StatusCode::BAD_GATEWAY, e.to_string()))?;
            let who = oauth
                .validate(&token.access_token)
                .await
                .map_err(|e| reject(StatusCode::BAD_GATEWAY, e.to_string()))?;
            // The viewer's token only tells us who they are: give it back at once.
            let _ = oauth.revoke(&token.access_token).await;
            let viewer = Viewer { login: who.login.unwrap_or_default(), user_id: who.user_id.unwrap_or_default() };
            let secure = if state.config.public_url.is_some() { "; Secure" } else { "" };
            let mut res = redirect(&next);
            let cookie = format!(
                "{COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
                state.sessions.issue(&viewer),
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
fn logout(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("c" / "logout")
        .and(warp::get())
        .and(with_state(state))
        .map(|_app: Arc<State>| {
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
