//! Multi-key transactions (docs/consistency.md, "Transactions on the ring"): MULTI/EXEC,
//! multi-key commands (RENAME, MSETNX, COPY...) and multi-key scripts, atomic and
//! linearizable with every other write of their keys, built from single-key consensus
//! rounds as Percolator builds them from row transactions (crate::txn_lock):
//!
//! 1. **Lock** every key, one after another in key order (two transactions never wait
//!    for each other in a cycle), each with a consensus round that finds the key free
//!    (other transactions' locks are resolved first) and leaves a pending lock naming
//!    the primary (the first key). The state each round saw is the transaction's
//!    snapshot: nothing can change a locked key, so it is still the state at commit.
//! 2. **Decide**: the caller's function runs once on the snapshot and says what each key
//!    becomes (or aborts: a WATCH that failed).
//! 3. **Prewrite**: each secondary key's lock gets its intent, if the lock is still the
//!    transaction's.
//! 4. **Commit**: one round on the primary replaces its lock by its new value and a
//!    commit marker listing the secondaries. This round is the transaction's one point
//!    of decision: once it is chosen the transaction is committed, whoever finishes it.
//! 5. **Finish** each secondary (intent in, lock out), then drop the marker.
//!
//! A command that meets a lock (any consensus round: [`Coordinator::consensus`]) asks
//! the primary: marker there, roll the intent forward; the primary no longer locked by
//! the transaction, drop the lock; still locked, wait (or abort the primary's lock once
//! it expired, which a later commit round then finds gone). A lock that outlived a
//! crashed coordinator is thus cleared by the next command on any of its keys.

use super::paxos::{Change, ChangeFn, BACKOFF_FIRST, BACKOFF_MAX};
use super::Coordinator;
use crate::quorum::{ClusterError, Consistency};
use crate::record_size::{body_bytes, check_record_bytes, record_bytes};
use crate::replica_api::ItemKey;
use crate::txn_lock::{Intent, TxnLock, TxnMarker, MAX_MARKERS, MAX_TXN_KEYS};
use crate::{Body, Record, Version};
use futures::future::join_all;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// Each key's record when the transaction locked it (`None`: absent).
pub type Snapshot = BTreeMap<ItemKey, Option<Record>>;

/// What a transaction does, decided on its snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnDecision {
    /// Write nothing, release the locks (a failed WATCH, an error before any write).
    Abort,
    /// The keys' new states; a key not named is left as it is.
    Commit(BTreeMap<ItemKey, Intent>),
}

/// The caller's part of a transaction: called once, on the snapshot, with every key
/// locked (or, for a one-key transaction, as the change function of its one round,
/// so possibly more than once).
pub type TxnFn<'a> = &'a mut (dyn FnMut(&Snapshot) -> TxnDecision + Send);

/// Locks one command settles on its key before it gives up: each is another
/// transaction that locked the key between two of the command's rounds.
const MAX_SETTLED_IN_A_ROW: usize = 16;

/// What the primary says of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Committed,
    Aborted,
    /// Still locked by it, not expired.
    Pending,
}

/// How long a transaction's locks protect it from other nodes' aborts: twice the
/// consensus timeout, and at least a second.
fn lock_ttl(consensus_timeout: Duration) -> Duration {
    (consensus_timeout * 2).max(Duration::from_secs(1))
}

