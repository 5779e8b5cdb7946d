//! `kvtool backup DIR DEST`: the copy holds everything written (the WAL's unflushed
//! writes included), verifies clean, opens with the engine; a non-empty DEST and a
//! directory in use are refused.

mod common;

use common::{build, contents, kvtool, kvtool_json, s, text};

#[test]
fn a_backup_holds_every_write_and_verifies() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("db");
    let dest = d.path().join("backup");
    let model = build(&src);
    let (v, code) = kvtool_json(&["backup", s(&src), s(&dest)]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["verified"]["errors"], 0, "{v:#}");
    assert!(v["files"].as_u64().unwrap() > 2);
    assert_eq!(contents(&dest), model);
    // The source is intact and still opens.
    assert_eq!(contents(&src), model);
}

#[test]
fn later_writes_to_the_source_are_not_in_the_backup() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("db");
    let dest = d.path().join("backup");
    let model = build(&src);
    let (_, _, code) = text(&kvtool(&["backup", s(&src), s(&dest)]));
    assert_eq!(code, 0);
    let db = kv_engine::Db::open(&src, common::tiny_options()).unwrap();
    db.put(kv_engine::Keyspace::DEFAULT, b"after-backup", b"x")
        .unwrap();
    db.close().unwrap();
    assert_eq!(contents(&dest), model);
}

#[test]
fn a_non_empty_destination_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("db");
    let dest = d.path().join("backup");
    build(&src);
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("precious"), "keep me").unwrap();
    let (_, err, code) = text(&kvtool(&["backup", s(&src), s(&dest)]));
    assert_eq!(code, 1);
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dest.join("precious")).unwrap(),
        "keep me"
    );
}

#[test]
fn a_directory_in_use_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("db");
    build(&src);
    let db = kv_engine::Db::open(&src, common::tiny_options()).unwrap();
    let (_, err, code) = text(&kvtool(&["backup", s(&src), s(&d.path().join("b"))]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("in use"), "{err}");
    drop(db);
}

#[test]
fn human_output_says_where_and_whether_verified() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("db");
    build(&src);
    let (out, err, code) = text(&kvtool(&["backup", s(&src), s(&d.path().join("b"))]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Backed up") && out.contains("healthy"),
        "{out}"
    );
}
