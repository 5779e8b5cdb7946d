//! `kvtool cluster demo`: the README's 3-node walk-through, run by itself on a local
//! cluster and narrated step by step (placement, quorums, a crash, hints, catching up,
//! read repair, anti-entropy), for people who want to watch a Dynamo-style store work.
//! Every figure it prints is read from the cluster; it exits 1 when a step does not
//! show what it should, 130 on Ctrl-C, and stops its nodes in every case.
//! Guide: docs/kvtool.md, "cluster demo".

mod narrator;
mod ops;
mod steps;

pub use steps::STEPS;

use super::local::{kvd_binary, stop_flag, LocalSpec};
use crate::failure::{Failure, EXIT_INTERRUPTED};
use clap::Args;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// Anti-entropy runs when the demo asks (CLUSTER REPAIR), not on the node's schedule,
/// so what each step shows is caused by that step. Database 0 is eventual here: the
/// demo shows Dynamo-style replication (quorums, hints, read repair, anti-entropy), and
/// its steps rely on a write missing a paused replica. Under consensus (the default
/// kind of database) a write's accept queued for a paused node still lands when it
/// resumes, leaving nothing for read repair and anti-entropy to show
/// (docs/consistency.md).
const DEMO_FLAGS: &[&str] = &[
    "--cluster-anti-entropy-interval-ms",
    "3600000",
    "--cluster-eventual-databases",
    "0",
];

/// Run the 3-node walk-through on a local cluster and narrate what each step shows.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  kvtool cluster demo\n  kvtool cluster demo --base-port 7101 --dir ./demo --keep   # keep data and logs to inspect\n\nExit status: 0 when every step showed what it should, 1 when one did not (the message\nnames it), 130 on Ctrl-C. The nodes are stopped in every case."
)]
pub struct DemoArgs {
    /// Client port of node 1; node i listens on base+i-1 and its bus on that + 10000.
    #[arg(long, default_value_t = 7001)]
    pub base_port: u16,
    /// Where the nodes keep their data and logs; must not exist or be empty
    /// [default: a new directory under the system's temporary directory].
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the data directories and logs afterwards (kvtool inspect and dump read them).
    #[arg(long)]
    pub keep: bool,
    /// The kvd binary [default: the kvd next to kvtool, else kvd on PATH].
    #[arg(long)]
    pub kvd: Option<PathBuf>,
}

/// Runs `kvtool cluster demo`.
pub fn run(args: &DemoArgs) -> Result<i32, Failure> {
    let dir = match &args.dir {
        Some(d) => {
            if std::fs::read_dir(d).is_ok_and(|mut e| e.next().is_some()) {
                return Err(Failure::usage(format!(
                    "--dir {}: not empty; the demo starts from empty nodes and removes its directory afterwards",
                    d.display()
                )));
            }
            d.clone()
        }
        None => std::env::temp_dir().join(format!("kvtool-demo-{}", std::process::id())),
    };
    let mut spec = LocalSpec::new(kvd_binary(&args.kvd), dir.clone(), args.base_port, 3)?;
    spec.extra_args = DEMO_FLAGS.iter().map(|s| s.to_string()).collect();
    let stop = stop_flag()?;
    println!(
        "kvtool cluster demo: a Dynamo-style ring of 3 kvd nodes on this machine, step by step.\n\
         Data and logs: {}",
        dir.display()
    );
    let result = steps::Demo::start(spec, &stop).and_then(|mut demo| {
        demo.run_all()?;
        demo.stop_cleanly()
    });
    // The nodes are stopped by now: `Demo` stops them when dropped, on every path.
    match result {
        Ok(()) => {
            println!(
                "demo complete: all {} steps showed what they should",
                STEPS.len()
            );
            finish(&dir, args.keep);
            Ok(0)
        }
        // Whatever failed once Ctrl-C was pressed failed because of it: a request the
        // signal broke off ("Interrupted system call") is the interruption, not a
        // failed step (seen under load in tools/tests/cluster_demo.rs).
        Err(f) if f.code == EXIT_INTERRUPTED || stop.load(Ordering::Relaxed) => {
            println!("\ninterrupted: nodes stopped");
            finish(&dir, args.keep);
            Ok(EXIT_INTERRUPTED)
        }
        Err(f) => {
            eprintln!(
                "nodes stopped; data and logs kept in {} for a look",
                dir.display()
            );
            Err(f)
        }
    }
}

/// Removes the demo's directory unless asked to keep it.
fn finish(dir: &Path, keep: bool) {
    if keep {
        println!(
            "kept {}: try `kvtool inspect {}/n1 --exact` or `kvtool dump {}/n3`",
            dir.display(),
            dir.display(),
            dir.display()
        );
    } else if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("kvtool: cannot remove {}: {e}", dir.display());
    }
}
