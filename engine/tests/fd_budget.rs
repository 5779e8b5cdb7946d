//! `Options::file_descriptor_budget()` is an upper bound on the descriptors a Db holds:
//! measured on the real file system by sampling `/proc/self/fd` while the Db writes,
//! flushes, compacts with two threads, reads through a table cache smaller than its
//! set of tables, and checkpoints. Sampling can miss a peak, so this cannot prove the
//! bound; it fails when the Db is seen above it. (The one test in this file is alone in its process, so every
//! descriptor above the baseline is the Db's.)

use kv_engine::{Db, FsyncPolicy, Keyspace, Options};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Samples the descriptor count on a thread until dropped; keeps the maximum.
struct Sampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start() -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicUsize::new(0));
        let (s, m) = (stop.clone(), max.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                // The sampler's own read_dir descriptor is not the Db's.
                m.fetch_max(open_descriptors().saturating_sub(1), Ordering::Relaxed);
            }
        });
        Sampler {
            stop,
            max,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("sampler");
        }
        self.max.load(Ordering::Relaxed)
    }
}

#[test]
fn the_descriptor_budget_bounds_what_the_db_holds() {
    if !std::path::Path::new("/proc/self/fd").exists() {
        eprintln!("no /proc/self/fd here; nothing to measure");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let opts = Options {
        fsync: FsyncPolicy::No,
        memtable_size: 16 * 1024,
        block_size: 512,
        target_file_size: 8 * 1024,
        l1_max_bytes: 64 * 1024,
        l0_compaction_trigger: 2,
        l0_slowdown_writes_trigger: 3,
        l0_stop_writes_trigger: 4,
        block_cache_bytes: 0,
        max_open_files: 8,
        compaction_threads: 2,
        ..Options::default()
    };
    let budget = opts.file_descriptor_budget();
    let baseline = open_descriptors();
    let sampler = Sampler::start();

    let db = Db::open(tmp.path().join("db"), opts).unwrap();
    let value = vec![b'v'; 200];
    for i in 0..4000u32 {
        db.put(Keyspace::DEFAULT, format!("key{i:06}").as_bytes(), &value)
            .unwrap();
    }
    db.compact_range(Keyspace::DEFAULT, None, None).unwrap();
    let tables: usize = db.stats().levels.iter().map(|l| l.files).sum();
    // Point reads in a stride, so the 8-table cache keeps evicting.
    for i in (0..4000u32).map(|i| (i * 997) % 4000) {
        let got = db.get(Keyspace::DEFAULT, format!("key{i:06}").as_bytes());
        assert!(got.unwrap().is_some(), "key{i:06}");
    }
    db.checkpoint(tmp.path().join("checkpoint")).unwrap();
    db.close().unwrap();

    let peak = sampler.finish().saturating_sub(baseline);
    eprintln!("tables {tables}, budget {budget}, peak descriptors above baseline {peak}");
    assert!(
        tables > 8,
        "the test needs more tables than the cache holds"
    );
    assert!(peak > 0, "the sampler saw nothing");
    assert!(peak <= budget, "peak {peak} exceeds the budget {budget}");
}
