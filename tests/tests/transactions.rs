//! MULTI/EXEC/DISCARD/WATCH with Redis's rules, across two clients.

use kv_tests::Kvd;
use std::time::{Duration, Instant};

#[test]
fn exec_runs_the_queue_atomically_and_reports_each_reply() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    assert_eq!(r.cmd(&[b"MULTI"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"MULTI"]), "-ERR MULTI calls can not be nested\r\n");
    assert_eq!(r.cmd(&[b"SET", b"a", b"1"]), "+QUEUED\r\n");
    assert_eq!(r.cmd(&[b"INCR", b"a"]), "+QUEUED\r\n");
    assert_eq!(r.cmd(&[b"SET", b"s", b"x"]), "+QUEUED\r\n");
    assert_eq!(r.cmd(&[b"INCR", b"s"]), "+QUEUED\r\n");
    assert_eq!(r.cmd(&[b"GET", b"a"]), "+QUEUED\r\n");
    assert_eq!(r.cmd(&[b"KEYS", b"*"]), "+QUEUED\r\n");
    // KEYS lists in data-key order, by slot then key hash: "s" (slot 3828) comes before
    // "a" (slot 15495), docs/format/keyspace.md.
    assert_eq!(
        r.cmd(&[b"EXEC"]),
        "*6\r\n+OK\r\n:2\r\n+OK\r\n-ERR value is not an integer or out of range\r\n$1\r\n2\r\n*2\r\n$1\r\ns\r\n$1\r\na\r\n"
    );
    assert_eq!(r.cmd(&[b"EXEC"]), "-ERR EXEC without MULTI\r\n");
    assert_eq!(r.cmd(&[b"DISCARD"]), "-ERR DISCARD without MULTI\r\n");
}

#[test]
fn queue_time_errors_abort_exec() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    assert_eq!(r.cmd(&[b"MULTI"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"SET", b"a", b"1"]), "+QUEUED\r\n");
    assert_eq!(
        r.cmd(&[b"GET"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        r.cmd(&[b"NOSUCH", b"x"]),
        "-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n"
    );
    assert_eq!(
        r.cmd(&[b"EXEC"]),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(r.cmd(&[b"EXISTS", b"a"]), ":0\r\n");
    assert_eq!(r.cmd(&[b"MULTI"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"SET", b"a", b"1"]), "+QUEUED\r\n");
    assert_eq!(r.cmd(&[b"DISCARD"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"EXISTS", b"a"]), ":0\r\n");
}

#[test]
fn watch_aborts_when_another_client_writes_or_the_key_expires() {
    let k = Kvd::start_default();
    let mut a = k.raw();
    let mut b = k.raw();
    assert_eq!(a.cmd(&[b"SET", b"w", b"1"]), "+OK\r\n");
    assert_eq!(a.cmd(&[b"WATCH", b"w"]), "+OK\r\n");
    assert_eq!(b.cmd(&[b"SET", b"w", b"2"]), "+OK\r\n");
    assert_eq!(a.cmd(&[b"MULTI"]), "+OK\r\n");
    assert_eq!(
        a.cmd(&[b"WATCH", b"x"]),
        "-ERR WATCH inside MULTI is not allowed\r\n"
    );
    assert_eq!(a.cmd(&[b"SET", b"w", b"3"]), "+QUEUED\r\n");
    assert_eq!(a.cmd(&[b"EXEC"]), "*-1\r\n");
    assert_eq!(a.cmd(&[b"GET", b"w"]), "$1\r\n2\r\n");

    // Unchanged watched keys (also ones that did not exist) let EXEC run.
    assert_eq!(a.cmd(&[b"WATCH", b"w", b"absent"]), "+OK\r\n");
    assert_eq!(a.cmd(&[b"MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&[b"INCR", b"w"]), "+QUEUED\r\n");
    assert_eq!(a.cmd(&[b"EXEC"]), "*1\r\n:3\r\n");

    // A watched key created and deleted by another client still aborts.
    assert_eq!(a.cmd(&[b"WATCH", b"ghost"]), "+OK\r\n");
    assert_eq!(b.cmd(&[b"SET", b"ghost", b"1"]), "+OK\r\n");
    assert_eq!(b.cmd(&[b"DEL", b"ghost"]), ":1\r\n");
    assert_eq!(a.cmd(&[b"MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&[b"SET", b"q", b"1"]), "+QUEUED\r\n");
    assert_eq!(a.cmd(&[b"EXEC"]), "*-1\r\n");

    // Expiry between WATCH and EXEC aborts.
    assert_eq!(a.cmd(&[b"SET", b"e", b"1", b"PX", b"100"]), "+OK\r\n");
    assert_eq!(a.cmd(&[b"WATCH", b"e"]), "+OK\r\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.cmd(&[b"EXISTS", b"e"]) != ":0\r\n" {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(a.cmd(&[b"MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&[b"SET", b"q", b"1"]), "+QUEUED\r\n");
    assert_eq!(a.cmd(&[b"EXEC"]), "*-1\r\n");

    // UNWATCH forgets.
    assert_eq!(a.cmd(&[b"WATCH", b"w"]), "+OK\r\n");
    assert_eq!(b.cmd(&[b"SET", b"w", b"9"]), "+OK\r\n");
    assert_eq!(a.cmd(&[b"UNWATCH"]), "+OK\r\n");
    assert_eq!(a.cmd(&[b"MULTI"]), "+OK\r\n");
    assert_eq!(a.cmd(&[b"GET", b"w"]), "+QUEUED\r\n");
    assert_eq!(a.cmd(&[b"EXEC"]), "*1\r\n$1\r\n9\r\n");
}

#[test]
fn concurrent_incr_in_transactions_loses_no_update() {
    let k = Kvd::start_default();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = k.url(false);
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                for _ in 0..100 {
                    let _: (i64, i64) = redis::pipe()
                        .atomic()
                        .incr("n", 1)
                        .incr("m", 2)
                        .query(&mut c)
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut r = k.raw();
    assert_eq!(
        r.cmd(&[b"MGET", b"n", b"m"]),
        "*2\r\n$3\r\n400\r\n$3\r\n800\r\n"
    );
}
