//! Finding 2 (docs/consistency-model-check.md): with repair as designed (a newer record
//! is copied whatever the acceptor promised), the "already chosen" read shortcut can
//! return a value that no quorum chose, and a later round discards it. Fixing only the
//! duplicate-Accept rule does not help; repair that respects promises does.
//!
//! The shortest counterexample is 20 steps deep, too deep for a breadth-first search
//! within the test budget, so it is replayed step by step here (every step must be
//! enabled in the model), and `checker_finds_it` lets a depth-first search find one
//! on its own.

use kv_model::ballot::Ballot;
use kv_model::check::{run_with, Search};
use kv_model::message::Msg;
use kv_model::scenario::set_incr_then_gets;
use kv_model::value::{OpTag, Value};
use kv_model::{property, Action, Design, DuplicateAccept, PaxosModel, State};
use stateright::Model;

/// The design with the duplicate-Accept rule fixed, so only the shortcut is at fault.
const DUPLICATE_RULE_FIXED: Design = Design {
    duplicate_accept: DuplicateAccept::AcceptedIfNotBelowPromise,
    ..Design::AS_SPECIFIED
};

const A: u8 = 0;
const B: u8 = 1;
const C: u8 = 2;

fn ballot(counter: u8, proposer: u8) -> Ballot {
    Ballot { counter, proposer }
}

fn prepare(acceptor: u8, b: Ballot) -> Action {
    Action::Deliver {
        acceptor,
        msg: Msg::Prepare { ballot: b },
        answer_lost: false,
    }
}

fn accept(acceptor: u8, b: Ballot, data: u8, writer: u8) -> Action {
    let tag = OpTag {
        client: writer,
        op: 0,
        attempt: 0,
    };
    Action::Deliver {
        acceptor,
        msg: Msg::Accept {
            ballot: b,
            value: Value::default().written(tag, Some(data)),
        },
        answer_lost: false,
    }
}

/// c0 runs SET 5 then GET, c1 runs INCR then GET; both writes time out half done.
fn counterexample() -> Vec<Action> {
    let (set, incr) = (ballot(1, 1), ballot(1, 2));
    let (get0, get1) = (ballot(2, 1), ballot(2, 2));
    vec![
        Action::Invoke(0),                 // c0: SET 5 at b1.1
        Action::Invoke(1),                 // c1: INCR at b1.2
        prepare(A, set),                   //
        prepare(B, set),                   // c0 has Q promises (absent): Accept(b1.1, 5)
        prepare(B, incr),                  //
        prepare(C, incr),                  // c1 has Q promises (absent): Accept(b1.2, 1)
        accept(A, set, 5, 0),              // only A takes SET 5
        accept(C, incr, 1, 1),             // only C takes INCR's 1
        Action::Timeout(0),                // SET 5: outcome unknown
        Action::Timeout(1),                // INCR: outcome unknown
        Action::Repair { from: A, to: B }, // B promised b1.2 but stores (b1.1, 5)
        Action::Invoke(0),                 // c0: GET at b2.1
        prepare(A, get0),                  //
        prepare(B, get0),                  // A and B both hold version b1.1: shortcut, GET -> "5"
        Action::Invoke(1),                 // c1: GET at b2.2, after c0's GET returned
        prepare(B, get1),                  //
        prepare(C, get1),                  // highest is C's (b1.2, 1): re-accept it at b2.2
        accept(B, get1, 1, 1),             //
        accept(C, get1, 1, 1),             // GET -> "1": the "5" that was read is gone
    ]
}

/// Plays `actions`, each of which must be enabled; returns the last state, or the
/// index of the first action the model does not allow.
fn replay(model: &PaxosModel, actions: &[Action]) -> Result<State, usize> {
    let mut state = model.init_states().remove(0);
    for (i, action) in actions.iter().enumerate() {
        let mut enabled = Vec::new();
        model.actions(&state, &mut enabled);
        if !enabled.contains(action) {
            return Err(i);
        }
        state = model.next_state(&state, action.clone()).ok_or(i)?;
    }
    Ok(state)
}

#[test]
fn repair_and_shortcut_return_a_read_that_a_later_round_discards() {
    let model = set_incr_then_gets(DUPLICATE_RULE_FIXED);
    let end = replay(&model, &counterexample())
        .unwrap_or_else(|i| panic!("step {} is not enabled", i + 1));
    let reads: Vec<_> = end.reads.iter().map(|v| v.data).collect();
    assert_eq!(reads, vec![Some(5), Some(1)]);
    for p in model.properties() {
        if p.name == property::LINEARIZABLE || p.name == property::NO_READ_DISCARDED {
            assert!(
                !(p.condition)(&model, &end),
                "{} should be violated",
                p.name
            );
        }
    }
}

#[test]
fn repair_that_respects_promises_refuses_the_copy() {
    let model = set_incr_then_gets(Design::FIXED);
    let repair_step = counterexample()
        .iter()
        .position(|a| matches!(a, Action::Repair { .. }))
        .expect("the counterexample repairs");
    assert_eq!(replay(&model, &counterexample()), Err(repair_step));
}

/// Depth-first (breadth-first would hold too many states to reach depth 20): finds a
/// longer path to the same violation after about 920,000 states, about 11 s.
#[test]
fn checker_finds_it() {
    let outcome = run_with(
        set_incr_then_gets(DUPLICATE_RULE_FIXED),
        None,
        Search::DepthFirst,
    );
    eprintln!("{}", outcome.summary());
    let Some((_, path)) = outcome.violation else {
        panic!("not found: {}", outcome.summary());
    };
    eprintln!("{path}");
}
