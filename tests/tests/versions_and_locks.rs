//! Versions (ETags): they only grow, survive delete/re-create and restarts; conditional
//! set/delete succeed only on a matching version and report the current one otherwise.
//! Locks: lease, holder-only release, fencing tokens, and waiting woken by the release.

use kv_tests::Kvd;
use redis::Value;
use std::time::{Duration, Instant};

fn version_of(c: &mut redis::Connection, key: &str) -> Option<i64> {
    let v: Value = redis::cmd("GETWITHETAG").arg(key).query(c).unwrap();
    match v {
        Value::Nil => None,
        Value::Array(items) => match items[0] {
            Value::Int(n) => Some(n),
            ref other => panic!("bad version {other:?}"),
        },
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn versions_grow_and_compare_and_set_works() {
    let mut k = Kvd::start_default();
    let mut c = k.client();
    let _: () = redis::cmd("SET").arg("k").arg("a").query(&mut c).unwrap();
    let v1 = version_of(&mut c, "k").unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("b").query(&mut c).unwrap();
    let v2 = version_of(&mut c, "k").unwrap();
    assert!(v2 > v1);
    // Stale version: refused, told the current one and value.
    let (cur, val): (i64, String) = redis::cmd("SETIFMATCH")
        .arg("k")
        .arg("c")
        .arg(v1)
        .query(&mut c)
        .unwrap();
    assert_eq!((cur, val.as_str()), (v2, "b"));
    // Current version: accepted, new version returned.
    let (v3, none): (i64, Option<String>) = redis::cmd("SETIFMATCH")
        .arg("k")
        .arg("c")
        .arg(v2)
        .query(&mut c)
        .unwrap();
    assert!(v3 > v2 && none.is_none());
    assert_eq!(version_of(&mut c, "k"), Some(v3));
    let (hit, unchanged): (i64, Option<String>) = redis::cmd("GETIFNOTMATCH")
        .arg("k")
        .arg(v3)
        .query(&mut c)
        .unwrap();
    assert_eq!((hit, unchanged), (v3, None));
    // Conditional delete.
    let (deleted, cur): (i64, i64) = redis::cmd("DELIFMATCH")
        .arg("k")
        .arg(v2)
        .query(&mut c)
        .unwrap();
    assert_eq!((deleted, cur), (0, v3));
    let (deleted, _): (i64, i64) = redis::cmd("DELIFMATCH")
        .arg("k")
        .arg(v3)
        .query(&mut c)
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(version_of(&mut c, "k"), None);
    // Re-created: a new, larger version; 0 means "create only if absent".
    let (v4, _): (i64, Option<String>) = redis::cmd("SETIFMATCH")
        .arg("k")
        .arg("d")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert!(v4 > v3);
    let (cur, _): (i64, Option<String>) = redis::cmd("SETIFMATCH")
        .arg("k")
        .arg("e")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(cur, v4);
    // SET ... WITHETAG returns the version of the write.
    let v5: i64 = redis::cmd("SET")
        .arg("k")
        .arg("f")
        .arg("WITHETAG")
        .query(&mut c)
        .unwrap();
    assert!(v5 > v4);
    assert_eq!(version_of(&mut c, "k"), Some(v5));
    // Versions keep growing across a restart.
    k.restart();
    let mut c = k.client();
    assert_eq!(version_of(&mut c, "k"), Some(v5));
    let v6: i64 = redis::cmd("SET")
        .arg("k")
        .arg("g")
        .arg("WITHETAG")
        .query(&mut c)
        .unwrap();
    assert!(v6 > v5);
}

#[test]
fn lock_lease_release_and_fencing() {
    let k = Kvd::start_default();
    let mut a = k.client();
    let mut b = k.client();
    // The documented pattern: SET NX PX WITHETAG to acquire, DELEX IFEQ to release.
    let t1: Option<i64> = redis::cmd("SET")
        .arg("lock:x")
        .arg("alice")
        .arg("NX")
        .arg("PX")
        .arg(10_000)
        .arg("WITHETAG")
        .query(&mut a)
        .unwrap();
    let t1 = t1.expect("acquired");
    let t_b: Option<i64> = redis::cmd("LOCK")
        .arg("lock:x")
        .arg("bob")
        .arg(10_000)
        .query(&mut b)
        .unwrap();
    assert_eq!(t_b, None);
    let not_holder: i64 = redis::cmd("DELEX")
        .arg("lock:x")
        .arg("IFEQ")
        .arg("bob")
        .query(&mut b)
        .unwrap();
    assert_eq!(not_holder, 0);
    let released: i64 = redis::cmd("UNLOCK")
        .arg("lock:x")
        .arg("alice")
        .query(&mut a)
        .unwrap();
    assert_eq!(released, 1);
    let t2: i64 = redis::cmd("LOCK")
        .arg("lock:x")
        .arg("bob")
        .arg(10_000)
        .query(&mut b)
        .unwrap();
    assert!(t2 > t1, "fencing tokens grow");
    // A short lease ends by itself.
    let _: i64 = redis::cmd("LOCK")
        .arg("lock:y")
        .arg("alice")
        .arg(200)
        .query(&mut a)
        .unwrap();
    let start = Instant::now();
    let t3: Option<i64> = redis::cmd("LOCK")
        .arg("lock:y")
        .arg("bob")
        .arg(1000)
        .arg("WAIT")
        .arg(5000)
        .query(&mut b)
        .unwrap();
    assert!(t3.is_some());
    assert!(start.elapsed() < Duration::from_secs(3));
    // Waiting times out with nil.
    let start = Instant::now();
    let t4: Option<i64> = redis::cmd("LOCK")
        .arg("lock:x")
        .arg("carol")
        .arg(1000)
        .arg("WAIT")
        .arg(300)
        .query(&mut a)
        .unwrap();
    assert_eq!(t4, None);
    assert!(start.elapsed() >= Duration::from_millis(250));
}

#[test]
fn waiting_lock_is_woken_by_the_release_not_by_the_lease() {
    let k = Kvd::start_default();
    let mut a = k.client();
    let t1: i64 = redis::cmd("LOCK")
        .arg("lock:z")
        .arg("alice")
        .arg(60_000)
        .query(&mut a)
        .unwrap();
    let url = k.url(false);
    let waiter = std::thread::spawn(move || {
        let mut b = redis::Client::open(url).unwrap().get_connection().unwrap();
        let start = Instant::now();
        let t: Option<i64> = redis::cmd("LOCK")
            .arg("lock:z")
            .arg("bob")
            .arg(60_000)
            .arg("WAIT")
            .arg(20_000)
            .query(&mut b)
            .unwrap();
        (t, start.elapsed())
    });
    kv_tests::eventually("the waiter blocks", Duration::from_secs(10), || {
        let info: String = redis::cmd("INFO").arg("clients").query(&mut a).unwrap();
        kv_tests::info_field(&info, "blocked_clients").as_deref() == Some("1")
    });
    let released: i64 = redis::cmd("UNLOCK")
        .arg("lock:z")
        .arg("alice")
        .query(&mut a)
        .unwrap();
    assert_eq!(released, 1);
    let (t, waited) = waiter.join().unwrap();
    let t = t.expect("acquired after release");
    assert!(t > t1);
    assert!(
        waited < Duration::from_secs(5),
        "woken by the release, waited {waited:?}"
    );
    let holder: String = redis::cmd("GET").arg("lock:z").query(&mut a).unwrap();
    assert_eq!(holder, "bob");
}

#[test]
fn lock_wait_inside_exec_or_idempotent_does_not_block() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    assert!(r.cmd(&[b"LOCK", b"l", b"alice", b"60000"]).starts_with(':'));
    assert_eq!(r.cmd(&[b"MULTI"]), "+OK\r\n");
    assert_eq!(
        r.cmd(&[b"LOCK", b"l", b"bob", b"60000", b"WAIT", b"10000"]),
        "+QUEUED\r\n"
    );
    assert_eq!(r.cmd(&[b"EXEC"]), "*1\r\n$-1\r\n");
    assert_eq!(
        r.cmd(&[
            b"IDEMPOTENT",
            b"r1",
            b"LOCK",
            b"l",
            b"bob",
            b"60000",
            b"WAIT",
            b"10000"
        ]),
        "$-1\r\n"
    );
    assert_eq!(r.cmd(&[b"UNLOCK", b"l", b"alice"]), ":1\r\n");
    assert!(r
        .cmd(&[b"LOCK", b"l", b"bob", b"60000", b"WAIT", b"10000"])
        .starts_with(':'));
}

#[test]
fn pipelined_writes_report_their_own_versions() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    let mut p = Vec::new();
    for cmd in [
        &[&b"SET"[..], b"p", b"1", b"WITHETAG"][..],
        &[b"INCR", b"p"],
        &[b"GETWITHETAG", b"p"],
        &[b"SET", b"p", b"x", b"WITHETAG"],
        &[b"INCR", b"p"],
        &[b"GETWITHETAG", b"p"],
    ] {
        p.extend(kv_tests::encode_command(cmd));
    }
    r.send(&p);
    let int = |s: Vec<u8>| {
        String::from_utf8_lossy(&s[1..s.len() - 2])
            .parse::<i64>()
            .unwrap()
    };
    let v1 = int(r.reply());
    assert_eq!(r.reply(), b":2\r\n");
    let after_incr = String::from_utf8_lossy(&r.reply()).into_owned();
    let v2 = int(r.reply());
    assert_eq!(
        r.reply(),
        b"-ERR value is not an integer or out of range\r\n"
    );
    let last = String::from_utf8_lossy(&r.reply()).into_owned();
    assert_eq!(after_incr, format!("*2\r\n:{}\r\n$1\r\n2\r\n", v1 + 1));
    assert!(v2 > v1 + 1);
    assert_eq!(last, format!("*2\r\n:{v2}\r\n$1\r\nx\r\n"));
}
