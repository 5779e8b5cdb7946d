//! `kvtool inspect DIR` on directories written by the engine: levels, WALs, key counts
//! and per-keyspace figures agree with what was written, and it works while the
//! directory is held by a running Db.

mod common;

use common::{build, kvtool, kvtool_json, s, text};
use kv_engine::Db;

#[test]
fn human_output_shows_levels_wals_keys_and_keyspaces() {
    let d = tempfile::tempdir().unwrap();
    build(d.path());
    let (out, err, code) = text(&kvtool(&["inspect", s(d.path())]));
    assert_eq!(code, 0, "{err}");
    for expected in [
        "Levels",
        "L0",
        "WAL",
        "estimated keys",
        "write amplification",
        "space amplification",
        "default",
        "hints",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn exact_counts_match_what_was_written() {
    let d = tempfile::tempdir().unwrap();
    let model = build(d.path());
    let (v, code) = kvtool_json(&["inspect", "--exact", s(d.path())]);
    assert_eq!(code, 0);
    assert_eq!(v["keys"]["exact"], model.len() as u64, "{v:#}");
    assert_eq!(
        v["keys"]["range_deletes"], 2,
        "one in a table, one in the WAL: {v:#}"
    );
    for ks in v["keyspaces"].as_array().unwrap() {
        let name = ks["name"].as_str().unwrap();
        let want = model.keys().filter(|(n, _)| n == name).count() as u64;
        assert_eq!(ks["exact_keys"], want, "keyspace {name}");
    }
    let live: u64 = model
        .iter()
        .map(|((_, k), v)| (k.len() + v.len()) as u64)
        .sum();
    assert_eq!(v["keys"]["exact_live_bytes"], live);
    let amp = v["amplification"]["space_exact"].as_f64().unwrap();
    assert!(
        amp >= 1.0,
        "stored bytes can never be fewer than live ones: {amp}"
    );
    // Overwrites and deletes leave more entries than keys.
    assert!(v["keys"]["estimated"].as_u64().unwrap() >= model.len() as u64);
}

#[test]
fn levels_and_wals_are_reported() {
    let d = tempfile::tempdir().unwrap();
    build(d.path());
    let (v, _) = kvtool_json(&["inspect", s(d.path())]);
    let levels = v["levels"].as_array().unwrap();
    assert_eq!(levels.len(), 7);
    let tables: u64 = levels.iter().map(|l| l["files"].as_u64().unwrap()).sum();
    assert_eq!(
        tables as usize,
        common::files_ending(d.path(), ".sst").len()
    );
    assert!(
        levels
            .iter()
            .skip(1)
            .any(|l| l["files"].as_u64().unwrap() > 0),
        "compaction should have filled L1+: {v:#}"
    );
    let wals = v["wals"].as_array().unwrap();
    let live: Vec<_> = wals.iter().filter(|w| w["live"] == true).collect();
    assert_eq!(live.len(), 1, "{v:#}");
    assert_eq!(
        live[0]["ops"], 26,
        "the last 25 puts and a range delete were never flushed"
    );
    assert_eq!(live[0]["end"]["state"], "clean");
}

#[test]
fn works_while_the_directory_is_in_use() {
    let d = tempfile::tempdir().unwrap();
    let model = build(d.path());
    let db = Db::open(d.path(), common::tiny_options()).unwrap();
    let (v, code) = kvtool_json(&["inspect", "--exact", s(d.path())]);
    assert_eq!(code, 0);
    assert_eq!(v["keys"]["exact"], model.len() as u64);
    assert_eq!(v["in_use_by_pid"], std::process::id(), "{v:#}");
    drop(db);
    let (v, _) = kvtool_json(&["inspect", s(d.path())]);
    assert_eq!(v["in_use_by_pid"], serde_json::Value::Null);
}

#[test]
fn a_directory_without_a_database_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let (_, err, code) = text(&kvtool(&["inspect", s(d.path())]));
    assert_eq!(code, 1);
    assert!(err.contains("CURRENT"), "{err}");
}
