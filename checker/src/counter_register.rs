//! The model of one key used as a counter: INCR/INCRBY add to it and return the new
//! value, GET reads it (absent until the first increment). Checked with [`crate::check`],
//! this is stronger than [`crate::counter::check_counter`]'s final-value bounds: every
//! increment's reply and every read must fit one order (no two increments return the
//! same value, a read never misses an increment acknowledged before it began, values
//! never go back).

use crate::linearizable::Model;

/// What a client asked of the counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// GET.
    Read,
    /// INCRBY by this delta (INCR: 1).
    Increment(i64),
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A read's value (`None`: the key is absent).
    Value(Option<i64>),
    /// The value after the increment.
    Counted(i64),
}

/// A counter key, initially absent (an increment of an absent key starts from 0, as
/// INCR does).
#[derive(Debug, Clone, Copy, Default)]
pub struct CounterRegister;

impl Model for CounterRegister {
    type State = Option<i64>;
    type Input = Input;
    type Output = Output;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(&self, state: &Option<i64>, input: &Input, output: &Output) -> Option<Option<i64>> {
        match (input, output) {
            (Input::Read, Output::Value(v)) => (v == state).then_some(*state),
            (Input::Increment(_), Output::Counted(after)) => {
                let next = self.step_unseen(state, input);
                (next == Some(*after)).then_some(next)
            }
            // An output of the wrong kind for the input can never be explained.
            _ => None,
        }
    }

    fn step_unseen(&self, state: &Option<i64>, input: &Input) -> Option<i64> {
        match input {
            Input::Read => *state,
            Input::Increment(delta) => Some(state.unwrap_or(0).saturating_add(*delta)),
        }
    }

    fn may_change_state(&self, input: &Input) -> bool {
        matches!(input, Input::Increment(_))
    }
}
