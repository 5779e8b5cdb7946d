//! Single-key consensus, the proposer (docs/consistency.md, "Single-key consensus"):
//! record CASPaxos. Phase 1 asks the key's replicas to promise a fresh ballot and
//! return the record they hold; the newest of a majority is the key's state; the
//! command's change function turns it into the next state, which phase 2 has a
//! majority (and at least W) accept with the ballot as its version.
//!
//! A lost round is retried with a higher ballot after a jittered backoff, until the
//! consensus timeout, only when retrying cannot apply the change twice. A round whose
//! value some replica accepted before a higher ballot refused it (a minority holds it,
//! and a later round might still adopt it) is retried only while the retry's majority
//! holds nothing at or above that round's ballot: then the earlier value is in no
//! majority, and once the retry's value is chosen no round can adopt it any more (a
//! record derived from it would carry a version at or above its ballot), or when the
//! newest record the retry's majority holds is the command's own last value: the retry
//! then re-accepts that value at its ballot and answers as that round would have (`Own`).
//! Otherwise the client gets TIMEOUT, "may still be applied", as for any indeterminate
//! write (docs/consistency.md, step 6; checked by the model, model/src/design.rs
//! `retry_partial_accepts` and `adopt_own_partial`).

use super::tally::Tally;
use super::{Coordinator, ReplicaSet};
use crate::quorum::{ClusterError, Consistency, Target};
use crate::record_size::{check_record_bytes, record_bytes};
use crate::replica_api::{ItemKey, PrepareOutcome, WriteItem, WriteOutcome};
use crate::request_record::{carried, NewRequest};
use crate::{Body, Record, Version};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What a command makes of the state consensus read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing to write (the command only read, or its condition failed).
    Keep,
    /// The key's next state.
    Write {
        /// A value or a tombstone.
        body: Body,
        /// Absolute expiry (Unix ms) of a value.
        expire_at: Option<i64>,
        /// An idempotent request to remember with this write (IDEMPOTENT).
        request: Option<NewRequest>,
    },
    /// The key's whole next record, as transactions write it (locks, intents, commit
    /// markers: coordinator/txn.rs); its version becomes the round's ballot.
    Exact(Box<Record>),
}

impl Change {
    /// The record this change makes of `state` at `version`, `None` for [`Change::Keep`].
    /// The request records of `state` travel on (crate::request_record::carried), so a
    /// write that is not idempotent itself never makes a key forget earlier requests.
    pub fn into_record(self, state: Option<&Record>, version: Version) -> Option<Record> {
        match self {
            Change::Keep => None,
            Change::Exact(record) => Some(Record { version, ..*record }),
            Change::Write {
                body,
                expire_at,
                request,
            } => Some(Record {
                version,
                expire_at,
                body,
                requests: carried(state.map_or(&[], |r| &r.requests), request, version),
                // Commit markers stay until their transaction is finished; a lock is
                // never on a record a command's change function sees.
                txn: crate::txn_lock::TxnState {
                    lock: None,
                    markers: state.map(|r| r.txn.markers.clone()).unwrap_or_default(),
                },
            }),
        }
    }
}

/// The change function of one command: called with the key's state (the newest record
/// a majority of replicas hold, tombstones and expired values included), once per
/// round. It must not have effects outside what it returns: a lost round calls it again.
pub type ChangeFn<'a> = &'a mut (dyn FnMut(Option<&Record>) -> Change + Send);

/// First and largest pause between two rounds of a contended key.
pub(super) const BACKOFF_FIRST: Duration = Duration::from_millis(2);
pub(super) const BACKOFF_MAX: Duration = Duration::from_millis(200);

/// One promise: the record held and the promise it replaced.
type Promise = (Option<Record>, Version);

/// How phase 1 ended.
enum Promises {
    /// A majority promised.
    Granted(Vec<Promise>),
    /// Too many refused: a higher ballot (or newer record) was seen.
    Refused(Version),
    /// Too few answered before the deadline; nothing was written.
    Short(usize),
}

/// How phase 2 ended.
enum Accepts {
    /// Enough replicas accepted.
    Chosen,
    /// Some refused (a higher ballot or newer record was seen) and too few accepted.
    /// `partial`: some replica may hold the value all the same.
    Refused {
        seen: Version,
        partial: bool,
        accepted: usize,
    },
    /// Too few answered before the deadline.
    Short(usize),
}

