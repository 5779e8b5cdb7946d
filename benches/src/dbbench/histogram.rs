//! Latency histogram printed by `--histogram`, bucketed and formatted like RocksDB's
//! `HistogramImpl` so the two tools' histograms read the same.

use std::fmt::Write;
use std::sync::OnceLock;

/// Bucket upper limits: 1, 2, then x1.5 each time keeping two significant digits
/// (1, 2, 3, 4, 6, 10, 15, 22, 34, 51, 76, 110, 170, ...), as RocksDB does.
fn limits() -> &'static [u64] {
    static LIMITS: OnceLock<Vec<u64>> = OnceLock::new();
    LIMITS.get_or_init(|| {
        let mut v = vec![1u64, 2];
        let mut x = 2.0f64;
        loop {
            x *= 1.5;
            if x > u64::MAX as f64 {
                break;
            }
            let mut b = x as u64;
            let mut pow = 1u64;
            while b / 10 > 10 {
                b /= 10;
                pow *= 10;
            }
            v.push(b * pow);
        }
        v
    })
}

/// Counts of operation latencies in whole microseconds.
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u64>,
    count: u64,
    min: u64,
    max: u64,
    sum: f64,
    sum_squares: f64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: vec![0; limits().len()],
            count: 0,
            min: u64::MAX,
            max: 0,
            sum: 0.0,
            sum_squares: 0.0,
        }
    }
}

impl Histogram {
    /// Records one latency.
    pub fn add(&mut self, micros: u64) {
        let last = self.buckets.len() - 1;
        let b = limits().partition_point(|&l| l < micros).min(last);
        self.buckets[b] += 1;
        self.count += 1;
        self.min = self.min.min(micros);
        self.max = self.max.max(micros);
        self.sum += micros as f64;
        self.sum_squares += (micros as f64) * (micros as f64);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        self.sum_squares += other.sum_squares;
    }

    /// Operations recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean latency.
    pub fn average(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    fn std_dev(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let n = self.count as f64;
        ((self.sum_squares * n - self.sum * self.sum) / (n * n))
            .max(0.0)
            .sqrt()
    }

    /// The `p`th percentile, interpolated linearly inside its bucket (RocksDB's method).
    pub fn percentile(&self, p: f64) -> f64 {
        let threshold = self.count as f64 * p / 100.0;
        let mut cumulative = 0u64;
        for (b, &n) in self.buckets.iter().enumerate() {
            cumulative += n;
            if cumulative as f64 >= threshold && n > 0 {
                let left = if b == 0 { 0 } else { limits()[b - 1] } as f64;
                let right = limits()[b] as f64;
                let left_sum = (cumulative - n) as f64;
                let pos = (threshold - left_sum) / n as f64;
                let r = left + (right - left) * pos;
                return r.clamp(self.min as f64, self.max as f64);
            }
        }
        self.max as f64
    }

    /// RocksDB's `HistogramImpl::ToString` layout.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let min = if self.count == 0 { 0 } else { self.min };
        let _ = writeln!(
            s,
            "Count: {} Average: {:.4}  StdDev: {:.2}",
            self.count,
            self.average(),
            self.std_dev()
        );
        let _ = writeln!(
            s,
            "Min: {}  Median: {:.4}  Max: {}",
            min,
            self.percentile(50.0),
            self.max
        );
        let _ = writeln!(
            s,
            "Percentiles: P50: {:.2} P75: {:.2} P99: {:.2} P99.9: {:.2} P99.99: {:.2}",
            self.percentile(50.0),
            self.percentile(75.0),
            self.percentile(99.0),
            self.percentile(99.9),
            self.percentile(99.99)
        );
        s.push_str("------------------------------------------------------\n");
        let mut cumulative = 0u64;
        for (b, &n) in self.buckets.iter().enumerate() {
            if n == 0 {
                continue;
            }
            cumulative += n;
            let pct = 100.0 * n as f64 / self.count as f64;
            let left = if b == 0 { 0 } else { limits()[b - 1] };
            let _ = write!(
                s,
                "{} {:7}, {:7} ] {:8} {:7.3}% {:7.3}% ",
                if b == 0 { '[' } else { '(' },
                left,
                limits()[b],
                n,
                pct,
                100.0 * cumulative as f64 / self.count as f64
            );
            s.push_str(&"#".repeat((20.0 * n as f64 / self.count as f64 + 0.5) as usize));
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_limits_match_rocksdb() {
        assert_eq!(
            &limits()[..22],
            &[
                1, 2, 3, 4, 6, 10, 15, 22, 34, 51, 76, 110, 170, 250, 380, 580, 870, 1300, 1900,
                2900, 4400, 6600
            ]
        );
    }

    #[test]
    fn percentiles_interpolate_within_bucket() {
        let mut h = Histogram::default();
        for v in [1, 2, 3, 3, 5, 5, 5, 5, 8, 100] {
            h.add(v);
        }
        assert_eq!(h.count(), 10);
        assert!((h.average() - 13.7).abs() < 1e-9);
        assert_eq!(h.percentile(100.0), 100.0);
        let median = h.percentile(50.0);
        assert!((4.0..=6.0).contains(&median), "{median}");
        let text = h.render();
        assert!(text.starts_with("Count: 10 Average: 13.7000"));
        assert!(text.contains("[       0,       1 ]        1  10.000%  10.000% ##"));
    }
}
