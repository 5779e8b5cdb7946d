//! DBSIZE and INFO keyspace come from counts kept by every commit (issue 7 defect 16):
//! after any mix of writes, transactions, FLUSHDB and SWAPDB they equal a full count of
//! the keys, also after a restart, and expired keys leave them once expiry removes them.

use kv_tests::{eventually, info_field, int_reply, Kvd, RawConn};
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// Keys of the selected database counted one by one (nothing here expires during the test).
fn counted(c: &mut RawConn) -> i64 {
    let keys = c.cmd(&[b"KEYS", b"*"]);
    keys.lines()
        .next()
        .and_then(|l| l.strip_prefix('*'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{keys}"))
}

fn check_every_db(c: &mut RawConn, step: &str) {
    for db in 0..3 {
        assert_eq!(c.cmd(&[b"SELECT", db.to_string().as_bytes()]), "+OK\r\n");
        let size = int_reply(&c.cmd(&[b"DBSIZE"]));
        assert_eq!(size, counted(c), "db {db} after {step}");
    }
    assert_eq!(c.cmd(&[b"SELECT", b"0"]), "+OK\r\n");
}

#[test]
fn dbsize_equals_a_full_count_after_random_writes_and_restarts() {
    let mut k = Kvd::start_default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for round in 0..3 {
        let mut c = k.raw();
        for step in 0..300 {
            let db = rng.gen_range(0..3).to_string();
            assert_eq!(c.cmd(&[b"SELECT", db.as_bytes()]), "+OK\r\n");
            let a = format!("k{}", rng.gen_range(0..40));
            let b = format!("k{}", rng.gen_range(0..40));
            let (a, b) = (a.as_bytes(), b.as_bytes());
            let what = match rng.gen_range(0..100) {
                0..=29 => c.cmd(&[b"SET", a, b"v"]),
                30..=39 => c.cmd(&[b"SET", a, b"v", b"EX", b"10000"]),
                40..=54 => c.cmd(&[b"DEL", a, b]),
                55..=59 => c.cmd(&[b"MSET", a, b"1", b, b"2"]),
                60..=64 => c.cmd(&[b"RENAME", a, b]),
                65..=69 => c.cmd(&[b"EXPIRE", a, b"10000"]),
                70..=74 => c.cmd(&[b"PERSIST", a]),
                75..=79 => c.cmd(&[b"INCR", a]),
                80..=84 => c.cmd(&[b"GETDEL", a]),
                85..=89 => {
                    c.send(&kv_tests::encode_command(&[b"MULTI"]));
                    c.reply();
                    for args in [
                        &[&b"SET"[..], a, b"x"][..],
                        &[b"DEL", b],
                        &[b"SET", b, b"y"],
                    ] {
                        c.cmd(args);
                    }
                    c.cmd(&[b"EXEC"])
                }
                90..=93 => c.cmd(&[b"SWAPDB", b"0", b"2"]),
                94..=95 => c.cmd(&[b"FLUSHDB"]),
                96 => c.cmd(&[b"FLUSHALL"]),
                _ => c.cmd(&[b"COPY", a, b]),
            };
            assert!(!what.is_empty());
            if step % 25 == 0 {
                check_every_db(&mut c, &format!("round {round} step {step}"));
            }
        }
        check_every_db(&mut c, &format!("round {round}"));
        let info = c.cmd(&[b"INFO", b"keyspace"]);
        let size0 = int_reply(&c.cmd(&[b"DBSIZE"]));
        if size0 > 0 {
            let line = info_field(&info, "db0").expect("db0 line");
            assert!(line.starts_with(&format!("keys={size0},")), "{line}");
        }
        drop(c);
        k.restart(); // kill -9, then start: counts are rebuilt from the data
    }
}

#[test]
fn expired_keys_leave_the_counts_when_expiry_removes_them() {
    let k = Kvd::start(&["--hz", "50"]);
    let mut c = k.raw();
    for i in 0..50 {
        let key = format!("short{i}");
        assert_eq!(
            c.cmd(&[b"SET", key.as_bytes(), b"v", b"PX", b"30"]),
            "+OK\r\n"
        );
    }
    assert_eq!(c.cmd(&[b"SET", b"stays", b"v", b"EX", b"1000"]), "+OK\r\n");
    eventually(
        "the sweep removed the expired keys",
        Duration::from_secs(60),
        || int_reply(&c.cmd(&[b"DBSIZE"])) == 1,
    );
    let info = c.cmd(&[b"INFO", b"keyspace"]);
    assert_eq!(
        info_field(&info, "db0").as_deref(),
        Some("keys=1,expires=1,avg_ttl=0"),
        "{info}"
    );
}
