//! Gathers [`Stats`] from the live state and the counters.

use super::core::Shared;
use crate::compaction::picker::pending_compaction_bytes;
use crate::constants::NUM_LEVELS;
use crate::stats::{LevelStats, Stats};
use std::sync::atomic::Ordering::Relaxed;

pub(crate) fn gather(shared: &Shared) -> Stats {
    let (version, imms, imm_bytes, bg_error, compactions_running) = {
        let state = shared.state.lock();
        let imm_bytes: usize = state.imms.iter().map(|f| f.mem.approximate_bytes()).sum();
        (
            state.versions.current(),
            state.imms.len(),
            imm_bytes + state.mem.approximate_bytes(),
            state.bg_error.as_ref().map(|e| {
                let retryable = e.severity == super::bg_error::Severity::Soft;
                (e.message.clone(), retryable)
            }),
            state.running_compactions,
        )
    };
    let c = &shared.counters;
    let sc = &shared.sst_counters;
    let user = c.user_bytes.load(Relaxed);
    let wal = c.wal_bytes.load(Relaxed);
    let flush = c.flush_bytes.load(Relaxed);
    let compaction = c.compaction_bytes_written.load(Relaxed);
    Stats {
        levels: (0..NUM_LEVELS)
            .map(|level| LevelStats {
                level,
                files: version.num_files(level),
                bytes: version.level_bytes(level),
            })
            .collect(),
        memtable_bytes: imm_bytes as u64,
        immutable_memtables: imms,
        pending_compaction_bytes: pending_compaction_bytes(&version, &shared.opts),
        user_bytes_written: user,
        wal_bytes_written: wal,
        write_groups: c.write_groups.load(Relaxed),
        wal_syncs: c.wal_syncs.load(Relaxed),
        wal_syncs_ahead_of_switch: c.wal_syncs_ahead.load(Relaxed),
        flush_bytes_written: flush,
        compaction_bytes_written: compaction,
        compaction_bytes_read: c.compaction_bytes_read.load(Relaxed),
        write_amplification: if user == 0 {
            0.0
        } else {
            (wal + flush + compaction) as f64 / user as f64
        },
        compactions_running,
        flushes: c.flushes.load(Relaxed),
        compactions: c.compactions.load(Relaxed),
        stall_slowdowns: c.stall_slowdowns.load(Relaxed),
        stall_stops: c.stall_stops.load(Relaxed),
        stall_micros: c.stall_micros.load(Relaxed),
        bloom_checks: sc.bloom_checks.load(Relaxed),
        bloom_negatives: sc.bloom_negatives.load(Relaxed),
        bloom_false_positives: sc.bloom_false_positives.load(Relaxed),
        block_cache_hits: sc.cache_hits.load(Relaxed),
        block_cache_misses: sc.cache_misses.load(Relaxed),
        block_cache_bytes: shared.block_cache.as_ref().map_or(0, |b| b.usage() as u64),
        last_sequence: shared
            .visible_seq
            .load(std::sync::atomic::Ordering::Acquire),
        snapshots: shared.snapshots.count(),
        range_tombstones: shared.range_tombstones.len(),
        background_error_retryable: bg_error.as_ref().is_some_and(|e| e.1),
        background_error: bg_error.map(|e| e.0),
        background_error_resume_attempts: c.resume_attempts.load(Relaxed),
        background_error_resumes: c.resumes.load(Relaxed),
    }
}
