//! Helpers for kvtool's end-to-end tests: data directories written by the real engine,
//! the real kvtool binary, and a model of what the directory should hold.
#![allow(dead_code)]

pub mod kvd;

use kv_engine::{Db, Keyspace, Options};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Expected contents: (keyspace name, key) -> value.
pub type Model = BTreeMap<(String, Vec<u8>), Vec<u8>>;

/// Options that make flushes and compactions happen after a few kilobytes, so a small
/// test directory has several levels.
pub fn tiny_options() -> Options {
    Options {
        memtable_size: 4 * 1024,
        block_size: 256,
        l0_compaction_trigger: 3,
        l0_slowdown_writes_trigger: 8,
        l0_stop_writes_trigger: 12,
        l1_max_bytes: 16 * 1024,
        target_file_size: 8 * 1024,
        block_cache_bytes: 64 * 1024,
        ..Options::default()
    }
}

/// Writes a database into `dir` with the engine: two keyspaces, overwrites, deletes,
/// binary keys, several levels of tables, and a WAL holding the last unflushed writes
/// (the handle is dropped, not closed). Returns what it should hold.
pub fn build(dir: &Path) -> Model {
    let db = Db::open(dir, tiny_options()).expect("open");
    let users = Keyspace::DEFAULT;
    let hints = db.keyspace("hints").expect("keyspace");
    let mut model = Model::new();
    let put = |model: &mut Model, ks: Keyspace, name: &str, k: Vec<u8>, v: Vec<u8>| {
        db.put(ks, &k, &v).expect("put");
        model.insert((name.to_string(), k), v);
    };
    for i in 0..1500u32 {
        let k = format!("user:{:05}", (i * 7919) % 1000).into_bytes();
        put(
            &mut model,
            users,
            "default",
            k,
            format!("value-{i}-{}", "x".repeat(i as usize % 40)).into_bytes(),
        );
        if i % 10 == 0 {
            put(
                &mut model,
                hints,
                "hints",
                format!("hint:{i}").into_bytes(),
                vec![i as u8; 20],
            );
        }
    }
    put(
        &mut model,
        users,
        "default",
        b"bin\x00\xff\n".to_vec(),
        b"\x01\x02".to_vec(),
    );
    for i in (0..1000u32).step_by(13) {
        let k = format!("user:{i:05}").into_bytes();
        db.delete(users, &k).expect("delete");
        model.remove(&("default".to_string(), k));
    }
    delete_range(&db, &mut model, b"user:00900", b"user:00950");
    // Written after the range delete: survives it.
    put(
        &mut model,
        users,
        "default",
        b"user:00920".to_vec(),
        b"reborn".to_vec(),
    );
    db.flush().expect("flush");
    for i in 0..25u32 {
        put(
            &mut model,
            users,
            "default",
            format!("wal:{i:03}").into_bytes(),
            b"in-the-wal".to_vec(),
        );
    }
    // A range delete that stays in the WAL, over keys in tables.
    delete_range(&db, &mut model, b"user:00960", b"user:00970");
    drop(db);
    wait_unlocked(dir);
    model
}

/// Waits until nobody holds `dir`'s LOCK.
///
/// Dropping a Db closes its lock file without unlocking it first, so a child process
/// that another test thread forked meanwhile keeps the lock until it execs; a kvtool
/// started right after would then see the directory busy. This probe takes and
/// explicitly releases the lock, so children forked during the probe hold nothing.
pub fn wait_unlocked(dir: &Path) {
    use std::os::unix::io::AsRawFd;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join("LOCK"))
            .expect("open LOCK");
        // SAFETY: flock on a valid descriptor we own; it touches no memory of ours.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if locked {
            // SAFETY: as above.
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} stays locked",
            dir.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Deletes `[start, end)` of the default keyspace in the database and the model.
fn delete_range(db: &Db, model: &mut Model, start: &[u8], end: &[u8]) {
    db.delete_range(Keyspace::DEFAULT, start, end)
        .expect("delete_range");
    model.retain(|(ks, k), _| !(ks == "default" && start <= k.as_slice() && k.as_slice() < end));
}

/// Everything the database in `dir` holds, read back through the engine.
pub fn contents(dir: &Path) -> Model {
    let db = Db::open(
        dir,
        Options {
            create_if_missing: false,
            ..tiny_options()
        },
    )
    .expect("open");
    let mut out = Model::new();
    for (ks, name) in db.keyspaces() {
        for e in db.iter(ks, None, None, None).expect("iter") {
            let e = e.expect("entry");
            out.insert((name.clone(), e.key.to_vec()), e.value.to_vec());
        }
    }
    db.close().expect("close");
    wait_unlocked(dir);
    out
}

/// Runs the real kvtool binary.
pub fn kvtool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvtool"))
        .args(args)
        .output()
        .expect("run kvtool")
}

/// stdout, stderr and exit code of a run, for assertions and failure messages.
pub fn text(out: &Output) -> (String, String, i32) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code().unwrap_or(-1),
    )
}

/// Runs kvtool with `--json` and parses its stdout.
pub fn kvtool_json(args: &[&str]) -> (serde_json::Value, i32) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = kvtool(&all);
    let (stdout, stderr, code) = text(&out);
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("kvtool {args:?}: bad JSON ({e}): {stdout}\nstderr: {stderr}"));
    (v, code)
}

/// The path as a &str, for argument lists.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Files of `dir` whose name ends with `suffix`, sorted.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Copies a flat directory.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}
