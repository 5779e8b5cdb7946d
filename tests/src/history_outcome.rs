//! How a failed request of a cluster client reads in a history (docs/history-checker.md,
//! "A history"): certainly without effect, or of unknown outcome.

use kv_checker::Outcome;

/// An error the coordinator returns before sending anything (`CLUSTERDOWN`: too few
/// replicas up; `TRYAGAIN ... cannot coordinate` or `... cannot issue versions`: this
/// node may not coordinate now, e.g. its clock resumed ahead after a kill -9; `TRYAGAIN
/// ... nothing was written`: consensus kept losing before any accept; `... was removed
/// from the cluster`: a node a layout change removed refuses every request) had no
/// effect: `Failed`. Anything else (a timeout, a broken connection, a dead node) may
/// have: `Unknown`.
pub fn outcome_of_error<O>(e: &redis::RedisError) -> Outcome<O> {
    let text = e.to_string();
    let not_sent = match e.code() {
        Some("CLUSTERDOWN") => true,
        Some("TRYAGAIN") => {
            text.contains("cannot coordinate")
                || text.contains("cannot issue")
                || text.contains("nothing was written")
        }
        _ => node_was_removed(e),
    };
    if not_sent {
        Outcome::Failed
    } else {
        Outcome::Unknown
    }
}

/// Whether the connection an error came from is no good any more: a reply may still
/// arrive on it late and would be taken for the next request's.
pub fn spoils_connection(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped()
}

/// Whether the node refused because a layout change removed it: it serves nothing any
/// more (docs/cluster.md, "Changing the layout"), and a client should ask a member.
pub fn node_was_removed(e: &redis::RedisError) -> bool {
    e.to_string().contains("was removed from the cluster")
}
