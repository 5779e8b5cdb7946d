//! Background work: flushing immutable memtables to L0, leveled compaction, deleting
//! files no version needs, and the once-a-second WAL fsync of the `everysec` policy.

use super::bg_error::Origin;
use super::core::{Counters, Shared, State};
use super::table_file::write_table;
use crate::compaction::job::{self, SnapshotBounds};
use crate::compaction::picker::{self, CompactionPlan};
use crate::constants::EVERYSEC_INTERVAL;
use crate::error::Result;
use crate::filename::{self, FileKind};
use crate::manifest::VersionEdit;
use crate::memtable::Memtable;
use crate::options::FsyncPolicy;
use parking_lot::MutexGuard;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

enum Job {
    Flush,
    Compact(CompactionPlan),
    /// Put the active memtable's queued keys in key order (db/write.rs, `order_ahead`).
    Order(Arc<Memtable>),
}

/// Which jobs a background thread takes: one thread flushes, the others compact
/// (RocksDB's HIGH and LOW pools), so a flush, which writers wait for once frozen
/// memtables reach their limit, never waits behind a long compaction. Both run at
/// [`crate::Options::background_nice`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Flush,
    Compact,
}

/// Starts the flush/compaction workers, the auto-resume thread and, for `everysec`,
/// the WAL syncer.
pub(crate) fn spawn(shared: &Arc<Shared>) -> Result<Vec<JoinHandle<()>>> {
    let mut handles = Vec::new();
    let roles = std::iter::once((Role::Flush, "kv-flush".to_string())).chain(
        (1..=shared.opts.compaction_threads.max(1))
            .map(|i| (Role::Compact, format!("kv-compact-{i}"))),
    );
    for (role, name) in roles {
        let s = shared.clone();
        let h = std::thread::Builder::new()
            .name(name)
            .spawn(move || worker(&s, role))
            .map_err(|e| crate::Error::io(&shared.dir, e))?;
        handles.push(h);
    }
    {
        let s = shared.clone();
        let h = std::thread::Builder::new()
            .name("kv-resume".into())
            .spawn(move || super::resume::resumer(&s))
            .map_err(|e| crate::Error::io(&shared.dir, e))?;
        handles.push(h);
    }
    if shared.opts.fsync == FsyncPolicy::EverySec {
        let s = shared.clone();
        let h = std::thread::Builder::new()
            .name("kv-wal-sync".into())
            .spawn(move || syncer(&s))
            .map_err(|e| crate::Error::io(&shared.dir, e))?;
        handles.push(h);
    }
    Ok(handles)
}

fn worker(shared: &Arc<Shared>, role: Role) {
    lower_priority(shared.opts.background_nice);
    let mut state = shared.state.lock();
    loop {
        if shared.shutting_down.load(Ordering::Acquire) {
            return;
        }
        match next_job(shared, &mut state, role) {
            Some(job) => {
                // A flush or compaction frees its buffers; ordering allocates none.
                let frees = !matches!(job, Job::Order(_));
                state.running_jobs += 1;
                state = run_job(shared, state, job);
                state.running_jobs -= 1;
                shared.bg_cv.notify_all();
                if frees {
                    MutexGuard::unlocked(&mut state, return_free_memory);
                }
            }
            None => shared.bg_cv.wait(&mut state),
        }
    }
}

