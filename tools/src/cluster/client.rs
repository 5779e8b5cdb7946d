//! Talking to one cluster node over RESP with the `redis` crate: a connection with
//! timeouts (a node that died must not hang kvtool) and the CLUSTER replies kvtool reads.

use crate::failure::Failure;
use std::time::Duration;

/// A connection to `addr` (HOST:PORT) that gives up after 2 s connecting and 10 s
/// waiting for a reply.
pub fn connect(addr: &str) -> Result<redis::Connection, Failure> {
    let client = redis::Client::open(format!("redis://{addr}/"))
        .map_err(|e| Failure::new(format!("{addr}: {e}")))?;
    let conn = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .map_err(|e| Failure::new(format!("cannot reach {addr}: {e}")))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| Failure::new(e.to_string()))?;
    Ok(conn)
}

/// Runs `CLUSTER <sub> [args]` on a fresh connection to `addr`.
pub fn cluster_command<T: redis::FromRedisValue>(
    addr: &str,
    sub: &str,
    args: &[&str],
) -> Result<T, Failure> {
    let mut conn = connect(addr)?;
    redis::cmd("CLUSTER")
        .arg(sub)
        .arg(args)
        .query(&mut conn)
        .map_err(|e| Failure::new(format!("{addr}: CLUSTER {sub}: {e}")))
}

/// The text of `CLUSTER INFO` of the node at `addr`.
pub fn query_info(addr: &str) -> Result<String, Failure> {
    cluster_command(addr, "INFO", &[])
}

/// The value of `name` in CLUSTER INFO text (`name:value` lines).
pub fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
}

/// A numeric CLUSTER INFO field of the node at `addr`.
pub fn info_number(addr: &str, name: &str) -> Result<u64, Failure> {
    Ok(info_numbers(addr, &[name])?[0])
}

/// Numeric CLUSTER INFO fields of the node at `addr`, all from one reply (so counters
/// that move together are read at the same moment).
pub fn info_numbers(addr: &str, names: &[&str]) -> Result<Vec<u64>, Failure> {
    let info = query_info(addr)?;
    names
        .iter()
        .map(|name| {
            field(&info, name)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| Failure::new(format!("{addr}: CLUSTER INFO has no number {name}")))
        })
        .collect()
}

/// One replica of a key, as `CLUSTER PREFLIST` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreflistEntry {
    /// Node id (40 hex digits).
    pub id: String,
    /// Client address.
    pub addr: String,
    /// up, suspect or down, as the asked node sees it.
    pub state: String,
}

/// `CLUSTER PREFLIST key` of the node at `addr`: the key's replicas in preference order.
pub fn preflist(addr: &str, key: &str) -> Result<Vec<PreflistEntry>, Failure> {
    let rows: Vec<Vec<String>> = cluster_command(addr, "PREFLIST", &[key])?;
    rows.into_iter()
        .map(|row| match <[String; 3]>::try_from(row) {
            Ok([id, addr, state]) => Ok(PreflistEntry { id, addr, state }),
            Err(row) => Err(Failure::new(format!(
                "CLUSTER PREFLIST answered a row of {} fields, not 3",
                row.len()
            ))),
        })
        .collect()
}

/// `CLUSTER MERKLE` of the node at `addr`: its Merkle root per partition, hex, empty for
/// partitions it does not hold.
pub fn merkle_roots(addr: &str) -> Result<Vec<String>, Failure> {
    cluster_command(addr, "MERKLE", &[])
}

/// What `CLUSTER REPAIR` reports: `OK partitions=P keys_repaired=K failures=F`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepairReport {
    /// Partitions compared.
    pub partitions: u64,
    /// Keys written to a replica that lacked their newest version.
    pub keys_repaired: u64,
    /// Peers or partitions that could not be compared.
    pub failures: u64,
}

/// Runs `CLUSTER REPAIR` (every partition of the node) on the node at `addr`.
pub fn repair(addr: &str) -> Result<RepairReport, Failure> {
    let text: String = cluster_command(addr, "REPAIR", &[])?;
    let number = |name: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Failure::new(format!("CLUSTER REPAIR answered {text:?}: no {name}")))
    };
    Ok(RepairReport {
        partitions: number("partitions")?,
        keys_repaired: number("keys_repaired")?,
        failures: number("failures")?,
    })
}
