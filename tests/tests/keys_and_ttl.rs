//! Key commands, databases and TTL end to end: expiry checked on read, the active sweep
//! removing keys nobody reads, expiry surviving a restart.

use kv_tests::{eventually, int_reply, Kvd};
use std::time::Duration;

#[test]
fn generic_key_commands() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    assert_eq!(
        r.cmd(&[b"MSET", b"a", b"1", b"b", b"2", b"c", b"3"]),
        "+OK\r\n"
    );
    assert_eq!(r.cmd(&[b"EXISTS", b"a", b"b", b"nokey", b"a"]), ":3\r\n");
    assert_eq!(r.cmd(&[b"TYPE", b"a"]), "+string\r\n");
    assert_eq!(r.cmd(&[b"TYPE", b"nokey"]), "+none\r\n");
    assert_eq!(r.cmd(&[b"DEL", b"a", b"nokey"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"UNLINK", b"b"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"RENAME", b"nokey", b"x"]), "-ERR no such key\r\n");
    assert_eq!(r.cmd(&[b"RENAME", b"c", b"d"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"GET", b"d"]), "$1\r\n3\r\n");
    assert_eq!(r.cmd(&[b"SET", b"e", b"5"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"RENAMENX", b"d", b"e"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"COPY", b"d", b"e"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"COPY", b"d", b"e", b"REPLACE"]), ":1\r\n");
    assert_eq!(
        r.cmd(&[b"COPY", b"d", b"d"]),
        "-ERR source and destination objects are the same\r\n"
    );
    assert_eq!(r.cmd(&[b"COPY", b"d", b"d", b"DB", b"3"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"MOVE", b"e", b"1"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"MOVE", b"e", b"1"]), ":0\r\n");
    assert_eq!(
        r.cmd(&[b"MOVE", b"d", b"99"]),
        "-ERR DB index is out of range\r\n"
    );
    assert_eq!(r.cmd(&[b"SELECT", b"1"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"GET", b"e"]), "$1\r\n3\r\n");
    assert_eq!(
        r.cmd(&[b"SELECT", b"16"]),
        "-ERR DB index is out of range\r\n"
    );
    assert_eq!(
        r.cmd(&[b"SELECT", b"x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(r.cmd(&[b"SWAPDB", b"0", b"1"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"GET", b"d"]), "$1\r\n3\r\n");
    assert_eq!(r.cmd(&[b"DBSIZE"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"FLUSHDB"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"DBSIZE"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"SELECT", b"0"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"GET", b"e"]), "$1\r\n3\r\n");
    assert_eq!(r.cmd(&[b"FLUSHALL", b"SYNC"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"RANDOMKEY"]), "$-1\r\n");
    for i in 0..25 {
        let key = format!("user:{i:02}");
        assert_eq!(r.cmd(&[b"SET", key.as_bytes(), b"v"]), "+OK\r\n");
    }
    assert_eq!(r.cmd(&[b"SET", b"other", b"v"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"KEYS", b"user:0?"]).matches("user:0").count(), 10);
    assert!(r.cmd(&[b"RANDOMKEY"]).starts_with('$'));
    // SCAN visits every key exactly once.
    let mut c = k.client();
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("user:*")
            .arg("COUNT")
            .arg(7)
            .query(&mut c)
            .unwrap();
        for key in keys {
            assert!(seen.insert(key), "duplicate");
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(
        r.cmd(&[b"SCAN", b"0", b"TYPE", b"hash", b"COUNT", b"1000"]),
        "*2\r\n$1\r\n0\r\n*0\r\n"
    );
    assert_eq!(
        r.cmd(&[b"SCAN", b"0", b"COUNT", b"0"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(r.cmd(&[b"SCAN", b"x"]), "-ERR invalid cursor\r\n");
}

#[test]
fn expire_family_and_options() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    assert_eq!(r.cmd(&[b"EXPIRE", b"nokey", b"10"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"SET", b"k", b"v"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"TTL", b"k"]), ":-1\r\n");
    assert_eq!(r.cmd(&[b"TTL", b"nokey"]), ":-2\r\n");
    assert_eq!(r.cmd(&[b"EXPIRE", b"k", b"100", b"XX"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"EXPIRE", b"k", b"100", b"NX"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"EXPIRE", b"k", b"50", b"GT"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"EXPIRE", b"k", b"200", b"GT"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"EXPIRE", b"k", b"300", b"LT"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"TTL", b"k"]), ":200\r\n");
    assert_eq!(
        r.cmd(&[b"EXPIRE", b"k", b"1", b"NX", b"XX"]),
        "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
    );
    assert_eq!(
        r.cmd(&[b"EXPIRE", b"k", b"1", b"GT", b"LT"]),
        "-ERR GT and LT options at the same time are not compatible\r\n"
    );
    assert_eq!(
        r.cmd(&[b"EXPIRE", b"k", b"1", b"YY"]),
        "-ERR Unsupported option YY\r\n"
    );
    assert_eq!(
        r.cmd(&[b"EXPIRE", b"k", b"x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(r.cmd(&[b"PEXPIREAT", b"k", b"33177117420000"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"PEXPIRETIME", b"k"]), ":33177117420000\r\n");
    assert_eq!(r.cmd(&[b"EXPIRETIME", b"k"]), ":33177117420\r\n");
    assert_eq!(r.cmd(&[b"EXPIREAT", b"k", b"33177117421"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"PERSIST", b"k"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"PERSIST", b"k"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"EXPIRETIME", b"k"]), ":-1\r\n");
    // An expiry in the past deletes the key.
    assert_eq!(r.cmd(&[b"EXPIRE", b"k", b"-1"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"EXISTS", b"k"]), ":0\r\n");
}

#[test]
fn keys_expire_on_read_and_by_the_active_sweep_and_ttl_survives_restart() {
    let mut k = Kvd::start_default();
    let mut r = k.raw();
    assert_eq!(r.cmd(&[b"SET", b"short", b"v", b"PX", b"150"]), "+OK\r\n");
    for i in 0..50 {
        let key = format!("sweep:{i}");
        assert_eq!(
            r.cmd(&[b"SET", key.as_bytes(), b"v", b"PX", b"100"]),
            "+OK\r\n"
        );
    }
    assert_eq!(r.cmd(&[b"SET", b"long", b"v", b"EX", b"1000"]), "+OK\r\n");
    eventually("short expired on read", Duration::from_secs(5), || {
        r.cmd(&[b"GET", b"short"]) == "$-1\r\n"
    });
    assert_eq!(r.cmd(&[b"EXISTS", b"short"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"TTL", b"short"]), ":-2\r\n");
    // Nobody reads sweep:*; the background sweep deletes them and `short` (INFO counts
    // it). Until it does, DBSIZE counts them: kvd's reads never delete (Redis's GET does).
    eventually(
        "the sweep removed every expired key",
        Duration::from_secs(10),
        || {
            let info = r.cmd(&[b"INFO", b"stats"]);
            info.lines()
                .find_map(|l| l.strip_prefix("expired_keys:"))
                .map(|v| v.trim().parse::<u64>().unwrap_or(0) >= 51)
                .unwrap_or(false)
        },
    );
    assert_eq!(r.cmd(&[b"DBSIZE"]), ":1\r\n");
    k.restart();
    let mut r = k.raw();
    let ttl = int_reply(&r.cmd(&[b"TTL", b"long"]));
    assert!((990..=1000).contains(&ttl), "ttl {ttl}");
    assert_eq!(r.cmd(&[b"EXISTS", b"short"]), ":0\r\n");
}

/// The sweep thread runs at nice 19 (server.rs, `lower_this_threads_priority`): its
/// bursts must give the core back to a waking command at once.
#[test]
fn the_sweep_thread_runs_at_the_lowest_priority() {
    let k = Kvd::start_default();
    let tasks = format!("/proc/{}/task", k.pid());
    // The nice value of each thread named kvd-expire (the thread sets it as it starts).
    let sweep_threads_nice = || {
        let mut found = Vec::new();
        for task in std::fs::read_dir(&tasks).expect("read /proc tasks") {
            let dir = task.expect("task entry").path();
            let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            if comm.trim() != "kvd-expire" {
                continue;
            }
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
            // Field 19 is the nice value; fields start after the ")" closing the name.
            let nice = stat
                .rfind(')')
                .and_then(|end| stat.get(end + 2..))
                .and_then(|rest| rest.split(' ').nth(16))
                .and_then(|f| f.parse::<i64>().ok());
            found.push(nice);
        }
        found
    };
    eventually(
        "one kvd-expire thread at nice 19",
        Duration::from_secs(5),
        || sweep_threads_nice() == vec![Some(19)],
    );
}
