//! The checker against histories whose answer is known: each bad one is a way a store
//! can break (stale read, lost write, two winners of one compare-and-set, a read that
//! goes back in time), each good one a legal overlap a naive checker would refuse.

use kv_checker::counter::check_counter;
use kv_checker::fencing::{check_grants, check_resource_log, FencingViolation, Grant};
use kv_checker::linearizable::check_with_budget;
use kv_checker::register::{Input, Output, Register};
use kv_checker::{check, check_per_key, Operation, Outcome, Verdict};

type Op = Operation<Input<u32>, Output<u32>>;

fn op(
    client: u64,
    invoked: u64,
    returned: u64,
    input: Input<u32>,
    out: Outcome<Output<u32>>,
) -> Op {
    Operation {
        client,
        invoked,
        returned,
        input,
        outcome: out,
    }
}
fn write(c: u64, i: u64, r: u64, v: u32) -> Op {
    op(c, i, r, Input::Write(v), Outcome::Ok(Output::Done))
}
fn read(c: u64, i: u64, r: u64, v: Option<u32>) -> Op {
    op(c, i, r, Input::Read, Outcome::Ok(Output::Value(v)))
}
fn cas(c: u64, i: u64, r: u64, expect: Option<u32>, new: u32, won: bool) -> Op {
    op(
        c,
        i,
        r,
        Input::CompareAndSet { expect, new },
        Outcome::Ok(Output::Swapped(won)),
    )
}

fn verdict(h: &[Op]) -> Verdict {
    check(&Register::new(), h)
}

fn is_violation(h: &[Op]) -> bool {
    matches!(verdict(h), Verdict::Violation { .. })
}

#[test]
fn a_read_after_an_acknowledged_write_that_misses_it_is_a_violation() {
    assert!(is_violation(&[write(1, 0, 10, 1), read(2, 20, 30, None)]));
}

#[test]
fn a_lost_write_is_a_violation() {
    assert!(is_violation(&[
        write(1, 0, 10, 1),
        write(1, 20, 30, 2),
        read(2, 40, 50, Some(1)),
    ]));
}

#[test]
fn two_winners_of_one_compare_and_set_are_a_violation() {
    assert!(is_violation(&[
        cas(1, 0, 10, None, 1, true),
        cas(2, 0, 10, None, 2, true),
    ]));
}

#[test]
fn reads_that_go_back_in_time_during_a_write_are_a_violation() {
    // Both reads overlap the write, but once one read saw it a later read may not miss it.
    assert!(is_violation(&[
        write(1, 0, 100, 1),
        read(2, 10, 20, Some(1)),
        read(3, 30, 40, None),
    ]));
}

#[test]
fn a_value_never_written_is_a_violation() {
    assert!(is_violation(&[
        write(1, 0, 10, 1),
        read(2, 20, 30, Some(7))
    ]));
}

#[test]
fn an_unknown_write_cannot_explain_a_read_that_ended_before_it_began() {
    let h = [
        read(2, 0, 10, Some(1)),
        op(1, 50, 0, Input::Write(1), Outcome::Unknown),
    ];
    assert!(is_violation(&h));
}

#[test]
fn a_failed_write_had_no_effect() {
    let failed = op(1, 0, 10, Input::Write(1), Outcome::Failed);
    assert_eq!(
        verdict(&[failed.clone(), read(2, 20, 30, None)]),
        Verdict::Linearizable
    );
    assert!(is_violation(&[failed, read(2, 20, 30, Some(1))]));
}

#[test]
fn reads_overlapping_a_write_may_see_either_value() {
    assert_eq!(
        verdict(&[
            write(1, 0, 10, 1),
            write(1, 20, 100, 2),
            read(2, 30, 40, Some(1)),
            read(3, 50, 60, Some(2)),
            read(2, 110, 120, Some(2)),
        ]),
        Verdict::Linearizable
    );
}

