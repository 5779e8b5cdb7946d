//! Redis Cluster-aware clients against a 3-node kvd cluster started with
//! `--cluster-compat yes` (docs/cluster.md, "Redis Cluster-aware clients"): every node a
//! primary of the slots where it is the first live node of the preference list, all
//! 16384 slots covered once in Redis 7's reply shapes, no MOVED, and per-node
//! KEYS/SCAN/DBSIZE that together see each key once. redis-py's RedisCluster runs as a
//! program (tests/clients/python/kvd_cluster_check.py) and survives a kill -9; the Rust
//! `redis` crate's cluster client does the same basics.

use kv_tests::cluster::{Cluster, FORM_TIMEOUT};
use kv_tests::eventually;
use redis::cluster::{cluster_pipe, ClusterClient};
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Commands, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const COMPAT: &[&str] = &["--cluster-compat", "yes"];

/// Longest the redis-py program may run: its own recovery deadline is 90 s and every
/// reply is waited for at most 10 s.
const PROGRAM_LIMIT: Duration = Duration::from_secs(240);

/// Slot ranges `(first, last, client port)` of a CLUSTER SLOTS reply.
fn slot_ranges(slots: &Value) -> Vec<(i64, i64, i64)> {
    let Value::Array(entries) = slots else {
        panic!("CLUSTER SLOTS is not an array: {slots:?}");
    };
    entries
        .iter()
        .map(|e| match e {
            Value::Array(f) => match (&f[0], &f[1], &f[2]) {
                (Value::Int(first), Value::Int(last), Value::Array(node)) => {
                    assert_eq!(f.len(), 3, "a primary without replicas: {e:?}");
                    assert_eq!(node.len(), 4, "host, port, id, metadata: {node:?}");
                    let Value::Int(port) = node[1] else {
                        panic!("port: {node:?}")
                    };
                    (*first, *last, port)
                }
                _ => panic!("CLUSTER SLOTS entry: {e:?}"),
            },
            _ => panic!("CLUSTER SLOTS entry: {e:?}"),
        })
        .collect()
}

/// Checks `ranges` cover slots 0..16384 once, in order, neighbours of one node merged.
fn assert_every_slot_once(ranges: &[(i64, i64, i64)]) {
    let mut next = 0;
    for (i, &(first, last, port)) in ranges.iter().enumerate() {
        assert_eq!(first, next, "gap or overlap before {first}: {ranges:?}");
        assert!(last >= first);
        if i > 0 {
            assert_ne!(ranges[i - 1].2, port, "unmerged neighbours: {ranges:?}");
        }
        next = last + 1;
    }
    assert_eq!(next, 16384, "{ranges:?}");
}

/// The slot ranges of each node's line in a CLUSTER NODES reply, by client port.
fn nodes_ranges(nodes: &str) -> BTreeMap<i64, Vec<(i64, i64)>> {
    let mut out = BTreeMap::new();
    for line in nodes.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let port: i64 = fields[1]
            .split('@')
            .next()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("address in {line}"));
        assert!(fields[2].contains("master"), "{line}");
        let ranges = fields[8..]
            .iter()
            .map(|r| match r.split_once('-') {
                Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                None => (r.parse().unwrap(), r.parse().unwrap()),
            })
            .collect();
        out.insert(port, ranges);
    }
    out
}

/// Every node's CLUSTER SLOTS, `None` for a node that does not answer.
fn advertised_by_each(c: &Cluster) -> Vec<Option<Vec<(i64, i64, i64)>>> {
    c.nodes
        .iter()
        .map(|n| {
            let mut conn = redis::Client::open(n.url(false))
                .and_then(|cl| cl.get_connection_with_timeout(Duration::from_secs(5)))
                .ok()?;
            let slots: Value = redis::cmd("CLUSTER").arg("SLOTS").query(&mut conn).ok()?;
            Some(slot_ranges(&slots))
        })
        .collect()
}

