//! Siblings databases (issue 9, docs/consistency.md "Siblings"): concurrent writes to a
//! key are kept as siblings with dotted version vectors, read with a causality token
//! (SIBGET) and resolved by a write carrying it (SIBSET), and every replica converges on
//! the resolution. The partition scenario runs real kvd processes in network namespaces
//! and prints `SKIPPED: <reason>` without root, `ip` and `iptables`; the command test
//! runs on loopback.

use kv_tests::cluster::{cluster_info, Cluster};
use kv_tests::netns::{poll_until, NetCluster};
use redis::{Commands, RedisResult};
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Generous for a loaded 2-core machine: gossip must notice a silent node, and hints and
/// anti-entropy run in the background.
const DEADLINE: Duration = Duration::from_secs(180);

/// The siblings database of these tests, and an eventual one beside it.
const SIBLINGS_FLAGS: &[&str] = &[
    "--cluster-siblings-databases",
    "2",
    "--cluster-eventual-databases",
    "1",
];

/// One cluster at a time on a 2-core machine.
static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// SIBGET: the token and the values, as strings.
fn sibget(conn: &mut redis::Connection, key: &str) -> RedisResult<(String, Vec<String>)> {
    let reply: Vec<String> = redis::cmd("SIBGET").arg(key).query(conn)?;
    let mut it = reply.into_iter();
    let token = it.next().unwrap_or_default();
    Ok((token, it.collect()))
}

fn sibset(conn: &mut redis::Connection, key: &str, token: &str, value: &str) -> RedisResult<()> {
    redis::cmd("SIBSET")
        .arg(key)
        .arg(token)
        .arg(value)
        .query(conn)
}

fn select(conn: &mut redis::Connection, db: u32) {
    let _: () = redis::cmd("SELECT")
        .arg(db)
        .query(conn)
        .expect("SELECT a configured database");
}

fn consistency(conn: &mut redis::Connection, level: &str) {
    let _: () = redis::cmd("CLUSTER")
        .arg("CONSISTENCY")
        .arg(level)
        .query(conn)
        .expect("CLUSTER CONSISTENCY");
}

/// Asks again while the answer is TIMEOUT, until `deadline`: after a heal, a bus
/// connection whose packets were dropped recovers only at TCP's next retransmission
/// (cluster_partition.rs explains).
fn after_heal<T>(deadline: Instant, mut f: impl FnMut() -> RedisResult<T>) -> RedisResult<T> {
    loop {
        match f() {
            Err(e) if e.code() == Some("TIMEOUT") && Instant::now() < deadline => {}
            other => return other,
        }
    }
}

/// The README's scenario: both sides of a partition write the same key (the minority
/// side at ONE), the heal shows both values and one token through any node, a write
/// with the token resolves them, and every replica converges on the resolution.
#[test]
fn both_sides_of_a_partition_keep_their_writes_and_the_token_resolves_them() {
    let _serial = one_at_a_time();
    let Some(c) = NetCluster::start_or_skip(3, SIBLINGS_FLAGS) else {
        return;
    };
    let mut majority = c.nodes[0].client();
    let mut minority = c.nodes[2].client();
    select(&mut majority, 2);
    select(&mut minority, 2);
    // A first value both sides read: each side's write supersedes it, and only it.
    sibset(&mut majority, "price", "-", "10").expect("first write");
    let (before, values) = sibget(&mut majority, "price").expect("SIBGET");
    assert_eq!(values, vec!["10"]);

    c.partition(2);
    // Node 3 alone: at QUORUM a write cannot reach W = 2; at ONE its own replica is
    // enough, as an AP database allows.
    consistency(&mut minority, "ONE");
    sibset(&mut minority, "price", &before, "12")
        .unwrap_or_else(|e| panic!("write at ONE on the minority side: {e}\n{}", c.logs()));
    sibset(&mut majority, "price", &before, "11")
        .unwrap_or_else(|e| panic!("write on the majority side: {e}\n{}", c.logs()));

    c.heal(2);
    c.wait_all_up();
    let deadline = Instant::now() + DEADLINE;
    let both: BTreeSet<String> = ["11", "12"].into_iter().map(String::from).collect();
    let mut tokens = BTreeSet::new();
    for node in &c.nodes {
        let mut conn = node.client();
        select(&mut conn, 2);
        poll_until(
            &format!("{} reads both values at QUORUM", node.ip),
            DEADLINE,
            || {
                let (token, values) = after_heal(deadline, || sibget(&mut conn, "price"))
                    .unwrap_or_else(|e| panic!("SIBGET through {}: {e}\n{}", node.ip, c.logs()));
                let seen: BTreeSet<String> = values.into_iter().collect();
                assert!(!seen.contains("10"), "the superseded value came back");
                let done = seen == both;
                if done {
                    tokens.insert(token);
                }
                done
            },
            || c.logs(),
        );
        let plain: RedisResult<Option<String>> = conn.get("price");
        let e = plain.expect_err("plain GET of a key with two siblings");
        assert_eq!(e.code(), Some("SIBLINGS"), "{e}");
    }
    assert_eq!(tokens.len(), 1, "one state, one token: {tokens:?}");

    // Resolve through node 2 with the token: the max.
    let mut resolver = c.nodes[1].client();
    select(&mut resolver, 2);
    let (token, values) = after_heal(deadline, || sibget(&mut resolver, "price")).unwrap();
    let max = values.iter().max().cloned().expect("two values");
    after_heal(deadline, || sibset(&mut resolver, "price", &token, &max))
        .unwrap_or_else(|e| panic!("resolution: {e}\n{}", c.logs()));

    // At ONE each node answers from its own replica (it asks itself first): every
    // replica must come to hold the resolution alone.
    for node in &c.nodes {
        let mut conn = node.client();
        select(&mut conn, 2);
        consistency(&mut conn, "ONE");
        poll_until(
            &format!("the replica on {} holds only the resolution", node.ip),
            DEADLINE,
            || {
                let (_, values) = after_heal(deadline, || sibget(&mut conn, "price"))
                    .unwrap_or_else(|e| panic!("SIBGET through {}: {e}", node.ip));
                values == vec![max.clone()]
            },
            || c.logs(),
        );
        let v: Option<String> = conn.get("price").expect("plain GET of one value");
        assert_eq!(v, Some(max.clone()));
    }
    poll_until(
        "all nodes return identical CLUSTER MERKLE arrays",
        DEADLINE,
        || c.merkle_roots_agree(),
        || c.logs(),
    );
}

