//! `kvtool verify` on healthy directories (exit 0) and on directories with a byte
//! flipped, a file missing or added, or the manifest made inconsistent in each kind of
//! file: a non-zero exit and an error naming the file, never a panic.

mod common;

use common::{build, files_ending, kvtool_json, s};
use kv_engine::manifest::VersionEdit;
use kv_engine::wal::LogWriter;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Exit status of a Rust panic: verify must never exit with it.
const PANIC_EXIT: i32 = 101;

fn verify(dir: &Path) -> (Value, i32) {
    let (v, code) = kvtool_json(&["verify", s(dir)]);
    assert_ne!(code, PANIC_EXIT, "verify panicked: {v:#}");
    (v, code)
}

fn problems_about<'a>(v: &'a Value, severity: &str, file: &Path) -> Vec<&'a Value> {
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["severity"] == severity && p["file"].as_str().unwrap().ends_with(&name))
        .collect()
}

/// Asserts verify exits 1 with an error naming `file`; returns the first such error.
fn assert_error_in(dir: &Path, file: &Path) -> Value {
    let (v, code) = verify(dir);
    assert_eq!(
        code,
        1,
        "expected a failure naming {}: {v:#}",
        file.display()
    );
    let errors = problems_about(&v, "error", file);
    assert!(
        !errors.is_empty(),
        "no error names {}: {v:#}",
        file.display()
    );
    assert_eq!(v["healthy"], false);
    errors[0].clone()
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

fn healthy_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("db");
    build(&dir);
    (d, dir)
}

/// A copy of `dir` beside it, to restore from between damages.
fn keep_pristine(dir: &Path) -> PathBuf {
    let pristine = dir.with_extension("pristine");
    common::copy_dir(dir, &pristine);
    pristine
}

/// Every file of `dir` but LOCK, sorted, with its size.
fn data_files(dir: &Path) -> Vec<(std::ffi::OsString, u64)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name() != "LOCK")
        .map(|e| (e.file_name(), e.metadata().unwrap().len()))
        .collect();
    files.sort();
    files
}

/// Makes `dir` a fresh copy of `pristine`.
fn restore(pristine: &Path, dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    common::copy_dir(pristine, dir);
}

fn manifest_of(dir: &Path) -> PathBuf {
    let current = std::fs::read_to_string(dir.join("CURRENT")).unwrap();
    dir.join(current.trim_end())
}

/// Handles (offset, size) of index, filter and properties blocks, from the footer.
fn meta_blocks(sst: &Path) -> [(u64, u64); 3] {
    let bytes = std::fs::read(sst).unwrap();
    let footer = &bytes[bytes.len() - 64..];
    let word = |i: usize| u64::from_le_bytes(footer[i * 8..i * 8 + 8].try_into().unwrap());
    [(word(0), word(1)), (word(2), word(3)), (word(4), word(5))]
}

#[test]
fn a_healthy_directory_exits_zero() {
    let (_d, dir) = healthy_dir();
    let (v, code) = verify(&dir);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["healthy"], true);
    assert_eq!(v["summary"]["errors"], 0);
    let files = std::fs::read_dir(&dir).unwrap().count() as u64;
    // Every file but LOCK is read.
    assert_eq!(v["summary"]["files"], files - 1, "{v:#}");
}

#[test]
fn a_directory_in_use_can_be_verified() {
    let (_d, dir) = healthy_dir();
    let db = kv_engine::Db::open(&dir, common::tiny_options()).unwrap();
    let (v, code) = verify(&dir);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["in_use_by_pid"], std::process::id(), "{v:#}");
    drop(db);
}

#[test]
fn a_flipped_byte_in_a_wal_record_is_reported() {
    let (_d, dir) = healthy_dir();
    let wal = files_ending(&dir, ".log").pop().unwrap();
    flip(&wal, 10); // payload of the first record; valid records follow
    let e = assert_error_in(&dir, &wal);
    assert_eq!(e["offset"], 0, "{e:#}");
}

#[test]
fn a_torn_wal_tail_is_a_warning_only() {
    let (_d, dir) = healthy_dir();
    let wal = files_ending(&dir, ".log").pop().unwrap();
    let len = std::fs::metadata(&wal).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&wal).unwrap();
    f.set_len(len - 5).unwrap();
    let (v, code) = verify(&dir);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(problems_about(&v, "warning", &wal).len(), 1, "{v:#}");
}

