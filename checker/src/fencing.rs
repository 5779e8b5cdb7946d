//! Locks with fencing tokens (Kleppmann's rule, and etcd's Jepsen lesson: a lease alone
//! cannot stop a paused holder; the resource must refuse stale tokens). Two checks:
//! the tokens the lock service granted, and what the guarded resource accepted.

use std::collections::HashMap;

/// One acknowledged acquisition of the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Who got it.
    pub client: u64,
    /// The fencing token granted.
    pub token: u64,
    /// When the acquire was invoked.
    pub invoked: u64,
    /// When the grant arrived.
    pub returned: u64,
}

/// A broken fencing guarantee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FencingViolation {
    /// Two grants carry the same token.
    DuplicateToken {
        /// The token.
        token: u64,
    },
    /// A grant that began after another had returned got a token not greater than it.
    TokenWentBack {
        /// The earlier grant.
        earlier: Grant,
        /// The later one.
        later: Grant,
    },
    /// The resource accepted a write with a smaller token after a larger one.
    StaleAccepted {
        /// Position in the resource's log.
        at: usize,
        /// The token accepted there.
        token: u64,
        /// The largest token accepted before it.
        after: u64,
    },
    /// Two clients wrote to the resource under the same token.
    SharedToken {
        /// The token.
        token: u64,
    },
}

impl std::fmt::Display for FencingViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FencingViolation::DuplicateToken { token } => {
                write!(f, "fencing token {token} was granted twice")
            }
            FencingViolation::TokenWentBack { earlier, later } => write!(
                f,
                "grant {later:?} began after grant {earlier:?} returned but its token is not larger"
            ),
            FencingViolation::StaleAccepted { at, token, after } => write!(
                f,
                "the resource accepted token {token} at entry {at} after token {after}"
            ),
            FencingViolation::SharedToken { token } => {
                write!(f, "two clients wrote to the resource under token {token}")
            }
        }
    }
}

impl std::error::Error for FencingViolation {}

/// Tokens are unique and grow in real time: a grant that was invoked after another
/// returned has a larger token.
pub fn check_grants(grants: &[Grant]) -> Result<(), FencingViolation> {
    let mut by_token: Vec<&Grant> = grants.iter().collect();
    by_token.sort_by_key(|g| g.token);
    if let Some(w) = by_token.windows(2).find(|w| w[0].token == w[1].token) {
        return Err(FencingViolation::DuplicateToken { token: w[0].token });
    }
    // Walk grants by invocation; `done` holds those that returned before, and the one
    // among them with the largest token is the bound the next must exceed.
    let mut by_return: Vec<&Grant> = grants.iter().collect();
    by_return.sort_by_key(|g| g.returned);
    let mut by_invoke: Vec<&Grant> = grants.iter().collect();
    by_invoke.sort_by_key(|g| g.invoked);
    let mut finished = by_return.iter().peekable();
    let mut max_before: Option<&Grant> = None;
    for later in by_invoke {
        while let Some(g) = finished.next_if(|g| g.returned < later.invoked) {
            if max_before.is_none_or(|m| g.token > m.token) {
                max_before = Some(g);
            }
        }
        if let Some(earlier) = max_before {
            if later.token <= earlier.token {
                return Err(FencingViolation::TokenWentBack {
                    earlier: *earlier,
                    later: *later,
                });
            }
        }
    }
    Ok(())
}

/// The guarded resource's log of accepted writes, `(token, client)` in the order it
/// accepted them: tokens never go back, and one token belongs to one client.
pub fn check_resource_log(log: &[(u64, u64)]) -> Result<(), FencingViolation> {
    let mut owner: HashMap<u64, u64> = HashMap::new();
    let mut max = 0;
    for (at, &(token, client)) in log.iter().enumerate() {
        if token < max {
            return Err(FencingViolation::StaleAccepted {
                at,
                token,
                after: max,
            });
        }
        max = token;
        if *owner.entry(token).or_insert(client) != client {
            return Err(FencingViolation::SharedToken { token });
        }
    }
    Ok(())
}
