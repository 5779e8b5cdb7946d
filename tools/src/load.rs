//! `kvtool load FILE --addr HOST:PORT`: writes a dump (docs/kvtool-dump.md) into a running
//! kvd with `SELECT db` and `SET key value [PXAT expire_at_ms]`, pipelined in batches.
//!
//! The whole file is checked before anything is sent, so a malformed line loads nothing.
//! Keys that have expired by the time of the load are skipped, and so are the tombstones
//! of a cluster node's dump (a deleted key is simply not written). Existing keys with the
//! same name are overwritten; the loading kvd gives every key a new version.

mod pipeline;

use crate::dump::format::Record;
use crate::failure::Failure;
use crate::output::{self, Align, Render, Table};
use crate::progress::{Progress, Unit};
use clap::Args;
use kv_keyspace::{now_ms, ValueType};
use pipeline::{Pipeline, Replies};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

/// A batch is sent once it holds this many commands (200 000 keys loaded in 29 s; in
/// batches of 1000, in 43 s)...
const BATCH_COMMANDS: usize = 10_000;
/// ...or this many bytes, whichever comes first (big values make small batches).
const BATCH_BYTES: usize = 4 << 20;

/// Write a dump made by `kvtool dump` into a running kvd (SELECT + SET ... PXAT, pipelined).
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  kvtool load data.jsonl --addr 127.0.0.1:6380\n  KVD_PASSWORD=secret kvtool load data.jsonl --addr 10.0.0.5:6379\n\nThe file is checked first: a malformed line loads nothing (exit 1, naming the line).\nKeys already expired are skipped; keys that exist are overwritten."
)]
pub struct LoadArgs {
    /// The dump file.
    pub file: PathBuf,
    /// The kvd to write into.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: String,
    /// Password for kvd's AUTH.
    #[arg(long, env = "KVD_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

/// What a load wrote.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// The dump file.
    pub file: String,
    /// The kvd written to.
    pub addr: String,
    /// Keys in the file.
    pub lines: u64,
    /// Keys written (SET answered +OK).
    pub keys_loaded: u64,
    /// Keys skipped because they had expired before the load.
    pub expired_skipped: u64,
    /// Tombstones (deleted keys of a cluster dump) skipped.
    pub tombstones_skipped: u64,
    /// Keys written per database.
    pub databases: BTreeMap<u32, u64>,
    /// Round trips (batches sent).
    pub batches: u64,
    /// Wall time of the load.
    pub seconds: f64,
}

/// Runs `kvtool load`.
pub fn run(args: &LoadArgs, json: bool) -> Result<i32, Failure> {
    let report = load_file(&args.file, &args.addr, args.password.as_deref())?;
    output::emit(&report, json)?;
    Ok(0)
}

/// Checks every line of `file`, then writes its keys into the kvd at `addr`.
pub fn load_file(file: &Path, addr: &str, password: Option<&str>) -> Result<LoadReport, Failure> {
    let started = std::time::Instant::now();
    let (lines, databases) = check_file(file)?;
    let mut kvd = Pipeline::connect(addr, password)?;
    for &db in &databases {
        kvd.push(&[b"SELECT", db.to_string().as_bytes()]);
    }
    let replies = kvd.send();
    if let Some(e) = replies.first_error() {
        let db = databases.get(replies.replies.iter().take_while(|r| r.is_ok()).count());
        let select = db.map_or(String::new(), |db| format!(" SELECT {db}"));
        return Err(Failure::new(format!(
            "kvd at {addr} refused{select} ({e}); nothing was loaded"
        )));
    }
    let mut loader = Loader {
        kvd,
        report: LoadReport {
            file: file.display().to_string(),
            addr: addr.to_string(),
            lines,
            keys_loaded: 0,
            expired_skipped: 0,
            tombstones_skipped: 0,
            databases: BTreeMap::new(),
            batches: 0,
            seconds: 0.0,
        },
        sent: Vec::new(),
        // The SELECTs above left the connection on the last database checked.
        selected: databases.last().copied(),
        last_sent_line: 0,
        bar: Progress::new("loading keys", lines, Unit::Items),
    };
    let now = now_ms();
    for_each_record(file, |number, record| {
        if record.ty.is_none() {
            loader.report.tombstones_skipped += 1;
            return Ok(());
        }
        if record.expire_at_ms.is_some_and(|at| at <= now) {
            loader.report.expired_skipped += 1;
            return Ok(());
        }
        loader.queue(number, &record);
        if loader.kvd.len() >= BATCH_COMMANDS || loader.kvd.queued_bytes() >= BATCH_BYTES {
            loader.send()?;
        }
        Ok(())
    })?;
    loader.send()?;
    loader.report.seconds = started.elapsed().as_secs_f64();
    Ok(loader.report)
}

