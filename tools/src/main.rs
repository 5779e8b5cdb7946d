//! kvtool: see inside a kvd data directory, prove it healthy, reclaim space and take
//! backups, offline or through a running kvd. Guide: docs/kvtool.md.
//!
//! Every command stands on kv-engine's own readers (`wal::LogReader`, `sst::Table`,
//! `manifest::VersionSet`) and its `Db` API; none re-implements a format.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod backup;
mod cli;
mod compact;
mod datadir;
mod escape;
mod failure;
mod inspect;
mod offline;
mod output;
mod progress;
mod resp;
mod verify;

use clap::Parser;
use cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Inspect(args) => inspect::run(args, cli.json),
        Command::Verify(args) => verify::run(args, cli.json),
        Command::Compact(args) => compact::run(args, cli.json),
        Command::Backup(args) => backup::run(args, cli.json),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(f) => {
            eprintln!("kvtool: {}", f.message);
            std::process::exit(f.code);
        }
    }
}
