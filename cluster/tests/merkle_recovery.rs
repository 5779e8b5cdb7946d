//! The tree after a restart with to-dos pending, re-folding, damage that only the
//! rebuild from data can see, and folds and rebuilds racing the writers that put leaves
//! beside their records.

mod replica_support;

use kv_cluster::replica_api::{ItemKey, WriteItem};
use kv_cluster::replica_store::ReplicaStore;
use kv_engine::WriteBatch;
use kv_keyspace::data_key::data_key;
use kv_keyspace::slot::key_partition;
use replica_support::*;

fn some_writes(count: usize, ts: u64) -> Vec<WriteItem> {
    (0..count)
        .map(|i| {
            let k = key((i % 3) as u32, &format!("user:{i}"));
            if i % 5 == 0 {
                delete(&k, ts)
            } else {
                put(&k, ts, &format!("value {i}"))
            }
        })
        .collect()
}

/// Writes `items` the way a writer without the keys' stripe locks does (and every write
/// of builds before 2026-12-04 did): each record with a to-do naming its key, no leaf.
fn write_with_todos(store: &ReplicaStore, items: &[WriteItem]) {
    let mut batch = WriteBatch::new();
    let mut todos = store.merkle().begin_todos();
    for item in items {
        batch.put(
            store.data_keyspace(),
            &data_key(item.key.db, &item.key.key),
            &item.record.encode(),
        );
        todos.add(&mut batch, &item.key);
    }
    store.db().write(batch).unwrap();
}

fn tree(store: &ReplicaStore) -> Vec<[u8; 16]> {
    store.merkle().roots(&all_partitions()).unwrap()
}

fn rebuild_all(store: &ReplicaStore) -> usize {
    all_partitions()
        .into_iter()
        .map(|p| store.merkle().rebuild_partition(p).unwrap())
        .sum()
}

#[test]
fn after_reopen_with_todos_pending_the_tree_equals_a_rebuild_from_data() {
    let dir = tempfile::tempdir().unwrap();
    let writes = [some_writes(300, 10), some_writes(30, 11)].concat();
    let extra: Vec<_> = (0..5)
        .map(|i| put(&key(4, &format!("new:{i}")), 12, "n"))
        .collect();
    let (old, new) = writes.split_at(200);
    {
        let store = open_store(dir.path());
        for batch in old.chunks(40) {
            write_with_todos(&store, batch);
        }
    } // closed with every to-do pending
    {
        let store = open_store(dir.path());
        // New to-dos must be numbered after the pending ones (reusing a number would
        // overwrite a pending to-do and lose its leaf).
        write_with_todos(&store, new);
        // Leaves written beside their records mix with the backlog.
        store.apply(&extra).unwrap();
        assert_eq!(store.merkle().process_todos(100).unwrap(), 100);
    } // closed with part of the backlog folded
    let store = open_store(dir.path());
    assert_eq!(
        store.merkle().process_todos(usize::MAX).unwrap(),
        writes.len() - 100
    );
    let folded = tree(&store);
    assert_eq!(rebuild_all(&store), 0, "folding after reopen missed leaves");
    assert_eq!(tree(&store), folded);
    // And it is the tree of a replica fed the same data in one go.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = open_store(fresh_dir.path());
    fresh.apply(&[writes, extra].concat()).unwrap();
    assert_eq!(tree(&fresh), folded);
}

#[test]
fn folding_a_todo_again_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let writes = some_writes(100, 10);
    store.apply(&writes).unwrap();
    let before = tree(&store);
    // Replay every to-do, as a crash between folding and deleting them would.
    let mut batch = WriteBatch::new();
    let mut todos = store.merkle().begin_todos();
    for w in &writes {
        todos.add(&mut batch, &w.key);
    }
    store.db().write(batch).unwrap();
    drop(todos);
    assert_eq!(
        store.merkle().process_todos(usize::MAX).unwrap(),
        writes.len()
    );
    assert_eq!(store.merkle().process_todos(usize::MAX).unwrap(), 0);
    assert_eq!(tree(&store), before);
}

