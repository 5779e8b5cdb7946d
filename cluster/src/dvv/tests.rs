//! The laws of the DVV-set join, on states reachable by replicas accepting writes and
//! syncing in random orders (arbitrary states could break the invariant that only
//! replica r makes r's dots, which the laws rely on).

use super::*;
use proptest::prelude::*;

const REPLICAS: u64 = 3;

/// One step of a small system of replicas.
#[derive(Debug, Clone)]
enum Step {
    /// Replica `at` accepts a write whose context was read from replica `read_from`
    /// (or none), with `value` (or a delete).
    Write {
        at: u64,
        read_from: Option<u64>,
        value: Option<u8>,
    },
    /// Replica `to` merges replica `from`'s state (repair, hint, anti-entropy).
    Sync { from: u64, to: u64 },
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (
            0..REPLICAS,
            proptest::option::of(0..REPLICAS),
            proptest::option::weighted(0.8, any::<u8>())
        )
            .prop_map(|(at, read_from, value)| Step::Write {
                at,
                read_from,
                value
            }),
        (0..REPLICAS, 0..REPLICAS).prop_map(|(from, to)| Step::Sync { from, to }),
    ]
}

/// Runs `steps` and returns every state any replica went through.
fn reachable(steps: &[Step]) -> Vec<Siblings> {
    let mut replicas = vec![Siblings::default(); REPLICAS as usize];
    let mut seen = vec![Siblings::default()];
    for step in steps {
        match step {
            Step::Write {
                at,
                read_from,
                value,
            } => {
                let context = read_from
                    .map(|r| replicas[r as usize].context().clone())
                    .unwrap_or_default();
                let write = SiblingsWrite {
                    context,
                    value: value.map(|v| Bytes::from(vec![v])),
                };
                replicas[*at as usize].accept(&write, NodeId(*at + 1), 0);
                seen.push(replicas[*at as usize].clone());
            }
            Step::Sync { from, to } => {
                let merged = replicas[*to as usize].sync(&replicas[*from as usize]);
                replicas[*to as usize] = merged;
                seen.push(replicas[*to as usize].clone());
            }
        }
    }
    seen
}

fn pick(states: &[Siblings], i: usize) -> Siblings {
    states[i % states.len()].clone()
}

fn round_trip(s: &Siblings) -> Option<Siblings> {
    let mut b = Vec::new();
    s.encode_into(&mut b);
    Siblings::decode(&Bytes::from(b))
}

proptest! {
    #[test]
    fn sync_is_commutative_associative_idempotent(
        steps in proptest::collection::vec(arb_step(), 0..40),
        (i, j, k) in (any::<usize>(), any::<usize>(), any::<usize>()),
    ) {
        let states = reachable(&steps);
        let (a, b, c) = (pick(&states, i), pick(&states, j), pick(&states, k));
        prop_assert_eq!(a.sync(&b), b.sync(&a));
        prop_assert_eq!(a.sync(&b).sync(&c), a.sync(&b.sync(&c)));
        prop_assert_eq!(a.sync(&a), a.clone());
        prop_assert_eq!(round_trip(&a), Some(a.clone()));
    }

    /// Whatever order copies arrive in, replicas that saw the same states agree.
    #[test]
    fn replicas_converge_whatever_the_order(
        steps in proptest::collection::vec(arb_step(), 0..40),
        order in any::<u64>(),
    ) {
        let states = reachable(&steps);
        let forward = states.iter().fold(Siblings::default(), |acc, s| acc.sync(s));
        let mut shuffled = states.clone();
        // A deterministic shuffle from the seed.
        let n = shuffled.len();
        for i in (1..n).rev() {
            let j = (order.wrapping_mul(i as u64 + 7) % (i as u64 + 1)) as usize;
            shuffled.swap(i, j);
        }
        let backward = shuffled.iter().fold(Siblings::default(), |acc, s| acc.sync(s));
        prop_assert_eq!(forward, backward);
    }

    /// A write carrying a context drops exactly the values that context covers, keeps
    /// every other, and adds its own; once merged with every state, nothing it
    /// superseded comes back.
    #[test]
    fn a_write_supersedes_exactly_what_its_context_covers(
        steps in proptest::collection::vec(arb_step(), 0..40),
        (read, at) in (any::<usize>(), 0..REPLICAS),
    ) {
        let states = reachable(&steps);
        let read = pick(&states, read);
        // Replica `at` holding everything merged (a reachable state: syncs only).
        let mut replica = states.iter().fold(Siblings::default(), |acc, s| acc.sync(s));
        let before = replica.clone();
        let write = SiblingsWrite {
            context: read.context().clone(),
            value: Some(Bytes::from_static(b"resolved")),
        };
        replica.accept(&write, NodeId(at + 1), 0);
        let expected: Vec<Dot> = before
            .values()
            .map(|(d, _)| *d)
            .filter(|d| !read.context().covers(d))
            .collect();
        let kept: Vec<Dot> = replica
            .values()
            .map(|(d, _)| *d)
            .filter(|d| before.values.contains_key(d))
            .collect();
        prop_assert_eq!(replica.len(), expected.len() + 1);
        prop_assert_eq!(kept, expected);
        let all = states.iter().fold(replica.clone(), |acc, s| acc.sync(s));
        for (dot, _) in read.values() {
            prop_assert!(!all.values.contains_key(dot), "superseded {dot:?} came back");
        }
        prop_assert!(all.values().any(|(_, v)| v == &Bytes::from_static(b"resolved")));
    }
}

