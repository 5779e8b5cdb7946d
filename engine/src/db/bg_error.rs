//! Background errors: which ones pass and which stop writes for good (RocksDB's
//! `ErrorHandler` is the model).
//!
//! An error in background work (or in a write's own WAL work) stops writes. It is
//! **soft** when it happened while creating or filling a *new* file for a flush, a
//! compaction or a memtable switch, and the OS said it was out of a resource that comes
//! back: descriptors (`EMFILE`, `ENFILE`), space (`ENOSPC`, `EDQUOT`), or a call that was
//! interrupted or would block (`EINTR`, `EAGAIN`). Nothing durable depends on that file
//! yet, so the work can simply be done again: writes fail fast with
//! [`Error::Suspended`] meanwhile, and auto-resume (`db/resume.rs`) retries with backoff.
//!
//! Everything else is **fatal** and the Db stays read-only until it is reopened:
//! corruption, any error while appending to or fsyncing the WAL (the log may end in a
//! partial record; and after a failed fsync the kernel may have dropped the dirty pages
//! and cleared the error, so a retry that "succeeds" proves nothing: PostgreSQL's
//! fsyncgate), the sequence reservation in the manifest, a panic, and `EIO` anywhere.

use crate::constants::MAX_RESUME_BACKOFF;
use crate::error::Error;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

/// What the Db was doing when the error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Writing an immutable memtable to an L0 table (and recording it).
    Flush,
    /// Merging tables (and recording the result).
    Compaction,
    /// Creating the next WAL at a memtable switch (and syncing its directory).
    NewWal,
    /// Appending a commit group to the WAL, or fsyncing it.
    Wal,
    /// Recording a sequence-number reservation in the manifest.
    SequenceReservation,
    /// A panic in the write path.
    Panic,
}

/// Whether the Db may recover by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Severity {
    /// Retried by auto-resume; writes are suspended meanwhile.
    Soft,
    /// Writes stop until the Db is reopened.
    Fatal,
}

/// The error that stopped writes, and the state of the attempts to get past it.
#[derive(Debug, Clone)]
pub(crate) struct BgError {
    /// The error, as text (the newest failure while retrying).
    pub(crate) message: String,
    pub(crate) origin: Origin,
    pub(crate) severity: Severity,
    /// Resume attempts that failed since the error was set.
    pub(crate) failed_attempts: u32,
    /// When auto-resume tries next.
    pub(crate) next_attempt: Instant,
}

impl BgError {
    pub(crate) fn new(origin: Origin, err: &Error, first_retry: Duration) -> BgError {
        BgError {
            message: err.to_string(),
            origin,
            severity: severity(origin, err),
            failed_attempts: 0,
            next_attempt: Instant::now() + first_retry,
        }
    }

    /// Notes a failed resume attempt: the newest cause, and a doubled wait before the next.
    pub(crate) fn attempt_failed(&mut self, err: &Error, interval: Duration) {
        self.message = err.to_string();
        self.failed_attempts = self.failed_attempts.saturating_add(1);
        self.next_attempt = Instant::now() + backoff(interval, self.failed_attempts);
    }

    /// When auto-resume should try next; `None` if it should not (fatal, or gave up).
    pub(crate) fn auto_resume_at(&self, max_attempts: u32) -> Option<Instant> {
        (self.severity == Severity::Soft && self.failed_attempts < max_attempts)
            .then_some(self.next_attempt)
    }

    /// The error handed to a write refused because of this one.
    pub(crate) fn refusal(&self, max_attempts: u32) -> Error {
        match self.severity {
            Severity::Fatal => Error::Closed(self.message.clone()),
            Severity::Soft if self.failed_attempts < max_attempts => Error::Suspended(format!(
                "{} (retrying automatically; {} of {max_attempts} attempts failed so far)",
                self.message, self.failed_attempts
            )),
            Severity::Soft if max_attempts == 0 => Error::Suspended(format!(
                "{} (auto-resume is off; Db::resume or a restart retries)",
                self.message
            )),
            Severity::Soft => Error::Suspended(format!(
                "{} (auto-resume gave up after {max_attempts} attempts; Db::resume or a restart retries)",
                self.message
            )),
        }
    }
}