/// Waits until every node's failure detector sees every node up, so that all
/// advertise the same slots on all the nodes (`cluster_state:ok` needs only a quorum of
/// each partition's replicas up), and returns what they advertise.
fn wait_slots_agreed(c: &Cluster) -> Vec<Option<Vec<(i64, i64, i64)>>> {
    let mut seen = Vec::new();
    eventually(
        "every node advertises all nodes alike",
        FORM_TIMEOUT,
        || {
            seen = advertised_by_each(c);
            let primaries = |r: &Vec<(i64, i64, i64)>| {
                c.nodes
                    .iter()
                    .all(|n| r.iter().any(|&(_, _, p)| p == n.port as i64))
            };
            seen.iter().all(|s| s.as_ref().is_some_and(primaries))
                && seen.windows(2).all(|w| w[0] == w[1])
        },
    );
    seen
}

/// Runs `check` once the nodes agree on the slots. A failure while the advertised slots
/// changed under it (a failure detector on a loaded machine doubted a peer for a
/// moment: the window docs/cluster.md describes) runs it again; a failure with the same
/// slots advertised before and after fails the test.
fn check_while_slots_stable(
    c: &Cluster,
    what: &str,
    mut check: impl FnMut() -> Result<(), String>,
) {
    let deadline = Instant::now() + FORM_TIMEOUT;
    loop {
        let before = wait_slots_agreed(c);
        let Err(e) = check() else { return };
        let changed = advertised_by_each(c) != before;
        assert!(
            changed && Instant::now() < deadline,
            "{what}: {e} (advertised slots changed: {changed})"
        );
        eprintln!("{what}: the advertised slots changed during the check ({e}); again");
    }
}

/// `Err(why)` unless `got == want`.
fn same<T: PartialEq + std::fmt::Debug>(what: &str, got: T, want: T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn start_compat_cluster() -> Cluster {
    let c = Cluster::start(3, COMPAT);
    wait_slots_agreed(&c);
    c
}

#[test]
fn every_slot_is_advertised_once_in_redis_7_shapes_and_nothing_redirects() {
    let c = start_compat_cluster();
    check_while_slots_stable(&c, "SLOTS, NODES and SHARDS agree", || advertised_alike(&c));
    for node in &c.nodes {
        let mut conn = node.client();
        for mode in ["READONLY", "READWRITE", "ASKING"] {
            let ok: String = redis::cmd(mode).query(&mut conn).unwrap();
            assert_eq!(ok, "OK", "{mode}");
        }
        let info: String = redis::cmd("INFO").arg("cluster").query(&mut conn).unwrap();
        assert!(info.contains("cluster_enabled:1"), "{info}");
        let state: String = redis::cmd("CLUSTER").arg("INFO").query(&mut conn).unwrap();
        assert!(state.contains("cluster_state:ok"), "{state}");
        assert!(state.contains("cluster_slots_assigned:16384"), "{state}");
    }
    // Any node serves any key, whichever node advertises its slot: no MOVED, no ASK.
    for (i, node) in c.nodes.iter().enumerate() {
        let mut conn = node.client();
        for k in 0..50 {
            let _: () = conn.set(format!("k{k}"), i).unwrap();
            let v: i64 = conn.get(format!("k{k}")).unwrap();
            assert_eq!(v, i as i64);
        }
    }
}

/// Every node's CLUSTER SLOTS covers every slot once with merged ranges, gives every
/// node some, and agrees with the other nodes and with its own CLUSTER NODES and
/// SHARDS. Reply shapes are asserted; what depends on who is up is returned.
fn advertised_alike(c: &Cluster) -> Result<(), String> {
    let ports: Vec<i64> = c.nodes.iter().map(|n| n.port as i64).collect();
    let mut first = None;
    for node in &c.nodes {
        let mut conn = node.client();
        let slots: Value = redis::cmd("CLUSTER").arg("SLOTS").query(&mut conn).unwrap();
        let ranges = slot_ranges(&slots);
        assert_every_slot_once(&ranges);
        for p in &ports {
            if !ranges.iter().any(|r| r.2 == *p) {
                return Err(format!("{p} owns no slot"));
            }
        }
        // Every node sees every node up: all advertise the same owners.
        match &first {
            None => first = Some(ranges.clone()),
            Some(f) => same("the nodes' CLUSTER SLOTS", f, &ranges)?,
        }
        // CLUSTER NODES shows the same slots, per node.
        let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut conn).unwrap();
        let mut from_slots: BTreeMap<i64, Vec<(i64, i64)>> = BTreeMap::new();
        for &(a, b, p) in &ranges {
            from_slots.entry(p).or_default().push((a, b));
        }
        same("CLUSTER NODES", nodes_ranges(&nodes), from_slots.clone())?;
        // CLUSTER SHARDS: one shard per node, its slots as flat pairs.
        let shards: Vec<Vec<Value>> = redis::cmd("CLUSTER")
            .arg("SHARDS")
            .query(&mut conn)
            .unwrap();
        assert_eq!(shards.len(), 3);
        for shard in &shards {
            assert_eq!(shard[0], Value::BulkString(b"slots".to_vec()));
            assert_eq!(shard[2], Value::BulkString(b"nodes".to_vec()));
            let pairs: Vec<i64> = redis::from_redis_value(&shard[1]).unwrap();
            let members: Vec<BTreeMap<String, Value>> = redis::from_redis_value(&shard[3]).unwrap();
            assert_eq!(members.len(), 1);
            let m = &members[0];
            let port: i64 = redis::from_redis_value(&m["port"]).unwrap();
            let role: String = redis::from_redis_value(&m["role"]).unwrap();
            let health: String = redis::from_redis_value(&m["health"]).unwrap();
            assert_eq!(role, "master");
            same("health", health.as_str(), "online")?;
            let ranges: Vec<(i64, i64)> = pairs.chunks(2).map(|p| (p[0], p[1])).collect();
            same(
                &format!("shard of {port}"),
                Some(&ranges),
                from_slots.get(&port),
            )?;
        }
    }
    Ok(())
}