impl Coordinator {
    /// One command on `key` through consensus, as it finds the key: `change` sees the
    /// key's state, locks included, and says what to write. Returns the version
    /// written, or `None` when the command wrote nothing. Commands go through
    /// [`Coordinator::consensus`], which first settles other transactions' locks.
    pub(crate) async fn round(
        &self,
        key: ItemKey,
        consistency: Consistency,
        change: ChangeFn<'_>,
    ) -> Result<Option<Version>, ClusterError> {
        let mut partial = None;
        let outcome = self.rounds(key, consistency, change, &mut partial).await;
        match (outcome, partial) {
            // A round of this command left its value on some replica: whatever ended
            // the rounds after it, the command may still be applied.
            (Err(e), Some(p)) if !matches!(e, ClusterError::Timeout { .. }) => {
                Err(ClusterError::Timeout {
                    acked: p.acked,
                    needed: p.needed,
                })
            }
            (outcome, _) => outcome,
        }
    }

    /// The rounds of one command, until one is chosen or the command gives up;
    /// `partial` records the first round whose value only some replicas accepted.
    async fn rounds(
        &self,
        key: ItemKey,
        consistency: Consistency,
        change: ChangeFn<'_>,
        partial: &mut Option<Partial>,
    ) -> Result<Option<Version>, ClusterError> {
        let inner = &self.inner;
        let deadline = Instant::now() + inner.config.consensus_timeout;
        // Commands on one key through this node take turns instead of duelling: two
        // proposers of one node would only refuse each other's ballots (a hot key with
        // many clients on one node never made progress without this).
        let Ok(_turn) = tokio::time::timeout_at(deadline, inner.proposing.wait(&key)).await else {
            return Err(ClusterError::ConsensusContended { rounds: 0 });
        };
        let mut pause = BACKOFF_FIRST;
        let mut rounds = 0;
        // The last round that ran `change` and reached phase 2 without being chosen.
        let mut own: Option<Own> = None;
        let mut layout_retry = super::layout_retry::LayoutRetry::default();
        loop {
            rounds += 1;
            inner
                .counters
                .consensus_rounds
                .fetch_add(1, Ordering::Relaxed);
            // During a layout change, both the new and the previous replicas: a quorum
            // of each in both phases (tally.rs).
            let set = self.key_write_set(&key.key);
            let majority = |n: usize| n / 2 + 1;
            let accepting =
                |n: usize| majority(n).max(consistency.required(n, inner.config.write_quorum));
            let accepts = Tally::new(&set, accepting);
            let needed = accepts.needed();
            if let Some((needed, alive)) = accepts.unavailable() {
                return Err(ClusterError::Unavailable { needed, alive });
            }
            let floor = inner.floors.floor(key.db);
            if floor > Version::ZERO {
                inner.clock.observe(floor);
            }
            let ballot = inner.clock.next().map_err(ClusterError::Clock)?;
            let seen = match prepare(&set, &key, ballot, Tally::new(&set, majority), deadline).await
            {
                Promises::Granted(records) => 'granted: {
                    let (state, settled) = newest(records, floor);
                    // The newest record is this command's own last value: finishing it
                    // applies the command once, and the reply `change` last made is its.
                    let adopt =
                        own.filter(|o| state.as_ref().is_some_and(|r| r.version == o.ballot));
                    // Otherwise the majority may hold a record derived from this
                    // command's own earlier value: running it again could apply it twice.
                    if let (Some(p), Some(r), None) = (partial.as_ref(), state.as_ref(), adopt) {
                        if r.version >= p.first {
                            return Err(ClusterError::Timeout {
                                acked: p.acked,
                                needed,
                            });
                        }
                    }
                    // Clients see a version's timestamp alone (fencing tokens, ETags):
                    // the next state's must be above the state's, not only its (ts, node)
                    // pair, and another node's clock may have given that state this very
                    // timestamp. Nothing was accepted yet: the next round, with the clock
                    // moved past it, has a later timestamp.
                    if let Some(r) = state.as_ref().filter(|r| r.version.ts >= ballot.ts) {
                        break 'granted r.version;
                    }
                    let (record, writes) = match adopt {
                        Some(o) => (restate(state, ballot), o.writes),
                        None => {
                            own = None;
                            match change(state.as_ref()).into_record(state.as_ref(), ballot) {
                                // Refused before any replica accepts it (record_size.rs); a
                                // round that left a value earlier still reports its outcome
                                // as unknown (`round`).
                                Some(record) => {
                                    check_record_bytes(record_bytes(&key.key, &record))?;
                                    (record, true)
                                }
                                // Nothing to write, and a majority holds the same record:
                                // it is chosen, nothing to finish.
                                None if settled => return Ok(None),
                                // Finish what a minority may hold, so no later round
                                // discards what this command observed.
                                None => (restate(state, ballot), false),
                            }
                        }
                    };
                    let item = WriteItem {
                        key: key.clone(),
                        record,
                    };
                    let end = accept(&set, &item, accepts, deadline, self).await;
                    for &node in &set.skipped {
                        super::write::spawn_hint(inner.hints.clone(), node, item.clone());
                    }
                    if matches!(end, Accepts::Refused { .. }) {
                        own = Some(Own { ballot, writes });
                    }
                    match end {
                        Accepts::Chosen => return Ok(writes.then_some(ballot)),
                        Accepts::Refused {
                            seen,
                            partial: some_hold,
                            ..
                        } if !some_hold || !writes => seen,
                        Accepts::Refused { seen, accepted, .. } => {
                            let first = partial.as_ref().map_or(ballot, |p| p.first);
                            *partial = Some(Partial {
                                first,
                                acked: accepted,
                                needed,
                            });
                            seen
                        }
                        Accepts::Short(acked) => {
                            return Err(ClusterError::Timeout { acked, needed })
                        }
                    }
                }
                Promises::Refused(seen) => seen,
                Promises::Short(answered) => {
                    return Err(ClusterError::Unavailable {
                        needed: Tally::new(&set, majority).needed(),
                        alive: answered,
                    })
                }
            };
            inner.clock.observe(seen);
            // Refused for a stale layout: the next round runs under the newer one.
            if layout_retry.after(self, &set).await {
                continue;
            }
            inner
                .counters
                .consensus_retries
                .fetch_add(1, Ordering::Relaxed);
            let wait = jitter(ballot, pause);
            if Instant::now() + wait >= deadline {
                return Err(ClusterError::ConsensusContended { rounds });
            }
            tokio::time::sleep(wait).await;
            pause = (pause * 2).min(BACKOFF_MAX);
        }
    }
}

