//! `kvtool dump` of a cluster node's directory: every replicated record the node holds
//! (engine keyspace `replicated`, docs/format/cluster-storage.md), tombstones included,
//! each with its cluster-wide version, partition by partition in engine key order (slot,
//! database, key hash, key). Two replicas holding the same writes give identical lines
//! for the partitions they share, which is how a test compares them offline.

use super::format::{DumpVersion, Record};
use super::{write_out, DatabaseCount, DumpReport, Selection, WRITE_CHUNK};
use crate::cluster_dir::{decode_replicated, NodeFacts, ReplicatedEntry, REPLICATED};
use crate::failure::Failure;
use crate::progress::{Progress, Unit};
use kv_cluster::Body;
use kv_engine::Db;
use kv_keyspace::data_key::partition_range;
use kv_keyspace::PARTITIONS;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// The partitions `selection` asks for on this node, in increasing order.
pub fn partitions_selected(
    facts: &NodeFacts,
    selection: &Selection,
    dir: &Path,
) -> Result<Vec<u16>, Failure> {
    let mut chosen: Vec<u16> = if selection.owned {
        facts.partitions_held().ok_or_else(|| {
            Failure::usage(format!(
                "--owned: {} holds no layout yet, so it owns no partition",
                dir.display()
            ))
        })?
    } else {
        (0..PARTITIONS).collect()
    };
    if !selection.partitions.is_empty() {
        chosen.retain(|p| selection.partitions.contains(p));
    }
    Ok(chosen)
}

/// Writes the records of the selected partitions (and database) of the cluster node
/// whose engine is `db`; values expired at `now_ms` are skipped and counted.
pub fn dump_records(
    db: &Db,
    dir: &Path,
    facts: &NodeFacts,
    selection: &Selection,
    out: &mut dyn Write,
    now_ms: i64,
) -> Result<DumpReport, Failure> {
    let mut report = DumpReport {
        dir: dir.display().to_string(),
        out: None,
        node_id: Some(facts.node_id.to_string()),
        databases: Vec::new(),
        keys: 0,
        tombstones: 0,
        expired_skipped: 0,
        bytes_written: 0,
    };
    let partitions = partitions_selected(facts, selection, dir)?;
    let Some(data) = db
        .keyspaces()
        .into_iter()
        .find(|(_, name)| name == REPLICATED)
        .map(|(ks, _)| ks)
    else {
        // A node that never stored a record has no keyspace yet: an empty dump.
        return Ok(report);
    };
    let engine = |e| Failure::engine(dir, e);
    let snapshot = db.snapshot();
    let mut per_db: BTreeMap<u32, DatabaseCount> = BTreeMap::new();
    let mut bar = Progress::new("dumping records", 0, Unit::Items);
    let mut buf = String::with_capacity(WRITE_CHUNK + 4096);
    for p in partitions {
        let (start, end) = partition_range(p);
        for entry in db
            .iter(data, Some(&start), end.as_deref(), Some(&snapshot))
            .map_err(engine)?
        {
            let entry = entry.map_err(engine)?;
            let (n, key, record) = match decode_replicated(&entry.key, &entry.value) {
                ReplicatedEntry::Record(n, key, record) => (n, key, record),
                ReplicatedEntry::Damaged(what) => {
                    return Err(Failure::new(format!(
                        "partition {p}, {what} (run `kvtool verify`)"
                    )))
                }
            };
            // The layout register is the cluster's, not a client database's: a dump
            // loaded into another cluster must not carry it.
            if selection.db.is_some_and(|only| only != n)
                || n == kv_cluster::node::LAYOUT_REGISTER_DB
            {
                continue;
            }
            let (ty, value) = match &record.body {
                Body::Value { ty, payload } => (Some(*ty), payload.to_vec()),
                // A siblings database's keys have no one value to dump yet.
                Body::Tombstone | Body::Siblings(_) | Body::SiblingsWrite(_) => (None, Vec::new()),
            };
            if ty.is_some() && record.expire_at.is_some_and(|at| at <= now_ms) {
                report.expired_skipped += 1;
                continue;
            }
            let count = per_db.entry(n).or_insert(DatabaseCount {
                db: n,
                namespace: n,
                keys: 0,
                bytes: 0,
            });
            if ty.is_some() {
                count.keys += 1;
                count.bytes += (key.len() + value.len()) as u64;
                report.keys += 1;
            } else {
                report.tombstones += 1;
            }
            Record {
                db: n,
                key,
                value,
                ty,
                expire_at_ms: record.expire_at,
                version: Some(DumpVersion::Cluster(record.version)),
            }
            .write_line(&mut buf);
            bar.inc(1);
            if buf.len() >= WRITE_CHUNK {
                report.bytes_written += write_out(out, &mut buf)?;
            }
        }
    }
    report.bytes_written += write_out(out, &mut buf)?;
    out.flush()
        .map_err(|e| Failure::new(format!("cannot write the dump: {e}")))?;
    report.databases = per_db.into_values().collect();
    if let Some(only) = selection.db {
        if report.databases.is_empty() {
            report.databases.push(DatabaseCount {
                db: only,
                namespace: only,
                keys: 0,
                bytes: 0,
            });
        }
    }
    Ok(report)
}
