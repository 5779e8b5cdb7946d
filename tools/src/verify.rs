//! `kvtool verify DIR`: reads every byte the engine would read, through the engine's
//! readers, and lists every problem with its file and offset.
//!
//! - CURRENT must name a manifest that exists.
//! - The MANIFEST: every record's checksum, every version edit's grammar, the replay
//!   (`VersionSet::recover`: no deleting a missing file, keyspaces, level invariants
//!   such as L1+ files not overlapping). A torn tail is a warning.
//! - Every live table: footer, index, filter and properties (`Table::open`), every data
//!   block's checksum, entries and key order (`Table::verify`), and that its size and
//!   key range match what the manifest says.
//! - The manifest names exactly the tables present: a missing one is an error, an extra
//!   one a warning (kvd deletes it on open).
//! - Every live WAL: record checksums, batch grammar, sequence numbers rising. A torn
//!   tail is a warning (normal after a crash); damage followed by valid records, an
//!   error.
//!
//! - A cluster node's directory: `cluster/node.json` and `cluster/layout.json` parse and
//!   hold (the layout's invariants), and every live entry of the `replicated` and
//!   `hints` keyspaces decodes with kv-cluster's decoders.
//!
//! Nothing read from disk may crash verify: a reader that panics is caught and reported
//! as an error against the file it was reading.

use crate::cli::VerifyArgs;
use crate::cluster_dir::{self, RecordCounts, RecordWalk};
use crate::datadir::{self, LiveState};
use crate::failure::{Failure, EXIT_FAILED};
use crate::output::{self, Align, Render, Table};
use crate::progress::{Progress, Unit};
use kv_engine::filename::{self, FileKind};
use kv_engine::manifest::{FileMeta, VersionEdit};
use kv_engine::wal::ReadEnd;
use serde::Serialize;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Data is damaged or kvd would refuse to open (or lose data).
    Error,
    /// Worth knowing, harmless to data (torn WAL tail, leftover files).
    Warning,
}

/// One problem found.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// Error or warning.
    pub severity: Severity,
    /// The file holding the problem.
    pub file: String,
    /// Byte offset in that file, where known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub what: String,
}

/// Counts for a verify run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Files read.
    pub files: usize,
    /// Bytes in those files.
    pub bytes: u64,
    /// Problems that make the directory unhealthy.
    pub errors: usize,
    /// Problems that do not.
    pub warnings: usize,
}

/// The result of `verify`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The directory verified.
    pub dir: String,
    /// True when there is no error (warnings allowed).
    pub healthy: bool,
    /// Process holding the directory's LOCK (a running kvd), if any: files may change
    /// while verify reads them.
    pub in_use_by_pid: Option<u32>,
    /// Counts.
    pub summary: Summary,
    /// A cluster node's directory: the replicated records and hints decoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_records: Option<RecordCounts>,
    /// Every problem, errors and warnings, in the order found.
    pub problems: Vec<Problem>,
}

impl Report {
    /// Just the counts.
    pub fn summary(&self) -> Summary {
        self.summary.clone()
    }
}

impl Render for Report {
    fn render(&self, out: &mut String) {
        if !self.problems.is_empty() {
            let mut t = Table::new(&[
                ("severity", Align::Left),
                ("file", Align::Left),
                ("offset", Align::Right),
                ("problem", Align::Left),
            ]);
            for p in &self.problems {
                t.row(vec![
                    match p.severity {
                        Severity::Error => "ERROR".into(),
                        Severity::Warning => "warning".into(),
                    },
                    p.file.clone(),
                    p.offset.map_or("-".into(), |o| o.to_string()),
                    p.what.clone(),
                ]);
            }
            t.render(out, 0);
            out.push('\n');
        }
        if let Some(pid) = self.in_use_by_pid {
            out.push_str(&format!(
                "note: process {pid} holds this directory; a file it changes during the run can show as a problem (verify a backup for a stable answer)\n"
            ));
        }
        if let Some(c) = &self.cluster_records {
            out.push_str(&format!(
                "cluster node: {} replicated records decoded ({} values, {} expired, {} tombstones), {}\n",
                c.values + c.expired + c.tombstones,
                c.values,
                c.expired,
                c.tombstones,
                output::count(c.hints as usize, "hint")
            ));
        }
        let s = &self.summary;
        out.push_str(&format!(
            "{} {}: {}, {} read, {}, {}\n",
            if self.healthy { "HEALTHY" } else { "DAMAGED" },
            self.dir,
            output::count(s.files, "file"),
            output::bytes(s.bytes),
            output::count(s.errors, "error"),
            output::count(s.warnings, "warning")
        ));
    }
}

