//! Opening a data directory with the engine for the commands that change it (compact,
//! backup), and running a blocking engine call while a progress bar moves.

use crate::failure::Failure;
use crate::progress::{Progress, Unit};
use kv_engine::{Db, FsyncPolicy, Options};
use std::path::Path;
use std::time::Duration;

/// How often a running job's progress is sampled.
const POLL: Duration = Duration::from_millis(100);

/// Engine options for kvtool: never create a database, fsync everything it writes.
pub fn options() -> Options {
    Options {
        create_if_missing: false,
        fsync: FsyncPolicy::Always,
        ..Options::default()
    }
}

/// Opens the database in `dir` for exclusive use; a directory kvd holds is refused with
/// [`crate::failure::EXIT_BUSY`].
pub fn open(dir: &Path) -> Result<Db, Failure> {
    if !dir.join(kv_engine::filename::CURRENT).exists() {
        return Err(Failure::new(format!(
            "{} is not a kvd data directory (it has no CURRENT file)",
            dir.display()
        )));
    }
    Db::open(dir, options()).map_err(|e| Failure::engine(dir, e))
}

/// Runs `job` on another thread and, until it returns, lets `sample` move a bar
/// labelled `what` every [`POLL`] (`total` 0: a spinner).
pub fn with_progress<T: Send>(
    what: &str,
    total: u64,
    unit: Unit,
    mut sample: impl FnMut(&mut Progress),
    job: impl FnOnce() -> T + Send,
) -> T {
    let mut bar = Progress::new(what, total, unit);
    std::thread::scope(|s| {
        let handle = s.spawn(job);
        while !handle.is_finished() {
            sample(&mut bar);
            std::thread::sleep(POLL);
        }
        match handle.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
