//! SIGTERM, SIGINT and SHUTDOWN stop kvd with exit code 0 after flushing; a restart finds
//! the data. Also start-up refusals (protected mode) and `--help`.

use kv_tests::{kvd_binary, Kvd};
use std::process::Command;

fn write_some(k: &Kvd, prefix: &str) {
    let mut c = k.client();
    for i in 0..200 {
        let _: () = redis::cmd("SET")
            .arg(format!("{prefix}{i}"))
            .arg(i)
            .query(&mut c)
            .unwrap();
    }
}

fn check_some(k: &Kvd, prefix: &str) {
    let mut c = k.client();
    for i in 0..200 {
        let v: Option<i64> = redis::cmd("GET")
            .arg(format!("{prefix}{i}"))
            .query(&mut c)
            .unwrap();
        assert_eq!(v, Some(i), "{prefix}{i}");
    }
}

#[test]
fn sigterm_sigint_and_shutdown_exit_zero_and_keep_data() {
    // appendfsync no: only the orderly stop's flush+sync makes the data durable.
    let mut k = Kvd::start(&["--appendfsync", "no"]);
    write_some(&k, "a");
    let st = k.signal_and_wait(libc::SIGTERM);
    assert!(st.success(), "SIGTERM exit {st:?}; log:\n{}", k.log_text());
    k.restart();
    check_some(&k, "a");
    write_some(&k, "b");
    let st = k.signal_and_wait(libc::SIGINT);
    assert!(st.success(), "SIGINT exit {st:?}");
    k.restart();
    check_some(&k, "b");
    let mut r = k.raw();
    r.send(b"*1\r\n$8\r\nSHUTDOWN\r\n");
    assert!(r.is_closed());
    let st = k.wait_exit();
    assert!(st.success(), "SHUTDOWN exit {st:?}");
    k.restart();
    check_some(&k, "a");
    assert!(k.log_text().contains("kvd ready to accept connections"));
}

#[test]
fn protected_mode_refuses_public_bind_without_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(kvd_binary())
        .args(["--bind", "0.0.0.0", "--port", "0", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("protected mode"), "{err}");
}

#[test]
fn help_explains_every_flag() {
    let out = Command::new(kvd_binary()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--port",
        "--bind",
        "--dir",
        "--requirepass",
        "--appendfsync",
        "--databases",
        "--maxclients",
        "--timeout",
        "--save",
        "--logfile",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}:\n{text}");
    }
}

#[test]
fn config_file_and_config_get() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("kvd.conf");
    std::fs::write(&conf, "databases 4\nsave \"\"\nslowlog-max-len 7\n").unwrap();
    let k = Kvd::start(&[conf.to_str().unwrap()]);
    let mut r = k.raw();
    assert_eq!(
        r.cmd(&[b"CONFIG", b"GET", b"databases"]),
        "*2\r\n$9\r\ndatabases\r\n$1\r\n4\r\n"
    );
    assert_eq!(
        r.cmd(&[b"SELECT", b"4"]),
        "-ERR DB index is out of range\r\n"
    );
    assert_eq!(r.cmd(&[b"CONFIG", b"SET", b"port", b"1"]), "-ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config\r\n");
    assert_eq!(
        r.cmd(&[b"CONFIG", b"SET", b"nope", b"1"]),
        "-ERR Unknown option or number of arguments for CONFIG SET - 'nope'\r\n"
    );
    assert_eq!(
        r.cmd(&[b"CONFIG", b"SET", b"slowlog-log-slower-than", b"0"]),
        "+OK\r\n"
    );
    assert_eq!(r.cmd(&[b"PING"]), "+PONG\r\n");
    assert!(r.cmd(&[b"SLOWLOG", b"LEN"]).starts_with(':'));
    let info = r.cmd(&[b"INFO"]);
    for section in [
        "# Server",
        "# Clients",
        "# Memory",
        "# Persistence",
        "# Stats",
        "# Replication",
        "# Keyspace",
        "# Engine",
    ] {
        assert!(info.contains(section), "INFO lacks {section}");
    }
}

#[test]
fn sigterm_under_load_keeps_every_acknowledged_write() {
    let mut k = Kvd::start(&["--appendfsync", "no"]);
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let url = k.url(false);
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                let mut acked = 0u64;
                for i in 1..=100_000u64 {
                    let mut p = redis::pipe();
                    p.cmd("SET").arg(format!("w{w}:{i}")).arg(i).ignore();
                    p.cmd("SET").arg(format!("w{w}:last")).arg(i);
                    match p.query::<((),)>(&mut c) {
                        Ok(_) => acked = i,
                        Err(_) => break,
                    }
                }
                acked
            })
        })
        .collect();
    let mut probe = k.client();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while redis::cmd("GET")
        .arg("w0:last")
        .query::<Option<u64>>(&mut probe)
        .unwrap()
        .unwrap_or(0)
        < 200
    {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    drop(probe);
    let st = k.signal_and_wait(libc::SIGTERM);
    assert!(st.success(), "exit {st:?}");
    let acked: Vec<u64> = writers.into_iter().map(|t| t.join().unwrap()).collect();
    k.restart();
    let mut c = k.client();
    for (w, n) in acked.iter().enumerate() {
        assert!(*n > 0);
        let last: u64 = redis::cmd("GET")
            .arg(format!("w{w}:last"))
            .query(&mut c)
            .unwrap();
        assert!(last >= *n, "writer {w}: acked {n}, found {last}");
        let v: Option<u64> = redis::cmd("GET")
            .arg(format!("w{w}:{n}"))
            .query(&mut c)
            .unwrap();
        assert_eq!(v, Some(*n));
    }
}
