//! The hybrid logical clock that stamps this node's writes with [`Version`]s.
//!
//! A timestamp is `Unix milliseconds << 16 | logical` (see [`crate::version`]): it
//! follows the wall clock when the wall clock moves forward, and counts logically when it
//! does not (many writes in one millisecond, the clock stepped back, or a peer's
//! version observed from the future). The logical counter carries into the millisecond
//! field when it overflows, which keeps the order.
//!
//! Versions issued are monotonic across restarts, even when the wall clock was set back
//! meanwhile (versions only observed are not remembered across a restart: a replica that
//! holds one answers `Stale` and teaches the clock again). Before
//! issuing any timestamp at or beyond a persisted floor, the clock writes a new floor
//! [`FLOOR_LEAD_MS`] ahead (atomically, to `<dir>/cluster/hlc`), and on opening it
//! starts from the floor. This is CockroachDB's persisted wall-time upper bound. The
//! price: after an unclean stop the clock may start up to `FLOOR_LEAD_MS` ahead of the
//! wall clock; the node should not coordinate until [`Hlc::ahead_of_wall_ms`] is within
//! the allowed clock offset. A clean stop calls [`Hlc::shutdown`], which lowers the floor
//! to just past the last timestamp, so a clean restart does not wait.

use crate::atomic_file::write_atomically;
use crate::{NodeId, Version};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Bits of the logical counter at the bottom of a timestamp.
pub const LOGICAL_BITS: u32 = 16;

/// How far ahead of the timestamps issued the persisted floor is set. Larger means
/// fewer fsyncs (one per this many milliseconds of issuing); smaller means a shorter
/// wait after an unclean restart. 10 s costs one tiny fsync every 10 s.
pub const FLOOR_LEAD_MS: u64 = 10_000;

/// Default largest offset accepted between a peer's clock and ours (the cluster config's
/// `max_clock_offset` overrides it).
pub const DEFAULT_MAX_OFFSET_MS: u64 = 500;

/// The format number of the floor file.
const FLOOR_FORMAT: u32 = 1;

/// Largest wall-clock millisecond value a timestamp can hold (2^48 ms is the year
/// 10889), so a clock reading or file value beyond it cannot overflow the shift.
const MAX_MS: u64 = (1 << (64 - LOGICAL_BITS)) - 1;

/// A source of wall-clock time, so tests and the simulation control it.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        // A clock before 1970 reads as 0; the HLC stays monotonic regardless.
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that only moves when told to (tests, the simulation).
#[derive(Debug, Default)]
pub struct ManualClock {
    ms: AtomicU64,
}

impl ManualClock {
    /// A clock reading `ms`.
    pub fn new(ms: u64) -> ManualClock {
        ManualClock {
            ms: AtomicU64::new(ms),
        }
    }

    /// Sets the reading, forward or back.
    pub fn set(&self, ms: u64) {
        self.ms.store(ms, Ordering::SeqCst);
    }

    /// Moves the reading forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.ms.load(Ordering::SeqCst)
    }
}

/// A peer's version too far ahead of our wall clock to be believed: observing it would
/// drag this node's clock (and every version it issues) into the future.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a peer's version is {ahead_ms} ms ahead of this node's clock, more than the {max_offset_ms} ms allowed (max clock offset)")]
pub struct ClockSkewError {
    /// How far ahead of our wall clock it was.
    pub ahead_ms: u64,
    /// The limit.
    pub max_offset_ms: u64,
}

/// The floor file's content.
#[derive(Serialize, Deserialize)]
struct FloorFile {
    format: u32,
    floor_ms: u64,
}

struct State {
    /// The largest timestamp issued or observed.
    last: u64,
    /// Persisted: no timestamp with this many milliseconds or more has been issued.
    floor_ms: u64,
}

/// This node's hybrid logical clock. Cheap to share (`&self` methods, one short lock).
pub struct Hlc {
    path: PathBuf,
    clock: Arc<dyn Clock>,
    node: NodeId,
    max_offset_ms: u64,
    state: Mutex<State>,
}

impl Hlc {
    /// Opens the clock whose floor lives at `path` (created on first use; a missing
    /// file means a new node). A damaged floor file is an error naming it, never
    /// silently replaced: guessing could reissue timestamps.
    pub fn open(path: &Path, clock: Arc<dyn Clock>, node: NodeId) -> io::Result<Hlc> {
        let floor_ms = read_floor(path)?;
        Ok(Hlc {
            path: path.to_path_buf(),
            clock,
            node,
            max_offset_ms: DEFAULT_MAX_OFFSET_MS,
            state: Mutex::new(State {
                last: floor_ms << LOGICAL_BITS,
                floor_ms,
            }),
        })
    }

