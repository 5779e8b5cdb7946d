//! Which keys two replicas' leaves disagree on.

use crate::replica_api::{Hash16, ItemKey, MerkleLeaf};
use std::collections::BTreeMap;

/// A key's leaf hash on each side, if it has one there.
type BothSides<'a> = (Option<&'a Hash16>, Option<&'a Hash16>);

/// Exactly the keys whose leaves differ or exist on one side only, in key order.
/// Input order does not matter.
pub fn diff_leaves(a: &[MerkleLeaf], b: &[MerkleLeaf]) -> Vec<ItemKey> {
    let mut sides: BTreeMap<&ItemKey, BothSides> = BTreeMap::new();
    for leaf in a {
        sides.entry(&leaf.key).or_default().0 = Some(&leaf.hash);
    }
    for leaf in b {
        sides.entry(&leaf.key).or_default().1 = Some(&leaf.hash);
    }
    sides
        .into_iter()
        .filter(|(_, (x, y))| x != y)
        .map(|(k, _)| k.clone())
        .collect()
}
