//! kvtool inspect, verify and dump on real cluster node directories: four kvd nodes
//! (N=3, so each holds three quarters of the partitions) started as `kvtool cluster up`
//! starts them; keys written, deleted and expired through node 1; node 4 killed while
//! more keys are written (node 1 keeps hints for it); then every node stopped and its
//! directory read offline. Expectations are computed from the layout the nodes wrote.

mod common;

use kv_cluster::layout::Layout;
use kv_cluster::NodeId;
use kvtool::cluster::client::{info_number, merkle_roots};
use kvtool::cluster::local::{poll, LocalCluster, LocalSpec};
use kvtool::dump::format::{DumpVersion, Record};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

const NODES: usize = 4;
/// Node 4 dies before the `w` keys are written.
const DEAD: usize = 3;
const WITHIN: Duration = Duration::from_secs(90);

/// What one node should hold: key -> live (true) or tombstone (false).
type Holdings = BTreeMap<String, bool>;

fn sh(conn: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(conn).unwrap()
}

/// True when, for every partition, the running nodes that hold it have equal roots.
fn replicas_agree(spec: &LocalSpec, layout: &Layout, ids: &[NodeId], alive: &[usize]) -> bool {
    let roots: Option<Vec<Vec<String>>> = alive
        .iter()
        .map(|&i| merkle_roots(&spec.addr(i)).ok())
        .collect();
    let Some(roots) = roots else {
        return false;
    };
    (0..256u16).all(|p| {
        let holders: Vec<&String> = alive
            .iter()
            .zip(&roots)
            .filter(|(&i, _)| layout.preflist(p).contains(&ids[i]))
            .map(|(_, r)| &r[p as usize])
            .collect();
        holders.windows(2).all(|w| w[0] == w[1])
    })
}

fn dump_lines(dir: &Path, extra: &[&str]) -> Vec<Record> {
    let mut args = vec!["dump", common::s(dir)];
    args.extend_from_slice(extra);
    let out = common::kvtool(&args);
    let (stdout, stderr, code) = common::text(&out);
    assert_eq!(code, 0, "kvtool {args:?}: {stderr}");
    stdout
        .lines()
        .map(|l| Record::parse_line(l).unwrap())
        .collect()
}

