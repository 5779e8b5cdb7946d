//! The state shared by a Db's handles and its background threads, and the locks that
//! guard it.
//!
//! Lock order (never take an earlier one while holding a later one):
//! `queue` (write queue) -> `state` -> `wal` -> `super_version`.
//! Readers take only `super_version`, briefly, so they never wait on a manifest fsync.

use super::bg_error::{BgError, Origin, Severity};
use super::snapshot::SnapshotList;
use crate::constants::NUM_LEVELS;
use crate::fs::{FileLock, Fs};
use crate::manifest::{Version, VersionSet};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::sst::{BlockCache, SstCounters, TableCache};
use crate::wal::LogWriter;
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// What a read needs, swapped as one unit so a reader sees a consistent set.
pub(crate) struct SuperVersion {
    pub(crate) mem: Arc<Memtable>,
    /// Immutable memtables, newest first.
    pub(crate) imms: Vec<Arc<Memtable>>,
    pub(crate) version: Arc<Version>,
}

/// An immutable memtable waiting for flush, with the WAL that holds its writes.
pub(crate) struct FrozenMemtable {
    pub(crate) mem: Arc<Memtable>,
    pub(crate) wal_number: u64,
}

/// Mutable metadata, guarded by `Shared::state`.
pub(crate) struct State {
    pub(crate) versions: VersionSet,
    pub(crate) mem: Arc<Memtable>,
    pub(crate) mem_wal_number: u64,
    /// Oldest first.
    pub(crate) imms: VecDeque<FrozenMemtable>,
    pub(crate) flush_running: bool,
    /// Levels that a running compaction reads or writes.
    pub(crate) busy_levels: [bool; NUM_LEVELS],
    /// Table numbers being written that are not yet in a version.
    pub(crate) pending_outputs: HashSet<u64>,
    /// The error that stops writes: fatal until reopened, or soft and being retried.
    pub(crate) bg_error: Option<BgError>,
    /// Round-robin position per level for size-triggered compactions (a user key).
    pub(crate) compact_pointer: Vec<Option<Vec<u8>>>,
    /// Background jobs running now.
    pub(crate) running_jobs: usize,
    /// Compactions (background or manual) running now.
    pub(crate) running_compactions: usize,
}

/// The WAL currently receiving writes.
pub(crate) struct WalSlot {
    pub(crate) writer: LogWriter,
    /// Bytes appended since the last fsync.
    pub(crate) unsynced: bool,
}

/// Monotonic counters behind [`crate::Stats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) user_bytes: AtomicU64,
    pub(crate) wal_bytes: AtomicU64,
    pub(crate) write_groups: AtomicU64,
    pub(crate) wal_syncs: AtomicU64,
    pub(crate) wal_syncs_ahead: AtomicU64,
    pub(crate) flush_bytes: AtomicU64,
    pub(crate) compaction_bytes_written: AtomicU64,
    pub(crate) compaction_bytes_read: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) compactions: AtomicU64,
    pub(crate) stall_slowdowns: AtomicU64,
    pub(crate) stall_stops: AtomicU64,
    pub(crate) stall_micros: AtomicU64,
    pub(crate) resume_attempts: AtomicU64,
    pub(crate) resumes: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    pub(crate) opts: Options,
    pub(crate) fs: Arc<dyn Fs>,
    pub(crate) _lock: Box<dyn FileLock>,
    pub(crate) state: Mutex<State>,
    /// Signalled when background work may be needed or has finished.
    pub(crate) bg_cv: Condvar,
    pub(crate) super_version: RwLock<Arc<SuperVersion>>,
    pub(crate) queue: Mutex<VecDeque<Arc<super::write::Slot>>>,
    pub(crate) wal: Mutex<WalSlot>,
    /// Last sequence number assigned (only the commit leader changes it).
    pub(crate) last_seq: AtomicU64,
    /// Last sequence number whose write is fully in the memtable (readers use this).
    pub(crate) visible_seq: AtomicU64,
    /// Last sequence number appended to the WAL writer (changed under the `wal` lock).
    pub(crate) wal_appended: AtomicU64,
    /// Last sequence number handed to the operating system (changed under the `wal`
    /// lock): below `wal_appended` only while a deferred commit's record waits in the
    /// writer's buffer for [`Shared::write_out_wal`].
    pub(crate) wal_written: AtomicU64,
    /// Sequence numbers up to this one are reserved in the manifest, so none is ever
    /// handed out twice even if a crash loses the WAL tail that used them.
    pub(crate) reserved_seq: AtomicU64,
    pub(crate) snapshots: Arc<SnapshotList>,
    pub(crate) range_tombstones: super::range_tombstones::RangeTombstones,
    pub(crate) tables: TableCache,
    pub(crate) block_cache: Option<Arc<BlockCache>>,
    pub(crate) sst_counters: Arc<SstCounters>,
    pub(crate) counters: Counters,
    pub(crate) shutting_down: AtomicBool,
    /// The active memtable has [`crate::constants::ORDER_AHEAD_KEYS`] keys to order and
    /// the flush thread was woken to order them (db/write.rs, `order_ahead`).
    pub(crate) order_requested: AtomicBool,
    /// Signalled by the everysec syncer's sleep so shutdown need not wait a second.
    pub(crate) syncer_cv: Condvar,
    pub(crate) syncer_mutex: Mutex<()>,
    /// The memtable (its address) for which the syncer was last woken early because
    /// it was nearly full ([`Shared::sync_ahead_of_switch`]).
    pub(crate) synced_ahead_for: std::sync::atomic::AtomicUsize,
}

impl Shared {
    pub(crate) fn current(&self) -> Arc<SuperVersion> {
        self.super_version.read().clone()
    }

    /// Publishes a new SuperVersion built from `state`. Call with `state` locked.
    pub(crate) fn install_super_version(&self, state: &State) {
        let sv = SuperVersion {
            mem: state.mem.clone(),
            imms: state.imms.iter().rev().map(|f| f.mem.clone()).collect(),
            version: state.versions.current(),
        };
        *self.super_version.write() = Arc::new(sv);
    }

    /// Refuses writes while a background error stands: `Closed` if it is fatal,
    /// `Suspended` while auto-resume retries a soft one.
    pub(crate) fn check_bg_error(&self, state: &State) -> crate::Result<()> {
        match &state.bg_error {
            Some(e) => Err(e.refusal(self.opts.max_bg_error_resume_count)),
            None => Ok(()),
        }
    }

    /// Records a background error; writes fail from now on. The first error stands,
    /// except that a fatal error replaces a soft one (it must never be resumed past).
    pub(crate) fn set_bg_error(&self, state: &mut State, origin: Origin, err: &crate::Error) {
        let new = BgError::new(origin, err, self.opts.bg_error_resume_retry_interval);
        let replace = match &state.bg_error {
            None => true,
            Some(old) => old.severity == Severity::Soft && new.severity == Severity::Fatal,
        };
        if replace {
            match new.severity {
                Severity::Fatal => {
                    tracing::error!(error = %err, ?origin, "background error; the database is now read-only")
                }
                Severity::Soft => {
                    tracing::warn!(error = %err, ?origin, "background error that can pass; writes are suspended and auto-resume retries")
                }
            }
            state.bg_error = Some(new);
        }
        self.bg_cv.notify_all();
    }

    /// Oldest sequence number a reader may still need.
    pub(crate) fn smallest_snapshot(&self) -> u64 {
        self.snapshots
            .oldest()
            .unwrap_or_else(|| self.visible_seq.load(Ordering::Acquire))
    }
}
