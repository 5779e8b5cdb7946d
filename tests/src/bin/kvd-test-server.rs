//! The kvd server, built as a binary of this package so that cargo always builds it
//! before the end-to-end tests run (a dependency's binaries are not built for tests).

fn main() {
    std::process::exit(kv_server::cli::main());
}
