//! A seeded schedule of faults for a [`NetCluster`] (Jepsen's nemesis): each cycle runs
//! one fault of each kind once, in a random order, with random nodes and a random
//! duration each. Network faults: isolate one node, majority/minority split, bridge,
//! heal. Process faults: kill -9 (restarted on the same data when the step ends), SIGSTOP
//! (SIGCONT when the step ends; every step outlasts the lock leases the workloads use),
//! and a clock offset (the node restarted cleanly with `--cluster-test-clock-offset-ms`,
//! within `cluster-max-clock-offset-ms` except once per schedule, far beyond it; restarted
//! without it when the step ends). The same seed gives the same schedule (`NEMESIS_SEED`
//! replays one); which operations the clients happen to run during each step depends on
//! timing and is not replayed.
//!
//! A network fault is a set of cut links (a "grudge"): [`Nemesis::apply`] ends the
//! previous step's process fault, heals everything, then cuts each pair with
//! [`NetCluster::cut`], so one step replaces the previous one whole.
//!
//! The clock offset is a start-up flag rather than a setting changed at run time: it
//! reaches the hybrid clock, the clock pings and the skew check through the node's
//! configuration, read once at start (cluster/src/node/mod.rs, background.rs), so a
//! restart is the one clean way to change it.

use crate::netns::NetCluster;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// Shortest step: long enough for requests through the cut-off side to time out and
/// for failure detectors to start suspecting (both take about a second).
const SHORTEST_STEP: Duration = Duration::from_millis(1500);
/// Longest step: with two cycles of seven steps the schedule stays under a minute.
const LONGEST_STEP: Duration = Duration::from_millis(4500);
/// A clock offset within the bound is this many percent of it (either sign): large
/// enough to matter for leases and versions, small enough to stay allowed.
const SKEW_WITHIN_PERCENT: std::ops::RangeInclusive<u64> = 20..=80;
/// The offset beyond the bound, in multiples of it: far enough that the node's ping
/// rounds measure it beyond the bound whatever the network's delays.
const SKEW_BEYOND: u64 = 6;

/// What the network looks like during one step (nodes are 0-based indexes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// One node cut off from every other.
    Isolate {
        /// The node alone.
        node: usize,
    },
    /// The nodes in `minority` (fewer than half) cut off from the rest, which keep a
    /// majority. With three nodes the minority is one node, as for `Isolate`.
    Split {
        /// The smaller side.
        minority: Vec<usize>,
    },
    /// Every link between `left` and `right` cut; `bridge` reaches both sides, so each
    /// side plus the bridge is a majority and the two majorities share one node.
    Bridge {
        /// One side.
        left: Vec<usize>,
        /// The node connected to everyone.
        bridge: usize,
        /// The other side.
        right: Vec<usize>,
    },
    /// Every link up.
    Heal,
    /// The node killed with SIGKILL (a crash); restarted on its data when the step ends.
    Kill {
        /// The node killed.
        node: usize,
    },
    /// The node frozen with SIGSTOP for the whole step, its connections open (a long GC
    /// pause); SIGCONT when the step ends.
    Pause {
        /// The node frozen.
        node: usize,
    },
    /// The node restarted cleanly with its wall clock `offset_ms` off the others';
    /// restarted without the offset when the step ends.
    Skew {
        /// The node whose clock is off.
        node: usize,
        /// How far off, in ms (negative: behind).
        offset_ms: i64,
    },
}

impl Fault {
    /// The links this fault cuts, as pairs `(a, b)` with `a < b`, in a cluster of `n`
    /// nodes.
    pub fn cuts(&self, n: usize) -> Vec<(usize, usize)> {
        let between = |side: &[usize], other: &[usize]| -> Vec<(usize, usize)> {
            side.iter()
                .flat_map(|&a| other.iter().map(move |&b| (a.min(b), a.max(b))))
                .collect()
        };
        let rest =
            |side: &[usize]| -> Vec<usize> { (0..n).filter(|i| !side.contains(i)).collect() };
        let mut cuts = match self {
            Fault::Isolate { node } => between(&[*node], &rest(&[*node])),
            Fault::Split { minority } => between(minority, &rest(minority)),
            Fault::Bridge { left, right, .. } => between(left, right),
            // Process faults leave the network whole.
            Fault::Heal | Fault::Kill { .. } | Fault::Pause { .. } | Fault::Skew { .. } => {
                Vec::new()
            }
        };
        cuts.sort_unstable();
        cuts
    }

