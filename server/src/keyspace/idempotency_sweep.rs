//! Removes idempotency records whose window has passed, a bounded slice per cycle, so
//! they do not wait for a compaction that happens to touch them (a write-once workload
//! never compacts its old records away, and they would grow without bound).

use super::idempotency::{created_at, is_live};
use super::store::{now_ms, Store};
use bytes::Bytes;
use kv_engine::WriteBatch;

/// Records examined per cycle: bounds the work (and the locks held) of one cycle.
pub const RECORDS_PER_CYCLE: usize = 500;

/// Examines up to [`RECORDS_PER_CYCLE`] records from `cursor` (empty = the start) and
/// deletes the expired ones; returns how many were deleted. `cursor` moves on (and
/// wraps to empty at the end).
pub fn sweep_cycle(store: &Store, window_ms: u64, cursor: &mut Bytes) -> kv_engine::Result<u64> {
    let now = now_ms();
    let mut expired = Vec::new();
    let mut next = Bytes::new();
    let start = (!cursor.is_empty()).then_some(&cursor[..]);
    for (seen, entry) in store.db.iter(store.idem, start, None, None)?.enumerate() {
        let entry = entry?;
        if seen == RECORDS_PER_CYCLE {
            next = entry.key;
            break;
        }
        if created_at(&entry.value).is_some_and(|c| !is_live(c, window_ms, now)) {
            expired.push(entry.key);
        }
    }
    *cursor = next;
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
