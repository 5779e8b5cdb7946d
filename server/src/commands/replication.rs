//! REPLICAOF / SLAVEOF and ROLE, answered as a Redis primary with no replicas: client
//! libraries and their test suites probe them. kvd cannot replicate from a Redis primary
//! (its nodes replicate among themselves, docs/cluster.md), so `REPLICAOF host port`
//! is refused with a clear error after Redis's own argument checks.

use super::args::{err, is};
use super::{CmdResult, Ctx};
use crate::protocol::parser::parse_i64;
use crate::protocol::Reply;
use bytes::Bytes;

/// REPLICAOF host port | NO ONE (also SLAVEOF)
pub fn replicaof(_ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    if is(&a[1], "no") && is(&a[2], "one") {
        return Ok(Reply::Ok); // already a primary: Redis replies OK and changes nothing
    }
    match parse_i64(&a[2]) {
        Some(p) if (0..=65535).contains(&p) => Err(err(
            "ERR REPLICAOF <host> <port> is not supported: kvd cannot replicate from a Redis \
             primary (kvd nodes replicate through --cluster-enabled, see docs/cluster.md)",
        )),
        _ => Err(err("ERR Invalid master port")),
    }
}

/// ROLE: `["master", 0, []]`, a primary at replication offset 0 with no replicas.
pub fn role(_ctx: &mut Ctx<'_>, _a: &[Bytes]) -> CmdResult {
    Ok(Reply::Array(vec![
        Reply::bulk(Bytes::from_static(b"master")),
        Reply::Int(0),
        Reply::Array(Vec::new()),
    ]))
}
