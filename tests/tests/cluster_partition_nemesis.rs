//! Network partitions aimed at consensus (issue 9, docs/consistency.md): three kvd nodes,
//! each in its own network namespace; clients in the root namespace run INCR, SET, SET
//! IFEQ, SET NX, DEL and SERIAL GETs on a few keys through every node, while a seeded
//! nemesis (tests/src/nemesis.rs) isolates a node, splits off a minority, makes a bridge
//! (A-B and B-C up, A-C cut) and heals, a few seconds each, in a random order per cycle.
//! After the last heal every node reads every key at SERIAL and the answers must agree,
//! the replicas converge (equal Merkle roots), and kv-checker finds one legal order of
//! every key's history, final reads included: counters against the counter model (each
//! INCR's reply, every read), registers against the register model (compare-and-set
//! winners, reads), and each counter's final value between the acknowledged and the
//! acknowledged-plus-unknown increments.
//!
//! The seed is printed; `NEMESIS_SEED=<seed> cargo test --workspace --test
//! cluster_partition_nemesis` replays its schedule (which operations run during each
//! step depends on timing). A failure keeps the history in
//! `target/tmp/nemesis-<seed>.txt`.
//!
//! The cluster test needs root, `ip` and `iptables` (.ci/run installs them); without them
//! it prints `SKIPPED: <reason>`. The other tests run anywhere: they feed the same
//! analysis histories of the same shape whose answer is known, so a broken analysis
//! cannot pass silently.

use kv_checker::counter::check_counter;
use kv_checker::counter_register::{self, CounterRegister};
use kv_checker::register::{self, Register};
use kv_checker::{check_per_key, Operation, Outcome};
use kv_tests::history_outcome::{outcome_of_error, spoils_connection};
use kv_tests::nemesis::{self, Fault};
use kv_tests::netns::{poll_until, NetCluster};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Three, so every node holds every key (N = 3) and the nodes' CLUSTER MERKLE roots can
/// be compared after the heal; with five, each node holds different keys and the
/// convergence check would need comparing replicas per partition (not built).
const NODES: usize = 3;
/// Cycles of the four kinds of fault: twelve steps of 1.5 to 4.5 s.
const CYCLES: usize = 3;
/// Counter keys (INCR, GET) and register keys (SET, SET IFEQ, SET NX, DEL, GET): few, so
/// that clients collide on them, and each key's history stays small enough for the
/// search. Counters are more: with three, a heal step left up to ~100 INCRs of unknown
/// outcome on one counter and the search gave up (20M steps) without a verdict.
const COUNTERS: u64 = 8;
const REGISTERS: u64 = 3;
/// Every client runs every kind of operation through every node.
const CLIENTS: u64 = 12;
/// Client ids of the final reads: this plus the node's index.
const FINAL_READER: u64 = 1000;
/// Generous for a loaded 2-core machine: after the heal, failure detectors notice the
/// nodes are back and anti-entropy runs every second.
const DEADLINE: Duration = Duration::from_secs(120);

type CounterOp = Operation<counter_register::Input, counter_register::Output>;
type RegisterOp = Operation<register::Input<i64>, register::Output<i64>>;

fn counter_name(key: u64) -> String {
    format!("nemesis:ctr{key}")
}

fn register_name(key: u64) -> String {
    format!("nemesis:reg{key}")
}

/// An operation of a history.
fn op<I, O>(
    client: u64,
    invoked: u64,
    returned: u64,
    input: I,
    outcome: Outcome<O>,
) -> Operation<I, O> {
    Operation {
        client,
        invoked,
        returned,
        input,
        outcome,
    }
}

/// What every client saw.
#[derive(Default, Debug)]
struct History {
    counters: Vec<(u64, CounterOp)>,
    registers: Vec<(u64, RegisterOp)>,
    /// After the heal: each node's SERIAL read of each key, by key name, in node order.
    finals: BTreeMap<String, Vec<Option<i64>>>,
}

/// A key of the workload.
#[derive(Debug, Clone, Copy)]
enum Key {
    Counter(u64),
    Register(u64),
}

