//! Property tests: a history made from a real sequential run, with each operation's
//! interval stretched around its point in that run, is always linearizable; the same
//! history with one read's answer changed to a value never written never is.

use kv_checker::register::{Input, Output, Register};
use kv_checker::{check, Model, Operation, Outcome, Verdict};
use proptest::prelude::*;

type Op = Operation<Input<u32>, Output<u32>>;

#[derive(Debug, Clone)]
struct Planned {
    kind: u8,
    value: u32,
    client: u64,
    before: u64,
    after: u64,
    unknown: bool,
}

fn planned() -> impl Strategy<Value = Planned> {
    (
        0u8..4,
        0u32..4,
        0u64..4,
        0u64..30,
        0u64..30,
        prop::bool::weighted(0.1),
    )
        .prop_map(|(kind, value, client, before, after, unknown)| Planned {
            kind,
            value,
            client,
            before,
            after,
            unknown,
        })
}

/// Runs the plan sequentially (operation i takes effect at time 10 * i) and stretches
/// each interval by the planned slack.
fn history(plan: &[Planned]) -> Vec<Op> {
    let model = Register::new();
    let mut state = model.init();
    let mut ops = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        // 10 apart with up to 30 of slack each side: neighbours overlap.
        let at = 10 * (i as u64 + 3);
        let input = match p.kind {
            0 => Input::Read,
            1 => Input::Write(p.value),
            2 => Input::Delete,
            _ => Input::CompareAndSet {
                expect: Some(p.value),
                new: p.value + 1,
            },
        };
        let output = match &input {
            Input::Read => Output::Value(state),
            Input::Write(_) | Input::Delete => Output::Done,
            Input::CompareAndSet { expect, .. } => Output::Swapped(*expect == state),
        };
        state = model.step_unseen(&state, &input);
        // An unknown outcome is only honest for an operation that did take effect
        // here (it may have): reads carry no effect, so they keep their answer.
        let outcome = if p.unknown && !matches!(input, Input::Read) {
            Outcome::Unknown
        } else {
            Outcome::Ok(output)
        };
        ops.push(Operation {
            client: p.client,
            invoked: at - p.before,
            returned: at + p.after,
            input,
            outcome,
        });
    }
    ops
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn histories_of_a_sequential_run_are_linearizable(plan in prop::collection::vec(planned(), 1..40)) {
        let h = history(&plan);
        prop_assert_eq!(check(&Register::new(), &h), Verdict::Linearizable);
    }

    #[test]
    fn a_read_of_a_value_never_written_is_always_caught(
        plan in prop::collection::vec(planned(), 1..40),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut h = history(&plan);
        let reads: Vec<usize> = h
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o.outcome, Outcome::Ok(Output::Value(_))))
            .map(|(i, _)| i)
            .collect();
        prop_assume!(!reads.is_empty());
        let i = reads[pick.index(reads.len())];
        h[i].outcome = Outcome::Ok(Output::Value(Some(1_000)));
        let is_violation = matches!(check(&Register::new(), &h), Verdict::Violation { .. });
        prop_assert!(is_violation);
    }
}
