//! Simulated clients: each one, until the run's fault phase ends, picks a key of the
//! small key set, an operation (SET with a value unique in the run, DEL, GET; on the
//! counter keys INCR or a SERIAL read, both through consensus), a consistency level
//! (mostly QUORUM, some ONE and ALL) and a coordinator node (mostly a running one), runs
//! it through that node's real coordinator, and records what it was told.

use super::history::{write_failure, Op, OpKind, Outcome};
use super::{Sabotage, SimCluster};
use crate::coordinator::Change;
use crate::quorum::Consistency;
use crate::replica_api::ItemKey;
use crate::Body;
use bytes::Bytes;
use kv_keyspace::ValueType;
use rand::Rng;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The keys clients use: few, so that operations on one key overlap often.
pub(crate) fn key_set(count: usize) -> Vec<Bytes> {
    (0..count).map(|i| Bytes::from(format!("key{i}"))).collect()
}

/// The counters clients INCR through consensus (kept apart from the last-writer-wins
/// keys: a database never mixes the two, docs/consistency.md).
pub(crate) fn counter_set() -> Vec<Bytes> {
    (0..2).map(|i| Bytes::from(format!("ctr{i}"))).collect()
}

/// One client's loop.
pub(crate) async fn run_client(cluster: Arc<SimCluster>, client: usize, until: Instant) {
    let world = &cluster.setup.world;
    let mut writes = 0u64;
    while Instant::now() < until {
        let pause = world.rng(|r| r.gen_range(0..30));
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let counting = world.rng(|r| r.gen_range(0..5)) == 0;
        let keys = if counting {
            &cluster.counters
        } else {
            &cluster.keys
        };
        let key = world.rng(|r| keys[r.gen_range(0..keys.len())].clone());
        let node = cluster.pick_node();
        let consistency = match world.rng(|r| r.gen_range(0..10)) {
            0 => Consistency::One,
            1 => Consistency::All,
            _ => Consistency::Quorum,
        };
        let kind = match world.rng(|r| r.gen_range(0..20)) {
            0..=5 if counting => OpKind::SerialRead,
            _ if counting => OpKind::Incr,
            0..=8 => {
                writes += 1;
                OpKind::Put(Bytes::from(format!("c{client}-{writes}")))
            }
            9..=10 => OpKind::Delete,
            _ => OpKind::Get,
        };
        let invoked = world.next_event();
        let outcome = cluster.run_op(node, &key, &kind, consistency).await;
        let completed = world.next_event();
        world.trace(format_args!(
            "client {client} {kind:?} {key:?} at {node:?} {consistency:?}: {outcome:?}"
        ));
        cluster.history.push(Op {
            client,
            node,
            key,
            kind,
            consistency,
            invoked,
            completed,
            outcome,
        });
    }
}

impl SimCluster {
    /// The node a client sends its next operation to: mostly a running node that serves
    /// clients (its layout names it), as a client library reconnects elsewhere;
    /// sometimes any node, so that requests also meet a coordinator that is down, a
    /// spare not added yet or a node removed.
    pub(crate) fn pick_node(&self) -> crate::NodeId {
        let world = &self.setup.world;
        let up: Vec<_> = self
            .nodes
            .iter()
            .filter(|n| n.current().is_some() && self.setup.layouts.serves(n.id))
            .collect();
        match world.rng(|r| r.gen_range(0..10)) {
            0 => world.rng(|r| self.nodes[r.gen_range(0..self.nodes.len())].id),
            _ if up.is_empty() => self.nodes[0].id,
            _ => world.rng(|r| up[r.gen_range(0..up.len())].id),
        }
    }

    /// Runs one operation through `node`'s coordinator. If the node crashed while the
    /// client waited, the client never got the answer: a write's outcome is unknown.
    pub(crate) async fn run_op(
        &self,
        node: crate::NodeId,
        key: &Bytes,
        kind: &OpKind,
        consistency: Consistency,
    ) -> Outcome {
        let is_read = matches!(kind, OpKind::Get | OpKind::SerialRead);
        let inc = self.node(node).and_then(|n| n.current());
        let serving = inc.filter(|_| self.setup.layouts.serves(node));
        let Some(inc) = serving else {
            let why = "the coordinator is down, not added yet or removed".to_string();
            return if is_read {
                Outcome::ReadFailed(why)
            } else {
                Outcome::NotSent(why)
            };
        };
        let item = ItemKey {
            db: 0,
            key: key.clone(),
        };
        let c = &inc.coordinator;
        let outcome = match kind {
            OpKind::Get => match c.get(item, consistency).await {
                Ok(record) => Outcome::Read(record),
                Err(e) => Outcome::ReadFailed(e.to_string()),
            },
            OpKind::Put(value) => {
                let value = Some((ValueType::String, value.clone()));
                write_outcome(c.put(item, value, None, consistency).await)
            }
            OpKind::Delete => write_outcome(c.put(item, None, None, consistency).await),
            OpKind::Incr => counter_round(c, item, consistency, true).await,
            OpKind::SerialRead if self.setup.sabotage == Sabotage::SerialReadsFromOneReplica => {
                match c.get(item, Consistency::One).await {
                    Ok(record) => Outcome::CounterRead(record.as_ref().map_or(0, counter_value)),
                    Err(e) => Outcome::ReadFailed(e.to_string()),
                }
            }
            OpKind::SerialRead => counter_round(c, item, consistency, false).await,
            OpKind::IdempotentIncr(request) => {
                let ignore = self.setup.sabotage == Sabotage::IgnoreRequestRecords;
                super::retrying_client::round(c, item, consistency, *request, ignore).await
            }
        };
        let lost = !self.setup.world.is_running(node, inc.number);
        match outcome {
            _ if lost && is_read => Outcome::ReadFailed("the coordinator crashed".into()),
            _ if lost => Outcome::Unknown("the coordinator crashed".into()),
            outcome => outcome,
        }
    }
}

fn write_outcome(result: Result<crate::Version, crate::quorum::ClusterError>) -> Outcome {
    match result {
        Ok(version) => Outcome::Written(version),
        Err(e) => write_failure(&e),
    }
}

/// A consensus round on a counter: an INCR (the change function writes the counter,
/// absent counting as 0, plus one) or a SERIAL read (it keeps the state it is given
/// and answers from it).
async fn counter_round(
    c: &crate::coordinator::Coordinator,
    item: ItemKey,
    consistency: Consistency,
    increment: bool,
) -> Outcome {
    let mut value = 0;
    let mut change = |state: Option<&crate::Record>| {
        value = state.map_or(0, counter_value) + u64::from(increment);
        if !increment {
            return Change::Keep;
        }
        Change::Write {
            body: Body::Value {
                ty: ValueType::String,
                payload: Bytes::from(value.to_string()),
            },
            expire_at: None,
            request: None,
        }
    };
    match c.consensus(item, consistency, &mut change).await {
        Ok(_) if increment => Outcome::Counted(value),
        Ok(_) => Outcome::CounterRead(value),
        Err(e) if increment => write_failure(&e),
        Err(e) => Outcome::ReadFailed(e.to_string()),
    }
}

/// The value of a counter record (a tombstone or garbage counts as 0).
pub(crate) fn counter_value(record: &crate::Record) -> u64 {
    match &record.body {
        Body::Value { payload, .. } => std::str::from_utf8(payload)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}
