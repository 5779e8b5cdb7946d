//! Random operations against three faulty replicas and two coordinators with skewed
//! clocks, checked against what clients were told: a successful QUORUM read never
//! returns a version older than an acknowledged write of the key, nor older than what
//! an earlier QUORUM read returned (read repair makes quorum reads monotonic). Faults
//! change only between requests, so a replica that answered a read takes its repair.

mod support;

use kv_cluster::fake_replica::{Fault, ManualClock};
use kv_cluster::quorum::Consistency;
use kv_cluster::replica_api::PeerState;
use kv_cluster::{NodeId, Version};
use proptest::prelude::*;
use std::collections::HashMap;
use std::time::Duration;
use support::{config, key, put, Ring};

#[derive(Debug, Clone)]
enum Op {
    Faults([u8; 3]),
    Liveness(usize, bool),
    Put(usize, usize),
    Delete(usize, usize),
    Get(usize, usize),
    Replay,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<[u8; 3]>().prop_map(Op::Faults),
        1 => (0usize..3, any::<bool>()).prop_map(|(r, up)| Op::Liveness(r, up)),
        3 => (0usize..2, 0usize..2).prop_map(|(c, k)| Op::Put(c, k)),
        1 => (0usize..2, 0usize..2).prop_map(|(c, k)| Op::Delete(c, k)),
        4 => (0usize..2, 0usize..2).prop_map(|(c, k)| Op::Get(c, k)),
        1 => Just(Op::Replay),
    ]
}

fn fault(f: u8) -> Fault {
    match f % 8 {
        0..=2 => Fault::None,
        3..=5 => Fault::Down,
        6 => Fault::DropAfterApply,
        _ => Fault::Slow(Duration::from_millis(1)),
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ring = Ring::new(3);
    // The second coordinator's clock is a minute behind the first's.
    let coordinators = [
        ring.coordinator_with(ManualClock::new(NodeId(1), 2_000_000), config(5_000)),
        ring.coordinator_with(ManualClock::new(NodeId(2), 1_940_000), config(5_000)),
    ];
    let keys = ["a", "b", "{a}c"];
    let mut acked: HashMap<usize, Version> = HashMap::new();
    let mut read: HashMap<usize, Version> = HashMap::new();
    for op in ops {
        match op {
            Op::Faults(faults) => {
                for (replica, f) in ring.fakes.iter().zip(faults) {
                    replica.set_fault(fault(f));
                }
            }
            Op::Liveness(r, up) => {
                let state = if up { PeerState::Up } else { PeerState::Down };
                ring.liveness.set(ring.nodes[r], state);
            }
            Op::Put(c, k) | Op::Delete(c, k) => {
                let value = match op {
                    Op::Put(..) => "v",
                    _ => "",
                };
                let c = &coordinators[c];
                let result = rt.block_on(async {
                    match value {
                        "" => c.put(key(keys[k]), None, None, Consistency::Quorum).await,
                        v => put(c, keys[k], v, Consistency::Quorum).await,
                    }
                });
                if let Ok(v) = result {
                    let before = acked.insert(k, v);
                    prop_assert!(before.is_none_or(|b| b < v), "acknowledged versions grow");
                }
            }
            Op::Get(c, k) => {
                let got = rt.block_on(coordinators[c].get(key(keys[k]), Consistency::Quorum));
                if let Ok(got) = got {
                    let version = got.map(|r| r.version);
                    if let Some(&a) = acked.get(&k) {
                        prop_assert!(version >= Some(a), "read {:?} lost acked {}", version, a);
                    }
                    if let Some(&seen) = read.get(&k) {
                        prop_assert!(version >= Some(seen), "read went back from {}", seen);
                    }
                    if let Some(v) = version {
                        read.insert(k, v);
                    }
                }
            }
            Op::Replay => {
                rt.block_on(ring.replay_hints());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn quorum_reads_never_lose_acknowledged_writes_nor_go_back(
        ops in proptest::collection::vec(op(), 1..80)
    ) {
        run(ops)?;
    }
}