impl Coordinator {
    /// Runs a transaction on `keys` (any order, duplicates ignored): `decide` sees their
    /// states and says what each becomes. Returns the commit version, `None` when the
    /// transaction aborted or wrote nothing.
    pub async fn transaction(
        &self,
        keys: &[ItemKey],
        consistency: Consistency,
        decide: TxnFn<'_>,
    ) -> Result<Option<Version>, ClusterError> {
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        match keys.len() {
            0 => return Err(ClusterError::Protocol("a transaction without keys".into())),
            1 => {
                return self
                    .one_key_transaction(&keys[0], consistency, decide)
                    .await
            }
            n if n > MAX_TXN_KEYS => {
                return Err(ClusterError::Protocol(format!(
                    "a transaction may hold at most {MAX_TXN_KEYS} keys, not {n}"
                )))
            }
            _ => {}
        }
        let inner = &self.inner;
        let txn = inner.clock.next().map_err(ClusterError::Clock)?;
        let ttl = lock_ttl(inner.config.consensus_timeout);
        let expires_at = (txn.millis() as i64).saturating_add(ttl.as_millis() as i64);
        // Give up on our own before others may: half the locks' lifetime.
        let deadline = Instant::now() + ttl / 2;
        let primary = keys[0].clone();
        let lock = TxnLock {
            txn,
            primary: primary.clone(),
            expires_at,
            intent: Intent::Pending,
        };

        // 1. Lock, in key order.
        let mut snapshot = Snapshot::new();
        for (i, key) in keys.iter().enumerate() {
            let mut before = None;
            let mut full = false;
            let mut take = |state: Option<&Record>| -> Change {
                full = i == 0 && state.is_some_and(|r| r.txn.markers.len() >= MAX_MARKERS);
                if full {
                    return Change::Keep;
                }
                before = Some(state.cloned());
                Change::Exact(Box::new(with_lock(state, Some(lock.clone()))))
            };
            let locked = self
                .consensus_until(key, consistency, &mut take, deadline)
                .await;
            if let Err(e) = locked {
                self.release(&keys[..=i], txn, consistency).await;
                return Err(e);
            }
            if full {
                self.finish_markers(key, consistency).await;
                self.release(&keys[..i], txn, consistency).await;
                return Err(ClusterError::TxnAborted(
                    "its first key holds too many unfinished transactions".into(),
                ));
            }
            snapshot.insert(key.clone(), before.flatten());
        }

        // 2. Decide.
        let intents = match decide(&snapshot) {
            TxnDecision::Abort => {
                self.release(&keys, txn, consistency).await;
                return Ok(None);
            }
            TxnDecision::Commit(intents) => intents,
        };
        if let Some(stray) = intents.keys().find(|k| !snapshot.contains_key(*k)) {
            self.release(&keys, txn, consistency).await;
            return Err(ClusterError::Protocol(format!(
                "a transaction wrote key {:?} it had not locked",
                stray.key
            )));
        }
        // A secondary holds its value and its intent until the transaction finishes:
        // both must fit in one record (record_size.rs), checked before any prewrite.
        if let Err(e) = intents_fit(&snapshot, &intents) {
            self.release(&keys, txn, consistency).await;
            return Err(e);
        }
        let intent_of = |k: &ItemKey| intents.get(k).cloned().unwrap_or(Intent::Keep);

        // 3. Prewrite the secondaries.
        let secondaries = &keys[1..];
        let prewrites = secondaries.iter().map(|k| {
            let lock = TxnLock {
                intent: intent_of(k),
                ..lock.clone()
            };
            self.rewrite_own_lock(k, txn, consistency, move |state| {
                with_lock(Some(state), Some(lock.clone()))
            })
        });
        let prewritten = join_all(prewrites).await;
        if prewritten.iter().any(|r| !matches!(r, Ok(true))) {
            self.release(&keys, txn, consistency).await;
            return Err(ClusterError::TxnAborted(
                "a key's lock was lost before the commit (another node found it expired)".into(),
            ));
        }

        // 4. Commit: the primary's lock becomes its value and the marker.
        let primary_intent = intent_of(&primary);
        let marker = TxnMarker {
            txn,
            secondaries: secondaries.to_vec(),
        };
        let mut lost = false;
        let mut commit = |state: Option<&Record>| -> Change {
            match state.and_then(|r| r.txn.lock.as_ref()) {
                Some(l) if l.txn == txn => {
                    let Some(state) = state else {
                        lost = true;
                        return Change::Keep;
                    };
                    let mut next = apply_intent(state, &primary_intent);
                    next.txn.markers.push(marker.clone());
                    lost = false;
                    Change::Exact(Box::new(next))
                }
                _ => {
                    lost = true;
                    Change::Keep
                }
            }
        };
        let committed = self
            .round(primary.clone(), consistency, &mut commit)
            .await?;
        if lost {
            self.release(secondaries, txn, consistency).await;
            return Err(ClusterError::TxnAborted(
                "its locks expired and another node aborted it before the commit".into(),
            ));
        }
        inner
            .counters
            .transactions_committed
            .fetch_add(1, Ordering::Relaxed);

        // 5. Finish the secondaries, then drop the marker (and any older ones the
        //    primary still holds: their coordinators died before dropping them).
        let finishes = secondaries
            .iter()
            .map(|k| self.finish(k, txn, Fate::Committed, consistency));
        let finished = join_all(finishes).await;
        if finished.iter().all(Result::is_ok) {
            self.finish_markers(&primary, consistency).await;
        }
        Ok(committed)
    }

