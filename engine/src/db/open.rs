//! Opening a data directory: take the lock, recover the manifest, replay the WALs it
//! does not cover into L0 tables, start a fresh WAL, and reserve sequence numbers.
//!
//! WAL replay stops at the first bad record. A bad record with nothing valid after it is
//! the torn tail of a crash: normal, recovered silently up to the last whole batch. A bad
//! record followed by good ones means acknowledged data would be skipped, so `open`
//! refuses with `Corruption` naming the file and offset, unless
//! `Options::wal_point_in_time_recovery` accepts losing the rest.
//!
//! The live WALs are read as one log, oldest first: a WAL that ends torn while a later
//! WAL holds a record is damage, not a crash (the memtable switch fsyncs the old WAL
//! before the new one receives anything, under every fsync policy), and is refused the
//! same way. Later WALs that hold no record (a crash during `open` leaves an empty one)
//! are not data, so a torn WAL before them is an ordinary torn tail. A WAL cut exactly
//! at a record boundary looks whole, but the sequence numbers give it away: every
//! record of the live WALs starts where the one before ended (they are all from the
//! session since the last open, whose commits take consecutive sequences), so a gap
//! is refused too.

use super::core::{Counters, FrozenMemtable, Shared, State, WalSlot};
use super::range_tombstones::{RangeTombstone, RANGE_TOMBSTONE_KEYSPACE};
use super::snapshot::SnapshotList;
use super::table_file::write_table;
use super::write::{apply_to_memtable, SEQUENCE_RESERVATION};
use crate::batch::WriteBatch;
use crate::constants::NUM_LEVELS;
use crate::error::{Error, Result};
use crate::filename::{self, FileKind};
use crate::manifest::{VersionEdit, VersionSet};
use crate::memtable::Memtable;
use crate::options::Options;
use crate::sst::{BlockCache, SstCounters, TableCache};
use crate::wal::{LogReader, LogWriter, ReadEnd};
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

/// Opens or creates the database in `dir`; the returned Shared has no threads yet.
pub(crate) fn open_shared(dir: &Path, opts: Options) -> Result<Arc<Shared>> {
    let fs = opts.fs.clone();
    if !fs.exists(dir) && !opts.create_if_missing {
        return Err(Error::InvalidArgument(format!(
            "{} does not exist (create_if_missing is off)",
            dir.display()
        )));
    }
    fs.create_dir_all(dir)?;
    let lock = fs.lock(&dir.join(filename::LOCK))?;

    let mut versions = if fs.exists(&dir.join(filename::CURRENT)) {
        if opts.error_if_exists {
            return Err(Error::InvalidArgument(format!(
                "{} already holds a database",
                dir.display()
            )));
        }
        VersionSet::recover(fs.clone(), dir)?
    } else {
        if !opts.create_if_missing {
            return Err(Error::InvalidArgument(format!(
                "{} holds no database",
                dir.display()
            )));
        }
        let created = VersionSet::create(fs.clone(), dir)?;
        fs.sync_dir(dir)?;
        created
    };

    check_manifest_against_files(dir, &opts, &versions)?;
    let mut edit = VersionEdit::default();
    let mut max_seq = versions.last_sequence();
    replay_wals(dir, &opts, &mut versions, &mut edit, &mut max_seq)?;

    let wal_number = versions.new_file_number();
    let wal_path = filename::wal_path(dir, wal_number);
    let writer = LogWriter::new(wal_path.clone(), fs.create(&wal_path)?);
    fs.sync_dir(dir)?;
    let reserved = max_seq.saturating_add(SEQUENCE_RESERVATION);
    versions.set_last_sequence(reserved);
    edit.log_number = Some(wal_number);
    versions.log_and_apply(edit)?;

    let block_cache = (opts.block_cache_bytes > 0).then(|| BlockCache::new(opts.block_cache_bytes));
    let sst_counters = Arc::new(SstCounters::default());
    let tables = TableCache::new(
        fs.clone(),
        dir.to_path_buf(),
        opts.max_open_files,
        block_cache.clone(),
        sst_counters.clone(),
    );
    let mem = Arc::new(Memtable::sized(opts.memtable_size));
    let state = State {
        versions,
        mem,
        mem_wal_number: wal_number,
        imms: VecDeque::<FrozenMemtable>::new(),
        flush_running: false,
        busy_levels: [false; NUM_LEVELS],
        pending_outputs: HashSet::new(),
        bg_error: None,
        compact_pointer: vec![None; NUM_LEVELS],
        running_jobs: 0,
        running_compactions: 0,
    };
    let sv = super::core::SuperVersion {
        mem: state.mem.clone(),
        imms: Vec::new(),
        version: state.versions.current(),
    };
    let shared = Arc::new(Shared {
        dir: dir.to_path_buf(),
        fs,
        _lock: lock,
        state: Mutex::new(state),
        bg_cv: Condvar::new(),
        super_version: RwLock::new(Arc::new(sv)),
        queue: Mutex::new(VecDeque::new()),
        wal: Mutex::new(WalSlot {
            writer,
            unsynced: false,
        }),
        last_seq: AtomicU64::new(max_seq),
        visible_seq: AtomicU64::new(max_seq),
        wal_appended: AtomicU64::new(max_seq),
        wal_written: AtomicU64::new(max_seq),
        reserved_seq: AtomicU64::new(reserved),
        snapshots: Arc::new(SnapshotList::default()),
        range_tombstones: Default::default(),
        tables,
        block_cache,
        sst_counters,
        counters: Counters::default(),
        shutting_down: AtomicBool::new(false),
        order_requested: AtomicBool::new(false),
        syncer_cv: Condvar::new(),
        synced_ahead_for: std::sync::atomic::AtomicUsize::new(0),
        syncer_mutex: Mutex::new(()),
        opts,
    });
    {
        let mut state = shared.state.lock();
        super::background::delete_obsolete_files(&shared, &mut state);
    }
    load_range_tombstones(&shared)?;
    Ok(shared)
}

