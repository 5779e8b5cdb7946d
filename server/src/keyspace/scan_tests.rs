//! Stateless scans: with keys inserted and deleted between pages, every key present for
//! the whole scan is returned, resuming from nothing but the cursor number.

use super::test_store::temp_store;
use super::{Store, Txn};
use kv_keyspace::data_key::ScanPosition;
use proptest::prelude::*;
use std::collections::BTreeSet;

fn store() -> (tempfile::TempDir, Store) {
    temp_store(2)
}

fn write(store: &Store, db: usize, key: &[u8], present: bool) {
    let mut t = Txn::new(store);
    if present {
        t.put_string(db, key, b"v", None);
    } else {
        t.delete(db, key);
    }
    t.commit().unwrap();
}

/// One change between two pages: (key, insert or delete).
fn change() -> impl Strategy<Value = (u8, bool)> {
    (any::<u8>(), any::<bool>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn every_key_present_for_the_whole_scan_is_returned(
        initial in proptest::collection::btree_set(any::<u8>(), 0..120),
        other_db in proptest::collection::btree_set(any::<u16>(), 0..400),
        count in 1usize..12,
        changes in proptest::collection::vec(proptest::collection::vec(change(), 0..6), 0..40),
    ) {
        let (_dir, store) = store();
        let key = |k: u8| format!("k{k}").into_bytes();
        for &k in &initial {
            write(&store, 0, &key(k), true);
        }
        // Another database's keys interleave in the engine and must never show.
        for &k in &other_db {
            write(&store, 1, format!("o{k}").as_bytes(), true);
        }
        let mut present: BTreeSet<u8> = initial.clone();
        let mut always: BTreeSet<u8> = initial.clone();
        let mut ever: BTreeSet<u8> = initial.clone();
        let mut returned: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut cursor = 0u64;
        let mut pages = 0;
        loop {
            let from = ScanPosition::from_cursor(cursor).expect("a cursor a reply gave");
            let t = Txn::new(&store);
            let mut page = Vec::new();
            let next = t.scan_page(0, from, count, |k, _| page.push(k.to_vec())).unwrap();
            // COUNT bounds the keys examined (no hash collisions among these few keys).
            prop_assert!(page.len() <= count);
            returned.extend(page);
            cursor = next.map_or(0, |p| p.cursor());
            if cursor == 0 {
                break;
            }
            for &(k, insert) in changes.get(pages).map(Vec::as_slice).unwrap_or(&[]) {
                write(&store, 0, &key(k), insert);
                if insert {
                    present.insert(k);
                    ever.insert(k);
                } else {
                    present.remove(&k);
                    always.remove(&k);
                }
            }
            pages += 1;
            prop_assert!(pages <= 256 / count + 300, "the scan terminates");
        }
        for k in &always {
            prop_assert!(returned.contains(&key(*k)), "key k{} was present throughout", k);
        }
        for k in &returned {
            let listed = ever.iter().any(|&e| key(e) == *k);
            prop_assert!(listed, "returned a key never in db 0: {:?}", k);
        }
    }
}

#[test]
fn a_page_never_stops_between_keys_of_one_position() {
    let (_dir, store) = store();
    for i in 0..50u32 {
        write(&store, 0, format!("key:{i}").as_bytes(), true);
    }
    // Resuming exactly at a key's position returns that key first.
    let t = Txn::new(&store);
    let mut first = Vec::new();
    let next = t
        .scan_page(0, ScanPosition::START, 10, |k, _| first.push(k.to_vec()))
        .unwrap()
        .unwrap();
    let mut second = Vec::new();
    t.scan_page(0, next, 1, |k, _| second.push(k.to_vec()))
        .unwrap();
    assert_eq!(ScanPosition::of_key(&second[0]), next);
    assert!(!first.contains(&second[0]));
}

#[test]
fn a_sparse_database_among_a_big_one_is_scanned_in_bounded_pages() {
    let (_dir, store) = store();
    let mut t = Txn::new(&store);
    for i in 0..3000u32 {
        t.put_string(0, format!("big:{i}").as_bytes(), b"v", None);
    }
    t.commit().unwrap();
    write(&store, 1, b"committed", true);
    // A write of this transaction, not committed: the scan must merge it too.
    let mut t = Txn::new(&store);
    t.put_string(1, b"own", b"v", None);
    let (mut from, mut pages, mut empty_pages) = (ScanPosition::START, 0, 0);
    let mut seen = Vec::new();
    loop {
        let mut page = Vec::new();
        let next = t
            .scan_page(1, from, 1, |k, _| page.push(k.to_vec()))
            .unwrap();
        empty_pages += page.is_empty() as u32;
        seen.extend(page);
        pages += 1;
        match next {
            Some(p) => {
                assert!(p > from, "every page moves on");
                from = p;
            }
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, vec![b"committed".to_vec(), b"own".to_vec()]);
    assert!(
        empty_pages > 0,
        "pages stopped by the seek budget, not one long walk"
    );
    assert!(pages < 16384, "{pages} pages");
}
