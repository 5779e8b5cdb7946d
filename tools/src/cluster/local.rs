//! A local cluster of kvd processes on this machine, as `kvtool cluster up` and
//! `kvtool cluster demo` start it: node i listens on base-port+i (bus on +10000), keeps
//! its data in `DIR/n<i>` and its log in `DIR/n<i>.log`. The nodes run in their own
//! process group, so Ctrl-C reaches kvtool only, and kvtool stops them: dropping a
//! [`LocalCluster`] stops every node it still runs (SIGTERM, then SIGKILL after a grace
//! period), whether kvtool ends by success, failure or signal.

use super::client::{field, query_info};
use crate::failure::Failure;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a node gets to stop cleanly after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// Between two probes of a condition kvtool waits for.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Which nodes to start, and where.
#[derive(Debug, Clone)]
pub struct LocalSpec {
    /// The kvd binary.
    pub kvd: PathBuf,
    /// Holds `n1`, `n2`, ... and their logs.
    pub dir: PathBuf,
    /// Client port of node 1.
    pub base_port: u16,
    /// Number of nodes.
    pub nodes: usize,
    /// More kvd flags, the same for every node.
    pub extra_args: Vec<String>,
}

impl LocalSpec {
    /// Checks the node count and that every bus port (port + 10000) exists.
    pub fn new(kvd: PathBuf, dir: PathBuf, base_port: u16, nodes: usize) -> Result<Self, Failure> {
        if nodes == 0 || nodes > 16 {
            return Err(Failure::usage("--nodes must be from 1 to 16"));
        }
        if base_port as usize + nodes + 10000 > 65535 {
            return Err(Failure::usage(
                "--base-port too high for the bus ports (port + 10000)",
            ));
        }
        Ok(LocalSpec {
            kvd,
            dir,
            base_port,
            nodes,
            extra_args: Vec::new(),
        })
    }

    /// N: three replicas, or every node when there are fewer.
    pub fn replicas(&self) -> usize {
        self.nodes.min(3)
    }

    /// W and R: a majority of the replicas.
    pub fn quorum(&self) -> usize {
        self.replicas() / 2 + 1
    }

    /// Client address of node `i` (0-based).
    pub fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.base_port as usize + i)
    }

    /// Name of node `i` (0-based) in messages and in its directory: `n1`, `n2`, ...
    pub fn name(i: usize) -> String {
        format!("n{}", i + 1)
    }

    /// Data directory of node `i`.
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(Self::name(i))
    }

    fn command(&self, i: usize) -> Command {
        let seeds: Vec<String> = (0..self.nodes)
            .map(|j| format!("127.0.0.1:{}", self.base_port as usize + j + 10000))
            .collect();
        let mut c = Command::new(&self.kvd);
        c.args(["--port", &(self.base_port as usize + i).to_string()])
            .arg("--dir")
            .arg(self.node_dir(i))
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-seeds", &seeds.join(",")])
            .args(["--cluster-bootstrap-expect", &self.nodes.to_string()])
            .args(["--cluster-replicas", &self.replicas().to_string()])
            .args(["--cluster-write-quorum", &self.quorum().to_string()])
            .args(["--cluster-read-quorum", &self.quorum().to_string()])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .process_group(0); // Ctrl-C reaches kvtool only; kvtool stops the nodes
        c
    }
}

/// The kvd binary: `explicit`, else the kvd next to kvtool, else kvd on PATH.
pub fn kvd_binary(explicit: &Option<PathBuf>) -> PathBuf {
    if let Some(p) = explicit {
        return p.clone();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("kvd")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("kvd"))
}

/// A flag set by SIGINT (Ctrl-C) or SIGTERM, for loops that must stop and clean up.
pub fn stop_flag() -> Result<Arc<AtomicBool>, Failure> {
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;
    Ok(stop)
}

/// Probes `probe` every 100 ms until it gives a value; fails when `stop` is set
/// ([`Failure::interrupted`]) or `within` has passed (saying it waited for `what`).
pub fn poll<T>(
    stop: &AtomicBool,
    within: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<Option<T>, Failure>,
) -> Result<T, Failure> {
    let deadline = Instant::now() + within;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(Failure::interrupted());
        }
        if let Some(v) = probe()? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(Failure::new(format!(
                "{what}: not within {} s",
                within.as_secs()
            )));
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// The running nodes (`None`: killed and not restarted).
pub struct LocalCluster {
    /// What was started.
    pub spec: LocalSpec,
    children: Vec<Option<Child>>,
}

