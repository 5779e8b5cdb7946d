//! IDEMPOTENT request ids: a retry returns the first reply without applying the write
//! again, also after a restart; different ids apply; the window is configurable.

use kv_tests::Kvd;

#[test]
fn retries_return_the_first_reply_also_after_restart() {
    let mut k = Kvd::start(&["--appendfsync", "always"]);
    let mut r = k.raw();
    assert_eq!(
        r.cmd(&[b"IDEMPOTENT", b"req-1", b"INCRBY", b"n", b"5"]),
        ":5\r\n"
    );
    assert_eq!(
        r.cmd(&[b"IDEMPOTENT", b"req-1", b"INCRBY", b"n", b"5"]),
        ":5\r\n"
    );
    assert_eq!(
        r.cmd(&[b"IDEMPOTENT", b"req-2", b"INCRBY", b"n", b"5"]),
        ":10\r\n"
    );
    assert_eq!(r.cmd(&[b"GET", b"n"]), "$2\r\n10\r\n");
    let first = r.cmd(&[b"IDEMPOTENT", b"req-3", b"SET", b"k", b"v", b"WITHETAG"]);
    assert!(first.starts_with(':'), "{first}");
    assert_eq!(r.cmd(&[b"SET", b"k", b"other"]), "+OK\r\n");
    assert_eq!(
        r.cmd(&[b"IDEMPOTENT", b"req-3", b"SET", b"k", b"v", b"WITHETAG"]),
        first
    );
    assert_eq!(r.cmd(&[b"GET", b"k"]), "$5\r\nother\r\n");
    k.kill9();
    k.restart();
    let mut r = k.raw();
    assert_eq!(
        r.cmd(&[b"IDEMPOTENT", b"req-1", b"INCRBY", b"n", b"5"]),
        ":5\r\n"
    );
    assert_eq!(
        r.cmd(&[b"IDEMPOTENT", b"req-3", b"SET", b"k", b"v", b"WITHETAG"]),
        first
    );
    assert_eq!(r.cmd(&[b"GET", b"n"]), "$2\r\n10\r\n");
    // Inside MULTI too.
    assert_eq!(r.cmd(&[b"MULTI"]), "+OK\r\n");
    assert_eq!(
        r.cmd(&[b"IDEMPOTENT", b"req-4", b"INCR", b"n"]),
        "+QUEUED\r\n"
    );
    assert_eq!(
        r.cmd(&[b"IDEMPOTENT", b"req-4", b"INCR", b"n"]),
        "+QUEUED\r\n"
    );
    assert_eq!(r.cmd(&[b"EXEC"]), "*2\r\n:11\r\n:11\r\n");
}

#[test]
fn errors_are_not_remembered_and_reads_are_refused() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    assert_eq!(r.cmd(&[b"SET", b"s", b"x"]), "+OK\r\n");
    assert_eq!(
        r.cmd(&[b"IDEMPOTENT", b"e1", b"INCR", b"s"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(r.cmd(&[b"SET", b"s", b"1"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"IDEMPOTENT", b"e1", b"INCR", b"s"]), ":2\r\n");
    assert!(r
        .cmd(&[b"IDEMPOTENT", b"e2", b"GET", b"s"])
        .starts_with("-ERR IDEMPOTENT only wraps"));
    assert_eq!(
        r.cmd(&[b"IDEMPOTENT", b"e3", b"GET"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
}

#[test]
fn the_window_is_configurable() {
    let k = Kvd::start(&["--idempotency-window-ms", "200"]);
    let mut r = k.raw();
    assert_eq!(r.cmd(&[b"IDEMPOTENT", b"w", b"INCR", b"n"]), ":1\r\n");
    assert_eq!(r.cmd(&[b"IDEMPOTENT", b"w", b"INCR", b"n"]), ":1\r\n");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let got = r.cmd(&[b"IDEMPOTENT", b"w", b"INCR", b"n"]);
        if got == ":2\r\n" {
            break;
        }
        assert_eq!(got, ":1\r\n");
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        r.cmd(&[b"CONFIG", b"SET", b"idempotency-window-ms", b"100000"]),
        "+OK\r\n"
    );
    assert_eq!(
        r.cmd(&[b"CONFIG", b"GET", b"idempotency-window-ms"]),
        "*2\r\n$21\r\nidempotency-window-ms\r\n$6\r\n100000\r\n"
    );
}
