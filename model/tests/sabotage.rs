//! Each deliberate bug in the (fixed) protocol must be reported by the checker, which
//! shows the model and its properties can fail. docs/consistency-model-check.md.

use kv_model::check::assert_caught;
use kv_model::scenario::{two_incrs, two_incrs_with_retries, write_and_two_reads};
use kv_model::{Design, Sabotage};

#[test]
fn acceptor_not_checking_its_promise_is_caught() {
    assert_caught(two_incrs(
        Design::FIXED.sabotaged(Sabotage::AcceptIgnoresPromise),
    ));
}

#[test]
fn proposer_adopting_the_first_promise_is_caught() {
    assert_caught(write_and_two_reads(
        Design::FIXED.sabotaged(Sabotage::FirstPromiseWins),
    ));
}

#[test]
fn minority_quorum_is_caught() {
    assert_caught(two_incrs(Design::FIXED.sabotaged(Sabotage::MinorityQuorum)));
}

#[test]
fn read_skipping_phase_two_when_promises_differ_is_caught() {
    assert_caught(write_and_two_reads(
        Design::FIXED.sabotaged(Sabotage::ShortcutDespiteDifferentVersions),
    ));
}

#[test]
fn promise_lost_in_a_restart_is_caught() {
    assert_caught(two_incrs(
        Design::FIXED.sabotaged(Sabotage::VolatilePromise),
    ));
}

/// The retry of a refused Accept (kvd's coordinator/paxos.rs) without its guard: an
/// INCR whose value a minority took runs again, and a later round adopts both.
#[test]
fn retrying_a_partly_accepted_command_whatever_the_promises_carry_is_caught() {
    assert_caught(two_incrs_with_retries(
        Design::AS_IMPLEMENTED.sabotaged(Sabotage::RetryWhateverWasAccepted),
    ));
}

/// The adoption of a retry's own value (coordinator/paxos.rs `Own`) taken for any
/// record at or above its ballot: another INCR's value is answered as this one's.
#[test]
fn adopting_a_newer_record_as_ones_own_is_caught() {
    assert_caught(two_incrs_with_retries(
        Design::AS_IMPLEMENTED.sabotaged(Sabotage::AdoptAnyNewerRecord),
    ));
}
