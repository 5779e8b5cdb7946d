//! The flush thread orders the active memtable while it fills (db/write.rs,
//! `order_ahead`), so neither the flush nor the first scan has to order it all.

use super::Db;
use crate::constants::ORDER_AHEAD_KEYS;
use crate::options::Options;
use crate::{Keyspace, WriteBatch};
use std::time::{Duration, Instant};

/// Keys the active memtable holds unordered now.
fn unordered(db: &Db) -> usize {
    db.shared.state.lock().mem.unordered()
}

#[test]
fn the_flush_thread_orders_new_keys_while_the_memtable_fills() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), Options::default()).unwrap();
    let keys = ORDER_AHEAD_KEYS + ORDER_AHEAD_KEYS / 4;
    for chunk in 0..keys.div_ceil(1000) {
        let mut batch = WriteBatch::new();
        for i in chunk * 1000..(chunk + 1) * 1000 {
            // Out of key order, as a random fill writes them.
            let key = format!("key{:08}", (i * 7919) % 1_000_000);
            batch.put(Keyspace::DEFAULT, key.as_bytes(), b"value");
        }
        db.write(batch).unwrap();
    }
    // Only writes and no ordered access (no scan, no flush: the memtable is far from
    // full), so only the flush thread's ordering can bring this down.
    let deadline = Instant::now() + Duration::from_secs(20);
    while unordered(&db) >= ORDER_AHEAD_KEYS {
        assert!(
            Instant::now() < deadline,
            "{} keys still unordered after 20 s",
            unordered(&db)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let state = db.shared.state.lock();
    assert!(state.mem.len() >= keys, "the memtable was not switched");
}
