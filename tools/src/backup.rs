//! `kvtool backup`: a consistent checkpoint, offline through `Db::checkpoint`, online
//! through kvd's `CHECKPOINT <dest>`. Either way the copy holds every write
//! acknowledged before the backup began, and `kvd --dir DEST` starts from it.
//!
//! After an offline backup (and after an online one whose DEST is visible from here)
//! the copy is checked with `verify`.

use crate::cli::BackupArgs;
use crate::failure::Failure;
use crate::output::{self, Render};
use crate::progress::Unit;
use crate::resp::Connection;
use crate::{offline, verify};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Serialize)]
struct Report {
    source: String,
    dest: String,
    seconds: f64,
    /// Files and bytes in DEST (tables are often hard links, so not extra space).
    files: usize,
    bytes: u64,
    /// Last sequence number the source had assigned (offline only).
    last_sequence: Option<u64>,
    /// `None` when the backup was not verified.
    verified: Option<verify::Summary>,
}

impl Render for Report {
    fn render(&self, out: &mut String) {
        out.push_str(&format!(
            "Backed up {} to {} in {:.1} s\n",
            self.source, self.dest, self.seconds
        ));
        let mut f = vec![(
            "files",
            format!("{} ({})", self.files, output::bytes(self.bytes)),
        )];
        if let Some(seq) = self.last_sequence {
            f.push(("last sequence", seq.to_string()));
        }
        f.push((
            "verified",
            match &self.verified {
                None => "no".to_string(),
                Some(s) if s.errors == 0 => {
                    format!("healthy ({})", output::count(s.warnings, "warning"))
                }
                Some(s) => format!("{} ERRORS: run `kvtool verify {}`", s.errors, self.dest),
            },
        ));
        output::fields(out, 2, &f);
    }
}

/// Runs `kvtool backup`.
pub fn run(args: &BackupArgs, json: bool) -> Result<i32, Failure> {
    let (source, dest, addr) = match (&args.target.addr, args.paths.as_slice()) {
        (Some(addr), [dest]) => (None, absolute(dest)?, addr.clone()),
        (None, [dir, dest]) => (Some(dir.clone()), dest.clone(), String::new()),
        (Some(_), _) => return Err(Failure::usage("with --addr give only DEST")),
        (None, _) => {
            return Err(Failure::usage(
                "give DIR and DEST (or --addr HOST:PORT DEST)",
            ))
        }
    };
    refuse_non_empty(&dest)?;
    let started = Instant::now();
    let last_sequence = match &source {
        Some(dir) => Some(offline_backup(dir, &dest)?),
        None => {
            let mut conn = Connection::open(&addr, args.target.password.as_deref())?;
            conn.set_timeout(None);
            let dest_text = dest.to_string_lossy().into_owned();
            offline::with_progress(
                "kvd checkpointing",
                0,
                Unit::Items,
                |bar| bar.tick(),
                || conn.expect_ok(&[b"CHECKPOINT", dest_text.as_bytes()]),
            )?;
            None
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    // An online DEST lives on kvd's machine; verify it when it is also visible here.
    let verified = (!args.no_verify && dest.join(kv_engine::filename::CURRENT).exists())
        .then(|| verify::check(&dest).summary());
    let (files, bytes) = dir_size(&dest);
    let report = Report {
        source: source.map_or(addr, |d| d.display().to_string()),
        dest: dest.display().to_string(),
        seconds,
        files,
        bytes,
        last_sequence,
        verified,
    };
    output::emit(&report, json)?;
    Ok(match &report.verified {
        Some(s) if s.errors > 0 => crate::failure::EXIT_FAILED,
        _ => 0,
    })
}

/// An absolute DEST, since kvd resolves relative paths against its own working directory.
fn absolute(dest: &Path) -> Result<PathBuf, Failure> {
    std::path::absolute(dest)
        .map_err(|e| Failure::new(format!("cannot make {} absolute: {e}", dest.display())))
}

fn refuse_non_empty(dest: &Path) -> Result<(), Failure> {
    let has_entries = std::fs::read_dir(dest).is_ok_and(|mut e| e.next().is_some());
    match has_entries {
        true => Err(Failure::new(format!(
            "{} exists and is not empty; a backup needs a new or empty directory",
            dest.display()
        ))),
        false => Ok(()),
    }
}

/// Opens `dir`, checkpoints it into `dest`, closes; returns the last sequence number.
fn offline_backup(dir: &Path, dest: &Path) -> Result<u64, Failure> {
    let db = offline::open(dir)?;
    let seq = db.latest_sequence();
    offline::with_progress(
        "checkpointing",
        0,
        Unit::Items,
        |bar| bar.tick(),
        || db.checkpoint(dest),
    )
    .map_err(|e| Failure::engine(dir, e))?;
    db.close().map_err(|e| Failure::engine(dir, e))?;
    Ok(seq)
}

/// Number and total size of the regular files in `dir`.
fn dir_size(dir: &Path) -> (usize, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    entries
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .fold((0, 0), |(n, b), m| (n + 1, b + m.len()))
}
