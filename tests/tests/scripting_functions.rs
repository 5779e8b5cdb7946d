//! FUNCTION libraries against real kvd processes: they survive a restart (kill -9 too),
//! a deletion does as well, FUNCTION DUMP / RESTORE round-trips them with each restore
//! policy, and FUNCTION KILL / FUNCTION STATS work on a function that does not end.

use kv_tests::{Kvd, RawConn};
use std::time::{Duration, Instant};

const LIB: &str = "#!lua name=counter\nredis.register_function('bump', function(keys, args) return redis.call('incrby', keys[1], args[1]) end)\nredis.register_function{function_name='peek', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}";
const OTHER: &str =
    "#!lua name=other\nredis.register_function('hello', function() return 'hi' end)";

fn cmd(c: &mut RawConn, args: &[&str]) -> String {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    c.cmd(&a)
}

#[test]
fn functions_survive_restarts_and_deletions_do_too() {
    let mut kvd = Kvd::start_default();
    let mut c = kvd.raw();
    assert_eq!(cmd(&mut c, &["FUNCTION", "LOAD", LIB]), "$7\r\ncounter\r\n");
    assert_eq!(cmd(&mut c, &["FUNCTION", "LOAD", OTHER]), "$5\r\nother\r\n");
    assert_eq!(cmd(&mut c, &["FCALL", "bump", "1", "n", "5"]), ":5\r\n");
    kvd.restart(); // kill -9, then start on the same directory
    let mut c = kvd.raw();
    assert_eq!(cmd(&mut c, &["FCALL", "bump", "1", "n", "2"]), ":7\r\n");
    assert_eq!(cmd(&mut c, &["FCALL_RO", "peek", "1", "n"]), "$1\r\n7\r\n");
    assert_eq!(cmd(&mut c, &["FCALL", "hello", "0"]), "$2\r\nhi\r\n");
    assert_eq!(cmd(&mut c, &["FUNCTION", "DELETE", "other"]), "+OK\r\n");
    kvd.restart();
    let mut c = kvd.raw();
    assert_eq!(
        cmd(&mut c, &["FCALL", "hello", "0"]),
        "-ERR Function not found\r\n"
    );
    assert_eq!(cmd(&mut c, &["FCALL", "bump", "1", "n", "1"]), ":8\r\n");
    assert_eq!(cmd(&mut c, &["FUNCTION", "FLUSH"]), "+OK\r\n");
    kvd.restart();
    let mut c = kvd.raw();
    assert_eq!(cmd(&mut c, &["FUNCTION", "LIST"]), "*0\r\n");
}

#[test]
fn dump_and_restore_round_trip_with_each_policy() {
    let kvd = Kvd::start_default();
    let mut c = kvd.client();
    let load = |c: &mut redis::Connection, code: &str| -> String {
        redis::cmd("FUNCTION")
            .arg("LOAD")
            .arg(code)
            .query(c)
            .unwrap()
    };
    load(&mut c, LIB);
    load(&mut c, OTHER);
    let payload: Vec<u8> = redis::cmd("FUNCTION").arg("DUMP").query(&mut c).unwrap();
    let restore = |c: &mut redis::Connection, policy: Option<&str>| -> redis::RedisResult<String> {
        let mut r = redis::cmd("FUNCTION");
        r.arg("RESTORE").arg(&payload);
        if let Some(p) = policy {
            r.arg(p);
        }
        r.query(c)
    };
    let err = restore(&mut c, None).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(restore(&mut c, Some("REPLACE")).unwrap(), "OK");
    let _: String = redis::cmd("FUNCTION").arg("FLUSH").query(&mut c).unwrap();
    assert_eq!(restore(&mut c, None).unwrap(), "OK");
    let hi: String = redis::cmd("FCALL")
        .arg("hello")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(hi, "hi");
    let _: String = redis::cmd("FUNCTION")
        .arg("DELETE")
        .arg("other")
        .query(&mut c)
        .unwrap();
    assert_eq!(restore(&mut c, Some("FLUSH")).unwrap(), "OK");
    let hi: String = redis::cmd("FCALL")
        .arg("hello")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(hi, "hi");
    let mut damaged = payload.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    let err = redis::cmd("FUNCTION")
        .arg("RESTORE")
        .arg(&damaged)
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn function_kill_stops_a_function_that_does_not_end() {
    let kvd = Kvd::start(&["--busy-reply-threshold", "100"]);
    let mut c = kvd.raw();
    let spin = "#!lua name=spin\nredis.register_function('spin', function() while true do end end)";
    assert_eq!(cmd(&mut c, &["FUNCTION", "LOAD", spin]), "$4\r\nspin\r\n");
    let looping = {
        let mut l = kvd.raw();
        l.s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        std::thread::spawn(move || cmd(&mut l, &["FCALL", "spin", "0"]))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = cmd(&mut c, &["PING"]);
        if r.starts_with("-BUSY") {
            assert_eq!(r, "-BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.\r\n");
            break;
        }
        assert!(Instant::now() < deadline, "the function never became busy");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        cmd(&mut c, &["SCRIPT", "KILL"]).starts_with("-BUSY"),
        "SCRIPT KILL does not stop a function"
    );
    assert!(cmd(&mut c, &["FUNCTION", "STATS"]).contains("spin"));
    assert_eq!(cmd(&mut c, &["FUNCTION", "KILL"]), "+OK\r\n");
    let reply = looping.join().unwrap();
    assert!(
        reply.starts_with("-ERR Script killed by user with SCRIPT KILL... script: spin"),
        "{reply}"
    );
    assert_eq!(cmd(&mut c, &["PING"]), "+PONG\r\n");
}
