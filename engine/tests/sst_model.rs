//! Model test: random sorted internal keys and values are written to a table on MemFs
//! and read back by full iteration, seeks and point lookups, which must agree with a
//! sorted vector, for every combination of compression, block size and bloom filter.

use kv_engine::fs::{Fs, MemFs};
use kv_engine::iter::InternalIterator;
use kv_engine::key::{compare_internal_keys, lookup_key, make_internal_key, user_key, ValueKind};
use kv_engine::options::Compression;
use kv_engine::sst::{BlockCache, SstCounters, Table, TableBuilder, TableOptions};
use proptest::prelude::*;
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

fn build(
    fs: &MemFs,
    path: &Path,
    entries: &Entries,
    opts: TableOptions,
) -> kv_engine::sst::TableProperties {
    let mut b = TableBuilder::new(path.to_path_buf(), fs.create(path).unwrap(), opts);
    for (k, v) in entries {
        b.add(k, v).unwrap();
    }
    assert_eq!(b.num_entries(), entries.len() as u64);
    b.finish().unwrap()
}

fn open(fs: &MemFs, path: &Path, cache: Option<Arc<BlockCache>>) -> Arc<Table> {
    Table::open(
        path.to_path_buf(),
        fs.open(path).unwrap(),
        1,
        cache,
        Arc::new(SstCounters::default()),
    )
    .unwrap()
}

fn collect(it: &mut dyn InternalIterator) -> Entries {
    let mut out = Vec::new();
    while it.valid() {
        out.push((it.key().to_vec(), it.value().to_vec()));
        it.next();
    }
    it.status().unwrap();
    out
}

fn lower_bound(entries: &Entries, target: &[u8]) -> usize {
    entries.partition_point(|(k, _)| compare_internal_keys(k, target) == Ordering::Less)
}

/// User keys from a small alphabet (so versions and shared prefixes are common), some
/// long; each with 1..4 versions of mixed kinds; values often empty.
fn entries_strategy() -> impl Strategy<Value = Entries> {
    let user_key = prop_oneof![
        8 => proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(0u8), Just(0xffu8)], 0..12),
        1 => proptest::collection::vec(any::<u8>(), 200..600),
    ];
    let versions = proptest::collection::vec(
        (
            1u64..1000,
            prop_oneof![Just(ValueKind::Put), Just(ValueKind::Delete)],
            prop_oneof![Just(vec![]), proptest::collection::vec(any::<u8>(), 0..300)],
        ),
        1..4,
    );
    proptest::collection::btree_map(user_key, versions, 0..300).prop_map(|m| {
        let mut out: Entries = Vec::new();
        for (uk, vs) in m {
            for (seq, kind, value) in vs {
                out.push((make_internal_key(&uk, seq, kind), value));
            }
        }
        out.sort_by(|a, b| compare_internal_keys(&a.0, &b.0));
        out.dedup_by(|a, b| compare_internal_keys(&a.0, &b.0) == Ordering::Equal);
        out
    })
}

fn options_strategy() -> impl Strategy<Value = TableOptions> {
    (
        prop_oneof![Just(64usize), Just(512), Just(4096)],
        prop_oneof![Just(1usize), Just(4), Just(16)],
        prop_oneof![Just(0usize), Just(10)],
        prop_oneof![Just(Compression::None), Just(Compression::Lz4)],
    )
        .prop_map(
            |(block_size, restart_interval, bloom_bits_per_key, compression)| TableOptions {
                block_size,
                restart_interval,
                bloom_bits_per_key,
                compression,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn table_agrees_with_sorted_model(
        entries in entries_strategy(),
        opts in options_strategy(),
        probes in proptest::collection::vec((proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(0u8), Just(0xffu8)], 0..12), 0u64..1100), 20),
        cached in any::<bool>(),
    ) {
        let fs = MemFs::new();
        let path = PathBuf::from("/db/000001.sst");
        let props = build(&fs, &path, &entries, opts);
        prop_assert_eq!(props.entries, entries.len() as u64);
        prop_assert_eq!(props.file_size, fs.len_of(&path).unwrap() as u64);
        let cache = cached.then(|| BlockCache::new(64 * 1024));
        let table = open(&fs, &path, cache);
        let mut read_props = table.properties().clone();
        prop_assert_eq!(&read_props, &props);
        read_props.entries = 0;

        let mut it = table.iter();
        it.seek_to_first();
        prop_assert_eq!(&collect(&mut it), &entries);
        table.verify().unwrap();

        for (uk, seq) in &probes {
            let target = lookup_key(uk, *seq);
            let i = lower_bound(&entries, &target);
            it.seek(&target);
            match entries.get(i) {
                Some((k, v)) => {
                    prop_assert!(it.valid());
                    prop_assert_eq!(it.key(), &k[..]);
                    prop_assert_eq!(it.value(), &v[..]);
                }
                None => prop_assert!(!it.valid()),
            }
            let expected = entries.get(i).filter(|(k, _)| user_key(k) == &uk[..]).cloned();
            prop_assert_eq!(table.get(&target).unwrap(), expected);
        }
        // Every stored key is found by a lookup at its own sequence.
        for (k, v) in entries.iter().step_by(7) {
            let got = table.get(k).unwrap();
            prop_assert_eq!(got, Some((k.clone(), v.clone())));
            prop_assert!(table.may_contain(user_key(k)));
        }
    }
}

