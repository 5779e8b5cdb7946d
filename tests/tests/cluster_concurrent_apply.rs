//! Two operators applying different layout changes at the same time (issue 10;
//! docs/cluster.md, "Changing the layout", "Commit."), with real kvd processes: three
//! members and two candidate nodes. In each round two threads, released together, stage
//! a different change on two different members and apply the same next version.
//!
//! Staged changes are one cluster metadata entry (the newest write wins, and it spreads
//! while the operators work), so the two APPLYs may plan from different staged changes
//! (then the layout register's consensus round takes one layout and refuses the other)
//! or from the same ones (then both commit the same layout). Whatever the interleaving:
//! no version ever names two layouts on any node (sampled throughout); an APPLY that
//! succeeded made the layout every node ends with; one that failed says why and its node
//! holds the winner; and every acknowledged write reads back through every member.

use kv_tests::cluster::{cluster_info, connect, layout_command as layout, my_id, Cluster};
use kv_tests::layout_change::{self, CHANGE_FLAGS as FLAGS};
use kv_tests::layout_history::{self, LayoutHistory};
use kv_tests::{eventually, info_field, Kvd};
use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// How long one layout change may take on a loaded two-core machine.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(120);

/// Client writes made before the races, read back after them.
const KEYS: u64 = 300;

/// Node indexes: 0 to 2 are the first members (the operators work on 0 and 1); 3 and 4
/// are started to join and wait to be added.
const OPERATOR_A: usize = 0;
const OPERATOR_B: usize = 1;
const LAST_FIRST_MEMBER: usize = 2;
const CANDIDATE_1: usize = 3;
const CANDIDATE_2: usize = 4;

/// One operator's change.
#[derive(Clone, Copy, Debug)]
enum Change {
    /// `ASSIGN <node> CAPACITY <capacity>`: adds the node, or sets a member's capacity.
    Assign { node: usize, capacity: u32 },
    /// `REMOVE <node>`.
    Remove { node: usize },
}

/// Per round, operator A's change and operator B's. Each is valid whichever changes won
/// the rounds before (an ASSIGN adds a node or changes a member's capacity; node 2 stays
/// a member until the last round, and at least one candidate has joined by then, so three
/// members remain), and the two always differ: every round races two different layouts
/// for one version.
const ROUNDS: [(Change, Change); 3] = [
    (
        Change::Assign {
            node: CANDIDATE_1,
            capacity: 1,
        },
        Change::Assign {
            node: CANDIDATE_2,
            capacity: 1,
        },
    ),
    (
        Change::Assign {
            node: CANDIDATE_1,
            capacity: 2,
        },
        Change::Assign {
            node: CANDIDATE_2,
            capacity: 2,
        },
    ),
    (
        Change::Assign {
            node: CANDIDATE_1,
            capacity: 3,
        },
        Change::Remove {
            node: LAST_FIRST_MEMBER,
        },
    ),
];

/// A layout's members: node id -> capacity.
type Members = BTreeMap<String, u32>;

/// The five nodes, with the names operators give them.
struct Nodes {
    kvd: Vec<Kvd>,
    ids: Vec<String>,
    bus: Vec<String>,
}

impl Nodes {
    fn index_of(&self, id: &str) -> usize {
        self.ids
            .iter()
            .position(|i| i == id)
            .unwrap_or_else(|| panic!("no node has id {id}"))
    }
}

impl Change {
    /// The CLUSTER LAYOUT arguments that stage it.
    fn args(&self, nodes: &Nodes) -> Vec<String> {
        match *self {
            Change::Assign { node, capacity } => vec![
                "ASSIGN".into(),
                nodes.bus[node].clone(),
                "CAPACITY".into(),
                capacity.to_string(),
            ],
            Change::Remove { node } => vec!["REMOVE".into(), nodes.ids[node].clone()],
        }
    }

    /// The members after this change of `members`.
    fn applied_to(&self, members: &Members, nodes: &Nodes) -> Members {
        let mut after = members.clone();
        match *self {
            Change::Assign { node, capacity } => {
                after.insert(nodes.ids[node].clone(), capacity);
            }
            Change::Remove { node } => {
                after.remove(&nodes.ids[node]);
            }
        }
        after
    }
}

/// The members of the layout a CLUSTER LAYOUT SHOW reply shows (`node:<id> member <addr>
/// zone=<z> capacity=<c> ...`; departing nodes are not members).
fn members_of(shown: &str) -> Members {
    shown
        .lines()
        .filter_map(|l| l.strip_prefix("node:"))
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            if fields.get(1) != Some(&"member") {
                return None;
            }
            let capacity = fields
                .iter()
                .find_map(|f| f.strip_prefix("capacity="))
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("no capacity in node:{l}"));
            Some((fields[0].to_string(), capacity))
        })
        .collect()
}

