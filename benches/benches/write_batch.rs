//! Write batch encoding and decoding: every write pays the encode, recovery pays the decode.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kv_benches::dbbench::workload::{make_key, ValueGenerator};
use kv_engine::{Keyspace, WriteBatch};

fn batch_of(ops: u64) -> WriteBatch {
    let mut values = ValueGenerator::new(100, 0.5);
    let mut key = [0u8; 16];
    let mut b = WriteBatch::new();
    for i in 0..ops {
        make_key(i, &mut key);
        b.put(Keyspace::DEFAULT, &key, values.generate(100));
    }
    b
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("write_batch");
    for ops in [1u64, 100] {
        g.throughput(Throughput::Elements(ops));
        g.bench_function(format!("encode_{ops}x16B_100B"), |b| {
            b.iter(|| batch_of(ops))
        });
        let encoded = batch_of(ops).encoded().to_vec();
        g.bench_function(format!("decode_{ops}x16B_100B"), |b| {
            b.iter(|| WriteBatch::decode(&encoded).map(|d| d.len()))
        });
        g.bench_function(format!("iterate_ops_{ops}"), |b| {
            b.iter_batched(
                || batch_of(ops),
                |batch| {
                    batch
                        .ops()
                        .map(|op| op.key.len() + op.value.len())
                        .sum::<usize>()
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
