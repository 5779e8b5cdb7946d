//! Whether the caller of a write round writes the engine's WAL out before it answers
//! anyone, so this node's own replica may leave its WAL record in the log writer's
//! buffer ([`kv_engine::Db::write_deferred`]).
//!
//! A RESP connection of a single node defers its commits and writes the WAL out once
//! per round of replies, before any of them (server/src/connection.rs, `flush`): one
//! `write(2)` for the commits of every connection served in that turn, as Redis writes
//! its AOF buffer once per event-loop iteration. On a cluster node the coordinator's
//! copy is written by its local replica in a task of the write round, and each was one
//! `write(2)` of its own: 100,000 for 100,000 SETs through a node, where each peer's
//! replica, applying the frames of a link batch together, made about 12,000
//! (docs/performance.md, "The coordinator's own copy in the connection's WAL write").
//!
//! The connection marks the futures of its commands ([`scope`]); the write round
//! carries the mark into the tasks it spawns ([`carry`]); [`LocalReplica`] defers
//! its inline apply under it. Everything else (a peer's writes, hints, repair,
//! snapshot pages, consensus accepts, which are fsynced anyway) writes at once: its
//! acknowledgement leaves this node with no write-out after it. And whatever this
//! replica answers to a peer (reads, scans, an "already held" write) is written out
//! before the answer, so no peer is told of a record this node could still lose
//! (local_replica.rs).
//!
//! [`LocalReplica`]: crate::local_replica::LocalReplica

use std::future::Future;

tokio::task_local! {
    static CALLER_WRITES_OUT: ();
}

/// Runs `fut` marked as the command of a caller that writes the WAL out before it
/// answers anyone, when `defers` (a connection whose client defers its commits).
pub async fn scope<F: Future>(defers: bool, fut: F) -> F::Output {
    match defers {
        true => CALLER_WRITES_OUT.scope((), fut).await,
        false => fut.await,
    }
}

/// Whether the running task is marked by [`scope`] (or [`carry`]).
pub fn active() -> bool {
    CALLER_WRITES_OUT.try_with(|_| ()).is_ok()
}

/// `fut` with the running task's mark, for a task it spawns on its behalf.
pub fn carry<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    scope(active(), fut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_mark_holds_inside_its_scope_and_in_carried_tasks_only() {
        assert!(!active());
        assert!(scope(true, async { active() }).await);
        assert!(!scope(false, async { active() }).await);
        let carried = scope(true, async {
            tokio::spawn(carry(async { active() })).await.expect("task")
        })
        .await;
        assert!(carried, "a carried task keeps the mark");
        let plain = scope(true, async {
            tokio::spawn(async { active() }).await.expect("task")
        })
        .await;
        assert!(!plain, "a spawned task does not inherit it");
        assert!(!active());
    }
}
