//! How a [`crate::Db`] is opened and tuned. Defaults come from [`crate::constants`].

use crate::constants as c;
use crate::fs::{self, Fs};
use std::sync::Arc;
use std::time::Duration;

/// When an acknowledged write is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Fsync the WAL before acknowledging (group commit shares one fsync among writers).
    Always,
    /// A background thread fsyncs the WAL every second; a crash loses at most ~1 s.
    EverySec,
    /// Never fsync explicitly; the OS decides. A process crash loses nothing, a power cut may.
    No,
}

impl std::str::FromStr for FsyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Ok(FsyncPolicy::Always),
            "everysec" => Ok(FsyncPolicy::EverySec),
            "no" => Ok(FsyncPolicy::No),
            _ => Err(format!("invalid fsync policy '{s}' (always|everysec|no)")),
        }
    }
}

/// Per-block compression of SSTable data blocks. On-disk values; never reuse.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Blocks are stored as built.
    None = 0,
    /// Blocks are LZ4-compressed when that saves at least 1/8 of the block.
    Lz4 = 1,
}

/// What a compaction filter decides for one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterDecision {
    /// Keep the entry.
    Keep,
    /// Drop the entry (it becomes a tombstone if older versions may lie below).
    Remove,
}

/// A hook called by compaction for the newest version of each key that no snapshot
/// still needs; the server uses it to drop expired keys.
pub trait CompactionFilter: Send + Sync {
    /// Decide for `key` (without keyspace prefix) in keyspace `keyspace`.
    fn filter(&self, keyspace: u8, key: &[u8], value: &[u8]) -> FilterDecision;
}

/// Options for [`crate::Db::open`].
#[derive(Clone)]
pub struct Options {
    /// File system to live on (tests inject faults through it).
    pub fs: Arc<dyn Fs>,
    /// Create the directory and an empty database if missing.
    pub create_if_missing: bool,
    /// Fail if the database already exists.
    pub error_if_exists: bool,
    /// WAL durability.
    pub fsync: FsyncPolicy,
    /// Memtable size that triggers a flush.
    pub memtable_size: usize,
    /// Block cache capacity in bytes (0 disables it).
    pub block_cache_bytes: usize,
    /// Bloom filter bits per key (0 disables filters).
    pub bloom_bits_per_key: usize,
    /// Data block compression.
    pub compression: Compression,
    /// Data block target size.
    pub block_size: usize,
    /// L0 files that trigger compaction.
    pub l0_compaction_trigger: usize,
    /// L0 files that slow writes.
    pub l0_slowdown_writes_trigger: usize,
    /// L0 files that stop writes.
    pub l0_stop_writes_trigger: usize,
    /// Max bytes in L1; deeper levels multiply by 10.
    pub l1_max_bytes: u64,
    /// Target size of compaction outputs.
    pub target_file_size: u64,
    /// Background compaction threads.
    pub compaction_threads: usize,
    /// Nice value of the flush and compaction threads (Linux; 0 leaves them at the
    /// process's). A server whose workers fill the cores would otherwise share each
    /// core evenly with a CPU-bound flush or compaction, and every command waiting
    /// behind it pays that thread's whole scheduler slice; at a higher nice the workers
    /// run first and background work takes the idle time. Writes that outrun it still
    /// meet the usual back-pressure (a slowdown at `l0_slowdown_writes_trigger` L0
    /// files, a stop when frozen memtables reach their limit), and while they wait the
    /// background threads have the cores (RocksDB: `Env::LowerThreadPoolCPUPriority`).
    /// Default 0, as RocksDB's: a writer that is itself the bottleneck (a bulk load,
    /// `dbbench`) gets more frozen memtables alive at once when flushes run slower
    /// (1M keys through dbbench: peak RSS 139 -> 207 MiB at nice 10). kvd sets 10.
    pub background_nice: i32,
    /// Optional filter applied during compaction.
    pub compaction_filter: Option<Arc<dyn CompactionFilter>>,
    /// On a WAL record that is bad but followed by good ones (in the same WAL, or a WAL
    /// that ends torn while a later WAL holds records): `false` (default) refuses to open
    /// with `Corruption`; `true` recovers up to the bad record and drops the rest.
    pub wal_point_in_time_recovery: bool,
    /// Tables kept open by the table cache (RocksDB's meaning of `max_open_files`: each
    /// holds one descriptor). The engine's other descriptors come on top: see
    /// [`Options::file_descriptor_budget`].
    pub max_open_files: usize,
    /// After a soft background error (out of descriptors or space while writing a new
    /// file), how many failed attempts auto-resume makes before it stops trying and
    /// leaves the error to an operator ([`crate::Db::resume`] or a restart). 0 disables
    /// auto-resume.
    pub max_bg_error_resume_count: u32,
    /// The wait before the first resume attempt; doubled after each failed one, up to
    /// [`crate::constants::MAX_RESUME_BACKOFF`].
    pub bg_error_resume_retry_interval: Duration,
}

