//! Block cache and table cache seen from tables: the byte bound holds while reading
//! more than fits, repeated reads hit, and the table cache reuses and evicts readers.

use kv_engine::filename::table_path;
use kv_engine::fs::{Fs, MemFs};
use kv_engine::iter::InternalIterator;
use kv_engine::key::{make_internal_key, ValueKind};
use kv_engine::options::Compression;
use kv_engine::sst::{BlockCache, SstCounters, Table, TableBuilder, TableCache, TableOptions};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

fn key(i: u32) -> Vec<u8> {
    make_internal_key(format!("key{i:07}").as_bytes(), 1, ValueKind::Put)
}

fn build(fs: &MemFs, path: &Path, n: u32) {
    let opts = TableOptions {
        compression: Compression::None,
        ..TableOptions::default()
    };
    let mut b = TableBuilder::new(path.to_path_buf(), fs.create(path).unwrap(), opts);
    for i in 0..n {
        b.add(&key(i), &[b'v'; 100]).unwrap();
    }
    b.finish().unwrap();
}

fn scan(t: &Arc<Table>) -> usize {
    let mut it = t.iter();
    it.seek_to_first();
    let mut n = 0;
    while it.valid() {
        n += 1;
        it.next();
    }
    it.status().unwrap();
    n
}

/// A table of `n` entries read through a fresh block cache of `capacity` bytes.
fn cached_table(n: u32, capacity: usize) -> (Arc<Table>, Arc<BlockCache>, Arc<SstCounters>) {
    let fs = MemFs::new();
    let path = Path::new("/db/000001.sst");
    build(&fs, path, n);
    let cache = BlockCache::new(capacity);
    let counters = Arc::new(SstCounters::default());
    let file = fs.open(path).unwrap();
    let t = Table::open(path.into(), file, 1, Some(cache.clone()), counters.clone()).unwrap();
    (t, cache, counters)
}

#[test]
fn block_cache_stays_within_capacity_and_counts_hits() {
    let (t, cache, counters) = cached_table(20_000, 300 * 1024);
    let blocks = t.properties().data_blocks;
    // Every key looked up in order: each block is missed once, read and cached.
    for i in 0..20_000 {
        assert!(t.get(&key(i)).unwrap().is_some(), "key {i}");
    }
    assert!(
        cache.usage() <= cache.capacity(),
        "usage {} > {}",
        cache.usage(),
        cache.capacity()
    );
    assert!(
        cache.usage() > cache.capacity() / 2,
        "the cache fills up: {}",
        cache.usage()
    );
    assert_eq!(counters.cache_misses.load(Relaxed), blocks);
    let hits = counters.cache_hits.load(Relaxed);
    assert_eq!(hits, 20_000 - blocks);

    // Point lookups in a small key range are served from the cache after the first read.
    for _ in 0..3 {
        for i in 100..200 {
            assert!(t.get(&key(i)).unwrap().is_some());
        }
    }
    let misses = counters.cache_misses.load(Relaxed) - blocks;
    assert!(
        misses <= 5,
        "100 keys lie in a handful of blocks, missed {misses}"
    );
    assert!(counters.cache_hits.load(Relaxed) >= hits + 295);
    assert!(cache.usage() <= cache.capacity());
}

/// A scan long enough to read ahead (sst/readahead.rs) leaves the cache to point reads:
/// the blocks it read ahead do not push out the ones lookups use.
#[test]
fn a_long_scan_leaves_cached_blocks_in_place() {
    let (t, cache, counters) = cached_table(20_000, 300 * 1024);
    let blocks = t.properties().data_blocks;
    for i in 100..200 {
        assert!(t.get(&key(i)).unwrap().is_some());
    }
    let usage = cache.usage();
    let missed = counters.cache_misses.load(Relaxed);
    assert!(
        missed <= 5,
        "100 keys lie in a handful of blocks, missed {missed}"
    );
    assert_eq!(scan(&t), 20_000);
    // The scan's first blocks, read before it read ahead, may enter; no more.
    assert!(
        cache.usage() <= usage + 3 * 5 * 1024,
        "a scan of {blocks} blocks grew the cache from {usage} to {}",
        cache.usage()
    );
    let missed = counters.cache_misses.load(Relaxed);
    for i in 100..200 {
        assert!(t.get(&key(i)).unwrap().is_some());
    }
    assert_eq!(
        counters.cache_misses.load(Relaxed),
        missed,
        "the lookups' blocks are still cached"
    );
}

#[test]
fn tables_share_a_cache_without_mixing_blocks() {
    let fs = MemFs::new();
    let cache = BlockCache::new(1 << 20);
    let counters = Arc::new(SstCounters::default());
    let mut tables = Vec::new();
    for n in 1..=3u64 {
        let path = table_path(Path::new("/db"), n);
        build(&fs, &path, 100 * n as u32);
        tables.push(
            Table::open(
                path.clone(),
                fs.open(&path).unwrap(),
                n,
                Some(cache.clone()),
                counters.clone(),
            )
            .unwrap(),
        );
    }
    for _ in 0..2 {
        for (i, t) in tables.iter().enumerate() {
            assert_eq!(scan(t), 100 * (i + 1));
        }
    }
    assert!(counters.cache_hits.load(Relaxed) > 0);
}

#[test]
fn table_cache_reuses_opens_and_evicts() {
    let fs = MemFs::new();
    let dir = Path::new("/db");
    for n in 1..=4 {
        build(&fs, &table_path(dir, n), 10);
    }
    let cache = TableCache::new(
        Arc::new(fs.clone()),
        dir.into(),
        2,
        None,
        Arc::new(SstCounters::default()),
    );
    let a = cache.get(1).unwrap();
    assert!(
        Arc::ptr_eq(&a, &cache.get(1).unwrap()),
        "a hit returns the same reader"
    );
    assert_eq!(a.file_number(), 1);
    assert_eq!(a.path(), table_path(dir, 1));
    cache.evict(1);
    assert!(
        !Arc::ptr_eq(&a, &cache.get(1).unwrap()),
        "evicted readers are reopened"
    );
    assert_eq!(
        scan(&a),
        10,
        "an evicted reader still works for whoever holds it"
    );
    let b = cache.get(2).unwrap();
    cache.get(3).unwrap();
    cache.get(4).unwrap();
    assert!(
        !Arc::ptr_eq(&b, &cache.get(2).unwrap()),
        "capacity 2: table 2 was pushed out"
    );
    assert!(cache.get(99).is_err(), "a missing file is an error");
}

#[test]
fn concurrent_readers_share_a_small_cache() {
    let (t, cache, counters) = cached_table(5_000, 64 * 1024);
    std::thread::scope(|s| {
        for thread in 0..4u32 {
            let t = &t;
            s.spawn(move || {
                for round in 0..3 {
                    for i in (thread..5_000).step_by(37 + round) {
                        let (k, v) = t.get(&key(i)).unwrap().unwrap();
                        assert_eq!((k, v.len()), (key(i), 100));
                    }
                    assert_eq!(scan(t), 5_000);
                }
            });
        }
    });
    assert!(cache.usage() <= cache.capacity());
    let lookups = counters.cache_hits.load(Relaxed) + counters.cache_misses.load(Relaxed);
    assert!(lookups > 0);
}
