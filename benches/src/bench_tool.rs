//! Runs a db_bench-compatible tool (ours or RocksDB's) as a child process, echoing its
//! output, parsing its result lines and measuring its memory: peak RSS per benchmark
//! (polled from /proc while that benchmark runs) and for the whole process (wait4).

use crate::process::{wait_with_max_rss, RssSampler};
use crate::report_line::{parse_line, ResultLine};
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One benchmark's result plus the peak RSS while it ran.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// The parsed result line.
    pub result: ResultLine,
    /// Peak resident set size during this benchmark, KiB.
    pub peak_rss_kb: u64,
}

/// A whole run of one tool.
#[derive(Debug, Clone, Serialize)]
pub struct ToolRun {
    /// Label used in tables ("kvd", "RocksDB").
    pub label: String,
    /// Results in the order printed.
    pub results: Vec<Measured>,
    /// Peak RSS of the process over its life (ru_maxrss), KiB.
    pub max_rss_kb: u64,
    /// Wall time of the process, seconds (includes opening, closing, destroying dbs).
    pub wall_seconds: f64,
}

impl ToolRun {
    /// The result of benchmark `name`, if it ran.
    pub fn get(&self, name: &str) -> Option<&Measured> {
        self.results.iter().find(|m| m.result.name == name)
    }
}

/// Runs `program args`, echoing stdout to our stderr prefixed with `[label]`, and sending
/// its stderr to `stderr_log`. Fails if it exits unsuccessfully.
pub fn run_tool(
    label: &str,
    program: &Path,
    args: &[String],
    stderr_log: &Path,
) -> Result<ToolRun, String> {
    let log = std::fs::File::create(stderr_log)
        .map_err(|e| format!("cannot create {}: {e}", stderr_log.display()))?;
    eprintln!("[{label}] {} {}", program.display(), args.join(" "));
    let started = Instant::now();
    let mut child = crate::process::die_with_parent(&mut Command::new(program))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let sampler = RssSampler::start(child.id(), Duration::from_millis(10));
    let mut results = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            eprintln!("[{label}] {line}");
            if let Some(result) = parse_line(&line) {
                results.push(Measured {
                    result,
                    peak_rss_kb: sampler.take_phase_peak(),
                });
            }
        }
    }
    let (status, max_rss_kb) =
        wait_with_max_rss(&child).map_err(|e| format!("waiting for {label}: {e}"))?;
    drop(sampler);
    if !status.success() {
        let tail = std::fs::read_to_string(stderr_log).unwrap_or_default();
        let tail: Vec<&str> = tail.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "{label} failed ({status}); last lines of {}:\n{}",
            stderr_log.display(),
            tail.join("\n")
        ));
    }
    Ok(ToolRun {
        label: label.to_string(),
        results,
        max_rss_kb,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}