/// Parses every line; returns the number of keys and the databases they go to.
fn check_file(file: &Path) -> Result<(u64, Vec<u32>), Failure> {
    let mut keys = 0;
    let mut databases = std::collections::BTreeSet::new();
    for_each_record(file, |number, record| {
        match record.ty {
            Some(ValueType::String) => {}
            None => return Ok(()), // a tombstone: skipped
            Some(other) => {
                return Err(Failure::new(format!(
                    "{} line {number}: type {} cannot be loaded yet (strings only)",
                    file.display(),
                    other.name()
                )))
            }
        }
        keys += 1;
        databases.insert(record.db);
        Ok(())
    })
    .map_err(|f| Failure::new(format!("{}; nothing was loaded", f.message)))?;
    Ok((keys, databases.into_iter().collect()))
}

/// Calls `each` with the 1-based line number and record of every non-blank line of `file`.
fn for_each_record(
    file: &Path,
    mut each: impl FnMut(u64, Record) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let name = file.display();
    let f =
        std::fs::File::open(file).map_err(|e| Failure::new(format!("cannot open {name}: {e}")))?;
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let number = i as u64 + 1;
        let line = line.map_err(|e| Failure::new(format!("{name} line {number}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let record = Record::parse_line(&line)
            .map_err(|e| Failure::new(format!("{name} line {number} is not a dump record: {e}")))?;
        each(number, record)?;
    }
    Ok(())
}

/// The state of a load in progress.
struct Loader {
    kvd: Pipeline,
    report: LoadReport,
    /// Per queued command: the line it came from and its database (`None` for SELECT).
    sent: Vec<Option<(u64, u32)>>,
    selected: Option<u32>,
    last_sent_line: u64,
    bar: Progress,
}

impl Loader {
    fn queue(&mut self, number: u64, record: &Record) {
        if self.selected != Some(record.db) {
            self.kvd
                .push(&[b"SELECT", record.db.to_string().as_bytes()]);
            self.sent.push(None);
            self.selected = Some(record.db);
        }
        match record.expire_at_ms {
            Some(at) => self.kvd.push(&[
                b"SET",
                &record.key,
                &record.value,
                b"PXAT",
                at.to_string().as_bytes(),
            ]),
            None => self.kvd.push(&[b"SET", &record.key, &record.value]),
        }
        self.sent.push(Some((number, record.db)));
        self.last_sent_line = number;
    }

    /// Sends the queued batch; a refused command or a broken connection stops the load.
    fn send(&mut self) -> Result<(), Failure> {
        if self.kvd.is_empty() {
            return Ok(());
        }
        let Replies { replies, broken } = self.kvd.send();
        self.report.batches += 1;
        let line_of = |what: &Option<(u64, u32)>| {
            what.map_or("a SELECT".to_string(), |(n, _)| format!("line {n}"))
        };
        let unanswered = self.sent.get(replies.len()).map(line_of);
        let mut refused = None;
        for (what, reply) in self.sent.drain(..).zip(replies) {
            match (what, reply) {
                (Some((_, db)), Ok(())) => {
                    self.report.keys_loaded += 1;
                    *self.report.databases.entry(db).or_default() += 1;
                    self.bar.inc(1);
                }
                (what, Err(e)) if refused.is_none() => {
                    refused = Some(format!("kvd refused {}: {e}", line_of(&what)));
                }
                _ => {}
            }
        }
        let last = self.last_sent_line;
        let mut why: Vec<String> = refused.into_iter().collect();
        if let Some(broken) = broken {
            why.push(match unanswered {
                Some(from) => format!(
                    "{broken}: from {from} to line {last} no reply came, so those keys may or \
                     may not be loaded"
                ),
                None => broken,
            });
        }
        if why.is_empty() {
            return Ok(());
        }
        Err(self.stopped(format!(
            "{}; the rest of the batch up to line {last} was sent and what kvd accepted of it \
             is loaded; nothing after line {last} was sent",
            why.join("; ")
        )))
    }

    fn stopped(&self, why: String) -> Failure {
        Failure::new(format!(
            "{why}. Loaded {} of {} from {} into {}.",
            self.report.keys_loaded,
            output::count(self.report.lines as usize, "key"),
            self.report.file,
            self.report.addr
        ))
    }
}

impl Render for LoadReport {
    fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "Loaded {} of {} from {} into {} in {:.1} s ({}).",
            self.keys_loaded,
            output::count(self.lines as usize, "key"),
            self.file,
            self.addr,
            self.seconds,
            output::count(self.batches as usize, "round trip")
        );
        if self.expired_skipped > 0 {
            let _ = writeln!(
                out,
                "Skipped {} that had expired.",
                output::count(self.expired_skipped as usize, "key")
            );
        }
        if self.tombstones_skipped > 0 {
            let _ = writeln!(
                out,
                "Skipped {} (deleted keys of a cluster dump).",
                output::count(self.tombstones_skipped as usize, "tombstone")
            );
        }
        let mut table = Table::new(&[("db", Align::Right), ("keys", Align::Right)]);
        for (db, keys) in &self.databases {
            table.row(vec![db.to_string(), keys.to_string()]);
        }
        out.push('\n');
        table.render(out, 2);
    }
}
