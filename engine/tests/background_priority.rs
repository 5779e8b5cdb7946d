//! The flush thread and the compaction threads run at `Options::background_nice`
//! (Linux); the other threads keep the process's priority. Alone in its binary: it reads
//! every thread of the process.
#![cfg(target_os = "linux")]

use kv_engine::{Db, Options};
use std::time::{Duration, Instant};

/// (thread name, nice) of every thread of this process.
fn threads() -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let Ok(stat) = std::fs::read_to_string(task.unwrap().path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // "tid (comm) state ppid ...": comm may hold spaces; fields after ')' are fixed.
        let open = stat.find('(').unwrap();
        let close = stat.rfind(')').unwrap();
        let name = stat[open + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // Field 19 of stat (nice) is the 17th after the comm.
        out.push((name, fields[16].parse().unwrap()));
    }
    out
}

#[test]
fn flush_and_compaction_threads_run_at_the_configured_nice() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        background_nice: 7,
        compaction_threads: 2,
        ..Options::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Threads name themselves as they start: wait for all four.
    let (process_nice, bg) = loop {
        let all = threads();
        // The auto-resume thread is not lowered: it shows the process's own nice.
        let resume = all.iter().find(|(name, _)| name == "kv-resume");
        let bg: Vec<_> = all
            .iter()
            .filter(|(name, _)| name.starts_with("kv-compact-") || name == "kv-flush")
            .cloned()
            .collect();
        // One flush thread and two compaction threads.
        if let (Some((_, nice)), 3) = (resume, bg.len()) {
            break (*nice, bg);
        }
        assert!(Instant::now() < deadline, "threads: {all:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    if process_nice >= 7 {
        eprintln!("SKIPPED: this test runs at nice {process_nice}, already at or above 7");
        return;
    }
    // Each lowers itself as it starts, maybe just after naming itself.
    let mut bg = bg;
    while !bg.iter().all(|(_, nice)| *nice == 7) {
        assert!(Instant::now() < deadline, "background threads: {bg:?}");
        std::thread::sleep(Duration::from_millis(10));
        bg = threads()
            .into_iter()
            .filter(|(name, _)| name.starts_with("kv-compact-") || name == "kv-flush")
            .collect();
    }
    let resume = threads().into_iter().find(|(name, _)| name == "kv-resume");
    assert_eq!(resume, Some(("kv-resume".to_string(), process_nice)));
    drop(db);
}
