//! Progress bars for long work: on stderr, with rate and ETA, shown only once the work
//! has taken more than a second and only when stderr is a terminal (so pipes, scripts
//! and `--json` consumers never see them).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Work shorter than this shows no bar at all.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// What a bar counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes: shown as sizes and bytes per second.
    Bytes,
    /// Items (records, keys): shown as counts and items per second.
    Items,
}

/// A progress bar that stays hidden for short work and off terminals.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    shown: bool,
    may_show: bool,
}

impl Progress {
    /// A bar for `total` units of work labelled `what` (`total` 0 = unknown: a spinner).
    pub fn new(what: &str, total: u64, unit: Unit) -> Self {
        let bar = ProgressBar::with_draw_target(
            (total > 0).then_some(total),
            ProgressDrawTarget::hidden(),
        );
        let template = match (unit, total > 0) {
            (Unit::Bytes, true) => {
                "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
            }
            (Unit::Items, true) => "{msg} [{bar:30}] {human_pos}/{human_len} {per_sec} ETA {eta}",
            (Unit::Bytes, false) => "{spinner} {msg} {bytes} {binary_bytes_per_sec} {elapsed}",
            (Unit::Items, false) => "{spinner} {msg} {human_pos} {per_sec} {elapsed}",
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        Progress {
            bar,
            started: Instant::now(),
            shown: false,
            may_show: std::io::stderr().is_terminal(),
        }
    }

    fn maybe_show(&mut self) {
        if !self.shown && self.may_show && self.started.elapsed() >= SHOW_AFTER {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
    }

    /// Adds `n` units of work done.
    pub fn inc(&mut self, n: u64) {
        self.bar.inc(n);
        self.maybe_show();
    }

    /// Sets the units of work done.
    pub fn set(&mut self, done: u64) {
        self.bar.set_position(done);
        self.maybe_show();
    }

    /// Changes the label.
    pub fn message(&mut self, what: &str) {
        self.bar.set_message(what.to_string());
        self.maybe_show();
    }

    /// Redraws (spinners move) without progress, for work that reports none.
    pub fn tick(&mut self) {
        self.bar.tick();
        self.maybe_show();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
