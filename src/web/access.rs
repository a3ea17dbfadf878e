//! Who may change state: the one access rule of every path that changes something (HTTP
//! routes, WebSocket upgrades, the dashboard's forms), written once here as [`Access::allow`].
//!
//! A request may change state when it carries the admin token, or when it comes from this
//! machine, addressed to a name the server is reached by (`Host`), and not sent by a page of
//! another site (`Origin`). The `Host` check stops DNS rebinding: a page whose own name
//! resolves to 127.0.0.1 sends its own name as `Host`, which is none of ours.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use warp::Filter;
use warp::http::StatusCode;

use super::reply::reject;
use crate::config::Config;

/// The peer address of a connection, put on every request by the accept loop.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// The access rule, with what it needs from the configuration.
#[derive(Debug, Clone)]
pub struct Access {
    admin_token: Option<String>,
    /// Behind a reverse proxy of the user's: the client is the address the proxy appended to
    /// `X-Forwarded-For` (its last entry), never one the client wrote itself.
    trust_forwarded: bool,
    /// Names the server is reached by besides loopback ones (lowercase `host` or `host:port`).
    hosts: Vec<String>,
}

/// Who is asking, as the connection and its headers say.
#[derive(Debug, Default, Clone, Copy)]
pub struct Caller<'a> {
    pub peer: Option<IpAddr>,
    pub forwarded: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub host: Option<&'a str>,
}

/// Why a change was refused, each with what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("requests from {origin} may not change state; use the dashboard at http://{host}/")]
    ForeignOrigin { origin: String, host: String },
    #[error(
        "this server is not reached as \"{0}\"; use http://127.0.0.1 or http://localhost, or add the name to [server] hosts in overlay.toml"
    )]
    UnknownHost(String),
    #[error("send a Host header")]
    NoHost,
    #[error(
        "changes are allowed from this machine only; set [server] admin_token in overlay.toml to allow others"
    )]
    NotLocal,
    #[error("send the admin token as 'Authorization: Bearer <admin_token>'")]
    NoToken,
    #[error("the admin token does not match")]
    WrongToken,
}

impl Refused {
    pub fn status(&self) -> StatusCode {
        match self {
            Refused::NoToken => StatusCode::UNAUTHORIZED,
            Refused::NoHost => StatusCode::BAD_REQUEST,
            _ => StatusCode::FORBIDDEN,
        }
    }
}

impl Access {
    pub fn new(config: &Config) -> Access {
        let mut hosts: Vec<String> = config
            .hosts
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        hosts.push(config.bind.to_string());
        if let Some(host) = config
            .public_url
            .as_deref()
            .and_then(|u| u.split("://").nth(1))
            .and_then(|rest| rest.split('/').next())
        {
            hosts.push(host.to_ascii_lowercase());
        }
        Access {
            admin_token: config.admin_token.clone(),
            trust_forwarded: config.trust_forwarded,
            hosts,
        }
    }

    /// Whether `caller` may change state.
    pub fn allow(&self, caller: &Caller) -> Result<(), Refused> {
        if let Some(token) = &self.admin_token
            && let Some(given) = caller.authorization.and_then(|a| a.strip_prefix("Bearer "))
        {
            return if constant_eq(given.trim().as_bytes(), token.as_bytes()) {
                Ok(())
            } else {
                Err(Refused::WrongToken)
            };
        }
        let host = caller.host.map(str::trim).ok_or(Refused::NoHost)?;
        if !self.reached_as(host) {
            return Err(Refused::UnknownHost(host.to_string()));
        }
        if let Some(origin) = caller.origin {
            let origin_host = origin.split("://").nth(1).unwrap_or(origin);
            if !origin_host.eq_ignore_ascii_case(host) {
                return Err(Refused::ForeignOrigin {
                    origin: origin.to_string(),
                    host: host.to_string(),
                });
            }
        }
        if self.client(caller).is_some_and(|ip| ip.is_loopback()) {
            return Ok(());
        }
        Err(match (&self.admin_token, caller.authorization) {
            (None, _) => Refused::NotLocal,
            (Some(_), None) => Refused::NoToken,
            (Some(_), Some(_)) => Refused::WrongToken,
        })
    }

