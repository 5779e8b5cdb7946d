//! A cluster of real kvd processes, each in its own network namespace, so that a test can
//! cut a node off the network with iptables and heal it again (issue 8's partition tests).
//!
//! Topology of one [`NetCluster`] (namespace names carry the test process's pid and a
//! per-process counter, so concurrent runs and concurrent tests never collide):
//!
//! ```text
//! root namespace       kh<tag> 10.213.Y.254/24 (the test's clients connect from here)
//!     | veth
//! <prefix>-sw          bridge br0 with ports uplink, p1 .. pn (no address, no firewall)
//!     | veth pI <-> eth0
//! <prefix>-nI          eth0 10.213.Y.I/24, lo; kvd on 10.213.Y.I:6379, bus :16379
//! ```
//!
//! The bridge lives in a namespace of its own rather than in the root namespace: hosts
//! that run Docker set `bridge-nf-call-iptables=1` with a root FORWARD policy of DROP,
//! which silently drops bridged node-to-node traffic. A fresh namespace has an empty
//! firewall, so the harness never has to touch the host's rules.
//!
//! [`NetCluster::partition`] adds DROP rules in the node's own namespace, on INPUT from
//! and OUTPUT to every other node's address, for TCP (the gRPC bus) and UDP (gossip).
//! Traffic with the root namespace (10.213.Y.254) is left alone on purpose: the test can
//! still write through the cut-off node and read its CLUSTER INFO, which is how a client
//! on the minority side of a real partition sees it. [`NetCluster::cut`] drops the traffic
//! of one pair of nodes only (the nemesis combines cuts into partitions and bridges).
//! [`NetCluster::heal`] flushes those chains (the namespace's firewall belongs to the
//! harness alone; at start it also holds ACCEPT rules that count gossip packets, see
//! `wait_formed`).
//!
//! A node's process can be killed with -9 ([`NetNode::kill9`]), stopped cleanly
//! ([`NetNode::stop`]), started again on its data with extra flags for one run
//! ([`NetNode::restart`]), frozen with SIGSTOP and resumed ([`NetNode::pause`],
//! [`NetNode::resume`]): the nemesis's process faults (`nemesis.rs`).
//!
//! Everything (processes, namespaces, veths, bridge) is removed in `Drop`, which also runs
//! when a test panics; namespaces left behind by a test process that was killed are
//! removed by the next start.

use crate::cluster::{cluster_info_at, merkle_roots_at};
use crate::kvd_binary;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The client port of every node (each node has an address of its own).
pub const CLIENT_PORT: u16 = 6379;
/// The bus port of every node.
pub const BUS_PORT: u16 = 16379;
/// The cluster secret (required because the bus is not on loopback).
pub const SECRET: &str = "s3cret";
/// How long a node gets to answer PING, and a cluster to report `cluster_state:ok`.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(120);

/// Namespace names start with this, then `-<pid>-<counter>`.
const NS_PREFIX: &str = "kvpt";
/// First two octets of every harness's /24.
const NET: &str = "10.213";

/// Harnesses made by this process so far (part of their names).
static NEXT_HARNESS: AtomicU32 = AtomicU32::new(0);

/// One kvd process inside its namespace.
pub struct NetNode {
    /// Its network namespace.
    pub ns: String,
    /// Its address (client port and bus).
    pub ip: String,
    log: PathBuf,
    /// kvd's arguments (a restart reuses them, data directory included).
    args: Vec<String>,
    child: Option<Child>,
}

impl NetNode {
    /// `redis://ip:6379/`.
    pub fn url(&self) -> String {
        format!("redis://{}:{CLIENT_PORT}/", self.ip)
    }

