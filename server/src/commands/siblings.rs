//! SIBGET, SIBSET and SIBDEL on a single node: siblings exist only on the ring, where
//! concurrent writes can happen (server/src/cluster_mode/siblings.rs runs them there).

use super::{CmdResult, Ctx};
use crate::protocol::Reply;
use bytes::Bytes;

/// Every siblings command outside cluster mode.
pub fn needs_cluster(_ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    Err(Reply::error(format!(
        "ERR '{}' needs cluster mode and a siblings database (cluster-siblings-databases): \
         a single node has no concurrent writes to keep (docs/consistency.md, \"Siblings\")",
        String::from_utf8_lossy(&a[0]).to_lowercase()
    )))
}