    /// Sets the largest accepted peer clock offset (the config's `max_clock_offset`).
    pub fn with_max_offset_ms(mut self, max_offset_ms: u64) -> Hlc {
        self.max_offset_ms = max_offset_ms;
        self
    }

    /// The node whose versions this clock issues.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// A new version, greater than every version issued before (also before a
    /// restart) and every version observed since this clock was opened. Fails only if the floor cannot be persisted, in which case no
    /// version is issued (issuing one could break monotonicity after a restart).
    pub fn next(&self) -> io::Result<Version> {
        let wall = self.wall_ms();
        let mut state = self.state.lock();
        let ts = state
            .last
            .checked_add(1)
            .ok_or_else(|| io::Error::other("the hybrid logical clock is exhausted"))?
            .max(wall << LOGICAL_BITS);
        let millis = ts >> LOGICAL_BITS;
        if millis >= state.floor_ms {
            let floor_ms = millis.saturating_add(FLOOR_LEAD_MS).min(MAX_MS);
            write_floor(&self.path, floor_ms)?;
            state.floor_ms = floor_ms;
        }
        state.last = ts;
        Ok(Version {
            ts,
            node: self.node,
        })
    }

    /// Moves the clock past a version seen from a peer (so this node's next version
    /// is newer), unless it is more than the maximum offset ahead of our wall clock.
    pub fn observe(&self, version: Version) -> Result<(), ClockSkewError> {
        let wall = self.wall_ms();
        let ahead_ms = version.millis().saturating_sub(wall);
        if ahead_ms > self.max_offset_ms {
            return Err(ClockSkewError {
                ahead_ms,
                max_offset_ms: self.max_offset_ms,
            });
        }
        let mut state = self.state.lock();
        state.last = state.last.max(version.ts);
        Ok(())
    }

    /// How far (ms) the clock runs ahead of the wall clock: up to [`FLOOR_LEAD_MS`]
    /// after an unclean restart, otherwise near 0. A node should not coordinate while
    /// this exceeds the allowed clock offset.
    pub fn ahead_of_wall_ms(&self) -> u64 {
        let last_ms = self.state.lock().last >> LOGICAL_BITS;
        last_ms.saturating_sub(self.wall_ms())
    }

    /// For a clean stop: lowers the persisted floor to just past the last timestamp
    /// issued or observed, so the next start need not wait for the wall clock. The
    /// clock stays usable (it raises the floor again when needed).
    pub fn shutdown(&self) -> io::Result<()> {
        let mut state = self.state.lock();
        let floor_ms = (state.last >> LOGICAL_BITS) + 1;
        write_floor(&self.path, floor_ms)?;
        state.floor_ms = floor_ms;
        Ok(())
    }

    fn wall_ms(&self) -> u64 {
        self.clock.now_ms().min(MAX_MS)
    }
}

fn read_floor(path: &Path) -> io::Result<u64> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    let damaged = |why: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "clock floor file {} is damaged ({why}); kvd left it untouched. If the \
                 system clock is right and no newer data exists elsewhere, write \
                 {{\"format\":1,\"floor_ms\":<now in Unix ms + 60000>}} into it",
                path.display()
            ),
        )
    };
    let file: FloorFile = serde_json::from_slice(&bytes).map_err(|e| damaged(e.to_string()))?;
    if file.format != FLOOR_FORMAT {
        return Err(damaged(format!(
            "unknown format {}: this kvd reads format {FLOOR_FORMAT}; was it written by a newer kvd?",
            file.format
        )));
    }
    if file.floor_ms > MAX_MS {
        return Err(damaged(format!(
            "floor {} is beyond the year 10000",
            file.floor_ms
        )));
    }
    Ok(file.floor_ms)
}

fn write_floor(path: &Path, floor_ms: u64) -> io::Result<()> {
    let file = FloorFile {
        format: FLOOR_FORMAT,
        floor_ms,
    };
    let bytes = serde_json::to_vec(&file).map_err(io::Error::other)?;
    write_atomically(path, &bytes)
        .map_err(|e| io::Error::new(e.kind(), format!("clock floor {}: {e}", path.display())))
}

#[cfg(test)]
mod tests;
