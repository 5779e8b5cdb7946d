//! Scripts that do not end, against real kvd processes: past busy-reply-threshold other
//! clients get -BUSY; SCRIPT KILL stops a script that has not written and refuses one
//! that has; SHUTDOWN NOSAVE stops the server and the script's writes are not applied;
//! a script that allocates without bound fails and the server goes on; SIGTERM stops a
//! running script without applying its writes; other clients never see half a script.

use kv_tests::{Kvd, RawConn};
use std::time::{Duration, Instant};

fn eval_in_background(kvd: &Kvd, script: &str) -> std::thread::JoinHandle<String> {
    let mut c = kvd.raw();
    c.s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let script = script.to_string();
    std::thread::spawn(move || c.cmd(&[b"EVAL", script.as_bytes(), b"0"]))
}

/// Sends PING until the answer is -BUSY (the script passed its threshold).
fn wait_for_busy(c: &mut RawConn) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = c.cmd(&[b"PING"]);
        if r.starts_with("-BUSY") {
            assert_eq!(
                r,
                "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
            );
            return;
        }
        assert_eq!(r, "+PONG\r\n");
        assert!(Instant::now() < deadline, "the script never became busy");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_busy_script_gets_busy_replies_and_script_kill_stops_it() {
    let kvd = Kvd::start(&["--busy-reply-threshold", "100"]);
    let mut c = kvd.raw();
    assert_eq!(
        c.cmd(&[b"SCRIPT", b"KILL"]),
        "-NOTBUSY No scripts in execution right now.\r\n"
    );
    let looping = eval_in_background(&kvd, "local i = 0 while true do i = i + 1 end");
    wait_for_busy(&mut c);
    assert!(c.cmd(&[b"GET", b"k"]).starts_with("-BUSY"));
    assert!(c.cmd(&[b"SET", b"k", b"v"]).starts_with("-BUSY"));
    assert_eq!(c.cmd(&[b"SCRIPT", b"KILL"]), "+OK\r\n");
    let reply = looping.join().unwrap();
    assert!(
        reply.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "),
        "{reply}"
    );
    assert_eq!(c.cmd(&[b"PING"]), "+PONG\r\n");
    assert_eq!(c.cmd(&[b"SET", b"k", b"v"]), "+OK\r\n");
}

#[test]
fn a_pcall_cannot_swallow_script_kill() {
    let kvd = Kvd::start(&["--busy-reply-threshold", "100"]);
    let mut c = kvd.raw();
    let looping = eval_in_background(
        &kvd,
        "while true do pcall(function() while true do end end) end",
    );
    wait_for_busy(&mut c);
    assert_eq!(c.cmd(&[b"SCRIPT", b"KILL"]), "+OK\r\n");
    let reply = looping.join().unwrap();
    assert!(reply.starts_with("-ERR Script killed"), "{reply}");
}

#[test]
fn a_script_that_wrote_is_unkillable_and_shutdown_nosave_drops_its_writes() {
    let mut kvd = Kvd::start(&["--busy-reply-threshold", "100"]);
    let mut c = kvd.raw();
    assert_eq!(c.cmd(&[b"SET", b"before", b"1"]), "+OK\r\n");
    let looping = eval_in_background(&kvd, "redis.call('set', 'half', '1') while true do end");
    wait_for_busy(&mut c);
    assert!(c
        .cmd(&[b"SCRIPT", b"KILL"])
        .starts_with("-UNKILLABLE Sorry the script already executed write commands"),);
    assert!(c.cmd(&[b"SHUTDOWN"]).starts_with("-BUSY"));
    c.send(&kv_tests::encode_command(&[b"SHUTDOWN", b"NOSAVE"]));
    assert!(c.is_closed(), "SHUTDOWN NOSAVE closes the connection");
    let status = kvd.wait_exit();
    assert!(status.success(), "{status:?}");
    let reply = looping.join().unwrap();
    assert!(
        reply.is_empty() || reply.starts_with("-ERR Script stopped"),
        "{reply}"
    );
    kvd.restart();
    let mut c = kvd.raw();
    assert_eq!(c.cmd(&[b"GET", b"before"]), "$1\r\n1\r\n");
    assert_eq!(
        c.cmd(&[b"GET", b"half"]),
        "$-1\r\n",
        "half a script was applied"
    );
}

#[test]
fn a_script_that_allocates_without_bound_fails_and_the_server_goes_on() {
    let kvd = Kvd::start(&["--lua-memory-limit", "16mb"]);
    let mut c = kvd.raw();
    c.s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let reply = c.cmd(&[
        b"EVAL",
        b"local t = {} local s = string.rep('x', 4096) for i = 1, 1e9 do t[i] = s .. i end",
        b"0",
    ]);
    assert!(reply.contains("not enough memory"), "{reply}");
    assert_eq!(c.cmd(&[b"PING"]), "+PONG\r\n");
    assert_eq!(c.cmd(&[b"EVAL", b"return 7", b"0"]), ":7\r\n");
}

#[test]
fn other_clients_never_see_half_a_script() {
    let kvd = Kvd::start_default();
    let writer = {
        let mut c = kvd.raw();
        c.s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        std::thread::spawn(move || {
            let mut replies = Vec::new();
            for round in 0..20 {
                let n = round.to_string();
                // Writes a, spins a while, then writes b: both or neither are visible.
                replies.push(c.cmd(&[
                    b"EVAL",
                    b"redis.call('set', KEYS[1], ARGV[1]) for i = 1, 200000 do end redis.call('set', KEYS[2], ARGV[1]) return 1",
                    b"2",
                    b"a",
                    b"b",
                    n.as_bytes(),
                ]));
            }
            replies
        })
    };
    let mut reader = kvd.client();
    let mut reads = 0;
    while !writer.is_finished() {
        let (a, b): (Option<String>, Option<String>) = redis::cmd("MGET")
            .arg("a")
            .arg("b")
            .query(&mut reader)
            .unwrap();
        assert_eq!(a, b, "a reader saw half a script");
        reads += 1;
    }
    for r in writer.join().unwrap() {
        assert_eq!(r, ":1\r\n");
    }
    assert!(reads > 0);
}

#[test]
fn sigterm_stops_a_running_script_and_drops_its_writes() {
    let mut kvd = Kvd::start_default();
    let mut c = kvd.raw();
    let looping = eval_in_background(&kvd, "redis.call('set', 'half', '1') while true do end");
    // FUNCTION STATS (which takes no lock) names the running script once it runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !c.cmd(&[b"FUNCTION", b"STATS"]).contains("duration_ms") {
        assert!(Instant::now() < deadline, "the script never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = kvd.signal_and_wait(libc::SIGTERM);
    assert!(status.success(), "{status:?}");
    let reply = looping.join().unwrap();
    assert!(
        reply.is_empty() || reply.starts_with("-ERR Script stopped"),
        "{reply}"
    );
    kvd.restart();
    assert_eq!(kvd.raw().cmd(&[b"GET", b"half"]), "$-1\r\n");
}
