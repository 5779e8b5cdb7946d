//! A seeded schedule of network faults for a [`NetCluster`] (Jepsen's partition nemesis):
//! each cycle runs isolate-one-node, majority/minority split, bridge and heal once, in a
//! random order, with random nodes and a random duration each. The same seed gives the
//! same schedule (`NEMESIS_SEED` replays one); which operations the clients happen to
//! run during each step depends on timing and is not replayed.
//!
//! A fault is a set of cut links (a "grudge"): [`apply`] heals everything, then cuts
//! each pair with [`NetCluster::cut`], so one step replaces the previous one whole.

use crate::netns::NetCluster;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// Shortest step: long enough for requests through the cut-off side to time out and
/// for failure detectors to start suspecting (both take about a second).
const SHORTEST_STEP: Duration = Duration::from_millis(1500);
/// Longest step: with three cycles of four steps the schedule stays under a minute.
const LONGEST_STEP: Duration = Duration::from_millis(4500);

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
            Fault::Heal => Vec::new(),
        };
        cuts.sort_unstable();
        cuts
    }

    /// One fault of each kind, with nodes drawn from `rng`.
    fn one_of_each(n: usize, rng: &mut StdRng) -> Vec<Fault> {
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
        ]
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

/// `cycles` cycles of the four kinds of fault for `n` nodes (at least 3), drawn from
/// `seed`.
pub fn schedule(seed: u64, n: usize, cycles: usize) -> Vec<Step> {
    assert!(n >= 3, "a partition nemesis needs at least 3 nodes");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut steps = Vec::new();
    for _ in 0..cycles {
        let mut faults = Fault::one_of_each(n, &mut rng);
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

/// Makes the network of `c` look as `fault` says, whatever it looked like before.
pub fn apply(c: &NetCluster, fault: &Fault) {
    c.heal_all();
    for (a, b) in fault.cuts(c.nodes.len()) {
        c.cut(a, b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                let Fault::Split { minority } = &Fault::one_of_each(n, &mut rng)[1] else {
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
                let fault = Fault::one_of_each(n, &mut rng).remove(2);
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
        let a = schedule(42, 3, 3);
        assert_eq!(a, schedule(42, 3, 3));
        assert_ne!(a, schedule(43, 3, 3));
        for cycle in a.chunks(4) {
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
}
