//! Who is logging in and who is logged in: viewer sessions (a signed cookie whose key is kept
//! in the data dir, so sessions survive a restart) and the logins in progress of viewers and
//! of the streamer's dashboard, each held for [`STATE_TTL`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;

/// Time allowed between leaving for Twitch and coming back with the `state`.
pub const STATE_TTL: Duration = Duration::from_secs(600);

/// OAuth `state` values handed out and not yet come back, each with what to do when it does.
/// A value is good once, for [`STATE_TTL`]; expired ones are dropped as new ones come.
pub struct LoginStates<T> {
    states: Mutex<HashMap<String, (T, Instant)>>,
}

impl<T> Default for LoginStates<T> {
    fn default() -> Self {
        LoginStates {
            states: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> LoginStates<T> {
    pub fn insert(&self, state: String, value: T) {
        let mut states = self.states.lock();
        states.retain(|_, (_, at)| at.elapsed() < STATE_TTL);
        states.insert(state, (value, Instant::now()));
    }

    /// The value of `state` if it was handed out and has not expired; it cannot be used again.
    pub fn take(&self, state: &str) -> Option<T> {
        self.states
            .lock()
            .remove(state)
            .filter(|(_, at)| at.elapsed() < STATE_TTL)
            .map(|(value, _)| value)
    }
}

/// The streamer's logins in progress from the dashboard.
#[derive(Default)]
pub struct Pending {
    /// The device code the dashboard shows while Twitch waits for it.
    pub device: Mutex<Option<serde_json::Value>>,
    pub states: LoginStates<()>,
}

pub const COOKIE: &str = "overlayd_session";
/// A viewer stays logged in for a month (then logs in again with one click).
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// Signs and checks session cookies.
pub struct Sessions {
    key: Vec<u8>,
    /// Viewer logins in progress: state → where to go after.
    pub states: LoginStates<String>,
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
                    .and_then(|_| crate::files::write_private(&path, &k))
                {
                    tracing::error!("cannot keep the session key in {}: {e}", path.display());
                }
                k
            }
        };
        Sessions {
            key,
            states: LoginStates::default(),
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
        if !super::access::constant_eq(sig.as_bytes(), expected.as_bytes()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_state_is_good_once() {
        let states = LoginStates::default();
        states.insert("s".into(), 7);
        assert_eq!(states.take("s"), Some(7));
        assert_eq!(states.take("s"), None);
        assert_eq!(states.take("other"), None);
    }

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
