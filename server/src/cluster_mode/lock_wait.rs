//! LOCK ... WAIT on a cluster node between its attempts (crate::connection's `lock_wait`;
//! docs/versions-and-locks.md, "Locks on a cluster").
//!
//! No local commit announces a release made through another node, so a waiter polls. A
//! poll that is a LOCK attempt is a consensus round, and its prepare outbids whatever
//! round is under way on the key: the holder's UNLOCK through another node lost its
//! accept to the waiters' polls and ended in `TIMEOUT ... may still be applied` (CI, on
//! a loaded two-core machine). A poll is therefore a quorum read, which takes no ballot;
//! only when the read shows the lock free, expired, the waiter's own or in a
//! transaction's hands does the waiter run the LOCK through consensus, which decides.

use super::entry_of;
use crate::keyspace::now_ms;
use crate::state::{Shared, WaitFor};
use kv_cluster::config::Consistency;
use kv_cluster::replica_api::ItemKey;
use kv_cluster::ring::Ring;
use kv_cluster::Record;
use kv_keyspace::ValueType;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What a poll decided for the waiter of `wait` with `owner`.
pub enum Poll {
    /// The lock is still held by another owner: wait again (`None`: the deadline
    /// passed, and the LOCK answers nil).
    Held(Option<WaitFor>),
    /// Run the LOCK through consensus: the lock may be free, or the read failed.
    Attempt,
}

/// Reads the lock of `wait` with the quorum and says whether the waiter of `owner` must
/// keep waiting.
pub async fn poll(srv: &Shared, ring: &Arc<dyn Ring>, wait: &WaitFor, owner: &[u8]) -> Poll {
    let item = ItemKey {
        db: wait.db as u32,
        key: wait.key.clone(),
    };
    let now = now_ms();
    let Ok(Some(record)) = ring.get(item, Consistency::Quorum).await else {
        return Poll::Attempt;
    };
    let Some(lease_end) = held_by_another(&record, owner, now) else {
        return Poll::Attempt;
    };
    srv.counters.lock_wait_reads.fetch_add(1, Ordering::Relaxed);
    if now >= wait.deadline {
        return Poll::Held(None);
    }
    Poll::Held(Some(WaitFor {
        wake_at: lease_end.min(wait.deadline),
        ..wait.clone()
    }))
}

/// The end of the lease (`i64::MAX` without one) when `record` is a lock that an owner
/// other than `owner` holds at `now`; `None` when the waiter should try. A record under
/// a transaction's lock is left to consensus, which settles the transaction first.
fn held_by_another(record: &Record, owner: &[u8], now: i64) -> Option<i64> {
    if record.txn.lock.is_some() {
        return None;
    }
    let entry = entry_of(record)?;
    let held = entry.ty == ValueType::String && entry.value != owner && !entry.expired(now);
    held.then_some(entry.expire_at.unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kv_cluster::Version;

    fn lock(owner: &str, expire_at: Option<i64>) -> Record {
        Record::string(Version::ZERO, Bytes::from(owner.to_owned()), expire_at)
    }

    #[test]
    fn another_owners_live_lease_is_held_until_its_end() {
        assert_eq!(
            held_by_another(&lock("A", Some(5_000)), b"B", 1_000),
            Some(5_000)
        );
        assert_eq!(
            held_by_another(&lock("A", None), b"B", 1_000),
            Some(i64::MAX)
        );
    }

    #[test]
    fn own_ended_or_deleted_locks_are_tried() {
        assert_eq!(held_by_another(&lock("B", Some(5_000)), b"B", 1_000), None);
        assert_eq!(held_by_another(&lock("A", Some(1_000)), b"B", 1_000), None);
        let mut deleted = lock("A", None);
        deleted.body = kv_cluster::Body::Tombstone;
        assert_eq!(held_by_another(&deleted, b"B", 1_000), None);
    }

    #[test]
    fn a_key_in_a_transactions_hands_is_tried() {
        let mut locked = lock("A", Some(5_000));
        locked.txn.lock = Some(Box::new(kv_cluster::txn_lock::TxnLock {
            txn: Version::ZERO,
            primary: ItemKey {
                db: 0,
                key: Bytes::from_static(b"other"),
            },
            expires_at: 9_000,
            intent: kv_cluster::txn_lock::Intent::Pending,
        }));
        assert_eq!(held_by_another(&locked, b"B", 1_000), None);
    }
}