impl Key {
    fn name(self) -> String {
        match self {
            Key::Counter(k) => counter_name(k),
            Key::Register(k) => register_name(k),
        }
    }
}

impl History {
    /// Node `node`'s read of `key` after the heal: into `finals` and the key's history.
    fn add_final_read(
        &mut self,
        node: usize,
        key: Key,
        invoked: u64,
        returned: u64,
        value: Option<i64>,
    ) {
        use counter_register::{Input as C, Output as CO};
        use register::{Input as R, Output as RO};
        let client = FINAL_READER + node as u64;
        self.finals.entry(key.name()).or_default().push(value);
        match key {
            Key::Counter(k) => {
                let read = op(
                    client,
                    invoked,
                    returned,
                    C::Read,
                    Outcome::Ok(CO::Value(value)),
                );
                self.counters.push((k, read));
            }
            Key::Register(k) => {
                let read = op(
                    client,
                    invoked,
                    returned,
                    R::Read,
                    Outcome::Ok(RO::Value(value)),
                );
                self.registers.push((k, read));
            }
        }
    }

    /// Every operation's outcome, for the summary.
    fn outcomes(&self) -> impl Iterator<Item = (u64, OutcomeKind)> + '_ {
        let counters = self
            .counters
            .iter()
            .map(|(_, op)| (op.invoked, kind(&op.outcome)));
        let registers = self
            .registers
            .iter()
            .map(|(_, op)| (op.invoked, kind(&op.outcome)));
        counters.chain(registers)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutcomeKind {
    Ok,
    Failed,
    Unknown,
}

fn kind<O>(outcome: &Outcome<O>) -> OutcomeKind {
    match outcome {
        Outcome::Ok(_) => OutcomeKind::Ok,
        Outcome::Failed => OutcomeKind::Failed,
        Outcome::Unknown => OutcomeKind::Unknown,
    }
}

/// Everything wrong with a finished history: final reads that disagree across nodes,
/// keys whose history has no legal order (or whose search gave up: not proven is not
/// passed), counters outside their bounds.
fn problems(h: &History) -> Vec<String> {
    let mut found = Vec::new();
    for (key, values) in &h.finals {
        if values.iter().any(|v| v != &values[0]) {
            found.push(format!(
                "{key}: the nodes' final reads disagree: {values:?}"
            ));
        }
    }
    for bad in check_per_key(&CounterRegister, h.counters.clone()) {
        found.push(format!("{}: {:?}", counter_name(bad.key), bad.verdict));
    }
    for bad in check_per_key(&Register::new(), h.registers.clone()) {
        found.push(format!("{}: {:?}", register_name(bad.key), bad.verdict));
    }
    for key in 0..COUNTERS {
        // An absent counter was never incremented: it counts as 0, as INCR starts there.
        let Some(Some(final_value)) = h.finals.get(&counter_name(key)).map(|v| v.first()) else {
            continue;
        };
        let final_value = final_value.unwrap_or(0);
        let increments: Vec<Operation<i64, counter_register::Output>> = h
            .counters
            .iter()
            .filter(|(k, _)| *k == key)
            .filter_map(|(_, o)| match o.input {
                counter_register::Input::Increment(delta) => Some(op(
                    o.client,
                    o.invoked,
                    o.returned,
                    delta,
                    o.outcome.clone(),
                )),
                counter_register::Input::Read => None,
            })
            .collect();
        if let Err(e) = check_counter(&increments, final_value) {
            found.push(format!("{}: {e}", counter_name(key)));
        }
    }
    found
}

struct Shared {
    start: Instant,
    stop: AtomicBool,
    history: Mutex<History>,
}

impl Shared {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}

/// A connection to `url` reading at SERIAL, made if `slot` has none.
fn connected<'a>(
    slot: &'a mut Option<redis::Connection>,
    url: &str,
) -> Option<&'a mut redis::Connection> {
    if slot.is_none() {
        let mut conn = redis::Client::open(url)
            .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
            .ok()?;
        // Above the cluster's consensus timeout: a request ends with the server's
        // answer, not a client-side timeout, unless the node itself is stuck.
        conn.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
        redis::cmd("CLUSTER")
            .arg("CONSISTENCY")
            .arg("SERIAL")
            .query::<()>(&mut conn)
            .ok()?;
        *slot = Some(conn);
    }
    slot.as_mut()
}

