//! `kvtool inspect DIR`: the live version at a glance.
//!
//! Definitions (also in docs/kvtool.md):
//! - *estimated keys*: table entries minus tombstones plus WAL operations; counts every
//!   stored version, so it over-counts keys written more than once.
//! - *exact keys* (`--exact`): the newest version of each key, over every table and
//!   live WAL merged, that is not a tombstone.
//! - *space amplification*, estimate: table bytes / bytes of the deepest non-empty
//!   level (in a leveled tree the deepest level holds about one version of each key).
//!   Exact: key+value bytes of every stored entry (tables and live WALs) / key+value
//!   bytes of the newest live version of each key; compression does not enter it.
//!   On disk: directory bytes / those live key+value bytes (compression, indexes,
//!   filters and per-entry overhead included; below 1 when compression wins).
//! - *write amplification* (lower bound from the shape): every byte in level L was
//!   written at least L+2 times (WAL, flush to L0, one compaction into each of L1..L),
//!   averaged over table bytes. The running count since start is kvd's INFO.

use super::cluster::{self, ClusterSection};
use super::exact;
use super::wal::End;
use crate::cluster_dir::RecordWalk;
use crate::datadir::{self, DirFile, LiveState, Names};
use crate::failure::Failure;
use crate::output::{self, Align, Render, Table};
use kv_engine::filename::{self, FileKind};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Serialize)]
struct Level {
    level: usize,
    files: usize,
    bytes: u64,
    entries: u64,
    tombstones: u64,
    smallest_key: Option<String>,
    largest_key: Option<String>,
    smallest_sequence: Option<u64>,
    largest_sequence: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Wal {
    file: String,
    bytes: u64,
    /// False for a WAL older than the manifest's log number (its writes are in tables).
    live: bool,
    batches: usize,
    ops: usize,
    first_sequence: Option<u64>,
    last_sequence: Option<u64>,
    end: Option<End>,
}

#[derive(Debug, Serialize)]
struct Keyspace {
    id: u8,
    name: String,
    /// Tables holding keys of this keyspace.
    tables: usize,
    /// Share of table entries minus tombstones (tables spanning keyspaces are split evenly)
    /// plus WAL operations.
    estimated_keys: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    exact_keys: Option<u64>,
    /// Key+value bytes of the live keys (--exact).
    #[serde(skip_serializing_if = "Option::is_none")]
    exact_live_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Keys {
    estimated: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    exact: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exact_live_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exact_stored_bytes: Option<u64>,
    /// Range deletes stored (--exact).
    #[serde(skip_serializing_if = "Option::is_none")]
    range_deletes: Option<u64>,
}

#[derive(Debug, Serialize)]
struct Amplification {
    write_lower_bound: Option<f64>,
    space_estimate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    space_exact: Option<f64>,
    /// Directory bytes on disk / live key+value bytes (--exact): compression and
    /// per-entry overhead included.
    #[serde(skip_serializing_if = "Option::is_none")]
    space_on_disk: Option<f64>,
}

#[derive(Debug, Serialize)]
struct Report {
    dir: String,
    manifest: String,
    manifest_bytes: u64,
    /// Process holding the directory's LOCK (a running kvd), if any.
    in_use_by_pid: Option<u32>,
    /// Newest sequence number stored in a table or live WAL.
    newest_sequence: Option<u64>,
    /// Sequence numbers the manifest has reserved (the engine hands them out in blocks).
    reserved_sequence: u64,
    log_number: u64,
    next_file_number: u64,
    dir_bytes: u64,
    table_bytes: u64,
    wal_bytes: u64,
    levels: Vec<Level>,
    wals: Vec<Wal>,
    keys: Keys,
    amplification: Amplification,
    keyspaces: Vec<Keyspace>,
    /// Files the live version does not account for (leftovers, foreign files).
    other_files: Vec<String>,
    /// A cluster node's identity, layout and (--exact) records.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster: Option<ClusterSection>,
}

impl Render for Report {
    fn render(&self, out: &mut String) {
        out.push_str(&format!("Data directory {}\n", self.dir));
        output::fields(
            out,
            2,
            &[
                (
                    "in use",
                    self.in_use_by_pid.map_or("no".into(), |pid| {
                        format!("by process {pid} (figures may change while read)")
                    }),
                ),
                (
                    "manifest",
                    format!("{} ({})", self.manifest, output::bytes(self.manifest_bytes)),
                ),
                (
                    "newest sequence",
                    format!(
                        "{} (reserved up to {})",
                        self.newest_sequence.map_or("-".into(), |s| s.to_string()),
                        self.reserved_sequence
                    ),
                ),
                ("log number", self.log_number.to_string()),
                ("next file", self.next_file_number.to_string()),
                (
                    "size",
                    format!(
                        "{} ({} tables, {} WAL)",
                        output::bytes(self.dir_bytes),
                        output::bytes(self.table_bytes),
                        output::bytes(self.wal_bytes)
                    ),
                ),
            ],
        );

        out.push_str("\nLevels\n");
        let mut t = Table::new(&[
            ("level", Align::Left),
            ("files", Align::Right),
            ("bytes", Align::Right),
            ("entries", Align::Right),
            ("tombstones", Align::Right),
            ("sequences", Align::Left),
            ("key range", Align::Left),
        ]);
        let deepest = self.levels.iter().rposition(|l| l.files > 0).unwrap_or(0);
        for l in self.levels.iter().take(deepest + 1) {
            let seqs = output::span(l.smallest_sequence, l.largest_sequence, "..");
            let range = output::span(l.smallest_key.as_ref(), l.largest_key.as_ref(), " .. ");
            t.row(vec![
                format!("L{}", l.level),
                l.files.to_string(),
                output::bytes(l.bytes),
                l.entries.to_string(),
                l.tombstones.to_string(),
                seqs,
                range,
            ]);
        }
        t.render(out, 2);

        out.push_str("\nWAL (writes not yet in tables)\n");
        if self.wals.is_empty() {
            out.push_str("  none\n");
        } else {
            let mut t = Table::new(&[
                ("file", Align::Left),
                ("bytes", Align::Right),
                ("batches", Align::Right),
                ("ops", Align::Right),
                ("sequences", Align::Left),
                ("state", Align::Left),
            ]);
            for w in &self.wals {
                let seqs = output::span(w.first_sequence, w.last_sequence, "..");
                let state = match (&w.end, w.live) {
                    (_, false) => "obsolete (already in tables)".to_string(),
                    (Some(e), true) => e.to_string(),
                    (None, true) => "-".into(),
                };
                t.row(vec![
                    w.file.clone(),
                    output::bytes(w.bytes),
                    w.batches.to_string(),
                    w.ops.to_string(),
                    seqs,
                    state,
                ]);
            }
            t.render(out, 2);
        }

        out.push_str("\nKeys and amplification\n");
        let mut f = vec![(
            "estimated keys",
            format!("{} (entries - tombstones + WAL ops)", self.keys.estimated),
        )];
        if let Some(n) = self.keys.exact {
            let after = match self.keys.range_deletes {
                Some(r) if r > 0 => {
                    format!(" (after {})", output::count(r as usize, "range delete"))
                }
                _ => String::new(),
            };
            f.push(("exact keys", format!("{n}{after}")));
        }
        if let (Some(live), Some(stored)) =
            (self.keys.exact_live_bytes, self.keys.exact_stored_bytes)
        {
            f.push((
                "live / stored bytes",
                format!(
                    "{} / {} (keys + values)",
                    output::bytes(live),
                    output::bytes(stored)
                ),
            ));
        }
        let a = &self.amplification;
        f.push((
            "write amplification",
            format!(
                "{} (lower bound from the level shape)",
                output::ratio(a.write_lower_bound)
            ),
        ));
        f.push((
            "space amplification",
            format!(
                "{} (estimate: table bytes / deepest level)",
                output::ratio(a.space_estimate)
            ),
        ));
        if a.space_exact.is_some() {
            f.push((
                "space amplification",
                format!(
                    "{} (exact: stored / live key+value bytes)",
                    output::ratio(a.space_exact)
                ),
            ));
            f.push((
                "space amplification",
                format!(
                    "{} (on disk: directory bytes / live key+value bytes)",
                    output::ratio(a.space_on_disk)
                ),
            ));
        }
        output::fields(out, 2, &f);
        if self.keys.exact.is_none() {
            out.push_str("  (kvtool inspect --exact counts keys and live bytes exactly)\n");
        }

        out.push_str("\nKeyspaces\n");
        let exact = self.keys.exact.is_some();
        let mut cols = vec![
            ("id", Align::Right),
            ("name", Align::Left),
            ("tables", Align::Right),
            ("est. keys", Align::Right),
        ];
        if exact {
            cols.extend([("keys", Align::Right), ("live bytes", Align::Right)]);
        }
        let mut t = Table::new(&cols);
        for k in &self.keyspaces {
            let mut row = vec![
                k.id.to_string(),
                k.name.clone(),
                k.tables.to_string(),
                k.estimated_keys.to_string(),
            ];
            if exact {
                row.push(k.exact_keys.unwrap_or(0).to_string());
                row.push(output::bytes(k.exact_live_bytes.unwrap_or(0)));
            }
            t.row(row);
        }
        t.render(out, 2);

        if let Some(c) = &self.cluster {
            c.render(out);
        }

        if !self.other_files.is_empty() {
            out.push_str("\nOther files (not part of the live version)\n");
            for f in &self.other_files {
                out.push_str(&format!("  {f}\n"));
            }
        }
    }
}

/// Attempts at reading a directory whose files a running kvd keeps replacing. 5 was
/// not enough for `inspect --exact` (it reads every table and live WAL) under a full
/// test run's load, against the live-directory test's engine switching tiny memtables
/// as fast as it can: every attempt met a WAL flushed away meanwhile. Each attempt
/// costs one read of the directory; a real kvd switches a 64 MiB memtable far less often.
const ATTEMPTS: usize = 20;

/// Runs `kvtool inspect DIR`.
pub fn run(dir: &Path, exact: bool, json: bool) -> Result<i32, Failure> {
    let mut attempt = 1;
    let report = loop {
        match read(dir, exact) {
            // kvd deleted a file between our reading the manifest and the file
            // (compaction finished): read the new version.
            Err(e) if datadir::is_not_found(&e) && attempt < ATTEMPTS => attempt += 1,
            Err(e) => {
                return Err(Failure::new(format!(
                    "cannot read {}: {e}\nRun `kvtool verify {}` for a full report.",
                    dir.display(),
                    dir.display()
                )))
            }
            Ok(report) => break report,
        }
    };
    output::emit(&report, json)?;
    Ok(0)
}

fn read(dir: &Path, exact: bool) -> kv_engine::Result<Report> {
    let state = LiveState::load(dir)?;
    let files = datadir::list(dir)?;
    let names = Names(state.keyspaces.clone());
    let mut report = survey(dir, &state, &files, &names);
    report.cluster = cluster::section(dir);
    if exact {
        let live_wals: Vec<&str> = report
            .wals
            .iter()
            .filter(|w| w.live)
            .map(|w| w.file.as_str())
            .collect();
        let mut walk = RecordWalk::new(&state.keyspaces, kv_keyspace::now_ms());
        let counts = exact::count(dir, &state, &live_wals, &mut |ks, k, v| {
            walk.visit(ks, k, v)
        })?;
        report.add_exact(&counts);
        if let Some(c) = report.cluster.as_mut() {
            c.records = Some(walk.counts);
        }
    }
    Ok(report)
}

impl Report {
    fn add_exact(&mut self, c: &exact::Counts) {
        self.keys.exact = Some(c.live_keys);
        self.keys.range_deletes = Some(c.range_deletes);
        self.keys.exact_live_bytes = Some(c.live_bytes);
        self.keys.exact_stored_bytes = Some(c.stored_bytes);
        self.amplification.space_exact = output::divide(c.stored_bytes, c.live_bytes);
        self.amplification.space_on_disk = output::divide(self.dir_bytes, c.live_bytes);
        for k in &mut self.keyspaces {
            let (n, b) = c.per_keyspace.get(&k.id).copied().unwrap_or_default();
            k.exact_keys = Some(n);
            k.exact_live_bytes = Some(b);
        }
    }
}

fn survey(dir: &Path, state: &LiveState, files: &[DirFile], names: &Names) -> Report {
    let size_of = |name: &str| files.iter().find(|f| f.name == name).map_or(0, |f| f.size);
    let levels: Vec<Level> = state
        .version
        .levels
        .iter()
        .enumerate()
        .map(|(level, fs)| Level {
            level,
            files: fs.len(),
            bytes: fs.iter().map(|f| f.size).sum(),
            entries: fs.iter().map(|f| f.entries).sum(),
            tombstones: fs.iter().map(|f| f.deletions).sum(),
            smallest_key: fs
                .iter()
                .map(|f| datadir::user_key(&f.smallest))
                .min()
                .map(|k| names.user_key(k)),
            largest_key: fs
                .iter()
                .map(|f| datadir::user_key(&f.largest))
                .max()
                .map(|k| names.user_key(k)),
            smallest_sequence: fs.iter().map(|f| f.smallest_seq).min(),
            largest_sequence: fs.iter().map(|f| f.largest_seq).max(),
        })
        .collect();
    let table_bytes: u64 = levels.iter().map(|l| l.bytes).sum();

    let mut wal_ops_per_ks: BTreeMap<u8, u64> = BTreeMap::new();
    let wals: Vec<Wal> = files
        .iter()
        .filter_map(|f| match f.kind {
            Some(FileKind::Wal(n)) => Some((n, f)),
            _ => None,
        })
        .map(|(n, f)| {
            let live = n >= state.log_number;
            let mut w = Wal {
                file: f.name.clone(),
                bytes: f.size,
                live,
                batches: 0,
                ops: 0,
                first_sequence: None,
                last_sequence: None,
                end: None,
            };
            if live {
                if let Ok((batches, end)) = datadir::read_wal(&dir.join(&f.name)) {
                    w.batches = batches.len();
                    for b in batches
                        .iter()
                        .filter_map(|b| b.batch.as_ref().ok())
                        .filter(|b| !b.is_empty())
                    {
                        w.ops += b.len();
                        let last = b.sequence() + b.len() as u64 - 1;
                        w.first_sequence = Some(
                            w.first_sequence
                                .map_or(b.sequence(), |s| s.min(b.sequence())),
                        );
                        w.last_sequence = Some(w.last_sequence.map_or(last, |s| s.max(last)));
                        for op in b.ops() {
                            *wal_ops_per_ks.entry(op.keyspace).or_default() += 1;
                        }
                    }
                    w.end = Some(end.into());
                }
            }
            w
        })
        .collect();
    let wal_bytes: u64 = wals.iter().map(|w| w.bytes).sum();

    let mut keyspaces: BTreeMap<u8, Keyspace> = state
        .keyspaces
        .iter()
        .map(|(&id, name)| {
            (
                id,
                Keyspace {
                    id,
                    name: name.clone(),
                    tables: 0,
                    estimated_keys: 0,
                    exact_keys: None,
                    exact_live_bytes: None,
                },
            )
        })
        .collect();
    for (_, f) in state.tables() {
        let lo = datadir::user_key(&f.smallest).first().copied().unwrap_or(0);
        let hi = datadir::user_key(&f.largest).first().copied().unwrap_or(0);
        let ids: Vec<u8> = (lo..=hi).filter(|id| keyspaces.contains_key(id)).collect();
        let ids = if ids.is_empty() { vec![lo] } else { ids };
        let share = f.entries.saturating_sub(f.deletions) / ids.len() as u64;
        for id in ids {
            let k = keyspaces.entry(id).or_insert_with(|| Keyspace {
                id,
                name: names.keyspace(id),
                tables: 0,
                estimated_keys: 0,
                exact_keys: None,
                exact_live_bytes: None,
            });
            k.tables += 1;
            k.estimated_keys += share;
        }
    }
    for (id, ops) in &wal_ops_per_ks {
        if let Some(k) = keyspaces.get_mut(id) {
            k.estimated_keys += ops;
        }
    }

    let estimated = levels
        .iter()
        .map(|l| l.entries.saturating_sub(l.tombstones))
        .sum::<u64>()
        + wals
            .iter()
            .filter(|w| w.live)
            .map(|w| w.ops as u64)
            .sum::<u64>();
    let deepest = levels
        .iter()
        .rev()
        .find(|l| l.files > 0)
        .map_or(0, |l| l.bytes);
    let weighted: u64 = levels.iter().map(|l| l.bytes * (l.level as u64 + 2)).sum();

    let live_tables: Vec<String> = state
        .tables()
        .map(|(_, f)| file_name(&filename::table_path(dir, f.number)))
        .collect();
    let other_files = files
        .iter()
        .filter(|f| match f.kind {
            Some(FileKind::Table(_)) => !live_tables.contains(&f.name),
            Some(FileKind::Manifest(_)) => f.name != state.manifest,
            Some(FileKind::Wal(_) | FileKind::Current | FileKind::Lock) => false,
            Some(FileKind::Temp(_)) | None => true,
        })
        .map(|f| format!("{} ({})", f.name, output::bytes(f.size)))
        .collect();

    Report {
        dir: dir.display().to_string(),
        manifest: state.manifest.clone(),
        manifest_bytes: size_of(&state.manifest),
        in_use_by_pid: datadir::lock_holder(dir),
        newest_sequence: levels
            .iter()
            .filter_map(|l| l.largest_sequence)
            .chain(
                wals.iter()
                    .filter(|w| w.live)
                    .filter_map(|w| w.last_sequence),
            )
            .max(),
        reserved_sequence: state.last_sequence,
        log_number: state.log_number,
        next_file_number: state.next_file_number,
        dir_bytes: files.iter().map(|f| f.size).sum(),
        table_bytes,
        wal_bytes,
        levels,
        wals,
        keys: Keys {
            estimated,
            exact: None,
            exact_live_bytes: None,
            exact_stored_bytes: None,
            range_deletes: None,
        },
        amplification: Amplification {
            write_lower_bound: output::divide(weighted, table_bytes),
            space_estimate: output::divide(table_bytes, deepest),
            space_exact: None,
            space_on_disk: None,
        },
        keyspaces: keyspaces.into_values().collect(),
        other_files,
        cluster: None,
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
