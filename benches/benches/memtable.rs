//! The memtable every write lands in and every read checks first: insert and point lookup
//! of 16-byte keys with 100-byte values, in random order.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kv_benches::dbbench::workload::{make_key, KeyRng, ValueGenerator};
use kv_engine::key::ValueKind;
use kv_engine::memtable::Memtable;

const KEYS: u64 = 200_000;

fn filled() -> Memtable {
    let m = Memtable::new();
    let mut values = ValueGenerator::new(100, 0.5);
    let mut rng = KeyRng::new(1, 0);
    let mut key = [0u8; 16];
    for seq in 1..=KEYS {
        make_key(rng.below(KEYS), &mut key);
        m.add(seq, ValueKind::Put, &key, values.generate(100));
    }
    m
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("memtable");
    g.throughput(Throughput::Elements(1));
    let mut values = ValueGenerator::new(100, 0.5);
    let mut rng = KeyRng::new(2, 0);
    let mut key = [0u8; 16];
    let mut seq = 0u64;
    // Inserts 10k random keys into a fresh memtable per iteration (setup is not timed).
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("insert_10k_random", |b| {
        b.iter_batched_ref(
            Memtable::new,
            |m| {
                for _ in 0..10_000 {
                    seq += 1;
                    make_key(rng.below(KEYS), &mut key);
                    m.add(seq, ValueKind::Put, &key, values.generate(100));
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.throughput(Throughput::Elements(1));
    let m = filled();
    g.bench_function("get_random_of_200k", |b| {
        b.iter(|| {
            make_key(rng.below(KEYS), &mut key);
            m.get(&key, u64::MAX >> 8)
        })
    });
    let mut missing = [0u8; 17];
    g.bench_function("get_missing_of_200k", |b| {
        b.iter(|| {
            make_key(rng.below(KEYS), &mut missing);
            m.get(&missing, u64::MAX >> 8)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
