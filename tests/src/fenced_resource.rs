//! A resource guarded by fencing tokens, as a storage service that takes a lock's token
//! with every write does (docs/versions-and-locks.md, "Locks"): it refuses a write whose
//! token is lower than the highest it accepted, so a holder whose lease ran out while it
//! was paused cannot overwrite the work of the holder after it. Tests keep its log for
//! `kv_checker::fencing::check_resource_log` and count the refusals (proof that stale
//! holders really came back).

/// A write the resource refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// When (the test's clock).
    pub at: u64,
    /// The stale token.
    pub token: u64,
    /// The highest token accepted before it.
    pub highest: u64,
}

/// The resource: what it accepted, in order, and what it refused.
#[derive(Debug, Default, Clone)]
pub struct FencedResource {
    /// Accepted writes as `(token, client)`, in the order accepted.
    pub accepted: Vec<(u64, u64)>,
    /// Refused writes.
    pub refused: Vec<Refusal>,
}

impl FencedResource {
    /// A write by `client` under `token` at time `at`: accepted (true) unless a higher
    /// token was accepted before. An equal token is the same holder writing again.
    pub fn write(&mut self, token: u64, client: u64, at: u64) -> bool {
        let highest = self.accepted.last().map_or(0, |&(t, _)| t);
        if token < highest {
            self.refused.push(Refusal { at, token, highest });
            return false;
        }
        self.accepted.push((token, client));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lower_token_is_refused_and_an_equal_or_higher_one_accepted() {
        let mut r = FencedResource::default();
        assert!(r.write(5, 1, 0));
        assert!(r.write(5, 1, 1));
        assert!(r.write(9, 2, 2));
        assert!(!r.write(5, 1, 3));
        assert_eq!(r.accepted, vec![(5, 1), (5, 1), (9, 2)]);
        assert_eq!(
            r.refused,
            vec![Refusal {
                at: 3,
                token: 5,
                highest: 9
            }]
        );
    }
}
