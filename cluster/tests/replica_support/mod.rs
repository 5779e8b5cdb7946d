//! Helpers shared by the replica storage tests.
#![allow(dead_code)]

pub mod watched;

use bytes::Bytes;
use kv_cluster::replica_api::{ItemKey, WriteItem};
use kv_cluster::replica_store::ReplicaStore;
use kv_cluster::{NodeId, Record, Version};
use kv_engine::{Db, FsyncPolicy, Options};
use kv_keyspace::PARTITIONS;
use std::path::Path;
use std::sync::Arc;

/// A replica store in `dir` (no fsync: tests do not cut power).
pub fn open_store(dir: &Path) -> Arc<ReplicaStore> {
    let options = Options {
        fsync: FsyncPolicy::No,
        ..Options::default()
    };
    let db = Db::open(dir, options).unwrap();
    Arc::new(ReplicaStore::open(Arc::new(db)).unwrap())
}

pub fn version(ts: u64) -> Version {
    Version {
        ts,
        node: NodeId(1),
    }
}

pub fn key(db: u32, name: &str) -> ItemKey {
    ItemKey {
        db,
        key: Bytes::copy_from_slice(name.as_bytes()),
    }
}

pub fn put(key: &ItemKey, ts: u64, value: &str) -> WriteItem {
    WriteItem {
        key: key.clone(),
        record: Record::string(version(ts), Bytes::copy_from_slice(value.as_bytes()), None),
    }
}

pub fn delete(key: &ItemKey, ts: u64) -> WriteItem {
    WriteItem {
        key: key.clone(),
        record: Record::tombstone(version(ts)),
    }
}

pub fn all_partitions() -> Vec<u16> {
    (0..PARTITIONS).collect()
}
