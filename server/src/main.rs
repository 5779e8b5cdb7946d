//! kvd: the Redis-compatible server (being built; see issue "kvd: a Redis-compatible server").
fn main() {
    eprintln!("kvd is not built yet");
    std::process::exit(1);
}
