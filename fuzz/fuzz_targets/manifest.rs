//! The MANIFEST reader and version-edit decoder: `VersionSet::recover` over a MANIFEST
//! of arbitrary bytes (on a MemFs with CURRENT naming it), and `VersionEdit::decode`
//! over every record.
//!
//! Input: the bytes of a `MANIFEST-NNNNNN` file. Read as given, then with every fragment
//! checksum made valid (so mutations reach the edit decoder and the version builder).
//! Checked: no panic; an edit that decodes re-encodes to bytes that decode to the same
//! edit; and a recovered set, written out again by `log_and_apply` (a new manifest
//! with one snapshot edit), recovers to the same files, counters and keyspaces.
#![no_main]

use kv_engine::fs::Fs;
use kv_engine::manifest::{VersionEdit, VersionSet};
use kv_engine::wal;
use kv_fuzz::{mem_file, read_log_both_ways};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| read_log_both_ways(data, read));

fn read(manifest: &[u8]) {
    let dir = Path::new("/db");
    let path = dir.join("MANIFEST-000005");
    let (fs, _) = mem_file(&path, manifest);
    fs.write_all_synced(&dir.join("CURRENT"), b"MANIFEST-000005\n")
        .expect("MemFs stores any bytes");

    let (records, _) = wal::read_all(&fs, &path).expect("MemFs opens what it stored");
    for (_, payload) in &records {
        if let Ok(edit) = VersionEdit::decode(payload) {
            let again = VersionEdit::decode(&edit.encode());
            assert_eq!(
                again.as_ref(),
                Ok(&edit),
                "edit does not survive re-encoding"
            );
        }
    }

    let fs: Arc<dyn Fs> = Arc::new(fs);
    let Ok(mut set) = VersionSet::recover(fs.clone(), dir) else {
        return;
    };
    let before = state(&mut set);
    set.log_and_apply(VersionEdit::default())
        .expect("rewriting a recovered state succeeds on a MemFs");
    drop(set);
    let mut again = VersionSet::recover(fs, dir).expect("a rewritten manifest recovers");
    assert_eq!(
        state(&mut again),
        before,
        "rewrite changed the recovered state"
    );
}

/// What recovery must preserve.
fn state(set: &mut VersionSet) -> (Vec<u64>, u64, u64, Vec<(u8, String)>) {
    let mut files: Vec<u64> = set.live_files().into_iter().collect();
    files.sort_unstable();
    let keyspaces = set.keyspaces().clone().into_iter().collect();
    (files, set.log_number(), set.last_sequence(), keyspaces)
}
