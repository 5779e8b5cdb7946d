//! Tombstone collection and the wipe rule with real processes (issue 8, docs/cluster.md
//! "Tombstone collection"): deleted keys are collected on every node once every replica
//! holds the tombstone and the grace passed; a node restored from a backup older than
//! that is refused, rejoins when wiped, catches up (equal Merkle roots) and no deleted
//! key comes back through any node; a node restored from a recent backup just catches up.

use kv_tests::cluster::{cluster_info, merkle_roots, Cluster};
use kv_tests::copy_dir;
use kv_tests::{eventually, kvd_binary, Kvd};
use redis::Commands;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KEYS: usize = 60;
const CATCH_UP: Duration = Duration::from_secs(90);

/// A CHECKPOINT of `node`'s engine plus its cluster files (identity, layout, clock
/// floor), as an operator's backup of the whole data directory would hold.
fn backup(node: &Kvd, dest: &Path) {
    let mut c = node.client();
    let _: () = redis::cmd("CHECKPOINT")
        .arg(dest.to_str().unwrap())
        .query(&mut c)
        .unwrap();
    copy_dir(&node.dir.join("cluster"), &dest.join("cluster"));
}

/// Replaces `node`'s data directory with `backup` (the node must be stopped).
fn restore(node: &Kvd, backup: &Path) {
    std::fs::remove_dir_all(&node.dir).unwrap();
    copy_dir(backup, &node.dir);
}

/// Starts kvd on `node`'s directory and flags, expects it to exit with an error, and
/// returns what it printed.
fn start_expecting_refusal(node: &Kvd) -> String {
    let mut child = Command::new(kvd_binary())
        .arg("--port")
        .arg(node.port.to_string())
        .arg("--dir")
        .arg(&node.dir)
        .args(&node.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a node restored from a stale backup was not refused");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "exited with {}", out.status);
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

fn purged(node: &Kvd) -> u64 {
    cluster_info(node, "kvd_tombstones_purged")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn wait_equal_roots(c: &Cluster, what: &str) {
    eventually(what, CATCH_UP, || {
        let roots: Vec<_> = c.nodes.iter().map(merkle_roots).collect();
        roots[0].is_some() && roots.iter().all(|r| r == &roots[0])
    });
}

fn set_keys(node: &Kvd, prefix: &str) {
    let mut c = node.client();
    for i in 0..KEYS {
        let _: () = c.set(format!("{prefix}{i}"), format!("v{i}")).unwrap();
    }
}

fn delete_keys(node: &Kvd, prefix: &str) {
    let mut c = node.client();
    for i in 0..KEYS {
        let n: i64 = c.del(format!("{prefix}{i}")).unwrap();
        assert_eq!(n, 1);
    }
}

/// Every `deleted*` key is absent and every `kept*` key present, through every node.
fn assert_nothing_deleted_came_back(c: &Cluster, extra_kept: &[&str]) {
    for (n, node) in c.nodes.iter().enumerate() {
        let mut conn = node.client();
        for i in 0..KEYS {
            let v: Option<String> = conn.get(format!("deleted{i}")).unwrap();
            assert_eq!(v, None, "deleted{i} came back through node {n}");
            for prefix in std::iter::once("kept").chain(extra_kept.iter().copied()) {
                let v: Option<String> = conn.get(format!("{prefix}{i}")).unwrap();
                assert_eq!(v, Some(format!("v{i}")), "{prefix}{i} through node {n}");
            }
        }
    }
}

/// A backed-up cluster: three nodes started with `flags` (plus a backup directory) that
/// hold the `deleted*` and `kept*` keys on every replica, and a backup of node 2 taken
/// then.
struct BackedUp {
    c: Cluster,
    backup: std::path::PathBuf,
    _backups: tempfile::TempDir,
}

fn start_and_back_up_node_2(flags: &[&str]) -> BackedUp {
    let backups = tempfile::tempdir().unwrap();
    let backup_dir = backups.path().to_str().unwrap().to_string();
    let mut flags = flags.to_vec();
    flags.extend(["--backup-dir", &backup_dir]);
    let c = Cluster::start(3, &flags);
    set_keys(&c.nodes[0], "deleted");
    set_keys(&c.nodes[0], "kept");
    wait_equal_roots(&c, "every replica holds the keys");
    let backup_path = backups.path().join("node2");
    backup(&c.nodes[2], &backup_path);
    BackedUp {
        c,
        backup: backup_path,
        _backups: backups,
    }
}

#[test]
fn a_node_restored_from_a_backup_older_than_the_grace_is_refused_then_wiped_and_nothing_deleted_returns(
) {
    // A 4 s grace with a 1 s hint window and request timeout: collection is observable
    // in test time, and a node loses the right to rejoin after 1.5 s out of sync.
    let BackedUp {
        mut c,
        backup: old,
        _backups,
    } = start_and_back_up_node_2(&[
        "--cluster-anti-entropy-interval-ms",
        "500",
        "--cluster-tombstone-grace-ms",
        "4000",
        "--cluster-hint-max-age-ms",
        "1000",
        "--cluster-request-timeout-ms",
        "1000",
    ]);

    delete_keys(&c.nodes[1], "deleted");
    // N = 3 on three nodes: each holds every tombstone and collects its own copy.
    eventually("every node collects the tombstones", CATCH_UP, || {
        c.nodes.iter().all(|n| purged(n) >= KEYS as u64)
    });
    wait_equal_roots(&c, "the trees agree after collection");

    c.nodes[2].kill9();
    restore(&c.nodes[2], &old);
    let refusal = start_expecting_refusal(&c.nodes[2]);
    assert!(
        refusal.contains("--cluster-wipe-stale-data yes") && refusal.contains("old backup"),
        "the refusal says why and what to do: {refusal}"
    );

    c.nodes[2]
        .args
        .extend(["--cluster-wipe-stale-data".into(), "yes".into()]);
    c.nodes[2].restart();
    c.wait_formed();
    wait_equal_roots(&c, "the wiped node catches up");
    assert_nothing_deleted_came_back(&c, &[]);
}

#[test]
fn a_node_restored_from_a_recent_backup_catches_up() {
    // The default grace (10 days): the backup is recent.
    let BackedUp {
        mut c,
        backup: recent,
        _backups,
    } = start_and_back_up_node_2(&["--cluster-anti-entropy-interval-ms", "500"]);

    delete_keys(&c.nodes[1], "deleted");
    set_keys(&c.nodes[1], "later");
    wait_equal_roots(&c, "every replica holds the deletes and later keys");

    c.nodes[2].kill9();
    restore(&c.nodes[2], &recent);
    c.nodes[2].restart();
    c.wait_formed();
    wait_equal_roots(&c, "the restored node catches up");
    assert_nothing_deleted_came_back(&c, &["later"]);
    assert_eq!(
        purged(&c.nodes[0]),
        0,
        "nothing is collected within the grace"
    );
}
