//! The coordinator's own copy may leave its WAL record buffered when the caller writes
//! the WAL out before answering (kv_cluster::wal_deferral); whatever the replica answers
//! about such a record writes it out first. Checked on a real directory by the bytes
//! of its WAL files that reached the operating system: a record still in the log
//! writer's buffer is what a kill -9 would lose (the engine's kill -9 test of
//! `write_deferred`, engine/tests/kill9_durability.rs, shows that it does).

mod replica_support;

use kv_cluster::local_replica::LocalReplica;
use kv_cluster::replica_api::{ReplicaApi, WriteOutcome};
use kv_cluster::replica_store::ReplicaStore;
use kv_cluster::wal_deferral;
use replica_support::*;
use std::path::Path;
use std::sync::Arc;

fn replica_in(dir: &Path) -> LocalReplica {
    let options = kv_engine::Options {
        fsync: kv_engine::FsyncPolicy::No,
        ..kv_engine::Options::default()
    };
    let db = kv_engine::Db::open(dir, options).expect("open");
    LocalReplica::new(Arc::new(ReplicaStore::open(Arc::new(db)).expect("store")))
}

/// Bytes of the directory's WAL files as the operating system has them.
fn wal_bytes_written_out(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .map(|p| std::fs::metadata(&p).expect("metadata").len())
        .sum()
}

/// Writes `k` at 10 (inside the deferral mark when `deferred`), runs `then`, and
/// returns whether the record's WAL bytes reached the operating system by then.
async fn written_out<F>(deferred: bool, then: F) -> bool
where
    F: AsyncFnOnce(&LocalReplica),
{
    let dir = tempfile::tempdir().expect("tempdir");
    let replica = replica_in(dir.path());
    let k = key(0, "k");
    let before = wal_bytes_written_out(dir.path());
    let outcomes = wal_deferral::scope(deferred, replica.write(vec![put(&k, 10, "ten")]))
        .await
        .expect("write");
    assert_eq!(outcomes, [WriteOutcome::Applied]);
    // Visible at once either way.
    assert!(replica.store().get(&k).expect("get").is_some());
    then(&replica).await;
    wal_bytes_written_out(dir.path()) > before
}

#[tokio::test]
async fn a_write_outside_the_mark_is_written_out_before_it_returns() {
    assert!(written_out(false, async |_| {}).await);
}

#[tokio::test]
async fn a_deferred_write_waits_in_the_buffer_until_a_write_out() {
    // The control: nothing written out yet (so the tests below can fail).
    assert!(!written_out(true, async |_| {}).await);
    // The connection's write-out before its replies.
    assert!(
        written_out(true, async |r| {
            r.store().db().write_out_wal().expect("write out");
        })
        .await
    );
}

#[tokio::test]
async fn a_read_answered_to_a_peer_writes_the_record_out_first() {
    assert!(
        written_out(true, async |r| {
            let records = r.read(vec![key(0, "k")]).await.expect("read");
            assert!(records[0].is_some());
        })
        .await
    );
}

#[tokio::test]
async fn a_write_answered_from_the_record_held_writes_it_out_first() {
    // A peer's (or a hint's) write of the same version writes nothing, and its Applied
    // tells the sender this replica stores it.
    assert!(
        written_out(true, async |r| {
            let outcomes = r
                .write(vec![put(&key(0, "k"), 10, "ten")])
                .await
                .expect("write");
            assert_eq!(outcomes, [WriteOutcome::Applied]);
        })
        .await
    );
}

#[tokio::test]
async fn a_scan_answered_to_a_peer_writes_the_record_out_first() {
    let partition = kv_keyspace::slot::key_partition(b"k");
    assert!(
        written_out(true, async |r| {
            let page = r
                .scan_partition(partition, None, 100)
                .await
                .expect("scan partition");
            assert!(!format!("{page:?}").is_empty());
        })
        .await
    );
}