/// One operator: through the node at `url`, stages `change` and applies version `next`,
/// released together with the other operator by `start`. Returns APPLY's reply or error.
fn operate(url: &str, change: &[String], next: u64, start: &Barrier) -> Result<String, String> {
    let mut c = connect(url);
    start.wait();
    // Staging fails only when the metadata did not reach a majority (CLUSTERDOWN): retried.
    eventually(
        "the change is staged",
        CHANGE_TIMEOUT,
        || match redis::cmd("CLUSTER")
            .arg("LAYOUT")
            .arg(change)
            .query::<String>(&mut c)
        {
            Ok(_) => true,
            Err(e) if e.code() == Some("CLUSTERDOWN") => false,
            Err(e) => panic!("staging {change:?} failed: {e}"),
        },
    );
    redis::cmd("CLUSTER")
        .arg("LAYOUT")
        .arg("APPLY")
        .arg(next)
        .query::<String>(&mut c)
        .map_err(|e| e.to_string())
}

/// Why an APPLY that lost failed, from its error; panics on any other error. Each says
/// to look at the layout again, and each is a different interleaving of the race.
fn losing_case(error: &str) -> &'static str {
    if error.contains("was committed by another change") {
        // Both planned, from different staged changes; the register took the other one.
        "the register refused the second layout of the version"
    } else if error.contains("is still under way") || error.contains("review CLUSTER LAYOUT PLAN") {
        // The winner's layout reached the loser's node before the loser planned.
        "the loser's node held the winner's layout when it planned"
    } else if error.contains("no layout changes are staged") {
        // The winner applied the staged changes and cleared them before the loser read them.
        "the winner applied and cleared the staged changes first"
    } else {
        panic!("an APPLY failed with an unexpected error: {error}");
    }
}

/// Waits until `via` holds a layout of version `next` or newer without a transition (the
/// change applied at `next` ended) and returns its SHOW.
fn wait_settled(via: &Kvd, next: u64) -> String {
    let mut settled = String::new();
    eventually(
        &format!("the change applied at version {next} ended"),
        CHANGE_TIMEOUT,
        || {
            let Ok(shown) = layout(via, &["SHOW"]) else {
                return false;
            };
            let ended = layout_history::layout_version(&shown).is_some_and(|v| v >= next)
                && info_field(&shown, "transition").as_deref() == Some("none");
            if ended {
                settled = shown;
            }
            ended
        },
    );
    settled
}