#[test]
fn a_flipped_byte_in_a_table_data_block_is_reported() {
    let (_d, dir) = healthy_dir();
    let sst = files_ending(&dir, ".sst")[0].clone();
    flip(&sst, 20);
    let e = assert_error_in(&dir, &sst);
    assert!(e["offset"].as_u64().is_some(), "{e:#}");
}

#[test]
fn a_flipped_byte_in_each_table_metadata_region_is_reported() {
    let (_d, dir) = healthy_dir();
    let pristine = keep_pristine(&dir);
    let sst_name = files_ending(&dir, ".sst")[0]
        .file_name()
        .unwrap()
        .to_owned();
    let [index, filter, props] = meta_blocks(&dir.join(&sst_name));
    let len = std::fs::metadata(dir.join(&sst_name)).unwrap().len();
    assert!(filter.1 > 0, "the test tables have bloom filters");
    let spots = [
        ("index", index.0 + index.1 / 2),
        ("filter", filter.0 + filter.1 / 2),
        ("properties", props.0 + props.1 / 2),
        ("footer handles", len - 60),
        ("footer magic", len - 1),
    ];
    for (what, offset) in spots {
        restore(&pristine, &dir);
        let sst = dir.join(&sst_name);
        flip(&sst, offset);
        let (v, code) = verify(&dir);
        assert_eq!(code, 1, "flip in the {what} at {offset}: {v:#}");
        assert!(
            !problems_about(&v, "error", &sst).is_empty(),
            "flip in the {what}: {v:#}"
        );
    }
}

#[test]
fn a_flipped_byte_in_the_manifest_is_reported() {
    let (_d, dir) = healthy_dir();
    let manifest = manifest_of(&dir);
    flip(&manifest, 10);
    assert_error_in(&dir, &manifest);
}

#[test]
fn a_garbled_current_is_reported() {
    let (_d, dir) = healthy_dir();
    let current = dir.join("CURRENT");
    flip(&current, 0);
    assert_error_in(&dir, &current);
}

#[test]
fn current_naming_a_missing_manifest_is_reported() {
    let (_d, dir) = healthy_dir();
    let current = dir.join("CURRENT");
    std::fs::write(&current, "MANIFEST-999999\n").unwrap();
    let e = assert_error_in(&dir, &current);
    assert!(
        e["what"].as_str().unwrap().contains("MANIFEST-999999"),
        "{e:#}"
    );
}

#[test]
fn a_table_the_manifest_names_but_is_missing_is_reported() {
    let (_d, dir) = healthy_dir();
    let sst = files_ending(&dir, ".sst")[0].clone();
    std::fs::remove_file(&sst).unwrap();
    let e = assert_error_in(&dir, &sst);
    assert!(e["what"].as_str().unwrap().contains("missing"), "{e:#}");
}

#[test]
fn a_table_the_manifest_does_not_name_is_a_warning() {
    let (_d, dir) = healthy_dir();
    let stray = dir.join("999999.sst");
    std::fs::copy(&files_ending(&dir, ".sst")[0], &stray).unwrap();
    let (v, code) = verify(&dir);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(problems_about(&v, "warning", &stray).len(), 1, "{v:#}");
}

