//! Parser for `redis-benchmark --csv` output (Redis 7):
//!
//! ```text
//! "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
//! "SET","122699.38","5.975","0.504","4.087","23.295","30.095","30.511"
//! ```
//! Columns are found by header name; Redis 6 printed only `test` and `rps`, so the
//! latency columns are optional.

use serde::Serialize;

/// One test's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchRow {
    /// Test name as redis-benchmark prints it, e.g. `SET` or `MSET (10 keys)`.
    pub test: String,
    /// Requests per second.
    pub rps: f64,
    /// Mean latency in ms.
    pub avg_ms: Option<f64>,
    /// Minimum latency in ms.
    pub min_ms: Option<f64>,
    /// Median latency in ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency in ms.
    pub p95_ms: Option<f64>,
    /// 99th percentile latency in ms.
    pub p99_ms: Option<f64>,
    /// Maximum latency in ms.
    pub max_ms: Option<f64>,
}

/// Parses the whole CSV; lines before the header (warnings) are skipped.
pub fn parse(text: &str) -> Result<Vec<BenchRow>, String> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let header = loop {
        let line = lines
            .next()
            .ok_or("no CSV header (\"test\",\"rps\",...) in redis-benchmark output")?;
        let fields = split_csv(line)?;
        if fields.first().map(String::as_str) == Some("test") {
            break fields;
        }
    };
    let col = |name: &str| header.iter().position(|h| h == name);
    let test = col("test").ok_or("no 'test' column")?;
    let rps = col("rps").ok_or("no 'rps' column")?;
    let optional = [
        col("avg_latency_ms"),
        col("min_latency_ms"),
        col("p50_latency_ms"),
        col("p95_latency_ms"),
        col("p99_latency_ms"),
        col("max_latency_ms"),
    ];
    let mut rows = Vec::new();
    for line in lines {
        let fields = split_csv(line)?;
        if fields.len() != header.len() {
            return Err(format!(
                "row has {} fields, header has {}: {line}",
                fields.len(),
                header.len()
            ));
        }
        let num = |i: usize| -> Result<f64, String> {
            fields[i]
                .parse()
                .map_err(|_| format!("'{}' is not a number in: {line}", fields[i]))
        };
        let opt = |c: Option<usize>| c.map(num).transpose();
        rows.push(BenchRow {
            test: fields[test].clone(),
            rps: num(rps)?,
            avg_ms: opt(optional[0])?,
            min_ms: opt(optional[1])?,
            p50_ms: opt(optional[2])?,
            p95_ms: opt(optional[3])?,
            p99_ms: opt(optional[4])?,
            max_ms: opt(optional[5])?,
        });
    }
    Ok(rows)
}

/// Splits one CSV line: fields optionally double-quoted, `""` inside quotes is a quote.
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', false) if cur.is_empty() => quoted = true,
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            ('"', true) => {
                quoted = false;
                if !matches!(chars.peek(), None | Some(',')) {
                    return Err(format!("text after closing quote in: {line}"));
                }
            }
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return Err(format!("unterminated quote in: {line}"));
    }
    fields.push(cur);
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REDIS7: &str = r#""test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","122699.38","5.975","0.504","4.087","23.295","30.095","30.511"
"GET","250000.00","2.692","0.408","2.191","6.631","7.567","7.815"
"MSET (10 keys)","30349.01","17.776","1.200","14.431","37.471","39.551","44.607"
"#;

    #[test]
    fn redis_7_csv() {
        let rows = parse(REDIS7).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].test, "SET");
        assert_eq!(rows[0].rps, 122699.38);
        assert_eq!(rows[0].p50_ms, Some(4.087));
        assert_eq!(rows[0].p99_ms, Some(30.095));
        assert_eq!(rows[2].test, "MSET (10 keys)");
        assert_eq!(rows[2].max_ms, Some(44.607));
    }

    #[test]
    fn warnings_before_header_and_old_two_columns() {
        let text = "WARNING: Could not fetch server CONFIG\n\"test\",\"rps\"\n\"PING_INLINE\",\"1000.5\"\n";
        let rows = parse(text).unwrap();
        assert_eq!(rows[0].test, "PING_INLINE");
        assert_eq!(rows[0].rps, 1000.5);
        assert_eq!(rows[0].p99_ms, None);
    }

    #[test]
    fn quoted_commas_and_quotes() {
        assert_eq!(
            split_csv(r#""a,b","c""d",3"#).unwrap(),
            vec!["a,b", "c\"d", "3"]
        );
        assert!(split_csv(r#""open"#).is_err());
        assert!(split_csv(r#""a"b,1"#).is_err());
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(parse("").is_err());
        assert!(parse("\"test\",\"rps\"\n\"SET\"\n").is_err());
        assert!(parse("\"test\",\"rps\"\n\"SET\",\"fast\"\n").is_err());
        assert!(parse("\"name\",\"value\"\n").is_err());
    }
}
