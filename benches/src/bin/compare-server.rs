//! compare-server: starts kvd and redis-server side by side (AOF, appendfsync everysec,
//! temp dirs, free ports), runs the same redis-benchmark against each at -P 1 and -P 16,
//! prints ops/s, p50 and p99 with kvd/redis ratios and the load average at the start of
//! each run, then loads `--rss-keys` keys into each and reports their RSS. On a machine
//! with two or more CPUs the servers run on CPU 0 and redis-benchmark on CPU 1 (`--no-pin`
//! to let the scheduler choose), so both servers are measured the same way. Both servers are stopped at the end, on error too (and they get
//! SIGKILL from the kernel if this program dies first).

use clap::Parser;
use kv_benches::parse_list;
use kv_benches::process::{
    die_with_parent, free_port, load_average, pin_to_cpu, run_with_timeout, status_kb, KillOnDrop,
    Paused,
};
use kv_benches::redis_csv::{self, BenchRow};
use kv_benches::resp_load;
use kv_benches::table::{mib, ratio, Table};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(about = "kvd vs redis-server with redis-benchmark, same run")]
struct Args {
    /// Requests per redis-benchmark test.
    #[arg(short = 'n', default_value_t = 1_000_000)]
    requests: u64,
    /// Keys loaded into each server before reading its RSS.
    #[arg(long = "rss-keys", default_value_t = 10_000_000)]
    rss_keys: u64,
    /// Smoke run: 20000 requests and 100000 keys.
    #[arg(long)]
    quick: bool,
    /// The kvd binary.
    #[arg(long, default_value = "target/release/kvd")]
    kvd: PathBuf,
    /// The redis-server binary.
    #[arg(long = "redis-server", default_value = "redis-server")]
    redis_server: PathBuf,
    /// The redis-benchmark binary.
    #[arg(long = "redis-benchmark", default_value = "redis-benchmark")]
    redis_benchmark: PathBuf,
    /// Which servers to run: kvd,redis (one alone is a dry run).
    #[arg(long, default_value = "kvd,redis")]
    servers: String,
    /// redis-benchmark -t.
    #[arg(long, default_value = "set,get,incr,mset")]
    tests: String,
    /// Pipeline depths (-P), one benchmark per depth.
    #[arg(long, default_value = "1,16")]
    pipelines: String,
    /// Parallel clients (-c).
    #[arg(short = 'c', long, default_value_t = 50)]
    clients: u32,
    /// Random key space (-r).
    #[arg(short = 'r', long = "keyspace", default_value_t = 1_000_000)]
    keyspace: u64,
    /// Value size (-d).
    #[arg(short = 'd', long = "data-size", default_value_t = 100)]
    data_size: usize,
    /// Scratch directory (default: a new one under /tmp).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Give up on one redis-benchmark run after this many seconds.
    #[arg(long = "timeout", default_value_t = 900)]
    timeout_secs: u64,
    /// Do not pin the servers to CPU 0 and redis-benchmark to CPU 1.
    #[arg(long = "no-pin")]
    no_pin: bool,
}

/// CPUs the servers and the load generator run on, when pinned.
const SERVER_CPU: usize = 0;
const BENCHMARK_CPU: usize = 1;

impl Args {
    /// Pinning needs two CPUs; with one, both would share it anyway.
    fn pin(&self) -> bool {
        !self.no_pin && std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Kvd,
    Redis,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Kvd => "kvd",
            Kind::Redis => "redis",
        }
    }
}

/// One redis-benchmark run: its rows, or why it failed.
struct BenchRun {
    pipeline: u32,
    kind: Kind,
    /// `/proc/loadavg` (1, 5, 15 minutes) just before the run.
    load: Option<String>,
    rows: Result<Vec<BenchRow>, String>,
}

struct Server {
    kind: Kind,
    port: u16,
    proc: KillOnDrop,
    log: PathBuf,
}

fn main() {
    let mut args = Args::parse();
    if args.quick {
        args.requests = args.requests.min(20_000);
        args.rss_keys = args.rss_keys.min(100_000);
    }
    if let Err(e) = run(&args) {
        eprintln!("compare-server: {e}");
        std::process::exit(1);
    }
}

