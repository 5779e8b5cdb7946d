//! Write batch encoding and decoding: every write pays the encode, recovery pays the decode.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kv_benches::dbbench::workload::{make_key, ValueGenerator};
use kv_engine::{Keyspace, WriteBatch};

/// Keys and values made once, outside the timed code.
fn inputs(ops: u64) -> Vec<([u8; 16], Vec<u8>)> {
    let mut values = ValueGenerator::new(100, 0.5);
    (0..ops)
        .map(|i| {
            let mut key = [0u8; 16];
            make_key(i, &mut key);
            (key, values.generate(100).to_vec())
        })
        .collect()
}

fn encode(inputs: &[([u8; 16], Vec<u8>)]) -> WriteBatch {
    let mut b = WriteBatch::new();
    for (k, v) in inputs {
        b.put(Keyspace::DEFAULT, k, v);
    }
    b
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("write_batch");
    for ops in [1u64, 100] {
        let data = inputs(ops);
        g.throughput(Throughput::Elements(ops));
        g.bench_function(format!("encode_{ops}x16B_100B"), |b| {
            b.iter(|| encode(&data))
        });
        let batch = encode(&data);
        let encoded = batch.encoded().to_vec();
        g.bench_function(format!("decode_{ops}x16B_100B"), |b| {
            b.iter(|| WriteBatch::decode(&encoded).map(|d| d.len()))
        });
        g.bench_function(format!("iterate_ops_{ops}"), |b| {
            b.iter(|| {
                batch
                    .ops()
                    .map(|op| op.key.len() + op.value.len())
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
