//! Scripted differential tests of the Redis behaviours client libraries rely on
//! (docs/compatibility.md): the same commands go to kvd and to Debian's redis-server and
//! the replies must be byte-for-byte identical, RESP2 and RESP3. Where a reply cannot be
//! identical (INFO values, CLIENT INFO addresses), the shape is compared instead. Skips
//! with a message if redis-server is not installed.

use kv_tests::{encode_command, Kvd, RawConn, RedisServer};

fn start() -> Option<(Kvd, RedisServer)> {
    let Some(redis) = RedisServer::start() else {
        eprintln!(
            "SKIPPED: redis-server is not installed (apt-get install redis-server); CI installs it"
        );
        return None;
    };
    Some((Kvd::start_default(), redis))
}

fn send(c: &mut RawConn, cmd: &[&[u8]]) -> Vec<u8> {
    c.send(&encode_command(cmd));
    c.reply()
}

fn words(line: &str) -> Vec<Vec<u8>> {
    line.split(' ').map(|w| w.as_bytes().to_vec()).collect()
}

/// Runs `script` (one command per line, words split on spaces) on fresh connections to
/// both servers, after FLUSHALL, and compares every reply.
fn same_replies(kvd: &Kvd, redis: &RedisServer, script: &[&str]) {
    for resp3 in [false, true] {
        let (mut a, mut b) = (kvd.raw(), redis.raw());
        for c in [&mut a, &mut b] {
            send(c, &[b"FLUSHALL"]);
            if resp3 {
                send(c, &[b"HELLO", b"3"]);
            }
        }
        for line in script {
            let w = words(line);
            let args: Vec<&[u8]> = w.iter().map(|x| &x[..]).collect();
            let (ra, rb) = (send(&mut a, &args), send(&mut b, &args));
            assert_eq!(
                String::from_utf8_lossy(&ra),
                String::from_utf8_lossy(&rb),
                "resp3 {resp3}: `{line}` differs (kvd left, redis right)"
            );
        }
    }
}

#[test]
fn transactions_watch_flush_and_errors_match_redis() {
    let Some((kvd, redis)) = start() else { return };
    same_replies(
        &kvd,
        &redis,
        &[
            // A WATCH of a key that did not exist survives FLUSHALL / FLUSHDB.
            "WATCH nokey",
            "FLUSHALL",
            "MULTI",
            "SET other 1",
            "EXEC",
            "WATCH nokey",
            "FLUSHDB",
            "MULTI",
            "GET nokey",
            "EXEC",
            // A WATCH of a key that existed is aborted by them.
            "SET w 1",
            "WATCH w",
            "FLUSHALL",
            "MULTI",
            "GET w",
            "EXEC",
            "SET w 1",
            "WATCH w",
            "FLUSHDB",
            "MULTI",
            "GET w",
            "EXEC",
            // SWAPDB: a watched key that exists in either database is touched.
            "SET w 1",
            "WATCH w",
            "SWAPDB 0 1",
            "MULTI",
            "GET w",
            "EXEC",
            "WATCH absent",
            "SWAPDB 0 1",
            "MULTI",
            "GET absent",
            "EXEC",
            // EXECABORT after queueing errors; runtime errors inside EXEC.
            "MULTI",
            "SET k v",
            "NOSUCHCMD x",
            "EXEC",
            "MULTI",
            "GET",
            "EXEC",
            "MULTI",
            "SET k v",
            "INCR k",
            "GET k",
            "EXEC",
            "MULTI",
            "MULTI",
            "EXEC",
            "EXEC",
            "DISCARD",
            "MULTI",
            "WATCH k",
            "EXEC",
        ],
    );
}

#[test]
fn replication_probes_match_redis() {
    let Some((kvd, redis)) = start() else { return };
    same_replies(
        &kvd,
        &redis,
        &[
            "REPLICAOF NO ONE",
            "SLAVEOF no one",
            "ROLE",
            "REPLICAOF no two",
            "REPLICAOF host 70000",
            "REPLICAOF a",
            "ROLE x",
        ],
    );
    // A real primary address is refused clearly instead of becoming a replica.
    let mut c = kvd.raw();
    let reply = send(&mut c, &[b"REPLICAOF", b"127.0.0.1", b"6379"]);
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("-ERR REPLICAOF"), "{text}");
    assert!(text.contains("not supported"), "{text}");
}