/// The outcome of a request; drops the connection if a late reply could still arrive on it.
fn settle<O>(result: redis::RedisResult<O>, slot: &mut Option<redis::Connection>) -> Outcome<O> {
    match result {
        Ok(out) => Outcome::Ok(out),
        Err(e) => {
            if spoils_connection(&e) {
                *slot = None;
            }
            outcome_of_error(&e)
        }
    }
}

fn client(id: u64, seed: u64, urls: Vec<String>, shared: Arc<Shared>) {
    let mut rng = StdRng::seed_from_u64(seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut slots: Vec<Option<redis::Connection>> = urls.iter().map(|_| None).collect();
    // The value this client last saw in each register: what its SET IFEQ expects.
    let mut last_seen: HashMap<u64, i64> = HashMap::new();
    let mut seq = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        let node = rng.gen_range(0..urls.len());
        let Some(conn) = connected(&mut slots[node], &urls[node]) else {
            std::thread::yield_now();
            continue;
        };
        seq += 1;
        let roll = rng.gen_range(0..10);
        let invoked = shared.now();
        if rng.gen_bool(0.5) {
            use counter_register::{Input, Output};
            let key = rng.gen_range(0..COUNTERS);
            let name = counter_name(key);
            let (input, result) = if roll < 6 {
                let r = redis::cmd("INCR").arg(&name).query::<i64>(conn);
                (Input::Increment(1), r.map(Output::Counted))
            } else {
                let r = redis::cmd("GET").arg(&name).query::<Option<i64>>(conn);
                (Input::Read, r.map(Output::Value))
            };
            let returned = shared.now();
            let outcome = settle(result, &mut slots[node]);
            let op = op(id, invoked, returned, input, outcome);
            shared.history.lock().unwrap().counters.push((key, op));
        } else {
            use register::{Input, Output};
            let key = rng.gen_range(0..REGISTERS);
            let name = register_name(key);
            let value = (id * 1_000_000 + seq) as i64;
            let mut set = redis::cmd("SET");
            set.arg(&name).arg(value);
            let (input, result) = match (roll, last_seen.get(&key)) {
                (0..=3, _) => {
                    let r = redis::cmd("GET").arg(&name).query::<Option<i64>>(conn);
                    (Input::Read, r.map(Output::Value))
                }
                (4..=5, _) => (
                    Input::Write(value),
                    set.query::<()>(conn).map(|()| Output::Done),
                ),
                (6..=7, Some(&expect)) => {
                    let r = set.arg("IFEQ").arg(expect).query::<Option<String>>(conn);
                    let input = Input::CompareAndSet {
                        expect: Some(expect),
                        new: value,
                    };
                    (input, r.map(|ok| Output::Swapped(ok.is_some())))
                }
                (6..=8, _) => {
                    let r = set.arg("NX").query::<Option<String>>(conn);
                    let input = Input::CompareAndSet {
                        expect: None,
                        new: value,
                    };
                    (input, r.map(|ok| Output::Swapped(ok.is_some())))
                }
                _ => {
                    let r = redis::cmd("DEL").arg(&name).query::<i64>(conn);
                    (Input::Delete, r.map(|_| Output::Done))
                }
            };
            let returned = shared.now();
            let outcome = settle(result, &mut slots[node]);
            match (&input, &outcome) {
                (Input::Read, Outcome::Ok(Output::Value(Some(v)))) => {
                    last_seen.insert(key, *v);
                }
                (Input::Write(v), Outcome::Ok(_))
                | (Input::CompareAndSet { new: v, .. }, Outcome::Ok(Output::Swapped(true))) => {
                    last_seen.insert(key, *v);
                }
                (Input::Read, Outcome::Ok(_)) | (Input::Delete, Outcome::Ok(_)) => {
                    last_seen.remove(&key);
                }
                _ => {}
            }
            let op = op(id, invoked, returned, input, outcome);
            shared.history.lock().unwrap().registers.push((key, op));
        }
    }
}