/// Hands the C allocator's free pages back to the kernel after a flush or compaction.
/// glibc's malloc keeps what a thread freed in that thread's arena, and it only maps
/// large blocks directly until the first of them is freed (then its threshold rises):
/// the buffers of one job (a table's filter and index, read blocks) stayed resident
/// after it, in each background thread's arena, for the next job to reuse
/// (docs/performance.md, "Where the engine's peak RSS goes"). A program that brings its
/// own allocator (kvd links mimalloc) loses nothing: glibc then holds little to trim.
fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Raises the calling thread's nice value to `nice` (on Linux a nice value is per
/// thread); a thread already at that nice or above (a server started under `nice`) is
/// left alone. Failure only costs the priority: the thread runs at the process's.
fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain system calls on the calling thread; no memory is passed.
        let tid = unsafe { libc::gettid() } as libc::id_t;
        // SAFETY: as above. -1 is also a valid nice value, which then simply compares.
        let current = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) };
        if current >= nice {
            return;
        }
        // SAFETY: as above.
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) } != 0 {
            let error = std::io::Error::last_os_error();
            tracing::debug!(nice, %error, "background thread keeps its priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

fn next_job(shared: &Shared, state: &mut State, role: Role) -> Option<Job> {
    if state.bg_error.is_some() {
        return None;
    }
    match role {
        Role::Flush if !state.flush_running && !state.imms.is_empty() => {
            state.flush_running = true;
            Some(Job::Flush)
        }
        // Between flushes, the flush thread orders the active memtable when writers
        // asked for it; a frozen memtable waiting for flush comes first.
        Role::Flush if shared.order_requested.swap(false, Ordering::AcqRel) => {
            Some(Job::Order(state.mem.clone()))
        }
        Role::Flush => None,
        Role::Compact => pick_compaction(shared, state).map(Job::Compact),
    }
}

/// The compaction most needed now, its levels marked busy; `None` if none is due.
pub(crate) fn pick_compaction(shared: &Shared, state: &mut State) -> Option<CompactionPlan> {
    let version = state.versions.current();
    let plan = picker::pick(
        &version,
        &shared.opts,
        &state.busy_levels,
        &mut state.compact_pointer,
    )?;
    state.busy_levels[plan.level] = true;
    state.busy_levels[plan.output_level] = true;
    Some(plan)
}

fn run_job<'a>(
    shared: &'a Arc<Shared>,
    state: MutexGuard<'a, State>,
    job: Job,
) -> MutexGuard<'a, State> {
    match job {
        Job::Flush => {
            let (mut state, flushed) = flush_oldest(shared, state);
            state.flush_running = false;
            if let Err(e) = flushed {
                shared.set_bg_error(&mut state, Origin::Flush, &e);
            }
            state
        }
        Job::Order(mem) => {
            let mut state = state;
            MutexGuard::unlocked(&mut state, || mem.order_queued());
            state
        }
        Job::Compact(plan) => {
            let mut state = compact(shared, state, &plan);
            state.busy_levels[plan.level] = false;
            state.busy_levels[plan.output_level] = false;
            state
        }
    }
}

/// Writes the oldest immutable memtable to an L0 table and drops its WAL from the
/// recovery set. The caller owns `flush_running` and decides what an error means.
pub(crate) fn flush_oldest<'a>(
    shared: &'a Arc<Shared>,
    mut state: MutexGuard<'a, State>,
) -> (MutexGuard<'a, State>, Result<()>) {
    let Some(frozen) = state.imms.front() else {
        return (state, Ok(()));
    };
    let mem = frozen.mem.clone();
    let number = state.versions.new_file_number();
    state.pending_outputs.insert(number);
    drop(state);

    let mut iter = mem.iter();
    // The table's directory entry must be durable before the manifest names it.
    let built = write_table(
        shared.fs.as_ref(),
        &shared.dir,
        &shared.opts,
        number,
        &mut iter,
    )
    .and_then(|meta| shared.fs.sync_dir(&shared.dir).map(|()| meta));

    let mut state = shared.state.lock();
    state.pending_outputs.remove(&number);
    let meta = match built {
        Ok(m) => m,
        Err(e) => return (state, Err(e)),
    };
    let next_wal = state
        .imms
        .get(1)
        .map(|f| f.wal_number)
        .unwrap_or(state.mem_wal_number);
    let mut edit = VersionEdit {
        log_number: Some(next_wal),
        ..VersionEdit::default()
    };
    if let Some(meta) = meta {
        Counters::add(&shared.counters.flush_bytes, meta.size);
        edit.new_files.push((0, meta));
    }
    if let Err(e) = state.versions.log_and_apply(edit) {
        return (state, Err(e));
    }
    state.imms.pop_front();
    Counters::add(&shared.counters.flushes, 1);
    shared.install_super_version(&state);
    delete_obsolete_files(shared, &mut state);
    (state, Ok(()))
}

