//! The write path: group commit, backpressure and memtable switches.
//!
//! Writers queue up; the one at the front becomes the leader, takes the batches queued
//! behind it (up to `MAX_GROUP_BYTES`), stamps sequence numbers, appends them as ONE WAL
//! record, fsyncs once if the policy says so, inserts them into the memtable, publishes
//! the new visible sequence and wakes the followers. N concurrent writers thus cost one
//! append and one fsync (LevelDB's `DBImpl::Write`).

use super::bg_error::Origin;
use super::core::{Counters, FrozenMemtable, Shared, State, WalSlot};
use super::range_tombstones::RangeTombstone;
use crate::batch::WriteBatch;
use crate::constants::{MAX_BATCH_BYTES, MAX_GROUP_BYTES, ORDER_AHEAD_KEYS, SLOWDOWN_DELAY};
use crate::error::{Error, Result};
use crate::filename;
use crate::key::{SeqNo, ValueKind, MAX_SEQUENCE};
use crate::manifest::VersionEdit;
use crate::memtable::Memtable;
use crate::options::FsyncPolicy;
use crate::wal::LogWriter;
use parking_lot::{Condvar, Mutex};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Sequence numbers are reserved in the manifest this many at a time: one manifest
/// write per million writes buys the guarantee that none is reused after a crash.
pub(crate) const SEQUENCE_RESERVATION: u64 = 1 << 20;

/// What a queued writer asks the leader (itself, once at the front) to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Work {
    /// Commit its batch, and the batches of the writers queued behind it.
    Commit,
    /// The same, and fsync the WAL before answering whatever the policy (consensus
    /// promises and accepts must be durable before a replica answers): the whole group
    /// shares that one fsync.
    CommitSynced,
    /// Switch the memtable so it can be flushed (a manual flush).
    SwitchForFlush,
    /// Commit its batch but leave the WAL record in the writer's buffer: the caller
    /// hands it to the operating system with `write_out_wal` before it answers anyone
    /// (a server, before it sends the round's replies). The group's other members
    /// decide: one that needs more gets it for all.
    CommitDeferred,
    /// Try to get past a soft background error (`db/resume.rs`): as the leader, it is
    /// the only writer, so it may switch the memtable and flush.
    Resume,
}

/// How far a group's WAL record gets before its writers are answered, the most any
/// member asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Handoff {
    /// Left in the writer's buffer (`Work::CommitDeferred`).
    Buffered,
    /// Handed to the operating system: a process crash loses nothing.
    Written,
    /// Fsynced: a power cut loses nothing.
    Synced,
}

impl Handoff {
    fn of(work: Work) -> Handoff {
        match work {
            Work::CommitDeferred => Handoff::Buffered,
            Work::CommitSynced => Handoff::Synced,
            _ => Handoff::Written,
        }
    }
}

/// One queued writer.
pub(crate) struct Slot {
    cv: Condvar,
    data: Mutex<SlotData>,
}

struct SlotData {
    batch: Option<WriteBatch>,
    work: Work,
    result: Option<Result<SeqNo>>,
}

impl Slot {
    fn new(batch: Option<WriteBatch>, work: Work) -> Arc<Slot> {
        Arc::new(Slot {
            cv: Condvar::new(),
            data: Mutex::new(SlotData {
                batch,
                work,
                result: None,
            }),
        })
    }
}

impl Shared {
    /// Commits `batch` (or, with `None`, switches the memtable so it can be flushed).
    /// Returns the sequence number of the batch's first op.
    pub(crate) fn write(self: &Arc<Self>, batch: Option<WriteBatch>) -> Result<SeqNo> {
        match batch {
            Some(b) => self.commit_queued(b, Work::Commit),
            None => self.run_queued(Slot::new(None, Work::SwitchForFlush)),
        }
    }