    /// A transaction on one key is one consensus round: its change function is `decide`.
    async fn one_key_transaction(
        &self,
        key: &ItemKey,
        consistency: Consistency,
        decide: TxnFn<'_>,
    ) -> Result<Option<Version>, ClusterError> {
        let mut change = |state: Option<&Record>| -> Change {
            let snapshot = Snapshot::from([(key.clone(), state.cloned())]);
            match decide(&snapshot) {
                TxnDecision::Abort => Change::Keep,
                TxnDecision::Commit(intents) => match intents.get(key) {
                    None | Some(Intent::Keep) | Some(Intent::Pending) => Change::Keep,
                    Some(Intent::Write { body, expire_at }) => Change::Write {
                        body: body.clone(),
                        expire_at: *expire_at,
                        request: None,
                    },
                },
            }
        };
        self.consensus(key.clone(), consistency, &mut change).await
    }

    /// Runs one command on `key` through consensus (docs/consistency.md): `change` sees
    /// the key's state and says what to write. Returns the version written, or `None`
    /// when the command wrote nothing. Linearizable with every other consensus command
    /// and transaction on the key: a transaction's lock found on the key is resolved
    /// first (waiting while its transaction is in progress).
    pub async fn consensus(
        &self,
        key: ItemKey,
        consistency: Consistency,
        change: ChangeFn<'_>,
    ) -> Result<Option<Version>, ClusterError> {
        let deadline = Instant::now() + self.inner.config.consensus_timeout;
        self.consensus_until(&key, consistency, change, deadline)
            .await
    }

