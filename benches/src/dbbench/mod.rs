//! dbbench: RocksDB db_bench's workloads, flags and report lines on kv-engine.
//!
//! Semantics follow db_bench 7.x (`tools/db_bench_tool.cc`):
//! - the benchmarks run in order on one open database; `fillseq`, `fillrandom` and
//!   `fillsync` start from a fresh (destroyed) database, the others use what is there;
//! - every one of `--threads` threads does the whole workload: `writes` (default `num`)
//!   writes for the fills (so fills write `threads * num` times, fillseq's threads each
//!   write keys 0..num), `reads` (default `num`) reads for readrandom, readmissing and
//!   readseq;
//! - `fillsync` syncs every write and draws its random keys from `0..num / 1000`, but,
//!   like db_bench 7 (whose `DoWrite` does `writes_` operations, and `writes_` defaults to
//!   `--num`), still does `writes` (default `num`) writes per thread; its help text's
//!   "N/1000 values" is LevelDB's older behaviour. Pass `--writes=N` for a short run;
//! - `readmissing` looks up `key_size + 1`-byte keys, which are never written;
//! - readrandom picks keys uniformly in `0..num` and reports how many it found, which
//!   after fillrandom + overwrite is about 86% (random fills repeat keys);
//! - each thread's generator is seeded `seed + n`, `n` counting threads over all
//!   benchmarks of the run, so overwrite and readrandom do not replay fillrandom's keys.
//!
//! `--sync=1` (and fillsync) opens the engine with `FsyncPolicy::Always`, otherwise
//! `FsyncPolicy::No`: the WAL is written but fsync is left to the OS, as db_bench's default
//! (`sync=false`, `disable_wal=false`) does.

pub mod flags;
pub mod histogram;
pub mod stats;
pub mod workload;

use flags::Flags;
use kv_engine::{Compression, Db, FsyncPolicy, Keyspace, Options};
use stats::Stats;
use std::io::Write;
use std::sync::Barrier;
use std::time::Instant;
use workload::{make_key, KeyRng, ValueGenerator};

/// How a benchmark's operations are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    WriteSeq,
    WriteRandom,
    ReadRandom,
    ReadSeq,
    Flush,
    Compact,
    PrintStats,
}

/// One benchmark as run: db_bench adjusts num, key size and sync per benchmark name.
#[derive(Debug, Clone, Copy)]
struct Plan {
    method: Method,
    fresh_db: bool,
    /// Key range of random writes.
    num: u64,
    /// Writes per thread.
    writes: u64,
    /// Reads per thread.
    reads: u64,
    key_size: usize,
    sync: bool,
}

fn plan(name: &str, f: &Flags) -> Result<Plan, String> {
    let reads = if f.reads < 0 { f.num } else { f.reads as u64 };
    let writes = if f.writes < 0 { f.num } else { f.writes as u64 };
    let base = Plan {
        method: Method::ReadRandom,
        fresh_db: false,
        num: f.num,
        writes,
        reads,
        key_size: f.key_size,
        sync: f.sync,
    };
    Ok(match name {
        "fillseq" => Plan {
            method: Method::WriteSeq,
            fresh_db: true,
            ..base
        },
        "fillrandom" => Plan {
            method: Method::WriteRandom,
            fresh_db: true,
            ..base
        },
        "overwrite" => Plan {
            method: Method::WriteRandom,
            ..base
        },
        "fillsync" => Plan {
            method: Method::WriteRandom,
            fresh_db: true,
            num: f.num / 1000,
            sync: true,
            ..base
        },
        "readrandom" => base,
        "readmissing" => Plan {
            key_size: f.key_size + 1,
            ..base
        },
        "readseq" => Plan {
            method: Method::ReadSeq,
            ..base
        },
        "flush" => Plan {
            method: Method::Flush,
            ..base
        },
        "compact" | "compactall" => Plan {
            method: Method::Compact,
            ..base
        },
        "stats" | "levelstats" => Plan {
            method: Method::PrintStats,
            ..base
        },
        _ => return Err(format!("unknown benchmark '{name}'")),
    })
}

