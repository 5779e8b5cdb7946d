//! The single-key Paxos design exactly as written (repair copies any newer record, an
//! Accept equal to the record's version is answered Accepted, reads take the "already
//! chosen" shortcut) is NOT linearizable: the checker finds an acknowledged INCR that
//! a second INCR overwrites. The fix (repair respects promises) removes it.
//! docs/consistency-model-check.md, "Finding 1".

use kv_model::check::{assert_caught, assert_safe};
use kv_model::scenario::two_incrs;
use kv_model::{property, Design, DuplicateAccept};

#[test]
fn repair_and_duplicate_accept_lose_an_acknowledged_incr() {
    // The shortcut is off: repair and the duplicate rule are enough.
    let (name, path) = assert_caught(two_incrs(Design {
        shortcut: false,
        ..Design::AS_SPECIFIED
    }));
    assert_eq!(name, property::LINEARIZABLE);
    // The counterexample's key step: a repaired record answering a late Accept.
    assert!(path.contains("Repair"), "{path}");
}

#[test]
fn design_as_specified_is_caught() {
    assert_caught(two_incrs(Design::AS_SPECIFIED));
}

#[test]
fn repair_that_respects_promises_keeps_both_incrs() {
    assert_safe(two_incrs(Design::FIXED));
}

#[test]
fn duplicate_accept_checking_the_promise_also_keeps_both_incrs() {
    assert_safe(two_incrs(Design {
        duplicate_accept: DuplicateAccept::AcceptedIfNotBelowPromise,
        shortcut: false,
        ..Design::AS_SPECIFIED
    }));
}
