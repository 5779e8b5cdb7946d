//! kvd runs the engine's flush and compaction threads at nice 10 and its command
//! workers at its own priority (docs/performance.md, "Background work at nice 10").

use kv_tests::Kvd;
use std::time::{Duration, Instant};

/// (thread name, nice) of every thread of process `pid`.
fn threads(pid: u32) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // "tid (comm) state ...": the fields after the last ')' are fixed; nice is the
        // 19th field of the line, the 17th after the name.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        if let Some(nice) = fields.get(16).and_then(|n| n.parse().ok()) {
            out.push((stat[open + 1..close].to_string(), nice));
        }
    }
    out
}

#[test]
fn background_threads_run_at_nice_10_and_workers_do_not() {
    let k = Kvd::start_default();
    let pid = k.pid();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all = threads(pid);
        let nice_of = |name: &str| all.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        let worker = all.iter().find(|(n, _)| n == "kvd-worker").map(|(_, v)| *v);
        if let (Some(flush), Some(compact), Some(worker)) =
            (nice_of("kv-flush"), nice_of("kv-compact-1"), worker)
        {
            if worker >= 10 {
                eprintln!("SKIPPED: kvd runs at nice {worker}, already at or above 10");
                return;
            }
            if (flush, compact) == (10, 10) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "threads of kvd: {all:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
