//! `kvtool inspect` on single files: a table's layout and bloom filter, a WAL's batches
//! and keys, a MANIFEST's edits.

mod common;

use common::{build, files_ending, kvtool, kvtool_json, s, text};

#[test]
fn a_table_shows_blocks_entries_filter_and_keys() {
    let d = tempfile::tempdir().unwrap();
    build(d.path());
    let sst = files_ending(d.path(), ".sst").pop().unwrap();
    let (v, code) = kvtool_json(&["inspect", s(&sst), "--keys", "--limit", "3"]);
    assert_eq!(code, 0);
    assert!(v["entries"].as_u64().unwrap() > 0);
    assert!(v["data_blocks"].as_u64().unwrap() > 0);
    assert_eq!(
        v["index"].as_array().unwrap().len(),
        3.min(v["data_blocks"].as_u64().unwrap() as usize)
    );
    assert_eq!(
        v["keys"].as_array().unwrap().len(),
        3.min(v["entries"].as_u64().unwrap() as usize)
    );
    assert_eq!(v["restart_interval"], 16);
    assert_eq!(v["bloom_bits_per_key"], 10);
    let fp = v["bloom_false_positive_rate"].as_f64().unwrap();
    assert!(
        fp < 0.05,
        "10 bits/key should give about 1% false positives, got {fp}"
    );
    assert!(v["smallest_key"].as_str().unwrap().contains('@'));

    let (out, _, code) = text(&kvtool(&["inspect", s(&sst)]));
    assert_eq!(code, 0);
    for expected in [
        "data blocks",
        "tombstones",
        "restart interval",
        "compression",
        "bloom false positives",
        "Index",
        "smallest key",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn a_wal_lists_batches_and_with_keys_its_operations() {
    let d = tempfile::tempdir().unwrap();
    build(d.path());
    let wal = files_ending(d.path(), ".log").pop().unwrap();
    let (v, code) = kvtool_json(&["inspect", s(&wal), "--keys", "--limit", "2"]);
    assert_eq!(code, 0);
    assert_eq!(v["batches"], 26);
    let list = v["list"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["keys"][0]["key"], "wal:000");
    assert_eq!(list[0]["keys"][0]["value"], "in-the-wal");
    assert_eq!(list[0]["keys"][0]["keyspace"], "default");
    assert_eq!(
        list[1]["sequence"].as_u64().unwrap(),
        list[0]["sequence"].as_u64().unwrap() + 1
    );

    let (out, _, _) = text(&kvtool(&["inspect", s(&wal), "--keys", "--limit", "1"]));
    assert!(out.contains("put default:wal:000 = in-the-wal"), "{out}");
    assert!(out.contains("25 more batches"), "{out}");
    let (out, _, _) = text(&kvtool(&["inspect", s(&wal), "--keys", "--limit", "100"]));
    assert!(
        out.contains("range-del default:user:00960 .. user:00970 (end excluded)"),
        "{out}"
    );
}

#[test]
fn binary_keys_are_escaped() {
    let d = tempfile::tempdir().unwrap();
    build(d.path());
    // The binary key was flushed; find the table holding it.
    let found = files_ending(d.path(), ".sst").iter().any(|sst| {
        let (out, _, _) = text(&kvtool(&["inspect", s(sst), "--keys", "--limit", "100000"]));
        out.contains("default:bin\\x00\\xff\\n")
    });
    assert!(found, "no table shows the escaped binary key");
}

#[test]
fn a_manifest_lists_its_edits() {
    let d = tempfile::tempdir().unwrap();
    build(d.path());
    let manifest = files_ending(d.path(), "")
        .into_iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("MANIFEST-")
        })
        .unwrap();
    let (v, code) = kvtool_json(&["inspect", s(&manifest)]);
    assert_eq!(code, 0);
    let edits = v["list"].as_array().unwrap();
    assert!(edits.len() > 1);
    assert!(
        edits[0]["summary"]
            .as_str()
            .unwrap()
            .contains("keyspace 0=default"),
        "{v:#}"
    );
    assert!(edits
        .iter()
        .any(|e| e["summary"].as_str().unwrap().contains("+L0")));
}

#[test]
fn other_files_are_refused_with_a_message() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("notes.txt");
    std::fs::write(&f, "hello").unwrap();
    let (_, err, code) = text(&kvtool(&["inspect", s(&f)]));
    assert_eq!(code, 1);
    assert!(err.contains("not a data directory"), "{err}");
}

#[test]
fn a_damaged_table_is_an_error_naming_it_not_a_panic() {
    let d = tempfile::tempdir().unwrap();
    build(d.path());
    let sst = files_ending(d.path(), ".sst").pop().unwrap();
    let mut bytes = std::fs::read(&sst).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff; // the footer's magic
    std::fs::write(&sst, bytes).unwrap();
    let (_, err, code) = text(&kvtool(&["inspect", s(&sst)]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&*sst.file_name().unwrap().to_string_lossy()),
        "{err}"
    );
}
