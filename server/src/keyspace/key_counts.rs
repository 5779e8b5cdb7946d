//! Keys per namespace, kept up to date by every commit so that DBSIZE and INFO keyspace
//! are O(1) instead of a scan of the whole database on a runtime thread.
//!
//! A key counts from the write that creates it to the write that removes it, expired or
//! not, exactly as Redis's DBSIZE counts keys its expiry has not reclaimed yet. Every change
//! to the data keyspace goes through a transaction ([`super::Txn`]), which computes the
//! change of each key it wrote (absent or present, with or without a TTL, before and after)
//! while it still holds the key's lock; the compaction filter therefore no longer drops
//! expired keys behind the counts' back (the active expiry sweep deletes them through a
//! transaction). Counts follow namespaces, so FLUSHDB (a fresh namespace) and SWAPDB (a
//! swapped map) need nothing more. They are rebuilt by one scan at start.

use super::encoding::expire_at_of;
use kv_engine::{Db, Keyspace};
use kv_keyspace::data_key::slot_ns_of;
use parking_lot::Mutex;
use std::collections::HashMap;

/// Keys of one namespace, and how many of them have a TTL.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyCount {
    /// Keys present (including expired ones not yet removed).
    pub keys: i64,
    /// Of those, keys with an expiry.
    pub expires: i64,
}

impl KeyCount {
    /// The count of one encoded value (`None` = absent).
    pub fn of_value(value: Option<&[u8]>) -> KeyCount {
        match value {
            None => KeyCount::default(),
            Some(v) => KeyCount {
                keys: 1,
                expires: expire_at_of(v).is_some() as i64,
            },
        }
    }

    /// Adds `other` (which may be negative).
    pub fn add(&mut self, other: KeyCount) {
        self.keys += other.keys;
        self.expires += other.expires;
    }

    /// `after - before`.
    pub fn change(before: KeyCount, after: KeyCount) -> KeyCount {
        KeyCount {
            keys: after.keys - before.keys,
            expires: after.expires - before.expires,
        }
    }
}

/// Counts for every namespace that has keys.
#[derive(Debug, Default)]
pub struct KeyCounts {
    by_namespace: Mutex<HashMap<u32, KeyCount>>,
}

impl KeyCounts {
    /// Counts every key of the data keyspace once (at start).
    pub fn scan(db: &Db, data: Keyspace) -> kv_engine::Result<KeyCounts> {
        let mut map: HashMap<u32, KeyCount> = HashMap::new();
        for entry in db.iter(data, None, None, None)? {
            let entry = entry?;
            if let Some((_, ns)) = slot_ns_of(&entry.key) {
                map.entry(ns)
                    .or_default()
                    .add(KeyCount::of_value(Some(&entry.value)));
            }
        }
        Ok(KeyCounts {
            by_namespace: Mutex::new(map),
        })
    }

    /// The count of namespace `ns`.
    pub fn get(&self, ns: u32) -> KeyCount {
        self.by_namespace
            .lock()
            .get(&ns)
            .copied()
            .unwrap_or_default()
    }

    /// Applies the changes of one committed transaction.
    pub fn apply<'a>(&self, changes: impl IntoIterator<Item = (&'a u32, &'a KeyCount)>) {
        let mut map = self.by_namespace.lock();
        for (ns, change) in changes {
            map.entry(*ns).or_default().add(*change);
        }
    }

    /// Forgets namespaces no database uses any more (after FLUSHDB/FLUSHALL).
    pub fn retain(&self, live: impl Fn(u32) -> bool) {
        self.by_namespace.lock().retain(|ns, _| live(*ns));
    }
}
