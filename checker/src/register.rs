//! The model of one key holding a value or nothing: reads, blind writes and deletes,
//! and compare-and-set, as GET, SET, DEL and conditional SETs use them.

use crate::linearizable::Model;
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
