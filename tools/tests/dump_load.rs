//! `kvtool dump` and `kvtool load` against real kvd processes (the kv-tests harness):
//! a directory written by kvd is dumped, the dump is loaded into a second kvd, and that
//! kvd's directory dumps to the same lines but for the versions.

use kv_keyspace::data_key::ScanPosition;
use kv_keyspace::now_ms;
use kv_tests::Kvd;
use kvtool::dump::format::{DumpVersion, Record};
use kvtool::dump::{dump_dir, DumpArgs};
use kvtool::failure::{EXIT_BUSY, EXIT_USAGE};
use kvtool::load::load_file;
use kvtool::resp::{Connection, Reply};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

const HOUR_MS: i64 = 3_600_000;

/// Tests here run one at a time: a kvd spawned by one test inherits, between fork and exec,
/// the LOCK descriptor another test's in-process dump holds, and for that moment the
/// directory looks busy (flock belongs to the shared open file description).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Builds kvd next to this test binary unless it is there (the kv-tests harness runs it).
fn kvd_built() {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    // `cargo test --workspace` builds kv-tests' `kvd-test-server` (the same entry
    // point) before any test runs; building `kvd` with `-p` would resolve features
    // differently and recompile the dependencies.
    let built = ["kvd-test-server", "kvd"]
        .iter()
        .any(|name| profile_dir.join(name).exists());
    if std::env::var_os("KVD_BIN").is_some() || built {
        return;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "-p", "kv-server", "--bin", "kvd"])
        .status()
        .unwrap();
    assert!(status.success(), "building kvd failed");
}

fn addr(kvd: &Kvd) -> String {
    format!("127.0.0.1:{}", kvd.port)
}

fn ok(conn: &mut Connection, args: &[&[u8]]) {
    conn.expect_ok(args).unwrap();
}

/// SHUTDOWN, then wait for the process to exit: its directory is then free.
fn shut_down(kvd: &mut Kvd, password: Option<&str>) {
    let mut conn = Connection::open(&addr(kvd), password).unwrap();
    let _ = conn.call(&[b"SHUTDOWN"]);
    assert!(kvd.wait_exit().success());
}

fn dump(dir: &Path, db: Option<u32>) -> Vec<Record> {
    let mut out = Vec::new();
    dump_dir(dir, db, &mut out, now_ms()).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| Record::parse_line(l).unwrap())
        .collect()
}

fn without_versions(records: &[Record]) -> Vec<Record> {
    records
        .iter()
        .map(|r| Record {
            version: None,
            ..r.clone()
        })
        .collect()
}

fn write_dump(path: &Path, records: &[Record]) {
    let mut text = String::new();
    for r in records {
        r.write_line(&mut text);
    }
    std::fs::write(path, text).unwrap();
}

/// Writes keys of every shape into a running kvd; returns the expiry of the one with a TTL.
fn write_every_shape(conn: &mut Connection) -> i64 {
    let all: Vec<u8> = (0..=255u8).collect();
    let big: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    ok(conn, &[b"SET", &all, &all]);
    ok(conn, &[b"SET", b"empty", b""]);
    ok(conn, &[b"SET", b"", b"the empty key"]);
    ok(conn, &[b"SET", b"big", &big]);
    ok(conn, &[b"SET", b"user:1", b"first"]);
    ok(conn, &[b"SET", b"user:1", b"overwritten"]);
    ok(
        conn,
        &[b"SET", "caf\u{e9}".as_bytes(), b"utf-8 \xe2\x82\xac"],
    );
    ok(conn, &[b"SET", b"gone", b"expires at once", b"PX", b"1"]);
    ok(
        conn,
        &[
            b"SET",
            b"ttl",
            b"an hour",
            b"PX",
            HOUR_MS.to_string().as_bytes(),
        ],
    );
    ok(conn, &[b"SELECT", b"2"]);
    ok(conn, &[b"SET", b"flushed", b"orphaned by FLUSHDB"]);
    ok(conn, &[b"FLUSHDB"]);
    ok(conn, &[b"SET", b"after-flush", b"live"]);
    ok(conn, &[b"SELECT", b"1"]);
    ok(conn, &[b"SET", b"quote\"back\\slash", b"\r\n\t"]);
    ok(conn, &[b"SELECT", b"15"]);
    ok(conn, &[b"SET", b"last", b"db 15"]);
    std::thread::sleep(std::time::Duration::from_millis(20)); // "gone" expires
    match conn.call(&[b"SELECT", b"0"]).unwrap() {
        Reply::Status(_) => {}
        other => panic!("{other:?}"),
    }
    match conn.call(&[b"PEXPIRETIME", b"ttl"]).unwrap() {
        Reply::Integer(at) => at,
        other => panic!("PEXPIRETIME: {other:?}"),
    }
}

