//! Chooses compactions, as LevelDB/RocksDB leveled compaction does.
//!
//! Each level gets a score: L0 by file count over `l0_compaction_trigger` (every L0 file
//! may overlap every other, so reads pay per file), deeper levels by bytes over their
//! target (`l1_max_bytes * 10^(level-1)`). The highest score >= 1 is compacted into the
//! next level: all of L0, or one file of Ln chosen round-robin, plus every overlapping
//! file of the next level.

use crate::constants::{LEVEL_SIZE_MULTIPLIER, NUM_LEVELS};
use crate::key::user_key;
use crate::manifest::{FileMeta, Version};
use crate::options::Options;
use std::sync::Arc;

/// One compaction to run.
#[derive(Debug, Clone)]
pub(crate) struct CompactionPlan {
    pub(crate) level: usize,
    pub(crate) output_level: usize,
    /// Files of `level`.
    pub(crate) inputs: Vec<Arc<FileMeta>>,
    /// Overlapping files of `output_level`.
    pub(crate) next_inputs: Vec<Arc<FileMeta>>,
    /// No deeper level holds any key of the range: tombstones may be dropped.
    pub(crate) bottommost: bool,
}

impl CompactionPlan {
    /// A single file with nothing below it to merge with can just change level.
    pub(crate) fn is_trivial_move(&self) -> bool {
        self.inputs.len() == 1 && self.next_inputs.is_empty()
    }

    pub(crate) fn input_bytes(&self) -> u64 {
        self.inputs
            .iter()
            .chain(self.next_inputs.iter())
            .map(|f| f.size)
            .sum()
    }
}

/// Target size of `level` (level >= 1).
pub(crate) fn max_bytes_for_level(opts: &Options, level: usize) -> u64 {
    let mut bytes = opts.l1_max_bytes;
    for _ in 1..level {
        bytes = bytes.saturating_mul(LEVEL_SIZE_MULTIPLIER);
    }
    bytes
}

fn score(version: &Version, opts: &Options, level: usize) -> f64 {
    if level == 0 {
        version.num_files(0) as f64 / opts.l0_compaction_trigger.max(1) as f64
    } else {
        version.level_bytes(level) as f64 / max_bytes_for_level(opts, level) as f64
    }
}

/// Bytes that compaction must rewrite before every level is within its target.
pub(crate) fn pending_compaction_bytes(version: &Version, opts: &Options) -> u64 {
    let mut pending = 0;
    if version.num_files(0) >= opts.l0_compaction_trigger {
        pending += version.level_bytes(0);
    }
    for level in 1..NUM_LEVELS - 1 {
        let bytes = version.level_bytes(level);
        let target = max_bytes_for_level(opts, level);
        if bytes > target {
            pending += bytes - target;
        }
    }
    pending
}

/// User-key range covered by `files`.
fn user_range(files: &[Arc<FileMeta>]) -> Option<(Vec<u8>, Vec<u8>)> {
    let smallest = files.iter().map(|f| user_key(&f.smallest)).min()?;
    let largest = files.iter().map(|f| user_key(&f.largest)).max()?;
    Some((smallest.to_vec(), largest.to_vec()))
}

fn plan_with(
    version: &Version,
    level: usize,
    inputs: Vec<Arc<FileMeta>>,
) -> Option<CompactionPlan> {
    let (lo, hi) = user_range(&inputs)?;
    let output_level = level + 1;
    let next_inputs = version.overlapping_files(output_level, Some(&lo), Some(&hi));
    let all: Vec<_> = inputs.iter().chain(next_inputs.iter()).cloned().collect();
    let (lo, hi) = user_range(&all)?;
    let bottommost = (output_level + 1..NUM_LEVELS).all(|l| {
        version
            .overlapping_files(l, Some(&lo), Some(&hi))
            .is_empty()
    });
    Some(CompactionPlan {
        level,
        output_level,
        inputs,
        next_inputs,
        bottommost,
    })
}

