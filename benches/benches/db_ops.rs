//! Whole-engine point operations on a temp directory: put (WAL append + memtable insert,
//! no fsync) and get from the memtable and, after a flush, from an SSTable.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kv_benches::dbbench::workload::{make_key, KeyRng, ValueGenerator};
use kv_engine::{Db, FsyncPolicy, Keyspace, Options};

const KEYS: u64 = 100_000;

fn open(dir: &std::path::Path) -> Db {
    let opts = Options {
        fsync: FsyncPolicy::No,
        ..Options::default()
    };
    Db::open(dir, opts).expect("open")
}

fn fill(db: &Db) {
    let mut values = ValueGenerator::new(100, 0.5);
    let mut key = [0u8; 16];
    for i in 0..KEYS {
        make_key(i, &mut key);
        db.put(Keyspace::DEFAULT, &key, values.generate(100))
            .expect("put");
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("db");
    g.throughput(Throughput::Elements(1));
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let mut values = ValueGenerator::new(100, 0.5);
    let mut rng = KeyRng::new(7, 0);
    let mut key = [0u8; 16];
    g.bench_function("put_random_16B_100B", |b| {
        b.iter(|| {
            make_key(rng.below(KEYS), &mut key);
            db.put(Keyspace::DEFAULT, &key, values.generate(100))
                .expect("put")
        })
    });
    fill(&db);
    g.bench_function("get_hit_memtable", |b| {
        b.iter(|| {
            make_key(rng.below(KEYS), &mut key);
            db.get(Keyspace::DEFAULT, &key).expect("get")
        })
    });
    db.flush().expect("flush");
    g.bench_function("get_hit_sstable", |b| {
        b.iter(|| {
            make_key(rng.below(KEYS), &mut key);
            db.get(Keyspace::DEFAULT, &key).expect("get")
        })
    });
    let mut missing = [0u8; 17];
    g.bench_function("get_miss_sstable_bloom", |b| {
        b.iter(|| {
            make_key(rng.below(KEYS), &mut missing);
            db.get(Keyspace::DEFAULT, &missing).expect("get")
        })
    });
    g.finish();
    db.close().expect("close");
}

criterion_group!(benches, bench);
criterion_main!(benches);
