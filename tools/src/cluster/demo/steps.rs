//! The walk-through, one method per step, in the order of [`STEPS`]. Every step does
//! something to the cluster, reads what the cluster says about it, prints both, and
//! fails (naming the step) when the cluster does not show what Dynamo-style replication
//! promises.

use super::narrator::Narrator;
use super::ops::{keep, short, show};
use crate::cluster::client::{self, connect, preflist};
use crate::cluster::local::{LocalCluster, LocalSpec};
use crate::failure::Failure;
use kv_keyspace::slot::{key_slot, slot_partition};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// The steps, in order. Later issues add theirs where [`Demo::run_all`] says.
pub const STEPS: [&str; 10] = [
    "start three nodes",
    "placement: which nodes hold a key",
    "a quorum write through one node, a quorum read through another",
    "kill -9 one replica of the key",
    "writes and reads go on; the coordinator keeps hints",
    "restart: hints drain and the replica catches up",
    "a second failure: the node holding the hints dies",
    "read repair",
    "anti-entropy repair",
    "the hint holder returns",
];

pub(super) const KEY: &str = "demo:greeting";
const REPAIR_KEY: &str = "demo:read-repair";
/// Writes made while the replica is down (besides [`KEY`]).
const WRITES_WHILE_DOWN: usize = 100;
/// Writes nobody reads before anti-entropy finds them.
const UNREAD_WRITES: usize = 50;

/// Why a repair step can find nothing to repair: the writes sent to the paused node sat
/// in its socket and were served when it resumed, before it saw that their senders had
/// given up (a replica applies a write as soon as it reads it). Read repair and
/// anti-entropy are tested on their own in cluster/tests (quorum_read.rs,
/// anti_entropy.rs); the demo narrates what happened rather than fail.
const LATE_DELIVERY: &str = "n3 already held these writes: they were waiting in its socket when it was paused and it served them on resuming, so there was nothing left to repair";

/// Node 1 coordinates the demo's writes.
pub(super) const A: usize = 0;
/// Node 2 serves its reads.
const B: usize = 1;
/// Node 3 is the replica that dies.
const V: usize = 2;

/// Deadlines of what the demo waits for (on a quiet machine each takes seconds).
const FORM_WITHIN: Duration = Duration::from_secs(90);
/// A dead node not detected within this goes on as "still reported up" (a node killed
/// soon after the cluster formed was once not detected for minutes; docs/cluster.md).
pub(super) const DETECT_WITHIN: Duration = Duration::from_secs(60);
pub(super) const CATCH_UP_WITHIN: Duration = Duration::from_secs(120);

/// The demo's cluster and what it learned about it.
pub struct Demo<'a> {
    pub(super) cluster: LocalCluster,
    pub(super) stop: &'a AtomicBool,
    pub(super) n: Narrator,
    /// Node ids (CLUSTER MYID) by node index.
    pub(super) ids: Vec<String>,
}

