//! Parser for db_bench's result lines, as printed by RocksDB's db_bench and by dbbench:
//!
//! ```text
//! fillseq      :      14.832 micros/op 124212 ops/sec 1.610 seconds 200000 operations;   13.7 MB/s
//! readrandom   :      11.979 micros/op 165035 ops/sec;   17.9 MB/s (98160 of 100000 found)
//! ```
//! The `seconds`/`operations` pair appeared in RocksDB 7; older builds print without it.

use serde::Serialize;

/// One benchmark's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultLine {
    /// Benchmark name, e.g. `fillrandom`.
    pub name: String,
    /// Average per-thread latency.
    pub micros_per_op: f64,
    /// Throughput of all threads together.
    pub ops_per_sec: u64,
    /// Wall time, when printed.
    pub seconds: Option<f64>,
    /// Operations done, when printed.
    pub operations: Option<u64>,
    /// Data rate, when printed (not for readmissing, which moves no bytes).
    pub mb_per_sec: Option<f64>,
    /// `(found, of)` from "(found of of found)".
    pub found: Option<(u64, u64)>,
}

/// Parses one line; `None` if it is not a result line (headers, "skipped", histograms).
pub fn parse_line(line: &str) -> Option<ResultLine> {
    let (name, rest) = line.split_once(" : ")?;
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let (main, extra) = rest.split_once(';').unwrap_or((rest, ""));
    let tokens: Vec<&str> = main.split_whitespace().collect();
    let micros_per_op = after_number(&tokens, "micros/op")?;
    let ops_per_sec = after_number(&tokens, "ops/sec")?;
    let seconds = after_number(&tokens, "seconds");
    let operations = after_number(&tokens, "operations");
    let extra_tokens: Vec<&str> = extra.split_whitespace().collect();
    let mb_per_sec = after_number(&extra_tokens, "MB/s");
    let found = parse_found(extra);
    Some(ResultLine {
        name: name.to_string(),
        micros_per_op,
        ops_per_sec,
        seconds,
        operations,
        mb_per_sec,
        found,
    })
}

/// All result lines of an output, in order.
pub fn parse_output(text: &str) -> Vec<ResultLine> {
    text.lines().filter_map(parse_line).collect()
}

/// The number just before the token `unit`.
fn after_number<T: std::str::FromStr>(tokens: &[&str], unit: &str) -> Option<T> {
    let i = tokens.iter().position(|t| *t == unit)?;
    tokens.get(i.checked_sub(1)?)?.parse().ok()
}

/// "(98160 of 100000 found)" -> (98160, 100000).
fn parse_found(text: &str) -> Option<(u64, u64)> {
    let start = text.find('(')?;
    let inner = text[start + 1..].split(')').next()?;
    let t: Vec<&str> = inner.split_whitespace().collect();
    match t.as_slice() {
        [a, "of", b, "found"] => Some((a.parse().ok()?, b.parse().ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rocksdb_7_line() {
        let l = parse_line(
            "fillseq      :      14.832 micros/op 124212 ops/sec 1.610 seconds 200000 operations;   13.7 MB/s",
        )
        .unwrap();
        assert_eq!(l.name, "fillseq");
        assert_eq!(l.micros_per_op, 14.832);
        assert_eq!(l.ops_per_sec, 124212);
        assert_eq!(l.seconds, Some(1.610));
        assert_eq!(l.operations, Some(200000));
        assert_eq!(l.mb_per_sec, Some(13.7));
        assert_eq!(l.found, None);
    }

    #[test]
    fn older_line_without_seconds_and_with_found() {
        let l = parse_line(
            "readrandom   :      11.979 micros/op 165035 ops/sec;   17.9 MB/s (98160 of 100000 found)",
        )
        .unwrap();
        assert_eq!(l.ops_per_sec, 165035);
        assert_eq!((l.seconds, l.operations), (None, None));
        assert_eq!(l.found, Some((98160, 100000)));
        assert_eq!(l.mb_per_sec, Some(17.9));
    }

    #[test]
    fn readmissing_has_no_rate() {
        let l = parse_line(
            "readmissing  :       4.976 micros/op 200895 ops/sec 0.100 seconds 20000 operations; (0 of 20000 found)",
        )
        .unwrap();
        assert_eq!(l.mb_per_sec, None);
        assert_eq!(l.found, Some((0, 20000)));
    }

    #[test]
    fn non_result_lines_are_skipped() {
        for line in [
            "fillseq      : skipped (--use_existing_db is true)",
            "DB path: [/tmp/dbb]",
            "Keys:       16 bytes each (+ 0 bytes user-defined timestamp)",
            "Count: 20000 Average: 4.9812  StdDev: 76.15",
            "Percentiles: P50: 2.62 P75: 3.33 P99: 5.97 P99.9: 93.00 P99.99: 3900.00",
            "",
            "two words : 1.0 micros/op 5 ops/sec;",
        ] {
            assert_eq!(parse_line(line), None, "{line}");
        }
    }

    #[test]
    fn dbbench_output_round_trips() {
        let line =
            crate::dbbench::stats::format_report("overwrite", 2.0, 1.0, 400_000, 46_400_000, "");
        let l = parse_line(&line).unwrap();
        assert_eq!(
            (l.name.as_str(), l.ops_per_sec, l.operations),
            ("overwrite", 400_000, Some(400_000))
        );
        assert_eq!(l.micros_per_op, 5.0);
        let out = format!("header\n{line}\nDB path: [x]\n{line}\n");
        assert_eq!(parse_output(&out).len(), 2);
    }
}
