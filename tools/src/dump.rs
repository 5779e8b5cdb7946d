//! `kvtool dump DIR`: every live key of every logical database of an offline kvd data
//! directory, as JSON lines (format: [`format`], docs/kvtool-dump.md).
//!
//! Only what kvd would serve is written: the keys of each database's current namespace
//! (keys orphaned by FLUSHDB are skipped), not expired at the dump's start, in the order
//! (db, slot, key hash, key), the data-key order (docs/format/keyspace.md). The directory
//! must not be in use: a running kvd holds its LOCK.
//!
//! A cluster node's directory is dumped by [`cluster`]: its replicated records, with
//! their cluster versions and tombstones, optionally restricted to some partitions.

pub mod cluster;
pub mod format;

use crate::escape::escape;
use crate::failure::Failure;
use crate::output::{self, Align, Render, Table};
use crate::progress::{Progress, Unit};
use clap::Args;
use format::{DumpVersion, Record};
use kv_engine::{Db, Keyspace};
use kv_keyspace::data_key::{split_data_key, ScanPosition};
use kv_keyspace::encoding::decode_value;
use kv_keyspace::format::{stored_format, FORMAT_VERSION};
use kv_keyspace::namespace_iter::NamespaceIter;
use kv_keyspace::namespaces::{Namespaces, META_KEYSPACE, META_NAMESPACES};
use kv_keyspace::slot::key_partition;
use kv_keyspace::{now_ms, ValueType, PARTITIONS};
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Lines are collected into a buffer of about this size before each write.
const WRITE_CHUNK: usize = 1 << 20;

/// Write every live key of a kvd data directory (offline) as JSON lines: db, key, value,
/// type, expire_at_ms, version. `kvtool load` writes such a file into a running kvd.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  kvtool dump ./data > data.jsonl\n  kvtool dump ./data --out data.jsonl --db 0\n  kvtool dump ./cluster/n1 --partition 17     # a cluster node: one partition's records\n  kvtool dump ./cluster/n2 --owned            # the partitions the node's layout gives it\n\nFormat: docs/kvtool-dump.md. Keys and values are JSON strings with one character per byte\n(\\u00XX for bytes that are not printable ASCII). The directory must not be in use by kvd (exit 3)."
)]
pub struct DumpArgs {
    /// The data directory.
    pub dir: PathBuf,
    /// Write the dump to FILE (replaced only once the dump is complete) and print a summary;
    /// without it the dump goes to stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Dump only logical database N.
    #[arg(long, value_name = "N")]
    pub db: Option<u32>,
    /// Dump only keys of partition P (0-255: CRC16 slot / 64, as CLUSTER KEYSLOT / 64);
    /// may be given several times.
    #[arg(long, value_name = "P", value_parser = clap::value_parser!(u16).range(0..PARTITIONS as i64))]
    pub partition: Vec<u16>,
    /// Cluster node directories: dump only the partitions its layout gives this node.
    #[arg(long)]
    pub owned: bool,
}

/// Which keys a dump writes.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only this logical database.
    pub db: Option<u32>,
    /// Only these partitions (empty: all).
    pub partitions: Vec<u16>,
    /// Only the partitions the node's layout gives it (cluster node directories).
    pub owned: bool,
}

impl DumpArgs {
    /// The keys the command line chose.
    pub fn selection(&self) -> Selection {
        Selection {
            db: self.db,
            partitions: self.partition.clone(),
            owned: self.owned,
        }
    }
}

/// What a dump wrote.
#[derive(Debug, Clone, Serialize)]
pub struct DumpReport {
    /// The data directory.
    pub dir: String,
    /// The dump file (`None`: stdout).
    pub out: Option<String>,
    /// The cluster node whose directory this is (`None`: a single-node directory).
    pub node_id: Option<String>,
    /// Keys written, per database dumped (empty ones left out unless chosen with --db).
    pub databases: Vec<DatabaseCount>,
    /// Keys written in all (not counting tombstones).
    pub keys: u64,
    /// Tombstones written (deleted keys of a cluster node; 0 for a single node).
    pub tombstones: u64,
    /// Keys skipped because they had expired when the dump started.
    pub expired_skipped: u64,
    /// Bytes of dump written.
    pub bytes_written: u64,
}

/// Keys of one logical database.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseCount {
    /// SELECT index.
    pub db: u32,
    /// Its namespace in the engine.
    pub namespace: u32,
    /// Keys written.
    pub keys: u64,
    /// Bytes of keys and values (unescaped).
    pub bytes: u64,
}