/// This command's last round that reached phase 2 and was refused. A record at exactly
/// its ballot holds that round's value (ballots are unique to their proposer), and the
/// reply `change` made in that round is the command's if the value is chosen: a later
/// round that finds it newest re-accepts it instead of giving up
/// (model/src/design.rs `adopt_own_partial`).
#[derive(Clone, Copy)]
struct Own {
    ballot: Version,
    /// Whether that round wrote (a restated record is the command's observation only).
    writes: bool,
}

/// This command's first round whose value only some replicas accepted (coordinator
/// retries it only while that value is in no majority; see the module's comment).
struct Partial {
    /// That round's ballot: a record at or above it may derive from its value.
    first: Version,
    /// Replicas that accepted in the last such round.
    acked: usize,
    /// Replicas a round needed.
    needed: usize,
}

/// The newest of the records a majority returned (`None` below the flush floor), and
/// whether it is settled: every one of them holds that same version, and none holds it
/// below a promise it had made (a copy repair brought after a higher promise is not
/// this replica's accept; docs/consistency.md, step 5).
fn newest(promises: Vec<Promise>, floor: Version) -> (Option<Record>, bool) {
    let version = |r: &Option<Record>| r.as_ref().map_or(Version::ZERO, |r| r.version);
    let settled = promises
        .windows(2)
        .all(|w| version(&w[0].0) == version(&w[1].0))
        && promises.iter().all(|(r, before)| *before <= version(r));
    let state = promises
        .into_iter()
        .map(|(r, _)| r)
        .max_by_key(version)
        .flatten()
        .filter(|r| r.version >= floor);
    (state, settled)
}

/// `state` again at `ballot` (an absent key as a tombstone), with its live requests.
fn restate(state: Option<Record>, ballot: Version) -> Record {
    match state {
        Some(r) => Record {
            version: ballot,
            requests: carried(&r.requests, None, ballot),
            ..r
        },
        None => Record::tombstone(ballot),
    }
}