    /// A RESP2 client connected from the root namespace (30 s read timeout, far above the
    /// cluster's 2 s request timeout).
    pub fn client(&self) -> redis::Connection {
        let c = redis::Client::open(self.url()).expect("client");
        let conn = c
            .get_connection_with_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("connect to {}: {e}\nlog:\n{}", self.ip, self.log_text()));
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        conn
    }

    /// One field of this node's CLUSTER INFO (`None` if it does not answer).
    pub fn info(&self, field: &str) -> Option<String> {
        cluster_info_at(&self.url(), field)
    }

    /// One numeric field of CLUSTER INFO (`None` if it does not answer).
    pub fn info_u64(&self, field: &str) -> Option<u64> {
        self.info(field).and_then(|v| v.parse().ok())
    }

    /// This node's Merkle roots (CLUSTER MERKLE).
    pub fn merkle_roots(&self) -> Option<Vec<String>> {
        merkle_roots_at(&self.url())
    }

    /// The node's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Process id (of kvd itself: `ip netns exec` execs it in place).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the process with SIGKILL (a crash: no clean stop, also when it is paused)
    /// and waits for it to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the process cleanly (SIGTERM; kvd lowers its clock floor and marks the stop
    /// clean) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), libc::SIGTERM);
            crate::wait_bounded(&mut c, Duration::from_secs(30));
        }
    }

    /// Starts kvd again in its namespace on the same data directory, with `extra` flags
    /// after the ones it started with (for this run only), and waits until it answers
    /// PING. Stops nothing: call [`NetNode::kill9`] or [`NetNode::stop`] first.
    pub fn restart(&mut self, extra: &[&str]) {
        assert!(self.child.is_none(), "kvd in {} is still running", self.ns);
        self.spawn(extra);
        wait_ready(self);
    }

    /// Freezes the process (SIGSTOP): it holds its connections and answers nothing, as a
    /// process in a long GC pause or a VM that was suspended.
    pub fn pause(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, libc::SIGSTOP);
        }
    }

    /// Lets a paused process run again (SIGCONT).
    pub fn resume(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, libc::SIGCONT);
        }
    }

    /// Starts kvd with its arguments and `extra`, its output appended to its log.
    fn spawn(&mut self, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .arg(kvd_binary())
            .args(&self.args)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn ip netns exec kvd");
        self.child = Some(child);
    }
}

