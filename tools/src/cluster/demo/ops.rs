//! What the demo's steps do to the cluster and read from it: commands through one node,
//! CLUSTER INFO figures, and the conditions it waits for (polled with a deadline; each
//! wait says what it waited for when it gives up).

use super::narrator::Narrator;
use super::steps::{Demo, A, CATCH_UP_WITHIN, DETECT_WITHIN, KEY};
use crate::cluster::client::{self, connect, preflist, PreflistEntry};
use crate::cluster::local::{poll, LocalSpec};
use crate::failure::{Failure, EXIT_INTERRUPTED};
use std::time::{Duration, Instant};

impl Demo<'_> {
    pub(super) fn addr(&self, i: usize) -> String {
        self.cluster.spec.addr(i)
    }

    /// `n1`, `n2`, ... for a PREFLIST entry (its id if it is not one of ours).
    pub(super) fn name_of(&self, e: &PreflistEntry) -> String {
        self.ids
            .iter()
            .position(|id| *id == e.id)
            .map_or_else(|| short(&e.id), LocalSpec::name)
    }

    /// A failure met during the current step, named after it (Ctrl-C stays Ctrl-C).
    pub(super) fn fail(&self, f: Failure) -> Failure {
        keep(&self.n, f)
    }

    pub(super) fn number(&self, i: usize, field: &str) -> Result<u64, Failure> {
        number_at(&self.addr(i), field).map_err(|f| self.fail(f))
    }

    /// The peers node `i` has a replica link or stream open to (CLUSTER INFO).
    pub(super) fn replica_connections(&self, i: usize) -> Result<u64, Failure> {
        Ok(self.number(i, "kvd_replica_links")? + self.number(i, "kvd_replica_streams")?)
    }

    /// Waits (a bounded while) for n1 to close its replica connection to the frozen n3:
    /// a write sent on it before then would sit in n3's socket and land when n3 runs
    /// again, as a timed-out write may (docs/cluster.md), leaving the repairs this demo
    /// shows less to do. After it closes, writes for n3 wait for a new connection that
    /// a frozen node cannot answer, and are hinted.
    pub(super) fn wait_connection_closed(&self, before: u64) -> Result<(), Failure> {
        if before == 0 {
            return Ok(());
        }
        let closed = poll(
            self.stop,
            Duration::from_secs(10),
            "n1 to close its replica connection to n3",
            || Ok((self.replica_connections(A)? < before).then_some(())),
        );
        match closed {
            Ok(()) => self.n.saw(
                "n1 closed its replica connection to n3 (two seconds without an answer to its heartbeats)",
            ),
            Err(f) if f.code == EXIT_INTERRUPTED => return Err(f),
            Err(_) => self.n.saw(
                "n1's replica connections did not change; its writes to n3 time out and are hinted",
            ),
        }
        Ok(())
    }

    pub(super) fn wait<T>(
        &self,
        within: Duration,
        what: &str,
        probe: impl FnMut() -> Result<Option<T>, Failure>,
    ) -> Result<T, Failure> {
        poll(self.stop, within, what, probe).map_err(|f| self.fail(f))
    }

    pub(super) fn kill(&mut self, i: usize) -> Result<(), Failure> {
        let pid = self.cluster.pid(i).unwrap_or(0);
        self.cluster.kill9(i).map_err(|f| self.fail(f))?;
        self.n.did(format!(
            "kill -9 {pid} ({}, {})",
            LocalSpec::name(i),
            self.addr(i)
        ));
        Ok(())
    }

    /// n1's (kvd_hints_pending, kvd_hints_delivered), from one CLUSTER INFO.
    pub(super) fn hint_counters(&self) -> Result<(u64, u64), Failure> {
        let v = client::info_numbers(&self.addr(A), &["kvd_hints_pending", "kvd_hints_delivered"])
            .map_err(|f| self.fail(f))?;
        Ok((v[0], v[1]))
    }

    /// Waits until n1 holds at least `missed` hints more than `before` (hints are stored
    /// as the writes to the missing replica fail, possibly after the client's reply).
    pub(super) fn wait_hints_kept(&self, before: u64, missed: u64) -> Result<u64, Failure> {
        self.wait(
            CATCH_UP_WITHIN,
            "n1 to hold a hint per write n3 missed",
            || {
                let h = number_at(&self.addr(A), "kvd_hints_pending")?;
                Ok((h >= before + missed).then_some(h))
            },
        )
    }

    /// Waits until n1 holds no hints; returns how many it delivered since
    /// `delivered_before` was read.
    pub(super) fn wait_hints_drained(&self, delivered_before: u64) -> Result<u64, Failure> {
        self.wait(CATCH_UP_WITHIN, "n1's hints for n3 to drain", || {
            Ok((number_at(&self.addr(A), "kvd_hints_pending")? == 0).then_some(()))
        })?;
        Ok(self
            .number(A, "kvd_hints_delivered")?
            .saturating_sub(delivered_before))
    }

    /// Waits until `observer` sees `target` up (or, with `up` false, not up) in the
    /// preference list of [`KEY`], and says how long gossip took.
    pub(super) fn wait_seen(
        &self,
        observer: usize,
        target: usize,
        up: bool,
    ) -> Result<(), Failure> {
        let started = Instant::now();
        let (observer_addr, target_id) = (self.addr(observer), self.ids[target].clone());
        let waited = self.wait(
            DETECT_WITHIN,
            &format!(
                "{} to see {} {}",
                LocalSpec::name(observer),
                LocalSpec::name(target),
                if up { "up" } else { "gone" }
            ),
            || {
                let Ok(list) = preflist(&observer_addr, KEY) else {
                    return Ok(None);
                };
                Ok(list
                    .into_iter()
                    .find(|e| e.id == target_id)
                    .map(|e| e.state)
                    .filter(|s| (s == "up") == up))
            },
        );
        // A dead node that failure detection has not marked yet is still a dead node:
        // coordinators time out on it and hint, so the demo goes on and says so (docs/
        // cluster.md, "Not done yet": detection of a node killed soon after the cluster
        // formed can take minutes).
        let state = match waited {
            Ok(state) => state,
            Err(_) if !up => {
                self.n.saw(format!(
                    "{} still reports {} up after {:.0} s: failure detection has not fired; requests to it time out and are hinted",
                    LocalSpec::name(observer),
                    LocalSpec::name(target),
                    started.elapsed().as_secs_f64()
                ));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        self.n.saw(format!(
            "{} marks {} {state} after {:.1} s (gossip, phi-accrual failure detection)",
            LocalSpec::name(observer),
            LocalSpec::name(target),
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    /// Waits until `nodes` answer CLUSTER MERKLE with the same root for every partition.
    pub(super) fn wait_equal_roots(&self, nodes: &[usize]) -> Result<(), Failure> {
        let names: Vec<String> = nodes.iter().map(|&i| LocalSpec::name(i)).collect();
        let started = Instant::now();
        let held = self.wait(
            CATCH_UP_WITHIN,
            &format!("equal Merkle roots on {}", names.join(", ")),
            || {
                let roots: Result<Vec<Vec<String>>, Failure> = nodes
                    .iter()
                    .map(|&i| client::merkle_roots(&self.addr(i)))
                    .collect();
                let Ok(roots) = roots else {
                    return Ok(None);
                };
                let equal = roots.windows(2).all(|w| w[0] == w[1]);
                Ok(equal.then(|| roots[0].iter().filter(|r| !r.is_empty()).count()))
            },
        )?;
        self.n
            .did(format!("CLUSTER MERKLE on {}", names.join(", ")));
        self.n.saw(format!(
            "the same Merkle root for all {held} partitions on {} (after {:.1} s): they hold identical data",
            names.join(", "),
            started.elapsed().as_secs_f64()
        ));
        self.n
            .expect(held > 0, "partitions held by every node compared")
    }

    pub(super) fn set(&self, i: usize, key: &str, value: &str) -> Result<(), Failure> {
        let mut conn = connect(&self.addr(i)).map_err(|f| self.fail(f))?;
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query::<()>(&mut conn)
            .map_err(|e| {
                self.n
                    .failed(format!("SET {key} through {}: {e}", LocalSpec::name(i)))
            })
    }

    /// Sets each key to its own name, pipelined on one connection.
    pub(super) fn set_many(&self, i: usize, keys: &[String]) -> Result<(), Failure> {
        let mut conn = connect(&self.addr(i)).map_err(|f| self.fail(f))?;
        let mut pipe = redis::pipe();
        for k in keys {
            pipe.cmd("SET").arg(k).arg(k).ignore();
        }
        pipe.query::<()>(&mut conn).map_err(|e| {
            self.n.failed(format!(
                "SET of {} keys through {}: {e}",
                keys.len(),
                LocalSpec::name(i)
            ))
        })
    }

    pub(super) fn get(&self, i: usize, key: &str) -> Result<Option<String>, Failure> {
        let mut conn = connect(&self.addr(i)).map_err(|f| self.fail(f))?;
        redis::cmd("GET").arg(key).query(&mut conn).map_err(|e| {
            self.n
                .failed(format!("GET {key} through {}: {e}", LocalSpec::name(i)))
        })
    }

    pub(super) fn get_many(
        &self,
        i: usize,
        keys: &[String],
    ) -> Result<Vec<Option<String>>, Failure> {
        let mut conn = connect(&self.addr(i)).map_err(|f| self.fail(f))?;
        redis::cmd("MGET").arg(keys).query(&mut conn).map_err(|e| {
            self.n
                .failed(format!("MGET through {}: {e}", LocalSpec::name(i)))
        })
    }
}

pub(super) fn number_at(addr: &str, field: &str) -> Result<u64, Failure> {
    client::info_number(addr, field)
}

/// `f` named after the narrator's current step, unless it is an interruption.
pub(super) fn keep(n: &Narrator, f: Failure) -> Failure {
    if f.code == EXIT_INTERRUPTED {
        f
    } else {
        n.failed(f.message)
    }
}

/// The first 16 significant hex digits of a node id, as `cluster status` shows ids.
pub(super) fn short(id: &str) -> String {
    id.trim_start_matches('0').chars().take(16).collect()
}

/// A GET reply as redis-cli shows it.
pub(super) fn show(v: &Option<String>) -> String {
    v.as_ref().map_or("(nil)".into(), |s| format!("{s:?}"))
}