/// Refuses to open when the manifest and the directory disagree in ways only lost data
/// explains:
/// - a table the manifest names is missing (a lost file, or a manifest cut short so that
///   it predates a deletion) — reads would fail later;
/// - the WAL the manifest says recovery starts from is gone while a newer WAL exists.
///   WALs are deleted only after the edit that makes them obsolete is durable, so this
///   means that edit was lost from the manifest (damage, not a crash), and with it the
///   table that held the WAL's data.
fn check_manifest_against_files(dir: &Path, opts: &Options, versions: &VersionSet) -> Result<()> {
    let manifest = dir.join(filename::manifest_name(versions.manifest_file_number()));
    let version = versions.current();
    for (level, files) in version.levels.iter().enumerate() {
        for f in files {
            let path = filename::table_path(dir, f.number);
            if !opts.fs.exists(&path) {
                return Err(Error::corruption(
                    manifest,
                    0,
                    format!(
                        "names table {} at level {level}, which is missing",
                        path.display()
                    ),
                ));
            }
        }
    }
    let log_number = versions.log_number();
    if log_number > 0 && !opts.fs.exists(&filename::wal_path(dir, log_number)) {
        let newer_wal = opts
            .fs
            .list_dir(dir)?
            .iter()
            .any(|n| matches!(filename::parse(n), Some(FileKind::Wal(w)) if w > log_number));
        if newer_wal {
            return Err(Error::corruption(
                manifest,
                0,
                format!("recovery starts at WAL {log_number}, which was deleted by an edit this manifest no longer holds"),
            ));
        }
    }
    Ok(())
}

/// Reads every range tombstone record back into memory.
fn load_range_tombstones(shared: &Arc<Shared>) -> Result<()> {
    let seq = shared
        .visible_seq
        .load(std::sync::atomic::Ordering::Acquire);
    let sv = shared.current();
    let records = super::DbIterator::new(shared, sv, seq, RANGE_TOMBSTONE_KEYSPACE, None, None)?;
    for record in records {
        let record = record?;
        let t = RangeTombstone::from_record(&record.key, &record.value)
            .ok_or_else(|| Error::corruption(&shared.dir, 0, "malformed range tombstone record"))?;
        shared.range_tombstones.add(t);
    }
    Ok(())
}

