//! Power cuts and failed fsyncs around `log_and_apply`: an acknowledged edit survives,
//! a failed one changes nothing in memory and is not needed after a restart.

mod manifest_support;

use kv_engine::fs::{CrashMode, FaultFs, Fs, MemFs};
use kv_engine::manifest::{VersionEdit, VersionSet};
use manifest_support::*;
use std::sync::Arc;

fn recover(fs: &MemFs) -> VersionSet {
    VersionSet::recover(Arc::new(fs.clone()), &db_dir()).unwrap()
}

#[test]
fn acknowledged_edits_survive_a_power_cut() {
    for rollover_bytes in [u64::MAX, 250] {
        let fs = MemFs::new();
        let mut set = VersionSet::create(Arc::new(fs.clone()), &db_dir()).unwrap();
        set.set_manifest_rollover_bytes(rollover_bytes);
        for round in 1..8 {
            apply_some_edits(&mut set, round);
            let expected = state(&set);
            fs.crash(CrashMode::DropUnsynced);
            // Keep going on the recovered set: each round recovers the previous recovery.
            set = recover(&fs);
            assert_eq!(state(&set), expected, "round {round}");
            set.set_manifest_rollover_bytes(rollover_bytes);
        }
    }
}

#[test]
fn power_cut_right_after_create_keeps_the_database() {
    let fs = MemFs::new();
    let set = VersionSet::create(Arc::new(fs.clone()), &db_dir()).unwrap();
    fs.crash(CrashMode::DropUnsynced);
    assert_eq!(state(&recover(&fs)), state(&set));
}

/// Fails fsyncs during one `log_and_apply` (appending, or rolling over when
/// `rollover_bytes` is small) and checks nothing changed, before and after a power cut;
/// then heals and checks the set works again.
fn failed_sync_changes_nothing(rollover_bytes: u64) {
    let mem = MemFs::new();
    let (fault, switch) = FaultFs::new(Arc::new(mem.clone()));
    let mut set = VersionSet::create(Arc::new(fault), &db_dir()).unwrap();
    apply_some_edits(&mut set, 1);
    set.set_manifest_rollover_bytes(rollover_bytes);
    let before = state(&set);
    let manifest_before = set.manifest_file_number();

    switch.fail_syncs(true);
    let e = flush_edit(&mut set, "q", "r", 500);
    assert!(set.log_and_apply(e).is_err());
    let mut after = state(&set);
    // The flush allocated numbers and raised the sequence in memory before the failure.
    assert_eq!(after.next_file_number, before.next_file_number + 2);
    assert_eq!(after.last_sequence, 500);
    after.next_file_number = before.next_file_number;
    after.last_sequence = before.last_sequence;
    assert_eq!(after, before, "in-memory state unchanged");
    assert_eq!(set.manifest_file_number(), manifest_before);

    // What is on disk after a power cut is the state before the failed edit.
    let cut = mem.clone();
    cut.crash(CrashMode::DropUnsynced);
    let recovered = recover(&cut);
    assert_eq!(recovered.current().levels, before.version.levels);
    assert_eq!(recovered.log_number(), before.log_number);

    switch.heal();
    let e = flush_edit(&mut set, "s", "t", 600);
    set.log_and_apply(e).unwrap();
    assert_ne!(
        set.manifest_file_number(),
        manifest_before,
        "a new manifest was started"
    );
    let expected = state(&set);
    mem.crash(CrashMode::DropUnsynced);
    assert_eq!(state(&recover(&mem)), expected);
}

#[test]
fn failed_sync_on_append_changes_nothing() {
    failed_sync_changes_nothing(u64::MAX);
}

#[test]
fn failed_sync_on_rollover_changes_nothing() {
    failed_sync_changes_nothing(1);
}

#[test]
fn failed_write_changes_nothing() {
    let mem = MemFs::new();
    let (fault, switch) = FaultFs::new(Arc::new(mem.clone()));
    let mut set = VersionSet::create(Arc::new(fault), &db_dir()).unwrap();
    apply_some_edits(&mut set, 1);
    let before = state(&set);
    // A torn append: part of the record reaches the file.
    switch.fail_after_bytes(10);
    assert!(set
        .log_and_apply(VersionEdit {
            new_keyspaces: vec![(77, "x".into())],
            ..Default::default()
        })
        .is_err());
    assert_eq!(state(&set), before);
    switch.heal();
    assert_eq!(
        state(&recover(&mem)),
        before,
        "the torn record is a torn tail"
    );
    set.log_and_apply(VersionEdit::default()).unwrap();
    assert_eq!(state(&recover(&mem)), state(&set));
    assert!(mem.exists(&db_dir().join("CURRENT")));
}
