//! Applying a siblings database's records (docs/consistency.md, "Siblings"): a copy of
//! another replica's state (repair, hint, anti-entropy, the coordinator's fan-out) joins
//! the state held, and a client's write in transit gets its dot here, from this replica,
//! under the key's stripe lock, so the dot is made while every earlier dot of this
//! replica for the key is held (crate::dvv). Neither is ever Stale: the join accepts any
//! order of arrival.

use super::StoreError;
use crate::dvv::{Siblings, MAX_SIBLINGS};
use crate::replica_api::ItemKey;
use crate::replica_store::describe_key;
use crate::{Body, NodeId, Record};

/// The record to store after `incoming` (a siblings body or write) meets `held`, or
/// `None` when what is held already includes it.
pub(super) fn after_write(
    key: &ItemKey,
    held: Option<Record>,
    incoming: &Record,
    actor: NodeId,
) -> Result<Option<Record>, StoreError> {
    let merged = match &incoming.body {
        Body::SiblingsWrite(write) => {
            if actor.0 == 0 {
                return Err(StoreError::Invalid(
                    "this replica has no node id to give siblings writes a dot".into(),
                ));
            }
            // What was there before a database became a siblings one is not kept.
            let (mut state, version) = match held.as_ref() {
                Some(Record {
                    body: Body::Siblings(s),
                    version,
                    ..
                }) => (s.clone(), (*version).max(incoming.version)),
                _ => (Siblings::default(), incoming.version),
            };
            state.accept(write, actor, incoming.version.ts);
            if state.len() > MAX_SIBLINGS {
                return Err(StoreError::Invalid(too_many(key, state.len())));
            }
            Record {
                version,
                expire_at: None,
                body: Body::Siblings(state),
                requests: Vec::new(),
                txn: Default::default(),
            }
        }
        _ => match held.clone() {
            Some(h) => Record::merge(h, incoming.clone()),
            None => incoming.clone(),
        },
    };
    Ok((held.as_ref() != Some(&merged)).then_some(merged))
}

/// The refusal of a write that would keep more than [`MAX_SIBLINGS`] values. Its text
/// starts with the error code the client sees (the coordinator looks for it).
pub fn too_many(key: &ItemKey, count: usize) -> String {
    format!(
        "{TOO_MANY_SIBLINGS} {} would have {count} siblings, more than {MAX_SIBLINGS}: \
         read them with SIBGET and write a resolution with the token",
        describe_key(key)
    )
}

/// The error code of a write refused for keeping too many siblings.
pub const TOO_MANY_SIBLINGS: &str = "TOOMANYSIBLINGS";