/// Sends `sig` to `pid`.
fn signal(pid: u32, sig: i32) {
    // SAFETY: kill(2) with a valid signal number, on a kvd process this harness started.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Nodes of one cluster, one network namespace each, joined by a bridge.
pub struct NetCluster {
    /// The nodes, in start order (node `i` has address `10.213.Y.(i+1)`).
    pub nodes: Vec<NetNode>,
    /// Namespaces created so far, deleted in reverse order on drop.
    namespaces: Vec<String>,
    /// The root namespace's end of the uplink veth, if created.
    uplink: Option<String>,
    /// `10.213.Y`.
    subnet: String,
    /// `kvpt-<pid>-<counter>`.
    prefix: String,
    tmp: tempfile::TempDir,
}

impl NetCluster {
    /// Starts `n` nodes like [`NetCluster::start`], or prints a loud `SKIPPED: <reason>`
    /// line and returns `None` when this machine cannot run namespace tests.
    pub fn start_or_skip(n: usize, extra: &[&str]) -> Option<NetCluster> {
        if let Some(reason) = unavailable() {
            // Straight to the stderr handle: libtest captures eprintln! of passing tests,
            // and a skip must never look like a silent pass.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: network-namespace partition test: {reason}"
            );
            return None;
        }
        Some(NetCluster::start(n, extra))
    }

    /// Builds the network and starts `n` nodes that bootstrap one cluster (N = min(3, n),
    /// W and R quorums of it, anti-entropy every second) with `extra` flags on every node;
    /// waits until every node reports `cluster_state:ok` and gossip has settled. Panics if
    /// the machine cannot do it (see [`unavailable`]).
    pub fn start(n: usize, extra: &[&str]) -> NetCluster {
        assert!((1..=250).contains(&n), "1 to 250 nodes");
        remove_stale_namespaces();
        let seq = NEXT_HARNESS.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let mut c = NetCluster {
            nodes: Vec::new(),
            namespaces: Vec::new(),
            uplink: None,
            subnet: free_subnet(pid, seq),
            prefix: format!("{NS_PREFIX}-{pid}-{seq}"),
            tmp: tempfile::tempdir().expect("tempdir"),
        };
        // Every step registers what it created before the next one can fail, so that
        // Drop removes exactly what exists.
        c.build_network(n, &format!("{pid:x}x{seq:x}"));
        c.spawn_nodes(n, extra);
        c.wait_formed();
        c
    }

    fn build_network(&mut self, n: usize, tag: &str) {
        let sw = format!("{}-sw", self.prefix);
        must(&["ip", "netns", "add", &sw]);
        self.namespaces.push(sw.clone());
        must(&["ip", "-n", &sw, "link", "set", "dev", "lo", "up"]);
        must(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"]);
        must(&["ip", "-n", &sw, "link", "set", "dev", "br0", "up"]);
        let uplink = format!("kh{tag}");
        must(&[
            "ip", "link", "add", &uplink, "type", "veth", "peer", "name", "uplink", "netns", &sw,
        ]);
        self.uplink = Some(uplink.clone());
        must(&[
            "ip", "-n", &sw, "link", "set", "dev", "uplink", "master", "br0", "up",
        ]);
        let root_addr = format!("{}.254/24", self.subnet);
        must(&["ip", "addr", "add", &root_addr, "dev", &uplink]);
        must(&["ip", "link", "set", "dev", &uplink, "up"]);
        for i in 1..=n {
            let ns = format!("{}-n{i}", self.prefix);
            must(&["ip", "netns", "add", &ns]);
            self.namespaces.push(ns.clone());
            must(&["ip", "-n", &ns, "link", "set", "dev", "lo", "up"]);
            let port = format!("p{i}");
            must(&[
                "ip", "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                "netns", &ns,
            ]);
            must(&[
                "ip", "-n", &sw, "link", "set", "dev", &port, "master", "br0", "up",
            ]);
            let addr = format!("{}.{i}/24", self.subnet);
            must(&["ip", "-n", &ns, "addr", "add", &addr, "dev", "eth0"]);
            must(&["ip", "-n", &ns, "link", "set", "dev", "eth0", "up"]);
        }
        // Counting rules (ACCEPT under an ACCEPT policy changes nothing): how many gossip
        // packets each node received from each peer, see `wait_gossip_settled`.
        for i in 1..=n {
            let ns = format!("{}-n{i}", self.prefix);
            for j in (1..=n).filter(|&j| j != i) {
                let peer = format!("{}.{j}", self.subnet);
                must(&[
                    "ip",
                    "netns",
                    "exec",
                    &ns,
                    "iptables",
                    "-w",
                    "-A",
                    "INPUT",
                    "-p",
                    "udp",
                    "-s",
                    &peer,
                    "--sport",
                    &BUS_PORT.to_string(),
                    "-j",
                    "ACCEPT",
                ]);
            }
        }
    }

    fn spawn_nodes(&mut self, n: usize, extra: &[&str]) {
        let seeds: Vec<String> = (1..=n)
            .map(|i| format!("{}.{i}:{BUS_PORT}", self.subnet))
            .collect();
        let seeds = seeds.join(",");
        let replicas = n.min(3).to_string();
        let quorum = (n.min(3) / 2 + 1).to_string();
        for i in 1..=n {
            let ip = format!("{}.{i}", self.subnet);
            let home = self.tmp.path().join(format!("n{i}"));
            std::fs::create_dir_all(&home).expect("node dir");
            let dir = home.join("data").to_string_lossy().into_owned();
            let mut args: Vec<String> = vec!["--port".into(), CLIENT_PORT.to_string()];
            args.extend(["--dir".into(), dir]);
            args.extend(["--bind".into(), ip.clone()]);
            let flags = [
                // The clients come from the bridge's subnet without a password; the
                // namespaces are reachable from this machine only.
                ("--protected-mode", "no"),
                ("--cluster-enabled", "yes"),
                ("--cluster-port", &BUS_PORT.to_string()),
                ("--cluster-seeds", &seeds),
                ("--cluster-secret", SECRET),
                ("--cluster-announce-ip", &ip),
                ("--cluster-anti-entropy-interval-ms", "1000"),
                ("--cluster-replicas", &replicas),
                ("--cluster-write-quorum", &quorum),
                ("--cluster-read-quorum", &quorum),
            ];
            for (flag, value) in flags {
                args.extend([flag.to_string(), value.to_string()]);
            }
            args.extend(extra.iter().map(|a| a.to_string()));
            let mut node = NetNode {
                ns: format!("{}-n{i}", self.prefix),
                ip: ip.clone(),
                log: home.join("kvd.log"),
                args,
                child: None,
            };
            node.spawn(&[]);
            self.nodes.push(node);
        }
        for node in &mut self.nodes {
            wait_ready(node);
        }
    }

    /// Waits until every node reports `cluster_state:ok` and received gossip from every
    /// peer, and checks that the fast anti-entropy setting took effect (the convergence
    /// checks rely on it). Only at start: `heal` removes the counting rules it reads.
    ///
    /// Gossip having settled matters: kvd treats a peer its failure detector never saw
    /// up as suspect rather than down (it may still be starting), and keeps sending to
    /// suspect peers. A partition made before gossip settled leaves the cut-off peers
    /// suspect forever, and the minority side answers TIMEOUT, never CLUSTERDOWN.
    /// CLUSTER INFO cannot tell (a peer gossip does not know yet counts as up), so
    /// `wait_gossip_settled` counts the gossip packets each node received instead.
    fn wait_formed(&self) {
        for (i, node) in self.nodes.iter().enumerate() {
            poll_until(
                &format!("node {} reports cluster_state:ok", i + 1),
                FORM_TIMEOUT,
                || node.info("cluster_state").as_deref() == Some("ok"),
                || node.log_text(),
            );
            self.wait_gossip_settled(i);
            let mut conn = node.client();
            let got: Vec<String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg("cluster-anti-entropy-interval-ms")
                .query(&mut conn)
                .expect("CONFIG GET");
            assert_eq!(
                got.get(1).map(String::as_str),
                Some("1000"),
                "--cluster-anti-entropy-interval-ms was not applied"
            );
        }
    }

    /// Waits until node `i` (0-based) received many gossip packets from every peer
    /// (counted by the harness's ACCEPT rules): several gossip rounds, far more than
    /// chitchat needs to mark a peer live and kvd's refreshers (500 ms, then 250 ms) to
    /// publish it.
    fn wait_gossip_settled(&self, i: usize) {
        const PACKETS: u64 = 20;
        for (j, peer) in self.nodes.iter().enumerate().filter(|(j, _)| *j != i) {
            poll_until(
                &format!(
                    "node {} received {PACKETS} gossip packets from node {}",
                    i + 1,
                    j + 1
                ),
                FORM_TIMEOUT,
                || self.gossip_packets(i, &peer.ip) >= PACKETS,
                || self.logs(),
            );
        }
    }

    /// UDP packets from `peer`'s bus port that node `i`'s counting rule has seen.
    fn gossip_packets(&self, i: usize, peer: &str) -> u64 {
        let listing = output_of(&[
            "ip",
            "netns",
            "exec",
            &self.nodes[i].ns,
            "iptables",
            "-w",
            "-L",
            "INPUT",
            "-v",
            "-x",
            "-n",
        ]);
        listing
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.len() > 7 && f[2] == "ACCEPT" && f[7] == peer)
            .and_then(|f| f[0].parse().ok())
            .unwrap_or(0)
    }

    /// Cuts node `i` (0-based) off from every other node: DROP on INPUT from and OUTPUT
    /// to their addresses, TCP and UDP, in node `i`'s namespace. The root namespace keeps
    /// reaching it.
    pub fn partition(&self, i: usize) {
        // The counting rules would accept gossip before the DROP rules see it.
        self.heal(i);
        for (j, other) in self.nodes.iter().enumerate() {
            if j != i {
                drop_traffic(&self.nodes[i].ns, &other.ip);
            }
        }
    }

    /// Cuts the link between nodes `a` and `b` (0-based) both ways, leaving every other
    /// link alone: DROP rules in each one's namespace against the other's address. Links
    /// cut this way combine into any partition, a bridge included (`nemesis.rs`). Call
    /// [`NetCluster::heal_all`] first once: it removes the counting rules of the start,
    /// which would accept gossip before the DROP rules see it.
    pub fn cut(&self, a: usize, b: usize) {
        drop_traffic(&self.nodes[a].ns, &self.nodes[b].ip);
        drop_traffic(&self.nodes[b].ns, &self.nodes[a].ip);
    }

    /// Removes every node's partition rules: the network is whole again.
    pub fn heal_all(&self) {
        for i in 0..self.nodes.len() {
            self.heal(i);
        }
    }

    /// Removes node `i`'s partition rules.
    pub fn heal(&self, i: usize) {
        let ns = &self.nodes[i].ns;
        for chain in ["INPUT", "OUTPUT"] {
            must(&["ip", "netns", "exec", ns, "iptables", "-w", "-F", chain]);
        }
    }

    /// Waits until every node sees every node up (after a heal: the failure detectors
    /// noticed, so coordinators ask the healed node again).
    pub fn wait_all_up(&self) {
        let all = self.nodes.len().to_string();
        for (i, node) in self.nodes.iter().enumerate() {
            poll_until(
                &format!("node {} sees all {all} nodes up", i + 1),
                FORM_TIMEOUT,
                || node.info("kvd_nodes_up").as_deref() == Some(all.as_str()),
                || self.logs(),
            );
        }
    }

    /// True once every node answers CLUSTER MERKLE with the same roots.
    pub fn merkle_roots_agree(&self) -> bool {
        let roots: Vec<_> = self.nodes.iter().map(NetNode::merkle_roots).collect();
        roots[0].is_some() && roots.iter().all(|r| r == &roots[0])
    }

    /// Every node's liveness view and log, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let view: Vec<String> = ["kvd_nodes_up", "kvd_nodes_suspect", "kvd_nodes_down"]
                    .iter()
                    .chain(["kvd_hints_pending", "kvd_anti_entropy_rounds"].iter())
                    .map(|f| format!("{f}={}", n.info(f).unwrap_or_else(|| "?".into())))
                    .collect();
                format!(
                    "---- node {} ({}): {}; log:\n{}",
                    i + 1,
                    n.ip,
                    view.join(" "),
                    n.log_text()
                )
            })
            .collect()
    }
}