/// A SERIAL GET through node `url` after the heal, asked again while the answer says
/// nothing about the key (TIMEOUT: a connection between nodes still recovering from the
/// partition; TRYAGAIN, CLUSTERDOWN: a failure detector that has not noticed the heal
/// everywhere yet; a client-side timeout on a loaded machine, on a new connection) until
/// `deadline`. Reads change nothing, so asking again is safe; the read that answered goes
/// into the history.
fn final_read(
    slot: &mut Option<redis::Connection>,
    url: &str,
    name: &str,
    deadline: Instant,
    shared: &Shared,
) -> (u64, u64, Option<i64>) {
    loop {
        assert!(
            Instant::now() < deadline,
            "no answer to a final read of {name} through {url}"
        );
        let Some(conn) = connected(slot, url) else {
            continue;
        };
        let invoked = shared.now();
        match redis::cmd("GET").arg(name).query::<Option<i64>>(conn) {
            Ok(v) => return (invoked, shared.now(), v),
            Err(e) if spoils_connection(&e) => *slot = None,
            Err(e) if matches!(e.code(), Some("TIMEOUT" | "TRYAGAIN" | "CLUSTERDOWN")) => {}
            Err(e) => panic!("final read of {name} through {url}: {e}"),
        }
    }
}

/// Every node reads every key at SERIAL; the reads go into the history and `finals`.
fn read_everything_everywhere(c: &NetCluster, shared: &Shared) {
    let deadline = Instant::now() + DEADLINE;
    for (i, node) in c.nodes.iter().enumerate() {
        let (url, mut slot) = (node.url(), None);
        let keys = (0..COUNTERS)
            .map(Key::Counter)
            .chain((0..REGISTERS).map(Key::Register));
        for key in keys {
            let (invoked, returned, value) =
                final_read(&mut slot, &url, &key.name(), deadline, shared);
            let mut h = shared.history.lock().unwrap();
            h.add_final_read(i, key, invoked, returned, value);
        }
    }
}

/// One line per step: what the clients' operations invoked during it came to (the
/// nemesis must bite: steps with a cut-off side show failed and unknown outcomes).
fn summary(history: &History, steps: &[(u64, Fault)], end: u64) -> String {
    let mut lines = Vec::new();
    for (n, (from, fault)) in steps.iter().enumerate() {
        let to = steps.get(n + 1).map_or(end, |(t, _)| *t);
        let (mut ok, mut failed, mut unknown) = (0, 0, 0);
        for (_, kind) in history.outcomes().filter(|(t, _)| (*from..to).contains(t)) {
            match kind {
                OutcomeKind::Ok => ok += 1,
                OutcomeKind::Failed => failed += 1,
                OutcomeKind::Unknown => unknown += 1,
            }
        }
        lines.push(format!(
            "  {:>5.1} s  {:<32} ok {ok:>4}  failed {failed:>4}  unknown {unknown:>4}",
            *from as f64 / 1e9,
            fault.to_string(),
        ));
    }
    lines.join("\n")
}

