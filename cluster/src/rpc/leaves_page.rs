//! Pages of a bucket's Merkle leaves (`MerkleLeaves`, docs/cluster-protocol.md): keys
//! are up to the record bound (crate::record_size), so one bucket's leaves may pass the
//! bus bound, and an answer above it would be dropped by the carrier, leaving the
//! partition's anti-entropy failing on that bucket for good. The replica answers the
//! leaves after the asker's last key, in (database, key) order, as many as fit; the
//! asker pages until no more follow.

use super::convert as cv;
use super::pb;
use crate::replica_api::{ItemKey, MerkleLeaf};

use prost::Message as _;

/// The page of `leaves` (one bucket's, any order) after `after`: in key order, at least
/// one leaf when any is left, and no more than fit in `bound` bytes of answer.
pub(crate) fn page(
    mut leaves: Vec<MerkleLeaf>,
    after: Option<&ItemKey>,
    bound: usize,
) -> pb::MerkleLeavesResponse {
    if let Some(after) = after {
        leaves.retain(|l| l.key > *after);
    }
    leaves.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    let mut answer = pb::MerkleLeavesResponse {
        leaves: Vec::new(),
        more: false,
    };
    // The field tag and length of `more` (two bytes) are counted up front.
    let mut bytes = 2;
    let mut rest = leaves.into_iter();
    for leaf in rest.by_ref() {
        let leaf = cv::leaf_to_pb(leaf);
        let len = leaf.encoded_len();
        // Field tag, the length's varint, the leaf.
        let framed = 1 + prost::length_delimiter_len(len) + len;
        if !answer.leaves.is_empty() && bytes + framed > bound {
            answer.more = true;
            break;
        }
        bytes += framed;
        answer.leaves.push(leaf);
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn leaf(db: u32, key: &str, len: usize) -> MerkleLeaf {
        let mut name = key.as_bytes().to_vec();
        name.resize(len.max(name.len()), b'.');
        MerkleLeaf {
            key: ItemKey {
                db,
                key: Bytes::from(name),
            },
            hash: [db as u8; 16],
        }
    }

    /// Pages `leaves` as an asker does, until `more` is false.
    fn all_pages(leaves: &[MerkleLeaf], bound: usize) -> Vec<pb::MerkleLeavesResponse> {
        let mut pages: Vec<pb::MerkleLeavesResponse> = Vec::new();
        loop {
            let after = pages
                .last()
                .and_then(|p| p.leaves.last())
                .map(|l| cv::key_from_pb(l.key.clone()).expect("a key"));
            let answer = page(leaves.to_vec(), after.as_ref(), bound);
            let more = answer.more;
            pages.push(answer);
            if !more {
                return pages;
            }
            assert!(pages.len() <= leaves.len(), "paging makes no progress");
        }
    }

    #[test]
    fn pages_stay_under_the_bound_and_hold_every_leaf_once_in_key_order() {
        // Out of order, two databases, keys of 1 to 3000 bytes.
        let leaves: Vec<MerkleLeaf> = (0..40)
            .rev()
            .map(|i| leaf(i % 2, &format!("k{i:02}"), (i as usize * 77) % 3000))
            .collect();
        let bound = 16 << 10;
        let pages = all_pages(&leaves, bound);
        assert!(
            pages.len() > 2,
            "{} pages: the test needs several",
            pages.len()
        );
        let mut got = Vec::new();
        for p in &pages {
            assert!(p.encoded_len() <= bound, "{} > {bound}", p.encoded_len());
            got.extend(
                p.leaves
                    .iter()
                    .cloned()
                    .map(|l| cv::leaf_from_pb(l).unwrap()),
            );
        }
        let mut want = leaves.clone();
        want.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(got, want);
    }

    #[test]
    fn a_leaf_larger_than_the_bound_is_a_page_of_its_own() {
        let leaves = vec![leaf(0, "a", 100), leaf(0, "b", 5000), leaf(0, "c", 100)];
        let pages = all_pages(&leaves, 1000);
        let sizes: Vec<usize> = pages.iter().map(|p| p.leaves.len()).collect();
        assert_eq!(sizes, [1, 1, 1]);
        assert!(!pages[2].more);
    }

    #[test]
    fn a_small_bucket_is_one_page_and_an_empty_one_says_no_more() {
        let leaves = vec![leaf(0, "a", 1), leaf(1, "a", 1)];
        let answer = page(leaves.clone(), None, 16 << 20);
        assert_eq!(answer.leaves.len(), 2);
        assert!(!answer.more);
        let rest = page(leaves, Some(&leaf(1, "a", 1).key), 16 << 20);
        assert!(rest.leaves.is_empty() && !rest.more);
    }
}