impl Options {
    /// The most file descriptors this Db holds at once. A server sizing its client
    /// limit against `RLIMIT_NOFILE` reserves this many for the engine. It adds up:
    /// - `max_open_files` cached tables;
    /// - the fixed few: LOCK, two WALs during a switch, manifest files, a checkpoint
    ///   ([`crate::constants::FIXED_DESCRIPTORS`]);
    /// - per thread that writes tables (compaction threads, the flush thread,
    ///   auto-resume, one `compact_range` caller): the table and its directory;
    /// - compaction inputs the cache may have evicted while a compaction reads them:
    ///   the one L0 compaction reads all of L0 at once (writes stop at
    ///   `l0_stop_writes_trigger` files; frozen memtables flushed after that, and the
    ///   WALs replayed at open, add at most `2 * (MAX_IMMUTABLE_MEMTABLES + 1)`) plus one
    ///   table of L1; any other compaction reads one table per level at a time, and no
    ///   two compactions share a level, so at most `NUM_LEVELS / 2` run at once.
    ///
    /// Not counted: each live [`crate::DbIterator`] keeps open every L0 table plus one
    /// table per deeper level while it lives, when the cache has evicted them.
    pub fn file_descriptor_budget(&self) -> usize {
        let table_writers = self.compaction_threads.max(1) + c::OTHER_TABLE_WRITERS;
        let compactions = table_writers.min(c::NUM_LEVELS / 2);
        let l0_files = self
            .l0_stop_writes_trigger
            .saturating_add(2 * (c::MAX_IMMUTABLE_MEMTABLES + 1));
        let compaction_inputs = (l0_files + 1).saturating_add(2 * (compactions - 1));
        self.max_open_files
            .saturating_add(c::FIXED_DESCRIPTORS)
            .saturating_add(table_writers.saturating_mul(c::DESCRIPTORS_PER_TABLE_WRITER))
            .saturating_add(compaction_inputs)
    }
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("fsync", &self.fsync)
            .field("memtable_size", &self.memtable_size)
            .field("block_cache_bytes", &self.block_cache_bytes)
            .field("compression", &self.compression)
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            fs: fs::real(),
            create_if_missing: true,
            error_if_exists: false,
            fsync: FsyncPolicy::EverySec,
            memtable_size: c::MEMTABLE_SIZE,
            block_cache_bytes: c::BLOCK_CACHE_BYTES,
            bloom_bits_per_key: c::BLOOM_BITS_PER_KEY,
            compression: Compression::Lz4,
            block_size: c::SST_BLOCK_SIZE,
            l0_compaction_trigger: c::L0_COMPACTION_TRIGGER,
            l0_slowdown_writes_trigger: c::L0_SLOWDOWN_WRITES_TRIGGER,
            l0_stop_writes_trigger: c::L0_STOP_WRITES_TRIGGER,
            l1_max_bytes: c::L1_MAX_BYTES,
            target_file_size: c::TARGET_FILE_SIZE,
            compaction_threads: 1,
            background_nice: 0,
            compaction_filter: None,
            wal_point_in_time_recovery: false,
            max_open_files: c::TABLE_CACHE_CAPACITY,
            max_bg_error_resume_count: c::BG_ERROR_RESUME_COUNT,
            bg_error_resume_retry_interval: c::BG_ERROR_RESUME_INTERVAL,
        }
    }
}
