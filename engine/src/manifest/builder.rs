//! Applies a sequence of edits to a version without rebuilding it per edit (recovery
//! replays thousands of them).

use super::edit::{FileMeta, VersionEdit};
use super::version::Version;
use crate::constants::NUM_LEVELS;
use crate::key::compare_internal_keys;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Accumulates edits on top of a base version; [`Self::build`] checks and sorts.
#[derive(Debug, Clone)]
pub struct VersionBuilder {
    /// Per level, files by number.
    levels: Vec<BTreeMap<u64, Arc<FileMeta>>>,
}

impl VersionBuilder {
    /// Starts from `base`.
    pub fn new(base: &Version) -> Self {
        let mut levels = vec![BTreeMap::new(); NUM_LEVELS];
        for (files, level) in base.levels.iter().zip(levels.iter_mut()) {
            level.extend(files.iter().map(|f| (f.number, f.clone())));
        }
        VersionBuilder { levels }
    }

    /// Applies the file changes of `edit`: deletions first, then additions. Deleting a
    /// file that is not in its level, or adding a number already present, is an error.
    pub fn apply(&mut self, edit: &VersionEdit) -> std::result::Result<(), String> {
        for &(level, number) in &edit.deleted_files {
            let files = self.level_mut(level)?;
            if files.remove(&number).is_none() {
                return Err(format!(
                    "edit deletes file {number}, which is not in L{level}"
                ));
            }
        }
        for (level, meta) in &edit.new_files {
            if self.levels.iter().any(|l| l.contains_key(&meta.number)) {
                return Err(format!("edit adds file {} twice", meta.number));
            }
            self.level_mut(*level)?
                .insert(meta.number, Arc::new(meta.clone()));
        }
        Ok(())
    }

    fn level_mut(
        &mut self,
        level: usize,
    ) -> std::result::Result<&mut BTreeMap<u64, Arc<FileMeta>>, String> {
        self.levels
            .get_mut(level)
            .ok_or_else(|| format!("level {level} out of range"))
    }

    /// The resulting version, or what invariant it breaks.
    pub fn build(&self) -> std::result::Result<Version, String> {
        let levels = self
            .levels
            .iter()
            .enumerate()
            .map(|(level, files)| {
                // BTreeMap order is by number: right for L0, sorted by key for L1+.
                let mut files: Vec<_> = files.values().cloned().collect();
                if level > 0 {
                    files.sort_by(|a, b| compare_internal_keys(&a.smallest, &b.smallest));
                }
                files
            })
            .collect();
        let version = Version { levels };
        version.check_invariants()?;
        Ok(version)
    }
}