#[test]
fn writes_behind_the_trees_back_are_found_by_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    store.apply(&some_writes(200, 10)).unwrap();
    let honest_dir = tempfile::tempdir().unwrap();
    let honest = open_store(honest_dir.path());
    honest.apply(&some_writes(200, 10)).unwrap();
    assert_eq!(tree(&store), tree(&honest));

    // A newer record put straight into the engine: no to-do, so the tree cannot know.
    let changed: ItemKey = key(1, "user:1");
    let newer = put(&changed, 20, "sneaky");
    store
        .db()
        .put(
            store.data_keyspace(),
            &data_key(1, &changed.key),
            &newer.record.encode(),
        )
        .unwrap();
    // A record deleted straight from the engine: its leaf is left behind.
    let removed = key(2, "user:2");
    store
        .db()
        .delete(store.data_keyspace(), &data_key(2, &removed.key))
        .unwrap();
    assert_eq!(
        tree(&store),
        tree(&honest),
        "the tree saw a write it was not told of"
    );

    let p_changed = key_partition(&changed.key);
    let p_removed = key_partition(&removed.key);
    let wrong = store.merkle().rebuild_partition(p_changed).unwrap()
        + if p_removed == p_changed {
            0
        } else {
            store.merkle().rebuild_partition(p_removed).unwrap()
        };
    assert_eq!(wrong, 2);
    assert_eq!(rebuild_all(&store), 0);

    // Now the tree is that of a replica that saw the same data honestly.
    honest.apply(&[newer]).unwrap();
    let third_dir = tempfile::tempdir().unwrap();
    let expected = open_store(third_dir.path());
    let mut writes = some_writes(200, 10);
    writes.retain(|w| w.key != removed);
    expected.apply(&writes).unwrap();
    expected.apply(&[put(&changed, 20, "sneaky")]).unwrap();
    assert_eq!(tree(&store), tree(&expected));
}

#[test]
fn folding_never_skips_a_batch_still_being_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    // A batch takes its to-do number, then is slow to reach the engine...
    let slow = put(&key(0, "slow"), 1, "v");
    let mut batch = WriteBatch::new();
    let mut todos = store.merkle().begin_todos();
    batch.put(
        store.data_keyspace(),
        &data_key(0, &slow.key.key),
        &slow.record.encode(),
    );
    todos.add(&mut batch, &slow.key);
    // ...while later writes land and are folded.
    write_with_todos(&store, &some_writes(20, 1));
    assert_eq!(store.merkle().process_todos(usize::MAX).unwrap(), 20);
    store.db().write(batch).unwrap();
    drop(todos);
    // The slow batch's to-do is still folded, by the next query.
    let p = key_partition(&slow.key.key);
    let bucket = kv_cluster::merkle::bucket_of(&slow.key.key);
    let leaves = store.merkle().leaves(p, bucket).unwrap();
    assert!(
        leaves.iter().any(|l| l.key == slow.key),
        "the slow write has no leaf"
    );
    assert_eq!(rebuild_all(&store), 0);
}

/// `L partition bucket db key`, as docs/format/cluster-storage.md defines it.
fn leaf_engine_key(k: &ItemKey) -> Vec<u8> {
    let mut v = vec![b'L'];
    v.extend_from_slice(&key_partition(&k.key).to_be_bytes());
    v.push(kv_cluster::merkle::bucket_of(&k.key));
    v.extend_from_slice(&k.db.to_be_bytes());
    v.extend_from_slice(&k.key);
    v
}

#[test]
fn a_damaged_tree_is_reported_by_name_and_repaired_by_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let writes = some_writes(50, 10);
    store.apply(&writes).unwrap();
    let honest_dir = tempfile::tempdir().unwrap();
    let honest = open_store(honest_dir.path());
    honest.apply(&writes).unwrap();
    assert_eq!(tree(&store), tree(&honest)); // folds every to-do

    let tree_ks = store.db().keyspace("merkle").unwrap();
    let victim = &writes[1].key;
    let (p, bucket) = (
        key_partition(&victim.key),
        kv_cluster::merkle::bucket_of(&victim.key),
    );
    store
        .db()
        .put(tree_ks, &leaf_engine_key(victim), b"short")
        .unwrap();
    let err = store.merkle().leaves(p, bucket).unwrap_err().to_string();
    assert!(err.contains("Merkle leaf"), "{err}");
    assert_eq!(store.merkle().rebuild_partition(p).unwrap(), 1);
    assert_eq!(tree(&store), tree(&honest));

    // Damage met while folding is fixed on the way instead of stalling the folder.
    store
        .db()
        .put(tree_ks, &leaf_engine_key(victim), b"short")
        .unwrap();
    // Same hash tag, so same slot; then one key in 256 shares the bucket.
    let tag = String::from_utf8(victim.key.to_vec()).unwrap();
    let neighbour = (0..10_000)
        .map(|i| key(victim.db, &format!("{{{tag}}}n{i}")))
        .find(|k| key_partition(&k.key) == p && kv_cluster::merkle::bucket_of(&k.key) == bucket)
        .unwrap();
    store.apply(&[put(&neighbour, 10, "n")]).unwrap();
    honest.apply(&[put(&neighbour, 10, "n")]).unwrap();
    assert_eq!(tree(&store), tree(&honest));
    assert!(store.merkle().damaged_records() >= 1);
    assert_eq!(rebuild_all(&store), 0);
}