/// Polls until node `name` shows `want` (a normalized SHOW); panics with what it shows.
fn assert_holds(node: &Kvd, name: usize, want: &str) {
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    loop {
        let shown = layout(node, &["SHOW"])
            .map(|s| layout_history::normalize(&s))
            .unwrap_or_else(|e| e.to_string());
        if shown == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {name} never held the layout the change ended with:\n{want}\nit shows:\n{shown}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One round: both operators apply the next version at once; checks the outcome and
/// returns which case of the race it was. Ends once every member holds the layout that
/// ends the change and the staged changes are cleared.
fn race(nodes: &Nodes, round: usize, (a, b): (Change, Change)) -> &'static str {
    let base_shown = layout(&nodes.kvd[OPERATOR_A], &["SHOW"]).expect("SHOW");
    let base = members_of(&base_shown);
    let next = layout_history::layout_version(&base_shown).expect("layout version") + 1;
    let start = Arc::new(Barrier::new(2));
    let operators: Vec<_> = [(OPERATOR_A, a), (OPERATOR_B, b)]
        .into_iter()
        .map(|(via, change)| {
            let (url, args, start) = (nodes.kvd[via].url(false), change.args(nodes), start.clone());
            std::thread::spawn(move || operate(&url, &args, next, &start))
        })
        .collect();
    let replies: Vec<Result<String, String>> = operators
        .into_iter()
        .map(|t| t.join().expect("operator thread"))
        .collect();

    // Some layout of version `next` was committed, and the change runs to its end.
    let settled_shown = wait_settled(&nodes.kvd[OPERATOR_A], next);
    let settled = layout_history::layout_version(&settled_shown).expect("layout version");
    let winner = members_of(&settled_shown);
    let both = b.applied_to(&a.applied_to(&base, nodes), nodes);
    let outcomes = [
        ("A's change", a.applied_to(&base, nodes)),
        ("B's change", b.applied_to(&base, nodes)),
        ("both changes", both),
    ];
    let made = outcomes
        .iter()
        .find(|(_, members)| *members == winner)
        .map(|(name, _)| *name)
        .unwrap_or_else(|| {
            panic!("round {round}: version {next} is none of the operators' layouts: {winner:?}; they were {outcomes:?}")
        });

    let mut case = "both APPLYs made one layout (they saw the same staged changes)";
    for ((who, own), reply) in [("A", a), ("B", b)].iter().zip(&replies) {
        match reply {
            Ok(applied) => {
                // The layout it committed holds its operator's change (staging it again
                // would change nothing), whatever else was staged with it.
                assert_eq!(
                    own.applied_to(&winner, nodes),
                    winner,
                    "round {round}: operator {who}'s APPLY of version {next} succeeded, but the layout lacks its change {own:?}"
                );
                // It committed version `next`, the one every node ends with: with a
                // transition exactly when that change took two more versions to end.
                assert_eq!(
                    info_field(applied, "layout_version"),
                    Some(next.to_string()),
                    "{applied}"
                );
                let started = info_field(applied, "transition").as_deref() == Some("started");
                assert_eq!(
                    settled,
                    if started { next + 2 } else { next },
                    "operator {who}'s APPLY said transition {started}, the change ended at version {settled}:\n{applied}"
                );
            }
            Err(error) => case = losing_case(error),
        }
    }
    if let [Ok(first), Ok(second)] = &replies[..] {
        // Both committed version `next`: it can only have been the same layout.
        assert_eq!(first, second, "two APPLYs of version {next} succeeded");
    }
    eprintln!("round {round}: {made} committed at version {next} (ended at {settled}); {case}; replies {replies:?}");

    // Every member, the loser's node included, holds that layout; a removed node knows.
    let want = layout_history::normalize(&settled_shown);
    for id in winner.keys() {
        let i = nodes.index_of(id);
        assert_holds(&nodes.kvd[i], i, &want);
    }
    for i in (0..nodes.kvd.len()).filter(|i| base.contains_key(&nodes.ids[*i])) {
        if !winner.contains_key(&nodes.ids[i]) {
            eventually(
                &format!("node {i} knows it was removed"),
                CHANGE_TIMEOUT,
                || cluster_info(&nodes.kvd[i], "kvd_removed_in_layout").is_some_and(|v| v != "0"),
            );
        }
    }

    // A losing change may still be staged: dropped before the next round.
    layout(&nodes.kvd[OPERATOR_A], &["REVERT"]).expect("REVERT");
    eventually("no change is staged", CHANGE_TIMEOUT, || {
        layout(&nodes.kvd[OPERATOR_B], &["SHOW"])
            .is_ok_and(|s| info_field(&s, "staged_changes").as_deref() == Some("0"))
    });
    case
}

#[test]
fn two_operators_applying_different_changes_at_once_commit_one_layout_per_version() {
    let began = Instant::now();
    let cluster = Cluster::start(3, FLAGS);
    let bus: Vec<u16> = cluster.nodes.iter().map(layout_change::bus_port).collect();
    let mut kvd = cluster.nodes;
    for _ in [CANDIDATE_1, CANDIDATE_2] {
        kvd.push(layout_change::start_joiner(&bus, FLAGS).0);
    }
    let nodes = Nodes {
        ids: kvd.iter().map(my_id).collect(),
        bus: kvd
            .iter()
            .map(|n| format!("127.0.0.1:{}", layout_change::bus_port(n)))
            .collect(),
        kvd,
    };
    for candidate in [CANDIDATE_1, CANDIDATE_2] {
        for operator in [OPERATOR_A, OPERATOR_B] {
            let bus = layout_change::bus_port(&nodes.kvd[candidate]);
            layout_change::wait_met(&nodes.kvd[operator], bus, CHANGE_TIMEOUT);
        }
    }
    let acked = layout_change::write_numbered_keys(&nodes.kvd[OPERATOR_A], KEYS);
    assert_eq!(acked.len() as u64, KEYS, "every write acknowledged");

    let history = LayoutHistory::start(nodes.kvd.iter().map(|n| n.url(false)).collect());
    let mut cases: BTreeMap<&str, usize> = BTreeMap::new();
    for (round, changes) in ROUNDS.into_iter().enumerate() {
        *cases.entry(race(&nodes, round + 1, changes)).or_default() += 1;
    }
    let history = history.finish();
    layout_history::assert_one_layout_per_version(&history);
    eprintln!("rounds per case: {cases:?}");
    eprintln!(
        "versions sampled (version: nodes that showed it): {:?}",
        history
            .iter()
            .map(|(v, layouts)| (v, layouts.values().flatten().collect::<Vec<_>>()))
            .collect::<Vec<_>>()
    );

    let final_shown = layout(&nodes.kvd[OPERATOR_A], &["SHOW"]).expect("SHOW");
    let members: Vec<&Kvd> = members_of(&final_shown)
        .keys()
        .map(|id| &nodes.kvd[nodes.index_of(id)])
        .collect();
    layout_change::assert_all_readable(&acked, &members);
    eprintln!("took {:?}", began.elapsed());
}