impl Drop for NetCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill9();
        }
        // Deleting a namespace destroys the veth ends in it and so their peers; the
        // uplink is deleted explicitly in case its peer never reached the switch.
        for ns in self.namespaces.iter().rev() {
            let _ = run(&["ip", "netns", "del", ns]);
        }
        if let Some(uplink) = &self.uplink {
            let _ = run(&["ip", "link", "del", uplink]);
        }
    }
}

/// Why this machine cannot run the namespace tests, or `None` if it can: root, `ip` and
/// `iptables` present, and a probe namespace with a bridge and a firewall rule works.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces and iptables need CAP_NET_ADMIN)".into());
    }
    for (tool, package) in [("ip", "iproute2"), ("iptables", "iptables")] {
        if run(&[tool, "-V"]).is_err() {
            return Some(format!(
                "`{tool}` is missing (apt-get install {package}; .ci/run installs it)"
            ));
        }
    }
    let probe = format!(
        "{NS_PREFIX}-{}-probe{}",
        std::process::id(),
        NEXT_HARNESS.fetch_add(1, Ordering::SeqCst)
    );
    if let Err(e) = run(&["ip", "netns", "add", &probe]) {
        return Some(format!("cannot create a network namespace: {e}"));
    }
    let result = run(&["ip", "-n", &probe, "link", "add", "br0", "type", "bridge"])
        .map_err(|e| format!("cannot create a bridge in a namespace: {e}"))
        .and_then(|()| {
            run(&[
                "ip", "netns", "exec", &probe, "iptables", "-w", "-A", "INPUT", "-p", "udp", "-s",
                "10.0.0.1", "-j", "DROP",
            ])
            .map_err(|e| format!("iptables does not work in a namespace: {e}"))
        });
    let _ = run(&["ip", "netns", "del", &probe]);
    result.err()
}