/// Engine options for these flags (see the module doc for the fsync mapping).
pub fn engine_options(f: &Flags, sync: bool) -> Options {
    Options {
        fsync: if sync {
            FsyncPolicy::Always
        } else {
            FsyncPolicy::No
        },
        block_cache_bytes: f.cache_size.max(0) as usize,
        // db_bench: a negative --bloom_bits means RocksDB's default, which is no filter.
        bloom_bits_per_key: f.bloom_bits.max(0) as usize,
        compression: if f.compression_type == "none" {
            Compression::None
        } else {
            Compression::Lz4
        },
        memtable_size: f.write_buffer_size,
        block_size: f.block_size,
        ..Options::default()
    }
}

/// Runs `flags.benchmarks` in order, writing db_bench's lines to `out`.
pub fn run(flags: &Flags, out: &mut dyn Write) -> Result<(), String> {
    let mut bench = Bench {
        flags,
        db: None,
        sync: false,
        seed_base: workload::seed_base(flags.seed),
        threads_started: 0,
    };
    print_header(flags, out);
    if !flags.use_existing_db {
        remove_db_dir(flags)?;
    }
    for name in &flags.benchmarks {
        let p = plan(name, flags)?;
        if p.fresh_db && flags.use_existing_db {
            line(
                out,
                &format!("{name:<12} : skipped (--use_existing_db is true)"),
            );
            continue;
        }
        bench.ensure_open(p.fresh_db, p.sync, out)?;
        let st = bench.run_one(&p)?;
        bench.threads_started += flags.threads as u64;
        if p.method == Method::PrintStats {
            continue;
        }
        line(out, &st.report(name));
        if let Some(h) = &st.hist {
            let op = match p.method {
                Method::WriteSeq | Method::WriteRandom => "write",
                _ => "read",
            };
            line(out, &format!("Microseconds per {op}:\n{}", h.render()));
        }
        if flags.statistics {
            bench.print_stats(out);
        }
    }
    bench.close()
}

fn line(out: &mut dyn Write, s: &str) {
    let _ = writeln!(out, "{s}");
    let _ = out.flush();
}

fn print_header(f: &Flags, out: &mut dyn Write) {
    let compressed = (f.value_size as f64 * f.compression_ratio) as usize;
    let mb = |bytes: f64| bytes * f.num as f64 / 1048576.0;
    let text = format!(
        "Keys:       {} bytes each (+ 0 bytes user-defined timestamp)\n\
         Values:     {} bytes each ({} bytes after compression)\n\
         Entries:    {}\n\
         RawSize:    {:.1} MB (estimated)\n\
         FileSize:   {:.1} MB (estimated)\n\
         Compression: {}\n\
         Engine:     kv-engine (bloom_bits={}, cache_size={}, write_buffer_size={})\n\
         ------------------------------------------------",
        f.key_size,
        f.value_size,
        compressed,
        f.num,
        mb((f.key_size + f.value_size) as f64),
        mb(f.key_size as f64 + compressed as f64),
        if f.compression_type == "none" {
            "NoCompression"
        } else {
            "LZ4"
        },
        f.bloom_bits,
        f.cache_size,
        f.write_buffer_size,
    );
    line(out, &text);
}

fn remove_db_dir(f: &Flags) -> Result<(), String> {
    match std::fs::remove_dir_all(&f.db) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", f.db.display())),
    }
}

struct Bench<'a> {
    flags: &'a Flags,
    db: Option<Db>,
    /// The fsync policy the open Db has (true = Always).
    sync: bool,
    seed_base: u64,
    /// Threads started by earlier benchmarks: the next thread's seed offset (db_bench's
    /// `total_thread_count_`).
    threads_started: u64,
}

