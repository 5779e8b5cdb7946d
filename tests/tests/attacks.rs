//! Hostile clients against a real kvd (issue 7): each attack gets an error or a
//! disconnect, memory stays bounded, and another client keeps getting answers meanwhile.
//! Every wait polls with a deadline; the deadlines only bound a hang, they time nothing.

use kv_tests::{encode_command, eventually, info_field, rss_kb, Kvd, RawConn};
use std::io::Read;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);

/// Another client is answered right now.
fn still_serving(k: &Kvd) {
    let mut other = k.raw();
    other.s.set_read_timeout(Some(LONG)).expect("read timeout");
    assert_eq!(other.cmd(&[b"PING"]), "+PONG\r\n");
}

fn info(k: &Kvd, field: &str) -> String {
    let mut c = k.raw();
    let text = c.cmd(&[b"INFO", b"everything"]);
    info_field(&text, field).unwrap_or_else(|| panic!("no {field} in INFO:\n{text}"))
}

fn connected_clients(k: &Kvd) -> u64 {
    info(k, "connected_clients").parse().expect("number")
}

/// CVE-2022-36021: a pattern of many stars against long keys. Before the fix this KEYS
/// ran for longer than the age of the universe while holding the keyspace.
#[test]
fn crafted_keys_pattern_is_answered_and_others_keep_being_served() {
    let k = Kvd::start_default();
    let mut c = k.raw();
    let key = vec![b'a'; 2000];
    for i in 0..10u8 {
        let mut name = key.clone();
        name.push(b'0' + i);
        assert_eq!(c.cmd(&[b"SET", &name, b"v"]), "+OK\r\n");
    }
    let pattern = format!("{}b", "*a".repeat(60));
    let attacker = {
        let mut a = k.raw();
        a.s.set_read_timeout(Some(LONG)).expect("timeout");
        std::thread::spawn(move || a.cmd(&[b"KEYS", pattern.as_bytes()]))
    };
    still_serving(&k);
    let reply = attacker.join().expect("KEYS thread");
    assert_eq!(reply, "*0\r\n", "nothing matches a pattern ending in b");
    let many_stars = format!("{}*", "a*".repeat(500));
    let matched = c.cmd(&[b"KEYS", many_stars.as_bytes()]);
    assert!(matched.starts_with("*10\r\n"), "{}", &matched[..40]);
}

/// A client pipelines GETs of a large value and never reads: it is cut off at the hard
/// limit instead of growing the server's memory.
#[test]
fn reader_that_never_reads_is_disconnected_at_the_hard_limit() {
    let k = Kvd::start(&["--client-output-buffer-limit", "normal 8mb 4mb 60"]);
    let mut c = k.raw();
    let value = vec![b'x'; 1 << 20];
    assert_eq!(c.cmd(&[b"SET", b"big", &value]), "+OK\r\n");
    let rss_before = rss_kb(k.pid());
    let mut greedy = k.raw();
    let gets: Vec<u8> = (0..500)
        .flat_map(|_| encode_command(&[b"GET", b"big"]))
        .collect();
    greedy.send(&gets);
    eventually("the greedy client is disconnected", LONG, || {
        info(&k, "client_output_buffer_limit_disconnections") == "1"
    });
    still_serving(&k);
    let grown_mb = rss_kb(k.pid()).saturating_sub(rss_before) / 1024;
    assert!(
        grown_mb < 200,
        "RSS grew by {grown_mb} MiB for 500 MiB of replies"
    );
}

/// Pending replies above the soft limit for longer than its seconds disconnect the client;
/// a client that reads in time is not disconnected.
#[test]
fn slow_reader_above_the_soft_limit_is_disconnected_after_its_seconds() {
    let k = Kvd::start(&["--client-output-buffer-limit", "normal 64mb 2mb 1"]);
    let mut c = k.raw();
    let value = vec![b'y'; 1 << 20];
    assert_eq!(c.cmd(&[b"SET", b"big", &value]), "+OK\r\n");
    // Reads in time: 3 MiB of replies, taken at once.
    let mut fine = k.raw();
    let three: Vec<u8> = (0..3)
        .flat_map(|_| encode_command(&[b"GET", b"big"]))
        .collect();
    fine.send(&three);
    for _ in 0..3 {
        assert_eq!(fine.reply().len(), (1 << 20) + 12);
    }
    // Never reads: 16 MiB pending, far more than the socket buffers take.
    let mut slow = k.raw();
    let sixteen: Vec<u8> = (0..16)
        .flat_map(|_| encode_command(&[b"GET", b"big"]))
        .collect();
    slow.send(&sixteen);
    eventually("the slow reader is disconnected", LONG, || {
        info(&k, "client_output_buffer_limit_disconnections") == "1"
    });
    assert_eq!(fine.cmd(&[b"PING"]), "+PONG\r\n");
}

