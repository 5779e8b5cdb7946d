//! Files and records written by a newer kvd are refused with an error that says so,
//! never read as something else (docs/operations.md, "Rolling upgrade": a node rolled
//! back onto an older build after the newer one wrote its files). The bus protocol's
//! own version check is in cluster/src/rpc/bus_version.rs and rpc/tests.rs.

use bytes::Bytes;
use kv_cluster::hlc::{Hlc, SystemClock};
use kv_cluster::layout::Layout;
use kv_cluster::node::identity::Identity;
use kv_cluster::{NodeId, Record, Version};
use std::sync::Arc;

fn error_text<T, E: std::fmt::Display>(r: Result<T, E>) -> String {
    match r {
        Ok(_) => panic!("a file of a future format was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_layout_of_a_future_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layout.json");
    std::fs::write(&path, br#"{"format": 3, "version": 9}"#).unwrap();
    let e = error_text(Layout::load(&path));
    assert!(
        e.contains("format 3 is not supported") && e.contains("newer kvd"),
        "{e}"
    );
}

#[test]
fn a_node_identity_of_a_future_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let id = r#"{"format": 2, "node_id": "00000000000000000000000000000000000000ff", "cluster_id": null}"#;
    std::fs::write(dir.path().join("node.json"), id).unwrap();
    let e = error_text(Identity::load_or_create(dir.path()));
    assert!(
        e.contains("format 2 is not supported") && e.contains("newer kvd"),
        "{e}"
    );
}

#[test]
fn a_clock_floor_of_a_future_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hlc");
    std::fs::write(&path, br#"{"format": 2, "floor_ms": 1}"#).unwrap();
    let e = error_text(Hlc::open(&path, Arc::new(SystemClock), NodeId(1)));
    assert!(
        e.contains("unknown format 2") && e.contains("newer kvd"),
        "{e}"
    );
}

#[test]
fn a_record_of_a_future_format_does_not_decode() {
    let v = Version {
        ts: 1 << 16,
        node: NodeId(1),
    };
    let mut bytes = Record::string(v, Bytes::from_static(b"x"), None).encode();
    assert!(Record::decode(&Bytes::from(bytes.clone())).is_some());
    bytes[0] = 3; // formats 1 and 2 exist
    assert_eq!(Record::decode(&Bytes::from(bytes)), None);
}