#[test]
fn empty_table_opens_and_is_empty() {
    let fs = MemFs::new();
    let path = PathBuf::from("/e.sst");
    let props = build(&fs, &path, &vec![], TableOptions::default());
    assert_eq!((props.entries, props.data_blocks), (0, 0));
    let t = open(&fs, &path, None);
    let mut it = t.iter();
    it.seek_to_first();
    assert!(!it.valid());
    assert_eq!(t.get(&lookup_key(b"x", 5)).unwrap(), None);
    t.verify().unwrap();
    assert!(t.block_handles().unwrap().is_empty());
}

#[test]
fn properties_count_kinds_sequences_and_blocks() {
    let fs = MemFs::new();
    let path = PathBuf::from("/p.sst");
    let mut entries = Vec::new();
    for i in 0..1000u64 {
        let kind = if i % 10 == 0 {
            ValueKind::Delete
        } else {
            ValueKind::Put
        };
        entries.push((
            make_internal_key(format!("key{i:06}").as_bytes(), 100 + i, kind),
            vec![b'v'; 50],
        ));
    }
    let opts = TableOptions {
        compression: Compression::None,
        ..TableOptions::default()
    };
    let props = build(&fs, &path, &entries, opts);
    assert_eq!(props.entries, 1000);
    assert_eq!(props.deletions, 100);
    assert_eq!((props.smallest_seq, props.largest_seq), (100, 1099));
    assert_eq!(props.raw_value_bytes, 50_000);
    assert_eq!(props.raw_key_bytes, 1000 * (9 + 8));
    assert_eq!(props.smallest_key, entries[0].0);
    assert_eq!(props.largest_key, entries[999].0);
    assert_eq!(props.restart_interval, 16);
    assert_eq!(props.bloom_bits_per_key, 10);
    let t = open(&fs, &path, None);
    let handles = t.block_handles().unwrap();
    assert_eq!(handles.len() as u64, props.data_blocks);
    assert!(props.data_blocks > 10, "75 KB in 4 KiB blocks");
    for w in handles.windows(2) {
        assert_eq!(w[0].offset + w[0].size + 5, w[1].offset);
    }
}

#[test]
fn lz4_shrinks_compressible_tables() {
    let fs = MemFs::new();
    let entries: Entries = (0..2000u32)
        .map(|i| {
            (
                make_internal_key(format!("user:{i:08}").as_bytes(), 1, ValueKind::Put),
                b"hello world ".repeat(8),
            )
        })
        .collect();
    let plain = build(
        &fs,
        Path::new("/a.sst"),
        &entries,
        TableOptions {
            compression: Compression::None,
            ..TableOptions::default()
        },
    );
    let lz4 = build(
        &fs,
        Path::new("/b.sst"),
        &entries,
        TableOptions {
            compression: Compression::Lz4,
            ..TableOptions::default()
        },
    );
    assert!(
        lz4.file_size * 2 < plain.file_size,
        "lz4 {} vs plain {}",
        lz4.file_size,
        plain.file_size
    );
    let t = open(&fs, Path::new("/b.sst"), None);
    let mut it = t.iter();
    it.seek_to_first();
    assert_eq!(collect(&mut it), entries);
}

