//! The single-key Paxos design exactly as written (repair copies any newer record, an
//! Accept equal to the record's version is answered Accepted, reads take the "already
//! chosen" shortcut) is NOT linearizable: the checker finds an acknowledged INCR that
//! a second INCR overwrites. The fix (repair respects promises) removes it.
//! docs/consistency-model-check.md, "Finding 1".

use kv_model::check::run;
use kv_model::scenario::two_incrs;
use kv_model::{property, Design, DuplicateAccept};

#[test]
fn repair_and_duplicate_accept_lose_an_acknowledged_incr() {
    // The shortcut is off: repair and the duplicate rule are enough.
    let design = Design {
        shortcut: false,
        ..Design::AS_SPECIFIED
    };
    let outcome = run(two_incrs(design));
    eprintln!("{}", outcome.summary());
    let Some((name, path)) = outcome.violation else {
        panic!(
            "the known counterexample was not found: {}",
            outcome.summary()
        );
    };
    eprintln!("{path}");
    assert_eq!(name, property::LINEARIZABLE);
    // The counterexample's key step: a repaired record answering a late Accept.
    assert!(path.contains("Repair"), "{path}");
}

#[test]
fn design_as_specified_is_caught() {
    let outcome = run(two_incrs(Design::AS_SPECIFIED));
    eprintln!("{}", outcome.summary());
    assert!(outcome.violation.is_some(), "{}", outcome.summary());
}

#[test]
fn repair_that_respects_promises_keeps_both_incrs() {
    let outcome = run(two_incrs(Design::FIXED));
    eprintln!("{}", outcome.summary());
    assert!(
        outcome.violation.is_none(),
        "{}",
        outcome.violation.map(|v| v.1).unwrap_or_default()
    );
    assert!(!outcome.truncated && outcome.all_acknowledged);
}

#[test]
fn duplicate_accept_checking_the_promise_also_keeps_both_incrs() {
    let design = Design {
        duplicate_accept: DuplicateAccept::AcceptedIfNotBelowPromise,
        shortcut: false,
        ..Design::AS_SPECIFIED
    };
    let outcome = run(two_incrs(design));
    eprintln!("{}", outcome.summary());
    assert!(
        outcome.violation.is_none(),
        "{}",
        outcome.violation.map(|v| v.1).unwrap_or_default()
    );
    assert!(!outcome.truncated && outcome.all_acknowledged);
}