/// `interval` doubled per failed attempt, capped at [`MAX_RESUME_BACKOFF`].
fn backoff(interval: Duration, failed_attempts: u32) -> Duration {
    let factor = 1u32
        .checked_shl(failed_attempts.min(31))
        .unwrap_or(u32::MAX);
    interval
        .checked_mul(factor)
        .unwrap_or(MAX_RESUME_BACKOFF)
        .min(MAX_RESUME_BACKOFF.max(interval))
}

/// How bad `err` is, given where it happened (see the module docs).
pub(crate) fn severity(origin: Origin, err: &Error) -> Severity {
    match origin {
        Origin::Flush | Origin::Compaction | Origin::NewWal if is_passing(err) => Severity::Soft,
        _ => Severity::Fatal,
    }
}

/// True for an OS error that says a resource ran out and may come back.
pub fn is_passing(err: &Error) -> bool {
    let Error::Io { source, .. } = err else {
        return false;
    };
    match source.raw_os_error() {
        Some(code) => [
            libc::EMFILE,
            libc::ENFILE,
            libc::ENOSPC,
            libc::EDQUOT,
            libc::EAGAIN,
            libc::EINTR,
        ]
        .contains(&code),
        None => matches!(
            source.kind(),
            ErrorKind::StorageFull | ErrorKind::WouldBlock | ErrorKind::Interrupted
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(code: i32) -> Error {
        Error::io("/db/000007.sst", std::io::Error::from_raw_os_error(code))
    }

    #[test]
    fn exhausted_resources_pass_only_in_new_files() {
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOSPC, libc::EINTR] {
            for origin in [Origin::Flush, Origin::Compaction, Origin::NewWal] {
                assert_eq!(severity(origin, &os(code)), Severity::Soft, "{code}");
            }
            for origin in [Origin::Wal, Origin::SequenceReservation, Origin::Panic] {
                assert_eq!(severity(origin, &os(code)), Severity::Fatal, "{code}");
            }
        }
    }

    #[test]
    fn io_errors_corruption_and_unknown_errors_are_fatal() {
        let corruption = Error::corruption("/db/000007.sst", 0, "bad block");
        let other = Error::io("/db/x", std::io::Error::other("injected"));
        for err in [os(libc::EIO), corruption, other] {
            assert_eq!(severity(Origin::Flush, &err), Severity::Fatal, "{err}");
        }
        let full = Error::io("/db/x", std::io::Error::from(ErrorKind::StorageFull));
        assert_eq!(severity(Origin::Flush, &full), Severity::Soft);
    }

    #[test]
    fn auto_resume_is_for_soft_errors_and_bounded() {
        let interval = Duration::from_millis(10);
        let mut soft = BgError::new(Origin::Flush, &os(libc::EMFILE), interval);
        assert!(soft.auto_resume_at(3).is_some());
        assert!(matches!(soft.refusal(3), Error::Suspended(_)));
        for _ in 0..3 {
            soft.attempt_failed(&os(libc::EMFILE), interval);
        }
        assert_eq!(soft.auto_resume_at(3), None, "gave up after 3 attempts");
        assert!(soft.refusal(3).to_string().contains("gave up"));
        assert_eq!(soft.auto_resume_at(0), None, "0 turns auto-resume off");
        assert!(soft.refusal(0).to_string().contains("off"));
        let fatal = BgError::new(Origin::Wal, &os(libc::EMFILE), interval);
        assert_eq!(fatal.auto_resume_at(3), None);
        assert!(matches!(fatal.refusal(3), Error::Closed(_)));
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let s = Duration::from_secs(1);
        assert_eq!(backoff(s, 0), s);
        assert_eq!(backoff(s, 3), 8 * s);
        assert_eq!(backoff(s, 5), MAX_RESUME_BACKOFF);
        assert_eq!(backoff(s, u32::MAX), MAX_RESUME_BACKOFF);
        // An interval set above the cap is kept, not shortened.
        assert_eq!(backoff(60 * s, 2), 60 * s);
    }
}