    /// One fault of each kind, with nodes drawn from `rng`; the clock offset is within
    /// `max_offset_ms` unless `beyond`.
    fn one_of_each(n: usize, max_offset_ms: u64, beyond: bool, rng: &mut StdRng) -> Vec<Fault> {
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(rng);
        let isolate = Fault::Isolate {
            node: rng.gen_range(0..n),
        };
        let mut minority = order[..(n - 1) / 2].to_vec();
        minority.sort_unstable();
        order.shuffle(rng);
        let (left, rest) = order.split_at((n - 1) / 2);
        let (bridge, right) = rest.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        let mut left = left.to_vec();
        let mut right = right.to_vec();
        left.sort_unstable();
        right.sort_unstable();
        vec![
            isolate,
            Fault::Split { minority },
            Fault::Bridge {
                left,
                bridge,
                right,
            },
            Fault::Heal,
            Fault::Kill {
                node: rng.gen_range(0..n),
            },
            Fault::Pause {
                node: rng.gen_range(0..n),
            },
            Fault::Skew {
                node: rng.gen_range(0..n),
                offset_ms: clock_offset(max_offset_ms, beyond, rng),
            },
        ]
    }

    /// Whether the fault is a process's (kill, pause, clock), not the network's.
    pub fn is_process_fault(&self) -> bool {
        matches!(
            self,
            Fault::Kill { .. } | Fault::Pause { .. } | Fault::Skew { .. }
        )
    }
}

/// A clock offset of either sign: within `max_ms` ([`SKEW_WITHIN_PERCENT`] of it), or
/// [`SKEW_BEYOND`] times it.
fn clock_offset(max_ms: u64, beyond: bool, rng: &mut StdRng) -> i64 {
    let magnitude = if beyond {
        max_ms * SKEW_BEYOND
    } else {
        max_ms * rng.gen_range(SKEW_WITHIN_PERCENT) / 100
    };
    let magnitude = i64::try_from(magnitude).unwrap_or(i64::MAX);
    if rng.gen_bool(0.5) {
        magnitude
    } else {
        -magnitude
    }
}

impl std::fmt::Display for Fault {
    /// Nodes numbered from 1, as the harness's logs and addresses number them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |nodes: &[usize]| -> String {
            let names: Vec<String> = nodes.iter().map(|i| (i + 1).to_string()).collect();
            names.join(",")
        };
        match self {
            Fault::Isolate { node } => write!(f, "isolate node {}", node + 1),
            Fault::Split { minority } => write!(f, "split off minority {{{}}}", names(minority)),
            Fault::Bridge {
                left,
                bridge,
                right,
            } => write!(
                f,
                "bridge {{{}}} - {} - {{{}}}",
                names(left),
                bridge + 1,
                names(right)
            ),
            Fault::Heal => write!(f, "heal"),
            Fault::Kill { node } => write!(f, "kill -9 node {}", node + 1),
            Fault::Pause { node } => write!(f, "SIGSTOP node {}", node + 1),
            Fault::Skew { node, offset_ms } => {
                write!(f, "clock of node {} off {offset_ms:+} ms", node + 1)
            }
        }
    }
}

/// One step of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The network during the step.
    pub fault: Fault,
    /// How long it lasts.
    pub lasts: Duration,
}

/// `cycles` cycles of the seven kinds of fault for `n` nodes (at least 3), drawn from
/// `seed`; clock offsets are within `max_offset_ms` but in one cycle.
pub fn schedule(seed: u64, n: usize, cycles: usize, max_offset_ms: u64) -> Vec<Step> {
    assert!(n >= 3, "a partition nemesis needs at least 3 nodes");
    let mut rng = StdRng::seed_from_u64(seed);
    let beyond_in = rng.gen_range(0..cycles.max(1));
    let mut steps = Vec::new();
    for cycle in 0..cycles {
        let mut faults = Fault::one_of_each(n, max_offset_ms, cycle == beyond_in, &mut rng);
        faults.shuffle(&mut rng);
        for fault in faults {
            let lasts = rng.gen_range(SHORTEST_STEP..=LONGEST_STEP);
            steps.push(Step { fault, lasts });
        }
    }
    steps
}

/// `NEMESIS_SEED` if set (a failed run prints its seed), else a fresh one.
pub fn seed_from_env() -> u64 {
    match std::env::var("NEMESIS_SEED") {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("NEMESIS_SEED={text:?} is not a u64")),
        Err(_) => rand::random(),
    }
}

/// Applies faults to a cluster one step at a time, and remembers the process fault in
/// force so that the next step (or [`Nemesis::end`]) ends it first.
#[derive(Default)]
pub struct Nemesis {
    in_force: Option<Fault>,
}

impl Nemesis {
    /// Makes `c` look as `fault` says, whatever it looked like before: the previous
    /// process fault ended (a killed node restarted, a paused one resumed, a skewed one
    /// restarted with the true clock), every link up, then `fault`'s cuts or process
    /// fault. Returns once restarted nodes answer PING.
    pub fn apply(&mut self, c: &mut NetCluster, fault: &Fault) {
        self.end_process_fault(c);
        c.heal_all();
        for (a, b) in fault.cuts(c.nodes.len()) {
            c.cut(a, b);
        }
        match *fault {
            Fault::Kill { node } => c.nodes[node].kill9(),
            Fault::Pause { node } => c.nodes[node].pause(),
            Fault::Skew { node, offset_ms } => {
                let offset = offset_ms.to_string();
                c.nodes[node].stop();
                c.nodes[node].restart(&["--cluster-test-clock-offset-ms", &offset]);
            }
            _ => {}
        }
        if fault.is_process_fault() {
            self.in_force = Some(fault.clone());
        }
    }