/// Runs `kvtool dump`.
pub fn run(args: &DumpArgs, json: bool) -> Result<i32, Failure> {
    let Some(out_path) = &args.out else {
        let mut stdout = Stdout { closed: false };
        return match dump_selected(&args.dir, &args.selection(), &mut stdout, now_ms()) {
            Err(_) if stdout.closed => Ok(0),
            other => other.map(|_| 0),
        };
    };
    let partial = partial_path(out_path);
    let file = std::fs::File::create(&partial)
        .map_err(|e| Failure::new(format!("cannot create {}: {e}", partial.display())))?;
    let mut writer = std::io::BufWriter::new(file);
    let result =
        dump_selected(&args.dir, &args.selection(), &mut writer, now_ms()).and_then(|report| {
            let file = writer.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            std::fs::rename(&partial, out_path)?;
            Ok(report)
        });
    let mut report = match result {
        Ok(r) => r,
        Err(f) => {
            let _ = std::fs::remove_file(&partial);
            return Err(f);
        }
    };
    report.out = Some(out_path.display().to_string());
    output::emit(&report, json)?;
    Ok(0)
}

/// Stdout that notes when its reader has gone (`kvtool dump DIR | head`): the dump then
/// ends early, which is not a failure.
struct Stdout {
    closed: bool,
}

impl Stdout {
    fn note<T>(&mut self, r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r {
            self.closed |= e.kind() == std::io::ErrorKind::BrokenPipe;
        }
        r
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = std::io::stdout().lock().write(buf);
        self.note(r)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = std::io::stdout().lock().flush();
        self.note(r)
    }
}

/// `FILE.partial`, where the dump is written until it is complete.
fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// Writes the dump of the directory `dir` (only database `only_db` if given) to `out`;
/// keys that expire at or before `now_ms` are skipped.
pub fn dump_dir(
    dir: &Path,
    only_db: Option<u32>,
    out: &mut dyn Write,
    now_ms: i64,
) -> Result<DumpReport, Failure> {
    let selection = Selection {
        db: only_db,
        ..Selection::default()
    };
    dump_selected(dir, &selection, out, now_ms)
}

/// Writes the keys of `dir` that `selection` chooses to `out` (a cluster node's records
/// when `dir` belongs to one); keys that expire at or before `now_ms` are skipped.
pub fn dump_selected(
    dir: &Path,
    selection: &Selection,
    out: &mut dyn Write,
    now_ms: i64,
) -> Result<DumpReport, Failure> {
    let facts = crate::cluster_dir::read_facts(dir).map_err(Failure::new)?;
    if facts.is_none() && selection.owned {
        return Err(Failure::usage(format!(
            "--owned: {} is not a cluster node's directory (no cluster/node.json)",
            dir.display()
        )));
    }
    let db = crate::offline::open(dir).map_err(|f| match f.code {
        crate::failure::EXIT_BUSY => Failure {
            message: format!(
                "{} is in use by a running kvd (or another process holds its LOCK).\n\
                 Stop that server first, or dump a copy: `kvtool backup --addr HOST:PORT DEST`, \
                 then `kvtool dump DEST`.",
                dir.display()
            ),
            ..f
        },
        _ => f,
    })?;
    let result = match &facts {
        Some(facts) => cluster::dump_records(&db, dir, facts, selection, out, now_ms),
        None => dump_open(&db, dir, selection, out, now_ms),
    };
    db.close().map_err(|e| Failure::engine(dir, e))?;
    result
}

