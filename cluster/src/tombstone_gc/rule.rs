//! The purge rule: when this node may drop a tombstone it holds.
//!
//! A tombstone may go once (1) it is older than the grace and (2) every other replica of
//! its partition answered, each holding that tombstone, something newer, or nothing.
//!
//! (1) keeps late arrivals out: a hint of an older value is dropped after
//! `--cluster-hint-max-age`, which start-up validation keeps shorter than the grace (with
//! the request timeout and clock offset on top), so no hint can still carry a value the
//! tombstone deleted. (2) is "every replica is known to hold it" with one widening:
//! *nothing* counts, because readers see an absent key and a tombstone alike, and the
//! only thing a tombstone does that absence does not is refuse an older value, which can
//! then only come from another replica (all of them were asked, none holds one), a hint
//! (gone by (1)) or a restored backup (the wipe rule, stamp.rs). Without the widening the
//! last replica could never purge, because the first ones already did.

use crate::{Body, Record};

/// What another replica of the partition answered for the key: `None` if it did not
/// answer, `Some(None)` if it holds nothing, `Some(Some(record))` otherwise.
pub type ReplicaAnswer = Option<Option<Record>>;

/// Whether `held` (this node's record) may be dropped at `now_ms` with `grace_ms`, given
/// the answers of every other replica of its partition.
pub fn may_purge(held: &Record, now_ms: u64, grace_ms: u64, others: &[ReplicaAnswer]) -> bool {
    old_enough(held, now_ms, grace_ms)
        && others.iter().all(|answer| match answer {
            None => false,
            Some(None) => true,
            Some(Some(theirs)) => theirs.version >= held.version,
        })
}

/// Whether `held` is a tombstone past the grace at `now_ms`: the local half of the
/// rule, which picks the keys worth asking the other replicas about. A tombstone that
/// still remembers an idempotent request (an `IDEMPOTENT id DEL key`) stays until the
/// request expires: dropped earlier, a retry would find no record and delete again, a
/// value written meanwhile included.
pub fn old_enough(held: &Record, now_ms: u64, grace_ms: u64) -> bool {
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    matches!(held.body, Body::Tombstone)
        && held.version.millis().saturating_add(grace_ms) < now_ms
        && held.requests.iter().all(|r| !r.is_live(now))
        // A transaction's lock or commit marker decides other keys' fate: it stays
        // until the transaction is finished (coordinator/txn.rs).
        && held.txn.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NodeId, Version};
    use bytes::Bytes;
    use proptest::prelude::*;

    const GRACE: u64 = 1000;

    fn version(ms: u64, node: u64) -> Version {
        Version {
            ts: ms << 16,
            node: NodeId(node),
        }
    }

    fn tombstone(ms: u64) -> Record {
        Record::tombstone(version(ms, 1))
    }

    #[test]
    fn a_tombstone_every_replica_holds_goes_after_the_grace() {
        let t = tombstone(5000);
        let all_hold = [Some(Some(t.clone())), Some(Some(t.clone()))];
        assert!(
            !may_purge(&t, 5000 + GRACE, GRACE, &all_hold),
            "at the grace"
        );
        assert!(may_purge(&t, 5001 + GRACE, GRACE, &all_hold));
    }

    #[test]
    fn one_silent_or_older_replica_keeps_it() {
        let t = tombstone(5000);
        let now = 100_000;
        let older = Record::string(version(4000, 2), Bytes::from_static(b"v"), None);
        assert!(!may_purge(&t, now, GRACE, &[Some(Some(t.clone())), None]));
        assert!(!may_purge(
            &t,
            now,
            GRACE,
            &[Some(Some(t.clone())), Some(Some(older))]
        ));
        assert!(may_purge(
            &t,
            now,
            GRACE,
            &[Some(None), Some(Some(t.clone()))]
        ));
        assert!(may_purge(&t, now, GRACE, &[]), "N = 1: nobody else to ask");
    }

    #[test]
    fn a_tombstone_remembering_a_live_request_stays_until_it_expires() {
        let mut t = tombstone(5000);
        t.requests = crate::request_record::carried(
            &[],
            Some(crate::NewRequest {
                id: Bytes::from_static(b"req"),
                expire_at: 50_000,
                reply: Bytes::new(),
            }),
            t.version,
        );
        let all_hold = [Some(Some(t.clone()))];
        assert!(
            !may_purge(&t, 49_999, GRACE, &all_hold),
            "request still live"
        );
        assert!(may_purge(&t, 50_000, GRACE, &all_hold));
    }

    #[test]
    fn values_are_never_purged() {
        let v = Record::string(version(5000, 1), Bytes::from_static(b"v"), Some(1));
        assert!(!may_purge(&v, u64::MAX, GRACE, &[Some(None)]));
    }

    fn arb_answer() -> impl Strategy<Value = ReplicaAnswer> {
        proptest::option::of(proptest::option::of((0u64..10, any::<bool>()).prop_map(
            |(ms, value)| {
                let v = version(ms * 1000, 2);
                if value {
                    Record::string(v, Bytes::from_static(b"x"), None)
                } else {
                    Record::tombstone(v)
                }
            },
        )))
    }

    proptest! {
        /// Safety: a purge implies the grace passed, every other replica answered and
        /// none holds a record older than ours. Liveness: once that holds, it purges.
        #[test]
        fn purges_only_and_always_when_the_rule_holds(
            held_ms in 0u64..10,
            now in 0u64..15_000,
            others in proptest::collection::vec(arb_answer(), 0..4),
        ) {
            let held = tombstone(held_ms * 1000);
            let past_grace = held_ms * 1000 + GRACE < now;
            let all_answered = others.iter().all(Option::is_some);
            let none_older = others
                .iter()
                .flatten()
                .flatten()
                .all(|r| r.version >= held.version);
            let purged = may_purge(&held, now, GRACE, &others);
            if purged {
                prop_assert!(past_grace && all_answered && none_older);
            }
            if past_grace && all_answered && none_older {
                prop_assert!(purged);
            }
        }
    }
}
