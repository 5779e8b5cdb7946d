//! Removes idempotency records whose window has passed, a bounded slice per cycle, so
//! they do not wait for a compaction that happens to touch them (a write-once workload
//! never compacts its old records away, and they would grow without bound).

use super::idempotency::{created_at, is_live};
use super::store::{now_ms, Store};
use bytes::Bytes;
use kv_engine::WriteBatch;
use std::sync::atomic::{AtomicU64, Ordering};

/// Records examined per cycle: bounds the work (and the locks held) of one cycle.
pub const RECORDS_PER_CYCLE: usize = 500;

/// Whether the idempotency keyspace may hold records, so that the sweep of a server
/// that never ran IDEMPOTENT does not seek through every memtable and table level ten
/// times a second (each seek also makes the memtable order its new keys: see
/// kv-engine's memtable/list.rs).
///
/// `written` counts committed record writes (starting at 1: records may be on disk);
/// `clean_at` is the count at the start of the last full pass that found no record.
/// A record committed after a pass began makes them differ, so a pass that missed it
/// never lets the sweep stop.
#[derive(Debug)]
pub struct RecordPresence {
    written: AtomicU64,
    clean_at: AtomicU64,
}

impl Default for RecordPresence {
    fn default() -> Self {
        RecordPresence {
            written: AtomicU64::new(1),
            clean_at: AtomicU64::new(0),
        }
    }
}

impl RecordPresence {
    /// Called after a transaction that wrote a record committed.
    pub fn record_written(&self) {
        self.written.fetch_add(1, Ordering::AcqRel);
    }

    fn may_exist(&self) -> bool {
        self.written.load(Ordering::Acquire) != self.clean_at.load(Ordering::Acquire)
    }
}

/// Where the sweep is: the key to resume at (empty: a pass begins), and what the
/// current pass has seen.
#[derive(Debug, Default)]
pub struct SweepCursor {
    next: Bytes,
    pass_began_at: u64,
    pass_saw_records: bool,
}

/// Examines up to [`RECORDS_PER_CYCLE`] records from `cursor` and deletes the expired
/// ones; returns how many were deleted. `cursor` moves on (and wraps to a new pass at
/// the end). A pass does not begin while no record can exist.
pub fn sweep_cycle(
    store: &Store,
    window_ms: u64,
    cursor: &mut SweepCursor,
) -> kv_engine::Result<u64> {
    let presence = &store.idem_presence;
    if cursor.next.is_empty() {
        if !presence.may_exist() {
            return Ok(0);
        }
        cursor.pass_began_at = presence.written.load(Ordering::Acquire);
        cursor.pass_saw_records = false;
    }
    let now = now_ms();
    let mut expired = Vec::new();
    let mut next = Bytes::new();
    let start = (!cursor.next.is_empty()).then_some(&cursor.next[..]);
    for (seen, entry) in store.db.iter(store.idem, start, None, None)?.enumerate() {
        let entry = entry?;
        cursor.pass_saw_records = true;
        if seen == RECORDS_PER_CYCLE {
            next = entry.key;
            break;
        }
        if created_at(&entry.value).is_some_and(|c| !is_live(c, window_ms, now)) {
            expired.push(entry.key);
        }
    }
    if next.is_empty() && !cursor.pass_saw_records {
        presence
            .clean_at
            .store(cursor.pass_began_at, Ordering::Release);
    }
    cursor.next = next;
    if expired.is_empty() {
        return Ok(0);
    }
    // IDEMPOTENT locks its request id like a key: re-check under that lock, so a record
    // rewritten by a new request since the scan is not deleted.
    let _guard = store.lock_keys(expired.iter().map(|k| &k[..]));
    let mut batch = WriteBatch::new();
    let mut deleted = 0;
    for id in &expired {
        let still_expired = store
            .db
            .get(store.idem, id)?
            .and_then(|v| created_at(&v.value))
            .is_some_and(|c| !is_live(c, window_ms, now));
        if still_expired {
            batch.delete(store.idem, id);
            deleted += 1;
        }
    }
    if deleted > 0 {
        store.db.write(batch)?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::test_store::temp_store;
    use crate::keyspace::Txn;

    fn store() -> (tempfile::TempDir, Store) {
        temp_store(1)
    }

    /// A record created ten seconds ago: live in a 60 s window, expired in a 1 ms one.
    fn write_record(store: &Store, id: &[u8]) {
        let mut t = Txn::new(store);
        t.put_record(store.idem, id, &(now_ms() - 10_000).to_be_bytes());
        t.commit().unwrap();
    }

    /// A pass that finds nothing stops the sweep until a record is committed; a pass
    /// that finds records, expired or live, keeps it going.
    #[test]
    fn the_sweep_stops_on_an_empty_keyspace_and_resumes_after_a_record() {
        let (_dir, store) = store();
        let mut cursor = SweepCursor::default();
        assert!(
            store.idem_presence.may_exist(),
            "records may be on disk at start"
        );
        sweep_cycle(&store, 60_000, &mut cursor).unwrap();
        assert!(
            !store.idem_presence.may_exist(),
            "an empty pass proves none exist"
        );

        write_record(&store, b"req-1");
        assert!(store.idem_presence.may_exist());
        sweep_cycle(&store, 60_000, &mut cursor).unwrap();
        assert!(
            store.idem_presence.may_exist(),
            "a live record keeps the sweep going"
        );
        // Past a shorter window: the next pass deletes it, the one after finds none.
        assert_eq!(sweep_cycle(&store, 1, &mut cursor).unwrap(), 1);
        assert!(store.idem_presence.may_exist(), "that pass saw a record");
        sweep_cycle(&store, 1, &mut cursor).unwrap();
        assert!(!store.idem_presence.may_exist());
    }

    /// A record committed while a pass is under way, behind the pass's position, keeps
    /// the sweep going although that pass finds nothing.
    #[test]
    fn a_record_written_during_a_pass_is_not_forgotten() {
        let (_dir, store) = store();
        let mut cursor = SweepCursor::default();
        sweep_cycle(&store, 60_000, &mut cursor).unwrap();
        assert!(!store.idem_presence.may_exist());
        // A pass began with nothing written, and is past where the record lands.
        cursor.pass_began_at = store.idem_presence.written.load(Ordering::Acquire);
        cursor.pass_saw_records = false;
        cursor.next = Bytes::from_static(b"zzz");
        write_record(&store, b"aaa");
        sweep_cycle(&store, 60_000, &mut cursor).unwrap();
        assert!(
            cursor.next.is_empty(),
            "the pass ended without seeing the record"
        );
        assert!(store.idem_presence.may_exist());
        sweep_cycle(&store, 60_000, &mut cursor).unwrap();
        assert!(cursor.pass_saw_records, "the next pass finds it");
    }
}
