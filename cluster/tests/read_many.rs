//! Reads of many keys together (`Coordinator::get_many`, a pipeline's run of reads):
//! per key exactly what `get` answers, the same read repairs, and one request per
//! replica node instead of one per key and replica.

mod support;

use futures::future::join_all;
use kv_cluster::coordinator::{Coordinator, Placement};
use kv_cluster::fake_replica::{Fault, ManualClock};
use kv_cluster::quorum::Consistency;
use kv_cluster::replica_api::{ItemKey, PeerState};
use kv_cluster::NodeId;
use std::sync::Arc;
use support::{config, key, record, Ring};

/// Preference orders that differ by key: each partition starts at another node.
struct Rotating(Vec<NodeId>);

impl Placement for Rotating {
    fn partition_preflist(&self, partition: u16) -> Vec<NodeId> {
        let mut nodes = self.0.clone();
        let n = nodes.len();
        nodes.rotate_left(partition as usize % n);
        nodes
    }
}

fn keys() -> Vec<ItemKey> {
    (0..40).map(|i| key(&format!("key:{i}"))).collect()
}

/// A ring whose replicas disagree: per key an older record on one, a newer one on the
/// next, nothing on the third (and every fifth key nowhere); `faults` per node, and the
/// nodes `down` as the failure detector sees them.
fn seeded_ring(keys: &[ItemKey], faults: &[Fault], down: &[usize]) -> (Ring, Coordinator) {
    let ring = Ring::new(3);
    for (i, k) in keys.iter().enumerate() {
        if i % 5 == 4 {
            continue;
        }
        ring.fakes[i % 3].put_raw(k, record(10, "old"));
        ring.fakes[(i + 1) % 3].put_raw(k, record(20, "new"));
    }
    for (fake, fault) in ring.fakes.iter().zip(faults) {
        fake.set_fault(*fault);
    }
    for &d in down {
        ring.liveness.set(ring.nodes[d], PeerState::Down);
    }
    let c = ring.coordinator_placed(
        Arc::new(Rotating(ring.nodes.clone())),
        ManualClock::new(ring.nodes[0], 1_000_000),
        config(200),
    );
    (ring, c)
}

/// `get_many` on one ring and `get` per key on an identical one answer alike and leave
/// the replicas alike.
async fn same_as_one_by_one(faults: &[Fault], down: &[usize], consistency: Consistency) {
    let keys = keys();
    let (a, many) = seeded_ring(&keys, faults, down);
    let (b, one) = seeded_ring(&keys, faults, down);
    let together = many.get_many(&keys, consistency).await;
    let alone = join_all(keys.iter().map(|k| one.get(k.clone(), consistency))).await;
    assert_eq!(
        together, alone,
        "faults {faults:?}, down {down:?}, {consistency:?}"
    );
    for (fa, fb) in a.fakes.iter().zip(&b.fakes) {
        for k in &keys {
            assert_eq!(fa.get(k), fb.get(k), "{k:?} after the reads");
        }
    }
    assert_eq!(many.stats().read_repairs, one.stats().read_repairs);
}

#[tokio::test]
async fn many_keys_read_together_answer_as_each_read_alone() {
    use Consistency::{All, One, Quorum};
    let ok = Fault::None;
    for consistency in [One, Quorum, All] {
        same_as_one_by_one(&[ok, ok, ok], &[], consistency).await;
        same_as_one_by_one(&[ok, Fault::Down, ok], &[], consistency).await;
        same_as_one_by_one(&[ok, ok, Fault::BlackHole], &[], consistency).await;
        same_as_one_by_one(&[ok, Fault::Panic, Fault::Down], &[], consistency).await;
        same_as_one_by_one(&[ok, ok, ok], &[1, 2], consistency).await;
    }
}

#[tokio::test]
async fn many_keys_read_together_cost_one_request_per_node() {
    let keys = keys();
    let (ring, c) = seeded_ring(&keys, &[Fault::None; 3], &[]);
    let got = c.get_many(&keys, Consistency::Quorum).await;
    assert!(got.iter().all(Result::is_ok));
    let requests: u64 = ring.fakes.iter().map(|f| f.reads_served()).sum();
    // Each node is asked once for all its keys (40 keys one by one: 80 requests).
    assert!(
        requests <= 3,
        "{requests} read requests for {} keys",
        keys.len()
    );
    // A node that fails is replaced key by key, still in one request per node.
    let (ring, c) = seeded_ring(&keys, &[Fault::None, Fault::Down, Fault::None], &[]);
    let got = c.get_many(&keys, Consistency::Quorum).await;
    assert!(got.iter().all(Result::is_ok), "{got:?}");
    let requests: u64 = ring.fakes.iter().map(|f| f.reads_served()).sum();
    assert!(
        requests <= 5,
        "{requests} read requests for {} keys",
        keys.len()
    );
}

#[tokio::test]
async fn many_keys_go_in_requests_of_bounded_size() {
    // About 667 of 1,000 keys per node (R = 2 of 3): three requests each, not one.
    let keys: Vec<ItemKey> = (0..1000).map(|i| key(&format!("key:{i}"))).collect();
    let (ring, c) = seeded_ring(&keys, &[Fault::None; 3], &[]);
    let got = c.get_many(&keys, Consistency::Quorum).await;
    let (_, one) = seeded_ring(&keys, &[Fault::None; 3], &[]);
    let alone = join_all(keys.iter().map(|k| one.get(k.clone(), Consistency::Quorum))).await;
    assert_eq!(got, alone);
    let requests: u64 = ring.fakes.iter().map(|f| f.reads_served()).sum();
    assert!(
        (6..=12).contains(&requests),
        "{requests} read requests for 1,000 keys"
    );
}