#[test]
fn without_compat_mode_cluster_slots_stays_unknown_and_the_node_standalone() {
    let c = Cluster::start(1, &[]);
    let mut conn = c.nodes[0].client();
    for sub in ["SLOTS", "SHARDS"] {
        let e = redis::cmd("CLUSTER")
            .arg(sub)
            .query::<Value>(&mut conn)
            .unwrap_err();
        let want = format!("unknown subcommand '{sub}'. Try CLUSTER HELP.");
        assert_eq!((e.code(), e.detail()), (Some("ERR"), Some(want.as_str())));
    }
    let e = redis::cmd("READONLY")
        .query::<Value>(&mut conn)
        .unwrap_err();
    assert!(e.to_string().contains("cluster support disabled"), "{e}");
    let info: String = redis::cmd("INFO").arg("cluster").query(&mut conn).unwrap();
    assert!(info.contains("cluster_enabled:0"), "{info}");
    // CLUSTER NODES keeps its slots: the first node of each preference list.
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut conn).unwrap();
    assert!(nodes.trim_end().ends_with("connected 0-16383"), "{nodes}");
}

/// Per-node SCAN through the cluster client's routing to one node, to the end.
fn scan_node(conn: &mut redis::cluster::ClusterConnection, port: u16) -> Vec<String> {
    let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
        host: "127.0.0.1".into(),
        port,
    });
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor).arg("COUNT").arg(50);
        let reply = conn.route_command(&cmd, route.clone()).unwrap();
        let (next, page): (u64, Vec<String>) = redis::from_redis_value(&reply).unwrap();
        keys.extend(page);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

