//! The counter model against histories whose answer is known: each bad one is a way
//! consensus on a counter can break (an increment counted twice, one lost, a read that
//! misses an acknowledged increment or goes back), each good one a legal overlap.

use kv_checker::counter_register::{CounterRegister, Input, Output};
use kv_checker::linearizable::check_with_budget;
use kv_checker::{check, Operation, Outcome, Verdict};

type Op = Operation<Input, Output>;

fn incr(client: u64, invoked: u64, returned: u64, after: i64) -> Op {
    Operation {
        client,
        invoked,
        returned,
        input: Input::Increment(1),
        outcome: Outcome::Ok(Output::Counted(after)),
    }
}

fn incr_unknown(client: u64, invoked: u64) -> Op {
    Operation {
        client,
        invoked,
        returned: 0,
        input: Input::Increment(1),
        outcome: Outcome::Unknown,
    }
}

fn read(client: u64, invoked: u64, returned: u64, value: Option<i64>) -> Op {
    Operation {
        client,
        invoked,
        returned,
        input: Input::Read,
        outcome: Outcome::Ok(Output::Value(value)),
    }
}

fn is_violation(h: &[Op]) -> bool {
    matches!(check(&CounterRegister, h), Verdict::Violation { .. })
}

#[test]
fn concurrent_increments_may_return_in_either_order() {
    let h = [
        incr(1, 0, 100, 2),
        incr(2, 10, 50, 1),
        read(3, 120, 130, Some(2)),
    ];
    assert_eq!(check(&CounterRegister, &h), Verdict::Linearizable);
}

#[test]
fn two_increments_returning_the_same_value_are_a_violation() {
    // What a round that adopted a stale state would do: both applied to 0.
    assert!(is_violation(&[incr(1, 0, 10, 1), incr(2, 5, 15, 1)]));
}

#[test]
fn a_read_missing_an_acknowledged_increment_is_a_violation() {
    assert!(is_violation(&[
        incr(1, 0, 10, 1),
        incr(1, 20, 30, 2),
        read(2, 40, 50, Some(1)),
    ]));
    assert!(is_violation(&[incr(1, 0, 10, 1), read(2, 20, 30, None)]));
}

#[test]
fn a_read_that_goes_back_is_a_violation() {
    // Both reads overlap the second increment; once one saw it, a later one may not miss it.
    assert!(is_violation(&[
        incr(1, 0, 10, 1),
        incr(1, 20, 100, 2),
        read(2, 30, 40, Some(2)),
        read(3, 50, 60, Some(1)),
    ]));
}

#[test]
fn an_unknown_increment_counts_once_or_never() {
    let base = [incr(1, 0, 10, 1), incr_unknown(2, 20)];
    for later in [
        vec![read(3, 30, 40, Some(1))],
        vec![read(3, 30, 40, Some(2))],
        vec![read(3, 30, 40, Some(1)), incr(1, 50, 60, 3)],
        vec![incr(1, 50, 60, 2), read(3, 70, 80, Some(2))],
    ] {
        let h: Vec<Op> = base.iter().cloned().chain(later).collect();
        assert_eq!(check(&CounterRegister, &h), Verdict::Linearizable, "{h:?}");
    }
    // Counted twice, or counted before it was sent.
    let twice: Vec<Op> = base
        .iter()
        .cloned()
        .chain([read(3, 30, 40, Some(3))])
        .collect();
    assert!(is_violation(&twice));
    assert!(is_violation(&[
        incr(1, 0, 10, 1),
        read(3, 20, 30, Some(2)),
        incr_unknown(2, 40),
    ]));
}

#[test]
fn a_read_and_an_increment_must_agree_on_the_kind_of_answer() {
    let mismatched = Operation {
        client: 1,
        invoked: 0,
        returned: 10,
        input: Input::Read,
        outcome: Outcome::Ok(Output::Counted(1)),
    };
    assert!(is_violation(&[mismatched]));
}

#[test]
fn many_unknown_increments_between_reads_stay_within_the_step_budget() {
    // The shape a partition leaves: a minority side's increments time out (unknown), a
    // majority side keeps counting and reading. Every other unknown landed (just before
    // the next acknowledged one). Twenty-four unknowns could land in 2^24 subsets; the
    // budget must still settle it.
    let mut h: Vec<Op> = Vec::new();
    let mut value = 0;
    for i in 0..24u64 {
        h.push(incr_unknown(100 + i, i * 100));
        value += if i % 2 == 0 { 2 } else { 1 };
        h.push(incr(1, i * 100 + 10, i * 100 + 20, value));
        h.push(read(2, i * 100 + 30, i * 100 + 40, Some(value)));
    }
    assert_eq!(
        check_with_budget(&CounterRegister, &h, 2_000_000),
        Verdict::Linearizable
    );
}

#[test]
fn interchangeable_unknown_increments_are_tried_in_invocation_order_only() {
    // Forty unknown increments, all in flight together: which twenty landed does not
    // matter, only how many. Trying subsets would take 2^40 steps either way; counting
    // settles the legal history and refutes the illegal one (41 > 40 unknowns) quickly.
    let mut h: Vec<Op> = (0..40).map(|i| incr_unknown(i, i)).collect();
    h.push(read(99, 1000, 1010, Some(20)));
    assert_eq!(
        check_with_budget(&CounterRegister, &h, 100_000),
        Verdict::Linearizable
    );
    h.pop();
    h.push(read(99, 1000, 1010, Some(41)));
    assert!(matches!(
        check_with_budget(&CounterRegister, &h, 100_000),
        Verdict::Violation { .. }
    ));
}