#[test]
fn object_introspection_matches_redis() {
    let Some((kvd, redis)) = start() else { return };
    let long = format!("SET long {}", "x".repeat(45));
    let embstr = format!("SET edge {}", "x".repeat(44));
    same_replies(
        &kvd,
        &redis,
        &[
            "SET int 12",
            "SET big 9223372036854775807",
            "SET word hello",
            "SET lead 012",
            &long,
            &embstr,
            "MSET m1 7 m2 seven",
            "OBJECT ENCODING int",
            "OBJECT ENCODING big",
            "OBJECT ENCODING word",
            "OBJECT ENCODING lead",
            "OBJECT ENCODING long",
            "OBJECT ENCODING edge",
            "OBJECT ENCODING m1",
            "OBJECT ENCODING m2",
            "OBJECT ENCODING nokey",
            "OBJECT REFCOUNT int",
            "OBJECT REFCOUNT big",
            "OBJECT REFCOUNT word",
            "OBJECT REFCOUNT nokey",
            "OBJECT FREQ int",
            "OBJECT FREQ nokey",
            "OBJECT IDLETIME word",
            "OBJECT IDLETIME nokey",
            "OBJECT HELP",
            "OBJECT foo",
            "OBJECT ENCODING",
            "OBJECT ENCODING a b",
            "OBJECT",
        ],
    );
}

#[test]
fn bitop_and_bitfield_match_redis() {
    let Some((kvd, redis)) = start() else { return };
    same_replies(
        &kvd,
        &redis,
        &[
            "SET a foobar",
            "SET b abcdef",
            "SET c x",
            "BITOP AND dest a b",
            "GET dest",
            "BITOP OR dest a c",
            "GET dest",
            "BITOP XOR dest a b c",
            "GET dest",
            "BITOP NOT dest a",
            "GET dest",
            "BITOP NOT dest a b",
            "BITOP NAND dest a",
            "BITOP AND dest nokey1 nokey2",
            "EXISTS dest",
            "SET t 1 EX 100",
            "BITOP OR t a",
            "TTL t",
            "BITOP AND",
            "BITFIELD bf SET i8 0 100 GET i8 0 INCRBY i8 0 100",
            "BITFIELD bf OVERFLOW SAT INCRBY i8 0 100 OVERFLOW FAIL INCRBY i8 0 1 OVERFLOW WRAP INCRBY i8 0 1",
            "BITFIELD bf SET u8 #1 255 GET u8 #1 INCRBY u8 #1 10 OVERFLOW SAT INCRBY u8 #1 -300",
            "BITFIELD bf SET u8 8 -1 GET u4 8 GET i4 12 GET u63 0 GET i64 0 GET i1 7",
            "BITFIELD bf SET i64 64 9223372036854775807 INCRBY i64 64 1 OVERFLOW SAT INCRBY i64 64 -1 INCRBY i64 64 9223372036854775807",
            "BITFIELD bf SET u63 0 -1 GET u63 0 OVERFLOW FAIL INCRBY u63 0 1",
            "BITFIELD bf SET u1 200 1 GET u1 200 GET u1 201",
            "GET bf",
            "STRLEN bf",
            "BITFIELD fresh OVERFLOW FAIL SET u2 100 7",
            "GET fresh",
            "BITFIELD bf GET u64 0",
            "BITFIELD bf GET i65 0",
            "BITFIELD bf GET I8 0",
            "BITFIELD bf GET u0 0",
            "BITFIELD bf GET u8 -1",
            "BITFIELD bf GET u8 abc",
            "BITFIELD bf SET u8 0 abc",
            "BITFIELD bf OVERFLOW BAD GET u8 0",
            "BITFIELD bf BOGUS",
            "BITFIELD bf GET u8",
            "BITFIELD bf",
            "BITFIELD nokey GET u8 0 GET i16 3",
            "BITFIELD_RO bf GET u8 0 GET i8 #2",
            "BITFIELD_RO bf SET u8 0 1",
            "BITFIELD_RO bf INCRBY u8 0 1 GET u8 0",
            "BITFIELD_RO bf GET u99 0",
            "BITFIELD_RO nokey GET u8 0",
        ],
    );
}

