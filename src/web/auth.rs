//! Logging in from the dashboard: the device-code flow (no secret: the dashboard shows the code
//! and polls), and the browser flow (`/auth/login` → Twitch → `/auth/callback`, with a `state`
//! check) when a client secret is configured.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

use super::access::{guard, random_state};
use super::reply::{json_reply, redirect, reject};
use super::state::{State, with_state};

pub fn routes(state: Arc<State>) -> BoxedFilter<(Response,)> {
    status(state.clone())
        .or(device(state.clone()))
        .unify()
        .or(logout(state.clone()))
        .unify()
        .or(login(state.clone()))
        .unify()
        .or(callback(state))
        .unify()
        .boxed()
}

fn oauth(state: &State) -> Result<crate::twitch::oauth::OAuth, warp::Rejection> {
    state.auth.oauth.clone().ok_or_else(|| {
        reject(
            StatusCode::CONFLICT,
            "set [twitch] client_id in overlay.toml first (see the README: registering a Twitch application)",
        )
    })
}

/// GET /auth/status
fn status(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("auth" / "status")
        .and(warp::get())
        .and(with_state(state))
        .map(|state: Arc<State>| {
            let token = state.auth.token();
            json_reply(
                StatusCode::OK,
                &json!({
                    "configured": state.auth.oauth.is_some(),
                    "browser_login": state.auth.oauth.as_ref().is_some_and(|o| o.has_secret()),
                    "logged_in": token.is_some(),
                    "login": token.and_then(|t| t.login),
                    "device": *state.auth_pending.device.lock(),
                    "state": state.status.get("twitch-auth"),
                }),
            )
        })
        .boxed()
}

/// POST /auth/device — starts a device-code login; the dashboard shows the code.
fn device(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("auth" / "device")
        .and(warp::post())
        .and(guard(state.access.clone()))
        .and(with_state(state))
        .and_then(|state: Arc<State>| async move {
            let oauth = oauth(&state)?;
            let code = oauth
                .device_start()
                .await
                .map_err(|e| reject(StatusCode::BAD_GATEWAY, e.to_string()))?;
            let shown = json!({"user_code": code.user_code, "verification_uri": code.verification_uri, "expires_in": code.expires_in});
            *state.auth_pending.device.lock() = Some(shown.clone());
            let waiting = state.clone();
            tokio::spawn(async move {
                let result = oauth.device_wait(&code, |_| {}).await;
                *waiting.auth_pending.device.lock() = None;
                match result {
                    Ok(token) => finish(&waiting, &oauth, token).await,
                    Err(e) => waiting.status.set("twitch-auth", "logged-out", format!("login did not finish: {e}")),
                }
            });
            Ok::<_, warp::Rejection>(json_reply(StatusCode::ACCEPTED, &shown))
        })
        .boxed()
}

/// Fills in who the token belongs to and makes it the server's token.
async fn finish(
    state: &State,
    oauth: &crate::twitch::oauth::OAuth,
    mut token: crate::twitch::oauth::Token,
) {
    match oauth.validate(&token.access_token).await {
        Ok(v) => {
            token.login = v.login;
            token.user_id = v.user_id;
            state.auth.set(Some(token));
        }
        Err(e) => state.status.set(
            "twitch-auth",
            "error",
            format!("new token did not validate: {e}"),
        ),
    }
}

/// POST /auth/logout
fn logout(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("auth" / "logout")
        .and(warp::post())
        .and(guard(state.access.clone()))
        .and(with_state(state))
        .and_then(|state: Arc<State>| async move {
            state.auth.logout().await;
            Ok::<_, warp::Rejection>(json_reply(StatusCode::OK, &json!({"logged_in": false})))
        })
        .boxed()
}

/// The callback address Twitch sends the browser back to: this server as the browser sees it
/// (http://localhost:PORT is allowed by Twitch), or `public_url` for a hosted one.
fn redirect_uri(state: &State, host: &str) -> String {
    match &state.config.public_url {
        Some(url) => format!("{}/auth/callback", url.trim_end_matches('/')),
        None => format!("http://{host}/auth/callback"),
    }
}

/// GET /auth/login — sends the browser to Twitch.
fn login(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("auth" / "login")
        .and(warp::get())
        .and(warp::header::<String>("host"))
        .and(with_state(state))
        .and_then(|host: String, state: Arc<State>| async move {
            let oauth = oauth(&state)?;
            let login = random_state();
            state.auth_pending.states.insert(login.clone(), ());
            let url = oauth.authorize_url(&redirect_uri(&state, &host), &login);
            Ok::<_, warp::Rejection>(redirect(&url))
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
fn callback(state: Arc<State>) -> BoxedFilter<(Response,)> {
    warp::path!("auth" / "callback")
        .and(warp::get())
        .and(warp::query::<Callback>())
        .and(warp::header::<String>("host"))
        .and(with_state(state))
        .and_then(|q: Callback, host: String, state: Arc<State>| async move {
            if let Some(err) = q.error {
                return Err(reject(
                    StatusCode::FORBIDDEN,
                    format!("Twitch: {err}: {}", q.error_description.unwrap_or_default()),
                ));
            }
            let known = q
                .state
                .as_deref()
                .and_then(|s| state.auth_pending.states.take(s))
                .is_some();
            if !known {
                return Err(reject(
                    StatusCode::FORBIDDEN,
                    "unknown or expired login state: start again at /auth/login",
                ));
            }
            let oauth = oauth(&state)?;
            let code = q
                .code
                .ok_or_else(|| reject(StatusCode::BAD_REQUEST, "no code from Twitch"))?;
            let token = oauth
                .exchange_code(&code, &redirect_uri(&state, &host))
                .await
                .map_err(|e| reject(StatusCode::BAD_GATEWAY, e.to_string()))?;
            finish(&state, &oauth, token).await;
            Ok(redirect("/"))
        })
        .boxed()
}
