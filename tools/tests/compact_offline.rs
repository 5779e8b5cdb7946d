//! `kvtool compact DIR`: everything, one key range, one level; the data is unchanged
//! afterwards and a directory held by a running Db is refused with exit 3.

mod common;

use common::{build, contents, kvtool, kvtool_json, s, text};
use serde_json::Value;

fn level_files(v: &Value, key: &str) -> Vec<(u64, u64)> {
    v["levels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["level"].as_u64().unwrap(), l[key].as_u64().unwrap()))
        .collect()
}

#[test]
fn compacting_everything_empties_l0_and_keeps_the_data() {
    let d = tempfile::tempdir().unwrap();
    let model = build(d.path());
    let (v, code) = kvtool_json(&["compact", s(d.path())]);
    assert_eq!(code, 0, "{v:#}");
    let after = level_files(&v, "files_after");
    assert!(
        after.iter().all(|&(l, n)| l != 0 || n == 0),
        "L0 should be empty: {v:#}"
    );
    let nonempty: Vec<_> = after.iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(nonempty.len(), 1, "all data in one level: {v:#}");
    assert_eq!(
        v["ranges"].as_array().unwrap().len(),
        2,
        "both keyspaces: {v:#}"
    );
    assert!(v["compaction_bytes_written"].as_u64().unwrap() > 0);
    assert_eq!(contents(d.path()), model);
    let (verify, code) = kvtool_json(&["verify", s(d.path())]);
    assert_eq!(code, 0, "{verify:#}");
    assert_eq!(
        verify["summary"]["warnings"], 0,
        "compaction inputs must be deleted: {verify:#}"
    );
}

#[test]
fn a_range_is_compacted_in_its_keyspace() {
    let d = tempfile::tempdir().unwrap();
    let model = build(d.path());
    let (v, code) = kvtool_json(&[
        "compact",
        s(d.path()),
        "--range",
        "user:00100",
        "user:00500",
    ]);
    assert_eq!(code, 0, "{v:#}");
    let ranges = v["ranges"].as_array().unwrap();
    assert_eq!(ranges.len(), 1);
    assert_eq!(ranges[0]["keyspace"], "default");
    assert_eq!(ranges[0]["start"], "user:00100");
    assert_eq!(contents(d.path()), model);
}

#[test]
fn a_level_is_pushed_down() {
    let d = tempfile::tempdir().unwrap();
    let model = build(d.path());
    let (v, code) = kvtool_json(&["compact", s(d.path()), "--level", "0"]);
    assert_eq!(code, 0, "{v:#}");
    let after = level_files(&v, "files_after");
    assert_eq!(
        after.iter().find(|(l, _)| *l == 0).map_or(0, |x| x.1),
        0,
        "{v:#}"
    );
    assert_eq!(contents(d.path()), model);
}

#[test]
fn human_output_shows_levels_before_and_after() {
    let d = tempfile::tempdir().unwrap();
    build(d.path());
    let (out, err, code) = text(&kvtool(&["compact", s(d.path())]));
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("files before") && out.contains("bytes after"),
        "{out}"
    );
}

#[test]
fn an_unknown_keyspace_is_refused() {
    let d = tempfile::tempdir().unwrap();
    build(d.path());
    let (_, err, code) = text(&kvtool(&["compact", s(d.path()), "--keyspace", "nope"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("no keyspace named \"nope\"") && err.contains("hints"),
        "{err}"
    );
}

#[test]
fn a_directory_in_use_is_refused_with_a_clear_message() {
    let d = tempfile::tempdir().unwrap();
    build(d.path());
    let db = kv_engine::Db::open(d.path(), common::tiny_options()).unwrap();
    let (_, err, code) = text(&kvtool(&["compact", s(d.path())]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("in use") && err.contains("--addr"), "{err}");
    drop(db);
}

#[test]
fn a_directory_without_a_database_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let (_, err, code) = text(&kvtool(&["compact", s(d.path())]));
    assert_eq!(code, 1);
    assert!(err.contains("not a kvd data directory"), "{err}");
    assert!(
        std::fs::read_dir(d.path()).unwrap().next().is_none(),
        "nothing created"
    );
}

#[test]
fn an_empty_level_is_nothing_to_do() {
    let d = tempfile::tempdir().unwrap();
    let model = build(d.path());
    let (out, err, code) = text(&kvtool(&["compact", s(d.path()), "--level", "6"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Nothing to compact"), "{out}");
    assert_eq!(contents(d.path()), model);
}