/// The commands on a healthy cluster, the sibling cap, and databases of the two other
/// kinds beside a siblings one, unchanged.
#[test]
fn siblings_commands_and_the_other_databases_beside_them() {
    let _serial = one_at_a_time();
    let c = Cluster::start(3, SIBLINGS_FLAGS);
    let mut a = c.nodes[0].client();
    let mut b = c.nodes[1].client();
    select(&mut a, 2);
    select(&mut b, 2);

    // Plain SET adds a sibling; through two nodes without a token, two siblings.
    let _: () = a.set("k", "x").unwrap();
    let _: () = b.set("k", "y").unwrap();
    let (token, values) = sibget(&mut a, "k").unwrap();
    let got: BTreeSet<String> = values.into_iter().collect();
    assert_eq!(got, ["x", "y"].into_iter().map(String::from).collect());
    let e = a.get::<_, Option<String>>("k").expect_err("two values");
    assert_eq!(e.code(), Some("SIBLINGS"));
    assert!(e.to_string().contains("2 concurrent values"), "{e}");

    // The token supersedes exactly what it covers: a write made after the read stays.
    let _: () = b.set("k", "z").unwrap();
    sibset(&mut a, "k", &token, "resolved").unwrap();
    let (token, values) = sibget(&mut b, "k").unwrap();
    let got: BTreeSet<String> = values.into_iter().collect();
    assert_eq!(
        got,
        ["resolved", "z"].into_iter().map(String::from).collect()
    );
    sibset(&mut b, "k", &token, "final").unwrap();
    let v: Option<String> = a.get("k").unwrap();
    assert_eq!(v.as_deref(), Some("final"));

    // SIBDEL with the token: nothing left; an older copy cannot bring it back.
    let (token, _) = sibget(&mut a, "k").unwrap();
    let _: () = redis::cmd("SIBDEL")
        .arg("k")
        .arg(&token)
        .query(&mut a)
        .unwrap();
    let v: Option<String> = b.get("k").unwrap();
    assert_eq!(v, None);
    let (_, values) = sibget(&mut b, "k").unwrap();
    assert!(values.is_empty());

    // Refusals: a bad token, read-modify-write, SET with options.
    let e = sibset(&mut a, "k", "not-a-token", "v").expect_err("bad token");
    assert!(e.to_string().contains("invalid causality token"), "{e}");
    let e = a
        .incr::<_, _, i64>("n", 1)
        .expect_err("INCR in a siblings db");
    assert!(e.to_string().contains("siblings database"), "{e}");
    let e = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .arg("NX")
        .query::<()>(&mut a)
        .expect_err("SET NX");
    assert!(e.to_string().contains("siblings database"), "{e}");

    // The cap: a 101st concurrent value is refused, and past 25 a warning is counted.
    for i in 0..100 {
        sibset(&mut a, "many", "-", &i.to_string()).unwrap_or_else(|e| panic!("sibling {i}: {e}"));
    }
    let e = sibset(&mut a, "many", "-", "one too many").expect_err("101st sibling");
    assert_eq!(e.code(), Some("TOOMANYSIBLINGS"), "{e}");
    let (token, values) = sibget(&mut b, "many").unwrap();
    assert_eq!(values.len(), 100);
    let warnings = cluster_info(&c.nodes[0], "kvd_siblings_warnings")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(warnings >= 75, "warnings counted: {warnings}");
    sibset(&mut b, "many", &token, "merged").unwrap();
    let (_, values) = sibget(&mut a, "many").unwrap();
    assert_eq!(values, vec!["merged"]);

    // A linearizable database (0) and an eventual one (1) beside it: unchanged, and
    // the siblings commands are refused there.
    for db in [0, 1] {
        let mut conn = c.nodes[2].client();
        select(&mut conn, db);
        let _: () = conn.set("k", "1").unwrap();
        let _: () = conn.set("k", "2").unwrap();
        let v: Option<String> = conn.get("k").unwrap();
        assert_eq!(v.as_deref(), Some("2"), "db {db}: last writer wins");
        let e = sibget(&mut conn, "k").expect_err("SIBGET outside a siblings db");
        assert!(e.to_string().contains("needs a siblings database"), "{e}");
        let incr: RedisResult<i64> = conn.incr("n", 1);
        match db {
            0 => assert_eq!(incr.unwrap(), 1, "INCR through consensus"),
            _ => assert!(incr.is_err(), "INCR refused in an eventual database"),
        }
    }
    // Database 2's key is its own: the writes above did not touch it.
    let (_, values) = sibget(&mut b, "k").unwrap();
    assert!(
        values.is_empty(),
        "db 2 still holds its deleted key: {values:?}"
    );
}