/// Phase 1 on every live replica at once, until a majority of every group promised.
async fn prepare(
    set: &ReplicaSet,
    key: &ItemKey,
    ballot: Version,
    mut tally: Tally,
    deadline: Instant,
) -> Promises {
    let (tx, mut rx) = mpsc::unbounded_channel();
    for t in &set.live {
        let (tx, t, key) = (tx.clone(), t.clone(), key.clone());
        let refusals = set.refusals.clone();
        tokio::spawn(async move {
            let answer = tokio::time::timeout_at(deadline, t.api.prepare(key, ballot)).await;
            // A stale-layout refusal counts as a rejection (coordinator/layout_retry.rs).
            let rejected = PrepareOutcome::Rejected {
                seen: Version::ZERO,
            };
            let answer = answer
                .ok()
                .and_then(|a| refusals.answer_or(t.node, a, rejected));
            let _ = tx.send((t.node, answer));
        });
    }
    drop(tx);
    let (mut records, mut refused, mut highest) = (Vec::new(), 0, Version::ZERO);
    while let Some((node, answer)) = rx.recv().await {
        match answer {
            Some(PrepareOutcome::Promised {
                record,
                promised_before,
            }) => {
                records.push((record, promised_before));
                if tally.yes(node) {
                    return Promises::Granted(records);
                }
            }
            Some(PrepareOutcome::Rejected { seen }) => {
                refused += 1;
                highest = highest.max(seen);
                if tally.no(node) {
                    return Promises::Refused(highest);
                }
            }
            None => {}
        }
    }
    match refused {
        0 => Promises::Short(records.len()),
        _ => Promises::Refused(highest),
    }
}

/// Phase 2 on every live replica at once, until every group has its quorum; replicas
/// that fail get a hint (a copy of an accepted record, which never changes promises:
/// docs/consistency.md).
async fn accept(
    set: &ReplicaSet,
    item: &WriteItem,
    mut tally: Tally,
    deadline: Instant,
    coordinator: &Coordinator,
) -> Accepts {
    let targets: &[Target] = &set.live;
    let (tx, mut rx) = mpsc::unbounded_channel();
    for t in targets {
        let (tx, t, item) = (tx.clone(), t.clone(), item.clone());
        let hints = coordinator.inner.hints.clone();
        let refusals = set.refusals.clone();
        tokio::spawn(async move {
            let answer = tokio::time::timeout_at(deadline, t.api.accept(item.clone())).await;
            // A stale-layout refusal counts as a refusal, so that a round every replica
            // refused is retried (coordinator/layout_retry.rs).
            let refused = WriteOutcome::Stale {
                current: Version::ZERO,
            };
            let answer = answer
                .ok()
                .and_then(|a| refusals.answer_or(t.node, a, refused));
            if answer.is_none() {
                super::write::spawn_hint(hints, t.node, item);
            }
            let _ = tx.send((t.node, answer));
        });
    }
    drop(tx);
    let (mut accepted, mut refused, mut highest) = (0, 0, Version::ZERO);
    while let Some((node, answer)) = rx.recv().await {
        match answer {
            Some(WriteOutcome::Applied) => {
                accepted += 1;
                if tally.yes(node) {
                    return Accepts::Chosen;
                }
            }
            Some(WriteOutcome::Stale { current }) => {
                refused += 1;
                highest = highest.max(current);
            }
            // Acceptors never answer it (their state is fsynced: cluster/src/catch_up.rs);
            // were one to, it would count neither way, like a missing answer.
            Some(WriteOutcome::StoredNotCounted) | None => {}
        }
    }
    // Every replica answered or timed out. Only when every one refused is it certain
    // that none holds the value.
    match refused {
        0 => Accepts::Short(accepted),
        _ => Accepts::Refused {
            seen: highest,
            partial: refused < targets.len(),
            accepted,
        },
    }
}

/// A pause in `[0, max]` drawn from the lost ballot: different on every node and round
/// (ballots are unique), so racing proposers spread out, yet a function of the clock,
/// so the deterministic simulation replays it.
fn jitter(ballot: Version, max: Duration) -> Duration {
    let draw = xxhash_rust::xxh3::xxh3_64(&ballot.encode());
    let micros = max.as_micros() as u64;
    Duration::from_micros(draw % (micros + 1))
}

/// Turns per key for this node's proposers: a fixed set of async mutexes, a key's
/// commands queue on the one its hash picks (unrelated keys rarely share one).
pub(crate) struct KeyTurns {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

const TURN_STRIPES: usize = 1024;

impl Default for KeyTurns {
    fn default() -> Self {
        KeyTurns {
            stripes: (0..TURN_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }
}

impl KeyTurns {
    /// Waits for `key`'s turn; the turn lasts as long as the guard.
    async fn wait(&self, key: &ItemKey) -> tokio::sync::MutexGuard<'_, ()> {
        let hash = xxhash_rust::xxh3::xxh3_64_with_seed(&key.key, u64::from(key.db));
        self.stripes[(hash % TURN_STRIPES as u64) as usize]
            .lock()
            .await
    }
}