impl LocalCluster {
    /// Starts every node of `spec`.
    pub fn start(spec: LocalSpec) -> Result<LocalCluster, Failure> {
        std::fs::create_dir_all(&spec.dir)?;
        let mut cluster = LocalCluster {
            children: Vec::new(),
            spec,
        };
        for i in 0..cluster.spec.nodes {
            let child = cluster.spawn(i, false)?;
            cluster.children.push(Some(child));
        }
        Ok(cluster)
    }

    fn spawn(&self, i: usize, append_log: bool) -> Result<Child, Failure> {
        let log_path = self.spec.dir.join(format!("{}.log", LocalSpec::name(i)));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(append_log)
            .write(true)
            .truncate(!append_log)
            .open(&log_path)
            .map_err(|e| Failure::new(format!("cannot open {}: {e}", log_path.display())))?;
        self.spec
            .command(i)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| Failure::new(format!("cannot start {}: {e}", self.spec.kvd.display())))
    }

    /// Waits until every running node reports `cluster_state:ok`; fails if a node exits,
    /// on Ctrl-C, or after `within`.
    pub fn wait_formed(&mut self, stop: &AtomicBool, within: Duration) -> Result<(), Failure> {
        let dir = self.spec.dir.clone();
        poll(
            stop,
            within,
            &format!("the cluster forming (logs in {})", dir.display()),
            || {
                if let Some((i, status)) = self.exited() {
                    return Err(Failure::new(format!(
                        "node {} exited during start-up ({status}); see {}",
                        LocalSpec::name(i),
                        dir.join(format!("{}.log", LocalSpec::name(i))).display()
                    )));
                }
                let formed = (0..self.spec.nodes)
                    .filter(|&i| self.children[i].is_some())
                    .all(|i| {
                        query_info(&self.spec.addr(i))
                            .is_ok_and(|info| field(&info, "cluster_state") == Some("ok"))
                    });
                Ok(formed.then_some(()))
            },
        )
    }

    /// A node that was running and has exited by itself, with its status.
    pub fn exited(&mut self) -> Option<(usize, ExitStatus)> {
        self.children.iter_mut().enumerate().find_map(|(i, c)| {
            c.as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
                .map(|s| (i, s))
        })
    }

    /// Process id of node `i`, if it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children.get(i)?.as_ref().map(Child::id)
    }

    /// `kill -9` node `i` and reap it: a crash, with no chance to flush or say goodbye.
    pub fn kill9(&mut self, i: usize) -> Result<(), Failure> {
        if let Some(mut child) = self.children.get_mut(i).and_then(Option::take) {
            child
                .kill()
                .map_err(|e| Failure::new(format!("kill -9 {}: {e}", child.id())))?;
            let _ = child.wait();
        }
        Ok(())
    }

    /// Freezes node `i` (SIGSTOP), as a long pause or a stalled machine would: its
    /// sockets stay open but it answers nothing until [`LocalCluster::resume`].
    pub fn pause(&self, i: usize) -> Result<(), Failure> {
        self.signal(i, libc::SIGSTOP)
    }

    /// Lets a paused node run again (SIGCONT).
    pub fn resume(&self, i: usize) -> Result<(), Failure> {
        self.signal(i, libc::SIGCONT)
    }

    fn signal(&self, i: usize, sig: i32) -> Result<(), Failure> {
        let pid = self
            .pid(i)
            .ok_or_else(|| Failure::new(format!("{} is not running", LocalSpec::name(i))))?;
        // SAFETY: kill(2) on the pid of our own child, which we have not reaped.
        if unsafe { libc::kill(pid as i32, sig) } != 0 {
            return Err(Failure::new(format!(
                "signal {sig} to {pid}: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    /// Starts node `i` again with the same command line (its log is appended to).
    pub fn restart(&mut self, i: usize) -> Result<(), Failure> {
        self.kill9(i)?;
        let child = self.spawn(i, true)?;
        self.children[i] = Some(child);
        Ok(())
    }
}

impl LocalCluster {
    /// Stops every running node: SIGTERM (kvd flushes, syncs and exits 0), then SIGKILL
    /// for a node still running after the grace period. Returns each node's exit status.
    pub fn stop_all(&mut self) -> Vec<(usize, Option<ExitStatus>)> {
        for c in self.children.iter().flatten() {
            // SAFETY: kill(2) on the pid of our own child. SIGCONT wakes a paused node
            // so that it can act on the SIGTERM.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
                libc::kill(c.id() as i32, libc::SIGCONT);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        let mut statuses = Vec::new();
        for (i, slot) in self.children.iter_mut().enumerate() {
            let Some(mut c) = slot.take() else {
                continue;
            };
            while matches!(c.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let exited = c.try_wait().ok().flatten();
            let _ = c.kill();
            let _ = c.wait();
            statuses.push((i, exited));
        }
        statuses
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}
