//! Transfer clients: multi-key transactions (coordinator/txn.rs) under every simulated
//! fault. Each client moves amounts between a few accounts with a transaction over two
//! of them, or reads all of them in one transaction; some transactions are cut off at a
//! random point (their coordinator "dies": the future is dropped mid-protocol, leaving
//! locks, intents and markers for others to settle). Money is only moved, never made,
//! so every snapshot and the end state must sum to zero whatever was acknowledged: a
//! half-applied transfer, a lost intent or a snapshot taken across a transfer shows.

use super::checker::Violation;
use super::{Sabotage, SimCluster};
use crate::coordinator::{Change, Snapshot, TxnDecision};
use crate::quorum::Consistency;
use crate::replica_api::ItemKey;
use crate::txn_lock::Intent;
use crate::{Body, Record};
use bytes::Bytes;
use kv_keyspace::ValueType;
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The accounts (absent = 0); one database of their own.
pub(crate) fn accounts() -> Vec<ItemKey> {
    (0..3)
        .map(|i| ItemKey {
            db: 1,
            key: Bytes::from(format!("acct{i}")),
        })
        .collect()
}

fn balance(record: Option<&Record>) -> i64 {
    match record.map(|r| &r.body) {
        Some(Body::Value { payload, .. }) => std::str::from_utf8(payload)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

fn value(n: i64) -> Body {
    Body::Value {
        ty: ValueType::String,
        payload: Bytes::from(n.to_string()),
    }
}

/// What a transfer client saw: the violations, and how many transfers were
/// acknowledged and snapshots read (to show the runs were not vacuous).
#[derive(Debug, Default)]
pub(crate) struct TransferReport {
    pub(crate) violations: Vec<Violation>,
    pub(crate) committed: u64,
    pub(crate) snapshots: u64,
}

/// One transfer client's loop.
pub(crate) async fn run(cluster: Arc<SimCluster>, client: usize, until: Instant) -> TransferReport {
    let world = &cluster.setup.world;
    let accounts = accounts();
    let mut report = TransferReport::default();
    while Instant::now() < until {
        let pause = world.rng(|r| r.gen_range(0..40));
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let node = cluster.pick_node();
        let Some(inc) = cluster.node(node).and_then(|n| n.current()) else {
            continue;
        };
        let c = inc.coordinator.clone();
        // Some coordinators "die" at a random moment of the transaction.
        let cut_after = world
            .chance(250)
            .then(|| Duration::from_millis(world.rng(|r| r.gen_range(0..60))));
        if world.rng(|r| r.gen_range(0..3)) == 0 {
            let mut seen = None;
            let mut read_all = |s: &Snapshot| {
                seen = Some(
                    accounts
                        .iter()
                        .map(|k| balance(s.get(k).and_then(Option::as_ref)))
                        .sum::<i64>(),
                );
                TxnDecision::Commit(BTreeMap::new())
            };
            let done = cut(
                cut_after,
                c.transaction(&accounts, Consistency::Quorum, &mut read_all),
            )
            .await;
            if let (Some(Ok(_)), Some(sum)) = (done, seen) {
                report.snapshots += 1;
                if sum != 0 {
                    report.violations.push(Violation::Transaction {
                        what: format!("client {client}: a snapshot of the accounts sums to {sum}"),
                    });
                }
            }
            continue;
        }
        let (from, to) = world.rng(|r| {
            let from = r.gen_range(0..accounts.len());
            (
                from,
                (from + r.gen_range(1..accounts.len())) % accounts.len(),
            )
        });
        let amount = world.rng(|r| r.gen_range(1..10i64));
        let (from, to) = (accounts[from].clone(), accounts[to].clone());
        world.trace(format_args!(
            "transfer client {client} {amount} {from:?}->{to:?} at {node:?}"
        ));
        let done = if cluster.setup.sabotage == Sabotage::TransfersWithoutTransactions {
            cut(cut_after, two_rounds(&c, &from, &to, amount)).await
        } else {
            let mut transfer = |s: &Snapshot| {
                let get = |k: &ItemKey| balance(s.get(k).and_then(Option::as_ref));
                TxnDecision::Commit(BTreeMap::from([
                    (
                        from.clone(),
                        Intent::Write {
                            body: value(get(&from) - amount),
                            expire_at: None,
                        },
                    ),
                    (
                        to.clone(),
                        Intent::Write {
                            body: value(get(&to) + amount),
                            expire_at: None,
                        },
                    ),
                ]))
            };
            cut(
                cut_after,
                c.transaction(
                    &[from.clone(), to.clone()],
                    Consistency::Quorum,
                    &mut transfer,
                ),
            )
            .await
        };
        if matches!(done, Some(Ok(_))) {
            report.committed += 1;
        }
    }
    report
}

/// Runs `f`, or drops it after `after` (the coordinator died there).
async fn cut<T>(after: Option<Duration>, f: impl std::future::Future<Output = T>) -> Option<T> {
    match after {
        None => Some(f.await),
        Some(d) => tokio::time::timeout(d, f).await.ok(),
    }
}

/// The sabotage: a transfer as two separate single-key rounds, not one transaction.
async fn two_rounds(
    c: &crate::coordinator::Coordinator,
    from: &ItemKey,
    to: &ItemKey,
    amount: i64,
) -> Result<Option<crate::Version>, crate::quorum::ClusterError> {
    for (key, delta) in [(from, -amount), (to, amount)] {
        let mut add = |state: Option<&Record>| Change::Write {
            body: value(balance(state) + delta),
            expire_at: None,
            request: None,
        };
        c.consensus(key.clone(), Consistency::Quorum, &mut add)
            .await?;
        // Give the snapshots a chance to fall between the two halves.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(None)
}

/// After the heal: one snapshot through a running node settles every lock the dead
/// coordinators left and must sum to zero.
pub(crate) async fn final_check(cluster: &SimCluster) -> Vec<Violation> {
    let accounts = accounts();
    for node in &cluster.nodes {
        let Some(inc) = node.current() else { continue };
        let mut sum = None;
        let mut read_all = |s: &Snapshot| {
            sum = Some(
                accounts
                    .iter()
                    .map(|k| balance(s.get(k).and_then(Option::as_ref)))
                    .sum::<i64>(),
            );
            TxnDecision::Commit(BTreeMap::new())
        };
        let done = inc
            .coordinator
            .transaction(&accounts, Consistency::Quorum, &mut read_all)
            .await;
        return match (done, sum) {
            (Ok(_), Some(0)) => Vec::new(),
            (Ok(_), sum) => vec![Violation::Transaction {
                what: format!("after the heal the accounts sum to {sum:?}"),
            }],
            (Err(e), _) => vec![Violation::Transaction {
                what: format!("after the heal a snapshot of the accounts failed: {e}"),
            }],
        };
    }
    vec![Violation::Transaction {
        what: "after the heal no node was running".into(),
    }]
}
