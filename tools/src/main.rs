//! kvtool: administration of kvd data directories (being built).
fn main() {
    eprintln!("kvtool is not built yet");
    std::process::exit(1);
}