    /// Commits `batch` and fsyncs the WAL before returning, whatever the policy; the
    /// fsync is shared with the group it commits in.
    pub(crate) fn write_synced(self: &Arc<Self>, batch: WriteBatch) -> Result<SeqNo> {
        self.commit_queued(batch, Work::CommitSynced)
    }

    /// Commits `batch` leaving its WAL record in the writer's buffer (see
    /// `Work::CommitDeferred`).
    pub(crate) fn write_deferred(self: &Arc<Self>, batch: WriteBatch) -> Result<SeqNo> {
        self.commit_queued(batch, Work::CommitDeferred)
    }

    /// Queues `batch` for `work` (one of the commits), refusing one over the size limit.
    fn commit_queued(self: &Arc<Self>, batch: WriteBatch, work: Work) -> Result<SeqNo> {
        if batch.encoded_len() > MAX_BATCH_BYTES {
            return Err(Error::InvalidArgument(format!(
                "write batch of {} bytes exceeds the {MAX_BATCH_BYTES}-byte limit",
                batch.encoded_len()
            )));
        }
        self.run_queued(Slot::new(Some(batch), work))
    }

    /// Waits its turn in the write queue, then runs a resume attempt as the leader.
    pub(crate) fn resume_in_queue(self: &Arc<Self>) -> Result<()> {
        self.run_queued(Slot::new(None, Work::Resume)).map(|_| ())
    }

    /// Queues `me`; returns its result, set by a leader that took it into its group or
    /// by `me` itself once it reached the front and led.
    fn run_queued(self: &Arc<Self>, me: Arc<Slot>) -> Result<SeqNo> {
        let mut queue = self.queue.lock();
        queue.push_back(me.clone());
        loop {
            if let Some(r) = me.data.lock().result.take() {
                return r;
            }
            if queue.front().is_some_and(|f| Arc::ptr_eq(f, &me)) {
                break;
            }
            me.cv.wait(&mut queue);
        }

        // Leader: gather a group of plain batches behind us.
        let (mut group_batch, work) = {
            let mut d = me.data.lock();
            (d.batch.take(), d.work)
        };
        let mut members: Vec<(Arc<Slot>, usize)> = Vec::new();
        let mut handoff = Handoff::of(work);
        if let Some(gb) = group_batch.as_mut() {
            for slot in queue.iter().skip(1) {
                let mut d = slot.data.lock();
                let commits = matches!(
                    d.work,
                    Work::Commit | Work::CommitSynced | Work::CommitDeferred
                );
                if !commits || gb.encoded_len() >= MAX_GROUP_BYTES {
                    break;
                }
                handoff = handoff.max(Handoff::of(d.work));
                let Some(b) = d.batch.take() else { break };
                members.push((slot.clone(), gb.len()));
                gb.append(&b);
            }
        }
        drop(queue);

        let result = self.lead(group_batch.as_mut(), work, handoff);

        let mut queue = self.queue.lock();
        queue.pop_front();
        for (slot, offset) in &members {
            queue.pop_front();
            let r = match &result {
                Ok(first) => Ok(first + *offset as u64),
                Err(e) => Err(e.duplicate()),
            };
            slot.data.lock().result = Some(r);
            slot.cv.notify_one();
        }
        if let Some(next) = queue.front() {
            next.cv.notify_one();
        }
        result
    }

