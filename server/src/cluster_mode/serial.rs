//! SERIAL reads (docs/consistency.md, "Reads"): a connection that chose
//! `CLUSTER CONSISTENCY SERIAL` reads the keys it names through the key's consensus
//! instead of a quorum read, as Cassandra's SERIAL reads do. The read is a round whose
//! change function writes nothing: it answers from the state a majority holds once no
//! write is half-finished, so it never returns a value that a later round could still
//! discard. Its cost is a Paxos prepare (a synced promise on each replica) per key, plus
//! an accept when the round finds a half-finished write to settle.

use super::route::Route;
use crate::commands::table::{CommandSpec, WRITE};
use kv_cluster::config::Consistency;

/// The route of a command of a connection at `level`: a read of named keys becomes a
/// consensus round at SERIAL in a linearizable database, and is refused at SERIAL in an
/// eventual one (its writes are last-writer-wins, not rounds a read could settle).
pub fn upgrade(route: Route, spec: &CommandSpec, level: Consistency, linearizable: bool) -> Route {
    let reads_keys = matches!(route, Route::Keys { prefetch: true }) && !spec.has(WRITE);
    if level != Consistency::Serial || !reads_keys {
        return route;
    }
    if linearizable {
        return Route::Consensus;
    }
    Route::Refused(format!(
        "ERR '{}' at SERIAL needs a linearizable database: this database is eventual \
         (cluster-eventual-databases), its writes are last-writer-wins and a read cannot \
         order itself with them; read at QUORUM or use a linearizable database \
         (docs/consistency.md)",
        spec.name
    ))
}
