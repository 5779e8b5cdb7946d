//! kvd's administrative commands, used by `kvtool compact --addr` and
//! `kvtool backup --addr` (docs/kvtool.md).
//!
//! Both carry the ADMIN flag, so the connection runs them off the async workers: they
//! take as long as the compaction or the table links take.

use super::args::{err, is, text, SYNTAX};
use super::{CmdResult, Ctx};
use crate::checkpoint_policy;
use crate::protocol::Reply;
use bytes::Bytes;

/// COMPACT [RANGE start end]: compacts everything (every engine keyspace), or the Redis
/// keys `[start, end]` of the selected database, down to the bottom level. Replies +OK
/// when done; INFO's `compaction_running` shows it meanwhile. Data keys are in slot and
/// hash order (docs/format/keyspace.md), so a range of Redis keys is spread over the whole
/// data keyspace: RANGE compacts all of it, a superset of the range.
pub fn compact(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let store = &ctx.srv.store;
    match a.len() {
        1 => {
            for (ks, _) in store.db.keyspaces() {
                store.db.compact_range(ks, None, None)?;
            }
        }
        4 if is(&a[1], "range") => store.db.compact_range(store.data, None, None)?,
        _ => return Err(err(SYNTAX)),
    }
    Ok(Reply::Ok)
}

/// CHECKPOINT dest: a consistent copy of the data directory in `dest` (a new or empty
/// directory on the server's machine), holding every write acknowledged before the
/// command. `kvd --dir dest` starts from it.
pub fn checkpoint(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    let dest = {
        let c = ctx.srv.config.read();
        let local = ctx
            .client
            .info
            .addr
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback());
        checkpoint_policy::destination(
            &text(&a[1]),
            c.backup_dir.as_deref(),
            c.checkpoint_anywhere,
            local,
        )
        .map_err(|why| Reply::error(format!("ERR CHECKPOINT destination refused: {why}")))?
    };
    ctx.srv.store.db.checkpoint(&dest)?;
    Ok(Reply::Ok)
}
