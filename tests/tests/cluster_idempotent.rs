//! Idempotent retries on a 3-node cluster (docs/consistency.md, "Idempotent retries"):
//! the first reply of `IDEMPOTENT id command` (and of an HTTP write with an
//! `Idempotency-Key`) travels in the key's replicated record, so a retry through any
//! node, also after the first coordinator was killed, gets that reply and applies
//! nothing. Several keys and eventual databases are refused.

use kv_tests::cluster::{connect, urls, Cluster};
use kv_tests::http::{etag_version, get, request, start_cluster};

fn idempotent_incr(conn: &mut redis::Connection, id: &str, key: &str) -> i64 {
    redis::cmd("IDEMPOTENT")
        .arg(id)
        .arg("INCR")
        .arg(key)
        .query(conn)
        .expect("IDEMPOTENT INCR")
}

fn replays(url: &str) -> u64 {
    let mut conn = connect(url);
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query(&mut conn)
        .expect("INFO");
    kv_tests::info_field(&info, "idempotent_replays")
        .and_then(|v| v.parse().ok())
        .expect("idempotent_replays")
}

#[test]
fn a_retry_through_any_node_counts_once_also_after_the_first_coordinator_died() {
    let mut c = Cluster::start(3, &["--cluster-eventual-databases", "1"]);
    let urls = urls(&c);
    let mut conns: Vec<redis::Connection> = urls.iter().map(|u| connect(u)).collect();
    assert_eq!(idempotent_incr(&mut conns[0], "req-1", "c"), 1);
    assert_eq!(idempotent_incr(&mut conns[0], "req-1", "c"), 1);
    assert_eq!(idempotent_incr(&mut conns[1], "req-1", "c"), 1);
    // Counted where the replay ran: the key's proposer (docs/consistency.md, "One
    // proposer per key").
    assert_eq!(urls.iter().map(|u| replays(u)).sum::<u64>(), 2);
    // Another request id is another increment; plain writes keep the records.
    assert_eq!(idempotent_incr(&mut conns[1], "req-2", "c"), 2);
    let _: () = redis::cmd("SET")
        .arg("c")
        .arg(10)
        .query(&mut conns[2])
        .expect("SET");

    // The node that answered req-1 first dies; its retries elsewhere still answer 1.
    c.nodes[0].kill9();
    assert_eq!(idempotent_incr(&mut conns[2], "req-1", "c"), 1);
    assert_eq!(idempotent_incr(&mut conns[1], "req-2", "c"), 2);
    let value: i64 = redis::cmd("GET")
        .arg("c")
        .query(&mut conns[2])
        .expect("GET");
    assert_eq!(value, 10, "a retry was applied again");
    assert_eq!(idempotent_incr(&mut conns[1], "req-3", "c"), 11);

    // Several keys: refused, nothing written.
    let several: redis::RedisResult<()> = redis::cmd("IDEMPOTENT")
        .arg("req-4")
        .arg("MSET")
        .arg("a")
        .arg(1)
        .arg("b")
        .arg(2)
        .query(&mut conns[1]);
    let e = several.expect_err("IDEMPOTENT MSET of two keys");
    assert_eq!(e.code(), Some("CROSSSLOT"), "{e}");
    let a: Option<String> = redis::cmd("GET")
        .arg("a")
        .query(&mut conns[2])
        .expect("GET");
    assert_eq!(a, None);

    // An eventual database: refused with why.
    let _: () = redis::cmd("SELECT")
        .arg(1)
        .query(&mut conns[1])
        .expect("SELECT");
    let eventual: redis::RedisResult<i64> = redis::cmd("IDEMPOTENT")
        .arg("req-5")
        .arg("INCR")
        .arg("c")
        .query(&mut conns[1]);
    let e = eventual.expect_err("IDEMPOTENT in an eventual database");
    assert!(e.to_string().contains("eventual"), "{e}");
}

#[test]
fn an_idempotency_key_writes_once_through_any_node() {
    let (mut c, http) = start_cluster(3, &[]);
    let key = ("idempotency-key", "put-1");
    let first = request(http[0], "PUT", "/kv/doc", &[key], b"first");
    assert_eq!(first.status, 200, "{first:?}");
    let version = etag_version(&first);
    let retry = request(http[1], "PUT", "/kv/doc", &[key], b"second");
    assert_eq!(retry.status, 200, "{retry:?}");
    assert_eq!(
        etag_version(&retry),
        version,
        "the first answer, ETag included"
    );
    assert_eq!(get(http[2], "/kv/doc").json()["value"], "first");

    // A delete under its own key, retried after the key was written again: the retry
    // answers as the delete did and does not delete the new value.
    let del = ("idempotency-key", "del-1");
    assert_eq!(
        request(http[1], "DELETE", "/kv/doc", &[del], b"").status,
        204
    );
    let again = request(http[2], "PUT", "/kv/doc", &[], b"again");
    assert_eq!(again.status, 200, "{again:?}");

    c.nodes[0].kill9();
    let late = request(http[2], "PUT", "/kv/doc", &[key], b"third");
    assert_eq!(late.status, 200, "{late:?}");
    assert_eq!(etag_version(&late), version);
    assert_eq!(
        request(http[1], "DELETE", "/kv/doc", &[del], b"").status,
        204
    );
    assert_eq!(get(http[2], "/kv/doc").json()["value"], "again");
}
