//! compare-engine: runs `dbbench` (kv-engine) and RocksDB's `db_bench` with the same
//! workload flags in one command and prints ops/s, the kvd/RocksDB ratio and peak RSS per
//! workload. `--fillsync-scaling` instead runs fillsync at 1, 2, 4, 8, 16 threads.
//!
//! fillsync runs as its own invocation with `--writes=<--sync-writes>`: db_bench 7 does
//! `--num` fsynced writes per thread in fillsync (keys drawn from num/1000), which at
//! 1M keys would take most of an hour on this disk.
//!
//! Settings aligned on the RocksDB side (its defaults differ from kv-engine's):
//! `--compression_type` (matched), `--bloom_bits` (db_bench's default is no filter),
//! `--cache_size` (db_bench's default is 8 MiB), `--write_buffer_size=64 MiB` and
//! `--max_write_buffer_number=3` (kv-engine: one active memtable plus up to two immutable),
//! `--disable_wal=0`, `--progress_reports=0`. Level sizes, L0 triggers, block size and
//! target file size are already the same defaults on both sides.

use clap::Parser;
use kv_benches::bench_tool::{run_tool, ToolRun};
use kv_benches::parse_list;
use kv_benches::table::{mib, ratio, Table};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(about = "kv-engine (dbbench) vs RocksDB (db_bench), same flags, same run")]
struct Args {
    /// Keys per run (db_bench --num).
    #[arg(long, default_value_t = 1_000_000)]
    num: u64,
    /// Reads per thread for the read benchmarks (-1 = num).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    reads: i64,
    /// Value size in bytes.
    #[arg(long = "value_size", alias = "value-size", default_value_t = 100)]
    value_size: usize,
    /// Key size in bytes.
    #[arg(long = "key_size", alias = "key-size", default_value_t = 16)]
    key_size: usize,
    /// Threads per benchmark (each does the whole workload, as in db_bench).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Benchmarks, in order.
    #[arg(
        long,
        default_value = "fillseq,fillrandom,overwrite,readrandom,readseq,readmissing,fillsync"
    )]
    benchmarks: String,
    /// Scratch directory; the two databases go to DIR/kvd and DIR/rocksdb.
    #[arg(long, default_value = "/tmp/kvd-compare-engine")]
    dir: PathBuf,
    /// Print the results as JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// none or lz4, passed to both.
    #[arg(
        long = "compression_type",
        alias = "compression-type",
        default_value = "none"
    )]
    compression_type: String,
    /// Bloom filter bits per key, passed to both.
    #[arg(long = "bloom_bits", alias = "bloom-bits", default_value_t = 10)]
    bloom_bits: i64,
    /// Block cache bytes, passed to both.
    #[arg(long = "cache_size", alias = "cache-size", default_value_t = 64 << 20)]
    cache_size: i64,
    /// Our dbbench binary (default: next to this program).
    #[arg(long)]
    dbbench: Option<PathBuf>,
    /// RocksDB's db_bench.
    #[arg(
        long = "db_bench",
        alias = "db-bench",
        default_value = "/usr/bin/db_bench"
    )]
    db_bench: PathBuf,
    /// Run fillsync at each of --scaling-threads for both engines and print the scaling.
    #[arg(long = "fillsync-scaling")]
    fillsync_scaling: bool,
    /// Fsynced writes per thread in fillsync (passed as --writes to both tools).
    #[arg(long = "sync-writes", default_value_t = 1000)]
    sync_writes: u64,
    /// Thread counts for --fillsync-scaling.
    #[arg(long = "scaling-threads", default_value = "1,2,4,8,16")]
    scaling_threads: String,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("compare-engine: {e}");
        std::process::exit(1);
    }
}

