//! The model of one key holding a value or nothing: reads, blind writes and deletes,
//! and compare-and-set, as GET, SET, DEL and conditional SETs use them.

use crate::history::{Operation, Outcome};
use crate::linearizable::Model;
use std::collections::HashSet;
use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;

/// What a client asked of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<V> {
    /// GET.
    Read,
    /// SET (unconditional).
    Write(V),
    /// DEL.
    Delete,
    /// Set to `new` only if the key holds `expect` (`None`: absent).
    CompareAndSet {
        /// The value required.
        expect: Option<V>,
        /// The value written when it matches.
        new: V,
    },
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<V> {
    /// A read's value (`None`: absent).
    Value(Option<V>),
    /// A write or delete was acknowledged.
    Done,
    /// Whether a compare-and-set wrote.
    Swapped(bool),
}

/// A register of values of type `V`, initially absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Register<V>(PhantomData<V>);

impl<V> Register<V> {
    /// The model.
    pub fn new() -> Register<V> {
        Register(PhantomData)
    }
}

impl<V: Clone + Eq + Hash + Debug> Model for Register<V> {
    type State = Option<V>;
    type Input = Input<V>;
    type Output = Output<V>;

    fn init(&self) -> Option<V> {
        None
    }

    fn step(&self, state: &Option<V>, input: &Input<V>, output: &Output<V>) -> Option<Option<V>> {
        match (input, output) {
            (Input::Read, Output::Value(v)) => (v == state).then(|| state.clone()),
            (Input::Write(_) | Input::Delete, Output::Done) => Some(self.step_unseen(state, input)),
            (Input::CompareAndSet { expect, .. }, Output::Swapped(swapped)) => {
                (*swapped == (expect == state)).then(|| self.step_unseen(state, input))
            }
            // An output of the wrong kind for the input can never be explained.
            _ => None,
        }
    }

    fn may_change_state(&self, input: &Input<V>) -> bool {
        !matches!(input, Input::Read)
    }

    /// Values that no operation can tell apart are merged into one: a value never read
    /// back and never the `expect` of a compare-and-set (a SET whose reply came, or a
    /// write whose outcome is unknown, that everyone else overwrote unseen) is written
    /// as the first such value instead. Reads see only observed values or nothing, and
    /// a compare-and-set asks only whether the state equals an observed value, so every
    /// order explains the same outputs before and after, and the verdict is the same.
    /// It makes the unknown writes of distinct unseen values equal inputs, which the
    /// search treats as interchangeable (`twins`): a nemesis history with 265 unknown
    /// writes on one key took between 100 and 200 million steps without it.
    /// (Violation messages then name the merged value.)
    fn simplified(
        &self,
        history: &[Operation<Input<V>, Output<V>>],
    ) -> Option<Vec<Operation<Input<V>, Output<V>>>> {
        let mut observed: HashSet<&V> = HashSet::new();
        for op in history {
            if let Outcome::Ok(Output::Value(Some(v))) = &op.outcome {
                observed.insert(v);
            }
            if let Input::CompareAndSet {
                expect: Some(e), ..
            } = &op.input
            {
                observed.insert(e);
            }
        }
        let mut stand_in: Option<V> = None;
        let mut merged = history.to_vec();
        for op in &mut merged {
            if let Input::Write(v) | Input::CompareAndSet { new: v, .. } = &mut op.input {
                if !observed.contains(&*v) {
                    *v = stand_in.get_or_insert_with(|| v.clone()).clone();
                }
            }
        }
        Some(merged)
    }

    fn step_unseen(&self, state: &Option<V>, input: &Input<V>) -> Option<V> {
        match input {
            Input::Read => state.clone(),
            Input::Write(v) => Some(v.clone()),
            Input::Delete => None,
            Input::CompareAndSet { expect, new } if expect == state => Some(new.clone()),
            Input::CompareAndSet { .. } => state.clone(),
        }
    }
}