/// One MGET naming a large key many times would build a reply of gigabytes.
#[test]
fn mget_of_one_large_key_many_times_is_refused() {
    let k = Kvd::start(&["--client-output-buffer-limit", "normal 16mb 8mb 60"]);
    let mut c = k.raw();
    let value = vec![b'z'; 4 << 20];
    assert_eq!(c.cmd(&[b"SET", b"big", &value]), "+OK\r\n");
    let rss_before = rss_kb(k.pid());
    let mut args: Vec<&[u8]> = vec![b"MGET"];
    args.extend(std::iter::repeat_n(&b"big"[..], 2000)); // 8 GiB of reply
    let mut greedy = k.raw();
    let reply = greedy.cmd(&args);
    assert!(
        reply.starts_with("-ERR reply exceeds client-output-buffer-limit") || reply.is_empty(),
        "{}",
        &reply[..reply.len().min(80)]
    );
    assert!(greedy.is_closed());
    still_serving(&k);
    let grown_mb = rss_kb(k.pid()).saturating_sub(rss_before) / 1024;
    assert!(grown_mb < 200, "RSS grew by {grown_mb} MiB");
    // A modest MGET still works.
    let ok = c.cmd(&[b"MGET", b"big", b"big"]);
    assert!(ok.starts_with("*2\r\n$4194304\r\n"));
}

/// A multibulk of many arguments sent a few bytes at a time is framed correctly (and, per
/// the parser's unit tests, in linear time), while others are served.
#[test]
fn huge_multibulk_dribbled_in_small_pieces() {
    let k = Kvd::start_default();
    let keys: Vec<Vec<u8>> = (0..30_000).map(|i| format!("k{i}").into_bytes()).collect();
    let mut args: Vec<&[u8]> = vec![b"EXISTS"];
    args.extend(keys.iter().map(|k| k.as_slice()));
    let request = encode_command(&args);
    let mut c = k.raw();
    assert_eq!(c.cmd(&[b"SET", b"k7", b"v"]), "+OK\r\n");
    let mut dribbler = k.raw();
    dribbler.s.set_nodelay(true).expect("nodelay");
    for (i, piece) in request.chunks(7).enumerate() {
        dribbler.send(piece);
        if i % 20_000 == 0 {
            still_serving(&k);
        }
    }
    assert_eq!(String::from_utf8_lossy(&dribbler.reply()), ":1\r\n");
}

/// Half-sent commands on many connections (slowloris) hold nothing but their sockets.
#[test]
fn slowloris_half_commands_do_not_block_others() {
    let k = Kvd::start_default();
    let rss_before = rss_kb(k.pid());
    let mut held: Vec<RawConn> = Vec::new();
    for i in 0..300 {
        let mut c = k.raw();
        c.send(format!("*3\r\n$3\r\nSET\r\n$4\r\nk{i:03}\r\n$1000000\r\npartial").as_bytes());
        held.push(c);
    }
    still_serving(&k);
    eventually("every half command is connected", LONG, || {
        connected_clients(&k) >= 301
    });
    let grown_mb = rss_kb(k.pid()).saturating_sub(rss_before) / 1024;
    assert!(
        grown_mb < 200,
        "RSS grew by {grown_mb} MiB for 300 idle halves"
    );
    drop(held);
    eventually("the halves are gone", LONG, || connected_clients(&k) == 1);
}

/// MULTI queues are bounded by client-query-buffer-limit; the transaction then aborts.
#[test]
fn multi_queue_is_bounded() {
    let k = Kvd::start(&["--client-query-buffer-limit", "1mb"]);
    let mut c = k.raw();
    assert_eq!(c.cmd(&[b"MULTI"]), "+OK\r\n");
    let value = vec![b'q'; 100 * 1024];
    let mut refused = None;
    for i in 0..20 {
        let r = c.cmd(&[b"SET", format!("k{i}").as_bytes(), &value]);
        if r != "+QUEUED\r\n" {
            refused = Some((i, r));
            break;
        }
    }
    let (i, r) = refused.expect("the queue was never refused");
    assert!(i >= 9, "refused after only {i} commands");
    assert!(r.starts_with("-ERR MULTI queue too large"), "{r}");
    assert!(c.cmd(&[b"EXEC"]).starts_with("-EXECABORT"));
    assert_eq!(c.cmd(&[b"EXISTS", b"k0"]), ":0\r\n");
}

