//! One SSTable of 100k entries (16-byte keys, 100-byte values, LZ4, 10 bloom bits/key):
//! point lookups through the block cache, bloom probes for absent keys, and seeks.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kv_benches::dbbench::workload::{make_key, KeyRng, ValueGenerator};
use kv_engine::fs::{Fs, MemFs};
use kv_engine::iter::InternalIterator;
use kv_engine::key::{lookup_key, make_internal_key, ValueKind};
use kv_engine::sst::{BlockCache, SstCounters, Table, TableBuilder, TableOptions};
use std::path::PathBuf;
use std::sync::Arc;

const KEYS: u64 = 100_000;

fn build() -> Arc<Table> {
    let fs = MemFs::new();
    let path = PathBuf::from("/bench/000001.sst");
    fs.create_dir_all(path.parent().expect("parent"))
        .expect("mkdir");
    let file = fs.create(&path).expect("create");
    let mut b = TableBuilder::new(path.clone(), file, TableOptions::default());
    let mut values = ValueGenerator::new(100, 0.5);
    let mut key = [0u8; 16];
    for i in 0..KEYS {
        make_key(i, &mut key);
        let ik = make_internal_key(&key, i + 1, ValueKind::Put);
        b.add(&ik, values.generate(100)).expect("add");
    }
    b.finish().expect("finish");
    let file = fs.open(&path).expect("open");
    let cache = BlockCache::new(64 << 20);
    Table::open(path, file, 1, Some(cache), Arc::new(SstCounters::default())).expect("table")
}

fn bench(c: &mut Criterion) {
    let table = build();
    let mut g = c.benchmark_group("sstable");
    g.throughput(Throughput::Elements(1));
    let mut rng = KeyRng::new(3, 0);
    let mut key = [0u8; 16];
    g.bench_function("get_hit_cached", |b| {
        b.iter(|| {
            make_key(rng.below(KEYS), &mut key);
            table.get(&lookup_key(&key, u64::MAX >> 8)).expect("get")
        })
    });
    let mut missing = [0u8; 17];
    g.bench_function("bloom_probe_absent", |b| {
        b.iter(|| {
            make_key(rng.below(KEYS), &mut missing);
            table.may_contain(&missing)
        })
    });
    g.bench_function("get_absent", |b| {
        b.iter(|| {
            make_key(rng.below(KEYS), &mut missing);
            table
                .get(&lookup_key(&missing, u64::MAX >> 8))
                .expect("get")
        })
    });
    let mut it = table.iter();
    g.bench_function("iter_seek_random", |b| {
        b.iter(|| {
            make_key(rng.below(KEYS), &mut key);
            it.seek(&lookup_key(&key, u64::MAX >> 8));
            it.valid()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
