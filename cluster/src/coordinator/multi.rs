//! Multi-key requests (MSET, MGET, DEL...): one independent quorum request per key, run
//! concurrently, each with its own result. There is no atomicity across keys: an MSET
//! whose keys live on different replicas may succeed for some keys and fail for others,
//! and the caller reports which.

use super::Coordinator;
use crate::quorum::{ClusterError, Consistency};
use crate::replica_api::ItemKey;
use crate::{Record, Version};
use bytes::Bytes;
use kv_keyspace::ValueType;
use std::future::Future;
use tokio::task::JoinSet;

/// Keys of one multi-key request in flight at once: bounds the tasks a client's huge
/// MSET can create on this node.
pub const MAX_KEYS_IN_FLIGHT: usize = 128;

/// One key of a multi-key write: the key, its value (`None` deletes), its expiry.
pub type KeyWrite = (ItemKey, Option<(ValueType, Bytes)>, Option<i64>);

impl Coordinator {
    /// Writes each key independently; one result per key, in order.
    pub async fn mput(
        &self,
        writes: Vec<KeyWrite>,
        consistency: Consistency,
    ) -> Vec<Result<Version, ClusterError>> {
        self.fan_out(writes, move |c, (key, value, expire_at)| async move {
            c.put(key, value, expire_at, consistency).await
        })
        .await
    }

    /// Deletes each key independently (tombstones); one result per key, in order.
    pub async fn mdel(
        &self,
        keys: Vec<ItemKey>,
        consistency: Consistency,
    ) -> Vec<Result<Version, ClusterError>> {
        self.fan_out(keys, move |c, key| async move {
            c.put(key, None, None, consistency).await
        })
        .await
    }

    /// Reads each key independently; one result per key, in order.
    pub async fn mget(
        &self,
        keys: Vec<ItemKey>,
        consistency: Consistency,
    ) -> Vec<Result<Option<Record>, ClusterError>> {
        self.fan_out(
            keys,
            move |c, key| async move { c.get(key, consistency).await },
        )
        .await
    }

    /// Runs `op` for every input, at most [`MAX_KEYS_IN_FLIGHT`] at once, and returns
    /// the results in input order.
    async fn fan_out<I, T, F, Fut>(&self, inputs: Vec<I>, op: F) -> Vec<Result<T, ClusterError>>
    where
        I: Send + 'static,
        T: Send + 'static,
        F: Fn(Coordinator, I) -> Fut,
        Fut: Future<Output = Result<T, ClusterError>> + Send + 'static,
    {
        let total = inputs.len();
        let mut results: Vec<Option<Result<T, ClusterError>>> =
            std::iter::repeat_with(|| None).take(total).collect();
        let mut running = JoinSet::new();
        let mut inputs = inputs.into_iter().enumerate();
        loop {
            while running.len() < MAX_KEYS_IN_FLIGHT {
                let Some((i, input)) = inputs.next() else {
                    break;
                };
                let fut = op(self.clone(), input);
                running.spawn(async move { (i, fut.await) });
            }
            match running.join_next().await {
                Some(Ok((i, result))) => results[i] = Some(result),
                // A panicked key task leaves its slot empty: reported below.
                Some(Err(_)) => {}
                None => break,
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ClusterError::Protocol("key task failed".into()))))
            .collect()
    }
}
