//! dbbench: RocksDB db_bench's workloads, flags and output lines on kv-engine.
//! `dbbench --benchmarks=fillrandom,readrandom --num=1000000`; see docs/performance.md.

fn main() {
    let parsed = match kv_benches::dbbench::flags::parse(std::env::args().skip(1)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("dbbench: {e}");
            std::process::exit(1);
        }
    };
    for w in &parsed.warnings {
        eprintln!("{w}");
    }
    let mut out = std::io::stdout();
    if let Err(e) = kv_benches::dbbench::run(&parsed.flags, &mut out) {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
