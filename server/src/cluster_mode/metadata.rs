//! Commands that change cluster-wide state on a ring (docs/cluster.md, "Cluster
//! metadata"): FLUSHDB / FLUSHALL become versioned flush entries, and ACL SETUSER /
//! DELUSER / LOAD, CONFIG SET of cluster-wide parameters and FUNCTION LOAD / DELETE /
//! FLUSH / RESTORE run here, then travel to every node as metadata entries. [`apply_entry`] is how every node (this one
//! included) applies what any node wrote.

use super::ring_error;
use crate::acl::replicated::{user_entry_name, UserChange, USER_ENTRY_PREFIX};
use crate::commands::args::{is, text};
use crate::commands::{self, table};
use crate::protocol::Reply;
use crate::state::{Client, Shared};
use bytes::Bytes;
use kv_cluster::metadata::{flush_entry_name, MetaEntry, MAX_VALUE_LEN};
use kv_cluster::ring::Ring;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Prefix of the cluster-wide configuration entries' names.
pub const CONFIG_ENTRY_PREFIX: &str = "config/";
/// Prefix of the function library entries' names (`function/<library>` -> its code, or
/// empty once deleted).
pub const FUNCTION_ENTRY_PREFIX: &str = "function/";

/// Parameters that CONFIG SET applies on every node of a cluster: limits and policies
/// that should not depend on which node a client reached. Every other parameter stays
/// local to the node it is set on: addresses, ports, files and directories, TLS, the
/// descriptor-bound `maxclients`, `protected-mode` (it depends on the node's own bind),
/// `hz`, `save`, and every `cluster-*` parameter.
pub const CLUSTER_WIDE_PARAMS: &[&str] = &[
    "requirepass",
    "timeout",
    "acllog-max-len",
    "proto-max-bulk-len",
    "client-query-buffer-limit",
    "client-output-buffer-limit",
    "slowlog-log-slower-than",
    "slowlog-max-len",
    "idempotency-window-ms",
];

/// FLUSHDB / FLUSHALL [ASYNC|SYNC]: one flush entry per database, all with one version
/// V. Every node then hides the databases' records older than V and deletes them in
/// the background; both modes reply once a majority of nodes hold the flush.
pub async fn flush(srv: &Shared, ring: &Arc<dyn Ring>, client: &Client, args: &[Bytes]) -> Reply {
    let all = is(&args[0], "flushall");
    match args.get(1..).unwrap_or(&[]) {
        [] => {}
        [mode] if is(mode, "async") || is(mode, "sync") => {}
        _ => return Reply::error("ERR syntax error"),
    }
    let dbs: Vec<u32> = match all {
        true => (0..srv.config.read().databases as u32).collect(),
        false => vec![client.db as u32],
    };
    let entries = dbs
        .into_iter()
        .map(|db| (flush_entry_name(db), Bytes::new()))
        .collect();
    match ring.publish_metadata(entries).await {
        Ok(_) => Reply::Ok,
        Err(e) => ring_error(&e),
    }
}

/// Runs an ACL, CONFIG or FUNCTION change here, as on one node, then publishes what it
/// changed: the users touched (their rules, or a deletion), the cluster-wide parameters
/// set, or the function libraries changed.
pub async fn change(
    srv: &Shared,
    ring: &Arc<dyn Ring>,
    client: &mut Client,
    spec: &'static table::CommandSpec,
    args: &[Bytes],
) -> Reply {
    let functions = is(&args[0], "function");
    if functions {
        if let Some(too_big) = oversized_library(spec.name, args) {
            return too_big;
        }
    }
    let libraries_before = functions.then(|| srv.scripting.library_codes());
    let users_before: BTreeSet<String> = srv.acl.all().iter().map(|u| u.name.clone()).collect();
    let reply = commands::run(srv, client, spec, args);
    if reply.is_error() {
        return reply;
    }
    if let Some(before) = libraries_before {
        let entries = library_entries(srv, spec.name, &reply, before);
        return publish(ring, entries, reply).await;
    }
    let entries = match spec.name {
        "setuser" => user_entries(srv, [text(&args[2])]),
        "deluser" => user_entries(srv, args[2..].iter().map(|a| text(a))),
        "load" => user_entries(
            srv,
            users_before
                .into_iter()
                .chain(srv.acl.all().iter().map(|u| u.name.clone())),
        ),
        "set" => config_entries(srv, &args[2..]),
        _ => Vec::new(),
    };
    publish(ring, entries, reply).await
}

/// Publishes `entries` (if any), then answers `reply`, or the publish's error.
async fn publish(ring: &Arc<dyn Ring>, entries: Vec<(String, Bytes)>, reply: Reply) -> Reply {
    if entries.is_empty() {
        return reply;
    }
    match ring.publish_metadata(entries).await {
        Ok(_) => reply,
        Err(e) => ring_error(&e),
    }
}

