//! Why a command failed, in words for the operator, and the exit status that says so.

use std::path::Path;

/// Exit status: the work failed, or verify found problems.
pub const EXIT_FAILED: i32 = 1;
/// Exit status: the command line does not make sense (clap uses the same).
pub const EXIT_USAGE: i32 = 2;
/// Exit status: the data directory is locked by a running kvd (or another process).
pub const EXIT_BUSY: i32 = 3;
/// Exit status: stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;

/// A failed command: the message printed on stderr and the process exit status.
#[derive(Debug)]
pub struct Failure {
    /// Exit status.
    pub code: i32,
    /// What went wrong and, where we know, what to do about it.
    pub message: String,
}

impl Failure {
    /// A failure with exit status [`EXIT_FAILED`].
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_FAILED,
            message: message.into(),
        }
    }

    /// A command line that does not make sense, exit status [`EXIT_USAGE`].
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// Stopped by Ctrl-C or SIGTERM, exit status [`EXIT_INTERRUPTED`].
    pub fn interrupted() -> Self {
        Failure {
            code: EXIT_INTERRUPTED,
            message: "interrupted".into(),
        }
    }

    /// An engine error met while working on `dir`, with advice for the ones an operator
    /// can act on.
    pub fn engine(dir: &Path, err: kv_engine::Error) -> Self {
        match err {
            kv_engine::Error::Busy(_) => Failure {
                code: EXIT_BUSY,
                message: format!(
                    "{} is in use by a running kvd (or another process holds its LOCK).\n\
                     Stop that server first, or let it do the work: add --addr HOST:PORT.",
                    dir.display()
                ),
            },
            kv_engine::Error::Corruption { .. } => Failure::new(format!(
                "{err}\nRun `kvtool verify {}` for a full report.",
                dir.display()
            )),
            other => Failure::new(other.to_string()),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::new(format!("cannot write output: {e}"))
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure::new(message)
    }
}