#[test]
fn inspect_verify_and_dump_read_cluster_node_directories() {
    let Some(kvd) = common::kvd::find_or_skip() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let base = common::kvd::free_base_port(NODES as u16);
    let spec = LocalSpec::new(kvd, tmp.path().join("c"), base, NODES).unwrap();
    let stop = AtomicBool::new(false);
    let mut cluster = LocalCluster::start(spec.clone()).unwrap();
    cluster.wait_formed(&stop, WITHIN).unwrap();
    let ids: Vec<NodeId> = (0..NODES)
        .map(|i| {
            let mut c = kvtool::cluster::client::connect(&spec.addr(i)).unwrap();
            let id: String = redis::cmd("CLUSTER").arg("MYID").query(&mut c).unwrap();
            NodeId::parse(&id).unwrap()
        })
        .collect();
    let layout = Layout::load(&spec.node_dir(0).join("cluster/layout.json"))
        .unwrap()
        .unwrap();
    let held_by = |i: usize, key: &str| layout.key_preflist(key.as_bytes()).contains(&ids[i]);

    let mut conn = kvtool::cluster::client::connect(&spec.addr(0)).unwrap();
    let mut expected: Vec<Holdings> = vec![Holdings::new(); NODES];
    let mut note = |key: &str, live: bool, nodes: &[usize]| {
        for &i in nodes {
            if held_by(i, key) {
                expected[i].insert(key.to_string(), live);
            }
        }
    };
    let everyone: Vec<usize> = (0..NODES).collect();
    for i in 0..200 {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        if i % 10 == 0 {
            sh(&mut conn, &["SET", &k, &v, "EX", "3600"]);
        } else {
            sh(&mut conn, &["SET", &k, &v]);
        }
        note(&k, i < 190, &everyone);
    }
    for i in 190..200 {
        sh(&mut conn, &["DEL", &format!("k{i}")]);
    }
    // Expires at once: a record every replica keeps, which readers (and dump) skip.
    sh(&mut conn, &["SET", "gone", "x", "PX", "1"]);
    let expired_on = |i: usize| u64::from(held_by(i, "gone"));
    poll(&stop, WITHIN, "every replica holding every write", || {
        Ok(replicas_agree(&spec, &layout, &ids, &everyone).then_some(()))
    })
    .unwrap();

    cluster.kill9(DEAD).unwrap();
    let alive: Vec<usize> = (0..NODES).filter(|&i| i != DEAD).collect();
    let mut hinted = 0u64;
    for i in 0..40 {
        let k = format!("w{i}");
        sh(&mut conn, &["SET", &k, "while-n4-was-down"]);
        note(&k, true, &alive);
        hinted += u64::from(held_by(DEAD, &k));
    }
    poll(
        &stop,
        WITHIN,
        "n1's hints and the live replicas settle",
        || {
            let hints = info_number(&spec.addr(0), "kvd_hints_pending")?;
            Ok((hints == hinted && replicas_agree(&spec, &layout, &ids, &alive)).then_some(()))
        },
    )
    .unwrap();
    assert!(hinted > 0, "no w key has n4 among its replicas");
    drop(conn);
    for (i, status) in cluster.stop_all() {
        assert!(
            status.is_some_and(|s| s.success()),
            "n{} did not stop cleanly",
            i + 1
        );
    }

    for i in 0..NODES {
        let dir = spec.node_dir(i);
        let live = expected[i].values().filter(|&&l| l).count() as u64;
        let tombstones = expected[i].values().filter(|&&l| !l).count() as u64;
        let hints = if i == 0 { hinted } else { 0 };

        // inspect: identity, layout, and the records counted by decoding them.
        let (report, code) = common::kvtool_json(&["inspect", common::s(&dir), "--exact"]);
        assert_eq!(code, 0);
        let c = &report["cluster"];
        assert_eq!(c["node_id"], ids[i].to_string(), "{report}");
        assert_eq!(c["layout_version"], 1);
        assert_eq!(c["replicas"], 3);
        assert_eq!(c["members"], NODES);
        assert_eq!(c["partitions_held"], layout.partitions_of(ids[i]).len());
        let r = &c["records"];
        assert_eq!(r["values"], live, "n{}: {report}", i + 1);
        assert_eq!(r["tombstones"], tombstones, "n{}: {report}", i + 1);
        assert_eq!(r["expired"], expired_on(i), "n{}: {report}", i + 1);
        assert_eq!(r["hints"], hints, "n{}: {report}", i + 1);
        assert_eq!(
            (r["damaged_records"].as_u64(), r["damaged_hints"].as_u64()),
            (Some(0), Some(0))
        );
        if i == 0 {
            assert_eq!(r["hints_by_target"][ids[DEAD].to_string()], hinted);
        }
        let text = common::text(&common::kvtool(&["inspect", common::s(&dir)])).0;
        assert!(text.contains("Cluster node\n"), "{text}");
        assert!(text.contains(&ids[i].to_string()), "{text}");

        // verify: healthy, every record decoded.
        let (report, code) = common::kvtool_json(&["verify", common::s(&dir)]);
        assert_eq!(code, 0, "{report}");
        assert_eq!(report["cluster_records"]["values"], live, "{report}");
        assert_eq!(report["cluster_records"]["tombstones"], tombstones);

        // dump: every record held, tombstones marked, cluster versions.
        let lines = dump_lines(&dir, &[]);
        let dumped: Holdings = lines
            .iter()
            .map(|r| (String::from_utf8(r.key.clone()).unwrap(), r.ty.is_some()))
            .collect();
        assert_eq!(dumped, expected[i], "n{}", i + 1);
        assert_eq!(lines.len(), expected[i].len(), "a key dumped twice");
        // Versions are made by each key's proposer, a node of the cluster
        // (docs/consistency.md, "One proposer per key").
        assert!(lines
            .iter()
            .all(|r| matches!(r.version, Some(DumpVersion::Cluster(v)) if ids.contains(&v.node))));
        assert!(lines
            .iter()
            .filter(|r| r.key.starts_with(b"k") && r.key.len() > 1)
            .all(|r| (r.expire_at_ms.is_some()) == (r.key.ends_with(b"0") && r.ty.is_some())));
        // --owned: the node holds nothing outside its partitions, so the same lines.
        assert_eq!(dump_lines(&dir, &["--owned"]), lines);
    }

    // --partition: replicas holding the same writes dump identical lines, versions
    // included; the dead node's copy of a partition lacks the writes it missed.
    let missed = (0..40)
        .map(|i| format!("w{i}"))
        .find(|k| held_by(DEAD, k))
        .unwrap();
    let p = kv_keyspace::slot::key_partition(missed.as_bytes());
    let arg = p.to_string();
    let holders: Vec<usize> = (0..NODES)
        .filter(|&i| layout.preflist(p).contains(&ids[i]))
        .collect();
    let dumps: Vec<Vec<Record>> = holders
        .iter()
        .map(|&i| dump_lines(&spec.node_dir(i), &["--partition", &arg]))
        .collect();
    let live_dumps: Vec<&Vec<Record>> = holders
        .iter()
        .zip(&dumps)
        .filter(|(&i, _)| i != DEAD)
        .map(|(_, d)| d)
        .collect();
    assert_eq!(live_dumps.len(), 2);
    assert_eq!(live_dumps[0], live_dumps[1]);
    assert!(live_dumps[0].iter().any(|r| r.key == missed.as_bytes()));
    assert!(live_dumps[0]
        .iter()
        .all(|r| kv_keyspace::slot::key_partition(&r.key) == p));
    let dead_dump = &dumps[holders.iter().position(|&i| i == DEAD).unwrap()];
    assert!(!dead_dump.iter().any(|r| r.key == missed.as_bytes()));
    let keys = |d: &Vec<Record>| d.iter().map(|r| r.key.clone()).collect::<BTreeSet<_>>();
    assert!(keys(dead_dump).is_subset(&keys(live_dumps[0])));
}

#[test]
fn partition_and_owned_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    common::build(tmp.path());
    let out = common::kvtool(&["dump", common::s(tmp.path()), "--partition", "256"]);
    assert_eq!(common::text(&out).2, 2);
    let out = common::kvtool(&["dump", common::s(tmp.path()), "--owned"]);
    let (_, stderr, code) = common::text(&out);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("not a cluster node's directory"),
        "{stderr}"
    );
}