    /// The leader's work: commits the group, switches the memtable for a flush, or
    /// tries to resume after a soft background error.
    ///
    /// A panic in it (a bug, or a file system that panics) would unwind past the code
    /// that pops the leader's slot and wakes the group and the next leader: every later
    /// writer would wait forever. It is caught and becomes an error for the whole group
    /// and a fatal background error: the WAL or the memtable may hold part of the group
    /// (an unacknowledged, invisible part), so nothing more may be written after it.
    fn lead(
        self: &Arc<Self>,
        batch: Option<&mut WriteBatch>,
        work: Work,
        handoff: Handoff,
    ) -> Result<SeqNo> {
        let visible = || self.visible_seq.load(Ordering::Acquire);
        let run = AssertUnwindSafe(|| match (work, batch) {
            (Work::Resume, _) => self.try_resume().map(|()| visible()),
            (_, Some(gb)) => self.commit(gb, handoff),
            (Work::SwitchForFlush, None) => self.switch_for_flush(),
            (Work::Commit | Work::CommitSynced | Work::CommitDeferred, None) => Ok(visible()),
        });
        std::panic::catch_unwind(run).unwrap_or_else(|payload| {
            let err = Error::Closed(format!(
                "a write panicked, so the database is read-only: {}",
                panic_message(payload.as_ref())
            ));
            let mut state = self.state.lock();
            self.set_bg_error(&mut state, Origin::Panic, &err);
            Err(err)
        })
    }

    /// Appends a group to the WAL (as far as `handoff` says, fsynced if the policy says
    /// so) and the memtable. Called by the leader only.
    fn commit(&self, batch: &mut WriteBatch, handoff: Handoff) -> Result<SeqNo> {
        if batch.is_empty() {
            return Ok(self.visible_seq.load(Ordering::Acquire));
        }
        let mem = self.make_room_for_write(false)?;
        let first = self.last_seq.load(Ordering::Relaxed) + 1;
        let last = first + batch.len() as u64 - 1;
        if last > MAX_SEQUENCE {
            return Err(Error::InvalidArgument("sequence numbers exhausted".into()));
        }
        self.reserve_sequences(last)?;
        batch.set_sequence(first);

        let appended = {
            let mut wal = self.wal.lock();
            let sync = handoff == Handoff::Synced || self.opts.fsync == FsyncPolicy::Always;
            let r = wal.writer.add_record(batch.encoded()).and_then(|()| {
                self.wal_appended.store(last, Ordering::Release);
                let handed = if sync {
                    Counters::add(&self.counters.wal_syncs, 1);
                    wal.writer.sync()
                } else if handoff == Handoff::Written {
                    // Into the OS page cache, so a process crash loses nothing.
                    wal.writer.flush()
                } else {
                    return Ok(()); // the caller writes it out before answering
                };
                handed.map(|()| self.mark_wal_written())
            });
            // A sync covers every record before this one too.
            wal.unsynced = !sync;
            r
        };
        if let Err(e) = appended {
            // The WAL may now end in a partial record: refuse further writes rather than
            // acknowledge anything after it.
            let mut state = self.state.lock();
            self.set_bg_error(&mut state, Origin::Wal, &e);
            return Err(e);
        }
        Counters::add(&self.counters.wal_bytes, batch.encoded_len() as u64);
        Counters::add(&self.counters.write_groups, 1);

        apply_to_memtable(&mem, batch, first);
        self.sync_ahead_of_switch(&mem);
        self.order_ahead(&mem);
        // Range tombstones must be known before the sequence that creates them is visible.
        for (i, op) in batch.ops().enumerate() {
            if op.kind == ValueKind::RangeDelete {
                self.range_tombstones.add(RangeTombstone {
                    keyspace: op.keyspace,
                    start: op.key.to_vec(),
                    end: op.value.to_vec(),
                    seq: first + i as u64,
                });
            }
        }
        let user_bytes: usize = batch.ops().map(|op| op.key.len() + op.value.len()).sum();
        Counters::add(&self.counters.user_bytes, user_bytes as u64);
        self.last_seq.store(last, Ordering::Relaxed);
        self.visible_seq.store(last, Ordering::Release);
        Ok(first)
    }

