//! kv-benches: the `dbbench` tool (RocksDB db_bench's flags, workloads and output lines on
//! kv-engine), the side-by-side comparisons `compare-engine` (vs RocksDB's db_bench) and
//! `compare-server` (kvd vs redis-server through redis-benchmark), and the parsers and
//! process plumbing they share. Results and how to run: `docs/performance.md`.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod bench_tool;
pub mod dbbench;
pub mod process;
pub mod redis_csv;
pub mod report_line;
pub mod resp_load;
pub mod table;

/// Parses a comma-separated list such as `1,2,4,8,16`; `what` names an item in errors.
pub fn parse_list<T: std::str::FromStr>(text: &str, what: &str) -> Result<Vec<T>, String> {
    text.split(',')
        .map(|t| t.trim().parse().map_err(|_| format!("bad {what} '{t}'")))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_parse_or_name_the_bad_item() {
        assert_eq!(super::parse_list::<u32>("1, 2,16", "n"), Ok(vec![1, 2, 16]));
        assert_eq!(
            super::parse_list::<u32>("1,x", "pipeline depth"),
            Err("bad pipeline depth 'x'".to_string())
        );
    }
}