    /// Whether `caller` may read private data (the dashboard, the event log): addressed to a
    /// name we are reached by, so a rebinding page cannot read them either.
    pub fn allow_read(&self, caller: &Caller) -> Result<(), Refused> {
        let host = caller.host.map(str::trim).ok_or(Refused::NoHost)?;
        if self.reached_as(host) || self.allow(caller).is_ok() {
            Ok(())
        } else {
            Err(Refused::UnknownHost(host.to_string()))
        }
    }

    /// Whether a WebSocket upgrade may be opened at all: a browser page of another site may
    /// not open one (browsers send `Origin` on every upgrade; tools that send none are fine).
    pub fn allow_socket(&self, caller: &Caller) -> Result<(), Refused> {
        let Some(origin) = caller.origin else {
            return Ok(());
        };
        let origin_host = origin.split("://").nth(1).unwrap_or(origin);
        match caller.host {
            Some(host) if origin_host.eq_ignore_ascii_case(host.trim()) => Ok(()),
            _ => Err(Refused::ForeignOrigin {
                origin: origin.to_string(),
                host: caller.host.unwrap_or("127.0.0.1:7878").to_string(),
            }),
        }
    }

    /// The client's address: the peer, or behind a trusted proxy the entry it appended.
    fn client(&self, caller: &Caller) -> Option<IpAddr> {
        match (caller.forwarded, self.trust_forwarded) {
            (Some(list), true) => list
                .rsplit(',')
                .next()
                .and_then(|ip| ip.trim().parse::<IpAddr>().ok()),
            _ => caller.peer,
        }
    }

    /// Whether `host` (a `Host` header: name or address, maybe with a port) is one of ours.
    fn reached_as(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host.rsplit_once(':').map_or(host.as_str(), |(n, _)| n),
        };
        let loopback = name == "localhost"
            || name.ends_with(".localhost")
            || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
        loopback
            || self
                .hosts
                .iter()
                .any(|h| *h == host || h.rsplit_once(':').is_none() && h == name)
    }
}

/// [`Caller`]'s parts as a request brought them, for a route that decides later (a socket
/// decides per message).
#[derive(Debug, Clone, Default)]
pub struct Asking {
    pub peer: Option<IpAddr>,
    pub forwarded: Option<String>,
    pub authorization: Option<String>,
    pub origin: Option<String>,
    pub host: Option<String>,
}

impl Asking {
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            peer: self.peer,
            forwarded: self.forwarded.as_deref(),
            authorization: self.authorization.as_deref(),
            origin: self.origin.as_deref(),
            host: self.host.as_deref(),
        }
    }
}

/// Who asks, as this request says.
pub fn asking() -> impl Filter<Extract = (Asking,), Error = warp::Rejection> + Clone {
    warp::ext::optional::<Peer>()
        .and(warp::header::optional::<String>("x-forwarded-for"))
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("host"))
        .map(
            |peer: Option<Peer>,
             forwarded: Option<String>,
             authorization: Option<String>,
             origin: Option<String>,
             host: Option<String>| Asking {
                peer: peer.map(|p| p.0.ip()),
                forwarded,
                authorization,
                origin,
                host,
            },
        )
}

/// Which of the rule's two questions a route asks.
type Rule = fn(&Access, &Caller) -> Result<(), Refused>;

/// Lets a request through when `rule` does, else answers why.
fn checked(
    access: Arc<Access>,
    rule: Rule,
) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    asking()
        .and_then(move |asking: Asking| {
            let access = access.clone();
            async move {
                rule(&access, &asking.caller()).map_err(|why| reject(why.status(), why.to_string()))
            }
        })
        .untuple_one()
}

/// Lets a state-changing request through when [`Access::allow`] does.
pub fn guard(access: Arc<Access>) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    checked(access, Access::allow)
}

