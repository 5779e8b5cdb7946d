//! `kvtool cluster up` (a local cluster in the foreground, for trying kvd's ring),
//! `kvtool cluster status` (nodes, state, placement, hints and repair of a running
//! cluster) and `kvtool cluster demo` (the README's walk-through, run and narrated).
//! Guide: docs/kvtool.md, "cluster up and cluster status" and "cluster demo".

pub mod client;
pub mod demo;
pub mod local;
pub mod status;
pub mod up;

use crate::failure::Failure;
use clap::{Args, Subcommand};

/// Start a local cluster, show the state of a running one, or watch one work.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  kvtool cluster up --nodes 3 --base-port 7001 --dir ./cluster   # Ctrl-C stops it\n  kvtool cluster status --addr 127.0.0.1:7001\n  kvtool cluster status --addr 127.0.0.1:7001 --json\n  kvtool cluster demo                                             # placement, quorums, hints, repair"
)]
pub struct ClusterArgs {
    #[allow(missing_docs)] // clap prints doc comments as help text
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// The cluster subcommands.
#[derive(Debug, Subcommand)]
#[allow(missing_docs)] // each variant's help is its Args struct's doc comment
pub enum ClusterCommand {
    Up(up::UpArgs),
    Status(status::StatusArgs),
    Demo(demo::DemoArgs),
}

/// Runs `kvtool cluster ...`.
pub fn run(args: &ClusterArgs, json: bool) -> Result<i32, Failure> {
    match &args.command {
        ClusterCommand::Up(a) => up::run_up(a),
        ClusterCommand::Status(a) => status::run_status(a, json),
        ClusterCommand::Demo(_) if json => Err(Failure::usage(
            "--json: the demo narrates for people; it has no JSON output",
        )),
        ClusterCommand::Demo(a) => demo::run(a),
    }
}
