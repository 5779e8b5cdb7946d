//! The write path: group commit, backpressure and memtable switches.
//!
//! Writers queue up; the one at the front becomes the leader, takes the batches queued
//! behind it (up to `MAX_GROUP_BYTES`), stamps sequence numbers, appends them as ONE WAL
//! record, fsyncs once if the policy says so, inserts them into the memtable, publishes
//! the new visible sequence and wakes the followers. N concurrent writers thus cost one
//! append and one fsync (LevelDB's `DBImpl::Write`).

use super::core::{Counters, FrozenMemtable, Shared, WalSlot};
use super::range_tombstones::RangeTombstone;
use crate::batch::WriteBatch;
use crate::constants::{MAX_BATCH_BYTES, MAX_GROUP_BYTES, SLOWDOWN_DELAY};
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

/// One queued writer. `batch == None` asks for a memtable switch (manual flush).
pub(crate) struct Slot {
    cv: Condvar,
    data: Mutex<SlotData>,
}

struct SlotData {
    batch: Option<WriteBatch>,
    force_switch: bool,
    result: Option<Result<SeqNo>>,
}

impl Slot {
    fn new(batch: Option<WriteBatch>) -> Arc<Slot> {
        Arc::new(Slot {
            cv: Condvar::new(),
            data: Mutex::new(SlotData {
                force_switch: batch.is_none(),
                batch,
                result: None,
            }),
        })
    }
}

impl Shared {
    /// Commits `batch` (or, with `None`, switches the memtable so it can be flushed).
    /// Returns the sequence number of the batch's first op.
    pub(crate) fn write(&self, batch: Option<WriteBatch>) -> Result<SeqNo> {
        if let Some(b) = &batch {
            if b.encoded_len() > MAX_BATCH_BYTES {
                return Err(Error::InvalidArgument(format!(
                    "write batch of {} bytes exceeds the {MAX_BATCH_BYTES}-byte limit",
                    b.encoded_len()
                )));
            }
        }
        let me = Slot::new(batch);
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
        let (mut group_batch, force_switch) = {
            let mut d = me.data.lock();
            (d.batch.take(), d.force_switch)
        };
        let mut members: Vec<(Arc<Slot>, usize)> = Vec::new();
        if let Some(gb) = group_batch.as_mut() {
            for slot in queue.iter().skip(1) {
                let mut d = slot.data.lock();
                if d.force_switch || gb.encoded_len() >= MAX_GROUP_BYTES {
                    break;
                }
                let Some(b) = d.batch.take() else { break };
                members.push((slot.clone(), gb.len()));
                gb.append(&b);
            }
        }
        drop(queue);

        let result = self.lead(group_batch.as_mut(), force_switch);

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

    /// The leader's work: commits the group, or switches the memtable for a flush.
    ///
    /// A panic in it (a bug, or a file system that panics) would unwind past the code
    /// that pops the leader's slot and wakes the group and the next leader: every later
    /// writer would wait forever. It is caught and becomes an error for the whole group
    /// and a fatal background error: the WAL or the memtable may hold part of the group
    /// (an unacknowledged, invisible part), so nothing more may be written after it.
    fn lead(&self, batch: Option<&mut WriteBatch>, force_switch: bool) -> Result<SeqNo> {
        let work = AssertUnwindSafe(|| match batch {
            Some(gb) => self.commit(gb),
            None if force_switch => self.switch_for_flush(),
            None => Ok(self.visible_seq.load(Ordering::Acquire)),
        });
        std::panic::catch_unwind(work).unwrap_or_else(|payload| {
            let err = Error::Closed(format!(
                "a write panicked, so the database is read-only: {}",
                panic_message(payload.as_ref())
            ));
            let mut state = self.state.lock();
            self.set_bg_error(&mut state, &err);
            Err(err)
        })
    }

    /// Appends a group to the WAL and the memtable. Called by the leader only.
    fn commit(&self, batch: &mut WriteBatch) -> Result<SeqNo> {
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
            let r = wal.writer.add_record(batch.encoded()).and_then(|()| {
                if self.opts.fsync == FsyncPolicy::Always {
                    Counters::add(&self.counters.wal_syncs, 1);
                    wal.writer.sync()
                } else {
                    // Into the OS page cache, so a process crash loses nothing.
                    wal.writer.flush()
                }
            });
            wal.unsynced = self.opts.fsync != FsyncPolicy::Always;
            r
        };
        if let Err(e) = appended {
            // The WAL may now end in a partial record: refuse further writes rather than
            // acknowledge anything after it.
            let mut state = self.state.lock();
            self.set_bg_error(&mut state, &e);
            return Err(e);
        }
        Counters::add(&self.counters.wal_bytes, batch.encoded_len() as u64);
        Counters::add(&self.counters.write_groups, 1);

        apply_to_memtable(&mem, batch, first);
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

    /// Makes sure `last` is covered by a manifest reservation.
    fn reserve_sequences(&self, last: SeqNo) -> Result<()> {
        if last <= self.reserved_seq.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut state = self.state.lock();
        let bound = last.saturating_add(SEQUENCE_RESERVATION).min(MAX_SEQUENCE);
        state.versions.set_last_sequence(bound);
        if let Err(e) = state.versions.log_and_apply(VersionEdit::default()) {
            self.set_bg_error(&mut state, &e);
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
            Shared::check_bg_error(&state)?;
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
                let number = state.versions.new_file_number();
                let path = filename::wal_path(&self.dir, number);
                let created = self
                    .fs
                    .create(&path)
                    .map(|f| LogWriter::new(path.clone(), f));
                let writer = match created {
                    Ok(w) => w,
                    Err(e) => {
                        self.set_bg_error(&mut state, &e);
                        return Err(e);
                    }
                };
                {
                    let mut wal = self.wal.lock();
                    // The old WAL must be complete on disk before the new one receives
                    // anything, whatever the policy: a torn old WAL ending exactly on a
                    // record boundary would look whole, and replay would skip a hole.
                    // One fsync per memtable is cheap.
                    if let Err(e) = wal.writer.sync() {
                        drop(wal);
                        self.set_bg_error(&mut state, &e);
                        return Err(e);
                    }
                    *wal = WalSlot {
                        writer,
                        unsynced: false,
                    };
                }
                if let Err(e) = self.fs.sync_dir(&self.dir) {
                    self.set_bg_error(&mut state, &e);
                    return Err(e);
                }
                let old = std::mem::replace(&mut state.mem, Arc::new(Memtable::new()));
                let old_wal = std::mem::replace(&mut state.mem_wal_number, number);
                state.imms.push_back(FrozenMemtable {
                    mem: old,
                    wal_number: old_wal,
                });
                self.install_super_version(&state);
                self.bg_cv.notify_all();
                return Ok(state.mem.clone());
            }
        }
    }
}

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
