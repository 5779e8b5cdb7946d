//! Multi-key requests (MSET, MGET, DEL...): one independent quorum request per key, run
//! concurrently, each with its own result. There is no atomicity across keys: an MSET
//! whose keys live on different replicas may succeed for some keys and fail for others,
//! and the caller reports which. A key named twice is written once, with its last
//! value (as Redis's MSET leaves it), and both positions report that write's result.

use super::Coordinator;
use crate::quorum::{ClusterError, Consistency};
use crate::replica_api::{ItemKey, KeyMap};
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
    /// Writes each key independently (one round for all: batch_write.rs); one result
    /// per key, in order.
    pub async fn mput(
        &self,
        writes: Vec<KeyWrite>,
        consistency: Consistency,
    ) -> Vec<Result<Version, ClusterError>> {
        self.put_batch(writes, consistency).await
    }

    /// Deletes each key independently (tombstones, one round for all); one result per
    /// key, in order.
    pub async fn mdel(
        &self,
        keys: Vec<ItemKey>,
        consistency: Consistency,
    ) -> Vec<Result<Version, ClusterError>> {
        let writes = keys.into_iter().map(|k| (k, None, None)).collect();
        self.put_batch(writes, consistency).await
    }

    /// Reads each key independently; one result per key, in order.
    pub async fn mget(
        &self,
        keys: Vec<ItemKey>,
        consistency: Consistency,
    ) -> Vec<Result<Option<Record>, ClusterError>> {
        self.fan_out(
            keys,
            |k| k,
            move |c, key| async move { c.get(key, consistency).await },
        )
        .await
    }

    /// Runs `op` for the last input of every distinct key, at most
    /// [`MAX_KEYS_IN_FLIGHT`] at once, and returns a result per input, in input order.
    async fn fan_out<I, T, F, Fut>(
        &self,
        inputs: Vec<I>,
        key_of: impl Fn(&I) -> &ItemKey,
        op: F,
    ) -> Vec<Result<T, ClusterError>>
    where
        I: Send + 'static,
        T: Clone + Send + 'static,
        F: Fn(Coordinator, I) -> Fut,
        Fut: Future<Output = Result<T, ClusterError>> + Send + 'static,
    {
        let (unique, result_of) = last_per_key(inputs, key_of);
        let results = self.run_each(unique, op).await;
        result_of.into_iter().map(|i| results[i].clone()).collect()
    }

    /// Runs `op` for every input, at most [`MAX_KEYS_IN_FLIGHT`] at once, and returns
    /// the results in input order.
    async fn run_each<I, T, F, Fut>(&self, inputs: Vec<I>, op: F) -> Vec<Result<T, ClusterError>>
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

/// Keeps the last input of each key; also returns, for every input, the index of the
/// kept input whose result it reports.
pub(super) fn last_per_key<I>(
    inputs: Vec<I>,
    key_of: impl Fn(&I) -> &ItemKey,
) -> (Vec<I>, Vec<usize>) {
    let mut last: KeyMap<&ItemKey, usize> =
        KeyMap::with_capacity_and_hasher(inputs.len(), Default::default());
    for (i, input) in inputs.iter().enumerate() {
        last.insert(key_of(input), i);
    }
    let last_of: Vec<usize> = inputs.iter().map(|input| last[key_of(input)]).collect();
    let mut kept_at = vec![0; inputs.len()];
    let mut kept = Vec::with_capacity(last.len());
    drop(last);
    for (i, input) in inputs.into_iter().enumerate() {
        if last_of[i] == i {
            kept_at[i] = kept.len();
            kept.push(input);
        }
    }
    let result_of = last_of.iter().map(|&l| kept_at[l]).collect();
    (kept, result_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_named_twice_runs_once_with_its_last_input() {
        let k = |s: &'static str| ItemKey {
            db: 0,
            key: Bytes::from_static(s.as_bytes()),
        };
        let inputs = vec![(k("a"), 1), (k("b"), 2), (k("a"), 3), (k("c"), 4)];
        let (kept, result_of) = last_per_key(inputs, |(key, _)| key);
        let values: Vec<i32> = kept.iter().map(|(_, v)| *v).collect();
        assert_eq!(values, vec![2, 3, 4]);
        assert_eq!(result_of, vec![1, 0, 1, 2]);
    }
}