#[test]
fn scan_cursors_and_getex_options_match_redis() {
    let Some((kvd, redis)) = start() else { return };
    same_replies(
        &kvd,
        &redis,
        &[
            "SCAN -1",
            "SCAN 18446744073709551615",
            "SCAN 18446744073709551616",
            "SCAN abc",
            "SCAN 1x",
            "SCAN +",
            "SCAN 0 COUNT 0",
            "GETEX nokey EX -1",
            "GETEX nokey EX abc",
            "GETEX nokey EX 0",
            "GETEX nokey PERSIST",
            "GETEX nokey FOO",
            "GETEX nokey EX 10 PX 10",
            "GETEX nokey EX",
            "SET k v",
            "GETEX k EX 0",
            "GETEX k EX -1",
            "GETEX k EX abc",
            "GETEX k PX 100000",
            "GETEX k PERSIST",
            "TTL k",
        ],
    );
    // An empty cursor starts a scan, like 0 (both servers hold one key).
    let (mut a, mut b) = (kvd.raw(), redis.raw());
    for c in [&mut a, &mut b] {
        send(c, &[b"FLUSHALL"]);
        send(c, &[b"SET", b"only", b"1"]);
    }
    assert_eq!(send(&mut a, &[b"SCAN", b""]), send(&mut b, &[b"SCAN", b""]));
}

#[test]
fn dump_and_restore_match_redis_and_move_values_both_ways() {
    let Some((kvd, redis)) = start() else { return };
    // Strings of at most 20 bytes are never LZF-compressed: DUMP is byte-for-byte Redis's.
    same_replies(
        &kvd,
        &redis,
        &[
            "SET a 12",
            "SET b -129",
            "SET c 40000",
            "SET d 2147483648",
            "SET e hello",
            "SET f 01234567890123456789",
            "SET g 9223372036854775807",
            "DUMP a",
            "DUMP b",
            "DUMP c",
            "DUMP d",
            "DUMP e",
            "DUMP f",
            "DUMP g",
            "DUMP nokey",
            "RESTORE a 0 x",
            "RESTORE new 0 x",
            "RESTORE new -1 x",
            "RESTORE new abc x",
            "RESTORE new 0 x IDLETIME -1",
            "RESTORE new 0 x FREQ 300",
            "RESTORE new 0 x IDLETIME 1 FREQ 3",
            "RESTORE new 0 x BOGUS",
            "RESTORE new 0 x IDLETIME",
            "RESTORE",
        ],
    );
    let (mut k, mut r) = (kvd.raw(), redis.raw());
    for c in [&mut k, &mut r] {
        send(c, &[b"FLUSHALL"]);
    }
    let values: Vec<Vec<u8>> = vec![
        b"a compressible value, a compressible value, a compressible value".to_vec(),
        vec![b'z'; 5000],
        (0..=255u8).collect(),
        b"-7".to_vec(),
        Vec::new(),
    ];
    for (i, v) in values.iter().enumerate() {
        let key = format!("v{i}");
        // redis -> kvd (Redis LZF-compresses the long ones).
        send(&mut r, &[b"SET", key.as_bytes(), v]);
        let payload = bulk(&send(&mut r, &[b"DUMP", key.as_bytes()]));
        let ok = send(&mut k, &[b"RESTORE", key.as_bytes(), b"0", &payload]);
        assert_eq!(ok, b"+OK\r\n", "restore into kvd of {key}");
        assert_eq!(bulk(&send(&mut k, &[b"GET", key.as_bytes()])), *v);
        // kvd -> redis, replacing.
        let back = bulk(&send(&mut k, &[b"DUMP", key.as_bytes()]));
        let ok = send(
            &mut r,
            &[b"RESTORE", key.as_bytes(), b"0", &back, b"REPLACE"],
        );
        assert_eq!(ok, b"+OK\r\n", "restore into redis of {key}");
        assert_eq!(bulk(&send(&mut r, &[b"GET", key.as_bytes()])), *v);
    }
    // TTLs: relative, absolute in the past (nothing stored, REPLACE deletes), BUSYKEY.
    let payload = bulk(&send(&mut r, &[b"DUMP", b"v0"]));
    for c in [&mut k, &mut r] {
        assert_eq!(
            send(c, &[b"RESTORE", b"t", b"100000", &payload]),
            b"+OK\r\n"
        );
        let pttl = String::from_utf8_lossy(&send(c, &[b"PTTL", b"t"])).to_string();
        let ms: i64 = pttl.trim_start_matches(':').trim().parse().expect("PTTL");
        assert!(ms > 0 && ms <= 100000, "{pttl}");
        assert_eq!(
            send(
                c,
                &[b"RESTORE", b"t", b"1", &payload, b"ABSTTL", b"REPLACE"]
            ),
            b"+OK\r\n"
        );
        assert_eq!(send(c, &[b"EXISTS", b"t"]), b":0\r\n");
        let busy = send(c, &[b"RESTORE", b"v0", b"0", &payload]);
        assert_eq!(busy, b"-BUSYKEY Target key name already exists.\r\n");
    }
}