/// Runs `kvtool verify`.
pub fn run(args: &VerifyArgs, json: bool) -> Result<i32, Failure> {
    let report = check(&args.dir);
    output::emit(&report, json)?;
    Ok(if report.healthy { 0 } else { EXIT_FAILED })
}

/// Verifies `dir`.
pub fn check(dir: &Path) -> Report {
    // Silence the default panic message: a panicking reader is reported as a problem.
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut checker = Checker {
        dir: dir.to_path_buf(),
        problems: Vec::new(),
        files: 0,
        bytes: 0,
        progress: None,
        in_use: datadir::lock_holder(dir).is_some(),
        cluster_records: None,
    };
    checker.run();
    drop(checker.progress.take());
    std::panic::set_hook(previous_hook);
    let count = |sev| {
        checker
            .problems
            .iter()
            .filter(|p| p.severity == sev)
            .count()
    };
    let summary = Summary {
        files: checker.files,
        bytes: checker.bytes,
        errors: count(Severity::Error),
        warnings: count(Severity::Warning),
    };
    Report {
        dir: dir.display().to_string(),
        healthy: summary.errors == 0,
        in_use_by_pid: datadir::lock_holder(dir),
        summary,
        cluster_records: checker.cluster_records,
        problems: checker.problems,
    }
}

struct Checker {
    dir: PathBuf,
    problems: Vec<Problem>,
    files: usize,
    bytes: u64,
    progress: Option<Progress>,
    /// A running kvd holds the directory: files may vanish while we read.
    in_use: bool,
    /// What the cluster record check decoded.
    cluster_records: Option<RecordCounts>,
}

impl Checker {
    /// True if table `number` (or, for `None`, a WAL) was deleted by the kvd that holds
    /// the directory since we read the manifest: no longer live, so not a problem.
    fn vanished(&self, table: Option<u64>) -> bool {
        if !self.in_use {
            return false;
        }
        match (table, LiveState::load(&self.dir)) {
            (Some(n), Ok(state)) => state.tables().all(|(_, f)| f.number != n),
            (None, _) => true,
            (Some(_), Err(_)) => false,
        }
    }

    fn report(&mut self, severity: Severity, file: &Path, offset: Option<u64>, what: String) {
        self.problems.push(Problem {
            severity,
            file: file.display().to_string(),
            offset,
            what,
        });
    }

    fn error(&mut self, file: &Path, offset: Option<u64>, what: impl Into<String>) {
        self.report(Severity::Error, file, offset, what.into());
    }

    fn warn(&mut self, file: &Path, offset: Option<u64>, what: impl Into<String>) {
        self.report(Severity::Warning, file, offset, what.into());
    }

