//! `kvtool compact --addr` and `kvtool backup --addr` speak kvd's admin commands over
//! RESP: `COMPACT [RANGE start end]`, `CHECKPOINT dest`, `INFO engine`
//! (`engine_compactions_running`, `engine_compaction_bytes_read`), `AUTH`.
//!
//! Against a stand-in server that implements exactly those commands on a real engine
//! (CHECKPOINT really checkpoints), and against a real kvd when one with those commands
//! is found (`KVD_BIN`, else `target/{debug,release}/kvd`); that test is skipped, saying
//! why, when there is none.

mod common;

use common::kvd::{call, find_or_skip, start_kvd, start_or_skip};
use common::{build, contents, kvtool, kvtool_json, s, text};
use kv_engine::Db;
use kvtool::resp::{Connection, Reply};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reads one RESP array of bulk strings (a client request).
fn read_request(r: &mut impl BufRead) -> Option<Vec<Vec<u8>>> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let n: usize = line.trim_end().strip_prefix('*')?.parse().ok()?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        line.clear();
        r.read_line(&mut line).ok()?;
        let len: usize = line.trim_end().strip_prefix('$')?.parse().ok()?;
        let mut buf = vec![0; len + 2];
        r.read_exact(&mut buf).ok()?;
        buf.truncate(len);
        args.push(buf);
    }
    Some(args)
}

