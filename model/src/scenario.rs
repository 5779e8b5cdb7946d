//! The configurations the tests and docs/consistency-model-check.md use, in one place.

use crate::design::Design;
use crate::model::PaxosModel;
use crate::operation::Op;

/// N = 3 acceptors, no retries after a timeout, ballot counters up to `max_counter`.
pub fn three_acceptors(design: Design, scripts: Vec<Vec<Op>>, max_counter: u8) -> PaxosModel {
    PaxosModel {
        acceptors: 3,
        scripts,
        design,
        max_counter,
        max_attempts: 1,
    }
}

/// Two clients, one INCR each, one round each: the smallest race of two writers.
pub fn two_incrs(design: Design) -> PaxosModel {
    three_acceptors(design, vec![vec![Op::Incr], vec![Op::Incr]], 1)
}

/// Two INCRs with a second ballot each: room for a round whose Accept was refused to
/// be retried by the same invocation (`Design::retry_partial_accepts`).
pub fn two_incrs_with_retries(design: Design) -> PaxosModel {
    three_acceptors(design, vec![vec![Op::Incr], vec![Op::Incr]], 2)
}

/// A writer and a client reading twice (two rounds): catches reads that skip phase 2.
pub fn write_and_two_reads(design: Design) -> PaxosModel {
    three_acceptors(design, vec![vec![Op::Set(5)], vec![Op::Get, Op::Get]], 2)
}

/// INCR racing SET IFEQ 1 -> 7: whether the CAS writes depends on the order.
pub fn incr_and_cas(design: Design) -> PaxosModel {
    three_acceptors(
        design,
        vec![
            vec![Op::Incr],
            vec![Op::SetIfEq {
                expected: 1,
                new: 7,
            }],
        ],
        1,
    )
}

/// SET then GET, and INCR then GET: the scripts of the repair-and-shortcut
/// counterexample (both writers time out; the reads tell the values apart).
pub fn set_incr_then_gets(design: Design) -> PaxosModel {
    three_acceptors(
        design,
        vec![vec![Op::Set(5), Op::Get], vec![Op::Incr, Op::Get]],
        2,
    )
}
