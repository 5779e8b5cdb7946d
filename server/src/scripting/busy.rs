//! The script that runs now, as other connections see it (docs/scripting.md, "Limits").
//!
//! A script runs under the exclusive world lock, on its connection's thread; other
//! connections keep being served by the other runtime threads. Once the script has run
//! longer than `busy-reply-threshold` (Redis's `lua-time-limit`), commands of other
//! clients are answered `-BUSY` instead of waiting for the lock (they wait for it in short
//! slices and look here in between), and SCRIPT KILL, FUNCTION KILL and SHUTDOWN NOSAVE
//! set a stop request that the script's instruction hook turns into an error.

use crate::commands::table::{CommandSpec, ALLOW_BUSY};
use crate::protocol::Reply;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

/// `-BUSY` while an EVAL script runs past the threshold (Redis's `slowevalerr`).
pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// `-BUSY` while a function runs past the threshold (Redis's `slowscripterr`).
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";
/// SCRIPT KILL or FUNCTION KILL when nothing runs.
pub const NOT_BUSY: &str = "NOTBUSY No scripts in execution right now.";
/// SCRIPT KILL of a script that has written (its writes would be half applied in Redis).
pub const UNKILLABLE: &str = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";

/// Why the running script must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stop {
    /// SCRIPT KILL or FUNCTION KILL: the script has not written.
    Killed = 1,
    /// SHUTDOWN NOSAVE or a server shutdown: the script's writes are discarded.
    Shutdown = 2,
}

/// Shared state of the running script.
#[derive(Default)]
pub struct Busy {
    running: AtomicBool,
    timed_out: AtomicBool,
    is_function: AtomicBool,
    wrote: AtomicBool,
    stop: AtomicU8,
    threshold_ms: AtomicU64,
    started: Mutex<Option<Instant>>,
    /// Script line the hook last saw (the position of a stop error).
    line: AtomicI64,
    /// The running script's name (SHA-1 or function name), for FUNCTION STATS.
    name: Mutex<String>,
}

impl Busy {
    /// A script starts (the caller holds the exclusive world lock).
    pub fn begin(&self, name: &str, is_function: bool, threshold_ms: u64) {
        name.clone_into(&mut self.name.lock());
        *self.started.lock() = Some(Instant::now());
        self.threshold_ms.store(threshold_ms, Ordering::Relaxed);
        self.is_function.store(is_function, Ordering::Relaxed);
        self.wrote.store(false, Ordering::Relaxed);
        self.stop.store(0, Ordering::Relaxed);
        self.timed_out.store(false, Ordering::Relaxed);
        self.running.store(true, Ordering::Release);
    }

    /// The script ended; returns the stop request it ended on, if any.
    pub fn end(&self) -> Option<Stop> {
        self.running.store(false, Ordering::Release);
        self.timed_out.store(false, Ordering::Release);
        *self.started.lock() = None;
        self.stop_requested()
    }

    /// True while a script runs (connections then run commands off the async threads:
    /// they may wait for the lock the script holds).
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// The running script's name and how long it has run, ms.
    pub fn running_for(&self) -> Option<(String, u64)> {
        let started = (*self.started.lock())?;
        Some((
            self.name.lock().clone(),
            started.elapsed().as_millis() as u64,
        ))
    }

    /// True once the running script passed `busy-reply-threshold`.
    pub fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Acquire)
    }

    /// The `-BUSY` reply for a command of another client, if it must get one now.
    pub fn refusal(&self, spec: &CommandSpec) -> Option<Reply> {
        (self.timed_out() && !spec.has(ALLOW_BUSY)).then(|| self.busy_reply())
    }

    /// `-BUSY` naming the kill command that fits the running script.
    pub fn busy_reply(&self) -> Reply {
        Reply::error(if self.is_function.load(Ordering::Relaxed) {
            BUSY_FUNCTION
        } else {
            BUSY_EVAL
        })
    }

    /// The script wrote: SCRIPT KILL may no longer stop it.
    pub fn mark_wrote(&self) {
        self.wrote.store(true, Ordering::Relaxed);
    }

    /// SCRIPT KILL (`eval` true) or FUNCTION KILL, with Redis's refusals.
    pub fn kill(&self, eval: bool) -> Result<(), Reply> {
        if !self.running() {
            return Err(Reply::error(NOT_BUSY));
        }
        if self.wrote.load(Ordering::Relaxed) {
            return Err(Reply::error(UNKILLABLE));
        }
        let is_function = self.is_function.load(Ordering::Relaxed);
        if eval && is_function {
            return Err(Reply::error(BUSY_FUNCTION));
        }
        if !eval && !is_function {
            return Err(Reply::error(BUSY_EVAL));
        }
        let _ =
            self.stop
                .compare_exchange(0, Stop::Killed as u8, Ordering::AcqRel, Ordering::Relaxed);
        Ok(())
    }

    /// SHUTDOWN while a script runs: refused with -BUSY past the threshold unless NOSAVE
    /// (as Redis); otherwise the script is stopped and its writes discarded.
    pub fn shutdown(&self, nosave: bool) -> Result<(), Reply> {
        if !self.running() {
            return Ok(());
        }
        if self.timed_out() && !nosave {
            return Err(self.busy_reply());
        }
        self.stop.store(Stop::Shutdown as u8, Ordering::Release);
        Ok(())
    }

    /// The stop request, if any.
    pub fn stop_requested(&self) -> Option<Stop> {
        match self.stop.load(Ordering::Acquire) {
            1 => Some(Stop::Killed),
            2 => Some(Stop::Shutdown),
            _ => None,
        }
    }

    /// Records the line the script is at (called by the hook).
    pub fn set_line(&self, line: i64) {
        self.line.store(line, Ordering::Relaxed);
    }

    /// The line the hook last saw.
    pub fn line(&self) -> i64 {
        self.line.load(Ordering::Relaxed)
    }

    /// Called by the script's instruction hook: marks the script timed out once it ran
    /// past the threshold, and says whether it must stop.
    pub fn check(&self, shutting_down: bool) -> Option<Stop> {
        if shutting_down {
            self.stop.store(Stop::Shutdown as u8, Ordering::Release);
        }
        if !self.timed_out() {
            let started = *self.started.lock();
            let threshold = self.threshold_ms.load(Ordering::Relaxed);
            if started.is_some_and(|s| s.elapsed().as_millis() as u64 >= threshold) {
                tracing::warn!(
                    threshold_ms = threshold,
                    "slow script detected: still in execution; other clients now get -BUSY"
                );
                self.timed_out.store(true, Ordering::Release);
            }
        }
        self.stop_requested()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_follows_redis_rules() {
        let b = Busy::default();
        assert_eq!(b.kill(true), Err(Reply::error(NOT_BUSY)));
        b.begin("s", false, 0);
        assert_eq!(b.kill(false), Err(Reply::error(BUSY_EVAL)));
        assert_eq!(b.check(false), None);
        assert!(b.timed_out(), "threshold 0 passes at the first check");
        assert_eq!(b.kill(true), Ok(()));
        assert_eq!(b.check(false), Some(Stop::Killed));
        assert_eq!(b.end(), Some(Stop::Killed));
        b.begin("f", true, 60_000);
        b.mark_wrote();
        assert_eq!(b.kill(false), Err(Reply::error(UNKILLABLE)));
        assert_eq!(
            b.shutdown(false),
            Ok(()),
            "not timed out: shutdown stops it"
        );
        assert_eq!(b.check(false), Some(Stop::Shutdown));
    }
}