#[test]
fn bloom_false_positive_rate_at_ten_bits_is_below_three_percent() {
    let fs = MemFs::new();
    let path = PathBuf::from("/bloom.sst");
    let entries: Entries = (0..10_000u32)
        .map(|i| {
            (
                make_internal_key(format!("present-{i}").as_bytes(), 1, ValueKind::Put),
                vec![],
            )
        })
        .collect::<std::collections::BTreeMap<_, _>>()
        .into_iter()
        .collect();
    let mut sorted = entries;
    sorted.sort_by(|a, b| compare_internal_keys(&a.0, &b.0));
    build(&fs, &path, &sorted, TableOptions::default());
    let counters = Arc::new(SstCounters::default());
    let t = Table::open(
        path.clone(),
        fs.open(&path).unwrap(),
        1,
        None,
        counters.clone(),
    )
    .unwrap();
    let measured = t.measure_bloom_fp_rate(10_000);
    assert!(measured < 0.03, "measured fp rate {measured}");
    let mut fp = 0;
    for i in 0..10_000u32 {
        if t.get(&lookup_key(format!("absent-{i}").as_bytes(), 9))
            .unwrap()
            .is_some()
        {
            panic!("absent key found");
        }
        fp += t.may_contain(format!("absent-{i}").as_bytes()) as u32;
    }
    assert!(fp < 300, "{fp} false positives in 10000");
    assert_eq!(counters.bloom_checks.load(Relaxed), 10_000);
    assert_eq!(
        counters.bloom_negatives.load(Relaxed) + counters.bloom_false_positives.load(Relaxed),
        10_000
    );
    assert_eq!(counters.bloom_false_positives.load(Relaxed), fp as u64);
}

#[test]
fn no_filter_means_every_key_may_match() {
    let fs = MemFs::new();
    let path = PathBuf::from("/nf.sst");
    let entries = vec![(make_internal_key(b"k", 1, ValueKind::Put), b"v".to_vec())];
    let props = build(
        &fs,
        &path,
        &entries,
        TableOptions {
            bloom_bits_per_key: 0,
            ..TableOptions::default()
        },
    );
    assert_eq!(props.filter_size, 0);
    let t = open(&fs, &path, None);
    assert!(t.may_contain(b"anything"));
    assert_eq!(t.measure_bloom_fp_rate(10), 1.0);
}

#[test]
fn estimated_size_tracks_the_file() {
    let fs = MemFs::new();
    let path = PathBuf::from("/s.sst");
    let mut b = TableBuilder::new(
        path.clone(),
        fs.create(&path).unwrap(),
        TableOptions {
            compression: Compression::None,
            ..TableOptions::default()
        },
    );
    let mut last = 0;
    for i in 0..5000u32 {
        b.add(
            &make_internal_key(format!("{i:08}").as_bytes(), 1, ValueKind::Put),
            &[7; 100],
        )
        .unwrap();
        let est = b.estimated_size();
        assert!(est >= last);
        last = est;
    }
    let props = b.finish().unwrap();
    assert!(
        last <= props.file_size && props.file_size < last + last / 10,
        "{last} vs {}",
        props.file_size
    );
}

fn builder_with_one_key() -> TableBuilder {
    let fs = MemFs::new();
    let path = PathBuf::from("/o.sst");
    let mut b = TableBuilder::new(
        path.clone(),
        fs.create(&path).unwrap(),
        TableOptions::default(),
    );
    b.add(&make_internal_key(b"m", 5, ValueKind::Put), b"")
        .unwrap();
    b
}

#[test]
fn keys_shorter_than_a_trailer_are_refused() {
    let mut b = builder_with_one_key();
    assert!(matches!(
        b.add(b"short", b""),
        Err(kv_engine::Error::InvalidArgument(_))
    ));
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "out of order")]
fn out_of_order_keys_panic_in_debug_builds() {
    let mut b = builder_with_one_key();
    let _ = b.add(&make_internal_key(b"a", 5, ValueKind::Put), b"");
}

#[test]
#[cfg(not(debug_assertions))]
fn out_of_order_keys_are_invalid_argument_in_release_builds() {
    let mut b = builder_with_one_key();
    let same = b.add(&make_internal_key(b"m", 5, ValueKind::Put), b"");
    assert!(matches!(same, Err(kv_engine::Error::InvalidArgument(_))));
    let older_first = b.add(&make_internal_key(b"m", 6, ValueKind::Put), b"");
    assert!(matches!(
        older_first,
        Err(kv_engine::Error::InvalidArgument(_))
    ));
    assert_eq!(b.num_entries(), 1);
}
