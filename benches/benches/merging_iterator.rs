//! The k-way merge under every scan and compaction: 4 sorted runs of 16-byte user keys.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kv_benches::dbbench::workload::make_key;
use kv_engine::iter::{InternalIterator, MergingIterator, VecIterator};
use kv_engine::key::{compare_internal_keys, make_internal_key, ValueKind};

const RUNS: u64 = 4;
const PER_RUN: u64 = 25_000;

/// Run r holds keys r, r + RUNS, r + 2 RUNS, ... so the merge interleaves all runs.
fn runs() -> Vec<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut key = [0u8; 16];
    (0..RUNS)
        .map(|r| {
            (0..PER_RUN)
                .map(|i| {
                    let n = i * RUNS + r;
                    make_key(n, &mut key);
                    (
                        make_internal_key(&key, n + 1, ValueKind::Put),
                        vec![b'v'; 100],
                    )
                })
                .collect()
        })
        .collect()
}

fn merged(runs: &[Vec<(Vec<u8>, Vec<u8>)>]) -> MergingIterator {
    MergingIterator::new(
        runs.iter()
            .map(|r| Box::new(VecIterator::new(r.clone())) as Box<dyn InternalIterator>)
            .collect(),
    )
}

fn bench(c: &mut Criterion) {
    let data = runs();
    let mut g = c.benchmark_group("merging_iterator");
    g.throughput(Throughput::Elements(RUNS * PER_RUN));
    g.bench_function("full_scan_4_runs_100k", |b| {
        b.iter_batched(
            || merged(&data),
            |mut it| {
                it.seek_to_first();
                let mut n = 0u64;
                while it.valid() {
                    n += it.value().len() as u64;
                    it.next();
                }
                n
            },
            BatchSize::LargeInput,
        )
    });
    g.throughput(Throughput::Elements(1));
    let mut key = [0u8; 16];
    make_key(RUNS * PER_RUN / 2, &mut key);
    let target = make_internal_key(&key, u64::MAX >> 8, ValueKind::Put);
    let mut it = merged(&data);
    g.bench_function("seek_4_runs", |b| {
        b.iter(|| {
            it.seek(&target);
            it.valid()
        })
    });
    let (a, bk) = (&data[0][10].0, &data[1][10].0);
    g.bench_function("compare_internal_keys", |b| {
        b.iter(|| compare_internal_keys(a, bk))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