#[test]
fn partitions_aimed_at_consensus_leave_a_linearizable_history() {
    let Some(c) = NetCluster::start_or_skip(
        NODES,
        &[
            "--cluster-request-timeout-ms",
            "1000",
            "--cluster-consensus-timeout-ms",
            "2000",
        ],
    ) else {
        return;
    };
    let seed = nemesis::seed_from_env();
    let schedule = nemesis::schedule(seed, NODES, CYCLES);
    // Straight to stderr (libtest would keep eprintln! of a passing test): the seed is
    // what replays a run.
    let _ = writeln!(
        std::io::stderr(),
        "nemesis seed {seed} (replay: NEMESIS_SEED={seed} cargo test --workspace --test cluster_partition_nemesis)"
    );
    let urls: Vec<String> = c.nodes.iter().map(|n| n.url()).collect();
    let shared = Arc::new(Shared {
        start: Instant::now(),
        stop: AtomicBool::new(false),
        history: Mutex::new(History::default()),
    });
    let clients: Vec<_> = (0..CLIENTS)
        .map(|id| {
            let (urls, shared) = (urls.clone(), shared.clone());
            std::thread::spawn(move || client(id, seed, urls, shared))
        })
        .collect();

    let mut steps: Vec<(u64, Fault)> = Vec::new();
    for step in &schedule {
        nemesis::apply(&c, &step.fault);
        steps.push((shared.now(), step.fault.clone()));
        // The fault lasting is the workload itself, not a wait for something to happen.
        std::thread::sleep(step.lasts);
    }
    shared.stop.store(true, Ordering::Relaxed);
    let end = shared.now();
    for t in clients {
        t.join().expect("client thread");
    }

    c.heal_all();
    c.wait_all_up();
    read_everything_everywhere(&c, &shared);
    poll_until(
        "all nodes return identical CLUSTER MERKLE arrays",
        DEADLINE,
        || c.merkle_roots_agree(),
        || c.logs(),
    );

    let history = std::mem::take(&mut *shared.history.lock().unwrap());
    eprintln!(
        "schedule of seed {seed}:\n{}",
        summary(&history, &steps, end)
    );
    // A run where nothing of a kind succeeded would prove nothing about it.
    let counters = |pattern: fn(&CounterOp) -> bool| {
        history
            .counters
            .iter()
            .filter(|(_, op)| pattern(op))
            .count()
    };
    let registers = |pattern: fn(&RegisterOp) -> bool| {
        history
            .registers
            .iter()
            .filter(|(_, op)| pattern(op))
            .count()
    };
    let seen = [
        (
            "INCR acknowledged",
            counters(|op| {
                matches!(
                    op.outcome,
                    Outcome::Ok(counter_register::Output::Counted(_))
                )
            }),
        ),
        (
            "counter read a value",
            counters(|op| {
                matches!(
                    op.outcome,
                    Outcome::Ok(counter_register::Output::Value(Some(_)))
                )
            }),
        ),
        (
            "register read a value",
            registers(|op| matches!(op.outcome, Outcome::Ok(register::Output::Value(Some(_))))),
        ),
        (
            "SET acknowledged",
            registers(|op| {
                matches!(op.input, register::Input::Write(_))
                    && matches!(op.outcome, Outcome::Ok(_))
            }),
        ),
        (
            "SET IFEQ/NX won",
            registers(|op| matches!(op.outcome, Outcome::Ok(register::Output::Swapped(true)))),
        ),
        (
            "SET IFEQ/NX lost",
            registers(|op| matches!(op.outcome, Outcome::Ok(register::Output::Swapped(false)))),
        ),
    ];
    eprintln!("{seen:?}");
    for (what, count) in seen {
        assert!(count > 0, "seed {seed}: no operation where {what}");
    }

    let started = Instant::now();
    let found = problems(&history);
    eprintln!(
        "checked {} counter and {} register operations in {:?}",
        history.counters.len(),
        history.registers.len(),
        started.elapsed()
    );
    if !found.is_empty() {
        let path =
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("nemesis-{seed}.txt"));
        let mut text = format!(
            "seed {seed}\n{}\n{}\n",
            found.join("\n"),
            summary(&history, &steps, end)
        );
        for (k, op) in &history.counters {
            text.push_str(&format!("{} {op:?}\n", counter_name(*k)));
        }
        for (k, op) in &history.registers {
            text.push_str(&format!("{} {op:?}\n", register_name(*k)));
        }
        text.push_str(&format!("final reads {:?}\n", history.finals));
        let _ = std::fs::create_dir_all(env!("CARGO_TARGET_TMPDIR"));
        let _ = std::fs::write(&path, text);
        panic!(
            "seed {seed} (replay: NEMESIS_SEED={seed}): {}\nhistory kept in {}\n{}",
            found.join("\n"),
            path.display(),
            c.logs()
        );
    }
}

/// Final reads of counter 0 and register 0 by every node, from time 1000.
fn add_final_reads(h: &mut History, counter: [Option<i64>; NODES], register: [Option<i64>; NODES]) {
    for (i, (c, r)) in counter.into_iter().zip(register).enumerate() {
        let at = 1000 + 10 * i as u64;
        h.add_final_read(i, Key::Counter(0), at, at + 5, c);
        h.add_final_read(i, Key::Register(0), at, at + 5, r);
    }
}

