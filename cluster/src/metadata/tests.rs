//! The metadata store's laws (last writer wins, durable, listeners in order) and the
//! spreading rules (majority, catch-up on contact) with in-memory peers.

use super::spread::{publish, sync_with, MetadataPeer, PublishError, Reach};
use super::*;
use crate::replica_api::ReplicaError;
use crate::NodeId;
use async_trait::async_trait;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn v(ts: u64, node: u64) -> Version {
    Version {
        ts,
        node: NodeId(node),
    }
}

fn e(name: &str, version: Version, value: &str) -> MetaEntry {
    MetaEntry {
        name: name.into(),
        version,
        value: text_value(value),
    }
}

fn open(dir: &std::path::Path) -> Arc<MetadataStore> {
    let db = Arc::new(Db::open(dir, kv_engine::Options::default()).unwrap());
    Arc::new(MetadataStore::open(db).unwrap())
}

#[test]
fn newest_version_wins_in_any_order_and_survives_a_reopen() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (open(d1.path()), open(d2.path()));
    let writes = [
        e("x", v(1, 1), "one"),
        e("x", v(3, 2), "three"),
        e("x", v(2, 9), "two"),
        e("y", v(5, 1), ""),
    ];
    for w in &writes {
        a.merge(vec![w.clone()]).unwrap();
    }
    b.merge(writes.iter().rev().cloned().collect()).unwrap();
    assert_eq!(a.entries(), b.entries());
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.get("x").unwrap().value, text_value("three"));
    // An older copy arriving later changes nothing.
    assert!(a.merge(vec![e("x", v(2, 2), "old")]).unwrap().is_empty());
    let held = a.entries();
    drop(a);
    let reopened = open(d1.path());
    assert_eq!(reopened.entries(), held);
    assert_eq!(reopened.digest(), b.digest());
}

#[test]
fn listeners_see_held_entries_then_each_change_in_order() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    s.merge(vec![e("a", v(1, 1), "1")]).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    s.listen(Arc::new(move |m: &MetaEntry| {
        log.lock().push((m.name.clone(), m.version))
    }));
    s.merge(vec![e("b", v(2, 1), "2"), e("a", v(0, 1), "older")])
        .unwrap();
    s.merge(vec![e("a", v(3, 1), "3")]).unwrap();
    assert_eq!(
        *seen.lock(),
        vec![
            ("a".to_string(), v(1, 1)),
            ("b".to_string(), v(2, 1)),
            ("a".to_string(), v(3, 1))
        ]
    );
}

#[test]
fn peers_cannot_send_oversized_entries() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let big = MetaEntry {
        name: "x".into(),
        version: v(1, 1),
        value: Bytes::from(vec![0u8; MAX_VALUE_LEN + 1]),
    };
    assert!(s.merge(vec![big]).is_err());
    assert!(s.merge(vec![e("", v(1, 1), "")]).is_err());
    assert!(s.entries().is_empty());
}

#[test]
fn purge_markers_are_kept() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    assert_eq!(s.purged_floor(3).unwrap(), Version::ZERO);
    s.set_purged_floor(3, v(9, 1)).unwrap();
    drop(s);
    assert_eq!(open(d.path()).purged_floor(3).unwrap(), v(9, 1));
}

/// A node's store behind [`MetadataPeer`], that can be cut off.
struct FakeNode {
    store: Arc<MetadataStore>,
    down: AtomicBool,
    _dir: tempfile::TempDir,
}

impl FakeNode {
    fn new() -> Arc<FakeNode> {
        let dir = tempfile::tempdir().unwrap();
        Arc::new(FakeNode {
            store: open(dir.path()),
            down: AtomicBool::new(false),
            _dir: dir,
        })
    }
}

#[async_trait]
impl MetadataPeer for FakeNode {
    async fn sync_metadata(&self, entries: Vec<MetaEntry>) -> Result<Vec<MetaEntry>, ReplicaError> {
        if self.down.load(Ordering::Relaxed) {
            return Err(ReplicaError::Unreachable("down".into()));
        }
        super::spread::serve_sync(&self.store, entries).await
    }
}

fn peers_of(nodes: &[Arc<FakeNode>]) -> Vec<Arc<dyn MetadataPeer>> {
    nodes
        .iter()
        .map(|n| n.clone() as Arc<dyn MetadataPeer>)
        .collect()
}

#[tokio::test]
async fn a_change_succeeds_on_a_majority_and_a_node_that_was_down_catches_up() {
    let me = FakeNode::new();
    let (b, c) = (FakeNode::new(), FakeNode::new());
    c.down.store(true, Ordering::Relaxed);
    let change = vec![e("flush/0", v(10, 1), "")];
    let reach = publish(
        &me.store,
        change.clone(),
        peers_of(&[b.clone(), c.clone()]),
        3,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(
        reach,
        Reach {
            held_by: 2,
            nodes: 3
        }
    );
    assert_eq!(b.store.entries(), change);
    assert!(c.store.entries().is_empty());
    // c comes back with something of its own; one sync each way makes them equal.
    c.down.store(false, Ordering::Relaxed);
    c.store.merge(vec![e("acl/user/x", v(4, 3), "on")]).unwrap();
    assert_ne!(c.store.digest(), b.store.digest());
    sync_with(&c.store, &*b).await.unwrap();
    sync_with(&me.store, &*b).await.unwrap();
    assert_eq!(c.store.entries(), b.store.entries());
    assert_eq!(me.store.digest(), c.store.digest());
}

#[tokio::test]
async fn without_a_majority_the_writer_says_so_and_keeps_the_change() {
    let me = FakeNode::new();
    let peers: Vec<Arc<FakeNode>> = (0..4).map(|_| FakeNode::new()).collect();
    for p in &peers[1..] {
        p.down.store(true, Ordering::Relaxed);
    }
    let change = vec![e("config/maxmemory", v(7, 1), "100")];
    let err = publish(
        &me.store,
        change.clone(),
        peers_of(&peers),
        5,
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        PublishError::NoMajority(Reach {
            held_by: 2,
            nodes: 5
        })
    );
    assert!(err
        .to_string()
        .starts_with("CLUSTERDOWN the change reached 2 of 5 nodes"));
    assert_eq!(me.store.entries(), change, "not undone");
    assert_eq!(peers[0].store.entries(), change);
}

#[tokio::test]
async fn a_peer_holding_something_newer_counts_as_holding_the_change() {
    let me = FakeNode::new();
    let b = FakeNode::new();
    b.store.merge(vec![e("k", v(20, 2), "newer")]).unwrap();
    let reach = publish(
        &me.store,
        vec![e("k", v(10, 1), "older")],
        peers_of(std::slice::from_ref(&b)),
        2,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(reach.held_by, 2);
    // The writer learned the newer value from the answer.
    assert_eq!(me.store.get("k").unwrap().value, text_value("newer"));
}
