//! A cluster node's directory built with kv-cluster's own ReplicaStore (a value, a
//! tombstone, a hint) plus one damaged record and one damaged hint written behind its
//! back: verify names both, inspect counts them, dump refuses to guess.

mod common;

use bytes::Bytes;
use kv_cluster::hints::encode_hint;
use kv_cluster::node::identity::{cluster_dir, Identity};
use kv_cluster::replica_api::{ItemKey, WriteItem};
use kv_cluster::replica_store::ReplicaStore;
use kv_cluster::{NodeId, Record, Version};
use kv_engine::{Db, Options};
use kv_keyspace::data_key::data_key;
use std::path::Path;
use std::sync::Arc;

fn item(key: &str, record: Record) -> WriteItem {
    WriteItem {
        key: ItemKey {
            db: 0,
            key: Bytes::copy_from_slice(key.as_bytes()),
        },
        record,
    }
}

/// A node directory without a layout yet, holding `good`, a tombstone of `gone`, one
/// hint for node 9, and (if `damaged`) a record and a hint that do not decode.
fn build(dir: &Path, damaged: bool) {
    let version = Version {
        ts: 1_764_683_000_000 << 16,
        node: NodeId(7),
    };
    let db = Arc::new(Db::open(dir, Options::default()).unwrap());
    let store = ReplicaStore::open(db.clone()).unwrap();
    let good = item(
        "good",
        Record::string(version, Bytes::from_static(b"v"), None),
    );
    store
        .apply(&[good.clone(), item("gone", Record::tombstone(version))])
        .unwrap();
    let hints = db.keyspace("hints").unwrap();
    let mut hint_key = 9u64.to_be_bytes().to_vec();
    hint_key.extend_from_slice(&1u64.to_be_bytes());
    db.put(hints, &hint_key, &encode_hint(1, &good)).unwrap();
    if damaged {
        db.put(store.data_keyspace(), &data_key(0, b"bad"), b"\x07junk")
            .unwrap();
        hint_key[15] = 2;
        db.put(hints, &hint_key, b"\x01short").unwrap();
    }
    drop(store);
    Arc::try_unwrap(db).ok().unwrap().close().unwrap();
    common::wait_unlocked(dir);
    std::fs::create_dir_all(cluster_dir(dir)).unwrap();
    Identity {
        format: 1,
        node_id: NodeId(7).to_string(),
        cluster_id: None,
    }
    .save(&cluster_dir(dir))
    .unwrap();
}

#[test]
fn a_sound_node_directory_verifies_and_dumps() {
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path(), false);
    let (report, code) = common::kvtool_json(&["verify", common::s(tmp.path())]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["cluster_records"]["values"], 1);
    assert_eq!(report["cluster_records"]["tombstones"], 1);
    assert_eq!(report["cluster_records"]["hints"], 1);
    let out = common::kvtool(&["dump", common::s(tmp.path())]);
    let (stdout, stderr, code) = common::text(&out);
    assert_eq!(code, 0, "{stderr}");
    // In partition order; which of the two comes first depends on their slots.
    let mut lines: Vec<&str> = stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "{\"db\":0,\"key\":\"gone\",\"value\":\"\",\"type\":\"tombstone\",\"expire_at_ms\":null,\"version\":\"1764683000000.0@7\"}",
            "{\"db\":0,\"key\":\"good\",\"value\":\"v\",\"type\":\"string\",\"expire_at_ms\":null,\"version\":\"1764683000000.0@7\"}",
        ]
    );
    // No layout yet: the node owns nothing, and says so.
    let out = common::kvtool(&["dump", common::s(tmp.path()), "--owned"]);
    let (_, stderr, code) = common::text(&out);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("holds no layout yet"), "{stderr}");
}

#[test]
fn damaged_records_and_hints_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    build(tmp.path(), true);
    let (report, code) = common::kvtool_json(&["verify", common::s(tmp.path())]);
    assert_eq!(code, 1, "{report}");
    let problems: Vec<String> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["what"].as_str().unwrap().to_string())
        .collect();
    assert!(
        problems.iter().any(|p| p.contains("db 0 key \"bad\"")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("hints") && p.contains("does not decode")),
        "{problems:?}"
    );
    assert_eq!(problems.len(), 2, "{problems:?}");

    let (report, code) = common::kvtool_json(&["inspect", common::s(tmp.path()), "--exact"]);
    assert_eq!(code, 0);
    let records = &report["cluster"]["records"];
    assert_eq!(records["values"], 1, "{report}");
    assert_eq!(records["tombstones"], 1);
    assert_eq!(records["damaged_records"], 1);
    assert_eq!(records["hints"], 1);
    assert_eq!(records["damaged_hints"], 1);
    assert_eq!(report["cluster"]["node_id"], NodeId(7).to_string());
    assert!(report["cluster"]["layout_version"].is_null());

    let out = common::kvtool(&["dump", common::s(tmp.path())]);
    let (_, stderr, code) = common::text(&out);
    assert_eq!(code, 1);
    assert!(stderr.contains("key \"bad\""), "{stderr}");
}
