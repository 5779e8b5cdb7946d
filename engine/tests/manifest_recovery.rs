//! A VersionSet recovered from its MANIFEST is the one that wrote it; damage is reported
//! as corruption naming the file, except a torn tail after the last complete edit.

mod manifest_support;

use kv_engine::filename;
use kv_engine::fs::{Fs, MemFs};
use kv_engine::manifest::{read_current, Version, VersionBuilder, VersionEdit, VersionSet};
use kv_engine::Error;
use manifest_support::*;
use std::sync::Arc;

fn new_db() -> (MemFs, VersionSet) {
    let fs = MemFs::new();
    let set = VersionSet::create(Arc::new(fs.clone()), &db_dir()).unwrap();
    (fs, set)
}

fn recover(fs: &MemFs) -> kv_engine::Result<VersionSet> {
    VersionSet::recover(Arc::new(fs.clone()), &db_dir())
}

fn manifests(fs: &MemFs) -> Vec<String> {
    let mut names: Vec<_> = fs
        .list_dir(&db_dir())
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("MANIFEST-"))
        .collect();
    names.sort();
    names
}

/// A fresh fs holding `fs`'s CURRENT and `manifest` as MANIFEST-000001.
fn copy_with_manifest(fs: &MemFs, manifest: &[u8]) -> MemFs {
    let copy = MemFs::new();
    copy.create_dir_all(&db_dir()).unwrap();
    let current = fs.read_all(&db_dir().join("CURRENT")).unwrap();
    copy.write_all_synced(&db_dir().join("CURRENT"), &current)
        .unwrap();
    copy.write_all_synced(&manifest_path(1), manifest).unwrap();
    copy
}

fn assert_corruption_in(err: Error, file: &str) -> u64 {
    match err {
        Error::Corruption {
            file: f, offset, ..
        } => {
            assert!(f.ends_with(file), "corruption names {f:?}, expected {file}");
            offset
        }
        other => panic!("expected corruption in {file}, got {other}"),
    }
}