#[test]
fn a_dump_loaded_into_another_kvd_dumps_the_same_but_for_versions() {
    let _serial = one_at_a_time();
    kvd_built();
    let mut first = Kvd::start_default();
    let expire_at = {
        let mut conn = Connection::open(&addr(&first), None).unwrap();
        write_every_shape(&mut conn)
    };
    shut_down(&mut first, None);

    let dumped = dump(first.data_dir(), None);
    let keys: Vec<(u32, Vec<u8>)> = dumped.iter().map(|r| (r.db, r.key.clone())).collect();
    let mut sorted = keys.clone();
    sorted.sort_by_key(|(db, k)| (*db, ScanPosition::of_key(k), k.clone()));
    assert_eq!(keys, sorted, "ordered by (db, slot, key hash, key)");
    let all: Vec<u8> = (0..=255u8).collect();
    let expected: Vec<(u32, &[u8])> = vec![
        (0, b""),
        (0, &all),
        (0, b"big"),
        (0, "caf\u{e9}".as_bytes()),
        (0, b"empty"),
        (0, b"ttl"),
        (0, b"user:1"),
        (1, b"quote\"back\\slash"),
        (2, b"after-flush"),
        (15, b"last"),
    ];
    let mut expected: Vec<(u32, Vec<u8>)> =
        expected.into_iter().map(|(d, k)| (d, k.to_vec())).collect();
    expected.sort_by_key(|(db, k)| (*db, ScanPosition::of_key(k), k.clone()));
    assert_eq!(
        keys, expected,
        "live keys only: no expired key, none orphaned by FLUSHDB"
    );
    let find = |key: &[u8]| dumped.iter().find(|r| r.key == key).unwrap();
    assert_eq!(find(&all).value, all);
    assert_eq!(find(b"big").value.len(), 1 << 20);
    assert_eq!(find(b"empty").value, b"");
    assert_eq!(find(b"user:1").value, b"overwritten");
    assert_eq!(find(b"ttl").expire_at_ms, Some(expire_at));
    assert_eq!(find(b"user:1").expire_at_ms, None);
    assert!(dumped
        .iter()
        .all(|r| matches!(r.version, Some(DumpVersion::Sequence(v)) if v > 0)));
    assert_eq!(dump(first.data_dir(), Some(2)), dumped[8..9].to_vec());

    // --out writes the same bytes, through a file that appears only when complete.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("first.jsonl");
    let args = DumpArgs {
        dir: first.data_dir().to_path_buf(),
        out: Some(file.clone()),
        db: None,
        partition: Vec::new(),
        owned: false,
    };
    assert_eq!(kvtool::dump::run(&args, true).unwrap(), 0);
    let from_file: Vec<Record> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| Record::parse_line(l).unwrap())
        .collect();
    assert_eq!(from_file, dumped);
    assert!(!tmp.path().join("first.jsonl.partial").exists());

    let mut second = Kvd::start_default();
    let report = load_file(&file, &addr(&second), None).unwrap();
    assert_eq!((report.lines, report.keys_loaded), (10, 10));
    assert_eq!(report.expired_skipped, 0);
    assert_eq!(report.databases.get(&0), Some(&7));
    shut_down(&mut second, None);
    let reloaded = dump(second.data_dir(), None);
    assert_eq!(without_versions(&reloaded), without_versions(&dumped));
}

#[test]
fn a_directory_in_use_and_a_missing_database_are_refused() {
    let _serial = one_at_a_time();
    kvd_built();
    let mut kvd = Kvd::start_default();
    let err = dump_dir(kvd.data_dir(), None, &mut Vec::new(), now_ms()).unwrap_err();
    assert_eq!(err.code, EXIT_BUSY, "{}", err.message);
    assert!(err.message.contains("in use"), "{}", err.message);
    assert!(
        err.message.contains("kvtool backup --addr"),
        "{}",
        err.message
    );
    shut_down(&mut kvd, None);
    let err = dump_dir(kvd.data_dir(), Some(16), &mut Vec::new(), now_ms()).unwrap_err();
    assert_eq!(err.code, EXIT_USAGE, "{}", err.message);
    assert!(err.message.contains("0..15"), "{}", err.message);
}

#[test]
fn a_directory_kvd_never_ran_on_is_not_a_kvd_directory() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let engine_only: PathBuf = tmp.path().join("engine-only");
    let db = kv_engine::Db::open(&engine_only, kv_engine::Options::default()).unwrap();
    db.put(kv_engine::Keyspace::DEFAULT, b"\0\0\0\0k", b"v")
        .unwrap();
    db.close().unwrap();
    let err = dump_dir(&engine_only, None, &mut Vec::new(), now_ms()).unwrap_err();
    assert!(
        err.message.contains("no kvd namespace map"),
        "{}",
        err.message
    );
}

