//! Logging in from the dashboard: the device-code flow (no secret: the dashboard shows the code
//! and polls), and the browser flow (`/auth/login` → Twitch → `/auth/callback`, with a `state`
//! check) when a client secret is configured.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::{App, guard, json_reply, reject, with_app};

/// How long a browser login may take between `/auth/login` and the callback.
const STATE_TTL: Duration = Duration::from_secs(600);

/// Logins in progress.
#[derive(Default)]
pub struct Pending {
    device: Mutex<Option<serde_json::Value>>,
    states: Mutex<HashMap<String, Instant>>,
}

pub fn routes(app: Arc<App>) -> BoxedFilter<(Response,)> {
    status(app.clone())
        .or(device(app.clone()))
        .unify()
        .or(logout(app.clone()))
        .unify()
        .or(login(app.clone()))
        .unify()
        .or(callback(app))
        .unify()
        .boxed()
}

fn oauth(app: &App) -> Result<crate::twitch::oauth::OAuth, warp::Rejection> {
    app.auth.oauth.clone().ok_or_else(|| {
        reject(
            StatusCode::CONFLICT,
            "set [twitch] client_id in overlay.toml first (see the README: registering a Twitch application)",
        )
    })
}

/// GET /auth/status
fn status(app: Arc<App>) -> BoxedFilter<(Response,)> {
    warp::path!("auth" / "status")
        .and(warp::get())
        .and(with_app(app))
        .map(|app: Arc<App>| {
            let token = app.auth.token();
            json_reply(
                StatusCode::OK,
                &json!({
                    "configured": app.auth.oauth.is_some(),
                    "browser_login": app.auth.oauth.as_ref().is_some_and(|o| o.has_secret()),
                    "logged_in": token.is_some(),
                    "login": token.and_then(|t| t.login),
                    "device": *app.auth_pending.device.lock(),
                    "state": app.sources.snapshot().get("twitch-auth"),
                }),
            )
        })
        .boxed()
}

/// POST /auth/device — starts a device-code login; the dashboard shows the code.
fn device(app: Arc<App>) -> BoxedFilter<(Response,)> {
    warp::path!("auth" / "device")
        .and(warp::post())
        .and(guard(app.clone()))
        .and(with_app(app))
        .and_then(|app: Arc<App>| async move {
            let oauth = oauth(&app)?;
            let code = oauth
                .device_start()
                .await
                .map_err(|e| reject(StatusCode::BAD_GATEWAY, e.to_string()))?;
            let shown = json!({"user_code": code.user_code, "verification_uri": code.verification_uri, "expires_in": code.expires_in});
            *app.auth_pending.device.lock() = Some(shown.clone());
            let waiting = app.clone();
            tokio::spawn(async move {
                let result = oauth.device_wait(&code, |_| {}).await;
                *waiting.auth_pending.device.lock() = None;
                match result {
                    Ok(token) => finish(&waiting, &oauth, token).await,
                    Err(e) => waiting.sources.set("twitch-auth", "logged-out", format!("login did not finish: {e}")),
                }
            });
            Ok::<_, warp::Rejection>(json_reply(StatusCode::ACCEPTED, &shown))
        })
        .boxed()
}

/// Fills in who the token belongs to and makes it the server's token.
async fn finish(
    app: &App,
    oauth: &crate::twitch::oauth::OAuth,
    mut token: crate::twitch::oauth::Token,
) {
    match oauth.validate(&token.access_token).await {
        Ok(v) => {
            token.login = v.login;
            token.user_id = v.user_id;
            app.auth.set(Some(token));
        }
        Err(e) => app.sources.set(
            "twitch-auth",
            "error",
            format!("new token did not validate: {e}"),
        ),
    }
}

/// POST /auth/logout
fn logout(app: Arc<App>) -> BoxedFilter<(Response,)> {
    warp::path!("auth" / "logout")
        .and(warp::post())
        .and(guard(app.clone()))
        .and(with_app(app))
        .and_then(|app: Arc<App>| async move {
            app.auth.logout().await;
            Ok::<_, warp::Rejection>(json_reply(StatusCode::OK, &json!({"logged_in": false})))
        })
        .boxed()
}

/// The callback address Twitch sends the browser back to: this server as the browser sees it
/// (http://localhost:PORT is allowed by Twitch), or `public_url` for a hosted one.
fn redirect_uri(app: &App, host: &str) -> String {
    match &app.config.public_url {
        Some(url) => format!("{}/auth/callback", url.trim_end_matches('/')),
        None => format!("http://{host}/auth/callback"),
    }
}

/// GET /auth/login — sends the browser to Twitch.
fn login(app: Arc<App>) -> BoxedFilter<(Response,)> {
    warp::path!("auth" / "login")
        .and(warp::get())
        .and(warp::header::<String>("host"))
        .and(with_app(app))
        .and_then(|host: String, app: Arc<App>| async move {
            let oauth = oauth(&app)?;
            let state = super::random_state();
            {
                let mut states = app.auth_pending.states.lock();
                states.retain(|_, at| at.elapsed() < STATE_TTL);
                states.insert(state.clone(), Instant::now());
            }
            let url = oauth.authorize_url(&redirect_uri(&app, &host), &state);
            Ok::<_, warp::Rejection>(super::redirect(&url))
        })
        .boxed()
}

#[derive(Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// GET /auth/callback — Twitch sends the browser back here with a code and our `state`.
fn callback(app: Arc<App>) -> BoxedFilter<(Response,)> {
    warp::path!("auth" / "callback")
        .and(warp::get())
        .and(warp::query::<Callback>())
        .and(warp::header::<String>("host"))
        .and(with_app(app))
        .and_then(|q: Callback, host: String, app: Arc<App>| async move {
            if let Some(err) = q.error {
                return Err(reject(
                    StatusCode::FORBIDDEN,
                    format!("Twitch: {err}: {}", q.error_description.unwrap_or_default()),
                ));
            }
            let known = q
                .state
                .as_deref()
                .and_then(|s| app.auth_pending.states.lock().remove(s))
                .is_some_and(|at| at.elapsed() < STATE_TTL);
            if !known {
                return Err(reject(
                    StatusCode::FORBIDDEN,
                    "unknown or expired login state: start again at /auth/login",
                ));
            }
            let oauth = oauth(&app)?;
            let code = q
                .code
                .ok_or_else(|| reject(StatusCode::BAD_REQUEST, "no code from Twitch"))?;
            let token = oauth
                .exchange_code(&code, &redirect_uri(&app, &host))
                .await
                .map_err(|e| reject(StatusCode::BAD_GATEWAY, e.to_string()))?;
            finish(&app, &oauth, token).await;
            Ok(super::redirect("/"))
        })
        .boxed()
}