/// Runs `plan` (levels already marked busy) and installs its result; a failure becomes
/// the background error (unless the Db is shutting down, which interrupts compactions).
pub(crate) fn compact<'a>(
    shared: &'a Arc<Shared>,
    state: MutexGuard<'a, State>,
    plan: &CompactionPlan,
) -> MutexGuard<'a, State> {
    let (mut state, result) = try_compact(shared, state, plan);
    if let Err(e) = result {
        if !shared.shutting_down.load(Ordering::Acquire) {
            shared.set_bg_error(&mut state, Origin::Compaction, &e);
        }
    }
    state
}

/// Runs `plan` (levels already marked busy) and installs its result.
pub(crate) fn try_compact<'a>(
    shared: &'a Arc<Shared>,
    mut state: MutexGuard<'a, State>,
    plan: &CompactionPlan,
) -> (MutexGuard<'a, State>, Result<()>) {
    state.running_compactions += 1;
    let (mut state, result) = run_compaction(shared, state, plan);
    state.running_compactions -= 1;
    (state, result)
}

fn run_compaction<'a>(
    shared: &'a Arc<Shared>,
    mut state: MutexGuard<'a, State>,
    plan: &CompactionPlan,
) -> (MutexGuard<'a, State>, Result<()>) {
    let mut edit = VersionEdit::default();
    for f in &plan.inputs {
        edit.deleted_files.push((plan.level, f.number));
    }
    for f in &plan.next_inputs {
        edit.deleted_files.push((plan.output_level, f.number));
    }

    if plan.is_trivial_move() {
        for f in &plan.inputs {
            edit.new_files.push((plan.output_level, (**f).clone()));
        }
    } else {
        let bounds = SnapshotBounds {
            smallest: shared.smallest_snapshot(),
            newest: shared.snapshots.newest(),
        };
        let mut allocated = Vec::new();
        drop(state);
        let result = {
            let mut new_number = || {
                let mut st = shared.state.lock();
                let n = st.versions.new_file_number();
                st.pending_outputs.insert(n);
                allocated.push(n);
                n
            };
            job::run(shared, plan, &bounds, &mut new_number)
                .and_then(|outputs| shared.fs.sync_dir(&shared.dir).map(|()| outputs))
        };
        state = shared.state.lock();
        for n in &allocated {
            state.pending_outputs.remove(n);
        }
        match result {
            Ok(outputs) => {
                let written: u64 = outputs.iter().map(|f| f.size).sum();
                Counters::add(&shared.counters.compaction_bytes_written, written);
                Counters::add(&shared.counters.compaction_bytes_read, plan.input_bytes());
                for meta in outputs {
                    edit.new_files.push((plan.output_level, meta));
                }
            }
            Err(e) => {
                // Removes the partial outputs.
                delete_obsolete_files(shared, &mut state);
                return (state, Err(e));
            }
        }
    }
    if let Err(e) = state.versions.log_and_apply(edit) {
        return (state, Err(e));
    }
    Counters::add(&shared.counters.compactions, 1);
    shared.install_super_version(&state);
    delete_obsolete_files(shared, &mut state);
    (state, Ok(()))
}

/// Deletes tables no live version references, WALs already flushed, old manifests and
/// leftover temporary files. Failures are logged, not fatal: a stray file wastes space,
/// it does not lose data.
pub(crate) fn delete_obsolete_files(shared: &Shared, state: &mut State) {
    let names = match shared.fs.list_dir(&shared.dir) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list data directory for cleanup");
            return;
        }
    };
    let live = state.versions.live_files();
    let log_number = state.versions.log_number();
    let manifest = state.versions.manifest_file_number();
    for name in names {
        let obsolete = match filename::parse(&name) {
            Some(FileKind::Wal(n)) => n < log_number,
            Some(FileKind::Table(n)) => !live.contains(&n) && !state.pending_outputs.contains(&n),
            Some(FileKind::Manifest(n)) => n < manifest,
            Some(FileKind::Temp(n)) => !state.pending_outputs.contains(&n),
            _ => false,
        };
        if !obsolete {
            continue;
        }
        if let Some(FileKind::Table(n)) = filename::parse(&name) {
            shared.tables.evict(n);
        }
        if let Err(e) = shared.fs.remove_file(&shared.dir.join(&name)) {
            tracing::warn!(file = %name, error = %e, "cannot delete obsolete file");
        }
    }
}

