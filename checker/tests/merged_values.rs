//! The register model merges values no operation can tell apart before the search
//! (`Register::simplified`). That must never change a verdict: random histories, legal
//! or not, get the same answer with and without the merge. And it is what keeps many
//! unknown writes of values nobody saw cheap.

use kv_checker::linearizable::check_with_budget;
use kv_checker::register::{Input, Output, Register};
use kv_checker::{Model, Operation, Outcome, Verdict};
use proptest::prelude::*;

type Op = Operation<Input<u32>, Output<u32>>;

/// The register model without the merge.
struct Unmerged(Register<u32>);

impl Model for Unmerged {
    type State = Option<u32>;
    type Input = Input<u32>;
    type Output = Output<u32>;
    fn init(&self) -> Option<u32> {
        self.0.init()
    }
    fn step(
        &self,
        state: &Option<u32>,
        input: &Input<u32>,
        output: &Output<u32>,
    ) -> Option<Option<u32>> {
        self.0.step(state, input, output)
    }
    fn step_unseen(&self, state: &Option<u32>, input: &Input<u32>) -> Option<u32> {
        self.0.step_unseen(state, input)
    }
    fn may_change_state(&self, input: &Input<u32>) -> bool {
        self.0.may_change_state(input)
    }
}

/// Any operation with any answer: most such histories are not linearizable, which is
/// the point (the merge must not explain what the unmerged search cannot).
fn any_op() -> impl Strategy<Value = Op> {
    let value = 0u32..5;
    let input = prop_oneof![
        Just(Input::Read),
        value.clone().prop_map(Input::Write),
        Just(Input::Delete),
        (prop::option::of(value.clone()), value.clone())
            .prop_map(|(expect, new)| Input::CompareAndSet { expect, new }),
    ];
    let output = prop_oneof![
        prop::option::of(value).prop_map(Output::Value),
        Just(Output::Done),
        any::<bool>().prop_map(Output::Swapped),
    ];
    let outcome = prop_oneof![
        6 => output.prop_map(Outcome::Ok),
        1 => Just(Outcome::Failed),
        2 => Just(Outcome::Unknown),
    ];
    (0u64..4, 0u64..60, 0u64..30, input, outcome).prop_map(
        |(client, invoked, length, input, outcome)| Operation {
            client,
            invoked,
            returned: invoked + length,
            input,
            outcome,
        },
    )
}

fn legal(v: &Verdict) -> bool {
    matches!(v, Verdict::Linearizable)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn merging_unseen_values_never_changes_the_verdict(h in prop::collection::vec(any_op(), 1..9)) {
        let merged = check_with_budget(&Register::new(), &h, 1_000_000);
        let unmerged = check_with_budget(&Unmerged(Register::new()), &h, 1_000_000);
        let gave_up = |v: &Verdict| matches!(v, Verdict::GaveUp { .. });
        prop_assert!(!gave_up(&merged), "merged: {:?}", merged);
        prop_assert!(!gave_up(&unmerged), "unmerged: {:?}", unmerged);
        prop_assert_eq!(legal(&merged), legal(&unmerged), "merged {:?}, unmerged {:?}", merged, unmerged);
    }
}

/// The shape a killed coordinator leaves on a register: forty writes of distinct values
/// nobody read back, all unknown and in flight together, around acknowledged writes,
/// reads and compare-and-sets. Unmerged, each could have landed or not (2^40 subsets);
/// merged, they are interchangeable and only how many landed matters.
#[test]
fn unknown_writes_of_values_nobody_saw_cost_little() {
    let unknown = |i: u64| Operation {
        client: 100 + i,
        invoked: i,
        returned: 0,
        input: Input::Write(1_000 + i as u32),
        outcome: Outcome::Unknown,
    };
    let ok = |client: u64, invoked: u64, input: Input<u32>, output: Output<u32>| Operation {
        client,
        invoked,
        returned: invoked + 5,
        input,
        outcome: Outcome::Ok(output),
    };
    let mut h: Vec<Op> = (0..40).map(unknown).collect();
    h.push(ok(1, 100, Input::Write(7), Output::Done));
    h.push(ok(2, 110, Input::Read, Output::Value(Some(7))));
    // Lost: some unknown write landed after the SET of 7.
    h.push(ok(
        3,
        120,
        Input::CompareAndSet {
            expect: Some(7),
            new: 8,
        },
        Output::Swapped(false),
    ));
    h.push(ok(4, 130, Input::Delete, Output::Done));
    h.push(ok(5, 140, Input::Read, Output::Value(None)));
    assert_eq!(
        check_with_budget(&Register::new(), &h, 100_000),
        Verdict::Linearizable
    );
    // A read of a value nobody wrote: refuting it means trying every way the unknown
    // writes could have landed. Merged, that is 41 ways; unmerged, the budget runs out.
    h.push(ok(6, 150, Input::Read, Output::Value(Some(9))));
    assert!(matches!(
        check_with_budget(&Register::new(), &h, 100_000),
        Verdict::Violation { .. }
    ));
    assert!(matches!(
        check_with_budget(&Unmerged(Register::new()), &h, 100_000),
        Verdict::GaveUp { .. }
    ));
}
