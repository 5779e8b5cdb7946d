//! kvtool: see inside a kvd data directory, prove it healthy, reclaim space and take
//! backups, offline or through a running kvd. Guide: docs/kvtool.md.
//!
//! Every command stands on kv-engine's own readers (`wal::LogReader`, `sst::Table`,
//! `manifest::VersionSet`) and its `Db` API; none re-implements a format. The binary
//! (`main.rs`) only parses the command line and dispatches here.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod backup;
pub mod cli;
pub mod cluster;
pub mod cluster_dir;
pub mod compact;
pub mod datadir;
pub mod dump;
pub mod escape;
pub mod failure;
pub mod inspect;
pub mod load;
pub mod offline;
pub mod output;
pub mod progress;
pub mod resp;
pub mod verify;

use cli::{Cli, Command};
use failure::Failure;

/// Runs one parsed command line; `Ok` holds the exit status.
pub fn run(cli: &Cli) -> Result<i32, Failure> {
    match &cli.command {
        Command::Inspect(args) => inspect::run(args, cli.json),
        Command::Verify(args) => verify::run(args, cli.json),
        Command::Compact(args) => compact::run(args, cli.json),
        Command::Backup(args) => backup::run(args, cli.json),
        Command::Dump(args) => dump::run(args, cli.json),
        Command::Load(args) => load::run(args, cli.json),
        Command::Cluster(args) => cluster::run(args, cli.json),
    }
}