    /// [`Coordinator::consensus`] with the deadline for waiting on locks.
    async fn consensus_until(
        &self,
        key: &ItemKey,
        consistency: Consistency,
        change: ChangeFn<'_>,
        deadline: Instant,
    ) -> Result<Option<Version>, ClusterError> {
        let mut pause = BACKOFF_FIRST;
        let mut settled = 0;
        loop {
            let mut met: Option<Box<TxnLock>> = None;
            let mut unlocked = |state: Option<&Record>| -> Change {
                met = state.and_then(|r| r.txn.lock.clone());
                match met {
                    Some(_) => Change::Keep,
                    None => change(state),
                }
            };
            let written = self.round(key.clone(), consistency, &mut unlocked).await?;
            let Some(lock) = met else {
                return Ok(written);
            };
            if self.resolve(key, &lock, consistency).await? != Fate::Pending {
                // Settled: the next round runs the command, unless yet another
                // transaction locked the key meanwhile (bounded: a hot key cannot keep
                // a command resolving forever).
                settled += 1;
                if settled > MAX_SETTLED_IN_A_ROW {
                    return Err(ClusterError::Locked);
                }
                continue;
            }
            if Instant::now() + pause >= deadline {
                return Err(ClusterError::Locked);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(BACKOFF_MAX);
        }
    }

    /// Settles a lock found on `key`: asks its primary (aborting the transaction there
    /// once its locks expired), then finishes `key` accordingly.
    async fn resolve(
        &self,
        key: &ItemKey,
        lock: &TxnLock,
        consistency: Consistency,
    ) -> Result<Fate, ClusterError> {
        let fate = self.fate(&lock.primary, lock.txn, consistency).await?;
        if fate != Fate::Pending && lock.primary != *key {
            self.finish(key, lock.txn, fate, consistency).await?;
        }
        if fate != Fate::Pending {
            self.inner
                .counters
                .locks_resolved
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(fate)
    }

    /// The fate of `txn` as its primary decides it, in a consensus round on the
    /// primary: committed (marker), aborted (no lock of it), or pending; an expired
    /// pending lock is removed in the same round, which aborts the transaction.
    async fn fate(
        &self,
        primary: &ItemKey,
        txn: Version,
        consistency: Consistency,
    ) -> Result<Fate, ClusterError> {
        let now = self.inner.clock.next().map_err(ClusterError::Clock)?;
        let now_ms = now.millis() as i64;
        let mut fate = Fate::Aborted;
        let mut decide = |state: Option<&Record>| -> Change {
            let Some(state) = state else {
                fate = Fate::Aborted;
                return Change::Keep;
            };
            match &state.txn.lock {
                Some(l) if l.txn == txn && now_ms <= l.expires_at => {
                    fate = Fate::Pending;
                    Change::Keep
                }
                Some(l) if l.txn == txn => {
                    fate = Fate::Aborted;
                    self.inner
                        .counters
                        .transactions_aborted_expired
                        .fetch_add(1, Ordering::Relaxed);
                    Change::Exact(Box::new(with_lock(Some(state), None)))
                }
                _ => {
                    fate = match state.txn.committed(txn) {
                        true => Fate::Committed,
                        false => Fate::Aborted,
                    };
                    Change::Keep
                }
            }
        };
        self.round(primary.clone(), consistency, &mut decide)
            .await?;
        Ok(fate)
    }

    /// Finishes `key` for a decided `txn`: its intent in (committed) or its lock out
    /// (aborted), if the key still holds the transaction's lock.
    async fn finish(
        &self,
        key: &ItemKey,
        txn: Version,
        fate: Fate,
        consistency: Consistency,
    ) -> Result<bool, ClusterError> {
        self.rewrite_own_lock(key, txn, consistency, move |state| {
            match (fate, &state.txn.lock) {
                (Fate::Committed, Some(l)) => apply_intent(state, &l.intent),
                _ => with_lock(Some(state), None),
            }
        })
        .await
    }

    /// Replaces `key`'s record by `next(record)` if the key holds `txn`'s lock; false
    /// when it does not (the lock was resolved by someone else).
    async fn rewrite_own_lock(
        &self,
        key: &ItemKey,
        txn: Version,
        consistency: Consistency,
        next: impl Fn(&Record) -> Record + Send + Sync,
    ) -> Result<bool, ClusterError> {
        let mut held = false;
        let mut rewrite = |state: Option<&Record>| -> Change {
            held = false;
            match state {
                Some(r) if r.txn.lock.as_ref().is_some_and(|l| l.txn == txn) => {
                    held = true;
                    Change::Exact(Box::new(next(r)))
                }
                _ => Change::Keep,
            }
        };
        self.round(key.clone(), consistency, &mut rewrite).await?;
        Ok(held)
    }

    /// Aborts `txn` on `keys` (primary first, so nobody can commit it meanwhile):
    /// drops its locks where they are. Best effort: a lock left behind expires and the
    /// next command on its key resolves it.
    async fn release(&self, keys: &[ItemKey], txn: Version, consistency: Consistency) {
        self.inner
            .counters
            .transactions_aborted
            .fetch_add(1, Ordering::Relaxed);
        for key in keys {
            let _ = self.finish(key, txn, Fate::Aborted, consistency).await;
        }
    }

    /// Finishes every committed transaction `primary` holds a marker of (rolls its
    /// secondaries forward, where they still hold its lock), then drops those markers.
    async fn finish_markers(&self, primary: &ItemKey, consistency: Consistency) {
        let Ok(Some(state)) = self.get(primary.clone(), consistency).await else {
            return;
        };
        let markers = state.txn.markers.clone();
        if markers.is_empty() {
            return;
        }
        for m in &markers {
            for k in &m.secondaries {
                if self
                    .finish(k, m.txn, Fate::Committed, consistency)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        let done: Vec<Version> = markers.iter().map(|m| m.txn).collect();
        let mut drop_markers = |state: Option<&Record>| -> Change {
            match state {
                Some(r) if r.txn.markers.iter().any(|m| done.contains(&m.txn)) => {
                    let mut next = r.clone();
                    next.txn.markers.retain(|m| !done.contains(&m.txn));
                    Change::Exact(Box::new(next))
                }
                _ => Change::Keep,
            }
        };
        let _ = self
            .round(primary.clone(), consistency, &mut drop_markers)
            .await;
    }
}

/// Refuses a transaction whose written keys would each hold a record above the ring's
/// bound while locked (the value they hold and the intent).
fn intents_fit(
    snapshot: &Snapshot,
    intents: &BTreeMap<ItemKey, Intent>,
) -> Result<(), ClusterError> {
    for (key, intent) in intents {
        if let Intent::Write { body, .. } = intent {
            let held = snapshot
                .get(key)
                .and_then(Option::as_ref)
                .map_or(key.key.len(), |r| record_bytes(&key.key, r));
            check_record_bytes(held + body_bytes(body))?;
        }
    }
    Ok(())
}

/// `state` (an absent key as a tombstone) with its lock replaced by `lock`.
fn with_lock(state: Option<&Record>, lock: Option<TxnLock>) -> Record {
    let mut next = state
        .cloned()
        .unwrap_or_else(|| Record::tombstone(Version::ZERO));
    next.txn.lock = lock.map(Box::new);
    next
}

/// `state` with `intent` applied and its lock removed; its markers and requests stay.
fn apply_intent(state: &Record, intent: &Intent) -> Record {
    let mut next = with_lock(Some(state), None);
    if let Intent::Write { body, expire_at } = intent {
        next.body = body.clone();
        next.expire_at = match body {
            Body::Value { .. } => *expire_at,
            _ => None,
        };
    }
    next
}
