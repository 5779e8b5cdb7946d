//! `kvtool inspect PATH`: a data directory, or one of its files, at a glance. Read-only
//! and lock-free, so it is safe while kvd runs (a file kvd deletes meanwhile is an error
//! for that file, nothing worse).

mod cluster;
mod dir;
pub mod exact;
mod manifest;
mod table;
mod wal;

use crate::cli::InspectArgs;
use crate::failure::Failure;
use kv_engine::filename::{self, FileKind};

/// Human output lists at most this many records unless `--limit` says otherwise.
const DEFAULT_HUMAN_LIMIT: usize = 20;

/// Runs `kvtool inspect`.
pub fn run(args: &InspectArgs, json: bool) -> Result<i32, Failure> {
    let path = &args.path;
    if path.is_dir() {
        return dir::run(path, args.exact, json);
    }
    if !path.exists() {
        return Err(Failure::new(format!("{} does not exist", path.display())));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kind = filename::parse(&name);
    // A record limit: what the operator asked for, else everything for scripts and a
    // screenful for people.
    let limit = args.limit.or((!json).then_some(DEFAULT_HUMAN_LIMIT));
    match kind {
        Some(FileKind::Table(_)) => table::run(path, args, limit, json),
        Some(FileKind::Wal(_)) => wal::run(path, args.keys, limit, json),
        Some(FileKind::Manifest(_)) => manifest::run(path, limit, json),
        _ => Err(Failure::new(format!(
            "{} is not a data directory, a table (NNNNNN.sst), a WAL (NNNNNN.log) or a MANIFEST",
            path.display()
        ))),
    }
}
