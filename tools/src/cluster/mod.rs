//! `kvtool cluster up` (a local cluster in the foreground, for trying kvd's ring),
//! `kvtool cluster status` (nodes, state, placement, hints and repair of a running
//! cluster) and `kvtool cluster demo` (the README's walk-through, run and narrated).
//! Guide: docs/kvtool.md, "cluster up and cluster status" and "cluster demo".

pub mod client;
pub mod demo;
pub mod layout;
pub mod local;
pub mod status;
pub mod up;

use crate::failure::Failure;
use clap::{Args, Subcommand};

/// Start a local cluster, show the state of a running one, or watch one work.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  kvtool cluster up --nodes 3 --base-port 7001 --dir ./cluster   # Ctrl-C stops it\n  kvtool cluster status --addr 127.0.0.1:7001\n  kvtool cluster status --addr 127.0.0.1:7001 --json\n  kvtool cluster demo                                             # placement, quorums, hints, repair\n  kvtool cluster join --addr 127.0.0.1:7001 127.0.0.1:17004        # stage a node, print the plan\n  kvtool cluster apply --addr 127.0.0.1:7001 --version 2 --wait   # commit it, follow the data\n  kvtool cluster leave --addr 127.0.0.1:7001 <node-id>\n  kvtool cluster replace --addr 127.0.0.1:7001 <dead-id> <new-id>\n  kvtool cluster layout --addr 127.0.0.1:7001                      # layout, progress, staged changes"
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
    Join(layout::JoinArgs),
    Leave(layout::LeaveArgs),
    Replace(layout::ReplaceArgs),
    Plan(layout::AddrArgs),
    Apply(layout::ApplyArgs),
    Revert(layout::AddrArgs),
    Layout(layout::AddrArgs),
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
        ClusterCommand::Join(a) => layout::join(a),
        ClusterCommand::Leave(a) => layout::leave(a),
        ClusterCommand::Replace(a) => layout::replace(a),
        ClusterCommand::Plan(a) => layout::plan(a),
        ClusterCommand::Apply(a) => layout::apply(a),
        ClusterCommand::Revert(a) => layout::revert(a),
        ClusterCommand::Layout(a) => layout::show(a),
    }
}
