//! dbbench: RocksDB db_bench's workloads on kv-engine (being built).
fn main() {
    eprintln!("dbbench is not built yet");
    std::process::exit(1);
}
