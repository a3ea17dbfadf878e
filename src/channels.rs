//! Which channels are wanted right now, reference-counted. Every open stream holds a lease on
//! its channels; the last lease of a channel released starts a grace period (OBS reloads and
//! scene switches must not churn joins and subscriptions) after which the channel is dropped.
//! Channels named in overlay.toml are pinned and always wanted.
//!
//! Sources (Twitch chat and EventSub, YouTube, Kick) watch [`Channels::sourced_rx`]: the wanted
//! channels whose sources run in this process. Alone, that is every wanted channel. With
//! several instances on one shared store, each channel's sources run on one instance only
//! (the one holding its claim, see `app::claim_sources`), so a chat line or a follow is
//! published once, not once per instance.

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
    /// The channels whose sources run here.
    sourced: watch::Sender<BTreeSet<String>>,
    /// Set when something else decides `sourced` (claims on a shared store).
    gated: std::sync::atomic::AtomicBool,
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
            sourced: watch::Sender::new(wanted.clone()),
            wanted: watch::Sender::new(wanted),
            gated: std::sync::atomic::AtomicBool::new(false),
            grace,
        })
    }

    /// The wanted set, updated whenever it changes.
    pub fn wanted_rx(&self) -> watch::Receiver<BTreeSet<String>> {
        self.wanted.subscribe()
    }

    /// The channels whose sources run in this process, updated whenever they change.
    pub fn sourced_rx(&self) -> watch::Receiver<BTreeSet<String>> {
        self.sourced.subscribe()
    }

    pub fn sourced(&self) -> BTreeSet<String> {
        self.sourced.borrow().clone()
    }

    /// From now on `sourced` is decided by [`Channels::set_sourced`], not by the wanted set.
    pub fn gate(&self) {
        self.gated.store(true, std::sync::atomic::Ordering::SeqCst);
        self.set_sourced(BTreeSet::new());
    }

    pub fn set_sourced(&self, set: BTreeSet<String>) {
        send_if_changed(&self.sourced, set);
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
        if !self.gated.load(std::sync::atomic::Ordering::SeqCst) {
            self.set_sourced(wanted.clone());
        }
        send_if_changed(&self.wanted, wanted);
    }
}

/// Sends `value` unless it is what `tx` already holds, so watchers wake only on a change.
fn send_if_changed(tx: &watch::Sender<BTreeSet<String>>, value: BTreeSet<String>) {
    tx.send_if_modified(|current| {
        if *current == value {
            false
        } else {
            *current = value;
            true
        }
    });
}

/// Held by whoever shows a channel (an open overlay stream, a viewer page).
pub struct Lease {
    channels: Arc<Channels>,
    names: Vec<String>,
}

impl Lease {
    /// The channels leased.
    pub fn channels(&self) -> &[String] {
        &self.names
    }
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
