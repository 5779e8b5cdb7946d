//! The clean-stop marker `<dir>/cluster/clean-stop` (docs/format/cluster-layout.md): the
//! server writes it after the engine closed (everything flushed and synced), and a
//! starting node takes it away before it accepts anything. A start without it, by a node
//! that existed before, follows a crash (kill -9, power cut): under `appendfsync
//! everysec` the node may have lost acknowledged writes and must catch up
//! (crate::catch_up) before its reads count again.

use crate::atomic_file::{sync_parent_dir, write_atomically};
use std::io;
use std::path::Path;

/// The marker's file name inside the cluster directory.
pub const CLEAN_STOP_FILE: &str = "clean-stop";

/// Whether the last stop of the node whose cluster directory is `dir` was clean, and
/// removes the marker durably, so that a crash from now on reads as unclean. Call before
/// the node serves anything.
pub fn take_clean_stop(dir: &Path) -> io::Result<bool> {
    let path = dir.join(CLEAN_STOP_FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => {
            sync_parent_dir(&path)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("cannot remove {}: {e}", path.display()),
        )),
    }
}

/// Records a clean stop of the node whose data directory is `data_dir`. Call only after
/// the engine was closed: the marker promises that every acknowledged write is on disk.
pub fn mark_clean_stop(data_dir: &Path) -> io::Result<()> {
    let dir = super::identity::cluster_dir(data_dir);
    if !dir.is_dir() {
        return Ok(()); // not a cluster node (or never started as one)
    }
    write_atomically(&dir.join(CLEAN_STOP_FILE), b"{\"format\":1}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_taken_once() {
        let data = tempfile::tempdir().unwrap();
        let dir = super::super::identity::cluster_dir(data.path());
        std::fs::create_dir_all(&dir).unwrap();
        assert!(!take_clean_stop(&dir).unwrap(), "no marker: unclean");
        mark_clean_stop(data.path()).unwrap();
        assert!(take_clean_stop(&dir).unwrap());
        assert!(
            !take_clean_stop(&dir).unwrap(),
            "a crash after start is unclean"
        );
    }

    #[test]
    fn a_directory_that_never_was_a_node_gets_no_marker() {
        let data = tempfile::tempdir().unwrap();
        mark_clean_stop(data.path()).unwrap();
        assert!(!super::super::identity::cluster_dir(data.path()).exists());
    }
}