/// What a run looks like while node 3 is cut off: clients through nodes 1 and 2 count
/// and swap, an INCR through node 3 times out (unknown: here it landed later), a
/// SET NX through node 3 is refused (CLUSTERDOWN), then every node reads after the heal.
fn legal_history() -> History {
    history_with_final_reads([Some(3); NODES], [Some(10); NODES])
}

/// [`legal_history`] up to the heal, then these final reads of counter 0 and register 0.
fn history_with_final_reads(
    counter: [Option<i64>; NODES],
    register: [Option<i64>; NODES],
) -> History {
    use counter_register::{Input as C, Output as CO};
    use register::{Input as R, Output as RO};
    let set_nx = |new| R::CompareAndSet { expect: None, new };
    let mut h = History {
        counters: vec![
            (
                0,
                op(0, 0, 10, C::Increment(1), Outcome::Ok(CO::Counted(1))),
            ),
            (0, op(2, 5, 0, C::Increment(1), Outcome::Unknown)),
            (
                0,
                op(1, 20, 30, C::Increment(1), Outcome::Ok(CO::Counted(3))),
            ),
            (0, op(3, 40, 50, C::Read, Outcome::Ok(CO::Value(Some(3))))),
        ],
        registers: vec![
            (0, op(0, 0, 10, set_nx(7), Outcome::Ok(RO::Swapped(true)))),
            (0, op(1, 5, 15, set_nx(8), Outcome::Ok(RO::Swapped(false)))),
            (0, op(2, 6, 16, set_nx(9), Outcome::Failed)),
            (
                0,
                op(
                    3,
                    20,
                    30,
                    R::CompareAndSet {
                        expect: Some(7),
                        new: 10,
                    },
                    Outcome::Ok(RO::Swapped(true)),
                ),
            ),
            (0, op(4, 40, 50, R::Read, Outcome::Ok(RO::Value(Some(10))))),
        ],
        finals: BTreeMap::new(),
    };
    add_final_reads(&mut h, counter, register);
    h
}

/// Panics unless the analysis of `h` reports a problem naming `key` that contains `what`.
fn assert_reports(h: &History, key: &str, what: &str) {
    let found = problems(h);
    assert!(
        found.iter().any(|p| p.starts_with(key) && p.contains(what)),
        "no problem with {key:?} containing {what:?} in {found:?}"
    );
}

#[test]
fn the_analysis_accepts_a_legal_history_of_the_same_shape() {
    assert_eq!(problems(&legal_history()), Vec::<String>::new());
}

#[test]
fn the_analysis_catches_a_stale_read_through_the_cut_off_node() {
    // Node 3 answering a read from its own replica, which missed the second INCR.
    let mut h = legal_history();
    h.counters.push((
        0,
        op(
            5,
            60,
            70,
            counter_register::Input::Read,
            Outcome::Ok(counter_register::Output::Value(Some(1))),
        ),
    ));
    assert_reports(&h, &counter_name(0), "Violation");
}

#[test]
fn the_analysis_catches_two_winners_of_one_compare_and_set() {
    // Both sides of a partition accepting SET NX: the loser's refusal was a lie.
    let mut h = legal_history();
    for (_, o) in &mut h.registers {
        if o.client == 1 {
            o.outcome = Outcome::Ok(register::Output::Swapped(true));
        }
    }
    assert_reports(&h, &register_name(0), "Violation");
}

#[test]
fn the_analysis_catches_an_increment_counted_twice() {
    // The unknown INCR applied twice (a retried accept run as a new round): the final
    // value is one too many for every order and above the counter's bounds.
    let h = history_with_final_reads([Some(4); NODES], [Some(10); NODES]);
    assert_reports(&h, &counter_name(0), "Violation");
    assert_reports(&h, &counter_name(0), "allow only 2..=3");
}

#[test]
fn the_analysis_catches_nodes_that_disagree_after_the_heal() {
    let mut register = [Some(10); NODES];
    register[NODES - 1] = Some(7);
    let h = history_with_final_reads([Some(3); NODES], register);
    assert_reports(&h, &register_name(0), "final reads disagree");
}
