//! `kvtool cluster up`: a local cluster in the foreground for trying kvd's ring; Ctrl-C
//! (or SIGTERM) stops every node cleanly.

use super::local::{kvd_binary, stop_flag, LocalCluster, LocalSpec};
use super::status::{print_table, status_of};
use crate::failure::{Failure, EXIT_INTERRUPTED};
use clap::Args;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How long the nodes get to meet and make the first layout.
pub const FORM_WITHIN: Duration = Duration::from_secs(60);

/// Start N kvd nodes on this machine as one cluster and keep them in the foreground
/// (Ctrl-C stops them cleanly).
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Nodes to start.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Client port of the first node; node i listens on base+i and its bus on base+i+10000.
    #[arg(long, default_value_t = 7001)]
    pub base_port: u16,
    /// Directory holding one data directory (n1, n2, ...) and one log per node.
    #[arg(long, default_value = "./cluster")]
    pub dir: PathBuf,
    /// The kvd binary [default: the kvd next to kvtool, else kvd on PATH].
    #[arg(long)]
    pub kvd: Option<PathBuf>,
}

/// Runs `kvtool cluster up`.
pub fn run_up(args: &UpArgs) -> Result<i32, Failure> {
    let spec = LocalSpec::new(
        kvd_binary(&args.kvd),
        args.dir.clone(),
        args.base_port,
        args.nodes,
    )?;
    let stop = stop_flag()?;
    let mut nodes = LocalCluster::start(spec.clone())?;
    println!(
        "starting {} nodes (N={} W={q} R={q}), data and logs in {}",
        spec.nodes,
        spec.replicas(),
        spec.dir.display(),
        q = spec.quorum(),
    );
    match nodes.wait_formed(&stop, FORM_WITHIN) {
        Err(f) if f.code == EXIT_INTERRUPTED => return Ok(EXIT_INTERRUPTED),
        other => other?,
    }
    print_table(&status_of(&spec.addr(0))?);
    println!(
        "\ncluster ready: redis-cli -p {} SET foo bar; redis-cli -p {} GET foo",
        spec.base_port,
        spec.base_port as usize + spec.nodes - 1
    );
    println!("Ctrl-C stops every node cleanly.");
    while !stop.load(Ordering::Relaxed) {
        if let Some((_, status)) = nodes.exited() {
            println!("a node exited ({status}); stopping the others");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(nodes);
    println!("stopped");
    Ok(0)
}
