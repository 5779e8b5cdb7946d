//! `kvtool cluster up` (a local cluster in the foreground, for trying kvd's ring) and
//! `kvtool cluster status` (nodes, state, placement, hints and repair of a running
//! cluster). Guide: docs/kvtool.md, "Clusters".

use crate::failure::Failure;
use clap::{Args, Subcommand};
use serde::Serialize;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Start a local cluster, or show the state of a running one.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  kvtool cluster up --nodes 3 --base-port 7001 --dir ./cluster   # Ctrl-C stops it\n  kvtool cluster status --addr 127.0.0.1:7001\n  kvtool cluster status --addr 127.0.0.1:7001 --json"
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
    Up(UpArgs),
    Status(StatusArgs),
}

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

/// Show every node of a running cluster: state, partitions, hints, repair.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Any node of the cluster, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub addr: String,
}

/// Runs `kvtool cluster ...`.
pub fn run(args: &ClusterArgs, json: bool) -> Result<i32, Failure> {
    match &args.command {
        ClusterCommand::Up(up) => run_up(up),
        ClusterCommand::Status(s) => run_status(s, json),
    }
}

fn kvd_binary(explicit: &Option<PathBuf>) -> PathBuf {
    if let Some(p) = explicit {
        return p.clone();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("kvd")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("kvd"))
}