/// The payload of a bulk reply.
fn bulk(reply: &[u8]) -> Vec<u8> {
    assert_eq!(reply[0], b'$', "{}", String::from_utf8_lossy(reply));
    let nl = reply.iter().position(|&b| b == b'\n').expect("header");
    let len: usize = std::str::from_utf8(&reply[1..nl - 1])
        .expect("len")
        .parse()
        .expect("len");
    reply[nl + 1..nl + 1 + len].to_vec()
}

/// Section titles of an INFO reply, in order.
fn sections(info: &str) -> Vec<String> {
    info.lines()
        .filter_map(|l| l.strip_prefix("# "))
        .map(|s| s.trim().to_string())
        .collect()
}

fn fields(info: &str) -> Vec<String> {
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, _)| k.to_string())
        .collect()
}

fn info_text(c: &mut RawConn, args: &[&str]) -> String {
    let mut cmd: Vec<&[u8]> = vec![b"INFO"];
    cmd.extend(args.iter().map(|a| a.as_bytes()));
    String::from_utf8_lossy(&bulk(&send(c, &cmd))).into_owned()
}

#[test]
fn info_sections_and_fields_match_redis() {
    let Some((kvd, redis)) = start() else { return };
    let (mut k, mut r) = (kvd.raw(), redis.raw());
    for args in [
        &[][..],
        &["default"],
        &["all"],
        &["everything"],
        &["server", "clients"],
        &["CLIENTS", "server"],
        &["keyspace"],
        &["commandstats"],
        &["cpu", "replication", "cluster"],
        &["nosuchsection"],
    ] {
        let kvd_sections: Vec<String> = sections(&info_text(&mut k, args))
            .into_iter()
            .filter(|s| s != "Engine") // kvd's own section
            .collect();
        assert_eq!(
            kvd_sections,
            sections(&info_text(&mut r, args)),
            "INFO {args:?}"
        );
    }
    // Every field of these sections that Redis prints, kvd prints too.
    for section in ["server", "clients", "replication", "cpu", "cluster"] {
        let ours = fields(&info_text(&mut k, &[section]));
        for f in fields(&info_text(&mut r, &[section])) {
            assert!(ours.contains(&f), "INFO {section} lacks {f}");
        }
    }
    // And the fields monitoring tools read from the others.
    let ours = fields(&info_text(&mut k, &["everything"]));
    for f in [
        "used_memory",
        "used_memory_human",
        "used_memory_rss",
        "used_memory_peak",
        "maxmemory",
        "maxmemory_policy",
        "mem_fragmentation_ratio",
        "loading",
        "rdb_last_save_time",
        "aof_enabled",
        "total_connections_received",
        "total_commands_processed",
        "keyspace_hits",
        "keyspace_misses",
        "expired_keys",
        "evicted_keys",
        "cmdstat_info",
    ] {
        assert!(ours.contains(&f.to_string()), "INFO lacks {f}");
    }
}

