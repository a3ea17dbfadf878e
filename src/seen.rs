//! A bounded set of ids already handled: platforms deliver at least once (EventSub over the
//! WebSocket and by webhook, overlapping YouTube poll windows, Kick's feeds), and a
//! redelivery keeps its id. The oldest ids are forgotten first.

use std::collections::{HashSet, VecDeque};

use parking_lot::Mutex;

pub struct Seen {
    inner: Mutex<(VecDeque<String>, HashSet<String>)>,
    cap: usize,
}

impl Seen {
    pub fn new(cap: usize) -> Seen {
        Seen {
            inner: Mutex::new((VecDeque::new(), HashSet::new())),
            cap: cap.max(1),
        }
    }

    /// `true` the first time `id` is offered (and for an empty id, which cannot be compared).
    pub fn first_time(&self, id: &str) -> bool {
        if id.is_empty() {
            return true;
        }
        let mut guard = self.inner.lock();
        let (order, set) = &mut *guard;
        if set.contains(id) {
            return false;
        }
        if order.len() >= self.cap
            && let Some(old) = order.pop_front()
        {
            set.remove(&old);
        }
        order.push_back(id.to_string());
        set.insert(id.to_string());
        true
    }

    /// Forgets `id`, so a redelivery is handled (its first handling failed).
    pub fn forget(&self, id: &str) {
        let mut guard = self.inner.lock();
        let (order, set) = &mut *guard;
        if set.remove(id) {
            order.retain(|o| o != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_forgetful() {
        let seen = Seen::new(2);
        assert!(seen.first_time("a") && !seen.first_time("a"));
        assert!(seen.first_time("b") && seen.first_time("c"));
        // "a" was the oldest of three: forgotten.
        assert!(seen.first_time("a"));
        seen.forget("c");
        assert!(seen.first_time("c"));
        assert!(seen.first_time("") && seen.first_time(""));
    }
}
