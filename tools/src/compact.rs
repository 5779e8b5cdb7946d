//! `kvtool compact`: offline through `Db::compact_range`, online through kvd's `COMPACT`.
//!
//! `--level N` compacts the key range that level N's files cover: the engine compacts a
//! range through every level down to the deepest one holding data, so afterwards level
//! N holds nothing in that range (unless N is itself the deepest level).

use crate::cli::CompactArgs;
use crate::escape::{escape, unescape};
use crate::failure::Failure;
use crate::output::{self, Align, Render, Table};
use crate::progress::Unit;
use crate::resp::Connection;
use crate::{datadir, offline};
use kv_engine::{Db, Keyspace, LevelStats};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// One `compact_range` call: a keyspace and an inclusive key range (None = unbounded).
#[derive(Debug, Clone, Serialize)]
struct Job {
    keyspace: String,
    #[serde(skip)]
    ks: Keyspace,
    start: Option<String>,
    end: Option<String>,
}

#[derive(Debug, Serialize)]
struct LevelChange {
    level: usize,
    files_before: usize,
    bytes_before: u64,
    files_after: usize,
    bytes_after: u64,
}

#[derive(Debug, Serialize)]
struct OfflineReport {
    dir: String,
    ranges: Vec<Job>,
    seconds: f64,
    compaction_bytes_read: u64,
    compaction_bytes_written: u64,
    levels: Vec<LevelChange>,
}

impl Render for OfflineReport {
    fn render(&self, out: &mut String) {
        if self.levels.is_empty() || self.ranges.is_empty() {
            out.push_str(&format!(
                "Nothing to compact in {}: {}\n",
                self.dir,
                if self.levels.is_empty() {
                    "it holds no tables"
                } else {
                    "that level holds no tables"
                }
            ));
            return;
        }
        out.push_str(&format!(
            "Compacted {} in {:.1} s\n",
            self.dir, self.seconds
        ));
        for j in &self.ranges {
            let bound = |b: &Option<String>| b.clone().unwrap_or_else(|| "*".into());
            out.push_str(&format!(
                "  keyspace {}: [{}, {}]\n",
                j.keyspace,
                bound(&j.start),
                bound(&j.end)
            ));
        }
        output::fields(
            out,
            2,
            &[
                ("read", output::bytes(self.compaction_bytes_read)),
                ("written", output::bytes(self.compaction_bytes_written)),
            ],
        );
        let mut t = Table::new(&[
            ("level", Align::Left),
            ("files before", Align::Right),
            ("bytes before", Align::Right),
            ("files after", Align::Right),
            ("bytes after", Align::Right),
        ]);
        for l in &self.levels {
            t.row(vec![
                format!("L{}", l.level),
                l.files_before.to_string(),
                output::bytes(l.bytes_before),
                l.files_after.to_string(),
                output::bytes(l.bytes_after),
            ]);
        }
        out.push('\n');
        t.render(out, 2);
    }
}

#[derive(Debug, Serialize)]
struct OnlineReport {
    addr: String,
    start: Option<String>,
    end: Option<String>,
    seconds: f64,
}

impl Render for OnlineReport {
    fn render(&self, out: &mut String) {
        let range = match (&self.start, &self.end) {
            (Some(s), Some(e)) => format!(" range [{s}, {e}]"),
            _ => String::new(),
        };
        out.push_str(&format!(
            "kvd at {} compacted{range} in {:.1} s\n",
            self.addr, self.seconds
        ));
    }
}

/// Runs `kvtool compact`.
pub fn run(args: &CompactArgs, json: bool) -> Result<i32, Failure> {
    let range = match &args.range {
        Some(r) if r.len() == 2 => Some((
            unescape(&r[0]).map_err(Failure::usage)?,
            unescape(&r[1]).map_err(Failure::usage)?,
        )),
        _ => None,
    };
    if let Some((s, e)) = &range {
        if s > e {
            return Err(Failure::usage("--range START END: START is after END"));
        }
    }
    if let Some(level) = args.level {
        if level >= kv_engine::constants::NUM_LEVELS {
            return Err(Failure::usage(format!(
                "--level {level}: levels are 0 to {}",
                kv_engine::constants::NUM_LEVELS - 1
            )));
        }
    }
    if let Some(addr) = &args.target.addr {
        let report = online(addr, args.target.password.as_deref(), range)?;
        output::emit(&report, json)?;
        return Ok(0);
    }
    let Some(dir) = &args.dir else {
        return Err(Failure::usage("give a data directory or --addr HOST:PORT"));
    };
    let report = offline_compact(dir, args, range)?;
    output::emit(&report, json)?;
    Ok(0)
}

fn find_keyspace(db: &Db, name: &str) -> Result<Keyspace, Failure> {
    let all = db.keyspaces();
    all.iter()
        .find(|(_, n)| n == name)
        .map(|(ks, _)| *ks)
        .ok_or_else(|| {
            let names: Vec<&str> = all.iter().map(|(_, n)| n.as_str()).collect();
            Failure::new(format!(
                "no keyspace named {name:?} (there are: {})",
                names.join(", ")
            ))
        })
}