/// Runs a command; its stderr (or how it failed to start) on failure.
fn run(argv: &[&str]) -> Result<(), String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", argv[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// DROP rules in namespace `ns` on INPUT from and OUTPUT to `peer`, TCP (the gRPC bus)
/// and UDP (gossip).
fn drop_traffic(ns: &str, peer: &str) {
    for proto in ["tcp", "udp"] {
        for (chain, dir) in [("INPUT", "-s"), ("OUTPUT", "-d")] {
            must(&[
                "ip", "netns", "exec", ns, "iptables", "-w", "-A", chain, "-p", proto, dir, peer,
                "-j", "DROP",
            ]);
        }
    }
}

/// Runs a command that must succeed.
fn must(argv: &[&str]) {
    if let Err(e) = run(argv) {
        panic!("{e}");
    }
}

/// Output of a command, empty if it fails.
fn output_of(argv: &[&str]) -> String {
    Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// A `10.213.Y` not on any interface of the root namespace, starting from a point that
/// depends on the pid and the harness counter.
fn free_subnet(pid: u32, seq: u32) -> String {
    let used = output_of(&["ip", "-4", "-o", "addr", "show"]);
    let start = (pid.wrapping_mul(7).wrapping_add(seq.wrapping_mul(31))) % 250;
    (0..250)
        .map(|k| format!("{NET}.{}", (start + k) % 250 + 1))
        .find(|s| !used.contains(&format!(" {s}.")))
        .expect("every 10.213.Y/24 is in use")
}

/// Deletes namespaces (and the kvd processes in them) of earlier test processes that
/// died without running Drop; ours and live processes' are left alone.
fn remove_stale_namespaces() {
    for line in output_of(&["ip", "netns", "list"]).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(owner) = name
            .strip_prefix(&format!("{NS_PREFIX}-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if std::path::Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        for pid in output_of(&["ip", "netns", "pids", name]).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                // SAFETY: kill(2) with a valid signal; the process is a kvd left in a
                // namespace this harness created.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = run(&["ip", "netns", "del", name]);
    }
}

/// Waits until the node answers PING on its address; panics with its log if it exits or
/// the deadline passes.
fn wait_ready(node: &mut NetNode) {
    let deadline = Instant::now() + FORM_TIMEOUT;
    let addr = format!("{}:{CLIENT_PORT}", node.ip);
    loop {
        if let Some(Ok(Some(status))) = node.child.as_mut().map(Child::try_wait) {
            panic!(
                "kvd in {} exited ({status}); log:\n{}",
                node.ns,
                node.log_text()
            );
        }
        if answers_ping(&addr) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "kvd in {} did not answer PING on {addr}; log:\n{}",
            node.ns,
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a server answers PING on `addr` (`ip:port`) within two seconds. Clients of a
/// node that may be frozen (SIGSTOP) ask this before connecting: the `redis` crate's
/// connection setup reads its replies without a timeout, and would wait for the SIGCONT.
pub fn answers_ping(addr: &str) -> bool {
    let Ok(sock) = addr.parse() else {
        return false;
    };
    let Ok(mut s) = TcpStream::connect_timeout(&sock, Duration::from_secs(2)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok()
        && matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

/// Polls `cond` every 50 ms until it holds; after `timeout`, panics with `what` and the
/// text `context` returns (logs).
pub fn poll_until(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
