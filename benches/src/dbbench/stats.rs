//! Per-thread counters of one benchmark and db_bench's report line.
//!
//! As in db_bench 7.x, threads are merged by summing operations, bytes and per-thread
//! busy seconds, and taking the earliest start and latest finish. `micros/op` is the summed
//! per-thread seconds over operations (the latency one thread sees), `ops/sec` is
//! operations over wall time (the throughput of all threads together).

use super::histogram::Histogram;
use std::time::{Duration, Instant};

/// What one thread (or, merged, all threads) did in one benchmark.
#[derive(Debug, Clone)]
pub struct Stats {
    /// When the thread started.
    pub start: Instant,
    /// When it finished.
    pub finish: Instant,
    /// Sum of per-thread busy time.
    pub busy: Duration,
    /// Operations done.
    pub done: u64,
    /// Key + value bytes written or read.
    pub bytes: u64,
    /// Extra text such as "(found of reads found)"; merging keeps the first thread's.
    pub message: String,
    /// Per-operation latencies, when `--histogram` is on.
    pub hist: Option<Histogram>,
}

impl Stats {
    /// Fresh counters starting now.
    pub fn start(histogram: bool) -> Stats {
        let now = Instant::now();
        Stats {
            start: now,
            finish: now,
            busy: Duration::ZERO,
            done: 0,
            bytes: 0,
            message: String::new(),
            hist: histogram.then(Histogram::default),
        }
    }

    /// Marks the end of this thread's work.
    pub fn stop(&mut self) {
        self.finish = Instant::now();
        self.busy = self.finish - self.start;
    }

    /// Folds another thread's counters in.
    pub fn merge(&mut self, other: &Stats) {
        self.start = self.start.min(other.start);
        self.finish = self.finish.max(other.finish);
        self.busy += other.busy;
        self.done += other.done;
        self.bytes += other.bytes;
        if self.message.is_empty() {
            self.message = other.message.clone();
        }
        match (&mut self.hist, &other.hist) {
            (Some(a), Some(b)) => a.merge(b),
            (None, Some(b)) => self.hist = Some(b.clone()),
            _ => {}
        }
    }

    /// The report line, e.g.
    /// `fillrandom   :       5.400 micros/op 185185 ops/sec 5.400 seconds 1000000 operations;   20.5 MB/s`.
    pub fn report(&self, name: &str) -> String {
        let elapsed = (self.finish - self.start).as_secs_f64().max(1e-9);
        format_report(
            name,
            self.busy.as_secs_f64(),
            elapsed,
            self.done,
            self.bytes,
            &self.message,
        )
    }
}

/// db_bench's `Stats::Report` line (7.x layout, with seconds and operations).
pub fn format_report(
    name: &str,
    busy_seconds: f64,
    elapsed: f64,
    done: u64,
    bytes: u64,
    message: &str,
) -> String {
    // db_bench pretends one op was done when none was, to avoid dividing by zero.
    let done = done.max(1);
    let mut extra = String::new();
    if bytes > 0 {
        extra = format!("{:6.1} MB/s", bytes as f64 / 1048576.0 / elapsed);
    }
    if !message.is_empty() {
        if !extra.is_empty() {
            extra.push(' ');
        }
        extra.push_str(message);
    }
    format!(
        "{:<12} : {:11.3} micros/op {} ops/sec {:.3} seconds {} operations;{}{}",
        name,
        busy_seconds * 1e6 / done as f64,
        (done as f64 / elapsed) as i64,
        elapsed,
        done,
        if extra.is_empty() { "" } else { " " },
        extra
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_line_has_db_bench_layout() {
        let line = format_report("fillrandom", 5.4, 5.4, 1_000_000, 116_000_000, "");
        assert_eq!(
            line,
            "fillrandom   :       5.400 micros/op 185185 ops/sec 5.400 seconds 1000000 operations;   20.5 MB/s"
        );
        let line = format_report("readmissing", 1.0, 1.0, 100, 0, "(0 of 100 found)\n");
        assert!(
            line.ends_with("100 operations; (0 of 100 found)\n"),
            "{line}"
        );
    }

    #[test]
    fn merge_sums_work_and_spans_wall_time() {
        let mut a = Stats::start(false);
        let mut b = Stats::start(true);
        a.done = 10;
        b.done = 30;
        b.message = "(1 of 2 found)".into();
        a.busy = Duration::from_secs(2);
        b.busy = Duration::from_secs(2);
        b.finish = a.start + Duration::from_secs(2);
        a.merge(&b);
        assert_eq!(a.done, 40);
        assert_eq!(a.busy, Duration::from_secs(4));
        assert_eq!(a.message, "(1 of 2 found)");
        assert!(a.hist.is_some());
        // 4 busy seconds over 40 ops = 100 ms/op per thread; 40 ops over 2 s wall = 20/s.
        let line = a.report("x");
        assert!(line.contains("100000.000 micros/op 20 ops/sec"), "{line}");
    }
}