/// The compactions a command line asks for.
fn plan(
    db: &Db,
    dir: &Path,
    args: &CompactArgs,
    range: Option<(Vec<u8>, Vec<u8>)>,
) -> Result<Vec<Job>, Failure> {
    let job = |ks: Keyspace, name: &str, start: Option<&[u8]>, end: Option<&[u8]>| Job {
        keyspace: name.to_string(),
        ks,
        start: start.map(escape),
        end: end.map(escape),
    };
    let keyspaces = db.keyspaces();
    if let Some(level) = args.level {
        let state = datadir::LiveState::load(dir).map_err(|e| Failure::engine(dir, e))?;
        let Some((lo, hi)) = state.level_range(level) else {
            return Ok(Vec::new());
        };
        // The range may cross keyspaces: the first byte of a stored key is its keyspace.
        let (lo_ks, hi_ks) = (
            lo.first().copied().unwrap_or(0),
            hi.first().copied().unwrap_or(0),
        );
        let mut jobs = Vec::new();
        for (ks, name) in &keyspaces {
            let id = ks.id();
            if id < lo_ks || id > hi_ks {
                continue;
            }
            let start = (id == lo_ks).then(|| &lo[1.min(lo.len())..]);
            let end = (id == hi_ks).then(|| &hi[1.min(hi.len())..]);
            jobs.push(job(*ks, name, start, end));
        }
        return Ok(jobs);
    }
    match (&args.keyspace, range) {
        (name, Some((s, e))) => {
            let name = name.as_deref().unwrap_or("default");
            Ok(vec![job(
                find_keyspace(db, name)?,
                name,
                Some(&s),
                Some(&e),
            )])
        }
        (Some(name), None) => Ok(vec![job(find_keyspace(db, name)?, name, None, None)]),
        (None, None) => Ok(keyspaces
            .iter()
            .map(|(ks, name)| job(*ks, name, None, None))
            .collect()),
    }
}

fn offline_compact(
    dir: &Path,
    args: &CompactArgs,
    range: Option<(Vec<u8>, Vec<u8>)>,
) -> Result<OfflineReport, Failure> {
    let db = offline::open(dir)?;
    let jobs = plan(&db, dir, args, range)?;
    let before = db.stats();
    let total: u64 = before.levels.iter().map(|l| l.bytes).sum();
    let started = Instant::now();
    let base_read = before.compaction_bytes_read;
    let result = offline::with_progress(
        "compacting",
        total,
        Unit::Bytes,
        |bar| bar.set(db.stats().compaction_bytes_read.saturating_sub(base_read)),
        || -> kv_engine::Result<()> {
            for j in &jobs {
                let unescaped = |b: &Option<String>| b.as_deref().map(unescape);
                let start = unescaped(&j.start).transpose().unwrap_or_default();
                let end = unescaped(&j.end).transpose().unwrap_or_default();
                db.compact_range(j.ks, start.as_deref(), end.as_deref())?;
            }
            Ok(())
        },
    );
    result.map_err(|e| Failure::engine(dir, e))?;
    let after = db.stats();
    db.close().map_err(|e| Failure::engine(dir, e))?;
    let level = |ls: &[LevelStats], i: usize| ls.get(i).cloned().unwrap_or_default();
    Ok(OfflineReport {
        dir: dir.display().to_string(),
        ranges: jobs,
        seconds: started.elapsed().as_secs_f64(),
        compaction_bytes_read: after.compaction_bytes_read - base_read,
        compaction_bytes_written: after
            .compaction_bytes_written
            .saturating_sub(before.compaction_bytes_written),
        levels: (0..before.levels.len().max(after.levels.len()))
            .map(|i| {
                let (b, a) = (level(&before.levels, i), level(&after.levels, i));
                LevelChange {
                    level: i,
                    files_before: b.files,
                    bytes_before: b.bytes,
                    files_after: a.files,
                    bytes_after: a.bytes,
                }
            })
            .filter(|l| l.files_before + l.files_after > 0)
            .collect(),
    })
}

/// INFO fields that count running compactions: kvd's, and the name first agreed on.
const COMPACTIONS_RUNNING: [&str; 2] = ["engine_compactions_running", "compaction_running"];

/// INFO field counting bytes compactions have read since kvd started.
const COMPACTION_READ: &str = "engine_compaction_bytes_read";

/// The numeric value of INFO field `name`.
fn info_number(info: &[(String, String)], name: &str) -> Option<u64> {
    info.iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// How often the online spinner asks kvd whether compaction is still running.
const INFO_POLL: Duration = Duration::from_millis(500);

fn online(
    addr: &str,
    password: Option<&str>,
    range: Option<(Vec<u8>, Vec<u8>)>,
) -> Result<OnlineReport, Failure> {
    let mut conn = Connection::open(addr, password)?;
    conn.set_timeout(None);
    // A second connection watches INFO so the operator sees kvd is working.
    let mut watcher = Connection::open(addr, password).ok();
    let started = Instant::now();
    let mut last_poll: Option<Instant> = None;
    let mut args: Vec<&[u8]> = vec![b"COMPACT"];
    if let Some((s, e)) = &range {
        args.extend_from_slice(&[b"RANGE", s, e]);
    }
    let mut poll = move || watcher.as_mut().and_then(|w| w.info(Some("engine")).ok());
    let base_read = poll().and_then(|info| info_number(&info, COMPACTION_READ));
    let result = offline::with_progress(
        "kvd compacting",
        0,
        Unit::Bytes,
        |bar| {
            bar.tick();
            if last_poll.is_some_and(|t| t.elapsed() < INFO_POLL) {
                return;
            }
            last_poll = Some(Instant::now());
            let Some(info) = poll() else { return };
            if let (Some(now), Some(base)) = (info_number(&info, COMPACTION_READ), base_read) {
                bar.set(now.saturating_sub(base));
            }
            if let Some(n) = COMPACTIONS_RUNNING
                .iter()
                .find_map(|f| info_number(&info, f))
            {
                bar.message(&format!("kvd compacting ({n} running)"));
            }
        },
        || conn.expect_ok(&args),
    );
    result?;
    Ok(OnlineReport {
        addr: addr.to_string(),
        start: range.as_ref().map(|(s, _)| escape(s)),
        end: range.as_ref().map(|(_, e)| escape(e)),
        seconds: started.elapsed().as_secs_f64(),
    })
}
