//! kvtool's inspectors (`kvtool inspect FILE|DIR`, `kvtool::inspect::run`) on files made
//! of fuzz bytes, written to a temporary directory (kvtool reads real paths).
//!
//! Input: `mode:u8 rest...`. `mode & 3` picks what `rest` is: 0 a `.log`, 1 a `.sst`,
//! 2 a `MANIFEST` (with CURRENT naming it), 3 a whole data directory as
//! `(name_len:u8 name data_len:u32-LE data)*` inspected with `--exact`. `mode & 4`
//! asks for `--json`, `mode & 8` makes the checksums valid first (see `kv_fuzz`).
//! Checked: no panic; a bad file is an error or a report, never a crash.
//!
//! The reports go to stdout: run with `-close_fd_mask=1` to keep them off the terminal.
#![no_main]

use kv_fuzz::{fix_log_checksums, fix_table_checksums};
use kvtool::cli::InspectArgs;
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One scratch directory per process, emptied before every input.
fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary directory"))
        .path()
}

fuzz_target!(|data: &[u8]| {
    let [mode, rest @ ..] = data else {
        return;
    };
    let dir = scratch().join("db");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    let fix = mode & 8 != 0;
    let target = match mode & 3 {
        0 => put(&dir, "000001.log", rest, fix),
        1 => put(&dir, "000002.sst", rest, fix),
        2 => {
            std::fs::write(dir.join("CURRENT"), "MANIFEST-000003\n").expect("write CURRENT");
            put(&dir, "MANIFEST-000003", rest, fix)
        }
        _ => {
            unpack_dir(&dir, rest, fix);
            dir.clone()
        }
    };
    let args = InspectArgs {
        path: target,
        exact: true,
        keys: true,
        limit: None,
        bloom_samples: 16,
    };
    let _ = kvtool::inspect::run(&args, mode & 4 != 0);
});

/// Writes `bytes` as `dir/name`, with valid checksums for its kind if `fix`.
fn put(dir: &Path, name: &str, bytes: &[u8], fix: bool) -> PathBuf {
    let mut bytes = bytes.to_vec();
    if fix {
        if name.ends_with(".sst") {
            fix_table_checksums(&mut bytes);
        } else if name != "CURRENT" {
            fix_log_checksums(&mut bytes);
        }
    }
    let path = dir.join(name);
    // A failed write (an odd packed name) leaves the file missing: also worth inspecting.
    let _ = std::fs::write(&path, bytes);
    path
}

/// Writes the files packed in `packed` into `dir`; a name that is not a plain file name
/// ends the list (the fuzzer must not write outside the scratch directory).
fn unpack_dir(dir: &Path, mut packed: &[u8], fix: bool) {
    while let [name_len, after @ ..] = packed {
        let Some((name, after)) = split(after, *name_len as usize) else {
            return;
        };
        let Some((len, after)) = split(after, 4) else {
            return;
        };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let data = &after[..len.min(after.len())];
        packed = &after[data.len()..];
        let Ok(name) = std::str::from_utf8(name) else {
            return;
        };
        let plain = !name.is_empty() && !name.contains(['/', '\0']) && name != "." && name != "..";
        if !plain {
            return;
        }
        put(dir, name, data, fix);
    }
}

fn split(bytes: &[u8], at: usize) -> Option<(&[u8], &[u8])> {
    (bytes.len() >= at).then(|| bytes.split_at(at))
}