#[test]
fn a_directory_of_an_older_kvd_is_refused_with_what_to_do() {
    let _serial = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let legacy: PathBuf = tmp.path().join("legacy");
    let db = kv_engine::Db::open(&legacy, kv_engine::Options::default()).unwrap();
    let meta = db.keyspace(kv_keyspace::namespaces::META_KEYSPACE).unwrap();
    let map = kv_keyspace::Namespaces::fresh(16);
    db.put(
        meta,
        kv_keyspace::namespaces::META_NAMESPACES,
        &map.encode(),
    )
    .unwrap();
    let key = kv_keyspace::legacy::legacy_data_key(0, b"k");
    db.put(kv_engine::Keyspace::DEFAULT, &key, b"\x01\0\0\0\0\0\0\0\0v")
        .unwrap();
    db.close().unwrap();
    let err = dump_dir(&legacy, None, &mut Vec::new(), now_ms()).unwrap_err();
    assert!(err.message.contains("keyspace format 1"), "{}", err.message);
    assert!(
        err.message.contains("Start this version's kvd"),
        "{}",
        err.message
    );
}

fn record(db: u32, key: &str, expire_at_ms: Option<i64>) -> Record {
    Record {
        db,
        key: key.as_bytes().to_vec(),
        value: b"v".to_vec(),
        ty: Some(kv_keyspace::ValueType::String),
        expire_at_ms,
        version: None,
    }
}

fn dbsize(conn: &mut Connection) -> Reply {
    conn.call(&[b"DBSIZE"]).unwrap()
}

#[test]
fn bad_files_and_refusals_load_nothing_and_say_why() {
    let _serial = one_at_a_time();
    kvd_built();
    let mut kvd = Kvd::start(&["--requirepass", "sesame"]);
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good.jsonl");
    write_dump(
        &good,
        &[
            record(0, "a", None),
            record(0, "expired", Some(1)),
            record(3, "b", Some(now_ms() + HOUR_MS)),
        ],
    );

    let err = load_file(&good, &addr(&kvd), None).unwrap_err();
    assert!(
        err.message.contains("nothing was loaded"),
        "{}",
        err.message
    );
    assert!(err.message.contains("NOAUTH"), "{}", err.message);

    let broken = tmp.path().join("broken.jsonl");
    let text = std::fs::read_to_string(&good).unwrap();
    std::fs::write(&broken, format!("{text}{{\"db\":0,\"key\":\"c\"\n")).unwrap();
    let err = load_file(&broken, &addr(&kvd), Some("sesame")).unwrap_err();
    assert!(err.message.contains("line 4"), "{}", err.message);
    assert!(
        err.message.contains("nothing was loaded"),
        "{}",
        err.message
    );

    let far = tmp.path().join("far.jsonl");
    write_dump(&far, &[record(0, "a", None), record(99, "b", None)]);
    let err = load_file(&far, &addr(&kvd), Some("sesame")).unwrap_err();
    assert!(err.message.contains("SELECT 99"), "{}", err.message);
    assert!(
        err.message.contains("nothing was loaded"),
        "{}",
        err.message
    );

    let mut conn = Connection::open(&addr(&kvd), Some("sesame")).unwrap();
    assert_eq!(dbsize(&mut conn), Reply::Integer(0));

    let report = load_file(&good, &addr(&kvd), Some("sesame")).unwrap();
    assert_eq!(
        (report.lines, report.keys_loaded, report.expired_skipped),
        (3, 2, 1)
    );
    assert_eq!(dbsize(&mut conn), Reply::Integer(1));
    ok(&mut conn, &[b"SELECT", b"3"]);
    assert!(matches!(conn.call(&[b"PTTL", b"b"]).unwrap(), Reply::Integer(t) if t > 0));
    shut_down(&mut kvd, Some("sesame"));
}

#[test]
fn a_load_stopped_by_kvd_says_which_line_and_how_much_was_loaded() {
    let _serial = one_at_a_time();
    kvd_built();
    let mut kvd = Kvd::start(&["--proto-max-bulk-len", "1mb"]);
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("too-big.jsonl");
    let mut records: Vec<Record> = (0..1500)
        .map(|i| record(0, &format!("k{i:04}"), None))
        .collect();
    records[1199].value = vec![b'x'; (1 << 20) + 1]; // line 1200: over proto-max-bulk-len
    write_dump(&file, &records);
    let err = load_file(&file, &addr(&kvd), None).unwrap_err();
    assert!(
        err.message.contains("kvd refused line 1200"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("nothing after line 1500 was sent"),
        "{}",
        err.message
    );
    let loaded = err.message.split("Loaded ").nth(1).unwrap();
    let loaded: u64 = loaded.split(' ').next().unwrap().parse().unwrap();
    let mut conn = Connection::open(&addr(&kvd), None).unwrap();
    assert_eq!(
        dbsize(&mut conn),
        Reply::Integer(loaded as i64),
        "{}",
        err.message
    );
    assert!(loaded >= 1000, "the first batch is loaded: {}", err.message);
    shut_down(&mut kvd, None);
}