fn run(a: &Args) -> Result<(), String> {
    let dbbench = match &a.dbbench {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("dbbench"),
    };
    std::fs::create_dir_all(&a.dir).map_err(|e| format!("{}: {e}", a.dir.display()))?;
    if a.fillsync_scaling {
        return scaling(a, &dbbench);
    }
    let names: Vec<String> = a.benchmarks.split(',').map(String::from).collect();
    let (mut kvd, mut rocks) = (Vec::new(), Vec::new());
    let bulk: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .filter(|n| *n != "fillsync")
        .collect();
    if !bulk.is_empty() {
        let (k, r) = run_both(a, &dbbench, &bulk.join(","), a.threads)?;
        kvd.push(k);
        rocks.push(r);
    }
    if names.iter().any(|n| n == "fillsync") {
        let (k, r) = run_both(a, &dbbench, "fillsync", a.threads)?;
        kvd.push(k);
        rocks.push(r);
    }
    let find = |runs: &[ToolRun], n: &str| runs.iter().find_map(|r| r.get(n)).cloned();
    if a.json {
        let rows: Vec<_> = names
            .iter()
            .map(|n| {
                let (k, r) = (find(&kvd, n), find(&rocks, n));
                let (k, r) = (k.as_ref(), r.as_ref());
                json!({
                    "workload": n,
                    "kvd_ops_per_sec": k.map(|m| m.result.ops_per_sec),
                    "rocksdb_ops_per_sec": r.map(|m| m.result.ops_per_sec),
                    "ratio": ops_ratio(k.map(|m| m.result.ops_per_sec), r.map(|m| m.result.ops_per_sec)),
                    "kvd_peak_rss_kb": k.map(|m| m.peak_rss_kb),
                    "rocksdb_peak_rss_kb": r.map(|m| m.peak_rss_kb),
                })
            })
            .collect();
        let doc = json!({ "config": config_json(a), "rows": rows, "kvd": kvd, "rocksdb": rocks });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    println!("{}", describe(a, a.threads));
    let mut t = Table::new(&[
        "workload",
        "kvd ops/s",
        "RocksDB ops/s",
        "kvd/RocksDB",
        "kvd us/op",
        "RocksDB us/op",
        "kvd peak RSS",
        "RocksDB peak RSS",
    ]);
    for n in &names {
        let (k, r) = (find(&kvd, n), find(&rocks, n));
        let (k, r) = (k.as_ref(), r.as_ref());
        let ops = |m: Option<&kv_benches::bench_tool::Measured>| {
            m.map(|m| m.result.ops_per_sec.to_string())
                .unwrap_or("-".into())
        };
        let us = |m: Option<&kv_benches::bench_tool::Measured>| {
            m.map(|m| format!("{:.3}", m.result.micros_per_op))
                .unwrap_or("-".into())
        };
        t.row(vec![
            n.clone(),
            ops(k),
            ops(r),
            ratio(
                k.map(|m| m.result.ops_per_sec as f64),
                r.map(|m| m.result.ops_per_sec as f64),
            ),
            us(k),
            us(r),
            mib(k.map(|m| m.peak_rss_kb)),
            mib(r.map(|m| m.peak_rss_kb)),
        ]);
    }
    print!("{}", t.render());
    for (k, r) in kvd.iter().zip(&rocks) {
        let names: Vec<&str> = k.results.iter().map(|m| m.result.name.as_str()).collect();
        println!(
            "{}: process peak RSS (wait4 maxrss) kvd {}, RocksDB {}; wall time kvd {:.1} s, RocksDB {:.1} s",
            names.join(","),
            mib(Some(k.max_rss_kb)),
            mib(Some(r.max_rss_kb)),
            k.wall_seconds,
            r.wall_seconds
        );
    }
    Ok(())
}

fn ops_ratio(k: Option<u64>, r: Option<u64>) -> Option<f64> {
    match (k, r) {
        (Some(k), Some(r)) if r > 0 => Some(k as f64 / r as f64),
        _ => None,
    }
}

fn describe(a: &Args, threads: usize) -> String {
    format!(
        "kv-engine dbbench vs RocksDB db_bench: num={} key_size={} value_size={} threads={} \
         compression={} bloom_bits={} cache_size={} reads={}",
        a.num,
        a.key_size,
        a.value_size,
        threads,
        a.compression_type,
        a.bloom_bits,
        a.cache_size,
        a.reads
    )
}

fn config_json(a: &Args) -> serde_json::Value {
    json!({
        "num": a.num, "reads": a.reads, "key_size": a.key_size, "value_size": a.value_size,
        "threads": a.threads, "benchmarks": a.benchmarks, "compression_type": a.compression_type,
        "bloom_bits": a.bloom_bits, "cache_size": a.cache_size, "sync_writes": a.sync_writes,
    })
}

/// The workload flags both tools get, with `db` as the database directory.
fn common_flags(a: &Args, benchmarks: &str, threads: usize, db: &Path) -> Vec<String> {
    let writes = if benchmarks == "fillsync" {
        a.sync_writes as i64
    } else {
        -1
    };
    vec![
        format!("--writes={writes}"),
        format!("--benchmarks={benchmarks}"),
        format!("--num={}", a.num),
        format!("--reads={}", a.reads),
        format!("--key_size={}", a.key_size),
        format!("--value_size={}", a.value_size),
        format!("--threads={threads}"),
        format!("--compression_type={}", a.compression_type),
        "--compression_ratio=0.5".to_string(),
        format!("--bloom_bits={}", a.bloom_bits),
        format!("--cache_size={}", a.cache_size),
        "--write_buffer_size=67108864".to_string(),
        "--use_existing_db=0".to_string(),
        "--sync=0".to_string(),
        format!("--db={}", db.display()),
    ]
}

/// Settings only RocksDB needs to match kv-engine (see the module doc).
const ROCKSDB_ALIGN: &[&str] = &[
    "--disable_wal=0",
    "--max_write_buffer_number=3",
    "--progress_reports=0",
];

fn run_both(
    a: &Args,
    dbbench: &Path,
    benchmarks: &str,
    threads: usize,
) -> Result<(ToolRun, ToolRun), String> {
    let kvd_db = a.dir.join("kvd");
    let rocks_db = a.dir.join("rocksdb");
    let kvd = run_tool(
        "kvd",
        dbbench,
        &common_flags(a, benchmarks, threads, &kvd_db),
        &a.dir.join("kvd.stderr.log"),
    )?;
    let _ = std::fs::remove_dir_all(&kvd_db);
    let mut rargs = common_flags(a, benchmarks, threads, &rocks_db);
    rargs.extend(ROCKSDB_ALIGN.iter().map(|s| s.to_string()));
    let rocks = run_tool(
        "RocksDB",
        &a.db_bench,
        &rargs,
        &a.dir.join("rocksdb.stderr.log"),
    )?;
    let _ = std::fs::remove_dir_all(&rocks_db);
    Ok((kvd, rocks))
}

fn scaling(a: &Args, dbbench: &Path) -> Result<(), String> {
    let threads: Vec<usize> = parse_list(&a.scaling_threads, "thread count")?;
    let mut rows = Vec::new();
    for &t in &threads {
        let (k, r) = run_both(a, dbbench, "fillsync", t)?;
        let ops = |run: &ToolRun| run.get("fillsync").map(|m| m.result.ops_per_sec);
        rows.push((t, ops(&k), ops(&r)));
    }
    let gain = |first: Option<u64>, last: Option<u64>| {
        let (first, last) = (first? as f64, last? as f64);
        (first > 0.0).then(|| last / first)
    };
    let (head, tail) = (rows.first(), rows.last());
    let kvd_gain = gain(head.and_then(|r| r.1), tail.and_then(|r| r.1));
    let rocks_gain = gain(head.and_then(|r| r.2), tail.and_then(|r| r.2));
    if a.json {
        let doc = json!({
            "config": config_json(a),
            "fillsync_scaling": rows.iter().map(|(t, k, r)| json!({
                "threads": t, "kvd_ops_per_sec": k, "rocksdb_ops_per_sec": r, "ratio": ops_ratio(*k, *r),
            })).collect::<Vec<_>>(),
            "kvd_gain_last_vs_first": kvd_gain,
            "rocksdb_gain_last_vs_first": rocks_gain,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    println!(
        "fillsync scaling ({} fsynced writes per thread): {}",
        a.sync_writes,
        describe(a, 0).replace(" threads=0", "")
    );
    let mut t = Table::new(&["threads", "kvd ops/s", "RocksDB ops/s", "kvd/RocksDB"]);
    for (th, k, r) in &rows {
        let s = |v: &Option<u64>| v.map(|v| v.to_string()).unwrap_or("-".into());
        t.row(vec![
            th.to_string(),
            s(k),
            s(r),
            ratio(k.map(|v| v as f64), r.map(|v| v as f64)),
        ]);
    }
    print!("{}", t.render());
    let g = |v: Option<f64>| v.map(|v| format!("x{v:.2}")).unwrap_or("-".into());
    println!(
        "gain {} vs {} threads: kvd {}, RocksDB {}",
        threads.last().unwrap_or(&0),
        threads.first().unwrap_or(&0),
        g(kvd_gain),
        g(rocks_gain)
    );
    Ok(())
}