/// `LOCK ... WAIT` notices its client leaving: the lock released later is not taken for
/// the departed client.
#[test]
fn lock_waiter_that_disconnects_does_not_take_the_lock() {
    let k = Kvd::start_default();
    let mut holder = k.raw();
    let token = holder.cmd(&[b"LOCK", b"res", b"alice", b"60000"]);
    assert!(token.starts_with(':'), "{token}");
    let mut waiter = k.raw();
    waiter.send(&encode_command(&[
        b"LOCK", b"res", b"bob", b"60000", b"WAIT", b"50000",
    ]));
    eventually("the waiter is connected", LONG, || {
        connected_clients(&k) == 3
    });
    drop(waiter);
    eventually("the server notices the waiter left", LONG, || {
        connected_clients(&k) == 2
    });
    assert_eq!(holder.cmd(&[b"UNLOCK", b"res", b"alice"]), ":1\r\n");
    assert_eq!(holder.cmd(&[b"GET", b"res"]), "$-1\r\n");
}

/// MONITOR and SLOWLOG never show passwords (Redis redacts them too).
#[test]
fn monitor_and_slowlog_redact_passwords() {
    let k = Kvd::start(&["--requirepass", "hunter2", "--slowlog-log-slower-than", "0"]);
    let mut m = k.raw();
    assert_eq!(m.cmd(&[b"AUTH", b"hunter2"]), "+OK\r\n");
    assert_eq!(m.cmd(&[b"MONITOR"]), "+OK\r\n");
    let mut c = k.raw();
    assert_eq!(c.cmd(&[b"AUTH", b"hunter2"]), "+OK\r\n");
    assert!(c
        .cmd(&[b"HELLO", b"2", b"AUTH", b"default", b"hunter2"])
        .starts_with('*'));
    assert_eq!(c.cmd(&[b"SET", b"after", b"auth"]), "+OK\r\n");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("\"SET\" \"after\" \"auth\"") {
        let n = m.s.read(&mut buf).expect("monitor line");
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }
    let feed = String::from_utf8_lossy(&seen);
    assert!(feed.contains("\"AUTH\" \"(redacted)\""), "{feed}");
    assert!(
        feed.contains("\"HELLO\" \"2\" \"AUTH\" \"(redacted)\" \"(redacted)\""),
        "{feed}"
    );
    assert!(!feed.contains("hunter2"), "{feed}");
    let slowlog = c.cmd(&[b"SLOWLOG", b"GET", b"100"]);
    assert!(slowlog.contains("(redacted)"), "{slowlog}");
    assert!(!slowlog.contains("hunter2"), "{slowlog}");
}

/// idempotency-window-ms cannot be set to a value that overflows the window arithmetic,
/// and records past their window are swept without waiting for a compaction.
#[test]
fn idempotency_window_is_bounded_and_old_records_are_swept() {
    let k = Kvd::start(&["--hz", "50"]);
    let mut c = k.raw();
    let huge = c.cmd(&[
        b"CONFIG",
        b"SET",
        b"idempotency-window-ms",
        b"18446744073709551615",
    ]);
    assert!(huge.starts_with("-ERR"), "{huge}");
    assert_eq!(
        c.cmd(&[b"CONFIG", b"SET", b"idempotency-window-ms", b"50"]),
        "+OK\r\n"
    );
    for i in 0..30 {
        let id = format!("req-{i}");
        assert_eq!(
            c.cmd(&[b"IDEMPOTENT", id.as_bytes(), b"INCR", b"n"]),
            format!(":{}\r\n", i + 1)
        );
    }
    eventually("the sweep removed the expired records", LONG, || {
        info(&k, "expired_idempotency_records") == "30"
    });
    // A retry after the window is a new request.
    assert_eq!(c.cmd(&[b"IDEMPOTENT", b"req-0", b"INCR", b"n"]), ":31\r\n");
}

/// A bad namespace-map record stops kvd at start with a corruption error, instead of
/// replacing the map and letting the compaction filter delete every key.
#[test]
fn malformed_namespace_record_refuses_to_start_and_keeps_data() {
    let mut k = Kvd::start_default();
    let mut c = k.raw();
    assert_eq!(c.cmd(&[b"SET", b"precious", b"1"]), "+OK\r\n");
    drop(c);
    assert!(k.signal_and_wait(libc::SIGTERM).success());
    {
        let db = kv_engine::Db::open(k.data_dir(), kv_engine::Options::default()).expect("open");
        let meta = db.keyspace("kvd-meta").expect("meta keyspace");
        db.put(meta, b"namespaces", b"\x00\x00").expect("damage");
        db.close().expect("close");
    }
    let out = std::process::Command::new(kv_tests::kvd_binary())
        .args(["--port", &kv_tests::free_port().to_string(), "--dir"])
        .arg(k.data_dir())
        .output()
        .expect("run kvd");
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("corruption"), "{text}");
    assert!(text.contains("namespace map"), "{text}");
    let db = kv_engine::Db::open(k.data_dir(), kv_engine::Options::default()).expect("open");
    let live = db
        .iter(kv_engine::Keyspace::DEFAULT, None, None, None)
        .expect("iter")
        .count();
    assert_eq!(live, 1, "the key is still there");
    db.close().expect("close");
}