impl<'a> Demo<'a> {
    /// Step 1: starts the nodes of `spec` and waits until they formed one cluster.
    pub fn start(spec: LocalSpec, stop: &'a AtomicBool) -> Result<Demo<'a>, Failure> {
        let mut n = Narrator::new(STEPS.len());
        n.step(STEPS[0]);
        let mut cluster = LocalCluster::start(spec)?;
        let spec = cluster.spec.clone();
        n.did(format!(
            "started {} kvd processes (ports {}..{}, bus +10000) that all bootstrap one cluster",
            spec.nodes,
            spec.addr(0),
            spec.base_port as usize + spec.nodes - 1
        ));
        let started = Instant::now();
        cluster
            .wait_formed(stop, FORM_WITHIN)
            .map_err(|f| keep(&n, f))?;
        let mut ids = Vec::new();
        for i in 0..spec.nodes {
            let id: String =
                client::cluster_command(&spec.addr(i), "MYID", &[]).map_err(|f| keep(&n, f))?;
            n.saw(format!(
                "{} at {} (pid {}): node id {}",
                LocalSpec::name(i),
                spec.addr(i),
                cluster.pid(i).unwrap_or(0),
                short(&id)
            ));
            ids.push(id);
        }
        let demo = Demo {
            cluster,
            stop,
            n,
            ids,
        };
        let layout = demo.number(A, "kvd_layout_version")?;
        let (replicas, w, r) = (
            demo.number(A, "kvd_replicas")?,
            demo.number(A, "kvd_write_quorum")?,
            demo.number(A, "kvd_read_quorum")?,
        );
        demo.n.saw(format!(
            "cluster_state:ok on every node after {:.1} s; layout version {layout}; N={replicas} W={w} R={r}",
            started.elapsed().as_secs_f64()
        ));
        demo.n.why(
            "every key lives on N nodes; a write waits for W of them, a read for R (W + R > N)",
        );
        demo.n.expect(
            layout >= 1 && replicas == 3 && w == 2 && r == 2,
            "a layout and N=3 W=2 R=2",
        )?;
        Ok(demo)
    }

    /// Steps 2 and on. Each leaves the cluster as the next one expects it.
    pub fn run_all(&mut self) -> Result<(), Failure> {
        self.placement()?;
        self.quorum_write_and_read()?;
        self.kill_replica()?;
        self.writes_go_on()?;
        self.restart_and_catch_up()?;
        self.second_failure()?;
        self.read_repair()?;
        self.anti_entropy()?;
        self.hint_holder_returns()?;
        // Later issues add their steps here (and their titles to STEPS): siblings
        // (concurrent writes kept side by side) and a network partition.
        Ok(())
    }

    /// Stops every node with SIGTERM; `Err` if one did not exit cleanly.
    pub fn stop_cleanly(mut self) -> Result<(), Failure> {
        let statuses = self.cluster.stop_all();
        let unclean: Vec<String> = statuses
            .iter()
            .filter(|(_, s)| !s.is_some_and(|s| s.success()))
            .map(|(i, s)| {
                format!(
                    "{} ({})",
                    LocalSpec::name(*i),
                    s.map_or("killed after the grace period".into(), |s| s.to_string())
                )
            })
            .collect();
        if unclean.is_empty() {
            println!(
                "\nstopped {} nodes with SIGTERM; each flushed and exited 0",
                statuses.len()
            );
            Ok(())
        } else {
            Err(Failure::new(format!(
                "nodes that did not stop cleanly: {}",
                unclean.join(", ")
            )))
        }
    }

    fn placement(&mut self) -> Result<(), Failure> {
        self.n.step(STEPS[1]);
        let slot: u64 =
            client::cluster_command(&self.addr(A), "KEYSLOT", &[KEY]).map_err(|f| self.fail(f))?;
        let partition = slot_partition(slot as u16);
        self.n.did(format!("CLUSTER KEYSLOT {KEY} on n1"));
        self.n.saw(format!(
            "slot {slot} (CRC16 mod 16384, as Redis Cluster; computed here: {}) -> partition {partition} (slot / 64, of 256)",
            key_slot(KEY.as_bytes())
        ));
        self.n.expect(
            slot == u64::from(key_slot(KEY.as_bytes())),
            "kvd's slot to equal Redis Cluster's CRC16 slot",
        )?;
        self.n.did(format!("CLUSTER PREFLIST {KEY} on n1"));
        // Polled: right after forming (or on a busy machine) gossip may still count a
        // node as suspect for a moment.
        let addr = self.addr(A);
        let list = self.wait(DETECT_WITHIN, "n1 to see every replica up", || {
            let list = preflist(&addr, KEY)?;
            Ok(list.iter().all(|e| e.state == "up").then_some(list))
        })?;
        self.n.saw(format!(
            "replicas in preference order: {}",
            list.iter()
                .map(|e| format!("{} ({})", self.name_of(e), e.state))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        self.n.why(
            "the layout gives each partition N distinct nodes; any node can coordinate any key",
        );
        let mut names: Vec<String> = list.iter().map(|e| self.name_of(e)).collect();
        names.sort();
        names.dedup();
        self.n.expect(
            list.len() == 3 && names.len() == 3 && list.iter().all(|e| e.state == "up"),
            "3 distinct replicas, all up",
        )
    }

    fn quorum_write_and_read(&mut self) -> Result<(), Failure> {
        self.n.step(STEPS[2]);
        self.set(A, KEY, "hello")?;
        self.n.did(format!("SET {KEY} hello through n1"));
        self.n
            .saw("OK: n1 stamped a version and at least W=2 replicas stored it");
        let value = self.get(B, KEY)?;
        self.n.did(format!("GET {KEY} through n2"));
        self.n.saw(format!(
            "{}: R=2 replicas answered and n2 returned the newest version",
            show(&value)
        ));
        self.n.expect(
            value.as_deref() == Some("hello"),
            "GET through n2 to return hello",
        )
    }

    fn kill_replica(&mut self) -> Result<(), Failure> {
        self.n.step(STEPS[3]);
        self.kill(V)?;
        self.wait_seen(A, V, false)
    }

    fn writes_go_on(&mut self) -> Result<(), Failure> {
        self.n.step(STEPS[4]);
        let hints_before = self.number(A, "kvd_hints_pending")?;
        self.set(A, KEY, "hello again")?;
        let keys: Vec<String> = (0..WRITES_WHILE_DOWN)
            .map(|i| format!("demo:key:{i}"))
            .collect();
        self.set_many(A, &keys)?;
        self.n.did(format!(
            "SET {KEY} \"hello again\" and {WRITES_WHILE_DOWN} more keys through n1"
        ));
        self.n
            .saw("every write answered OK: n1 and n2 are W=2 of the key's 3 replicas");
        let value = self.get(B, KEY)?;
        let values = self.get_many(B, &keys)?;
        let readable = keys
            .iter()
            .zip(&values)
            .filter(|(k, v)| v.as_deref() == Some(k.as_str()))
            .count();
        self.n.did(format!(
            "GET {KEY} and MGET of the {WRITES_WHILE_DOWN} keys through n2"
        ));
        self.n.saw(format!(
            "{} and {readable} of {WRITES_WHILE_DOWN} keys read back: R=2 reads need only the two survivors",
            show(&value)
        ));
        self.n.expect(
            value.as_deref() == Some("hello again") && readable == WRITES_WHILE_DOWN,
            "every write made with n3 down to be readable through n2",
        )?;
        let missed = WRITES_WHILE_DOWN as u64 + 1;
        let hints = self.wait_hints_kept(hints_before, missed)?;
        let bytes = self.number(A, "kvd_hints_bytes")?;
        self.n.saw(format!(
            "n1 CLUSTER INFO: kvd_hints_pending {hints_before} -> {hints} ({bytes} bytes): writes n3 missed, kept on n1's disk for it"
        ));
        self.n.why(
            "hints never count toward W: the writes above were acknowledged by two real replicas",
        );
        Ok(())
    }

    fn restart_and_catch_up(&mut self) -> Result<(), Failure> {
        self.n.step(STEPS[5]);
        let (pending, delivered_before) = self.hint_counters()?;
        self.cluster.restart(V).map_err(|f| self.fail(f))?;
        self.n.did(format!(
            "restarted n3 with the same command (pid {})",
            self.cluster.pid(V).unwrap_or(0)
        ));
        let started = Instant::now();
        let delivered = self.wait_hints_drained(delivered_before)?;
        self.n.saw(format!(
            "n1 kvd_hints_pending {pending} -> 0 after {:.1} s; kvd_hints_delivered +{delivered}",
            started.elapsed().as_secs_f64()
        ));
        self.n
            .expect(delivered >= pending, "every pending hint to be delivered")?;
        self.wait_equal_roots(&[A, B, V])
    }

    fn second_failure(&mut self) -> Result<(), Failure> {
        self.n.step(STEPS[6]);
        // A pause, not a crash: a node restarted after a crash repairs its partitions
        // by itself, which would leave read repair and anti-entropy nothing to show.
        let connected = self.replica_connections(A)?;
        self.cluster.pause(V).map_err(|f| self.fail(f))?;
        self.n.did(format!(
            "kill -STOP {} (n3 freezes, as in a long pause or a stalled machine)",
            self.cluster.pid(V).unwrap_or(0)
        ));
        self.wait_seen(A, V, false)?;
        self.wait_connection_closed(connected)?;
        let hints_before = self.number(A, "kvd_hints_pending")?;
        self.set(A, REPAIR_KEY, REPAIR_KEY)?;
        let keys = unread_keys();
        self.set_many(A, &keys)?;
        self.n.did(format!(
            "SET {REPAIR_KEY} and {UNREAD_WRITES} keys demo:unread:* through n1"
        ));
        let missed = UNREAD_WRITES as u64 + 1;
        let hints = self.wait_hints_kept(hints_before, missed)?;
        self.n.saw(format!(
            "acknowledged by n1 and n2; n1 kvd_hints_pending {hints_before} -> {hints}"
        ));
        self.kill(A)?;
        self.n.why(
            "n1's hints for n3 now wait on n1's disk; nothing else will bring n3 these writes",
        );
        self.cluster.resume(V).map_err(|f| self.fail(f))?;
        self.n.did(format!(
            "kill -CONT {} (n3 runs again) while n1 stays down",
            self.cluster.pid(V).unwrap_or(0)
        ));
        self.wait_seen(B, V, true)?;
        self.wait_seen(B, A, false)
    }

    fn read_repair(&mut self) -> Result<(), Failure> {
        self.n.step(STEPS[7]);
        let before = self.number(B, "kvd_read_repairs")?;
        let mut conn = connect(&self.addr(B)).map_err(|f| self.fail(f))?;
        let set_level = |conn: &mut redis::Connection, level: &str| {
            redis::cmd("CLUSTER")
                .arg("CONSISTENCY")
                .arg(level)
                .query::<()>(conn)
                .map_err(|e| self.n.failed(format!("CLUSTER CONSISTENCY {level}: {e}")))
        };
        set_level(&mut conn, "ALL")?;
        let all: redis::RedisResult<Option<String>> =
            redis::cmd("GET").arg(REPAIR_KEY).query(&mut conn);
        self.n.did(format!(
            "CLUSTER CONSISTENCY ALL, then GET {REPAIR_KEY} on one connection to n2"
        ));
        match &all {
            Ok(v) => self.n.saw(format!("{} (unexpected: n1 is down)", show(v))),
            Err(e) => self.n.saw(format!("refused: {e}")),
        }
        self.n.why("ALL waits for every replica, and n1 is down");
        self.n.expect(
            all.is_err(),
            "a read at ALL to fail while a replica is down",
        )?;
        set_level(&mut conn, "QUORUM")?;
        // n3 has just resumed with a backlog (and the machine may be busy): a read that
        // timed out waiting for it is asked again, a few times.
        let mut tries = 0;
        let value: Option<String> = loop {
            tries += 1;
            match redis::cmd("GET").arg(REPAIR_KEY).query(&mut conn) {
                Err(e) if e.code() == Some("TIMEOUT") && tries < 4 => {
                    self.n.saw(format!("{e}; asking again"));
                }
                other => {
                    break other
                        .map_err(|e| self.n.failed(format!("GET {REPAIR_KEY} through n2: {e}")))?
                }
            }
        };
        let after = self.number(B, "kvd_read_repairs")?;
        self.n.did(format!(
            "CLUSTER CONSISTENCY QUORUM, then GET {REPAIR_KEY} again"
        ));
        self.n.saw(format!(
            "{}; n2 CLUSTER INFO: kvd_read_repairs {before} -> {after}",
            show(&value)
        ));
        if after > before {
            self.n.why(
                "R=2 asked n2 and n3; n3 answered without the key, so n2 wrote the newest version to n3 before replying",
            );
        } else {
            self.n.why(LATE_DELIVERY);
        }
        self.n.expect(
            value.as_deref() == Some(REPAIR_KEY),
            "the value read back through n2",
        )
    }

    fn anti_entropy(&mut self) -> Result<(), Failure> {
        self.n.step(STEPS[8]);
        let before = self.number(B, "kvd_anti_entropy_keys_repaired")?;
        let report = client::repair(&self.addr(B)).map_err(|f| self.fail(f))?;
        let after = self.number(B, "kvd_anti_entropy_keys_repaired")?;
        self.n
            .did("CLUSTER REPAIR on n2 (anti-entropy now, instead of on its schedule)");
        self.n.saw(format!(
            "partitions={} keys_repaired={} failures={}; n2 kvd_anti_entropy_keys_repaired {before} -> {after}",
            report.partitions, report.keys_repaired, report.failures
        ));
        if report.keys_repaired >= UNREAD_WRITES as u64 {
            self.n.why(format!(
                "Merkle trees of n2 and n3 differed only where the {UNREAD_WRITES} unread keys are; only those keys travelled"
            ));
        } else {
            self.n.why(LATE_DELIVERY);
        }
        self.n
            .why("(a failure is a peer that could not be compared: n1, which is down)");
        // Whether or not n3 got the writes late, n2 and n3 must now hold the same data.
        self.wait_equal_roots(&[B, V])
    }

    fn hint_holder_returns(&mut self) -> Result<(), Failure> {
        self.n.step(STEPS[9]);
        self.cluster.restart(A).map_err(|f| self.fail(f))?;
        self.n.did(format!(
            "restarted n1 (pid {}), which still holds hints for n3",
            self.cluster.pid(A).unwrap_or(0)
        ));
        // Replay may start as soon as n1 is up: read both counters at one moment.
        let (pending, delivered_before) =
            self.wait(CATCH_UP_WITHIN, "n1 to answer again", || {
                Ok(self.hint_counters().ok())
            })?;
        let delivered = self.wait_hints_drained(delivered_before)?;
        self.n.saw(format!(
            "n1 kvd_hints_pending {pending} -> 0 (kvd_hints_delivered +{delivered}); n3 already had them, so they changed nothing"
        ));
        self.n
            .expect(delivered >= pending, "every pending hint to be delivered")?;
        self.wait_equal_roots(&[A, B, V])?;
        // ALL needs n1 to count every replica up again.
        self.wait_seen(A, B, true)?;
        self.wait_seen(A, V, true)?;
        // Polled: a node back from a crash may answer reads only once it has caught up.
        let addr = self.addr(A);
        let value = self.wait(CATCH_UP_WITHIN, "a GET at ALL through n1", || {
            let Ok(mut conn) = connect(&addr) else {
                return Ok(None);
            };
            Ok(redis::pipe()
                .cmd("CLUSTER")
                .arg("CONSISTENCY")
                .arg("ALL")
                .ignore()
                .cmd("GET")
                .arg(REPAIR_KEY)
                .query::<(Option<String>,)>(&mut conn)
                .ok()
                .map(|(v,)| v))
        })?;
        self.n
            .did(format!("GET {REPAIR_KEY} at CONSISTENCY ALL through n1"));
        self.n
            .saw(format!("{}: all three replicas answered", show(&value)));
        self.n
            .expect(value.as_deref() == Some(REPAIR_KEY), "the value at ALL")
    }
}

fn unread_keys() -> Vec<String> {
    (0..UNREAD_WRITES)
        .map(|i| format!("demo:unread:{i}"))
        .collect()
}
