//! The `kvtool` binary: parse the command line, run it, exit with its status.
use clap::Parser;

fn main() {
    let cli = kvtool::cli::Cli::parse();
    match kvtool::run(&cli) {
        Ok(code) => std::process::exit(code),
        Err(f) => {
            eprintln!("kvtool: {}", f.message);
            std::process::exit(f.code);
        }
    }
}
