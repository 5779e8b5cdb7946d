//! Cluster metadata (docs/cluster.md, "Cluster metadata"): a small store of entries
//! `name -> (version, value)` that every node holds whole, merged last-writer-wins by
//! the cluster [`Version`]. It carries what belongs to the whole cluster rather than to
//! a key's replicas: database flushes (`flush/<db>`), ACL users and cluster-wide
//! configuration parameters.
//!
//! Entries are persisted in the engine keyspace `metadata` (spec:
//! docs/format/cluster-storage.md) before they count as held. A writer stamps an entry
//! with its clock and pushes it to every node ([`spread`]); every node advertises the
//! [`entry::digest`] of its entries in gossip, and a node that sees a peer with another
//! digest syncs with it, so nodes that were away catch up on contact. Listeners (the
//! flush floors, the server's ACL and CONFIG) see every entry that changes, in order.
//!
//! Calls block on the engine: async callers use `spawn_blocking`.

pub mod entry;
pub mod floors;
pub mod spread;

pub use entry::MetaEntry;
pub use floors::{flush_entry_name, flushed_db, FlushFloors};

use crate::replica_store::StoreError;
use crate::Version;
use bytes::Bytes;
use kv_engine::{Db, Keyspace, WriteBatch};
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

/// Engine keyspace of the metadata entries (and this node's purge markers).
pub const METADATA_KEYSPACE: &str = "metadata";
/// Engine key prefix of an entry: `'E' name`.
const ENTRY_PREFIX: u8 = b'E';
/// Engine key prefix of a purge marker: `'P' db:u32-BE` -> the floor purged below.
const PURGED_PREFIX: u8 = b'P';

/// Longest entry name a peer may send.
pub const MAX_NAME_LEN: usize = 1024;
/// Largest entry value a peer may send (an ACL user or a config value is far smaller).
pub const MAX_VALUE_LEN: usize = 64 << 10;

/// Sees every entry that changes, in the order of the changes (and, when it starts
/// listening, every entry held). Called while merges are held off: it must not merge.
pub type MetadataListener = Arc<dyn Fn(&MetaEntry) + Send + Sync>;

/// A node's copy of the cluster metadata.
pub struct MetadataStore {
    db: Arc<Db>,
    ks: Keyspace,
    /// One merge at a time, with its listeners: changes reach them in order. Readers
    /// of `entries` never wait on it (a merge waits on the disk).
    merging: Mutex<Vec<MetadataListener>>,
    entries: RwLock<BTreeMap<String, MetaEntry>>,
    digest: watch::Sender<String>,
}

impl MetadataStore {
    /// Opens the store in `db`, loading every entry. A damaged entry stops the node
    /// with its name: silently dropping one could resurrect flushed data.
    pub fn open(db: Arc<Db>) -> Result<MetadataStore, StoreError> {
        let ks = db.keyspace(METADATA_KEYSPACE)?;
        let mut entries = BTreeMap::new();
        for item in db.iter_prefix(ks, &[ENTRY_PREFIX], None)? {
            let item = item?;
            let name = String::from_utf8(item.key[1..].to_vec()).map_err(|_| corrupt(&item.key))?;
            let entry = MetaEntry::decode_value(name.clone(), &item.value)
                .ok_or_else(|| corrupt(&item.key))?;
            entries.insert(name, entry);
        }
        let (digest, _) = watch::channel(entry::digest(
            entries.values().map(|e| (e.name.as_str(), &e.version)),
        ));
        Ok(MetadataStore {
            db,
            ks,
            merging: Mutex::new(Vec::new()),
            entries: RwLock::new(entries),
            digest,
        })
    }

    /// Every entry, in name order.
    pub fn entries(&self) -> Vec<MetaEntry> {
        self.entries.read().values().cloned().collect()
    }

    /// One entry.
    pub fn get(&self, name: &str) -> Option<MetaEntry> {
        self.entries.read().get(name).cloned()
    }

    /// The digest of every entry held (published in gossip).
    pub fn digest(&self) -> String {
        self.digest.borrow().clone()
    }

    /// Changes whenever the digest does.
    pub fn watch_digest(&self) -> watch::Receiver<String> {
        self.digest.subscribe()
    }

    /// Takes each entry newer than the one held (or new), durably, then tells the
    /// listeners. Returns the entries that changed. Entries a peer could not have sent
    /// honestly (an oversized name or value) are refused as a whole.
    pub fn merge(&self, entries: Vec<MetaEntry>) -> Result<Vec<MetaEntry>, StoreError> {
        if let Some(bad) = entries.iter().find(|e| {
            e.name.is_empty() || e.name.len() > MAX_NAME_LEN || e.value.len() > MAX_VALUE_LEN
        }) {
            return Err(StoreError::Invalid(format!(
                "metadata entry \"{}\" ({} bytes of value) is outside the limits",
                bad.name.escape_default(),
                bad.value.len()
            )));
        }
        let listeners = self.merging.lock();
        let mut newest: BTreeMap<&str, &MetaEntry> = BTreeMap::new();
        for e in &entries {
            let held = newest
                .get(e.name.as_str())
                .map(|n| n.version)
                .or_else(|| self.entries.read().get(&e.name).map(|h| h.version));
            if held.is_none_or(|v| e.version > v) {
                newest.insert(&e.name, e);
            }
        }
        if newest.is_empty() {
            return Ok(Vec::new());
        }
        let mut batch = WriteBatch::new();
        for e in newest.values() {
            batch.put(self.ks, &entry_key(&e.name), &e.encode_value());
        }
        self.db.write(batch)?;
        let changed: Vec<MetaEntry> = newest.into_values().cloned().collect();
        let digest = {
            let mut held = self.entries.write();
            for e in &changed {
                held.insert(e.name.clone(), e.clone());
            }
            entry::digest(held.values().map(|e| (e.name.as_str(), &e.version)))
        };
        for e in &changed {
            for l in listeners.iter() {
                l(e);
            }
        }
        self.digest.send_replace(digest);
        Ok(changed)
    }

    /// Calls `listener` with every entry held now, then with every entry that changes.
    pub fn listen(&self, listener: MetadataListener) {
        let mut listeners = self.merging.lock();
        for e in self.entries() {
            listener(&e);
        }
        listeners.push(listener);
    }

    /// The floor below which this node has deleted database `db`'s records (a local
    /// marker, never replicated: it records purge work done, so a restart does not
    /// scan again).
    pub fn purged_floor(&self, db: u32) -> Result<Version, StoreError> {
        match self.db.get(self.ks, &purged_key(db))? {
            None => Ok(Version::ZERO),
            Some(v) => Version::decode(&v.value).ok_or_else(|| corrupt(&purged_key(db))),
        }
    }

    /// Records that database `db` holds no record below `floor` any more.
    pub fn set_purged_floor(&self, db: u32, floor: Version) -> Result<(), StoreError> {
        let mut batch = WriteBatch::new();
        batch.put(self.ks, &purged_key(db), &floor.encode());
        self.db.write(batch)?;
        Ok(())
    }
}

fn entry_key(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(ENTRY_PREFIX);
    k.extend_from_slice(name.as_bytes());
    k
}

fn purged_key(db: u32) -> Vec<u8> {
    let mut k = vec![PURGED_PREFIX];
    k.extend_from_slice(&db.to_be_bytes());
    k
}

fn corrupt(key: &[u8]) -> StoreError {
    StoreError::Corrupt {
        key: format!("metadata key \"{}\"", key.escape_ascii()),
        what: "cluster metadata entry (does not decode)".into(),
    }
}

/// An entry value from text.
pub fn text_value(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[cfg(test)]
mod tests;