fn run(a: &Args) -> Result<(), String> {
    let kinds: Vec<Kind> = a
        .servers
        .split(',')
        .map(|s| match s.trim() {
            "kvd" => Ok(Kind::Kvd),
            "redis" | "redis-server" => Ok(Kind::Redis),
            other => Err(format!("unknown server '{other}' (kvd, redis)")),
        })
        .collect::<Result<_, _>>()?;
    let base = a.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("kvd-compare-server-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;

    // Servers live in `servers`; dropping it (on any return) stops them.
    let mut servers = Vec::new();
    for &k in &kinds {
        servers.push(start(a, k, &base)?);
    }
    for s in &mut servers {
        wait_ready(s, Duration::from_secs(30))?;
        eprintln!(
            "{} ready on port {} (pid {})",
            s.kind.name(),
            s.port,
            s.proc.pid()
        );
    }

    let pipelines: Vec<u32> = parse_list(&a.pipelines, "pipeline depth")?;
    let mut results: Vec<BenchRun> = Vec::new();
    for &p in &pipelines {
        for i in 0..servers.len() {
            let others: Vec<u32> = (servers.iter().enumerate())
                .filter(|&(j, _)| j != i)
                .map(|(_, o)| o.proc.pid())
                .collect();
            let s = &mut servers[i];
            eprintln!("redis-benchmark -P {p} against {} ...", s.kind.name());
            // The other servers stay stopped for this run (process::Paused).
            let paused = Paused::new(others);
            let load = load_average();
            let r = benchmark(a, s.port, p);
            drop(paused);
            if let Err(e) = &r {
                eprintln!("{}: {e}", s.kind.name());
            }
            if !s.proc.is_running() {
                return Err(format!(
                    "{} died during the benchmark; see {}",
                    s.kind.name(),
                    s.log.display()
                ));
            }
            results.push(BenchRun {
                pipeline: p,
                kind: s.kind,
                load,
                rows: r,
            });
        }
    }

    let mut memory = Vec::new();
    for s in &mut servers {
        eprintln!("loading {} keys into {} ...", a.rss_keys, s.kind.name());
        let loaded = resp_load::load(s.port, a.rss_keys, a.data_size, 4);
        std::thread::sleep(Duration::from_secs(2));
        let pid = s.proc.pid();
        memory.push((
            s.kind,
            loaded,
            status_kb(pid, "VmRSS"),
            status_kb(pid, "VmHWM"),
        ));
    }

    if a.json {
        print_json(a, &results, &memory)?;
    } else {
        print_tables(a, &kinds, &pipelines, &results, &memory);
    }
    drop(servers);
    Ok(())
}

fn start(a: &Args, kind: Kind, base: &Path) -> Result<Server, String> {
    let dir = base.join(kind.name());
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let port = free_port().map_err(|e| format!("no free port: {e}"))?;
    let port_s = port.to_string();
    let dir_s = dir.display().to_string();
    let mut cmd = match kind {
        Kind::Kvd => {
            let mut c = Command::new(&a.kvd);
            c.args([
                "--port",
                &port_s,
                "--dir",
                &dir_s,
                "--appendfsync",
                "everysec",
            ]);
            c
        }
        Kind::Redis => {
            let mut c = Command::new(&a.redis_server);
            c.args([
                "--port",
                &port_s,
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--dir",
                &dir_s,
                "--save",
                "",
            ]);
            c
        }
    };
    if a.pin() {
        pin_to_cpu(&mut cmd, SERVER_CPU);
    }
    let log = base.join(format!("{}.log", kind.name()));
    let out = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let child = die_with_parent(&mut cmd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    Ok(Server {
        kind,
        port,
        proc: KillOnDrop::new(child, kind.name(), Duration::from_secs(30)),
        log,
    })
}

fn wait_ready(s: &mut Server, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !s.proc.is_running() {
            let log = std::fs::read_to_string(&s.log).unwrap_or_default();
            return Err(format!("{} exited at start-up:\n{log}", s.kind.name()));
        }
        if resp_load::ping(s.port) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "{} did not answer PING on port {} within {limit:?}",
        s.kind.name(),
        s.port
    ))
}

fn benchmark(a: &Args, port: u16, pipeline: u32) -> Result<Vec<BenchRow>, String> {
    let mut cmd = Command::new(&a.redis_benchmark);
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", &a.tests])
        .args(["-n", &a.requests.to_string(), "-r", &a.keyspace.to_string()])
        .args(["-d", &a.data_size.to_string(), "-c", &a.clients.to_string()])
        .args(["-P", &pipeline.to_string(), "--csv"]);
    if a.pin() {
        pin_to_cpu(&mut cmd, BENCHMARK_CPU);
    }
    let done = run_with_timeout(&mut cmd, Duration::from_secs(a.timeout_secs))
        .map_err(|e| format!("redis-benchmark: {e}"))?;
    if !done.status.success() {
        return Err(format!(
            "redis-benchmark failed ({}): {}",
            done.status,
            done.stderr.trim()
        ));
    }
    redis_csv::parse(&done.stdout)
}

type Memory = (Kind, Result<Duration, String>, Option<u64>, Option<u64>);