#[test]
fn folding_while_writers_write_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..3u64)
            .map(|t| {
                let store = &store;
                s.spawn(move || {
                    for round in 0..40u64 {
                        let items: Vec<_> = (0..8u64)
                            .map(|i| {
                                put(&key(0, &format!("w{t}:{}", round * 8 + i)), round + 1, "v")
                            })
                            .collect();
                        store.apply(&items).unwrap();
                    }
                })
            })
            .collect();
        let folder = s.spawn(|| {
            let mut folded = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                folded += store.merkle().process_todos(7).unwrap();
            }
            folded
        });
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        folder.join().unwrap();
    });
    // Whatever the interleaving, the tree ends up describing exactly the data.
    let folded = tree(&store);
    assert_eq!(rebuild_all(&store), 0);
    assert_eq!(tree(&store), folded);
}

#[test]
fn writers_racing_on_the_same_keys_leave_the_tree_of_the_data() {
    // Three writers write the same keys with interleaved versions (some of their
    // writes lose as Stale), each putting the leaf beside the record; a purger collects
    // tombstones; meanwhile to-dos naming the same keys keep arriving (as from a writer
    // without the stripes, or an older build), a folder folds them in small chunks by
    // reading the records back, and a rebuilder rebuilds the keys' partitions. Neither
    // may put a leaf it computed from a record back over a newer write's leaf, whatever
    // the interleaving (fold and rebuild take the stripe locks the writers hold).
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let done = std::sync::atomic::AtomicBool::new(false);
    let keys: Vec<ItemKey> = (0..12).map(|i| key(0, &format!("hot:{i}"))).collect();
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..3u64)
            .map(|t| {
                let (store, keys) = (&store, &keys);
                s.spawn(move || {
                    for round in 0..60u64 {
                        let ts = round * 3 + t + 1;
                        let items: Vec<_> = keys
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| !(*i as u64 + round + t).is_multiple_of(3))
                            .map(|(i, k)| match (i as u64 + round) % 4 {
                                0 => delete(k, ts),
                                _ => put(k, ts, &format!("{t}/{round}")),
                            })
                            .collect();
                        store.apply(&items).unwrap();
                    }
                })
            })
            .collect();
        let purger = s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                let tombstones: Vec<_> = keys
                    .iter()
                    .filter_map(|k| {
                        let r = store.get(k).unwrap()?;
                        matches!(r.body, kv_cluster::Body::Tombstone)
                            .then(|| (k.clone(), r.version))
                    })
                    .collect();
                store.purge_tombstones(&tombstones).unwrap();
            }
        });
        let todo_writer = s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                let mut batch = WriteBatch::new();
                let mut todos = store.merkle().begin_todos();
                for k in &keys {
                    todos.add(&mut batch, k);
                }
                store.db().write(batch).unwrap();
            }
        });
        let folder = s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                store.merkle().process_todos(3).unwrap();
            }
        });
        let rebuilder = s.spawn(|| {
            let mut partitions: Vec<u16> = keys.iter().map(|k| key_partition(&k.key)).collect();
            partitions.sort_unstable();
            partitions.dedup();
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                for &p in &partitions {
                    store.merkle().rebuild_partition(p).unwrap();
                }
            }
        });
        for w in writers {
            w.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Release);
        purger.join().unwrap();
        todo_writer.join().unwrap();
        folder.join().unwrap();
        rebuilder.join().unwrap();
    });
    let folded = tree(&store);
    assert_eq!(rebuild_all(&store), 0, "a leaf differs from its record");
    assert_eq!(tree(&store), folded, "a bucket differs from its leaves");
}
