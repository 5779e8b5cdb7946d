//! The database: the public face of the engine.
//!
//! `Db` is a handle on [`core::Shared`]; the write path is in [`write`], reads in
//! [`read`] and [`iter`], recovery in [`open`], flush/compaction threads in
//! [`background`], consistent copies in [`checkpoint`].

mod background;
mod bg_error;
mod checkpoint;
pub(crate) mod core;
mod iter;
mod open;
#[cfg(test)]
mod order_ahead_tests;
pub(crate) mod pacer;
pub(crate) mod range_tombstones;
mod read;
mod resume;
mod snapshot;
mod stats;
pub(crate) mod table_file;
mod write;

pub(crate) use iter::LevelIterator;
pub use iter::{DbIterator, EntryRef, IterEntry};
pub use snapshot::Snapshot;

use crate::batch::{Keyspace, WriteBatch};
use crate::compaction::picker;
use crate::constants::NUM_LEVELS;
use crate::error::{Error, Result};
use crate::key::SeqNo;
use crate::manifest::{Version, VersionEdit};
use crate::memtable::Memtable;
use crate::options::{FsyncPolicy, Options};
use crate::stats::Stats;
use bytes::Bytes;
use core::Shared;
use parking_lot::Mutex;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

/// A value together with the sequence number of the write that stored it (its version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The stored bytes.
    pub value: Bytes,
    /// Sequence number of the write; only grows, never reused.
    pub seq: SeqNo,
}

/// Stops the background threads when the last handle goes away.
struct Lifecycle {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Lifecycle {
    fn stop(&self) -> Result<()> {
        self.shared.shutting_down.store(true, Ordering::Release);
        {
            let _state = self.shared.state.lock();
            self.shared.bg_cv.notify_all();
        }
        {
            let _g = self.shared.syncer_mutex.lock();
            self.shared.syncer_cv.notify_all();
        }
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
        let mut wal = self.shared.wal.lock();
        wal.writer.sync()?;
        wal.unsynced = false;
        Ok(())
    }
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(error = %e, "closing the database failed to sync the WAL");
        }
    }
}

/// An open database. Cheap to clone; all clones share one engine. Thread-safe.
#[derive(Clone)]
pub struct Db {
    shared: Arc<Shared>,
    lifecycle: Arc<Lifecycle>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.shared.dir)
            .finish_non_exhaustive()
    }
}

fn prefixed(ks: Keyspace, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(ks.id());
    k.extend_from_slice(key);
    k
}

/// Longest key a point read prefixes on the stack instead of in a fresh `Vec`.
const STACK_KEY: usize = 127;