/// Under a low open files limit, idle connections can take only what is left after the
/// engine's reserve: the extra ones are refused, and flushes and compactions (which open
/// files) keep working, so the database never goes read-only for lack of descriptors.
#[test]
fn idle_connections_cannot_take_the_engines_descriptors() {
    let limit = kv_server::fd_limit::reserved_fds() + 40;
    let k = Kvd::start_with_nofile(limit, &[]);
    let maxclients: u64 = info(&k, "maxclients").parse().expect("number");
    assert!(
        maxclients <= 40,
        "maxclients {maxclients} does not fit the limit {limit}"
    );
    assert!(
        k.log_text().contains("maxclients reduced"),
        "{}",
        k.log_text()
    );
    let mut refused = 0;
    let mut idle = Vec::new();
    for _ in 0..limit + 100 {
        let mut c = k.raw();
        c.s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        c.send(b"PING\r\n");
        let mut buf = [0u8; 64];
        match c.s.read(&mut buf) {
            Ok(n) if buf[..n].starts_with(b"-ERR max number of clients reached") => refused += 1,
            _ => idle.push(c),
        }
    }
    assert!(refused > 0, "no connection was refused");
    // The idle connections hold what clients may hold; the engine still opens files.
    let mut admin = idle.pop().expect("a connection");
    admin.s.set_read_timeout(Some(LONG)).expect("timeout");
    let value = vec![b'v'; 1024];
    for i in 0..3000 {
        let key = format!("key-{i}");
        assert_eq!(admin.cmd(&[b"SET", key.as_bytes(), &value]), "+OK\r\n");
    }
    assert_eq!(admin.cmd(&[b"COMPACT"]), "+OK\r\n");
    assert_eq!(admin.cmd(&[b"SET", b"after", b"compaction"]), "+OK\r\n");
    assert_eq!(admin.cmd(&[b"GET", b"key-2999"]).len(), 1024 + 9);
}

/// CHECKPOINT writes only into backup-dir (or, when enabled, anywhere for local clients),
/// never through a symlink planted at the destination, never into a non-empty directory,
/// and CONFIG SET cannot widen where it writes.
#[test]
fn checkpoint_destinations_are_restricted() {
    let outside = tempfile::tempdir().expect("tempdir");
    let backups = tempfile::tempdir().expect("tempdir");
    let b = backups.path().to_str().expect("utf-8").to_string();
    let k = Kvd::start(&["--backup-dir", &b]);
    let mut c = k.raw();
    assert_eq!(c.cmd(&[b"SET", b"k", b"v"]), "+OK\r\n");
    // Outside backup-dir, relative escapes, and CONFIG SET: refused.
    let elsewhere = outside.path().join("copy");
    let r = c.cmd(&[b"CHECKPOINT", elsewhere.to_str().expect("utf-8").as_bytes()]);
    assert!(r.starts_with("-ERR CHECKPOINT destination refused"), "{r}");
    assert!(!elsewhere.exists());
    let r = c.cmd(&[b"CHECKPOINT", b"../escape"]);
    assert!(r.starts_with("-ERR CHECKPOINT destination refused"), "{r}");
    let r = c.cmd(&[b"CONFIG", b"SET", b"backup-dir", b"/"]);
    assert!(r.contains("can't set immutable config"), "{r}");
    let r = c.cmd(&[b"CONFIG", b"SET", b"enable-checkpoint-anywhere", b"yes"]);
    assert!(r.contains("can't set immutable config"), "{r}");
    // A symlink planted where the checkpoint goes is not followed.
    let target = outside.path().join("target");
    std::fs::create_dir(&target).expect("mkdir");
    std::os::unix::fs::symlink(&target, backups.path().join("planted")).expect("symlink");
    let r = c.cmd(&[b"CHECKPOINT", b"planted"]);
    assert!(r.starts_with("-ERR") && r.contains("symlink"), "{r}");
    assert_eq!(std::fs::read_dir(&target).expect("read_dir").count(), 0);
    // A non-empty directory is refused.
    std::fs::create_dir(backups.path().join("used")).expect("mkdir");
    std::fs::write(backups.path().join("used/file"), b"x").expect("write");
    let r = c.cmd(&[b"CHECKPOINT", b"used"]);
    assert!(r.contains("not empty"), "{r}");
    // A plain name inside backup-dir works, and holds the data.
    assert_eq!(c.cmd(&[b"CHECKPOINT", b"today"]), "+OK\r\n");
    let copy = backups.path().join("today");
    let db = kv_engine::Db::open(&copy, kv_engine::Options::default()).expect("open the copy");
    let keys = db
        .iter(kv_engine::Keyspace::DEFAULT, None, None, None)
        .expect("iter")
        .count();
    assert_eq!(keys, 1);
    db.close().expect("close");
}
