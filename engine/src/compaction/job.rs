//! Runs one compaction: merges the input tables and writes new ones at the output level.
//!
//! Per user key, versions arrive newest first. An entry is dropped when a newer entry of
//! the same key is already visible to every live snapshot (nobody can read it), and a
//! tombstone is dropped when it is visible to every snapshot and no deeper level may hold
//! the key (LevelDB's rules). The compaction filter sees the newest entry of each key when
//! no snapshot can see it; "remove" turns it into a tombstone so older versions below
//! cannot resurface. Outputs are cut only between user keys, so a key's versions never
//! straddle two tables of one level.

use super::picker::CompactionPlan;
use crate::db::core::Shared;
use crate::db::pacer::Pacer;
use crate::db::range_tombstones::RANGE_TOMBSTONE_KEYSPACE;
use crate::db::table_file::{finish_table, new_table_builder};
use crate::db::LevelIterator;
use crate::error::{Error, Result};
use crate::iter::{InternalIterator, MergingIterator};
use crate::key::{make_internal_key, ParsedKey, SeqNo, ValueKind};
use crate::manifest::FileMeta;
use crate::options::FilterDecision;
use crate::sst::{CacheFill, TableBuilder};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Snapshot bounds a compaction must respect.
pub(crate) struct SnapshotBounds {
    /// Oldest sequence a reader may still read at (last sequence if no snapshot).
    pub(crate) smallest: SeqNo,
    /// Newest live snapshot, if any.
    pub(crate) newest: Option<SeqNo>,
}

/// The plan's inputs as one merged iterator. L0 files overlap, so each is a source of
/// its own and all are open at once; the files of a deeper level are sorted and
/// disjoint, so a [`LevelIterator`] opens them one at a time. A compaction therefore
/// holds open, besides the table cache, at most all of L0 plus one table of the output
/// level (`Options::file_descriptor_budget` counts on it).
fn inputs_iterator(shared: &Arc<Shared>, plan: &CompactionPlan) -> Result<MergingIterator> {
    let mut children: Vec<Box<dyn InternalIterator>> = Vec::new();
    if plan.level == 0 {
        for f in &plan.inputs {
            children.push(Box::new(
                shared.tables.get(f.number)?.iter_with(CacheFill::Skip),
            ));
        }
    } else {
        children.push(Box::new(LevelIterator::new(
            shared.clone(),
            plan.inputs.clone(),
            CacheFill::Skip,
        )));
    }
    if !plan.next_inputs.is_empty() {
        children.push(Box::new(LevelIterator::new(
            shared.clone(),
            plan.next_inputs.clone(),
            CacheFill::Skip,
        )));
    }
    Ok(MergingIterator::new(children))
}

/// Merges the plan's inputs into new tables; returns their metadata. `new_number`
/// allocates file numbers (and registers them as pending outputs).
pub(crate) fn run(
    shared: &Arc<Shared>,
    plan: &CompactionPlan,
    snapshots: &SnapshotBounds,
    new_number: &mut dyn FnMut() -> u64,
) -> Result<Vec<FileMeta>> {
    let mut input = inputs_iterator(shared, plan)?;
    input.seek_to_first();
    let filter = shared.opts.compaction_filter.clone();
    let tombstones = shared.range_tombstones.view();
    let mut outputs = Vec::new();
    let mut builder: Option<(u64, TableBuilder)> = None;
    let mut current_key: Option<Vec<u8>> = None;
    let mut last_seq_for_key = SeqNo::MAX;
    let mut rewritten_key = Vec::new();
    let mut pacer = Pacer::new();

    while input.valid() {
        pacer.step();
        if shared.shutting_down.load(Ordering::Acquire) {
            return Err(Error::Closed("compaction interrupted by shutdown".into()));
        }
        let ikey = input.key();
        let parsed = ParsedKey::parse(ikey).ok_or_else(|| {
            Error::corruption(&shared.dir, 0, "table entry shorter than its trailer")
        })?;
        let first_of_key = current_key.as_deref() != Some(parsed.user_key);
        if first_of_key {
            if let Some((_, b)) = &builder {
                if b.estimated_size() >= shared.opts.target_file_size {
                    if let Some((number, b)) = builder.take() {
                        outputs.push(finish_table(b, number)?);
                    }
                }
            }
            current_key = Some(parsed.user_key.to_vec());
            last_seq_for_key = SeqNo::MAX;
        }

        let mut kind = parsed.value_kind();
        let mut value = input.value();
        let (&ks, key) = parsed.user_key.split_first().unwrap_or((&0, &[]));
        // Hidden from every reader: by a newer version of the key, or by a range delete
        // that every snapshot sees.
        let drop = if last_seq_for_key <= snapshots.smallest
            || tombstones.covers(ks, key, parsed.seq, snapshots.smallest)
        {
            true
        } else {
            if first_of_key
                && kind == Some(ValueKind::Put)
                && snapshots.newest.is_none_or(|s| parsed.seq > s)
            {
                if let (Some(f), false) = (&filter, ks == RANGE_TOMBSTONE_KEYSPACE) {
                    if f.filter(ks, key, value) == FilterDecision::Remove {
                        kind = Some(ValueKind::Delete);
                        value = &[];
                    }
                }
            }
            kind == Some(ValueKind::Delete) && parsed.seq <= snapshots.smallest && plan.bottommost
        };
        last_seq_for_key = parsed.seq;

        if !drop {
            if builder.is_none() {
                let number = new_number();
                builder = Some((number, new_table_builder(shared, number)?));
            }
            if let Some((_, b)) = builder.as_mut() {
                if kind.map(|k| k as u8) == Some(parsed.kind) {
                    b.add(ikey, value)?;
                } else {
                    rewritten_key =
                        make_internal_key(parsed.user_key, parsed.seq, ValueKind::Delete);
                    b.add(&rewritten_key, value)?;
                }
            }
        }
        input.next();
    }
    input.status()?;
    drop(rewritten_key);
    if let Some((number, b)) = builder.take() {
        outputs.push(finish_table(b, number)?);
    }
    Ok(outputs)
}
