//! Engine statistics, as reported by [`crate::Db::stats`].

/// Figures for one level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LevelStats {
    /// Level number, 0..NUM_LEVELS.
    pub level: usize,
    /// Live SSTables in the level.
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
}

/// A snapshot of the engine's counters and shape.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// One entry per level.
    pub levels: Vec<LevelStats>,
    /// Bytes in the active and immutable memtables.
    pub memtable_bytes: u64,
    /// Immutable memtables waiting for flush.
    pub immutable_memtables: usize,
    /// Bytes compaction would have to rewrite to bring every level under its target.
    pub pending_compaction_bytes: u64,
    /// Bytes written by users (keys + values) since open.
    pub user_bytes_written: u64,
    /// Bytes appended to the WAL since open.
    pub wal_bytes_written: u64,
    /// Commit groups written to the WAL since open (one append each).
    pub write_groups: u64,
    /// WAL fsyncs since open (with `always`, one per commit group).
    pub wal_syncs: u64,
    /// Times the `everysec` syncer was woken early because the memtable neared full
    /// (once per memtable), so the switch's own fsync finds little left.
    pub wal_syncs_ahead_of_switch: u64,
    /// Bytes written to SSTables by flushes since open.
    pub flush_bytes_written: u64,
    /// Bytes written to SSTables by compactions since open.
    pub compaction_bytes_written: u64,
    /// Bytes read by compactions since open.
    pub compaction_bytes_read: u64,
    /// (WAL + flush + compaction bytes) / user bytes.
    pub write_amplification: f64,
    /// Compactions running now (background or manual).
    pub compactions_running: usize,
    /// Flushes completed since open.
    pub flushes: u64,
    /// Compactions completed since open.
    pub compactions: u64,
    /// Writes that were delayed because L0 or the memtables were full.
    pub stall_slowdowns: u64,
    /// Writes that had to stop and wait.
    pub stall_stops: u64,
    /// Total time writers spent stalled, in microseconds.
    pub stall_micros: u64,
    /// Bloom filter probes.
    pub bloom_checks: u64,
    /// Probes where the filter ruled the key out (a table read saved).
    pub bloom_negatives: u64,
    /// Probes where the filter said "maybe" but the key was not in the table.
    pub bloom_false_positives: u64,
    /// Block cache hits.
    pub block_cache_hits: u64,
    /// Block cache misses.
    pub block_cache_misses: u64,
    /// Bytes held by the block cache.
    pub block_cache_bytes: u64,
    /// Last sequence number assigned.
    pub last_sequence: u64,
    /// Live snapshots.
    pub snapshots: usize,
    /// Range tombstones kept in memory (each `delete_range` adds one).
    pub range_tombstones: usize,
    /// Background error that stops writes, if any.
    pub background_error: Option<String>,
    /// True if that error can pass (out of descriptors or space while writing a new
    /// file): writes are suspended and auto-resume retries. False for a fatal error,
    /// after which the Db stays read-only until reopened.
    pub background_error_retryable: bool,
    /// Resume attempts (automatic or `Db::resume`) since open.
    pub background_error_resume_attempts: u64,
    /// Resume attempts that cleared a background error since open.
    pub background_error_resumes: u64,
}
