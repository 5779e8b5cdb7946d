//! kvd: the Redis-compatible server binary. `kvd --help` lists every flag.

fn main() {
    std::process::exit(kv_server::cli::main());
}
