//! The SST reader (`kv_engine::sst::Table`) over arbitrary bytes: open, iterate, seek,
//! get, verify, and the bloom filter measurement `kvtool inspect` makes.
//!
//! Input: the bytes of a `.sst` file. Read as given, then with the footer and every
//! block checksum made valid (so mutations reach the index, filter, properties and data
//! block decoders). Checked: no panic, no endless iteration; and when `verify` calls the
//! table sound, iteration yields `properties().entries` keys in strictly increasing
//! order and `get` finds each of them.
#![no_main]

use kv_engine::iter::InternalIterator;
use kv_engine::key::compare_internal_keys;
use kv_engine::sst::{BlockCache, Table};
use kv_fuzz::{fix_block_checksum, fix_table_checksums, mem_file};
use libfuzzer_sys::fuzz_target;
use std::cmp::Ordering;
use std::path::Path;
use std::sync::Arc;

/// More entries than any seed holds; a reader that yields more is looping.
const MAX_ENTRIES: usize = 1 << 20;
/// Keys looked up with `get` and `seek` per table.
const MAX_LOOKUPS: usize = 64;

fuzz_target!(|data: &[u8]| {
    read(data);
    let mut fixed = data.to_vec();
    if !fix_table_checksums(&mut fixed) {
        return;
    }
    // Data block handles live in the index, which only the reader decodes.
    if let Some(table) = open(&fixed) {
        if let Ok(handles) = table.block_handles() {
            for h in handles {
                fix_block_checksum(&mut fixed, h.offset, h.size);
            }
        }
    }
    read(&fixed);
});

fn open(bytes: &[u8]) -> Option<Arc<Table>> {
    let path = Path::new("/db/000007.sst");
    let (_fs, file) = mem_file(path, bytes);
    let cache = Some(BlockCache::new(64 * 1024));
    Table::open(path.to_path_buf(), file, 7, cache, Arc::default()).ok()
}

fn read(bytes: &[u8]) {
    let Some(table) = open(bytes) else {
        return;
    };
    let sound = table.verify().is_ok();
    let _ = table.block_handles();
    let _ = table.measure_bloom_fp_rate(8);

    let mut keys = Vec::new();
    let mut it = table.iter();
    it.seek_to_first();
    while it.valid() {
        assert!(keys.len() < MAX_ENTRIES, "iteration does not end");
        keys.push(it.key().to_vec());
        it.next();
    }
    let iter_ok = it.status().is_ok();
    for key in keys.iter().step_by(keys.len() / MAX_LOOKUPS + 1) {
        let got = table.get(key);
        it.seek(key);
        if sound {
            let found = got.expect("get on a verified table").map(|(k, _)| k);
            assert_eq!(found.as_ref(), Some(key), "get misses an iterated key");
            assert!(
                it.valid() && it.key() == &key[..],
                "seek misses an iterated key"
            );
        }
    }
    if sound {
        assert!(iter_ok, "iteration fails on a verified table");
        assert_eq!(keys.len() as u64, table.properties().entries);
        for pair in keys.windows(2) {
            let order = compare_internal_keys(&pair[0], &pair[1]);
            assert_eq!(
                order,
                Ordering::Less,
                "verified table iterates out of order"
            );
        }
    }
}