/// The `everysec` policy: fsync the WAL once a second if anything was appended.
fn syncer(shared: &Arc<Shared>) {
    loop {
        {
            let mut guard = shared.syncer_mutex.lock();
            if shared.shutting_down.load(Ordering::Acquire) {
                return;
            }
            shared.syncer_cv.wait_for(&mut guard, EVERYSEC_INTERVAL);
        }
        if shared.shutting_down.load(Ordering::Acquire) {
            return;
        }
        if let Err(e) = shared.sync_wal_beside_appends() {
            let mut state = shared.state.lock();
            shared.set_bg_error(&mut state, Origin::Wal, &e);
        }
    }
}

impl Shared {
    /// Fsyncs the current WAL if it holds unsynced bytes.
    pub(crate) fn sync_wal(&self) -> Result<()> {
        let mut wal = self.wal.lock();
        if wal.unsynced {
            Counters::add(&self.counters.wal_syncs, 1);
            wal.writer.sync()?;
            wal.unsynced = false;
            self.mark_wal_written();
        }
        Ok(())
    }

    /// [`Shared::sync_wal`] for the `everysec` syncer: the records are handed to the
    /// operating system under the WAL lock, but the fsync runs after it is released,
    /// through a second handle of the file, so commits go on appending during the
    /// fsync instead of waiting for it (an fsync of a second of writes takes tens of
    /// milliseconds). A memtable switch meanwhile still fsyncs the old WAL itself under
    /// the lock, so no record of the old WAL can be left unsynced by this one's timing.
    pub(crate) fn sync_wal_beside_appends(&self) -> Result<()> {
        let (handle, flushed_upto) = {
            let mut wal = self.wal.lock();
            if !wal.unsynced {
                return Ok(());
            }
            let Some(handle) = wal.writer.flush_for_sync()? else {
                drop(wal);
                return self.sync_wal();
            };
            self.mark_wal_written();
            (handle, self.wal_appended.load(Ordering::Acquire))
        };
        Counters::add(&self.counters.wal_syncs, 1);
        handle.sync()?;
        // `unsynced` stays set until the fsync is done, so a `sync_wal` meanwhile (which
        // promises durability when it returns) does not take it as done already; and it
        // is cleared only if nothing was appended since the flush.
        let mut wal = self.wal.lock();
        if self.wal_appended.load(Ordering::Acquire) == flushed_upto {
            wal.unsynced = false;
        }
        Ok(())
    }

    /// Notes that every record appended so far was handed to the operating system (the
    /// caller holds the `wal` lock and has just flushed or synced the writer).
    pub(crate) fn mark_wal_written(&self) {
        let appended = self.wal_appended.load(Ordering::Relaxed);
        self.wal_written.store(appended, Ordering::Release);
    }

    /// Hands the records deferred commits left in the WAL writer's buffer to the
    /// operating system (one `write` for all of them), so that a process crash loses
    /// none of them. Nothing to do, and no lock taken, if no commit deferred. A failure
    /// is a background error, as a failed append is: the WAL may end in a partial
    /// record.
    pub(crate) fn write_out_wal(&self) -> Result<()> {
        if self.wal_written.load(Ordering::Acquire) >= self.wal_appended.load(Ordering::Acquire) {
            return Ok(());
        }
        let flushed = {
            let mut wal = self.wal.lock();
            let r = wal.writer.flush();
            if r.is_ok() {
                self.mark_wal_written();
            }
            r
        };
        if let Err(e) = &flushed {
            let mut state = self.state.lock();
            self.set_bg_error(&mut state, Origin::Wal, e);
        }
        flushed
    }
}
