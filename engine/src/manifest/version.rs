//! A version: the immutable set of live SSTables per level at one point in time.
//!
//! L0 files may overlap and are ordered by file number, oldest first (newest last).
//! L1 and deeper are sorted by smallest key and their user-key ranges do not overlap,
//! so at most one file per level can hold a given user key.

use super::edit::FileMeta;
use crate::constants::NUM_LEVELS;
use crate::key::{compare_internal_keys, user_key};
use std::cmp::Ordering;
use std::sync::Arc;

/// The live files of every level. Cheap to share; never changed once built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// `NUM_LEVELS` levels of files (see the module docs for their order).
    pub levels: Vec<Vec<Arc<FileMeta>>>,
}

impl Default for Version {
    fn default() -> Self {
        Version {
            levels: vec![Vec::new(); NUM_LEVELS],
        }
    }
}

impl Version {
    fn level(&self, level: usize) -> &[Arc<FileMeta>] {
        self.levels.get(level).map_or(&[], Vec::as_slice)
    }

    /// Number of files in `level` (0 for a level that does not exist).
    pub fn num_files(&self, level: usize) -> usize {
        self.level(level).len()
    }

    /// Total size of the files in `level`.
    pub fn level_bytes(&self, level: usize) -> u64 {
        self.level(level).iter().map(|f| f.size).sum()
    }

    /// Files in `level` whose user-key range overlaps `[smallest_user, largest_user]`
    /// (user keys, inclusive; `None` = unbounded), in the level's order.
    pub fn overlapping_files(
        &self,
        level: usize,
        smallest_user: Option<&[u8]>,
        largest_user: Option<&[u8]>,
    ) -> Vec<Arc<FileMeta>> {
        self.level(level)
            .iter()
            .filter(|f| {
                let below = largest_user.is_some_and(|hi| user_key(&f.smallest) > hi);
                let above = smallest_user.is_some_and(|lo| user_key(&f.largest) < lo);
                !below && !above
            })
            .cloned()
            .collect()
    }

    /// For L1 and deeper: the one file whose range may contain `user_key` (binary
    /// search). `None` for L0, whose files overlap (use [`Self::overlapping_files`]).
    pub fn file_for_key(&self, level: usize, user_key_wanted: &[u8]) -> Option<Arc<FileMeta>> {
        if level == 0 {
            return None;
        }
        let files = self.level(level);
        let i = files.partition_point(|f| user_key(&f.largest) < user_key_wanted);
        files
            .get(i)
            .filter(|f| user_key(&f.smallest) <= user_key_wanted)
            .cloned()
    }

    /// Checks the level invariants: `NUM_LEVELS` levels; every file has
    /// smallest <= largest; L0 ordered by file number; L1+ sorted by smallest key with
    /// disjoint user-key ranges; no file number twice.
    pub fn check_invariants(&self) -> std::result::Result<(), String> {
        if self.levels.len() != NUM_LEVELS {
            return Err(format!(
                "{} levels, expected {NUM_LEVELS}",
                self.levels.len()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (level, files) in self.levels.iter().enumerate() {
            for f in files {
                if compare_internal_keys(&f.smallest, &f.largest) == Ordering::Greater {
                    return Err(format!("L{level} file {}: smallest > largest", f.number));
                }
                if !seen.insert(f.number) {
                    return Err(format!("file {} appears twice", f.number));
                }
            }
            for pair in files.windows(2) {
                let [a, b] = pair else { continue };
                if level == 0 && a.number >= b.number {
                    return Err(format!(
                        "L0 files {} and {} out of order",
                        a.number, b.number
                    ));
                }
                if level > 0 && user_key(&a.largest) >= user_key(&b.smallest) {
                    return Err(format!(
                        "L{level} files {} and {} overlap or are out of order",
                        a.number, b.number
                    ));
                }
            }
        }
        Ok(())
    }

    /// Numbers of every file in every level.
    pub fn live_file_numbers(&self) -> impl Iterator<Item = u64> + '_ {
        self.levels.iter().flatten().map(|f| f.number)
    }
}
