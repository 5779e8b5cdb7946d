//! Pipelines that kvd runs as one group (commands/mod.rs `execute_group`): runs of reads
//! as well as runs with writes must reply exactly as the commands would one by one, count
//! every read, and refuse what a RESP2 subscriber may not send.

use kv_tests::{encode_command, info_field, Kvd, RawConn};

fn keyspace_hits_and_misses(r: &mut RawConn) -> (i64, i64) {
    let info = r.cmd(&[b"INFO", b"stats"]);
    let field = |name| {
        info_field(&info, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {info}"))
    };
    (field("keyspace_hits"), field("keyspace_misses"))
}

#[test]
fn a_run_of_reads_replies_in_order_and_counts_each_read() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    assert_eq!(r.cmd(&[b"SET", b"a", b"one"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"SET", b"b", b"three"]), "+OK\r\n");
    let (hits, misses) = keyspace_hits_and_misses(&mut r);
    let replies = r.pipeline(&[
        &["GET", "a"],
        &["GET", "missing"],
        &["MGET", "a", "missing", "b"],
        &["STRLEN", "b"],
        &["GET", "b"],
        &["EXISTS", "a", "b", "missing"],
    ]);
    assert_eq!(
        replies,
        [
            "$3\r\none\r\n",
            "$-1\r\n",
            "*3\r\n$3\r\none\r\n$-1\r\n$5\r\nthree\r\n",
            ":5\r\n",
            "$5\r\nthree\r\n",
            ":2\r\n",
        ]
    );
    let (hits_after, misses_after) = keyspace_hits_and_misses(&mut r);
    // Each GET counts (kvd counts hits and misses on GET only).
    assert_eq!(hits_after - hits, 2);
    assert_eq!(misses_after - misses, 1);
}

#[test]
fn reads_after_writes_in_one_pipeline_see_those_writes() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    let replies = r.pipeline(&[
        &["GET", "x"],
        &["SET", "x", "1"],
        &["GET", "x"],
        &["INCR", "x"],
        &["GET", "x"],
        &["DEL", "x"],
        &["GET", "x"],
    ]);
    assert_eq!(
        replies,
        [
            "$-1\r\n",
            "+OK\r\n",
            "$1\r\n1\r\n",
            ":2\r\n",
            "$1\r\n2\r\n",
            ":1\r\n",
            "$-1\r\n"
        ]
    );
}

#[test]
fn a_resp2_subscriber_gets_each_pipelined_command_refused() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    r.send(&encode_command(&[b"SUBSCRIBE", b"ch"]));
    assert_eq!(
        String::from_utf8_lossy(&r.reply()),
        "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"
    );
    let refused = |name: &str| {
        format!("-ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n")
    };
    let replies = r.pipeline(&[
        &["SET", "s", "1"],
        &["SET", "t", "2"],
        &["GET", "s"],
        &["GET", "t"],
    ]);
    assert_eq!(
        replies,
        [
            refused("set"),
            refused("set"),
            refused("get"),
            refused("get")
        ]
    );
    let mut other = k.raw();
    assert_eq!(other.cmd(&[b"EXISTS", b"s", b"t"]), ":0\r\n");
}