#[test]
fn an_unknown_write_may_land_late_or_never() {
    let unknown = op(1, 20, 0, Input::Write(2), Outcome::Unknown);
    let base = [write(1, 0, 10, 1), unknown];
    for later in [
        vec![read(2, 30, 40, Some(1)), read(2, 50, 60, Some(2))],
        vec![read(2, 30, 40, Some(1))],
        vec![read(2, 30, 40, Some(2))],
    ] {
        let h: Vec<Op> = base.iter().cloned().chain(later).collect();
        assert_eq!(verdict(&h), Verdict::Linearizable, "{h:?}");
    }
    // ...but once seen it cannot un-land.
    let h: Vec<Op> = base
        .iter()
        .cloned()
        .chain([read(2, 30, 40, Some(2)), read(2, 50, 60, Some(1))])
        .collect();
    assert!(is_violation(&h));
}

#[test]
fn one_winner_of_a_compare_and_set_is_fine() {
    assert_eq!(
        verdict(&[
            cas(1, 0, 10, None, 1, true),
            cas(2, 0, 10, None, 2, false),
            read(3, 20, 30, Some(1)),
        ]),
        Verdict::Linearizable
    );
}

#[test]
fn keys_are_checked_separately_and_the_bad_one_is_named() {
    let history = vec![
        ("a", write(1, 0, 10, 1)),
        ("b", write(1, 0, 10, 1)),
        ("a", read(2, 20, 30, Some(1))),
        ("b", read(2, 20, 30, None)),
    ];
    let bad = check_per_key(&Register::new(), history);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].key, "b");
}

#[test]
fn the_search_gives_up_instead_of_running_forever() {
    let h: Vec<Op> = (0..20).map(|i| write(i, 0, 100, i as u32)).collect();
    let mut h = h;
    h.push(read(99, 200, 300, Some(0)));
    assert!(matches!(
        check_with_budget(&Register::new(), &h, 5),
        Verdict::GaveUp { .. }
    ));
}

#[test]
fn counters_must_land_between_acknowledged_and_acknowledged_plus_unknown() {
    let inc = |delta: i64, outcome: Outcome<()>| Operation {
        client: 1,
        invoked: 0,
        returned: 1,
        input: delta,
        outcome,
    };
    let h = [
        inc(1, Outcome::Ok(())),
        inc(1, Outcome::Ok(())),
        inc(1, Outcome::Unknown),
        inc(5, Outcome::Failed),
    ];
    assert!(check_counter(&h, 2).is_ok());
    assert!(check_counter(&h, 3).is_ok());
    // A lost increment, a double count, and a failed one that landed.
    assert!(check_counter(&h, 1).is_err());
    assert!(check_counter(&h, 4).is_err());
    assert!(check_counter(&h, 8).is_err());
}

#[test]
fn fencing_tokens_must_be_unique_and_grow_in_real_time() {
    let g = |client, token, invoked, returned| Grant {
        client,
        token,
        invoked,
        returned,
    };
    assert!(check_grants(&[g(1, 1, 0, 10), g(2, 2, 20, 30), g(3, 3, 25, 26)]).is_ok());
    // Concurrent acquisitions may be granted in either order.
    assert!(check_grants(&[g(1, 5, 0, 10), g(2, 4, 5, 30)]).is_ok());
    assert_eq!(
        check_grants(&[g(1, 1, 0, 10), g(2, 1, 20, 30)]),
        Err(FencingViolation::DuplicateToken { token: 1 })
    );
    assert!(matches!(
        check_grants(&[g(1, 5, 0, 10), g(2, 4, 20, 30)]),
        Err(FencingViolation::TokenWentBack { .. })
    ));
    assert!(check_resource_log(&[(1, 1), (1, 1), (2, 2), (3, 1)]).is_ok());
    assert!(matches!(
        check_resource_log(&[(1, 1), (3, 2), (2, 1)]),
        Err(FencingViolation::StaleAccepted { at: 2, .. })
    ));
    assert_eq!(
        check_resource_log(&[(1, 1), (1, 2)]),
        Err(FencingViolation::SharedToken { token: 1 })
    );
}

#[test]
fn reads_whose_answer_was_lost_do_not_cost_the_search_anything() {
    // Sixty reads that never returned, all concurrent: kept in, each could be placed
    // anywhere or nowhere and the search would explode; they constrain nothing.
    let mut h: Vec<Op> = (0..60)
        .map(|i| op(i, 0, 0, Input::Read, Outcome::Unknown))
        .collect();
    h.push(write(100, 5, 10, 1));
    h.push(read(101, 20, 30, Some(1)));
    assert_eq!(
        check_with_budget(&Register::new(), &h, 100),
        Verdict::Linearizable
    );
}