/// Replays every WAL at or after the manifest's log number into L0 tables recorded in
/// `edit`. Raises `max_seq` to the last replayed sequence.
fn replay_wals(
    dir: &Path,
    opts: &Options,
    versions: &mut VersionSet,
    edit: &mut VersionEdit,
    max_seq: &mut u64,
) -> Result<()> {
    let fs = opts.fs.as_ref();
    let mut wals: Vec<u64> = fs
        .list_dir(dir)?
        .iter()
        .filter_map(|n| match filename::parse(n) {
            Some(FileKind::Wal(n)) if n >= versions.log_number() => Some(n),
            _ => None,
        })
        .collect();
    wals.sort_unstable();
    // A WAL is numbered in memory at a switch and the manifest learns of it only with the
    // next edit: after a crash, numbers here may not be known to it yet. Reusing one for
    // a table or the fresh WAL would truncate a WAL being replayed.
    if let Some(&newest) = wals.last() {
        versions.mark_file_number_used(newest, &filename::wal_path(dir, newest))?;
    }

    let mut mem = Arc::new(Memtable::sized(opts.memtable_size));
    let mut flush = |mem: &mut Arc<Memtable>, versions: &mut VersionSet| -> Result<()> {
        let number = versions.new_file_number();
        let mut iter = mem.iter();
        if let Some(meta) = write_table(fs, dir, opts, number, &mut iter)? {
            edit.new_files.push((0, meta));
        }
        *mem = Arc::new(Memtable::sized(opts.memtable_size));
        Ok(())
    };

    // A WAL that ended torn, while later WALs are still to be read.
    let mut torn: Option<(PathBuf, u64)> = None;
    // The sequence the next record must start at, and the number of the WAL of the
    // record before.
    let mut next_seq: Option<(u64, u64)> = None;
    'wals: for &number in &wals {
        let path = filename::wal_path(dir, number);
        let mut reader = LogReader::new(path.clone(), fs.open(&path)?);
        while let Some((offset, payload)) = reader.next_record() {
            if let Some((torn_path, torn_offset)) = &torn {
                let what = format!(
                    "WAL is torn here, but the later WAL {} holds records (from offset {offset}): acknowledged writes would be skipped",
                    path.display()
                );
                if !opts.wal_point_in_time_recovery {
                    return Err(Error::corruption(torn_path, *torn_offset, what));
                }
                tracing::warn!(file = %torn_path.display(), offset = torn_offset, "{what}; point-in-time recovery stops at the tear");
                break 'wals;
            }
            let batch = WriteBatch::decode(&payload).map_err(|(at, what)| {
                Error::corruption(
                    &path,
                    offset,
                    format!("write batch (payload byte {at}): {what}"),
                )
            })?;
            if let Some((expected, before)) = next_seq.take() {
                if batch.sequence() != expected {
                    let what = format!(
                        "sequence gap: this record starts at sequence {}, the one before it (in {}) ended at {}: records between them were lost (a WAL cut short at a record boundary)",
                        batch.sequence(),
                        filename::wal_path(dir, before).display(),
                        expected - 1
                    );
                    if !opts.wal_point_in_time_recovery {
                        return Err(Error::corruption(&path, offset, what));
                    }
                    tracing::warn!(file = %path.display(), offset, "{what}; point-in-time recovery stops at the gap");
                    break 'wals;
                }
            }
            let last = apply_to_memtable(&mem, &batch, batch.sequence());
            next_seq = Some((last + 1, number));
            *max_seq = (*max_seq).max(last);
            if mem.approximate_bytes() >= opts.memtable_size {
                flush(&mut mem, versions)?;
            }
        }
        match reader.end() {
            ReadEnd::Clean => {}
            ReadEnd::TornTail {
                offset,
                dropped_bytes,
            } => {
                if *dropped_bytes > 0 {
                    tracing::info!(file = %path.display(), offset, dropped_bytes, "WAL ends in a torn record (crash during write); recovered to the last whole batch");
                    // Normal for the newest WAL; for an older one, only if no later WAL
                    // holds a record (checked as they are read).
                    torn.get_or_insert((path.clone(), *offset));
                }
            }
            ReadEnd::Corrupt {
                offset,
                what,
                dropped_bytes,
            } => {
                if !opts.wal_point_in_time_recovery {
                    return Err(Error::corruption(
                        &path,
                        *offset,
                        format!("WAL record: {what} (followed by valid records)"),
                    ));
                }
                tracing::warn!(file = %path.display(), offset, dropped_bytes, what = %what, "WAL corruption: recovered up to the bad record and dropped the rest");
                break 'wals;
            }
        }
    }
    if !mem.is_empty() {
        flush(&mut mem, versions)?;
    }
    Ok(())
}