/// Calls `f` with `key` prefixed by its keyspace, without allocating for short keys:
/// every GET goes through here.
fn with_prefixed<R>(ks: Keyspace, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> R {
    if key.len() > STACK_KEY {
        return f(&prefixed(ks, key));
    }
    let mut buf = [0u8; STACK_KEY + 1];
    buf[0] = ks.id();
    buf[1..=key.len()].copy_from_slice(key);
    f(&buf[..=key.len()])
}

impl Db {
    /// Opens (recovering if needed) or creates the database in `dir`.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Db> {
        let shared = open::open_shared(dir.as_ref(), options)?;
        let threads = background::spawn(&shared)?;
        let lifecycle = Arc::new(Lifecycle {
            shared: shared.clone(),
            threads: Mutex::new(threads),
        });
        {
            // Recovery may have left L0 over its trigger.
            let _state = shared.state.lock();
            shared.bg_cv.notify_all();
        }
        Ok(Db { shared, lifecycle })
    }

    /// The keyspace called `name`, created (durably) if it does not exist.
    pub fn keyspace(&self, name: &str) -> Result<Keyspace> {
        let mut state = self.shared.state.lock();
        if let Some((&id, _)) = state
            .versions
            .keyspaces()
            .iter()
            .find(|(_, n)| n.as_str() == name)
        {
            return Ok(Keyspace(id));
        }
        let next = state
            .versions
            .keyspaces()
            .keys()
            .next_back()
            .map_or(Some(0), |&m| m.checked_add(1))
            .filter(|&id| id != range_tombstones::RANGE_TOMBSTONE_KEYSPACE);
        let id =
            next.ok_or_else(|| Error::InvalidArgument("all 255 keyspace ids are in use".into()))?;
        let edit = VersionEdit {
            new_keyspaces: vec![(id, name.to_string())],
            ..VersionEdit::default()
        };
        state.versions.log_and_apply(edit)?;
        Ok(Keyspace(id))
    }

    /// Names of all keyspaces by id.
    pub fn keyspaces(&self) -> Vec<(Keyspace, String)> {
        let state = self.shared.state.lock();
        state
            .versions
            .keyspaces()
            .iter()
            .map(|(&id, n)| (Keyspace(id), n.clone()))
            .collect()
    }

    fn check_open(&self) -> Result<()> {
        if self.shared.shutting_down.load(Ordering::Acquire) {
            return Err(Error::Closed("the database has been closed".into()));
        }
        Ok(())
    }

    /// Applies `batch` atomically; returns the sequence number of its first op (op i has
    /// `first + i`). Durable per the fsync policy when this returns.
    pub fn write(&self, batch: WriteBatch) -> Result<SeqNo> {
        self.check_open()?;
        self.shared.write(Some(batch))
    }

    /// Applies `batch` like [`Db::write`] but leaves its WAL record in the log writer's
    /// buffer: it is visible to readers at once, and reaches the operating system with
    /// the next [`Db::write_out_wal`], non-deferred write, fsync or memtable switch.
    /// For a server that answers in rounds: each client's write is deferred, and
    /// before any reply of the round is sent one `write_out_wal` hands all of them to
    /// the operating system in one system call (Redis writes its AOF buffer once per
    /// event-loop iteration, before the replies, the same way). The caller must call
    /// `write_out_wal` before it answers anyone, not just this writer: a reader may
    /// have seen the value.
    pub fn write_deferred(&self, batch: WriteBatch) -> Result<SeqNo> {
        self.check_open()?;
        self.shared.write_deferred(batch)
    }

    /// Hands every deferred write's WAL record to the operating system; cheap (one
    /// atomic comparison) when there is none. After an error the database refuses
    /// writes (a background error), and nothing written since the last successful
    /// write-out may be acknowledged.
    pub fn write_out_wal(&self) -> Result<()> {
        self.shared.write_out_wal()
    }

    /// Applies `batch` like [`Db::write`] and fsyncs the WAL before returning, whatever
    /// the fsync policy; concurrent callers share one fsync (group commit).
    pub fn write_synced(&self, batch: WriteBatch) -> Result<SeqNo> {
        self.check_open()?;
        self.shared.write_synced(batch)
    }

    /// Sets one key.
    pub fn put(&self, ks: Keyspace, key: &[u8], value: &[u8]) -> Result<SeqNo> {
        let mut b = WriteBatch::new();
        b.put(ks, key, value);
        self.write(b)
    }

    /// Deletes one key.
    pub fn delete(&self, ks: Keyspace, key: &[u8]) -> Result<SeqNo> {
        let mut b = WriteBatch::new();
        b.delete(ks, key);
        self.write(b)
    }

    /// Deletes every key of `ks` in `[start, end)` in O(1) (see [`WriteBatch::delete_range`]).
    pub fn delete_range(&self, ks: Keyspace, start: &[u8], end: &[u8]) -> Result<SeqNo> {
        let mut b = WriteBatch::new();
        b.delete_range(ks, start, end);
        self.write(b)
    }

    /// The newest value of `key` and its version.
    pub fn get(&self, ks: Keyspace, key: &[u8]) -> Result<Option<Versioned>> {
        // Sequence first, then the SuperVersion: the view then holds every write <= seq.
        let seq = self.shared.visible_seq.load(Ordering::Acquire);
        let sv = self.shared.current();
        with_prefixed(ks, key, |k| self.shared.get_internal(&sv, k, seq))
    }

    /// Starts bringing into the CPU cache what point lookups of `keys` (in `ks`) read
    /// first in the memtables, so that lookups made soon after (a pipeline's commands)
    /// overlap their cache misses instead of paying them one after another. Reads
    /// nothing a caller sees; correctness never depends on it.
    pub fn prefetch<'k>(&self, ks: Keyspace, keys: impl Iterator<Item = &'k [u8]>) {
        let sv = self.shared.current();
        let hashes: Vec<u64> = keys
            .map(|k| with_prefixed(ks, k, Memtable::lookup_hash))
            .collect();
        let mems = || std::iter::once(&sv.mem).chain(sv.imms.iter());
        for mem in mems() {
            hashes.iter().for_each(|&h| mem.prefetch_bucket(h));
        }
        for mem in mems() {
            hashes.iter().for_each(|&h| mem.prefetch_node(h));
        }
    }

    /// The value of `key` as seen by `snapshot`.
    pub fn get_at(
        &self,
        ks: Keyspace,
        key: &[u8],
        snapshot: &Snapshot,
    ) -> Result<Option<Versioned>> {
        let sv = self.shared.current();
        with_prefixed(ks, key, |k| {
            self.shared.get_internal(&sv, k, snapshot.sequence())
        })
    }

    /// A snapshot of the current state.
    pub fn snapshot(&self) -> Snapshot {
        let seq = self.shared.visible_seq.load(Ordering::Acquire);
        self.shared.snapshots.acquire(seq)
    }

    /// Iterates keys in `[start, end)` (`None` = unbounded) at `snapshot` (or now).
    pub fn iter(
        &self,
        ks: Keyspace,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
        snapshot: Option<&Snapshot>,
    ) -> Result<DbIterator> {
        let seq = snapshot
            .map(Snapshot::sequence)
            .unwrap_or_else(|| self.shared.visible_seq.load(Ordering::Acquire));
        let sv = self.shared.current();
        DbIterator::new(&self.shared, sv, seq, ks.id(), start, end)
    }

    /// Iterates keys starting with `prefix` at `snapshot` (or now).
    pub fn iter_prefix(
        &self,
        ks: Keyspace,
        prefix: &[u8],
        snapshot: Option<&Snapshot>,
    ) -> Result<DbIterator> {
        let end = iter::prefix_successor(prefix);
        self.iter(ks, Some(prefix), end.as_deref(), snapshot)
    }

    /// Flushes the memtable to an L0 table and waits until every frozen memtable is on disk.
    pub fn flush(&self) -> Result<()> {
        self.check_open()?;
        self.shared.write(None)?;
        let mut state = self.shared.state.lock();
        loop {
            self.shared.check_bg_error(&state)?;
            if state.imms.is_empty() {
                return Ok(());
            }
            // A close() on another handle stops the flush thread: do not wait for it.
            self.check_open()?;
            self.shared.bg_cv.notify_all();
            self.shared.bg_cv.wait(&mut state);
        }
    }

    /// Whether a write of about `bytes` might wait here for more than a WAL append: an
    /// fsync (`FsyncPolicy::Always`), a slowdown (too many L0 files), or a memtable
    /// switch that fsyncs much or waits: the write is large (at least
    /// [`crate::constants::SWITCH_MARGIN_MAX`], or an eighth of a smaller memtable), or
    /// the memtable is within that margin of full while frozen memtables are at their
    /// limit (the switch stops until a flush ends) or under `FsyncPolicy::No` (nothing
    /// synced the old WAL ahead of the switch). A stall can only begin after one of
    /// these thresholds is crossed, so an async caller that runs writes inline only when
    /// this is false parks its thread on the disk only when more than the margin was
    /// written by others between its check and its commit (then for one switch). Cheap:
    /// no lock, one atomic load of the current view.
    ///
    /// Under `everysec` an ordinary switch runs inline: the syncer fsyncs the WAL as the
    /// memtable's last sixteenth begins, so the switch's own fsync covers only what came
    /// after, a millisecond or two. Sending every write of the margin off the async
    /// workers instead made kvd start hundreds of threads around each switch, each
    /// write waiting behind the one switching (docs/performance.md, "Switching memtables
    /// inline").
    ///
    /// Frozen memtables count only at their limit and near a switch: below it a switch
    /// does not wait for them, and before the switch no write does. (Counting one
    /// frozen memtable, as this did until 2026-12, sent every write off kvd's async
    /// workers for the whole of each flush: on one core, SET -P 16 fell from 225k to
    /// 100k ops/s and p99 from 5 to 80 ms after the first switch; docs/performance.md.)
    pub fn write_may_block(&self, bytes: usize) -> bool {
        let opts = &self.shared.opts;
        if opts.fsync == FsyncPolicy::Always {
            return true;
        }
        let sv = self.shared.current();
        let switch_margin = (opts.memtable_size / 8).min(crate::constants::SWITCH_MARGIN_MAX);
        let nearly_full = sv.mem.approximate_bytes() + switch_margin >= opts.memtable_size;
        sv.version.num_files(0) >= opts.l0_slowdown_writes_trigger
            || bytes >= switch_margin
            || (nearly_full
                && (opts.fsync == FsyncPolicy::No
                    || sv.imms.len() >= crate::constants::MAX_IMMUTABLE_MEMTABLES))
    }

    /// Fsyncs the WAL now, whatever the policy.
    pub fn sync_wal(&self) -> Result<()> {
        self.shared.sync_wal()
    }

    /// Compacts every level's files overlapping `[start, end]` of `ks` (None = unbounded)
    /// down to the deepest level that holds data, after flushing the memtable.
    pub fn compact_range(
        &self,
        ks: Keyspace,
        start: Option<&[u8]>,
        end: Option<&[u8]>,
    ) -> Result<()> {
        self.flush()?;
        let lo = prefixed(ks, start.unwrap_or(&[]));
        // Without an end, the next keyspace's prefix bounds this one (inclusive bounds
        // may take in one extra table, which is harmless).
        let hi = match end {
            Some(e) => Some(prefixed(ks, e)),
            None => ks.id().checked_add(1).map(|next| vec![next]),
        };
        let deepest = {
            let v = self.shared.state.lock().versions.current();
            deepest_nonempty_level(&v).max(1)
        };
        for level in 0..deepest {
            let mut state = self.shared.state.lock();
            loop {
                self.shared.check_bg_error(&state)?;
                if !state.busy_levels[level] && !state.busy_levels[level + 1] {
                    break;
                }
                self.check_open()?;
                self.shared.bg_cv.wait(&mut state);
            }
            // The version must not outlive the plan: while held, it keeps the compaction's
            // inputs "live" and they would not be deleted afterwards.
            let plan = {
                let version = state.versions.current();
                picker::plan_for_range(&version, level, Some(&lo), hi.as_deref())
            };
            let Some(plan) = plan else {
                continue;
            };
            state.busy_levels[level] = true;
            state.busy_levels[level + 1] = true;
            let mut state = background::compact(&self.shared, state, &plan);
            state.busy_levels[level] = false;
            state.busy_levels[level + 1] = false;
            self.shared.bg_cv.notify_all();
            self.shared.check_bg_error(&state)?;
        }
        Ok(())
    }

    /// Writes a consistent copy of the database into the new directory `dest` (hard links
    /// for tables where possible), openable with [`Db::open`]. It holds every write
    /// acknowledged before the call.
    pub fn checkpoint(&self, dest: impl AsRef<Path>) -> Result<()> {
        self.flush()?;
        checkpoint::write_checkpoint(&self.shared, dest.as_ref())
    }

    /// Tries now to get past a soft background error, as auto-resume does (also after
    /// auto-resume gave up): `Ok` if no error stands or it was cleared, `Error::Closed`
    /// if the error is fatal, else the error of the failed attempt.
    pub fn resume(&self) -> Result<()> {
        self.check_open()?;
        self.shared.resume_in_queue()
    }

    /// Current statistics.
    pub fn stats(&self) -> Stats {
        stats::gather(&self.shared)
    }

    /// The directory the database lives in.
    pub fn path(&self) -> &Path {
        &self.shared.dir
    }

    /// The last sequence number assigned.
    pub fn latest_sequence(&self) -> SeqNo {
        self.shared.visible_seq.load(Ordering::Acquire)
    }

    /// Flushes and syncs, stops background work and releases the directory lock (once
    /// every clone of this handle is dropped).
    pub fn close(self) -> Result<()> {
        let flushed = if self.shared.state.lock().bg_error.is_none() {
            self.flush()
        } else {
            Ok(())
        };
        let stopped = self.lifecycle.stop();
        flushed.and(stopped)
    }
}

fn deepest_nonempty_level(v: &Version) -> usize {
    (0..NUM_LEVELS)
        .rev()
        .find(|&l| v.num_files(l) > 0)
        .unwrap_or(0)
}