#[test]
fn overlapping_l1_tables_are_reported_against_the_manifest() {
    let (_d, dir) = healthy_dir();
    let state = kv_engine::manifest::VersionSet::recover(kv_engine::fs::real(), &dir).unwrap();
    let version = state.current();
    let l1 = version.levels[1]
        .first()
        .expect("the test directory has L1 tables")
        .clone();
    drop(state);
    // Rewrite the manifest with one more edit: a copy of an L1 table added to L1 again
    // under a new number, so two L1 tables cover the same keys.
    let copy_number = 999_999;
    std::fs::copy(
        dir.join(format!("{:06}.sst", l1.number)),
        dir.join(format!("{copy_number:06}.sst")),
    )
    .unwrap();
    let manifest = manifest_of(&dir);
    let fs = kv_engine::fs::real();
    let (records, _) = kv_engine::wal::read_all(fs.as_ref(), &manifest).unwrap();
    let mut meta = (*l1).clone();
    meta.number = copy_number;
    let edit = VersionEdit {
        new_files: vec![(1, meta)],
        ..VersionEdit::default()
    };
    let mut w = LogWriter::new(manifest.clone(), fs.create(&manifest).unwrap());
    for (_, r) in &records {
        w.add_record(r).unwrap();
    }
    w.add_record(&edit.encode()).unwrap();
    w.sync().unwrap();
    drop(w);
    // And a torn tail after it: its warning must not hide the replay's error.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&manifest)
        .unwrap();
    std::io::Write::write_all(&mut f, b"\x01\x02\x03").unwrap();
    let e = assert_error_in(&dir, &manifest);
    assert!(e["what"].as_str().unwrap().contains("overlap"), "{e:#}");
    let (v, _) = verify(&dir);
    assert_eq!(problems_about(&v, "warning", &manifest).len(), 1, "{v:#}");
}

#[test]
fn garbage_in_every_file_never_panics() {
    let (_d, dir) = healthy_dir();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let len = entry.metadata().unwrap().len() as usize;
        let junk: Vec<u8> = (0..len.max(1))
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        std::fs::write(entry.path(), junk).unwrap();
    }
    let (v, code) = verify(&dir);
    assert_eq!(code, 1, "{v:#}");
}

/// Flips bytes spread over every file. Every flip in a table or CURRENT is an error
/// naming it; a flip in the last record of a WAL or MANIFEST may read as a torn tail,
/// which must at least be a warning naming the file.
#[test]
fn flips_anywhere_are_reported_against_their_file() {
    let (_d, dir) = healthy_dir();
    let pristine = keep_pristine(&dir);
    for (name, len) in data_files(&pristine) {
        let step = (len / 12).max(1);
        for offset in (0..len).step_by(step as usize) {
            restore(&pristine, &dir);
            let file = dir.join(&name);
            flip(&file, offset);
            let (v, code) = verify(&dir);
            let errors = problems_about(&v, "error", &file).len();
            let warnings = problems_about(&v, "warning", &file).len();
            let lenient = name.to_string_lossy().ends_with(".log")
                || name.to_string_lossy().starts_with("MANIFEST");
            if lenient {
                assert!(
                    errors + warnings > 0,
                    "flip in {name:?} at {offset} went unnoticed: {v:#}"
                );
                assert_eq!(code == 1, v["summary"]["errors"].as_u64().unwrap() > 0);
            } else {
                assert_eq!(code, 1, "flip in {name:?} at {offset}: {v:#}");
                assert!(
                    errors > 0,
                    "flip in {name:?} at {offset} not reported against it: {v:#}"
                );
            }
        }
    }
}

/// Cutting any file short is reported against it (an error, or for a WAL or MANIFEST
/// cut inside its last record, a torn-tail warning), and never panics.
#[test]
fn truncated_files_are_reported_against_their_file() {
    let (_d, dir) = healthy_dir();
    let pristine = keep_pristine(&dir);
    for (name, len) in data_files(&pristine) {
        for cut in [0, len / 2, len - 1] {
            restore(&pristine, &dir);
            let file = dir.join(&name);
            std::fs::OpenOptions::new()
                .write(true)
                .open(&file)
                .unwrap()
                .set_len(cut)
                .unwrap();
            let (v, _) = verify(&dir);
            let named = problems_about(&v, "error", &file).len()
                + problems_about(&v, "warning", &file).len();
            // A WAL cut to nothing has no record left to be torn: nothing is lost that was ever complete.
            let empty_wal = cut == 0 && name.to_string_lossy().ends_with(".log");
            // A MANIFEST cut exactly between two records reads as a valid older manifest
            // (where the cut lands depends on the background compactions that wrote it):
            // the cut then shows through its consequences, tables it names that later
            // edits had deleted, or tables on disk it does not name.
            let manifest_consequences = name.to_string_lossy().starts_with("MANIFEST")
                && v["summary"]["errors"].as_u64().unwrap_or(0) > 0;
            assert!(
                named > 0 || empty_wal || manifest_consequences,
                "{name:?} cut to {cut} bytes went unnoticed: {v:#}"
            );
        }
    }
}
