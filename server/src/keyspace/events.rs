//! Who cares about a key changing: clients that WATCH it (their transaction must abort)
//! and clients waiting for a lock on it (they retry). Every commit calls [`KeyEvents::touch`]
//! for the keys it wrote while still holding their stripe locks, and tells [`KeyEvents::tracking`].

use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;

type Slot = (usize, Bytes);

#[derive(Default)]
struct Inner {
    watches: HashMap<Slot, Vec<Arc<AtomicBool>>>,
    waiters: HashMap<Slot, Arc<Notify>>,
}

/// Registry of watched keys and lock waiters.
#[derive(Default)]
pub struct KeyEvents {
    entries: AtomicUsize,
    inner: Mutex<Inner>,
    /// Clients caching keys they read (CLIENT TRACKING): told when those keys change.
    pub tracking: crate::pubsub::tracking::KeyTracking,
}

impl KeyEvents {
    /// Sets `dirty` when `key` of `db` is written.
    pub fn watch(&self, db: usize, key: Bytes, dirty: &Arc<AtomicBool>) {
        let mut g = self.inner.lock();
        g.watches.entry((db, key)).or_default().push(dirty.clone());
        self.entries.fetch_add(1, Ordering::Release);
    }

    /// Forgets one watch registered with `dirty`.
    pub fn unwatch(&self, db: usize, key: &Bytes, dirty: &Arc<AtomicBool>) {
        let mut g = self.inner.lock();
        let slot = (db, key.clone());
        if let Some(list) = g.watches.get_mut(&slot) {
            if let Some(i) = list.iter().position(|f| Arc::ptr_eq(f, dirty)) {
                list.swap_remove(i);
                self.entries.fetch_sub(1, Ordering::Release);
            }
            if list.is_empty() {
                g.watches.remove(&slot);
            }
        }
    }

    /// A notifier woken whenever `key` of `db` is written; release with [`Self::unwait`].
    pub fn wait(&self, db: usize, key: Bytes) -> Arc<Notify> {
        let mut g = self.inner.lock();
        let n = g.waiters.entry((db, key)).or_default().clone();
        self.entries.fetch_add(1, Ordering::Release);
        n
    }

    /// Releases a notifier from [`Self::wait`].
    pub fn unwait(&self, db: usize, key: Bytes, n: Arc<Notify>) {
        let mut g = self.inner.lock();
        self.entries.fetch_sub(1, Ordering::Release);
        drop(n);
        let slot = (db, key);
        if g.waiters
            .get(&slot)
            .is_some_and(|n| Arc::strong_count(n) == 1)
        {
            g.waiters.remove(&slot);
        }
    }

    /// `key` of `db` was written (or deleted, or expired).
    pub fn touch(&self, db: usize, key: &[u8]) {
        if self.entries.load(Ordering::Acquire) == 0 {
            return;
        }
        let g = self.inner.lock();
        let slot = (db, Bytes::copy_from_slice(key));
        if let Some(list) = g.watches.get(&slot) {
            list.iter().for_each(|f| f.store(true, Ordering::Release));
        }
        if let Some(n) = g.waiters.get(&slot) {
            n.notify_waiters();
        }
    }

    /// The keys of `db` someone watches: FLUSHDB and SWAPDB touch those that exist, as
    /// Redis 7 does (a watched key that did not exist is not changed by emptying its
    /// database).
    pub fn watched_keys(&self, db: usize) -> Vec<Bytes> {
        if self.entries.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let g = self.inner.lock();
        g.watches
            .keys()
            .filter(|(d, _)| *d == db)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// Wakes every lock waiter of `db` (FLUSHDB, SWAPDB: any lock may be gone).
    pub fn wake_db_waiters(&self, db: usize) {
        if self.entries.load(Ordering::Acquire) == 0 {
            return;
        }
        let g = self.inner.lock();
        for ((d, _), n) in &g.waiters {
            if *d == db {
                n.notify_waiters();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touch_marks_only_matching_watches() {
        let ev = KeyEvents::default();
        let a = Arc::new(AtomicBool::new(false));
        let b = Arc::new(AtomicBool::new(false));
        ev.watch(0, Bytes::from_static(b"k"), &a);
        ev.watch(1, Bytes::from_static(b"k"), &b);
        ev.touch(0, b"k");
        assert!(a.load(Ordering::Acquire) && !b.load(Ordering::Acquire));
        assert_eq!(ev.watched_keys(1), vec![Bytes::from_static(b"k")]);
        ev.touch(1, b"k");
        assert!(b.load(Ordering::Acquire));
        ev.unwatch(0, &Bytes::from_static(b"k"), &a);
        ev.unwatch(1, &Bytes::from_static(b"k"), &b);
        assert_eq!(ev.entries.load(Ordering::Acquire), 0);
    }
}
