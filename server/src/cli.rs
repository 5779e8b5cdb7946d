//! Command-line entry of kvd: parse flags and config file, set up logging, run.

use crate::config::{Cli, Config};
use clap::Parser;
use std::sync::Arc;

fn init_logging(c: &Config) -> Result<(), String> {
    let level = match c.loglevel.as_str() {
        "debug" => "debug",
        "verbose" => "info",
        "notice" => "info",
        "warning" => "warn",
        _ => "error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    if c.logfile.is_empty() {
        builder.with_ansi(ansi).with_writer(std::io::stderr).init();
    } else {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&c.logfile)
            .map_err(|e| format!("cannot open logfile {}: {e}", c.logfile))?;
        builder.with_ansi(false).with_writer(Arc::new(f)).init();
    }
    Ok(())
}

/// Runs kvd with the process's arguments; returns the exit code.
pub fn main() -> i32 {
    let config = match Cli::parse()
        .into_config()
        .and_then(|c| crate::cluster_config::validate(&c).map(|()| c))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kvd: {e}");
            return 1;
        }
    };
    if let Err(e) = init_logging(&config) {
        eprintln!("kvd: {e}");
        return 1;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kvd-worker")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kvd: cannot start runtime: {e}");
            return 1;
        }
    };
    if let Err(e) = runtime.block_on(crate::server::run(config)) {
        tracing::error!("{e}");
        eprintln!("kvd: {e}");
        return 1;
    }
    0
}
