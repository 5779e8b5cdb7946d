//! Check 5, for the counters of the retrying clients (super::retrying_client): every
//! request counts exactly once however often it was retried. All acknowledged attempts
//! of one request got the same value (a retry was answered from the request's record,
//! not applied again); two requests never got the same value; and every replica ends
//! with a value at least the number of acknowledged requests and at most that plus the
//! requests whose every attempt was unknown or not sent (some of them unknown).

use super::checker::counts_between;
use super::history::{Op, OpKind, Outcome};
use crate::NodeId;
use bytes::Bytes;
use std::collections::BTreeMap;

/// Check 5 on `key`, whose replicas ended holding the counters `replicas`; what is
/// wrong goes to `bad`.
pub fn check_key(
    history: &[Op],
    key: &Bytes,
    replicas: &[(NodeId, u64)],
    bad: &mut dyn FnMut(String),
) {
    let mut attempts: BTreeMap<u64, Vec<&Outcome>> = BTreeMap::new();
    for op in history.iter().filter(|op| op.key == *key) {
        if let OpKind::IdempotentIncr(request) = op.kind {
            attempts.entry(request).or_default().push(&op.outcome);
        }
    }
    let (mut answered, mut unknown) = (Vec::new(), 0u64);
    for (request, outcomes) in &attempts {
        let values: Vec<u64> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Counted(v) => Some(*v),
                _ => None,
            })
            .collect();
        if values.windows(2).any(|w| w[0] != w[1]) {
            bad(format!(
                "request {request} was answered {values:?}: a retry was applied again"
            ));
        }
        match values.first() {
            Some(&v) => answered.push(v),
            None if outcomes.iter().any(|o| matches!(o, Outcome::Unknown(_))) => unknown += 1,
            None => {}
        }
    }
    answered.sort_unstable();
    if let Some(w) = answered.windows(2).find(|w| w[0] == w[1]) {
        bad(format!("two requests were answered {}", w[0]));
    }
    let count = answered.len() as u64;
    counts_between(replicas, count, unknown, "answered requests", bad);
}
