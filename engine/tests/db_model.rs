//! Model-based test of the whole Db: random batches, gets, scans, snapshots, flushes,
//! compactions and reopenings against a BTreeMap per keyspace.

mod common;

use common::{contents, dir, mem_fs, tiny_options};
use kv_engine::{Db, Keyspace, WriteBatch};
use proptest::prelude::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Op {
    Batch(Vec<(bool, u8, u16, u16)>), // (is_put, keyspace 0/1, key, value)
    DeleteRange(u8, u16, u16),
    Get(u8, u16),
    Scan(u8, u16, u16),
    TakeSnapshot,
    CheckSnapshot,
    Flush,
    Compact,
    Reopen,
}

fn key(k: u16) -> Vec<u8> {
    format!("key{:05}", k % 400).into_bytes()
}

fn value(v: u16) -> Vec<u8> {
    // Varying lengths, some long enough to span blocks.
    let len = (v as usize * 7) % 300;
    let mut out = format!("v{v}-").into_bytes();
    out.resize(out.len() + len, b'x');
    out
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => proptest::collection::vec((any::<bool>(), 0u8..2, any::<u16>(), any::<u16>()), 1..20).prop_map(Op::Batch),
        3 => (0u8..2, any::<u16>()).prop_map(|(ks, k)| Op::Get(ks, k)),
        1 => (0u8..2, any::<u16>(), any::<u16>()).prop_map(|(ks, a, b)| Op::DeleteRange(ks, a, b)),
        1 => (0u8..2, any::<u16>(), any::<u16>()).prop_map(|(ks, a, b)| Op::Scan(ks, a, b)),
        1 => Just(Op::TakeSnapshot),
        1 => Just(Op::CheckSnapshot),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

type Model = [BTreeMap<Vec<u8>, Vec<u8>>; 2];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn db_matches_btreemap_model(ops in proptest::collection::vec(op(), 1..120)) {
        let (_mem, fs) = mem_fs();
        let opts = tiny_options(fs);
        let mut db = Db::open(dir(), opts.clone()).unwrap();
        let mut ks = [Keyspace::DEFAULT, db.keyspace("second").unwrap()];
        let mut model: Model = Default::default();
        let mut snapshot: Option<(kv_engine::Snapshot, Model)> = None;
        let mut last_seq = 0;

        for op in ops {
            match op {
                Op::Batch(writes) => {
                    let mut b = WriteBatch::new();
                    for (put, k_s, k, v) in &writes {
                        let i = *k_s as usize;
                        if *put {
                            b.put(ks[i], &key(*k), &value(*v));
                            model[i].insert(key(*k), value(*v));
                        } else {
                            b.delete(ks[i], &key(*k));
                            model[i].remove(&key(*k));
                        }
                    }
                    let first = db.write(b).unwrap();
                    prop_assert!(first > last_seq, "sequence numbers must grow");
                    last_seq = first + writes.len() as u64 - 1;
                }
                Op::DeleteRange(k_s, a, b) => {
                    let i = k_s as usize;
                    let (ka, kb) = (key(a), key(b));
                    let (lo, hi) = if ka <= kb { (ka, kb) } else { (kb, ka) };
                    let seq = db.delete_range(ks[i], &lo, &hi).unwrap();
                    prop_assert!(seq > last_seq);
                    last_seq = seq;
                    model[i].retain(|k, _| *k < lo || *k >= hi);
                }
                Op::Get(k_s, k) => {
                    let i = k_s as usize;
                    let got = db.get(ks[i], &key(k)).unwrap().map(|v| v.value.to_vec());
                    prop_assert_eq!(got, model[i].get(&key(k)).cloned());
                }
                Op::Scan(k_s, a, b) => {
                    let i = k_s as usize;
                    let (ka, kb) = (key(a), key(b));
                    let (lo, hi) = if ka <= kb { (ka, kb) } else { (kb, ka) };
                    let got: Vec<_> = db.iter(ks[i], Some(&lo), Some(&hi), None).unwrap()
                        .map(|e| e.unwrap()).map(|e| (e.key.to_vec(), e.value.to_vec())).collect();
                    let want: Vec<_> = model[i].range(lo.clone()..hi.clone()).map(|(k, v)| (k.clone(), v.clone())).collect();
                    prop_assert_eq!(&got, &want);
                    // The same scan with borrowed entries.
                    let mut it = db.iter(ks[i], Some(&lo), Some(&hi), None).unwrap();
                    let mut borrowed = Vec::new();
                    while let Some(e) = it.next_ref() {
                        let e = e.unwrap();
                        borrowed.push((e.key.to_vec(), e.value.to_vec()));
                    }
                    prop_assert_eq!(borrowed, want);
                }
                Op::TakeSnapshot => snapshot = Some((db.snapshot(), model.clone())),
                Op::CheckSnapshot => {
                    if let Some((snap, frozen)) = &snapshot {
                        for i in 0..2 {
                            let got: BTreeMap<_, _> = db.iter(ks[i], None, None, Some(snap)).unwrap()
                                .map(|e| e.unwrap()).map(|e| (e.key.to_vec(), e.value.to_vec())).collect();
                            prop_assert_eq!(&got, &frozen[i]);
                            for (k, v) in frozen[i].iter().take(5) {
                                let got = db.get_at(ks[i], k, snap).unwrap().map(|v| v.value.to_vec());
                                prop_assert_eq!(got.as_ref(), Some(v));
                            }
                        }
                    }
                }
                Op::Flush => db.flush().unwrap(),
                Op::Compact => db.compact_range(ks[0], None, None).unwrap(),
                Op::Reopen => {
                    snapshot = None;
                    db.close().unwrap();
                    db = Db::open(dir(), opts.clone()).unwrap();
                    ks = [Keyspace::DEFAULT, db.keyspace("second").unwrap()];
                    prop_assert!(db.latest_sequence() >= last_seq, "sequence went back after reopen");
                }
            }
        }
        for i in 0..2 {
            prop_assert_eq!(&contents(&db, ks[i]), &model[i]);
        }
        db.close().unwrap();
    }
}
