//! Which channels are wanted right now, reference-counted. Every open stream holds a lease on
//! its channels; the last lease of a channel released starts a grace period (OBS reloads and
//! scene switches must not churn joins and subscriptions) after which the channel is dropped.
//! Channels named in overlay.toml are pinned and always wanted. Sources watch the wanted set.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;

#[derive(Default)]
struct Entry {
    leases: usize,
    pinned: bool,
    /// Bumped on every release to zero, so a stale grace timer knows it is stale.
    epoch: u64,
}

pub struct Channels {
    entries: Mutex<HashMap<String, Entry>>,
    wanted: watch::Sender<BTreeSet<String>>,
    grace: Duration,
}

impl Channels {
    pub fn new(pinned: &[String], grace: Duration) -> Arc<Channels> {
        let mut entries = HashMap::new();
        for c in pinned {
            entries.insert(
                c.clone(),
                Entry {
                    pinned: true,
                    ..Entry::default()
                },
            );
        }
        let wanted: BTreeSet<String> = entries.keys().cloned().collect();
        Arc::new(Channels {
            entries: Mutex::new(entries),
            wanted: watch::Sender::new(wanted),
            grace,
        })
    }

    /// The wanted set, updated whenever it changes.
    pub fn watch(&self) -> watch::Receiver<BTreeSet<String>> {
        self.wanted.subscribe()
    }

    pub fn wanted(&self) -> BTreeSet<String> {
        self.wanted.borrow().clone()
    }

    /// Leases `channels` until the returned lease is dropped.
    pub fn lease(self: &Arc<Self>, channels: &[String]) -> Lease {
        let mut entries = self.entries.lock();
        for c in channels {
            entries.entry(c.clone()).or_default().leases += 1;
        }
        self.publish(&entries);
        Lease {
            channels: self.clone(),
            names: channels.to_vec(),
        }
    }

    fn release(self: &Arc<Self>, names: &[String]) {
        let mut entries = self.entries.lock();
        for c in names {
            let Some(e) = entries.get_mut(c) else {
                continue;
            };
            e.leases = e.leases.saturating_sub(1);
            if e.leases > 0 || e.pinned {
                continue;
            }
            e.epoch += 1;
            let (epoch, name, me) = (e.epoch, c.clone(), self.clone());
            let expire = async move {
                tokio::time::sleep(me.grace).await;
                me.expire(&name, epoch);
            };
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn(expire);
                }
                Err(_) => self.expire_now(&mut entries, c),
            }
        }
    }

    fn expire(&self, name: &str, epoch: u64) {
        let mut entries = self.entries.lock();
        if entries
            .get(name)
            .is_some_and(|e| e.leases == 0 && !e.pinned && e.epoch == epoch)
        {
            self.expire_now(&mut entries, name);
        }
    }

    fn expire_now(&self, entries: &mut HashMap<String, Entry>, name: &str) {
        entries.remove(name);
        self.publish(entries);
    }

    fn publish(&self, entries: &HashMap<String, Entry>) {
        let wanted: BTreeSet<String> = entries.keys().cloned().collect();
        self.wanted.send_if_modified(|current| {
            if *current == wanted {
                false
            } else {
                *current = wanted;
                true
            }
        });
    }
}

/// Held by whoever shows a channel (an open overlay stream, a viewer page).
pub struct Lease {
    channels: Arc<Channels>,
    names: Vec<String>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.channels.release(&self.names);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn leases_keep_a_channel_until_the_grace_period_after_the_last() {
        let ch = Channels::new(&["pinned".into()], Duration::from_secs(60));
        assert_eq!(ch.wanted(), set(&["pinned"]));
        let a = ch.lease(&["x".into()]);
        let b = ch.lease(&["x".into()]);
        assert_eq!(ch.wanted(), set(&["pinned", "x"]));
        drop(a);
        drop(b);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(ch.wanted(), set(&["pinned", "x"]), "still in grace");
        // Coming back within the grace period cancels the part.
        let c = ch.lease(&["x".into()]);
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(ch.wanted(), set(&["pinned", "x"]));
        drop(c);
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(ch.wanted(), set(&["pinned"]));
        let p = ch.lease(&["pinned".into()]);
        drop(p);
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(ch.wanted(), set(&["pinned"]), "pinned channels stay");
    }
}