    /// Wakes the flush thread (once per request) when `mem` holds
    /// [`ORDER_AHEAD_KEYS`] keys not yet in key order, so that it orders them while the
    /// memtable fills rather than all at once when an ordered access needs them: the
    /// flush of a full memtable spent half its time ordering (70 of 150 ms at 300,000
    /// keys), and the next memtable filled meanwhile, so more of it was resident at
    /// once; a first scan after many new keys waited for the same work.
    fn order_ahead(&self, mem: &Memtable) {
        if mem.unordered() >= ORDER_AHEAD_KEYS && !self.order_requested.swap(true, Ordering::AcqRel)
        {
            // Through the state lock, which the flush thread holds from looking for work
            // until it waits: a wakeup sent in between would be lost, and with the
            // request already made none would follow.
            drop(self.state.lock());
            self.bg_cv.notify_all();
        }
    }

    /// Under `everysec`, wakes the syncer once when `mem` comes within
    /// [`SYNC_AHEAD_FRACTION`] of full: the switch that follows fsyncs the old WAL
    /// inline, with the commit leader (and every writer queued behind it) waiting, and
    /// that fsync then covers only what came after this early one, not up to a second
    /// of writes (at 30 MB/s of WAL, tens of milliseconds). The syncer's own fsync
    /// runs beside appends ([`Shared::sync_wal_beside_appends`]).
    fn sync_ahead_of_switch(&self, mem: &Arc<Memtable>) {
        if self.opts.fsync != FsyncPolicy::EverySec {
            return;
        }
        let size = self.opts.memtable_size;
        if mem.approximate_bytes() + size / SYNC_AHEAD_FRACTION < size {
            return;
        }
        let id = Arc::as_ptr(mem) as usize;
        // The load first: every commit of the last sixteenth gets here, and only the
        // first needs to write the shared word.
        if self.synced_ahead_for.load(Ordering::Relaxed) != id
            && self.synced_ahead_for.swap(id, Ordering::Relaxed) != id
        {
            Counters::add(&self.counters.wal_syncs_ahead, 1);
            // A hint: a wakeup lost to the syncer's own timing only delays it to its
            // next round.
            self.syncer_cv.notify_one();
        }
    }

    /// Makes sure `last` is covered by a manifest reservation.
    fn reserve_sequences(&self, last: SeqNo) -> Result<()> {
        if last <= self.reserved_seq.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut state = self.state.lock();
        let bound = last.saturating_add(SEQUENCE_RESERVATION).min(MAX_SEQUENCE);
        state.versions.set_last_sequence(bound);
        if let Err(e) = state.versions.log_and_apply(VersionEdit::default()) {
            self.set_bg_error(&mut state, Origin::SequenceReservation, &e);
            return Err(e);
        }
        self.reserved_seq.store(bound, Ordering::Release);
        Ok(())
    }

    fn switch_for_flush(&self) -> Result<SeqNo> {
        self.make_room_for_write(true)?;
        Ok(self.visible_seq.load(Ordering::Acquire))
    }

    /// Applies backpressure and switches the memtable when it is full (or `force`d and
    /// not empty). Returns the memtable to write into. Called by the leader only.
    fn make_room_for_write(&self, force: bool) -> Result<Arc<Memtable>> {
        let mut allow_delay = !force;
        let mut state = self.state.lock();
        loop {
            self.check_bg_error(&state)?;
            if self.shutting_down.load(Ordering::Acquire) {
                // Background threads are stopping: a stalled writer would wait forever.
                return Err(Error::Closed("the database is shutting down".into()));
            }
            let l0_files = state.versions.current().num_files(0);
            if allow_delay && l0_files >= self.opts.l0_slowdown_writes_trigger {
                // Give compaction a little room once per write, as LevelDB does.
                drop(state);
                let start = Instant::now();
                std::thread::sleep(SLOWDOWN_DELAY);
                Counters::add(&self.counters.stall_slowdowns, 1);
                Counters::add(
                    &self.counters.stall_micros,
                    start.elapsed().as_micros() as u64,
                );
                allow_delay = false;
                state = self.state.lock();
            } else if (!force && state.mem.approximate_bytes() < self.opts.memtable_size)
                || (force && state.mem.is_empty())
            {
                return Ok(state.mem.clone());
            } else if state.imms.len() >= crate::constants::MAX_IMMUTABLE_MEMTABLES
                || l0_files >= self.opts.l0_stop_writes_trigger
            {
                let start = Instant::now();
                Counters::add(&self.counters.stall_stops, 1);
                tracing::warn!(
                    immutable_memtables = state.imms.len(),
                    l0_files,
                    "write stall: waiting for flush/compaction"
                );
                self.bg_cv.notify_all();
                self.bg_cv.wait(&mut state);
                Counters::add(
                    &self.counters.stall_micros,
                    start.elapsed().as_micros() as u64,
                );
            } else {
                self.switch_memtable(&mut state)?;
                return Ok(state.mem.clone());
            }
        }
    }