fn client_fields(line: &str) -> Vec<(String, String)> {
    line.trim()
        .split(' ')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn client_info_has_redis_fields_and_values() {
    let Some((kvd, redis)) = start() else { return };
    let (mut k, mut r) = (kvd.raw(), redis.raw());
    let mut lines = Vec::new();
    for c in [&mut k, &mut r] {
        send(c, &[b"CLIENT", b"SETNAME", b"probe"]);
        send(c, &[b"SELECT", b"3"]);
        lines.push(String::from_utf8_lossy(&bulk(&send(c, &[b"CLIENT", b"INFO"]))).into_owned());
    }
    let (ours, theirs) = (client_fields(&lines[0]), client_fields(&lines[1]));
    let our_names: Vec<&str> = ours.iter().map(|(k, _)| k.as_str()).collect();
    let their_names: Vec<&str> = theirs.iter().map(|(k, _)| k.as_str()).collect();
    // Redis 7.0 has every field but lib-name/lib-ver (7.2), in the same order.
    let without_lib: Vec<&str> = our_names
        .iter()
        .copied()
        .filter(|n| !n.starts_with("lib-"))
        .collect();
    assert_eq!(without_lib, their_names);
    for f in [
        "name", "db", "flags", "multi", "sub", "psub", "cmd", "user", "resp", "redir",
    ] {
        let get = |v: &[(String, String)]| v.iter().find(|(k, _)| k == f).map(|(_, v)| v.clone());
        assert_eq!(get(&ours), get(&theirs), "CLIENT INFO {f}");
    }
    // Inside MULTI, CLIENT LIST shows the queue: flags=x multi=<queued>.
    let mut watcher = kvd.raw();
    send(&mut k, &[b"MULTI"]);
    send(&mut k, &[b"SET", b"a", b"1"]);
    send(&mut k, &[b"GET", b"a"]);
    let list =
        String::from_utf8_lossy(&bulk(&send(&mut watcher, &[b"CLIENT", b"LIST"]))).into_owned();
    let line = list
        .lines()
        .find(|l| l.contains(" name=probe "))
        .expect("the client in MULTI");
    assert!(line.contains(" flags=x "), "{line}");
    assert!(line.contains(" multi=2 "), "{line}");
    send(&mut k, &[b"DISCARD"]);
}

#[test]
fn sort_of_strings_matches_redis() {
    let Some((kvd, redis)) = start() else { return };
    same_replies(
        &kvd,
        &redis,
        &[
            "SET s x",
            "SET dest old",
            "SORT nokey",
            "SORT s",
            "SORT nokey BY w_* GET # GET o_* DESC ALPHA LIMIT 1 2",
            "SORT nokey LIMIT 0 x",
            "SORT nokey LIMIT 0",
            "SORT nokey FOO",
            "SORT nokey GET",
            "SORT s LIMIT a b",
            "SORT s FOO",
            "SORT nokey STORE dest",
            "EXISTS dest",
            "SORT nokey STORE dest2",
            "SORT s STORE dest",
            "SORT_RO nokey",
            "SORT_RO s",
            "SORT_RO nokey ALPHA DESC LIMIT 0 10 BY x GET #",
            "SORT_RO nokey STORE dest",
            "SORT",
        ],
    );
}

#[test]
fn incrbyfloat_matches_redis_long_double() {
    let Some((kvd, redis)) = start() else { return };
    same_replies(
        &kvd,
        &redis,
        &[
            "SET f 10.50",
            "INCRBYFLOAT f 0.1",
            "INCRBYFLOAT f 0.1",
            "INCRBYFLOAT f -0.3",
            "INCRBYFLOAT g 0.1",
            "INCRBYFLOAT g 0.2",
            "INCRBYFLOAT g 1e-30",
            "INCRBYFLOAT h 0.3333333333333333333333",
            "INCRBYFLOAT h 2.2",
            "SET i 123456789012345678",
            "INCRBYFLOAT i 1",
            "INCRBYFLOAT i 0.5",
            "SET j 5.0e3",
            "INCRBYFLOAT j 2.0e2",
            "INCRBYFLOAT j 0x1p-4",
            "INCRBYFLOAT j -5200.0625",
            "INCRBYFLOAT k 1e300",
            "INCRBYFLOAT k 3.14159e-7",
            "INCRBYFLOAT l inf",
            "INCRBYFLOAT l -inf",
            "INCRBYFLOAT l nan",
            "INCRBYFLOAT l abc",
            "INCRBYFLOAT l 1e99999",
            "INCRBYFLOAT l 1e-99999",
            "INCRBYFLOAT l .5",
            "INCRBYFLOAT l 5.",
            "INCRBYFLOAT l 1e",
            "SET m 1e4932",
            "INCRBYFLOAT m 1e4932",
            "INCRBYFLOAT n -0.0",
            "INCRBYFLOAT n 1e-4940",
            "SET o hello",
            "INCRBYFLOAT o 1",
            "INCRBYFLOAT big 1e4000",
        ],
    );
}