fn dump_open(
    db: &Db,
    dir: &Path,
    selection: &Selection,
    out: &mut dyn Write,
    now_ms: i64,
) -> Result<DumpReport, Failure> {
    let only_db = selection.db;
    let namespaces = namespace_map(db, dir)?;
    let selected: Vec<u32> = match only_db {
        Some(n) if n as usize >= namespaces.len() => {
            return Err(Failure::usage(format!(
                "--db {n}: {} has databases 0..{} only",
                dir.display(),
                namespaces.len().saturating_sub(1)
            )))
        }
        Some(n) => vec![n],
        None => (0..namespaces.len() as u32).collect(),
    };
    let mut report = DumpReport {
        dir: dir.display().to_string(),
        out: None,
        node_id: None,
        databases: Vec::new(),
        keys: 0,
        tombstones: 0,
        expired_skipped: 0,
        bytes_written: 0,
    };
    let mut bar = Progress::new("dumping keys", 0, Unit::Items);
    let mut buf = String::with_capacity(WRITE_CHUNK + 4096);
    let snapshot = db.snapshot();
    let engine = |e| Failure::engine(dir, e);
    for n in selected {
        let namespace = namespaces[n as usize];
        let mut count = DatabaseCount {
            db: n,
            namespace,
            keys: 0,
            bytes: 0,
        };
        let entries = NamespaceIter::new(
            db,
            Keyspace::DEFAULT,
            namespace,
            ScanPosition::START,
            Some(&snapshot),
        )
        .map_err(engine)?;
        for entry in entries {
            let entry = entry.map_err(engine)?;
            let parts = split_data_key(&entry.key);
            let key = parts.map_or(&entry.key[..], |p| p.key);
            let bad = |what: &str| {
                Failure::new(format!(
                    "database {n}, key \"{}\" (version {}): {what}",
                    escape(key),
                    entry.seq
                ))
            };
            if parts.is_none() {
                return Err(bad(
                    "the engine key's slot or hash does not match the key (run `kvtool verify`)",
                ));
            }
            if !selection.partitions.is_empty()
                && !selection.partitions.contains(&key_partition(key))
            {
                continue;
            }
            let value = decode_value(&entry.value)
                .ok_or_else(|| bad("the value is not a kvd value (run `kvtool verify`)"))?;
            if value.ty != ValueType::String {
                return Err(bad(&format!(
                    "type {} cannot be dumped yet (kvtool dump knows strings only)",
                    value.ty.name()
                )));
            }
            if value.expire_at.is_some_and(|at| at <= now_ms) {
                report.expired_skipped += 1;
                continue;
            }
            Record {
                db: n,
                key: key.to_vec(),
                value: value.payload.to_vec(),
                ty: Some(value.ty),
                expire_at_ms: value.expire_at,
                version: Some(DumpVersion::Sequence(entry.seq)),
            }
            .write_line(&mut buf);
            count.keys += 1;
            count.bytes += (key.len() + value.payload.len()) as u64;
            bar.inc(1);
            if buf.len() >= WRITE_CHUNK {
                report.bytes_written += write_out(out, &mut buf)?;
            }
        }
        report.keys += count.keys;
        if count.keys > 0 || only_db.is_some() {
            report.databases.push(count);
        }
    }
    report.bytes_written += write_out(out, &mut buf)?;
    out.flush().map_err(write_failed)?;
    Ok(report)
}

fn write_failed(e: std::io::Error) -> Failure {
    Failure::new(format!("cannot write the dump: {e}"))
}

/// Writes and empties `buf`; returns how many bytes it held.
fn write_out(out: &mut dyn Write, buf: &mut String) -> Result<u64, Failure> {
    out.write_all(buf.as_bytes()).map_err(write_failed)?;
    let n = buf.len() as u64;
    buf.clear();
    Ok(n)
}

/// `map[db]` = namespace of logical database `db`, as kvd reads it at start-up. Only a
/// directory at the current keyspace format is read: an older one is migrated by the
/// first start of this kvd, a newer one is refused.
fn namespace_map(db: &Db, dir: &Path) -> Result<Vec<u32>, Failure> {
    let not_kvd = |why: &str| {
        Failure::new(format!(
            "{} holds no kvd namespace map ({why}); was it written by kvd?",
            dir.display()
        ))
    };
    let meta = db
        .keyspaces()
        .into_iter()
        .find(|(_, name)| name == META_KEYSPACE)
        .map(|(ks, _)| ks)
        .ok_or_else(|| not_kvd(&format!("no engine keyspace {META_KEYSPACE:?}")))?;
    let record = db
        .get(meta, META_NAMESPACES)
        .map_err(|e| Failure::engine(dir, e))?
        .ok_or_else(|| not_kvd("no record \"namespaces\""))?;
    let namespaces =
        Namespaces::decode(&record.value).ok_or_else(|| not_kvd("the record is malformed"))?;
    let format = stored_format(db, meta).map_err(|e| Failure::new(e.to_string()))?;
    if format != FORMAT_VERSION {
        return Err(Failure::new(format!(
            "{} was written by an older kvd (keyspace format {format}; this kvtool reads \
             format {FORMAT_VERSION}). Start this version's kvd on it once: it rewrites the \
             keys to the current format at start-up. Then dump it.",
            dir.display()
        )));
    }
    Ok(namespaces.map)
}

impl Render for DumpReport {
    fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let tombstones = if self.node_id.is_some() {
            format!(
                " and {}",
                output::count(self.tombstones as usize, "tombstone")
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "Dumped {}{tombstones} of {} to {} ({}).",
            output::count(self.keys as usize, "key"),
            self.dir,
            self.out.as_deref().unwrap_or("stdout"),
            output::bytes(self.bytes_written)
        );
        if let Some(id) = &self.node_id {
            let _ = writeln!(
                out,
                "Cluster node {id}: replicated records with their cluster versions."
            );
        }
        if self.expired_skipped > 0 {
            let _ = writeln!(
                out,
                "Skipped {} already expired.",
                output::count(self.expired_skipped as usize, "key")
            );
        }
        let mut table = Table::new(&[
            ("db", Align::Right),
            ("namespace", Align::Right),
            ("keys", Align::Right),
            ("bytes", Align::Right),
        ]);
        for d in &self.databases {
            table.row(vec![
                d.db.to_string(),
                d.namespace.to_string(),
                d.keys.to_string(),
                output::bytes(d.bytes),
            ]);
        }
        out.push('\n');
        table.render(out, 2);
    }
}