/// The running nodes; stopped with SIGTERM (then SIGKILL after a grace period) on drop.
struct Nodes(Vec<Child>);

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &self.0 {
            // SAFETY: kill(2) on the pid of our own child.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for c in &mut self.0 {
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn run_up(args: &UpArgs) -> Result<i32, Failure> {
    if args.nodes == 0 || args.nodes > 16 {
        return Err(Failure::usage("--nodes must be from 1 to 16"));
    }
    if args.base_port as usize + args.nodes + 10000 > 65535 {
        return Err(Failure::usage(
            "--base-port too high for the bus ports (port + 10000)",
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    std::fs::create_dir_all(&args.dir)?;
    let kvd = kvd_binary(&args.kvd);
    let ports: Vec<u16> = (0..args.nodes as u16).map(|i| args.base_port + i).collect();
    let seeds: Vec<String> = ports
        .iter()
        .map(|p| format!("127.0.0.1:{}", p + 10000))
        .collect();
    let replicas = args.nodes.min(3);
    let quorum = replicas / 2 + 1;
    let mut nodes = Nodes(Vec::new());
    for (i, port) in ports.iter().enumerate() {
        let name = format!("n{}", i + 1);
        let log = std::fs::File::create(args.dir.join(format!("{name}.log")))?;
        let child = Command::new(&kvd)
            .args(["--port", &port.to_string()])
            .arg("--dir")
            .arg(args.dir.join(&name))
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-seeds", &seeds.join(",")])
            .args(["--cluster-bootstrap-expect", &args.nodes.to_string()])
            .args(["--cluster-replicas", &replicas.to_string()])
            .args(["--cluster-write-quorum", &quorum.to_string()])
            .args(["--cluster-read-quorum", &quorum.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0) // Ctrl-C reaches kvtool only; kvtool stops the nodes
            .spawn()
            .map_err(|e| Failure::new(format!("cannot start {}: {e}", kvd.display())))?;
        nodes.0.push(child);
    }
    println!(
        "starting {} nodes (N={replicas} W={quorum} R={quorum}), data and logs in {}",
        args.nodes,
        args.dir.display()
    );
    let first = format!("127.0.0.1:{}", ports[0]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(130);
        }
        if let Some(c) = nodes.0.iter_mut().find_map(|c| c.try_wait().ok().flatten()) {
            return Err(Failure::new(format!(
                "a node exited during start-up ({c}); see the logs in {}",
                args.dir.display()
            )));
        }
        let formed = ports.iter().all(|p| {
            query_info(&format!("127.0.0.1:{p}"))
                .is_ok_and(|info| field(&info, "cluster_state") == Some("ok"))
        });
        if formed {
            break;
        }
        if Instant::now() > deadline {
            return Err(Failure::new(format!(
                "the cluster did not form within 60 s; see the logs in {}",
                args.dir.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    print_table(&status_of(&first)?);
    println!(
        "\ncluster ready: redis-cli -p {} SET foo bar; redis-cli -p {} GET foo",
        ports[0],
        ports[ports.len() - 1]
    );
    println!("Ctrl-C stops every node cleanly.");
    while !stop.load(Ordering::Relaxed) {
        if let Some(c) = nodes.0.iter_mut().find_map(|c| c.try_wait().ok().flatten()) {
            println!("a node exited ({c}); stopping the others");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(nodes);
    println!("stopped");
    Ok(0)
}

/// One node in `kvtool cluster status`.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    /// Node id.
    pub id: String,
    /// Client address.
    pub addr: String,
    /// up, suspect or down as the asked node sees it.
    pub state: String,
    /// Slot ranges of the partitions it is first in preference for.
    pub first_slots: String,
    /// Hints it holds for others (unknown if it does not answer).
    pub hints_pending: Option<u64>,
    /// Anti-entropy rounds it ran.
    pub anti_entropy_rounds: Option<u64>,
    /// Keys anti-entropy repaired on it.
    pub keys_repaired: Option<u64>,
    /// Layout version it holds.
    pub layout_version: Option<u64>,
}

fn run_status(args: &StatusArgs, json: bool) -> Result<i32, Failure> {
    let nodes = status_of(&args.addr)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&nodes).map_err(|e| Failure::new(e.to_string()))?
        );
    } else {
        print_table(&nodes);
    }
    Ok(if nodes.iter().all(|n| n.state == "up") {
        0
    } else {
        1
    })
}

fn connect(addr: &str) -> Result<redis::Connection, Failure> {
    let client = redis::Client::open(format!("redis://{addr}/"))
        .map_err(|e| Failure::new(format!("{addr}: {e}")))?;
    let conn = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .map_err(|e| Failure::new(format!("cannot reach {addr}: {e}")))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| Failure::new(e.to_string()))?;
    Ok(conn)
}

fn query_info(addr: &str) -> Result<String, Failure> {
    let mut conn = connect(addr)?;
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query(&mut conn)
        .map_err(|e| Failure::new(format!("{addr}: {e}")))
}

fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
}

/// Every node as `addr` sees it, with each node's own counters where it answers.
pub fn status_of(addr: &str) -> Result<Vec<NodeStatus>, Failure> {
    let mut conn = connect(addr)?;
    let text: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut conn)
        .map_err(|e| Failure::new(format!("{addr}: {e}")))?;
    let mut out = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.len() < 8 {
            continue;
        }
        let node_addr = words[1].split('@').next().unwrap_or("").to_string();
        let flags = words[2];
        let state = if flags.contains("fail?") {
            "suspect"
        } else if flags.contains("fail") {
            "down"
        } else {
            "up"
        };
        let info = query_info(&node_addr).ok();
        let num = |name: &str| {
            info.as_deref()
                .and_then(|i| field(i, name))
                .and_then(|v| v.parse().ok())
        };
        out.push(NodeStatus {
            id: words[0].trim_start_matches('0').to_string(),
            addr: node_addr,
            state: state.to_string(),
            first_slots: words[8..].join(" "),
            hints_pending: num("kvd_hints_pending"),
            anti_entropy_rounds: num("kvd_anti_entropy_rounds"),
            keys_repaired: num("kvd_anti_entropy_keys_repaired"),
            layout_version: num("kvd_layout_version"),
        });
    }
    Ok(out)
}

fn print_table(nodes: &[NodeStatus]) {
    let opt = |v: Option<u64>| v.map_or_else(|| "?".to_string(), |n| n.to_string());
    println!(
        "{:<18} {:<21} {:<8} {:>6} {:>6} {:>9} {:>8}  first slots",
        "node", "address", "state", "layout", "hints", "ae-rounds", "repaired"
    );
    for n in nodes {
        println!(
            "{:<18} {:<21} {:<8} {:>6} {:>6} {:>9} {:>8}  {}",
            n.id,
            n.addr,
            n.state,
            opt(n.layout_version),
            opt(n.hints_pending),
            opt(n.anti_entropy_rounds),
            opt(n.keys_repaired),
            n.first_slots
        );
    }
}

/// Where `kvtool cluster up` keeps node `i`'s data (1-based names).
pub fn node_dir(base: &Path, i: usize) -> PathBuf {
    base.join(format!("n{}", i + 1))
}
