//! Server and connection commands: CLIENT, COMMAND, SLOWLOG, MONITOR, SAVE/BGSAVE, TIME,
//! INFO engine, maxclients.

use kv_tests::Kvd;
use std::io::Read;

#[test]
fn client_commands() {
    let k = Kvd::start_default();
    let mut a = k.raw();
    let mut b = k.raw();
    let id_a = a.cmd(&[b"CLIENT", b"ID"]);
    assert!(id_a.starts_with(':'));
    assert_eq!(a.cmd(&[b"CLIENT", b"SETNAME", b"alpha"]), "+OK\r\n");
    assert_eq!(
        a.cmd(&[b"CLIENT", b"SETNAME", b"has space"]),
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(
        a.cmd(&[b"CLIENT", b"SETINFO", b"lib-name", b"mylib"]),
        "+OK\r\n"
    );
    assert_eq!(
        a.cmd(&[b"CLIENT", b"SETINFO", b"bogus", b"x"]),
        "-ERR Unrecognized option 'bogus'\r\n"
    );
    let list = b.cmd(&[b"CLIENT", b"LIST"]);
    assert!(
        list.contains("name=alpha") && list.contains("lib-name=mylib"),
        "{list}"
    );
    assert_eq!(list.matches("id=").count(), 2, "{list}");
    let id = id_a.trim().trim_start_matches(':').to_string();
    assert_eq!(b.cmd(&[b"CLIENT", b"KILL", b"ID", id.as_bytes()]), ":1\r\n");
    assert!(a.is_closed());
    assert_eq!(
        b.cmd(&[b"CLIENT", b"KILL", b"1.2.3.4:5"]),
        "-ERR No such client\r\n"
    );
    assert_eq!(
        b.cmd(&[b"CLIENT", b"SETNAME"]),
        "-ERR wrong number of arguments for 'client|setname' command\r\n"
    );
}

#[test]
fn command_introspection_slowlog_save_time() {
    let k = Kvd::start_default();
    let mut r = k.raw();
    let info = r.cmd(&[b"COMMAND", b"INFO", b"get", b"nosuch"]);
    assert!(
        info.starts_with("*2\r\n*10\r\n$3\r\nget\r\n:2\r\n"),
        "{info}"
    );
    assert!(info.ends_with("$-1\r\n"));
    assert_eq!(
        r.cmd(&[b"COMMAND", b"GETKEYS", b"GET"]),
        "-ERR Invalid number of arguments specified for command\r\n"
    );
    assert_eq!(
        r.cmd(&[b"COMMAND", b"GETKEYS", b"PING"]),
        "-ERR The command has no key arguments\r\n"
    );
    assert!(r
        .cmd(&[b"COMMAND", b"LIST", b"FILTERBY", b"PATTERN", b"getex"])
        .contains("getex"));
    assert_eq!(
        r.cmd(&[b"CONFIG", b"SET", b"slowlog-log-slower-than", b"0"]),
        "+OK\r\n"
    );
    assert_eq!(r.cmd(&[b"SET", b"k", b"v"]), "+OK\r\n");
    let log = r.cmd(&[b"SLOWLOG", b"GET", b"1"]);
    assert!(log.contains("$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"), "{log}");
    assert_eq!(r.cmd(&[b"SLOWLOG", b"RESET"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"SAVE"]), "+OK\r\n");
    assert_eq!(r.cmd(&[b"BGSAVE"]), "+Background saving started\r\n");
    assert!(r.cmd(&[b"LASTSAVE"]).starts_with(':'));
    assert!(r.cmd(&[b"TIME"]).starts_with("*2\r\n"));
    let engine = r.cmd(&[b"INFO", b"engine"]);
    assert!(
        engine.contains("engine_last_sequence:") && engine.contains("engine_flushes:"),
        "{engine}"
    );
    assert_eq!(
        r.cmd(&[b"SHUTDOWN", b"ABORT"]),
        "-ERR No shutdown in progress.\r\n"
    );
    assert_eq!(r.cmd(&[b"MULTI"]), "+OK\r\n");
    assert_eq!(
        r.cmd(&[b"SAVE"]),
        "-ERR Command not allowed inside a transaction\r\n"
    );
    assert_eq!(
        r.cmd(&[b"EXEC"]),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
}

#[test]
fn monitor_sees_other_clients_commands() {
    let k = Kvd::start_default();
    let mut m = k.raw();
    assert_eq!(m.cmd(&[b"MONITOR"]), "+OK\r\n");
    let mut r = k.raw();
    assert_eq!(r.cmd(&[b"SET", b"watched", b"1"]), "+OK\r\n");
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains("\"SET\" \"watched\" \"1\"") {
        let n = m.s.read(&mut buf).expect("monitor line");
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn maxclients_refuses_extra_connections() {
    let k = Kvd::start(&["--maxclients", "2"]);
    let mut a = k.raw();
    // The readiness probe's connection may still be closing: wait until only `a` is left.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !a
        .cmd(&[b"INFO", b"clients"])
        .contains("connected_clients:1\r\n")
    {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut b = k.raw();
    assert_eq!(b.cmd(&[b"PING"]), "+PONG\r\n");
    let mut c = k.raw();
    assert_eq!(
        String::from_utf8_lossy(&c.reply()),
        "-ERR max number of clients reached\r\n"
    );
}

#[test]
fn idle_clients_are_closed_after_timeout() {
    let k = Kvd::start(&["--timeout", "1"]);
    let mut r = k.raw();
    assert_eq!(r.cmd(&[b"PING"]), "+PONG\r\n");
    let start = std::time::Instant::now();
    assert!(r.is_closed());
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}
