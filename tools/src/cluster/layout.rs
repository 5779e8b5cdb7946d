//! `kvtool cluster join | leave | replace | plan | apply | revert | layout`: layout
//! changes staged, reviewed and applied through any member (CLUSTER LAYOUT, docs/
//! cluster.md "Changing the layout"). join/leave/replace stage a change and print the
//! plan; apply needs the version the plan showed, so a reviewed plan never applies to a
//! layout that changed since.

use super::client::cluster_command;
use crate::failure::Failure;
use clap::Args;
use std::time::{Duration, Instant};

/// Stage adding a node (started with --cluster-seeds naming a member) and show the plan.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// Any member, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: String,
    /// The new node: its id (CLUSTER LAYOUT SHOW lists the candidates) or bus address.
    pub node: String,
    /// Its failure domain: replicas of a partition go to distinct zones.
    #[arg(long)]
    pub zone: Option<String>,
    /// Its relative share of the data.
    #[arg(long)]
    pub capacity: Option<u32>,
}

/// Stage removing a member (its partitions move to the others) and show the plan.
#[derive(Debug, Args)]
pub struct LeaveArgs {
    /// Any member, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: String,
    /// The member leaving: id or bus address.
    pub node: String,
}

/// Stage replacing a (dead) member by a new node that takes exactly its partitions.
#[derive(Debug, Args)]
pub struct ReplaceArgs {
    /// Any live member, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: String,
    /// The member replaced: id or bus address.
    pub node: String,
    /// The new node: id or bus address.
    pub with: String,
}

/// Show the layout, the change under way, staged changes and candidate nodes; or the
/// plan of the staged changes; or drop them.
#[derive(Debug, Args)]
pub struct AddrArgs {
    /// Any member, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: String,
}

/// Apply the staged changes as layout VERSION (the one `plan` showed).
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Any member, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: String,
    /// The version `kvtool cluster plan` showed.
    #[arg(long)]
    pub version: u64,
    /// Wait until the data moved and the change ended, printing progress.
    #[arg(long)]
    pub wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout_secs: u64,
}

fn layout(addr: &str, args: &[&str]) -> Result<String, Failure> {
    cluster_command(addr, "LAYOUT", args)
}

/// `join`: ASSIGN, then the plan.
pub fn join(a: &JoinArgs) -> Result<i32, Failure> {
    let capacity = a.capacity.map(|c| c.to_string());
    let mut args = vec!["ASSIGN", a.node.as_str()];
    if let Some(zone) = &a.zone {
        args.extend(["ZONE", zone.as_str()]);
    }
    if let Some(c) = &capacity {
        args.extend(["CAPACITY", c.as_str()]);
    }
    stage_then_plan(&a.addr, &args)
}

/// `leave`: REMOVE, then the plan.
pub fn leave(a: &LeaveArgs) -> Result<i32, Failure> {
    stage_then_plan(&a.addr, &["REMOVE", a.node.as_str()])
}

/// `replace`: REPLACE, then the plan.
pub fn replace(a: &ReplaceArgs) -> Result<i32, Failure> {
    stage_then_plan(&a.addr, &["REPLACE", a.node.as_str(), a.with.as_str()])
}

fn stage_then_plan(addr: &str, args: &[&str]) -> Result<i32, Failure> {
    print!("{}", layout(addr, args)?);
    plan(&AddrArgs {
        addr: addr.to_string(),
    })
}

/// `plan`: what the staged changes would do.
pub fn plan(a: &AddrArgs) -> Result<i32, Failure> {
    print!("{}", layout(&a.addr, &["PLAN"])?);
    Ok(0)
}

/// `layout`: CLUSTER LAYOUT SHOW.
pub fn show(a: &AddrArgs) -> Result<i32, Failure> {
    print!("{}", layout(&a.addr, &["SHOW"])?);
    Ok(0)
}

/// `revert`: drop the staged changes.
pub fn revert(a: &AddrArgs) -> Result<i32, Failure> {
    print!("{}", layout(&a.addr, &["REVERT"])?);
    Ok(0)
}

/// `apply`: commit, and with --wait follow the change to its end.
pub fn apply(a: &ApplyArgs) -> Result<i32, Failure> {
    let version = a.version.to_string();
    let applied = layout(&a.addr, &["APPLY", version.as_str()])?;
    print!("{applied}");
    if !a.wait || applied.contains("transition:none") {
        return Ok(0);
    }
    let deadline = Instant::now() + Duration::from_secs(a.timeout_secs);
    let mut last = String::new();
    loop {
        // A node may restart or be busy while data moves: retry until the deadline.
        if let Ok(shown) = layout(&a.addr, &["SHOW"]) {
            let ended = field(&shown, "transition") == Some("none")
                && field(&shown, "layout_version")
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|v| v > a.version);
            let progress: Vec<&str> = shown
                .lines()
                .filter(|l| l.starts_with("node:") || l.starts_with("transition"))
                .collect();
            let now = progress.join("\n");
            if now != last {
                println!("{now}");
                last = now;
            }
            if ended {
                println!("layout change ended");
                return Ok(0);
            }
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(format!(
                "the layout change did not end within {} s",
                a.timeout_secs
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}
