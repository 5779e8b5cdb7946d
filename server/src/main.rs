//! kvd: the Redis-compatible server binary. `kvd --help` lists every flag.

use clap::Parser;
use kv_server::config::{Cli, Config};
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
    if c.logfile.is_empty() {
        builder.with_writer(std::io::stderr).init();
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

fn main() {
    let config = match Cli::parse().into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kvd: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = init_logging(&config) {
        eprintln!("kvd: {e}");
        std::process::exit(1);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kvd-worker")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("kvd: cannot start runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(kv_server::server::run(config)) {
        tracing::error!("{e}");
        eprintln!("kvd: {e}");
        std::process::exit(1);
    }
}
