//! Whole-database commands on the ring: SCAN with a stateless cursor (the ring merges R
//! replicas per partition and keeps SCAN's guarantee), KEYS and DBSIZE as full scans, and
//! CLUSTER REPAIR. They cover the whole cluster, or with `cluster-compat yes` only the
//! slots this node advertises, so that a Redis Cluster client asking every primary sees
//! each key once (docs/cluster.md, "Redis Cluster-aware clients").

use super::advertised::AdvertisedSlots;
use super::ring_error;
use crate::commands::args::{err, glob_match, int};
use crate::commands::keys::parse_scan_args;
use crate::protocol::Reply;
use crate::state::{Client, Shared};
use bytes::Bytes;
use kv_cluster::config::Consistency;
use kv_cluster::partition_set::PartitionSet;
use kv_cluster::ring::Ring;
use kv_keyspace::slot::PARTITIONS;
use std::sync::Arc;

/// Keys asked of the ring per page when KEYS and DBSIZE walk a whole database.
const PAGE: usize = 1000;
/// Largest COUNT a ring SCAN asks of replicas in one call.
const MAX_RING_SCAN_COUNT: usize = 100_000;

/// SCAN, KEYS or DBSIZE on the ring.
pub async fn run(
    srv: &Shared,
    ring: &Arc<dyn Ring>,
    client: &mut Client,
    name: &str,
    a: &[Bytes],
) -> Reply {
    let db = client.db as u32;
    let scope = match node_scope(srv, ring) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let on = Scan { ring, scope, db };
    let result = match name {
        "scan" => scan(&on, a, client.consistency).await,
        "keys" => keys(srv, &on, client, &a[1]).await,
        _ => dbsize(&on, client.consistency).await,
    };
    result.unwrap_or_else(|e| e)
}

/// What a whole-database command scans: database `db` in the partitions of `scope`.
struct Scan<'a> {
    ring: &'a Arc<dyn Ring>,
    scope: PartitionSet,
    db: u32,
}

impl Scan<'_> {
    async fn page(
        &self,
        cursor: u64,
        count: usize,
        level: Consistency,
    ) -> Result<(u64, Vec<Bytes>), Reply> {
        self.ring
            .scan(&self.scope, self.db, cursor, count, level)
            .await
            .map_err(|e| ring_error(&e))
    }
}

/// Every partition, or in compatibility mode those advertised as this node's.
fn node_scope(srv: &Shared, ring: &Arc<dyn Ring>) -> Result<PartitionSet, Reply> {
    if !srv.config.read().cluster.compat {
        return Ok(PartitionSet::ALL);
    }
    let view = ring
        .view()
        .ok_or_else(|| err("ERR this ring keeps no cluster view"))?;
    Ok(AdvertisedSlots::of(&view).scope_of(view.me))
}

async fn scan(on: &Scan<'_>, a: &[Bytes], level: Consistency) -> Result<Reply, Reply> {
    let args = parse_scan_args(a)?;
    if args.past_end {
        return Ok(crate::commands::keys::scan_finished());
    }
    let count = args.count.min(MAX_RING_SCAN_COUNT);
    let (next, items) = on.page(args.cursor, count, level).await?;
    // Every value on the ring is a string today: TYPE string keeps all keys, any other
    // type none.
    let type_ok = args.ty.as_deref().is_none_or(|t| t == "string");
    let keys = items
        .into_iter()
        .filter(|k| {
            type_ok
                && args
                    .pattern
                    .as_ref()
                    .is_none_or(|p| glob_match(p, k, false))
        })
        .map(Reply::Bulk)
        .collect();
    Ok(Reply::Array(vec![
        Reply::bulk(Bytes::from(next.to_string())),
        Reply::Array(keys),
    ]))
}

/// Calls `f` for every live key scanned, page by page.
async fn walk(
    on: &Scan<'_>,
    level: Consistency,
    mut f: impl FnMut(&Bytes) -> bool,
) -> Result<(), Reply> {
    let mut cursor = 0;
    loop {
        let (next, items) = on.page(cursor, PAGE, level).await?;
        for k in &items {
            if !f(k) {
                return Ok(());
            }
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

async fn keys(
    srv: &Shared,
    on: &Scan<'_>,
    client: &mut Client,
    pattern: &Bytes,
) -> Result<Reply, Reply> {
    let limits = srv.config.read().client_output_buffer_limit;
    let room = match limits.normal.hard {
        0 => u64::MAX,
        hard => hard.saturating_sub(client.reply_bytes),
    };
    let mut out = Vec::new();
    let mut bytes = 0u64;
    let level = client.consistency;
    walk(on, level, |k| {
        if glob_match(pattern, k, false) {
            out.push(Reply::Bulk(k.clone()));
            bytes += k.len() as u64 + 16;
        }
        bytes <= room
    })
    .await?;
    if bytes > room {
        client.output_limit_reached = true;
        client.close = true;
        return Err(err(
            "ERR reply exceeds client-output-buffer-limit; closing the connection",
        ));
    }
    client.reply_bytes += bytes;
    Ok(Reply::Array(out))
}

/// DBSIZE on the ring counts live keys with a full cluster scan: exact for keys that did
/// not change during the count, O(keys) (docs/cluster.md says so).
async fn dbsize(on: &Scan<'_>, level: Consistency) -> Result<Reply, Reply> {
    let mut n = 0i64;
    walk(on, level, |_| {
        n += 1;
        true
    })
    .await?;
    Ok(Reply::Int(n))
}

/// CLUSTER REPAIR [partition]: anti-entropy now; replies with what it did.
pub async fn repair(ring: &Arc<dyn Ring>, a: &[Bytes]) -> Reply {
    let partition = match a.get(2) {
        None => None,
        Some(p) => match int(p) {
            Ok(n) if (0..PARTITIONS as i64).contains(&n) => Some(n as u16),
            _ => return err("ERR partition must be an integer from 0 to 255"),
        },
    };
    match ring.repair(partition).await {
        Ok(r) => Reply::status(format!(
            "OK partitions={} keys_repaired={} failures={}",
            r.partitions, r.keys_repaired, r.failures
        )),
        Err(e) => ring_error(&e),
    }
}

/// CLUSTER MERKLE: this node's root per partition as hex (empty for partitions it does
/// not hold). Equal arrays on two nodes holding the same partitions mean equal data.
pub async fn merkle(ring: &Arc<dyn Ring>) -> Reply {
    match ring.merkle_roots().await {
        Ok(roots) => Reply::Array(
            roots
                .iter()
                .map(|r| {
                    let hex: String = r
                        .map(|h| h.iter().map(|b| format!("{b:02x}")).collect())
                        .unwrap_or_default();
                    Reply::Bulk(Bytes::from(hex))
                })
                .collect(),
        ),
        Err(e) => ring_error(&e),
    }
}
