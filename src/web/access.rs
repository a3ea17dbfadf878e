//! Who may change state: the one access rule of every path that changes something.

use std::net::SocketAddr;
use std::sync::Arc;

use warp::Filter;
use warp::http::StatusCode;

use super::reply::reject;
use super::state::State;

/// The peer address of a connection, put on every request by the accept loop.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Lets a state-changing request through when it comes from this machine, or carries the
/// admin token. A browser page from another site is refused even on loopback (its `Origin`
/// is not ours), so a web page cannot fake alerts through the streamer's browser.
pub fn guard(state: Arc<State>) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::ext::optional::<Peer>()
        .and(warp::header::optional::<String>("x-forwarded-for"))
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("host"))
        .and_then(
            move |peer: Option<Peer>,
                  forwarded: Option<String>,
                  auth: Option<String>,
                  origin: Option<String>,
                  host: Option<String>| {
                let state = state.clone();
                async move {
                    let token_ok = match (&state.config.admin_token, &auth) {
                        (Some(token), Some(auth)) => auth
                            .strip_prefix("Bearer ")
                            .is_some_and(|given| constant_eq(given.as_bytes(), token.as_bytes())),
                        _ => false,
                    };
                    if token_ok {
                        return Ok(());
                    }
                    if let (Some(origin), Some(host)) = (&origin, &host) {
                        let origin_host = origin.split("://").nth(1).unwrap_or(origin);
                        if origin_host != host {
                            return Err(reject(
                                StatusCode::FORBIDDEN,
                                format!("requests from {origin} may not change state; use the dashboard at http://{host}/"),
                            ));
                        }
                    }
                    let client = match (&forwarded, state.config.trust_forwarded) {
                        (Some(list), true) => list
                            .split(',')
                            .next()
                            .and_then(|ip| ip.trim().parse::<std::net::IpAddr>().ok()),
                        _ => peer.map(|p| p.0.ip()),
                    };
                    let local = client.is_some_and(|ip| ip.is_loopback());
                    if local {
                        return Ok(());
                    }
                    Err(match (&state.config.admin_token, auth) {
                        (None, _) => reject(
                            StatusCode::FORBIDDEN,
                            "changes are allowed from this machine only; set [server] admin_token in overlay.toml to allow others",
                        ),
                        (Some(_), None) => reject(
                            StatusCode::UNAUTHORIZED,
                            "send the admin token as 'Authorization: Bearer <admin_token>'",
                        ),
                        (Some(_), Some(_)) => {
                            reject(StatusCode::FORBIDDEN, "the admin token does not match")
                        }
                    })
                }
            },
        )
        .untuple_one()
}

/// An unguessable value for an OAuth `state` (128 bits, hex).
pub fn random_state() -> String {
    (0..32)
        .map(|_| format!("{:x}", rand::random::<u8>() & 15))
        .collect()
}

/// Compares in time independent of where the first difference is.
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