/// Lets a read of private data through when [`Access::allow_read`] does.
pub fn read_guard(
    access: Arc<Access>,
) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    checked(access, Access::allow_read)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn access(token: Option<&str>, trust: bool) -> Access {
        Access {
            admin_token: token.map(str::to_string),
            trust_forwarded: trust,
            hosts: vec!["127.0.0.1:7878".into(), "overlays.example.com".into()],
        }
    }

    fn local<'a>(host: &'a str) -> Caller<'a> {
        Caller {
            peer: Some("127.0.0.1".parse().expect("ip")),
            host: Some(host),
            ..Caller::default()
        }
    }

    #[test]
    fn this_machine_may_change_state_by_any_name_it_is_reached_by() {
        let a = access(None, false);
        for host in [
            "127.0.0.1:7878",
            "localhost:9000",
            "[::1]:7878",
            "obs.localhost",
            "OVERLAYS.example.com",
        ] {
            assert_eq!(a.allow(&local(host)), Ok(()), "{host}");
        }
        let same_origin = Caller {
            origin: Some("http://localhost:7878"),
            ..local("localhost:7878")
        };
        assert_eq!(a.allow(&same_origin), Ok(()));
    }

    #[test]
    fn rebinding_and_foreign_pages_are_refused() {
        let a = access(None, false);
        // A page on evil.example whose name resolves to 127.0.0.1: Host and Origin agree.
        let rebound = Caller {
            origin: Some("http://evil.example:7878"),
            ..local("evil.example:7878")
        };
        assert!(matches!(a.allow(&rebound), Err(Refused::UnknownHost(_))));
        let foreign = Caller {
            origin: Some("https://evil.example"),
            ..local("127.0.0.1:7878")
        };
        assert!(matches!(
            a.allow(&foreign),
            Err(Refused::ForeignOrigin { .. })
        ));
        assert!(a.allow_socket(&foreign).is_err());
        assert_eq!(
            a.allow(&Caller {
                host: None,
                ..local("")
            }),
            Err(Refused::NoHost)
        );
    }

    #[test]
    fn private_reads_need_a_name_we_are_reached_by() {
        let a = access(None, false);
        assert_eq!(a.allow_read(&local("localhost:7878")), Ok(()));
        // Remote viewers of a hosted instance read by its public name.
        let remote = Caller {
            peer: Some("203.0.113.9".parse().expect("ip")),
            host: Some("overlays.example.com"),
            ..Caller::default()
        };
        assert_eq!(a.allow_read(&remote), Ok(()));
        assert!(matches!(
            a.allow_read(&local("evil.example:7878")),
            Err(Refused::UnknownHost(_))
        ));
    }

    #[test]
    fn others_need_the_token_and_a_forged_forwarded_entry_does_not_help() {
        let remote = Caller {
            peer: Some("10.0.0.5".parse().expect("ip")),
            host: Some("127.0.0.1:7878"),
            ..Caller::default()
        };
        assert_eq!(access(None, false).allow(&remote), Err(Refused::NotLocal));
        let a = access(Some("s3cret"), true);
        assert_eq!(a.allow(&remote), Err(Refused::NoToken));
        let with = |auth| Caller {
            authorization: Some(auth),
            ..remote
        };
        assert_eq!(a.allow(&with("Bearer s3cret")), Ok(()));
        assert_eq!(a.allow(&with("Bearer nope")), Err(Refused::WrongToken));
        // Behind the proxy, the client wrote "127.0.0.1" first; the proxy appended its address.
        let forged = Caller {
            forwarded: Some("127.0.0.1, 203.0.113.9"),
            ..remote
        };
        assert_eq!(a.allow(&forged), Err(Refused::NoToken));
        let proxied_local = Caller {
            forwarded: Some("203.0.113.9, 127.0.0.1"),
            ..remote
        };
        assert_eq!(a.allow(&proxied_local), Ok(()));
    }
}
