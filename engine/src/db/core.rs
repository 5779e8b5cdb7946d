//! The state shared by a Db's handles and its background threads, and the locks that
//! guard it.
//!
//! Lock order (never take an earlier one while holding a later one):
//! `queue` (write queue) -> `state` -> `wal` -> `super_version`.
//! Readers take only `super_version`, briefly, so they never wait on a manifest fsync.

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
    /// First background error; the Db refuses writes after it.
    pub(crate) bg_error: Option<String>,
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
    pub(crate) flush_bytes: AtomicU64,
    pub(crate) compaction_bytes_written: AtomicU64,
    pub(crate) compaction_bytes_read: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) compactions: AtomicU64,
    pub(crate) stall_slowdowns: AtomicU64,
    pub(crate) stall_stops: AtomicU64,
    pub(crate) stall_micros: AtomicU64,
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
    /// Signalled by the everysec syncer's sleep so shutdown need not wait a second.
    pub(crate) syncer_cv: Condvar,
    pub(crate) syncer_mutex: Mutex<()>,
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

    pub(crate) fn check_bg_error(state: &State) -> crate::Result<()> {
        match &state.bg_error {
            Some(e) => Err(crate::Error::Closed(e.clone())),
            None => Ok(()),
        }
    }

    /// Records the first background error; writes fail from now on.
    pub(crate) fn set_bg_error(&self, state: &mut State, err: &crate::Error) {
        if state.bg_error.is_none() {
            tracing::error!(error = %err, "background error; the database is now read-only");
            state.bg_error = Some(err.to_string());
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
