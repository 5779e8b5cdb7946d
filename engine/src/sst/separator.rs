//! Short index keys. An index entry's key only has to lie between the last key of its
//! data block and the first key of the next, so the builder stores a short key there
//! (LevelDB's `FindShortestSeparator` / `FindShortSuccessor`), keeping the index small.

use crate::key::{append_internal_key, user_key, KIND_FOR_SEEK, MAX_SEQUENCE};

/// An internal key `s` with `last <= s < next` (both internal keys, `last < next`).
pub(crate) fn shortest_separator(last: &[u8], next: &[u8]) -> Vec<u8> {
    let (a, b) = (user_key(last), user_key(next));
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    if let (Some(&x), Some(&y)) = (a.get(common), b.get(common)) {
        if x < 0xff && x + 1 < y {
            return with_max_trailer(a.get(..common).unwrap_or_default(), x + 1);
        }
    }
    last.to_vec()
}

/// An internal key `s >= last` that is short.
pub(crate) fn short_successor(last: &[u8]) -> Vec<u8> {
    let a = user_key(last);
    match a.iter().position(|&x| x != 0xff) {
        Some(i) => with_max_trailer(
            a.get(..i).unwrap_or_default(),
            a.get(i).map_or(0, |x| x + 1),
        ),
        None => last.to_vec(),
    }
}

/// `prefix ++ [byte]` as an internal key that sorts before every entry of that user key.
fn with_max_trailer(prefix: &[u8], byte: u8) -> Vec<u8> {
    let mut user = prefix.to_vec();
    user.push(byte);
    let mut out = Vec::with_capacity(user.len() + crate::key::TRAILER_LEN);
    append_internal_key(&mut out, &user, MAX_SEQUENCE, KIND_FOR_SEEK);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{compare_internal_keys, make_internal_key, ValueKind};
    use proptest::prelude::*;
    use std::cmp::Ordering;

    fn ik(u: &[u8], seq: u64) -> Vec<u8> {
        make_internal_key(u, seq, ValueKind::Put)
    }

    #[test]
    fn shortens_when_user_keys_differ_enough() {
        let s = shortest_separator(&ik(b"abcdefg", 3), &ik(b"abzzz", 9));
        assert_eq!(user_key(&s), b"abd");
        let s = shortest_separator(&ik(b"abc", 3), &ik(b"abd", 9));
        assert_eq!(s, ik(b"abc", 3), "adjacent bytes: no room");
        let s = shortest_separator(&ik(b"k", 5), &ik(b"k", 4));
        assert_eq!(s, ik(b"k", 5), "same user key: keep");
        assert_eq!(
            user_key(&short_successor(&ik(b"\xff\xffab", 1))),
            b"\xff\xffb"
        );
    }

    proptest! {
        #[test]
        fn separator_lies_between(a in proptest::collection::vec(any::<u8>(), 0..6),
                                  b in proptest::collection::vec(any::<u8>(), 0..6),
                                  s1 in 0u64..100, s2 in 0u64..100) {
            let (x, y) = (ik(&a, s1), ik(&b, s2));
            let (lo, hi) = match compare_internal_keys(&x, &y) {
                Ordering::Less => (x, y),
                Ordering::Greater => (y, x),
                Ordering::Equal => return Ok(()),
            };
            let s = shortest_separator(&lo, &hi);
            prop_assert_ne!(compare_internal_keys(&s, &lo), Ordering::Less);
            prop_assert_eq!(compare_internal_keys(&s, &hi), Ordering::Less);
            let t = short_successor(&hi);
            prop_assert_ne!(compare_internal_keys(&t, &hi), Ordering::Less);
        }
    }
}
