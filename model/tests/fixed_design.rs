//! The fixed design (repair copies a record only where its Accept would have been
//! taken) with the "already chosen" shortcut: every bounded configuration explored to
//! the end without a violation, and not vacuously (some run acknowledges everything).
//! docs/consistency-model-check.md, "Results".

use kv_model::check::assert_safe;
use kv_model::scenario::{incr_and_cas, two_incrs, write_and_two_reads};
use kv_model::{Design, Repair};

#[test]
fn two_incrs_are_linearizable() {
    assert_safe(two_incrs(Design::FIXED));
}

#[test]
fn incr_racing_a_cas_is_linearizable() {
    assert_safe(incr_and_cas(Design::FIXED));
}

/// Also the proof that the fixed repair is harmless: it reaches exactly the states
/// the protocol reaches without any repair (a repair equals a late duplicate Accept).
#[test]
fn reads_after_a_partial_write_are_linearizable_and_repair_adds_no_state() {
    let with_repair = assert_safe(write_and_two_reads(Design::FIXED));
    let without_repair = assert_safe(write_and_two_reads(Design {
        repair: Repair::Off,
        ..Design::FIXED
    }));
    assert_eq!(with_repair.unique_states, without_repair.unique_states);
}