#[test]
fn create_writes_manifest_one_and_current() {
    let (fs, set) = new_db();
    assert_eq!(read_current(&fs, &db_dir()).unwrap(), "MANIFEST-000001");
    assert_eq!(set.manifest_file_number(), 1);
    assert_eq!(set.keyspaces().get(&0).map(String::as_str), Some("default"));
    assert_eq!((set.log_number(), set.last_sequence()), (0, 0));
    assert!(set.next_file_number() > 1);
    assert_eq!(manifests(&fs), vec!["MANIFEST-000001"]);
    assert_eq!(state(&recover(&fs).unwrap()), state(&set));
    assert!(matches!(
        VersionSet::create(Arc::new(fs.clone()), &db_dir()),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn recover_restores_version_numbers_and_keyspaces() {
    let (fs, mut set) = new_db();
    apply_some_edits(&mut set, 1);
    apply_some_edits(&mut set, 2);
    let before = state(&set);
    assert_eq!(before.version.num_files(1), 2);
    assert_eq!(before.last_sequence, 220);
    let mut recovered = recover(&fs).unwrap();
    assert_eq!(state(&recovered), before);
    assert_eq!(recovered.manifest_file_number(), 1);

    // The first change after recovery starts a new manifest and retires the old one.
    apply_some_edits(&mut recovered, 3);
    let n = recovered.manifest_file_number();
    assert!(n > 1);
    assert_eq!(manifests(&fs), vec![filename::manifest_name(n)]);
    assert_eq!(
        read_current(&fs, &db_dir()).unwrap(),
        filename::manifest_name(n)
    );
    assert_eq!(state(&recover(&fs).unwrap()), state(&recovered));
}

#[test]
fn file_numbers_are_never_reused_across_recovery() {
    let (fs, mut set) = new_db();
    let allocated = set.new_file_number();
    set.log_and_apply(VersionEdit::default()).unwrap();
    let mut recovered = recover(&fs).unwrap();
    assert!(recovered.new_file_number() > allocated);
    assert!(recovered.next_file_number() > recovered.manifest_file_number());
}

#[test]
fn rollover_switches_current_and_recovery_still_works() {
    let (fs, mut set) = new_db();
    set.set_manifest_rollover_bytes(300);
    let mut seen = vec![set.manifest_file_number()];
    for round in 1..8 {
        apply_some_edits(&mut set, round);
        if seen.last() != Some(&set.manifest_file_number()) {
            seen.push(set.manifest_file_number());
        }
        assert_eq!(manifests(&fs).len(), 1, "old manifests are removed");
        assert_eq!(
            read_current(&fs, &db_dir()).unwrap(),
            filename::manifest_name(set.manifest_file_number())
        );
        assert_eq!(state(&recover(&fs).unwrap()), state(&set));
    }
    assert!(seen.len() > 2, "manifest rolled over: {seen:?}");
}

#[test]
fn invalid_edit_is_refused_and_writes_nothing() {
    let (fs, mut set) = new_db();
    apply_some_edits(&mut set, 1);
    let before = state(&set);
    let len = fs.len_of(&manifest_path(1)).unwrap();
    let bad = [
        VersionEdit {
            deleted_files: vec![(3, 999)],
            ..Default::default()
        },
        VersionEdit {
            // Overlaps the L1 file of round 1.
            new_files: vec![(1, table(500, "0001", "0001"))],
            ..Default::default()
        },
        VersionEdit {
            new_keyspaces: vec![(0, "renamed".into())],
            ..Default::default()
        },
    ];
    for edit in bad {
        assert!(matches!(
            set.log_and_apply(edit),
            Err(Error::InvalidArgument(_))
        ));
    }
    assert_eq!(state(&set), before);
    assert_eq!(fs.len_of(&manifest_path(1)).unwrap(), len);
}

#[test]
fn numbers_in_an_edit_never_go_backwards() {
    let (_fs, mut set) = new_db();
    let e = flush_edit(&mut set, "a", "b", 50);
    set.log_and_apply(e).unwrap();
    let log = set.log_number();
    let next = set.next_file_number();
    set.log_and_apply(VersionEdit {
        log_number: Some(0),
        next_file_number: Some(1),
        last_sequence: Some(1),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        (
            set.log_number(),
            set.next_file_number(),
            set.last_sequence()
        ),
        (log, next, 50)
    );
}

#[test]
fn live_files_include_versions_still_held() {
    let (_fs, mut set) = new_db();
    let e = flush_edit(&mut set, "a", "b", 1);
    set.log_and_apply(e).unwrap();
    let old = set.current();
    let old_file = old.levels[0][0].number;
    let e = compact_edit(&mut set, "a", "b");
    set.log_and_apply(e).unwrap();
    let new_file = set.current().levels[1][0].number;
    let live = set.live_files();
    assert!(live.contains(&old_file) && live.contains(&new_file));
    drop(old);
    let live = set.live_files();
    assert!(!live.contains(&old_file) && live.contains(&new_file));
}

#[test]
fn snapshot_edit_rebuilds_the_current_state() {
    let (_fs, mut set) = new_db();
    apply_some_edits(&mut set, 1);
    apply_some_edits(&mut set, 2);
    let snap = set.snapshot_edit();
    let mut b = VersionBuilder::new(&Version::default());
    b.apply(&snap).unwrap();
    assert_eq!(b.build().unwrap(), *set.current());
    assert_eq!(snap.next_file_number, Some(set.next_file_number()));
    assert_eq!(snap.last_sequence, Some(set.last_sequence()));
    assert_eq!(snap.log_number, Some(set.log_number()));
    assert_eq!(snap.new_keyspaces.len(), set.keyspaces().len());
    assert_eq!(VersionEdit::decode(&snap.encode()), Ok(snap));
}

#[test]
fn missing_or_garbled_current_is_corruption_naming_current() {
    let (fs, _set) = new_db();
    let current = db_dir().join("CURRENT");
    fs.corrupt_byte(&current, 3).unwrap();
    assert_corruption_in(recover(&fs).unwrap_err(), "CURRENT");
    fs.write_all_synced(&current, b"MANIFEST-000009\n").unwrap();
    assert_corruption_in(recover(&fs).unwrap_err(), "MANIFEST-000009");
    fs.remove_file(&current).unwrap();
    assert_corruption_in(recover(&fs).unwrap_err(), "CURRENT");
}

#[test]
fn a_damaged_edit_before_valid_ones_is_corruption_with_offset() {
    let (fs, mut set) = new_db();
    apply_some_edits(&mut set, 1);
    let len = fs.len_of(&manifest_path(1)).unwrap();
    // Every byte of the first (create) record and some later ones.
    let manifest = fs.read_all(&manifest_path(1)).unwrap();
    for at in (0..40).chain((40..len - 60).step_by(13)) {
        let fs2 = copy_with_manifest(&fs, &manifest);
        fs2.corrupt_byte(&manifest_path(1), at).unwrap();
        match recover(&fs2) {
            Err(e) => {
                let offset = assert_corruption_in(e, "MANIFEST-000001");
                assert!(offset <= at as u64 + 7, "flip at {at}, offset {offset}");
            }
            Ok(_) => panic!("flip at {at} recovered"),
        }
    }
}

#[test]
fn a_torn_last_edit_is_dropped_quietly() {
    let (fs, mut set) = new_db();
    apply_some_edits(&mut set, 1);
    let before = state(&set);
    let len_before = fs.len_of(&manifest_path(1)).unwrap();
    let e = flush_edit(&mut set, "x", "y", 999);
    set.log_and_apply(e).unwrap();
    let len_after = fs.len_of(&manifest_path(1)).unwrap();
    for cut in len_before..len_after {
        let fs2 = MemFs::new();
        fs2.create_dir_all(&db_dir()).unwrap();
        let bytes = fs.read_all(&manifest_path(1)).unwrap();
        fs2.write_all_synced(&manifest_path(1), &bytes[..cut])
            .unwrap();
        let current = fs.read_all(&db_dir().join("CURRENT")).unwrap();
        fs2.write_all_synced(&db_dir().join("CURRENT"), &current)
            .unwrap();
        let recovered = recover(&fs2).unwrap();
        assert_eq!(state(&recovered), before, "cut at {cut}");
    }
}

#[test]
fn a_manifest_without_a_complete_edit_is_corruption() {
    let (fs, _set) = new_db();
    fs.truncate(&manifest_path(1), 5).unwrap();
    let offset = assert_corruption_in(recover(&fs).unwrap_err(), "MANIFEST-000001");
    assert_eq!(offset, 0);
}