    /// Ends the process fault in force and heals the network.
    pub fn end(&mut self, c: &mut NetCluster) {
        self.end_process_fault(c);
        c.heal_all();
    }

    fn end_process_fault(&mut self, c: &mut NetCluster) {
        match self.in_force.take() {
            Some(Fault::Kill { node }) => c.nodes[node].restart(&[]),
            Some(Fault::Pause { node }) => c.nodes[node].resume(),
            Some(Fault::Skew { node, .. }) => {
                c.nodes[node].stop();
                c.nodes[node].restart(&[]);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kinds of fault in one cycle.
    const KINDS: usize = 7;

    #[test]
    fn isolate_cuts_every_link_of_its_node_and_no_other() {
        let cuts = Fault::Isolate { node: 1 }.cuts(3);
        assert_eq!(cuts, vec![(0, 1), (1, 2)]);
    }

    #[test]
    fn a_split_leaves_a_majority_connected() {
        for n in [3, 5] {
            for seed in 0..20 {
                let mut rng = StdRng::seed_from_u64(seed);
                let Fault::Split { minority } = &Fault::one_of_each(n, 500, false, &mut rng)[1]
                else {
                    panic!("the second fault of each kind is the split");
                };
                assert!(minority.len() * 2 < n, "{minority:?} of {n}");
                assert!(!minority.is_empty());
                let cuts = Fault::Split {
                    minority: minority.clone(),
                }
                .cuts(n);
                assert_eq!(cuts.len(), minority.len() * (n - minority.len()));
            }
        }
    }

    #[test]
    fn a_bridge_node_reaches_both_sides_and_the_sides_do_not_meet() {
        for n in [3, 5] {
            for seed in 0..20 {
                let mut rng = StdRng::seed_from_u64(seed);
                let fault = Fault::one_of_each(n, 500, false, &mut rng).remove(2);
                let Fault::Bridge {
                    left,
                    bridge,
                    right,
                } = &fault
                else {
                    panic!("the third fault of each kind is the bridge");
                };
                assert_eq!(left.len() + right.len() + 1, n);
                let cuts = fault.cuts(n);
                assert!(cuts.iter().all(|&(a, b)| a != *bridge && b != *bridge));
                for l in left {
                    for r in right {
                        assert!(cuts.contains(&((*l).min(*r), (*l).max(*r))));
                    }
                }
                // Each side with the bridge is a majority.
                assert!((left.len() + 1) * 2 > n && (right.len() + 1) * 2 > n);
            }
        }
    }

    #[test]
    fn a_seed_replays_its_schedule_and_every_cycle_has_every_kind() {
        let a = schedule(42, 3, 3, 500);
        assert_eq!(a, schedule(42, 3, 3, 500));
        assert_ne!(a, schedule(43, 3, 3, 500));
        assert_eq!(a.len(), 3 * KINDS);
        for cycle in a.chunks(KINDS) {
            let kinds: Vec<std::mem::Discriminant<Fault>> = cycle
                .iter()
                .map(|s| std::mem::discriminant(&s.fault))
                .collect();
            for k in &kinds {
                assert_eq!(kinds.iter().filter(|o| *o == k).count(), 1);
            }
            assert!(cycle
                .iter()
                .all(|s| (SHORTEST_STEP..=LONGEST_STEP).contains(&s.lasts)));
        }
    }

    #[test]
    fn one_clock_offset_per_schedule_is_beyond_the_bound_and_the_others_within() {
        for seed in 0..20 {
            let offsets: Vec<i64> = schedule(seed, 3, 3, 500)
                .into_iter()
                .filter_map(|s| match s.fault {
                    Fault::Skew { offset_ms, .. } => Some(offset_ms),
                    _ => None,
                })
                .collect();
            assert_eq!(offsets.len(), 3);
            let beyond: Vec<&i64> = offsets.iter().filter(|o| o.abs() > 500).collect();
            assert_eq!(beyond.len(), 1, "{offsets:?}");
            assert!(offsets
                .iter()
                .all(|o| o.abs() >= 100 && (o.abs() <= 400 || o.abs() == 3000)));
        }
    }

    #[test]
    fn process_faults_cut_no_link() {
        for fault in [
            Fault::Kill { node: 0 },
            Fault::Pause { node: 1 },
            Fault::Skew {
                node: 2,
                offset_ms: -300,
            },
        ] {
            assert!(fault.is_process_fault());
            assert!(fault.cuts(3).is_empty());
        }
        assert!(!Fault::Isolate { node: 0 }.is_process_fault());
    }
}