/// After FUNCTION LOAD / DELETE / FLUSH / RESTORE ran here: one entry per library it
/// changed (its code, or empty once deleted), and the loaded one. Every node, this one
/// included, applies the entries ([`apply_entry`]); a node that was away loads them when
/// it is next in contact. FLUSH deletes the libraries this node knows.
fn library_entries(
    srv: &Shared,
    command: &str,
    reply: &Reply,
    before: BTreeMap<String, Bytes>,
) -> Vec<(String, Bytes)> {
    let after = srv.scripting.library_codes();
    let loaded = match (reply, command) {
        (Reply::Bulk(name), "load") => Some(String::from_utf8_lossy(name).into_owned()),
        _ => None,
    };
    let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    names
        .into_iter()
        .filter(|n| before.get(*n) != after.get(*n) || loaded.as_ref() == Some(*n))
        .map(|n| {
            let code = after.get(n).cloned().unwrap_or_default();
            (format!("{FUNCTION_ENTRY_PREFIX}{n}"), code)
        })
        .collect()
}

/// The refusal of a FUNCTION LOAD or RESTORE whose library would not fit in a metadata
/// entry (checked before anything runs, so no node has it half).
fn oversized_library(name: &str, args: &[Bytes]) -> Option<Reply> {
    let codes: Vec<Bytes> = match name {
        "load" => args.last().cloned().into_iter().collect(),
        "restore" => crate::scripting::function::parse_dump(args.get(2)?)?,
        _ => return None,
    };
    codes.iter().any(|c| c.len() > MAX_VALUE_LEN).then(|| {
        Reply::error(format!(
            "ERR a function library on a kvd cluster may have at most {MAX_VALUE_LEN} bytes of \
             code: it travels to every node as cluster metadata"
        ))
    })
}

/// One entry per named user: its rules now, or empty if it no longer exists.
fn user_entries(srv: &Shared, names: impl IntoIterator<Item = String>) -> Vec<(String, Bytes)> {
    let names: BTreeSet<String> = names.into_iter().collect();
    names
        .into_iter()
        .map(|n| {
            let value = srv.acl.replicated_value(&n).unwrap_or_default();
            (user_entry_name(&n), Bytes::from(value))
        })
        .collect()
}

/// One entry per cluster-wide parameter among `pairs`, with its value as CONFIG GET
/// shows it now.
fn config_entries(srv: &Shared, pairs: &[Bytes]) -> Vec<(String, Bytes)> {
    let config = srv.config.read();
    let names: BTreeSet<String> = pairs
        .chunks(2)
        .map(|p| text(&p[0]).to_ascii_lowercase())
        .filter(|n| CLUSTER_WIDE_PARAMS.contains(&n.as_str()))
        .collect();
    names
        .into_iter()
        .filter_map(|n| {
            let p = crate::config::param(&n)?;
            Some((
                format!("{CONFIG_ENTRY_PREFIX}{n}"),
                Bytes::from((p.get)(&config)),
            ))
        })
        .collect()
}

/// Applies a metadata entry written by any node: ACL users and cluster-wide
/// parameters (flushes are the cluster crate's). A change this node refuses (for
/// example a passwordless default user on its public bind under protected mode) is
/// logged and skipped; the node keeps its own setting.
pub fn apply_entry(srv: &Shared, e: &MetaEntry) {
    if let Some(name) = e.name.strip_prefix(USER_ENTRY_PREFIX) {
        let rules = (!e.value.is_empty()).then(|| String::from_utf8_lossy(&e.value).into_owned());
        match srv
            .acl
            .apply_replicated(&srv.config, name, rules.as_deref())
        {
            Ok(UserChange::Removed) => {
                crate::commands::acl::close_connections_of(srv, &[name.to_string()], 0);
            }
            Ok(_) => {}
            Err(why) => {
                tracing::warn!(user = name, error = %why, "replicated ACL user not applied")
            }
        }
    } else if let Some(library) = e.name.strip_prefix(FUNCTION_ENTRY_PREFIX) {
        if let Err(why) = srv
            .scripting
            .apply_replicated_library(&srv.store.db, library, &e.value)
        {
            tracing::warn!(library, error = %why, "replicated function library not applied");
        }
    } else if let Some(param) = e.name.strip_prefix(CONFIG_ENTRY_PREFIX) {
        if !CLUSTER_WIDE_PARAMS.contains(&param) {
            tracing::warn!(
                param,
                "replicated parameter is not cluster-wide here: ignored"
            );
            return;
        }
        let value = String::from_utf8_lossy(&e.value).into_owned();
        let current = crate::config::param(param).map(|p| (p.get)(&srv.config.read()));
        if current.as_deref() == Some(value.as_str()) {
            return;
        }
        if let Err(why) = commands::server::set_config(srv, &[(param.to_string(), value)]) {
            tracing::warn!(param, error = ?why, "replicated CONFIG SET not applied");
        }
    }
}
