//! Checkpoints: a consistent copy of the live tables plus a fresh manifest that
//! describes exactly them, in a new directory.
//!
//! The caller flushes first, so every write acknowledged before the checkpoint began is
//! in a table. The version captured afterwards holds every flushed memtable, and
//! memtables are flushed in order, so it is a prefix of history: all writes up to some
//! sequence, none after.

use super::core::Shared;
use crate::error::{Error, Result};
use crate::filename;
use crate::manifest::VersionSet;
use std::path::Path;

pub(crate) fn write_checkpoint(shared: &Shared, dest: &Path) -> Result<()> {
    let fs = shared.fs.as_ref();
    fs.create_empty_dir(dest).map_err(|e| match e {
        Error::InvalidArgument(why) => {
            Error::InvalidArgument(format!("checkpoint destination {why}"))
        }
        other => other,
    })?;
    // Hold the state lock only to capture the version and its description; the Arc keeps
    // its tables from being deleted while we link them.
    let (version, mut edit) = {
        let state = shared.state.lock();
        (state.versions.current(), state.versions.snapshot_edit())
    };
    for files in &version.levels {
        for f in files {
            fs.link_or_copy(
                &filename::table_path(&shared.dir, f.number),
                &filename::table_path(dest, f.number),
            )?;
        }
    }
    // No WAL is needed: the checkpoint's data is all in tables.
    edit.log_number = Some(0);
    let mut versions = VersionSet::create(shared.fs.clone(), dest)?;
    versions.log_and_apply(edit)?;
    fs.sync_dir(dest)?;
    drop(version);
    Ok(())
}