    fn errors(&self) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Error)
            .count()
    }

    /// An engine error as a problem: against the file it names, else against `file`.
    fn engine_error(&mut self, file: &Path, err: kv_engine::Error) {
        match err {
            kv_engine::Error::Corruption {
                file: f,
                offset,
                what,
            } => self.error(&f, Some(offset), what),
            kv_engine::Error::Io { path, source } => {
                self.error(&path, None, format!("I/O error: {source}"))
            }
            other => self.error(file, None, other.to_string()),
        }
    }

    /// Runs `check` on `file`, turning a panic into an error against it, and counts the
    /// file as read.
    fn guarded(&mut self, file: &Path, size: u64, check: impl FnOnce(&mut Self)) {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| check(self)));
        if let Err(panic) = outcome {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            self.error(
                file,
                None,
                format!("the engine's reader panicked on this file (a bug to report): {msg}"),
            );
        }
        self.files += 1;
        self.bytes += size;
        if let Some(p) = self.progress.as_mut() {
            p.inc(size);
        }
    }

    fn run(&mut self) {
        let dir = self.dir.clone();
        let files = match datadir::list(&dir) {
            Ok(f) => f,
            Err(e) => return self.engine_error(&dir, e),
        };
        let total: u64 = files.iter().map(|f| f.size).sum();
        self.progress = Some(Progress::new("verifying", total, Unit::Bytes));
        let size_of = |name: &str| files.iter().find(|f| f.name == name).map(|f| f.size);

        let current = dir.join(filename::CURRENT);
        let mut manifest_name = None;
        match size_of(filename::CURRENT) {
            None => self.error(&current, None, "missing: this is not a kvd data directory"),
            Some(size) => self.guarded(
                &current,
                size,
                |c| match kv_engine::manifest::read_current(kv_engine::fs::real().as_ref(), &dir) {
                    Ok(name) => manifest_name = Some(name),
                    Err(e) => c.engine_error(&current, e),
                },
            ),
        }

        let mut state = None;
        if let Some(name) = &manifest_name {
            let path = dir.join(name);
            // A running kvd may have started this manifest after we listed the directory.
            let size = size_of(name).or_else(|| std::fs::metadata(&path).ok().map(|m| m.len()));
            match size {
                None => self.error(
                    &current,
                    Some(0),
                    format!("names {name}, which does not exist"),
                ),
                Some(size) => self.guarded(&path, size, |c| state = c.check_manifest(&path)),
            }
        }
        for f in &files {
            if matches!(f.kind, Some(FileKind::Manifest(_)))
                && Some(&f.name) != manifest_name.as_ref()
            {
                self.warn(
                    &dir.join(&f.name),
                    None,
                    "not the live manifest (CURRENT names another); left over, kvd ignores it",
                );
            }
        }

        let live: Vec<(usize, FileMeta)> = state
            .as_ref()
            .map(|s: &LiveState| s.tables().map(|(l, f)| (l, (**f).clone())).collect())
            .unwrap_or_default();
        let live_numbers: HashSet<u64> = live.iter().map(|(_, f)| f.number).collect();
        for (level, meta) in &live {
            let path = filename::table_path(&dir, meta.number);
            let name = file_name(&path);
            // A table flushed after we listed the directory is not in the listing.
            let size = size_of(&name).or_else(|| std::fs::metadata(&path).ok().map(|m| m.len()));
            match size {
                None if self.vanished(Some(meta.number)) => {}
                None => self.error(
                    &path,
                    None,
                    format!("named in the manifest (L{level}) but missing"),
                ),
                Some(size) => self.guarded(&path, size, |c| {
                    c.check_table(&path, size, Some((*level, meta)))
                }),
            }
        }
        for f in &files {
            let path = dir.join(&f.name);
            match f.kind {
                // A running kvd writes new tables before the manifest names them and
                // deletes obsolete ones soon after: only a stopped directory has strays.
                Some(FileKind::Table(n)) if !live_numbers.contains(&n) && !self.in_use => {
                    if state.is_some() {
                        self.warn(
                            &path,
                            None,
                            "table not in the manifest (left by an interrupted flush or compaction); kvd deletes it on open",
                        );
                    } else {
                        // No manifest to check against: still read every byte.
                        self.guarded(&path, f.size, |c| c.check_table(&path, f.size, None));
                    }
                }
                Some(FileKind::Temp(_)) if !self.in_use => self.warn(
                    &path,
                    None,
                    "temporary file (left by an interrupted write); kvd deletes it on open",
                ),
                _ => {}
            }
        }

        let mut wals: Vec<(u64, u64)> = files
            .iter()
            .filter_map(|f| match f.kind {
                Some(FileKind::Wal(n)) => Some((n, f.size)),
                _ => None,
            })
            .collect();
        wals.sort_unstable();
        let log_number = state.as_ref().map_or(0, |s| s.log_number);
        let live_wals: Vec<(u64, u64)> = wals
            .iter()
            .copied()
            .filter(|&(n, _)| n >= log_number)
            .collect();
        for &(n, size) in wals.iter().filter(|&&(n, _)| n < log_number) {
            let path = filename::wal_path(&dir, n);
            if self.in_use {
                continue; // kvd is about to delete it
            }
            self.warn(
                &path,
                None,
                format!("obsolete WAL (the manifest's log number is {log_number}: its writes are in tables); kvd deletes it on open"),
            );
            self.files += 1;
            self.bytes += size;
        }
        let mut last_seq = None;
        for (i, &(n, size)) in live_wals.iter().enumerate() {
            let path = filename::wal_path(&dir, n);
            let newest = i + 1 == live_wals.len();
            self.guarded(&path, size, |c| c.check_wal(&path, newest, &mut last_seq));
        }
        if cluster_dir::is_cluster_node(&dir) {
            let wal_names: Vec<String> = live_wals
                .iter()
                .map(|&(n, _)| file_name(&filename::wal_path(&dir, n)))
                .collect();
            self.check_cluster(state.as_ref(), &wal_names);
        }
    }

    /// A cluster node's files and records: identity and layout parse, and every live
    /// replicated record and hint decodes. Records are read only when the engine's files
    /// are sound (damaged files are already reported, and merging them would fail).
    fn check_cluster(&mut self, state: Option<&LiveState>, live_wals: &[String]) {
        let dir = self.dir.clone();
        if let Err(e) = cluster_dir::read_facts(&dir) {
            self.error(&dir.join("cluster"), None, e);
        }
        let Some(state) = state.filter(|_| self.errors() == 0) else {
            return;
        };
        let mut walk = RecordWalk::new(&state.keyspaces, kv_keyspace::now_ms());
        let names: Vec<&str> = live_wals.iter().map(String::as_str).collect();
        let merged =
            crate::inspect::exact::count(&dir, state, &names, &mut |ks, k, v| walk.visit(ks, k, v));
        match merged {
            // A running kvd replaced a file while it was read: not damage.
            Err(e) if self.in_use && datadir::is_not_found(&e) => {
                return self.warn(
                    &dir,
                    None,
                    "cluster records not checked: kvd replaced a file while they were read (verify a backup for a stable answer)",
                )
            }
            Err(e) => return self.engine_error(&dir, e),
            Ok(_) => {}
        }
        let damaged = walk.counts.damaged_records + walk.counts.damaged_hints;
        let listed = walk.damage.len() as u64;
        for what in std::mem::take(&mut walk.damage) {
            self.error(&dir, None, what);
        }
        if damaged > listed {
            self.error(
                &dir,
                None,
                format!("{} more damaged cluster entries", damaged - listed),
            );
        }
        self.cluster_records = Some(walk.counts);
    }

    /// Reads every manifest record and replays it; the live state if that works.
    fn check_manifest(&mut self, path: &Path) -> Option<LiveState> {
        let errors_before = self.errors();
        match datadir::read_log(path) {
            Err(e) => self.engine_error(path, e),
            Ok((records, end)) => {
                for (offset, payload) in &records {
                    if let Err((at, what)) = VersionEdit::decode(payload) {
                        self.error(
                            path,
                            Some(*offset),
                            format!("bad version edit (payload byte {at}): {what}"),
                        );
                    }
                }
                match end {
                    ReadEnd::Clean => {}
                    ReadEnd::TornTail { offset, dropped_bytes } => {
                        if dropped_bytes > 0 {
                            self.warn(path, Some(offset), format!("torn tail: the last {dropped_bytes} bytes are an incomplete edit (ignored)"));
                        }
                    }
                    ReadEnd::Corrupt { offset, what, dropped_bytes } => self.error(
                        path,
                        Some(offset),
                        format!("{what}; the {dropped_bytes} bytes from here on, valid edits among them, are unreadable"),
                    ),
                }
            }
        }
        match LiveState::load(&self.dir) {
            Ok(state) => Some(state),
            Err(e) => {
                // The record-level pass may already have reported this problem (a
                // warning there, such as a torn tail, does not explain a failed replay).
                if self.errors() == errors_before {
                    self.engine_error(path, e);
                }
                None
            }
        }
    }

    /// Opens and verifies one table; with `meta`, checks it against the manifest too.
    fn check_table(&mut self, path: &Path, size: u64, meta: Option<(usize, &FileMeta)>) {
        let table = match datadir::open_table(path) {
            Ok(t) => t,
            Err(e) if datadir::is_not_found(&e) && self.vanished(meta.map(|(_, m)| m.number)) => {
                return
            }
            Err(e) => return self.engine_error(path, e),
        };
        if let Err(e) = table.verify() {
            self.engine_error(path, e);
        }
        let Some((level, meta)) = meta else { return };
        let props = table.properties();
        let mut mismatch = |what: &str, manifest: String, table: String| {
            self.error(
                path,
                None,
                format!("L{level} table's {what} is {table} but the manifest says {manifest}"),
            )
        };
        if meta.size != size {
            mismatch("size", meta.size.to_string(), size.to_string());
        }
        if meta.smallest != props.smallest_key {
            mismatch(
                "smallest key",
                show(&meta.smallest),
                show(&props.smallest_key),
            );
        }
        if meta.largest != props.largest_key {
            mismatch("largest key", show(&meta.largest), show(&props.largest_key));
        }
        if meta.entries != props.entries {
            mismatch(
                "entry count",
                meta.entries.to_string(),
                props.entries.to_string(),
            );
        }
    }

    /// Reads every record of a live WAL and decodes its batch; `last_seq` carries the
    /// last sequence number seen across WALs (they must rise).
    fn check_wal(&mut self, path: &Path, newest: bool, last_seq: &mut Option<u64>) {
        let (batches, end) = match datadir::read_wal(path) {
            Ok(r) => r,
            Err(e) if datadir::is_not_found(&e) && self.vanished(None) => return,
            Err(e) => return self.engine_error(path, e),
        };
        for b in &batches {
            match &b.batch {
                Err((at, what)) => self.error(
                    path,
                    Some(b.offset),
                    format!("write batch does not decode (payload byte {at}): {what}"),
                ),
                Ok(batch) if batch.is_empty() => {}
                Ok(batch) => {
                    let first = batch.sequence();
                    if let Some(prev) = *last_seq {
                        if first <= prev {
                            self.error(
                                path,
                                Some(b.offset),
                                format!("batch sequence {first} does not follow the previous batch's {prev}"),
                            );
                        }
                    }
                    *last_seq = Some(first + batch.len() as u64 - 1);
                }
            }
        }
        match end {
            ReadEnd::Clean => {}
            ReadEnd::TornTail { offset, dropped_bytes } => {
                if !newest {
                    self.error(path, Some(offset), "torn tail in a WAL that is not the newest: kvd stops replay here and skips the later WALs");
                } else if dropped_bytes > 0 {
                    self.warn(path, Some(offset), format!("torn tail: the last {dropped_bytes} bytes are an incomplete batch (normal after a crash; never acknowledged)"));
                }
            }
            ReadEnd::Corrupt { offset, what, dropped_bytes } => self.error(
                path,
                Some(offset),
                format!("{what}; valid records follow, so {dropped_bytes} bytes of acknowledged writes would be lost (kvd refuses to open)"),
            ),
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn show(internal_key: &[u8]) -> String {
    datadir::Names::default().internal_key(internal_key)
}