    /// Freezes the memtable and makes a new WAL the target of appends. Called by the
    /// leader only, with `state` locked.
    ///
    /// The new WAL is created and its directory entry made durable, then the old WAL is
    /// fsynced (whatever the policy: one fsync per memtable is cheap), and only then does
    /// the new WAL become the target. So a failure changes nothing but an empty file
    /// (a soft error can simply be retried), and no WAL ever receives a record while an
    /// older one is incomplete on disk: recovery relies on that to tell a torn older WAL
    /// (damage) from a crash (`db/open.rs`).
    pub(crate) fn switch_memtable(&self, state: &mut State) -> Result<()> {
        let number = state.versions.new_file_number();
        let path = filename::wal_path(&self.dir, number);
        let created = self
            .fs
            .create(&path)
            .map(|f| LogWriter::new(path.clone(), f))
            .and_then(|w| self.fs.sync_dir(&self.dir).map(|()| w));
        let writer = match created {
            Ok(w) => w,
            Err(e) => {
                // Best effort: an empty WAL left behind is replayed as nothing.
                let _ = self.fs.remove_file(&path);
                self.set_bg_error(state, Origin::NewWal, &e);
                return Err(e);
            }
        };
        {
            let mut wal = self.wal.lock();
            if let Err(e) = wal.writer.sync() {
                drop(wal);
                self.set_bg_error(state, Origin::Wal, &e);
                return Err(e);
            }
            *wal = WalSlot {
                writer,
                unsynced: false,
            };
        }
        let old = std::mem::replace(
            &mut state.mem,
            Arc::new(Memtable::sized(self.opts.memtable_size)),
        );
        let old_wal = std::mem::replace(&mut state.mem_wal_number, number);
        state.imms.push_back(FrozenMemtable {
            mem: old,
            wal_number: old_wal,
        });
        self.install_super_version(state);
        self.bg_cv.notify_all();
        Ok(())
    }
}

/// The share of a memtable left when the WAL is fsynced ahead of the switch (1/16: 4 MiB
/// of a 64 MiB memtable).
const SYNC_AHEAD_FRACTION: usize = 16;

/// The text of a panic's payload (`panic!` with a literal or with a format string).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic without a message)")
}

/// Inserts `batch` into `mem`, op i at sequence `first + i`; returns the last sequence
/// used (`first - 1` for an empty batch). Shared by commits and WAL replay.
pub(crate) fn apply_to_memtable(mem: &Memtable, batch: &WriteBatch, first: SeqNo) -> SeqNo {
    let mut seq = first;
    let mut ukey = Vec::new();
    for op in batch.ops() {
        if op.kind == ValueKind::RangeDelete {
            let record = RangeTombstone::record_key(op.keyspace, seq, op.key);
            mem.add(seq, ValueKind::Put, &record, op.value);
        } else {
            ukey.clear();
            ukey.push(op.keyspace);
            ukey.extend_from_slice(op.key);
            mem.add(seq, op.kind, &ukey, op.value);
        }
        seq += 1;
    }
    seq - 1
}
