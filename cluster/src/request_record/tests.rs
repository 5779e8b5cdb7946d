//! The request records' bound, expiry and encoding.

use super::*;
use crate::NodeId;
use proptest::prelude::*;

/// A version at `ms` Unix milliseconds.
fn at(ms: u64) -> Version {
    Version {
        ts: ms << 16,
        node: NodeId(1),
    }
}

fn new(id: &str, expire_at: i64, reply: &[u8]) -> NewRequest {
    NewRequest {
        id: Bytes::copy_from_slice(id.as_bytes()),
        expire_at,
        reply: Bytes::copy_from_slice(reply),
    }
}

fn ids(requests: &[RequestRecord]) -> Vec<String> {
    requests
        .iter()
        .map(|r| String::from_utf8_lossy(&r.id).into_owned())
        .collect()
}

#[test]
fn a_new_request_is_stamped_with_the_version_that_writes_it() {
    let kept = carried(&[], Some(new("a", 2000, b"r")), at(1000));
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].written_at, at(1000));
    assert_eq!(kept[0].reply, Bytes::from_static(b"r"));
}

#[test]
fn later_writes_carry_live_requests_and_drop_expired_ones() {
    let first = carried(&[], Some(new("a", 2000, b"1")), at(1000));
    let second = carried(&first, Some(new("b", 5000, b"2")), at(1500));
    assert_eq!(ids(&second), ["a", "b"]);
    // A write without a request of its own (a plain SET) keeps them...
    let third = carried(&second, None, at(1999));
    assert_eq!(third, second);
    // ... until they expire, judged at the writing version's time.
    let fourth = carried(&third, None, at(2000));
    assert_eq!(ids(&fourth), ["b"]);
    assert_eq!(fourth[0].written_at, at(1500), "carried, not re-stamped");
}

#[test]
fn past_the_bound_the_oldest_requests_are_forgotten() {
    let mut requests = Vec::new();
    for i in 0..MAX_REQUESTS_PER_KEY + 3 {
        requests = carried(
            &requests,
            Some(new(&format!("r{i}"), i64::MAX, b"ok")),
            at(1000 + i as u64),
        );
    }
    assert_eq!(requests.len(), MAX_REQUESTS_PER_KEY);
    assert_eq!(ids(&requests)[0], "r3");
    assert_eq!(
        ids(&requests).last().map(String::as_str),
        Some(format!("r{}", MAX_REQUESTS_PER_KEY + 2).as_str())
    );
}

#[test]
fn large_replies_evict_older_requests_but_the_newest_stays() {
    let big = vec![7u8; MAX_REPLY_BYTES_PER_KEY / 2 + 1];
    let one = carried(&[], Some(new("a", i64::MAX, &big)), at(1));
    let two = carried(&one, Some(new("b", i64::MAX, &big)), at(2));
    assert_eq!(
        ids(&two),
        ["b"],
        "two halves and a byte are over the budget"
    );
    let huge = vec![7u8; MAX_REPLY_BYTES_PER_KEY * 2];
    let three = carried(&two, Some(new("c", i64::MAX, &huge)), at(3));
    assert_eq!(ids(&three), ["c"]);
}

#[test]
fn a_request_id_recorded_again_replaces_its_old_record() {
    let first = carried(&[], Some(new("a", 10_000, b"old")), at(1));
    let again = carried(&first, Some(new("a", 20_000, b"new")), at(2));
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].reply, Bytes::from_static(b"new"));
    assert_eq!(find(&again, b"a", 0).map(|r| r.written_at), Some(at(2)));
}

#[test]
fn damaged_request_bytes_are_refused() {
    let requests = carried(&[], Some(new("id", 99, b"reply")), at(1));
    let mut bytes = Vec::new();
    encode(&requests, &mut bytes);
    for cut in 0..bytes.len() {
        assert!(
            decode(&Bytes::from(bytes[..cut].to_vec())).is_none(),
            "cut at {cut}"
        );
    }
    let (back, used) = decode(&Bytes::from(bytes.clone())).expect("whole");
    assert_eq!((back, used), (requests, bytes.len()));
}

proptest! {
    #[test]
    fn requests_round_trip_and_stay_within_the_bounds(
        writes in proptest::collection::vec(
            (0u8..24, 0i64..3000, proptest::collection::vec(any::<u8>(), 0..40_000), any::<bool>()),
            1..40,
        )
    ) {
        let mut requests = Vec::new();
        for (i, (id, expire_at, reply, has_request)) in writes.into_iter().enumerate() {
            let request = has_request.then(|| new(&format!("r{id}"), expire_at, &reply));
            requests = carried(&requests, request, at(i as u64 * 100));
            prop_assert!(requests.len() <= MAX_REQUESTS_PER_KEY);
            let bytes: usize = requests.iter().map(|r| r.reply.len()).sum();
            prop_assert!(requests.len() <= 1 || bytes <= MAX_REPLY_BYTES_PER_KEY);
            let mut seen: Vec<&Bytes> = requests.iter().map(|r| &r.id).collect();
            seen.sort();
            seen.dedup();
            prop_assert_eq!(seen.len(), requests.len(), "one record per request id");
            let mut out = Vec::new();
            encode(&requests, &mut out);
            let decoded = decode(&Bytes::from(out.clone())).map(|(r, n)| (r, n == out.len()));
            prop_assert_eq!(decoded, Some((requests.clone(), true)));
        }
    }
}