/// A stand-in for kvd's admin commands on a real engine. Records every command.
struct FakeKvd {
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl FakeKvd {
    fn start(db: Db, password: Option<&'static str>) -> FakeKvd {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (db, log) = (db.clone(), log2.clone());
                std::thread::spawn(move || serve(stream, db, log, password));
            }
        });
        FakeKvd { addr, log }
    }

    fn commands(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, db: Db, log: Arc<Mutex<Vec<String>>>, password: Option<&str>) {
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    let mut authed = password.is_none();
    while let Some(args) = read_request(&mut r) {
        let words: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        log.lock().unwrap().push(words.join(" "));
        let reply = match (words[0].to_ascii_uppercase().as_str(), authed) {
            ("AUTH", _) if Some(words.get(1).map(String::as_str).unwrap_or("")) == password => {
                authed = true;
                "+OK\r\n".to_string()
            }
            ("AUTH", _) => "-WRONGPASS invalid username-password pair\r\n".into(),
            (_, false) => "-NOAUTH Authentication required.\r\n".into(),
            ("INFO", _) => {
                let body = "# Engine\r\nengine_compactions_running:0\r\nengine_compaction_bytes_read:0\r\n";
                format!("${}\r\n{body}\r\n", body.len())
            }
            ("COMPACT", _) => {
                let range = (words.len() == 4).then(|| (args[2].clone(), args[3].clone()));
                std::thread::sleep(Duration::from_millis(300));
                let ks = kv_engine::Keyspace::DEFAULT;
                match db.compact_range(
                    ks,
                    range.as_ref().map(|r| &r.0[..]),
                    range.as_ref().map(|r| &r.1[..]),
                ) {
                    Ok(()) => "+OK\r\n".into(),
                    Err(e) => format!("-ERR {e}\r\n"),
                }
            }
            ("CHECKPOINT", _) => match db.checkpoint(&words[1]) {
                Ok(()) => "+OK\r\n".into(),
                Err(e) => format!("-ERR {e}\r\n"),
            },
            _ => "-ERR unknown command\r\n".into(),
        };
        if w.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn compact_online_sends_compact_and_waits_for_ok() {
    let d = tempfile::tempdir().unwrap();
    build(d.path());
    let db = Db::open(d.path(), common::tiny_options()).unwrap();
    let kvd = FakeKvd::start(db, None);
    let (v, code) = kvtool_json(&["compact", "--addr", &kvd.addr]);
    assert_eq!(code, 0, "{v:#}");
    assert!(
        v["seconds"].as_f64().unwrap() >= 0.3,
        "returned before +OK: {v:#}"
    );
    assert!(
        kvd.commands().contains(&"COMPACT".to_string()),
        "{:?}",
        kvd.commands()
    );

    let (out, err, code) = text(&kvtool(&[
        "compact",
        "--addr",
        &kvd.addr,
        "--range",
        "user:1",
        "user:\\x7f",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("compacted range [user:1, user:\\x7f]"),
        "{out}"
    );
    assert!(
        kvd.commands()
            .contains(&"COMPACT RANGE user:1 user:\u{7f}".to_string()),
        "{:?}",
        kvd.commands()
    );
}

#[test]
fn backup_online_checkpoints_into_an_absolute_dest_and_verifies_it() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("db");
    let model = build(&src);
    let db = Db::open(&src, common::tiny_options()).unwrap();
    let kvd = FakeKvd::start(db, None);
    let (v, code) = kvtool_json(&["backup", "--addr", &kvd.addr, s(&d.path().join("b"))]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["verified"]["errors"], 0, "{v:#}");
    let sent = kvd
        .commands()
        .into_iter()
        .find(|c| c.starts_with("CHECKPOINT"))
        .unwrap();
    assert_eq!(sent, format!("CHECKPOINT {}", d.path().join("b").display()));
    assert_eq!(contents(&d.path().join("b")), model);
}

#[test]
fn kvd_errors_and_auth_are_reported() {
    let d = tempfile::tempdir().unwrap();
    build(d.path());
    let db = Db::open(d.path(), common::tiny_options()).unwrap();
    let kvd = FakeKvd::start(db, Some("sesame"));
    let (_, err, code) = text(&kvtool(&["compact", "--addr", &kvd.addr]));
    assert_eq!(code, 1);
    assert!(err.contains("NOAUTH"), "{err}");
    let (_, err, code) = text(&kvtool(&[
        "compact",
        "--addr",
        &kvd.addr,
        "--password",
        "wrong",
    ]));
    assert_eq!(code, 1);
    assert!(err.contains("WRONGPASS"), "{err}");
    let (_, err, code) = text(&kvtool(&[
        "compact",
        "--addr",
        &kvd.addr,
        "--password",
        "sesame",
    ]));
    assert_eq!(code, 0, "{err}");
    // A checkpoint into a non-empty directory: kvtool refuses before asking.
    let (_, err, code) = text(&kvtool(&[
        "backup",
        "--addr",
        &kvd.addr,
        "--password",
        "sesame",
        s(d.path()),
    ]));
    assert_eq!(code, 1);
    assert!(err.contains("not empty"), "{err}");
}

#[test]
fn no_server_is_a_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_, err, code) = text(&kvtool(&[
        "compact",
        "--addr",
        &format!("127.0.0.1:{port}"),
    ]));
    assert_eq!(code, 1);
    assert!(err.contains("cannot connect"), "{err}");
}

// ---- a real kvd, when there is one with the admin commands ----

#[test]
fn against_a_real_kvd() {
    let Some(bin) = find_or_skip() else { return };
    let d = tempfile::tempdir().unwrap();
    let Some((server, addr)) = start_or_skip(&bin, &d.path().join("data")) else {
        return;
    };
    let mut conn = Connection::open(&addr, None).unwrap();
    if let Reply::Error(e) = call(&mut conn, &["COMPACT"]) {
        println!(
            "skipped: {} has no COMPACT command yet ({e})",
            bin.display()
        );
        return;
    }
    for i in 0..200 {
        call(
            &mut conn,
            &["SET", &format!("key:{i}"), &format!("value:{i}")],
        );
    }
    let (v, code) = kvtool_json(&["compact", "--addr", &addr]);
    assert_eq!(code, 0, "{v:#}");
    let info = conn.info(Some("engine")).unwrap();
    assert!(
        info.iter().any(|(k, _)| k == "engine_compactions_running"),
        "{info:?}"
    );
    let dest = d.path().join("backup");
    let (v, code) = kvtool_json(&["backup", "--addr", &addr, s(&dest)]);
    assert_eq!(code, 0, "{v:#}");
    call(&mut conn, &["SET", "after-backup", "x"]);
    drop(server);
    let (_restored, addr) = start_kvd(&bin, &dest).expect("kvd starts from the backup");
    let mut conn = Connection::open(&addr, None).unwrap();
    assert_eq!(
        call(&mut conn, &["GET", "key:199"]),
        Reply::Bulk(Some(b"value:199".to_vec()))
    );
    assert_eq!(call(&mut conn, &["GET", "after-backup"]), Reply::Bulk(None));
}