fn find(results: &[BenchRun], p: u32, k: Kind) -> Option<&Result<Vec<BenchRow>, String>> {
    results
        .iter()
        .find(|r| r.pipeline == p && r.kind == k)
        .map(|r| &r.rows)
}

fn print_tables(
    a: &Args,
    kinds: &[Kind],
    pipelines: &[u32],
    results: &[BenchRun],
    memory: &[Memory],
) {
    for &p in pipelines {
        println!(
            "\nredis-benchmark -t {} -n {} -r {} -d {} -c {} -P {p}",
            a.tests, a.requests, a.keyspace, a.data_size, a.clients
        );
        let placement = if a.pin() {
            format!("servers on CPU {SERVER_CPU}, redis-benchmark on CPU {BENCHMARK_CPU}")
        } else {
            "not pinned".to_string()
        };
        let loads: Vec<String> = results
            .iter()
            .filter(|r| r.pipeline == p)
            .map(|r| format!("{} {}", r.kind.name(), r.load.as_deref().unwrap_or("?")))
            .collect();
        println!("{placement}; load average at start: {}", loads.join(", "));
        for &k in kinds {
            if let Some(Err(e)) = find(results, p, k) {
                println!("  {} failed: {e}", k.name());
            }
        }
        let rows_of = |k: Kind| match find(results, p, k) {
            Some(Ok(rows)) => rows.clone(),
            _ => Vec::new(),
        };
        let (kvd, redis) = (rows_of(Kind::Kvd), rows_of(Kind::Redis));
        let mut tests: Vec<String> = kvd.iter().map(|r| r.test.clone()).collect();
        for r in &redis {
            if !tests.contains(&r.test) {
                tests.push(r.test.clone());
            }
        }
        let mut t = Table::new(&[
            "test",
            "kvd ops/s",
            "redis ops/s",
            "kvd/redis",
            "kvd p50 ms",
            "redis p50 ms",
            "kvd p99 ms",
            "redis p99 ms",
            "p99 kvd/redis",
        ]);
        for name in tests {
            let k = kvd.iter().find(|r| r.test == name);
            let r = redis.iter().find(|r| r.test == name);
            let f = |v: Option<f64>, d: usize| v.map(|v| format!("{v:.d$}")).unwrap_or("-".into());
            t.row(vec![
                name.clone(),
                f(k.map(|r| r.rps), 0),
                f(r.map(|r| r.rps), 0),
                ratio(k.map(|r| r.rps), r.map(|r| r.rps)),
                f(k.and_then(|r| r.p50_ms), 3),
                f(r.and_then(|r| r.p50_ms), 3),
                f(k.and_then(|r| r.p99_ms), 3),
                f(r.and_then(|r| r.p99_ms), 3),
                ratio(k.and_then(|r| r.p99_ms), r.and_then(|r| r.p99_ms)),
            ]);
        }
        print!("{}", t.render());
    }
    println!(
        "\nmemory after loading {} keys of {} bytes (after the benchmarks above)",
        a.rss_keys, a.data_size
    );
    let mut t = Table::new(&[
        "server",
        "load keys/s",
        "RSS after load",
        "peak RSS (VmHWM)",
    ]);
    for (k, loaded, rss, hwm) in memory {
        let rate = match loaded {
            Ok(d) => format!("{:.0}", a.rss_keys as f64 / d.as_secs_f64().max(1e-9)),
            Err(e) => format!("failed: {e}"),
        };
        t.row(vec![k.name().to_string(), rate, mib(*rss), mib(*hwm)]);
    }
    print!("{}", t.render());
}

fn print_json(a: &Args, results: &[BenchRun], memory: &[Memory]) -> Result<(), String> {
    let runs: Vec<_> = results
        .iter()
        .map(|r| match &r.rows {
            Ok(rows) => json!({"pipeline": r.pipeline, "server": r.kind.name(), "load": r.load, "rows": rows}),
            Err(e) => json!({"pipeline": r.pipeline, "server": r.kind.name(), "load": r.load, "error": e}),
        })
        .collect();
    let mem: Vec<_> = memory
        .iter()
        .map(|(k, loaded, rss, hwm)| {
            json!({
                "server": k.name(),
                "keys": a.rss_keys,
                "load_seconds": loaded.as_ref().ok().map(|d| d.as_secs_f64()),
                "load_error": loaded.as_ref().err(),
                "rss_kb": rss,
                "peak_rss_kb": hwm,
            })
        })
        .collect();
    let doc = json!({
        "config": {
            "requests": a.requests, "tests": a.tests, "keyspace": a.keyspace,
            "data_size": a.data_size, "clients": a.clients, "pipelines": a.pipelines,
            "pinned": a.pin(),
        },
        "runs": runs,
        "memory": mem,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
    );
    Ok(())
}
