//! Configurations too large for every `cargo test` (minutes each), kept runnable:
//! `cargo test --workspace --test larger_configurations -- --ignored --nocapture`.
//! Their results are recorded in docs/consistency-model-check.md.

use kv_model::check::{run_with, Search};
use kv_model::scenario::{set_incr_then_gets, three_acceptors};
use kv_model::{Design, Op, PaxosModel};

fn assert_safe(model: PaxosModel) {
    let outcome = run_with(model, None, Search::DepthFirst);
    eprintln!("{}", outcome.summary());
    if let Some((name, path)) = outcome.violation {
        panic!("{name} violated:\n{path}");
    }
    assert!(
        outcome.all_acknowledged,
        "vacuous: no run acknowledged every command"
    );
}

#[test]
#[ignore = "minutes"]
fn fixed_design_set_incr_then_gets() {
    assert_safe(set_incr_then_gets(Design::FIXED));
}

#[test]
#[ignore = "minutes"]
fn fixed_design_five_acceptors() {
    assert_safe(PaxosModel {
        acceptors: 5,
        ..three_acceptors(
            Design::FIXED,
            vec![vec![Op::Incr], vec![Op::Incr, Op::Get]],
            2,
        )
    });
}

#[test]
#[ignore = "minutes"]
fn fixed_design_with_a_retry_after_timeout() {
    assert_safe(PaxosModel {
        max_attempts: 2,
        ..three_acceptors(
            Design::FIXED,
            vec![vec![Op::Incr], vec![Op::Incr, Op::Get]],
            2,
        )
    });
}
