//! Configurations too large for every `cargo test` (10 to 40 s each, a million states
//! or more), kept runnable:
//! `cargo test --workspace --test larger_configurations -- --ignored --nocapture`.
//! Their results are recorded in docs/consistency-model-check.md.

use kv_model::check::{assert_safe_with, Search};
use kv_model::scenario::{set_incr_then_gets, three_acceptors, two_incrs};
use kv_model::{Design, Op, PaxosModel};

/// Depth-first: only the path is kept in memory besides the visited fingerprints.
fn assert_safe(model: PaxosModel) {
    assert_safe_with(model, Search::DepthFirst);
}

#[test]
#[ignore = "about 1.5 million states"]
fn fixed_design_five_acceptors() {
    assert_safe(PaxosModel {
        acceptors: 5,
        ..two_incrs(Design::FIXED)
    });
}

#[test]
#[ignore = "about 0.9 million states"]
fn fixed_design_with_a_retry_after_timeout() {
    assert_safe(PaxosModel {
        max_attempts: 2,
        ..three_acceptors(Design::FIXED, vec![vec![Op::Incr], vec![Op::Incr]], 2)
    });
}

#[test]
#[ignore = "about 1.8 million states"]
fn fixed_design_set_incr_then_gets() {
    assert_safe(set_incr_then_gets(Design::FIXED));
}

#[test]
#[ignore = "millions of states"]
fn fixed_design_incr_and_cas_then_gets() {
    assert_safe(three_acceptors(
        Design::FIXED,
        vec![
            vec![Op::Incr, Op::Get],
            vec![
                Op::SetIfEq {
                    expected: 1,
                    new: 7,
                },
                Op::Get,
            ],
        ],
        2,
    ));
}