/// The most urgent compaction whose levels are not busy, if any level needs one.
/// `pointers[level]` remembers where the last Ln compaction stopped.
pub(crate) fn pick(
    version: &Version,
    opts: &Options,
    busy: &[bool; NUM_LEVELS],
    pointers: &mut [Option<Vec<u8>>],
) -> Option<CompactionPlan> {
    let mut best: Option<(usize, f64)> = None;
    for level in 0..NUM_LEVELS - 1 {
        if busy[level] || busy[level + 1] {
            continue;
        }
        let s = score(version, opts, level);
        if s >= 1.0 && best.is_none_or(|(_, b)| s > b) {
            best = Some((level, s));
        }
    }
    let (level, _) = best?;
    if level == 0 {
        return plan_with(version, 0, version.levels[0].clone());
    }
    let files = &version.levels[level];
    let pointer = pointers.get(level).cloned().flatten();
    let chosen = files
        .iter()
        .find(|f| pointer.as_deref().is_none_or(|p| user_key(&f.smallest) > p))
        .or_else(|| files.first())?
        .clone();
    if let Some(slot) = pointers.get_mut(level) {
        *slot = Some(user_key(&chosen.largest).to_vec());
    }
    plan_with(version, level, vec![chosen])
}

/// A manual compaction of the user-key range `[start, end]` (None = unbounded) from
/// `level` into `level + 1`. All of L0 moves together so that no newer L0 version of a
/// key is left above an older one pushed down.
pub(crate) fn plan_for_range(
    version: &Version,
    level: usize,
    start: Option<&[u8]>,
    end: Option<&[u8]>,
) -> Option<CompactionPlan> {
    if level + 1 >= NUM_LEVELS {
        return None;
    }
    let overlapping = version.overlapping_files(level, start, end);
    if overlapping.is_empty() {
        return None;
    }
    let inputs = if level == 0 {
        version.levels[0].clone()
    } else {
        overlapping
    };
    plan_with(version, level, inputs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{make_internal_key, ValueKind};

    fn file(number: u64, lo: &[u8], hi: &[u8], size: u64) -> Arc<FileMeta> {
        Arc::new(FileMeta {
            number,
            size,
            smallest: make_internal_key(lo, 2, ValueKind::Put),
            largest: make_internal_key(hi, 1, ValueKind::Put),
            smallest_seq: 1,
            largest_seq: 2,
            entries: 1,
            deletions: 0,
        })
    }

    fn version(levels: Vec<Vec<Arc<FileMeta>>>) -> Version {
        let mut all = levels;
        all.resize(NUM_LEVELS, Vec::new());
        Version { levels: all }
    }

    #[test]
    fn l0_over_trigger_compacts_all_l0_with_overlapping_l1() {
        let opts = Options::default();
        let v = version(vec![
            (1..=4).map(|n| file(n, b"b", b"d", 10)).collect(),
            vec![
                file(10, b"a", b"a", 10),
                file(11, b"c", b"c", 10),
                file(12, b"x", b"z", 10),
            ],
        ]);
        let plan = pick(&v, &opts, &[false; NUM_LEVELS], &mut vec![None; NUM_LEVELS]).unwrap();
        assert_eq!(plan.level, 0);
        assert_eq!(plan.inputs.len(), 4);
        assert_eq!(
            plan.next_inputs
                .iter()
                .map(|f| f.number)
                .collect::<Vec<_>>(),
            vec![11]
        );
        assert!(plan.bottommost);
    }

    #[test]
    fn busy_levels_and_small_levels_pick_nothing() {
        let opts = Options::default();
        let v = version(vec![(1..=4).map(|n| file(n, b"b", b"d", 10)).collect()]);
        let mut busy = [false; NUM_LEVELS];
        busy[1] = true;
        assert!(pick(&v, &opts, &busy, &mut vec![None; NUM_LEVELS]).is_none());
        let v = version(vec![vec![file(1, b"a", b"b", 10)]]);
        assert!(pick(&v, &opts, &[false; NUM_LEVELS], &mut vec![None; NUM_LEVELS]).is_none());
    }

    #[test]
    fn oversized_level_rotates_through_its_files() {
        let opts = Options {
            l1_max_bytes: 100,
            ..Options::default()
        };
        let v = version(vec![
            vec![],
            vec![file(1, b"a", b"b", 80), file(2, b"c", b"d", 80)],
            vec![file(3, b"c", b"c", 10)],
        ]);
        let mut pointers = vec![None; NUM_LEVELS];
        let busy = [false; NUM_LEVELS];
        let first = pick(&v, &opts, &busy, &mut pointers).unwrap();
        assert_eq!(first.inputs[0].number, 1);
        assert!(first.is_trivial_move());
        let second = pick(&v, &opts, &busy, &mut pointers).unwrap();
        assert_eq!(second.inputs[0].number, 2);
        assert_eq!(second.next_inputs[0].number, 3);
        assert!(!second.bottommost || second.output_level == 2);
    }
}