#[test]
fn two_writes_without_context_are_siblings_and_a_write_with_the_token_resolves_them() {
    let (a, b) = (NodeId(1), NodeId(2));
    let mut left = Siblings::default();
    let mut right = Siblings::default();
    let blind = |v: &'static [u8]| SiblingsWrite {
        context: Context::default(),
        value: Some(Bytes::from_static(v)),
    };
    left.accept(&blind(b"1"), a, 0);
    right.accept(&blind(b"2"), b, 0);
    let healed = left.sync(&right);
    let values: Vec<&[u8]> = healed.values().map(|(_, v)| v.as_ref()).collect();
    assert_eq!(values, vec![b"1".as_ref(), b"2".as_ref()]);
    let mut resolved = healed.clone();
    resolved.accept(
        &SiblingsWrite {
            context: healed.context().clone(),
            value: Some(Bytes::from_static(b"2")),
        },
        a,
        0,
    );
    assert_eq!(resolved.len(), 1);
    // An old copy arriving later (a hint) changes nothing.
    assert_eq!(resolved.sync(&left), resolved);
    assert_eq!(resolved.sync(&right).sync(&healed), resolved);
}

#[test]
fn counters_start_at_the_floor_so_a_replica_that_lost_its_data_makes_new_dots() {
    let mut s = Siblings::default();
    let w = SiblingsWrite {
        context: Context::default(),
        value: Some(Bytes::from_static(b"x")),
    };
    s.accept(&w, NodeId(1), 1000);
    s.accept(&w, NodeId(1), 5);
    let dots: Vec<u64> = s.values().map(|(d, _)| d.counter).collect();
    assert_eq!(dots, vec![1000, 1001]);
}

#[test]
fn a_delete_with_the_context_empties_the_state_and_keeps_its_context() {
    let mut s = Siblings::default();
    s.accept(
        &SiblingsWrite {
            context: Context::default(),
            value: Some(Bytes::from_static(b"x")),
        },
        NodeId(1),
        0,
    );
    let old = s.clone();
    s.accept(
        &SiblingsWrite {
            context: old.context().clone(),
            value: None,
        },
        NodeId(2),
        0,
    );
    assert!(s.is_empty());
    assert_eq!(s.sync(&old), s, "the deleted value does not come back");
}

#[test]
fn damaged_bytes_are_refused() {
    let mut s = Siblings::default();
    s.accept(
        &SiblingsWrite {
            context: Context::default(),
            value: Some(Bytes::from_static(b"value")),
        },
        NodeId(7),
        0,
    );
    let mut b = Vec::new();
    s.encode_into(&mut b);
    for cut in 0..b.len() {
        assert_eq!(Siblings::decode(&Bytes::from(b[..cut].to_vec())), None);
    }
    let mut long = b.clone();
    long.push(0);
    assert_eq!(Siblings::decode(&Bytes::from(long)), None);
    let w = SiblingsWrite {
        context: s.context().clone(),
        value: Some(Bytes::from_static(b"v")),
    };
    let mut wb = Vec::new();
    w.encode_into(&mut wb);
    assert_eq!(SiblingsWrite::decode(&Bytes::from(wb.clone())), Some(w));
    for cut in 0..wb.len() {
        assert_eq!(
            SiblingsWrite::decode(&Bytes::from(wb[..cut].to_vec())),
            None
        );
    }
}
