//! A data directory written by the previous kvd (namespace-first keys, no format record)
//! opens with the Store: every key, value and TTL is served from the new layout and the
//! key counts are exact, also after a migration interrupted at any batch.

use super::encoding::{encode_value, ValueType};
use super::{ExpiryFilter, Store, Txn};
use kv_engine::{Db, Keyspace, Options};
use kv_keyspace::format::{stored_format, FORMAT_VERSION, LEGACY_FORMAT};
use kv_keyspace::legacy::legacy_data_key;
use kv_keyspace::migrate::{migrate, MigrationLimits};
use kv_keyspace::namespaces::{Namespaces, META_KEYSPACE, META_NAMESPACES};
use std::collections::BTreeMap;
use std::path::Path;

/// db -> key -> (value, expire_at)
type Expected = BTreeMap<usize, BTreeMap<Vec<u8>, (Vec<u8>, Option<i64>)>>;

/// Writes what the previous kvd would have: three databases, database 1 flushed once
/// (its old namespace 1 still holds orphaned keys), keys with and without TTLs, some
/// already expired but not yet swept (they still count, as in Redis's DBSIZE).
fn write_legacy_directory(dir: &Path) -> Expected {
    let db = Db::open(dir, Options::default()).unwrap();
    let meta = db.keyspace(META_KEYSPACE).unwrap();
    let ns = Namespaces {
        map: vec![0, 3, 2],
        next: 4,
    };
    db.put(meta, META_NAMESPACES, &ns.encode()).unwrap();
    let now = kv_keyspace::now_ms();
    let mut expected = Expected::new();
    for i in 0..300u32 {
        let db_index = (i % 3) as usize;
        let key = format!("key:{i}").into_bytes();
        let value = format!("value {i}").into_bytes();
        let expire_at = match i % 5 {
            0 => Some(now + 3_600_000),
            1 => Some(now - 1000),
            _ => None,
        };
        let raw = encode_value(ValueType::String, expire_at, &value);
        db.put(
            Keyspace::DEFAULT,
            &legacy_data_key(ns.map[db_index], &key),
            &raw,
        )
        .unwrap();
        expected
            .entry(db_index)
            .or_default()
            .insert(key, (value, expire_at));
    }
    for i in 0..20u32 {
        let raw = encode_value(ValueType::String, None, b"orphan");
        db.put(
            Keyspace::DEFAULT,
            &legacy_data_key(1, &i.to_be_bytes()),
            &raw,
        )
        .unwrap();
    }
    db.close().unwrap();
    expected
}

fn open_store(dir: &Path) -> kv_engine::Result<Store> {
    let filter = ExpiryFilter::new(60_000);
    let options = Options {
        compaction_filter: Some(filter.clone()),
        ..Options::default()
    };
    Store::new(Db::open(dir, options)?, 3, filter)
}

fn check_everything_is_served(store: &Store, expected: &Expected) {
    assert_eq!(
        stored_format(&store.db, store.meta).unwrap(),
        FORMAT_VERSION
    );
    let t = Txn::new(store);
    for (&db, keys) in expected {
        for (key, (value, expire_at)) in keys {
            let e = t.get_any(db, key).unwrap().expect("every key migrated");
            assert_eq!((&e.value[..], e.expire_at), (&value[..], *expire_at));
        }
        let count = t.key_count(db).unwrap();
        assert_eq!(count.keys, keys.len() as i64, "DBSIZE of db {db}");
        let with_ttl = keys.values().filter(|(_, e)| e.is_some()).count();
        assert_eq!(count.expires, with_ttl as i64, "expires of db {db}");
        // Listing agrees with the counts (expired keys are listed only as "any").
        let mut listed = 0;
        t.scan_keys(
            db,
            kv_keyspace::data_key::ScanPosition::START,
            false,
            u64::MAX,
            |k, _, _| {
                assert!(keys.contains_key(k), "listed a key that is not in db {db}");
                listed += 1;
                true
            },
        )
        .unwrap();
        assert_eq!(listed, keys.len());
    }
}

#[test]
fn a_legacy_directory_opens_with_every_key_value_ttl_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let expected = write_legacy_directory(dir.path());
    let store = open_store(dir.path()).unwrap();
    check_everything_is_served(&store, &expected);
    drop(store);
    // A second open has nothing to migrate and serves the same.
    let store = open_store(dir.path()).unwrap();
    check_everything_is_served(&store, &expected);
}

#[test]
fn an_interrupted_migration_is_finished_by_the_next_open() {
    // 320 keys in batches of 50: 7 staging batches, then 7 rewriting ones.
    for stop_after in [1, 6, 7, 8, 13] {
        let dir = tempfile::tempdir().unwrap();
        let expected = write_legacy_directory(dir.path());
        {
            let db = Db::open(dir.path(), Options::default()).unwrap();
            let meta = db.keyspace(META_KEYSPACE).unwrap();
            let limits = MigrationLimits {
                batch_keys: 50,
                max_batches: stop_after,
                ..MigrationLimits::default()
            };
            let report = migrate(&db, meta, Keyspace::DEFAULT, limits)
                .unwrap()
                .unwrap();
            assert!(!report.finished, "stopped after {stop_after} batches");
            assert_eq!(stored_format(&db, meta).unwrap(), LEGACY_FORMAT);
            // The process dies here: the handle is dropped, not closed.
        }
        let store = open_store(dir.path()).unwrap();
        check_everything_is_served(&store, &expected);
    }
}

#[test]
fn a_directory_of_a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), Options::default()).unwrap();
        let meta = db.keyspace(META_KEYSPACE).unwrap();
        db.put(meta, kv_keyspace::format::META_FORMAT, &9u32.to_be_bytes())
            .unwrap();
        db.close().unwrap();
    }
    let err = open_store(dir.path()).err().expect("refused");
    assert!(err.to_string().contains("keyspace format 9"), "{err}");
    // Nothing was written: not even the namespace map of a new directory.
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let meta = db.keyspace(META_KEYSPACE).unwrap();
    assert_eq!(db.get(meta, META_NAMESPACES).unwrap(), None);
}
