//! Auto-resume after a soft background error (RocksDB's `ErrorHandler` auto-recovery).
//!
//! A soft error (`db/bg_error.rs`: out of descriptors or space while writing a new
//! file) suspends writes. The `kv-resume` thread waits until the next attempt is due,
//! then queues as a writer; once it leads (so no write is in flight) it redoes what can
//! have failed: switches the memtable if it is full or its switch failed, flushes every
//! immutable memtable, and runs one compaction if one is due. If all of it succeeds the
//! error is cleared and writes flow again, without a restart. If it fails softly again,
//! the attempt is counted and the next waits twice as long (up to
//! `constants::MAX_RESUME_BACKOFF`); after `Options::max_bg_error_resume_count` failed
//! attempts it stops and leaves the error to an operator (`Db::resume`, or a restart).
//! A fatal error is never resumed.

use super::background::{flush_oldest, pick_compaction, try_compact};
use super::bg_error::{Origin, Severity};
use super::core::{Counters, Shared, State};
use crate::error::{Error, Result};
use parking_lot::MutexGuard;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// The `kv-resume` thread: sleeps until a soft error's next attempt is due.
pub(crate) fn resumer(shared: &Arc<Shared>) {
    let max_attempts = shared.opts.max_bg_error_resume_count;
    let mut state = shared.state.lock();
    loop {
        if shared.shutting_down.load(Ordering::Acquire) {
            return;
        }
        let due = state
            .bg_error
            .as_ref()
            .and_then(|e| e.auto_resume_at(max_attempts));
        match due {
            None => shared.bg_cv.wait(&mut state),
            Some(at) if Instant::now() < at => {
                shared.bg_cv.wait_until(&mut state, at);
            }
            Some(_) => {
                drop(state);
                if let Err(e) = shared.resume_in_queue() {
                    tracing::warn!(error = %e, "auto-resume attempt failed");
                }
                state = shared.state.lock();
            }
        }
    }
}

impl Shared {
    /// One resume attempt. Called by the write leader only (`Work::Resume`).
    pub(crate) fn try_resume(self: &Arc<Self>) -> Result<()> {
        let mut state = self.state.lock();
        let origin = match &state.bg_error {
            None => return Ok(()),
            Some(e) if e.severity == Severity::Fatal => {
                return Err(e.refusal(self.opts.max_bg_error_resume_count))
            }
            Some(e) => e.origin,
        };
        Counters::add(&self.counters.resume_attempts, 1);
        // One flush at a time: let a flush that began before the error end first.
        while state.flush_running {
            if self.shutting_down.load(Ordering::Acquire) {
                return Err(Error::Closed("the database is shutting down".into()));
            }
            self.bg_cv.wait(&mut state);
        }
        state.flush_running = true;
        let (mut state, redone) = self.redo_background_work(state, origin);
        state.flush_running = false;
        self.bg_cv.notify_all();
        match redone {
            Ok(()) => {
                // Unless a fatal error arrived meanwhile (the WAL syncer, a compaction).
                if state
                    .bg_error
                    .as_ref()
                    .is_some_and(|e| e.severity == Severity::Soft)
                {
                    state.bg_error = None;
                    Counters::add(&self.counters.resumes, 1);
                    tracing::info!("background error cleared; writes resume");
                }
                self.check_bg_error(&state)
            }
            Err(e) => {
                let interval = self.opts.bg_error_resume_retry_interval;
                let max_attempts = self.opts.max_bg_error_resume_count;
                if let Some(bg) = state
                    .bg_error
                    .as_mut()
                    .filter(|b| b.severity == Severity::Soft)
                {
                    bg.attempt_failed(&e, interval);
                    if bg.auto_resume_at(max_attempts).is_none() {
                        tracing::error!(error = %e, max_attempts, "auto-resume gives up; writes stay suspended until Db::resume or a restart");
                    }
                }
                Err(e)
            }
        }
    }

    /// Switches the memtable if needed, flushes every immutable memtable and runs one
    /// due compaction. A failure is recorded as the background error of its origin (so
    /// a fatal one replaces the soft one) and returned.
    fn redo_background_work<'a>(
        self: &'a Arc<Self>,
        mut state: MutexGuard<'a, State>,
        origin: Origin,
    ) -> (MutexGuard<'a, State>, Result<()>) {
        let full = state.mem.approximate_bytes() >= self.opts.memtable_size;
        if (origin == Origin::NewWal || full) && !state.mem.is_empty() {
            if let Err(e) = self.switch_memtable(&mut state) {
                return (state, Err(e));
            }
        }
        while !state.imms.is_empty() {
            let (s, flushed) = flush_oldest(self, state);
            state = s;
            if let Err(e) = flushed {
                self.set_bg_error(&mut state, Origin::Flush, &e);
                return (state, Err(e));
            }
        }
        if let Some(plan) = pick_compaction(self, &mut state) {
            let (s, compacted) = try_compact(self, state, &plan);
            state = s;
            state.busy_levels[plan.level] = false;
            state.busy_levels[plan.output_level] = false;
            if let Err(e) = compacted {
                if !self.shutting_down.load(Ordering::Acquire) {
                    self.set_bg_error(&mut state, Origin::Compaction, &e);
                }
                return (state, Err(e));
            }
        }
        (state, Ok(()))
    }
}