#[test]
fn the_redis_crate_cluster_client_reads_writes_and_counts_each_key_once() {
    let c = start_compat_cluster();
    let urls: Vec<String> = c.nodes.iter().map(|n| n.url(false)).collect();
    let client = ClusterClient::builder(urls[..1].to_vec())
        .connection_timeout(Duration::from_secs(10))
        .response_timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let mut conn = client.get_connection().unwrap();
    let keys: Vec<String> = (0..500).map(|i| format!("key:{i}")).collect();
    for k in &keys {
        let _: () = conn.set(k, format!("v-{k}")).unwrap();
    }
    for k in &keys {
        let v: String = conn.get(k).unwrap();
        assert_eq!(v, format!("v-{k}"));
    }
    let tagged = ["{user7}:name", "{user7}:mail"];
    let _: () = conn
        .mset(&[(tagged[0], "ann"), (tagged[1], "ann@x")])
        .unwrap();
    let got: Vec<String> = conn.mget(&tagged[..]).unwrap();
    assert_eq!(got, ["ann", "ann@x"]);
    let mut pipe = cluster_pipe();
    for i in 0..100 {
        pipe.set(format!("p:{i}"), i).ignore();
    }
    for i in 0..100 {
        pipe.get(format!("p:{i}"));
    }
    let values: Vec<i64> = pipe.query(&mut conn).unwrap();
    assert_eq!(values, (0..100).collect::<Vec<i64>>());

    let mut all: Vec<String> = keys.clone();
    all.extend(tagged.iter().map(|s| s.to_string()));
    all.extend((0..100).map(|i| format!("p:{i}")));
    all.sort();
    check_while_slots_stable(&c, "each key once", || {
        // A new connection reads the slots now: the crate only reloads them on MOVED or
        // a connection error, which kvd never gives while nodes only doubt a peer.
        let mut conn = client.get_connection().map_err(|e| e.to_string())?;
        // KEYS and DBSIZE go to every primary; the client joins and sums the answers.
        let mut listed: Vec<String> = conn.keys("*").map_err(|e| e.to_string())?;
        listed.sort();
        same("KEYS over the primaries", &listed, &all)?;
        let size: usize = redis::cmd("DBSIZE")
            .query(&mut conn)
            .map_err(|e| e.to_string())?;
        same("DBSIZE summed over the primaries", size, all.len())?;
        let mut scanned: Vec<String> = c
            .nodes
            .iter()
            .flat_map(|n| scan_node(&mut conn, n.port))
            .collect();
        scanned.sort();
        same("SCAN of every node", &scanned, &all)
    });
}

/// Runs the redis-py program against the cluster, kills node 2 with SIGKILL when it
/// asks, and checks it ends with `OK`.
#[test]
fn redis_py_cluster_client_sees_each_key_once_and_survives_a_kill_9() {
    let python = "/usr/bin/python3";
    let probe = Command::new(python)
        .args(["-c", "import redis.cluster"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: redis-py: python3-redis is not installed (CI installs it: .ci/run)");
        return;
    }
    let mut c = start_compat_cluster();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/python/kvd_cluster_check.py");
    let dir = tempfile::tempdir().unwrap();
    let stderr_path = dir.path().join("stderr");
    let mut child = Command::new(python)
        .arg(&script)
        .args(["127.0.0.1", &c.nodes[0].port.to_string(), "1000"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("start python3");
    let (lines_tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + PROGRAM_LIMIT;
    let mut output = Vec::new();
    let mut stdin = child.stdin.take();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if line == "KILL?" {
                    c.nodes[2].kill9();
                    let mut input = stdin.take().expect("asked once");
                    writeln!(input, "{}", c.nodes[2].port).expect("write to the program");
                }
                output.push(line);
            }
            // The program closed its output (it ended) or ran out of time.
            Err(_) => break,
        }
    }
    // Its output closed: it is ending (or it ran out of time and is killed).
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let output = output.join("\n");
    // Shown with --nocapture: the steps and how long recovery took.
    eprintln!("redis-py program output:\n{output}");
    assert!(
        status.is_some_and(|s| s.success()) && output.ends_with("\nOK") && output.contains("KILL?"),
        "redis-py: status {status:?} (None: killed after {PROGRAM_LIMIT:?})\nstdout:\n{output}\n\
         stderr:\n{stderr}\nnode 0 log:\n{}",
        c.nodes[0].log_text()
    );
}
