//! Every tuning constant of the engine, each with the reason for its value.
//! On-disk constants (magic numbers, block sizes of formats) live beside their format
//! but are re-exported here when tuning code needs them.

/// WAL and MANIFEST files are cut into blocks of this size (LevelDB's log format), so a
/// reader can resynchronise after a bad record at the next block boundary.
pub const WAL_BLOCK_SIZE: usize = 32 * 1024;

/// Target size of an SSTable data block before compression: one page-cache friendly read.
pub const SST_BLOCK_SIZE: usize = 4 * 1024;

/// Keys between restart points in a data block: trades prefix-compression ratio
/// against the linear scan a seek does after its binary search (LevelDB's default).
pub const SST_RESTART_INTERVAL: usize = 16;

/// Bloom filter bits per key: about 1% false positives with 7 probes.
pub const BLOOM_BITS_PER_KEY: usize = 10;

/// Memtable size that triggers a switch to a new memtable and a flush (RocksDB's default).
pub const MEMTABLE_SIZE: usize = 64 * 1024 * 1024;

/// Immutable memtables allowed to wait for flush before writers stop; bounds memory to
/// (this + 1) * MEMTABLE_SIZE.
pub const MAX_IMMUTABLE_MEMTABLES: usize = 2;

/// Number of L0 files that triggers an L0 -> L1 compaction.
pub const L0_COMPACTION_TRIGGER: usize = 4;

/// Number of L0 files at which each write is delayed, giving compaction a chance to catch up.
pub const L0_SLOWDOWN_WRITES_TRIGGER: usize = 20;

/// Number of L0 files at which writes stop until compaction reduces L0.
pub const L0_STOP_WRITES_TRIGGER: usize = 36;

/// How long a slowed-down write sleeps (RocksDB uses a rate; a fixed delay is enough here).
pub const SLOWDOWN_DELAY: std::time::Duration = std::time::Duration::from_millis(1);

/// Number of levels, L0..L6 (LevelDB/RocksDB).
pub const NUM_LEVELS: usize = 7;

/// Maximum total bytes of L1; each deeper level may hold LEVEL_SIZE_MULTIPLIER times more.
pub const L1_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// Growth factor between levels: the classic leveled-compaction write/space trade-off.
pub const LEVEL_SIZE_MULTIPLIER: u64 = 10;

/// Compaction output files are cut at this size (RocksDB's target_file_size_base).
pub const TARGET_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Default block cache capacity in bytes.
pub const BLOCK_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// Default `Options::max_open_files`: table readers kept by the table cache, each holding
/// a descriptor, its index and its filter (LevelDB's default).
pub const TABLE_CACHE_CAPACITY: usize = 1000;

/// Descriptors the engine may hold besides cached tables and table writers: the LOCK
/// (1), the old and the new WAL during a memtable switch (2), the MANIFEST, its
/// replacement and CURRENT's temporary file during a rollover (3), a checkpoint copying
/// a table and writing its own MANIFEST and CURRENT (4), and one whole-file read such
/// as CURRENT (1).
pub const FIXED_DESCRIPTORS: usize = 1 + 2 + 3 + 4 + 1;

/// Descriptors held by each thread that writes a table: the table, and the directory
/// while it is fsynced.
pub const DESCRIPTORS_PER_TABLE_WRITER: usize = 2;

/// Threads that write tables besides the compaction threads: the flush thread, the
/// auto-resume thread and one caller running `compact_range`.
pub const OTHER_TABLE_WRITERS: usize = 3;

/// Default `Options::max_bg_error_resume_count`: with the backoff below, about 50
/// minutes of retrying before auto-resume leaves it to an operator.
pub const BG_ERROR_RESUME_COUNT: u32 = 100;

/// Default `Options::bg_error_resume_retry_interval`: the first wait after a soft
/// background error (RocksDB's default); doubled after each failed attempt.
pub const BG_ERROR_RESUME_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// The longest wait between two resume attempts: a freed resource is noticed within
/// this, however long it was missing.
pub const MAX_RESUME_BACKOFF: std::time::Duration = std::time::Duration::from_secs(30);

/// With `FsyncPolicy::EverySec`, the background syncer's period.
pub const EVERYSEC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Largest write batch the WAL accepts; bigger ones are refused rather than buffered.
pub const MAX_BATCH_BYTES: usize = 1 << 30;

/// Group commit: a leader stops adding followers' batches beyond this many bytes so a
/// small write does not wait behind an enormous group (LevelDB uses 1 MiB).
pub const MAX_GROUP_BYTES: usize = 1024 * 1024;

/// `Db::write_may_block` calls a memtable this close to full (or an eighth of it, when
/// smaller) nearly full: a write may then switch it. Two groups' worth: between a
/// writer's check and its commit, about one group of other writers lands per thread
/// writing at once; to switch inline (a few ms on its thread) more than this must.
/// It was an eighth of the memtable (8 MiB of 64) until 2026-12-05: every write of that
/// last eighth left kvd's async worker, and SET throughput fell to a third while it did.
/// Then two groups (2 MiB): with 140-byte INCRs that was still 15k commands each sent
/// off the worker (`block_in_place`), hundreds of threads started for them, and INCR
/// -P 1's p99 at the switch 1.4-1.6 ms against 1.1 with 128 KiB (docs/performance.md,
/// "Background work that yields"). A larger group than this from another thread may
/// now switch inline on an async worker: a few ms once per memtable at most.
pub const SWITCH_MARGIN_MAX: usize = 128 * 1024;

/// Keys queued unordered in the active memtable before the flush thread orders them
/// (db/write.rs, `order_ahead`): each round sorts and links this many, a few ms.
pub const ORDER_AHEAD_KEYS: usize = 32 * 1024;