impl Bench<'_> {
    /// Opens the database as the benchmark needs: destroyed first if `fresh`, reopened
    /// if its fsync policy must change (the policy is fixed per open Db).
    fn ensure_open(&mut self, fresh: bool, sync: bool, out: &mut dyn Write) -> Result<(), String> {
        if self.db.is_some() && !fresh && self.sync == sync {
            return Ok(());
        }
        self.close()?;
        if fresh {
            remove_db_dir(self.flags)?;
        }
        let opts = engine_options(self.flags, sync);
        let db = Db::open(&self.flags.db, opts)
            .map_err(|e| format!("open {}: {e}", self.flags.db.display()))?;
        self.db = Some(db);
        self.sync = sync;
        line(out, &format!("DB path: [{}]", self.flags.db.display()));
        Ok(())
    }

    fn close(&mut self) -> Result<(), String> {
        match self.db.take() {
            Some(db) => db.close().map_err(|e| format!("close: {e}")),
            None => Ok(()),
        }
    }

    fn db(&self) -> Result<&Db, String> {
        self.db
            .as_ref()
            .ok_or_else(|| "database is not open".to_string())
    }

    fn run_one(&self, p: &Plan) -> Result<Stats, String> {
        let db = self.db()?;
        let hist = self.flags.histogram;
        let single = |op: &dyn Fn() -> kv_engine::Result<()>| -> Result<Stats, String> {
            let mut st = Stats::start(hist);
            op().map_err(|e| e.to_string())?;
            st.done = 1;
            st.stop();
            Ok(st)
        };
        match p.method {
            Method::Flush => return single(&|| db.flush()),
            Method::Compact => return single(&|| db.compact_range(Keyspace::DEFAULT, None, None)),
            Method::PrintStats => {
                let mut o = std::io::stdout();
                self.print_stats(&mut o);
                return Ok(Stats::start(false));
            }
            _ => {}
        }
        let threads = self.flags.threads;
        let barrier = Barrier::new(threads);
        let results: Vec<Result<Stats, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|tid| {
                    let barrier = &barrier;
                    s.spawn(move || self.worker(db, p, tid, barrier))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("benchmark thread panicked".into()))
                })
                .collect()
        });
        let mut merged: Option<Stats> = None;
        for r in results {
            let st = r?;
            match &mut merged {
                Some(m) => m.merge(&st),
                None => merged = Some(st),
            }
        }
        merged.ok_or_else(|| "no threads ran".to_string())
    }

    /// One thread's share: set up, wait for the others, then run timed.
    fn worker(&self, db: &Db, p: &Plan, tid: usize, barrier: &Barrier) -> Result<Stats, String> {
        let f = self.flags;
        let mut rng = KeyRng::new(self.seed_base.wrapping_add(self.threads_started), tid);
        let mut values = ValueGenerator::new(f.value_size, f.compression_ratio);
        let mut key = vec![0u8; p.key_size];
        barrier.wait();
        let mut st = Stats::start(f.histogram);
        let timed = |st: &mut Stats, t0: Option<Instant>| {
            if let (Some(h), Some(t0)) = (st.hist.as_mut(), t0) {
                h.add(t0.elapsed().as_micros() as u64);
            }
            st.done += 1;
        };
        let clock = || f.histogram.then(Instant::now);
        match p.method {
            Method::WriteSeq | Method::WriteRandom => {
                if p.num != f.num {
                    st.message = format!("({} ops)", p.num);
                }
                for i in 0..p.writes {
                    let k = if p.method == Method::WriteSeq {
                        i
                    } else {
                        rng.below(p.num)
                    };
                    make_key(k, &mut key);
                    let t0 = clock();
                    db.put(Keyspace::DEFAULT, &key, values.generate(f.value_size))
                        .map_err(|e| format!("put error: {e}"))?;
                    st.bytes += (p.key_size + f.value_size) as u64;
                    timed(&mut st, t0);
                }
            }
            Method::ReadRandom => {
                let mut found = 0u64;
                for _ in 0..p.reads {
                    make_key(rng.below(f.num), &mut key);
                    let t0 = clock();
                    let got = db
                        .get(Keyspace::DEFAULT, &key)
                        .map_err(|e| format!("get error: {e}"))?;
                    if let Some(v) = got {
                        found += 1;
                        st.bytes += (key.len() + v.value.len()) as u64;
                    }
                    timed(&mut st, t0);
                }
                st.message = format!("({found} of {} found)\n", p.reads);
            }
            Method::ReadSeq => {
                let mut iter = db
                    .iter(Keyspace::DEFAULT, None, None, None)
                    .map_err(|e| format!("iterator error: {e}"))?;
                let mut t0 = clock();
                while st.done < p.reads {
                    // Borrowed, as RocksDB's iterator hands out slices.
                    let Some(entry) = iter.next_ref() else { break };
                    let entry = entry.map_err(|e| format!("iterator error: {e}"))?;
                    st.bytes += (entry.key.len() + entry.value.len()) as u64;
                    timed(&mut st, t0);
                    t0 = clock();
                }
            }
            Method::Flush | Method::Compact | Method::PrintStats => {}
        }
        st.stop();
        Ok(st)
    }

    fn print_stats(&self, out: &mut dyn Write) {
        let Some(db) = &self.db else { return };
        let s = db.stats();
        let mut text = String::from("kv-engine stats:\n");
        for l in s.levels.iter().filter(|l| l.files > 0) {
            text.push_str(&format!(
                "  L{}: {} files, {:.1} MB\n",
                l.level,
                l.files,
                l.bytes as f64 / 1048576.0
            ));
        }
        text.push_str(&format!(
            "  memtables: {:.1} MB ({} immutable); write amp {:.2}; flushes {}; compactions {}\n  \
             stalls: {} slowdowns, {} stops, {:.3} s; bloom: {} checks, {} negatives, {} false positives\n  \
             block cache: {} hits, {} misses, {:.1} MB",
            s.memtable_bytes as f64 / 1048576.0,
            s.immutable_memtables,
            s.write_amplification,
            s.flushes,
            s.compactions,
            s.stall_slowdowns,
            s.stall_stops,
            s.stall_micros as f64 / 1e6,
            s.bloom_checks,
            s.bloom_negatives,
            s.bloom_false_positives,
            s.block_cache_hits,
            s.block_cache_misses,
            s.block_cache_bytes as f64 / 1048576.0
        ));
        line(out, &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_db_bench() {
        let f = Flags {
            num: 10_000,
            ..Flags::default()
        };
        let sync = plan("fillsync", &f).unwrap();
        assert_eq!((sync.num, sync.sync, sync.fresh_db), (10, true, true));
        assert_eq!(sync.writes, 10_000);
        let short = Flags {
            writes: 3,
            ..f.clone()
        };
        assert_eq!(plan("fillsync", &short).unwrap().writes, 3);
        assert_eq!(plan("readmissing", &f).unwrap().key_size, 17);
        assert!(!plan("overwrite", &f).unwrap().fresh_db);
        assert_eq!(plan("readseq", &f).unwrap().reads, 10_000);
        assert!(plan("fillfoo", &f).is_err());
        let g = Flags { reads: 5, ..f };
        assert_eq!(plan("readrandom", &g).unwrap().reads, 5);
    }

    #[test]
    fn options_map_flags() {
        let f = Flags {
            bloom_bits: -1,
            cache_size: 123,
            compression_type: "none".into(),
            ..Flags::default()
        };
        let o = engine_options(&f, true);
        assert_eq!(o.fsync, FsyncPolicy::Always);
        assert_eq!((o.bloom_bits_per_key, o.block_cache_bytes), (0, 123));
        assert_eq!(o.compression, Compression::None);
        assert_eq!(engine_options(&f, false).fsync, FsyncPolicy::No);
    }
}
