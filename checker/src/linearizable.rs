//! Linearizability of a history against a sequential model: Wing and Gong's search,
//! with Lowe's memoization of (operations placed, state) pairs, as Porcupine and
//! Knossos implement it.
//!
//! The history becomes a list of call and return events in time order. The search walks
//! it from the front: at a call it tries to place that operation next (the model must
//! accept its output), removes its call and return from the list and starts again from
//! the front; at a return whose operation is not placed yet, no order of what came
//! before works, so it undoes the last placement and tries the next candidate. A
//! (placed set, state) pair seen before is not explored twice, which makes most real
//! histories fast; the worst case stays exponential, so the search has a step budget
//! and says so when it gives up instead of hanging a test.
//!
//! Operations with an unknown outcome have no return event: they may take effect at
//! any time after their call, or never. Unknown operations with equal inputs are
//! interchangeable, so the search places them only in the order they were invoked (see
//! `twins`); without that, k unknown INCRs of one counter could be chosen in 2^k
//! subsets, and a partition leaves dozens.

use crate::history::{Operation, Outcome};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification.
pub trait Model {
    /// The state of the object.
    type State: Clone + Eq + Hash + Debug;
    /// What an operation asks (equal inputs are interchangeable when nobody saw their
    /// outputs).
    type Input: Debug + PartialEq;
    /// What an operation returns.
    type Output: Debug;
    /// The state before any operation.
    fn init(&self) -> Self::State;
    /// The state after `input` ran on `state` and returned `output`; `None` if it could
    /// not have returned that.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
    ) -> Option<Self::State>;
    /// The state after `input` ran on `state` with an output nobody saw.
    fn step_unseen(&self, state: &Self::State, input: &Self::Input) -> Self::State;
    /// Whether `input` can change the state. An operation that cannot and whose output
    /// nobody saw constrains nothing, so the search leaves it out (each one left in
    /// would multiply the states explored).
    fn may_change_state(&self, _input: &Self::Input) -> bool {
        true
    }
    /// A history with exactly the same verdict that the search explores faster, or
    /// `None` to check `history` as it is (crate::register merges values no operation
    /// can tell apart).
    fn simplified(
        &self,
        _history: &[Operation<Self::Input, Self::Output>],
    ) -> Option<Vec<Operation<Self::Input, Self::Output>>> {
        None
    }
}

/// What the search concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Some order consistent with real time and the model explains every operation.
    Linearizable,
    /// No order does. `explained` is the most operations any order could place before
    /// getting stuck; `stuck_at` describes an operation that could not be placed there.
    Violation {
        /// The longest explained prefix, in operations.
        explained: usize,
        /// The operations that count (with a known or unknown outcome).
        total: usize,
        /// Debug text of the operation whose return came before it could be placed.
        stuck_at: String,
    },
    /// The step budget ran out first: neither proven nor refuted.
    GaveUp {
        /// Steps taken.
        steps: u64,
    },
}

/// Steps before [`check`] gives up: enough for thousands of operations per key with
/// modest concurrency, small enough to end in seconds.
pub const DEFAULT_STEP_BUDGET: u64 = 20_000_000;

const NIL: usize = usize::MAX;

#[derive(Clone, Copy)]
struct Entry {
    op: usize,
    is_call: bool,
    /// For a call: the index of its return entry, `NIL` if its outcome is unknown.
    partner: usize,
    prev: usize,
    next: usize,
}

/// The event list, doubly linked so that placing an operation (lifting its two entries)
/// and undoing it (putting them back where they were) are O(1). Index 0 is the head.
struct Events {
    entries: Vec<Entry>,
}

impl Events {
    fn new<I, O>(ops: &[&Operation<I, O>]) -> Events {
        // (time, returns after calls at equal times, op): equal times count as
        // concurrent, the reading that can only accept more histories.
        let mut events: Vec<(u64, bool, usize)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            events.push((op.invoked, false, i));
            if matches!(op.outcome, Outcome::Ok(_)) {
                events.push((op.returned.max(op.invoked), true, i));
            }
        }
        events.sort_unstable();
        let mut entries = vec![Entry {
            op: NIL,
            is_call: false,
            partner: NIL,
            prev: NIL,
            next: NIL,
        }];
        let mut call_of = vec![NIL; ops.len()];
        for (_, is_return, op) in events {
            let at = entries.len();
            let prev = at - 1;
            entries[prev].next = at;
            entries.push(Entry {
                op,
                is_call: !is_return,
                partner: NIL,
                prev,
                next: NIL,
            });
            if is_return {
                entries[call_of[op]].partner = at;
            } else {
                call_of[op] = at;
            }
        }
        Events { entries }
    }

    fn first(&self) -> usize {
        self.entries[0].next
    }

    fn unlink(&mut self, at: usize) {
        let Entry { prev, next, .. } = self.entries[at];
        self.entries[prev].next = next;
        if next != NIL {
            self.entries[next].prev = prev;
        }
    }

    fn relink(&mut self, at: usize) {
        let Entry { prev, next, .. } = self.entries[at];
        self.entries[prev].next = at;
        if next != NIL {
            self.entries[next].prev = at;
        }
    }

    /// Removes a call and its return.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        let ret = self.entries[call].partner;
        if ret != NIL {
            self.unlink(ret);
        }
    }

    /// Undoes [`Events::lift`] (in reverse order, as dancing links require).
    fn unlift(&mut self, call: usize) {
        let ret = self.entries[call].partner;
        if ret != NIL {
            self.relink(ret);
        }
        self.relink(call);
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Placed(Vec<u64>);

impl Placed {
    fn new(n: usize) -> Placed {
        Placed(vec![0; n.div_ceil(64)])
    }
    fn flip(&mut self, i: usize) {
        self.0[i / 64] ^= 1 << (i % 64);
    }
    fn has(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
}

/// For each operation with an unknown outcome, the latest one invoked before it (by
/// time, then index, the order of [`Events`]) with the same input and an unknown
/// outcome; `NIL` for the first of its kind and for every other operation.
///
/// Why placing twins in invocation order loses no linearization: take one that places
/// a later-invoked twin B at point p and an earlier-invoked A later at q > p, or never.
/// Nobody saw either output and their inputs are equal, so giving A's place to B and B's
/// to A (or A B's place, leaving B out) changes no state; A may stand at p because it was
/// invoked before B, which was invoked before p.
fn twins<I: PartialEq, O>(ops: &[&Operation<I, O>]) -> Vec<usize> {
    let mut unknown: Vec<usize> = (0..ops.len())
        .filter(|&i| matches!(ops[i].outcome, Outcome::Unknown))
        .collect();
    unknown.sort_by_key(|&i| (ops[i].invoked, i));
    let mut twin = vec![NIL; ops.len()];
    // The last unknown of each distinct input so far (increments of 1 repeat; writes of
    // unique values do not, so this stays short where it is scanned often).
    let mut last_of_input: Vec<usize> = Vec::new();
    for i in unknown {
        match last_of_input
            .iter_mut()
            .find(|j| ops[**j].input == ops[i].input)
        {
            Some(j) => {
                twin[i] = *j;
                *j = i;
            }
            None => last_of_input.push(i),
        }
    }
    twin
}

/// Checks one object's history against `model` with [`DEFAULT_STEP_BUDGET`].
pub fn check<M: Model>(model: &M, history: &[Operation<M::Input, M::Output>]) -> Verdict {
    check_with_budget(model, history, DEFAULT_STEP_BUDGET)
}

/// Checks one object's history against `model`, giving up after `budget` steps.
pub fn check_with_budget<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    budget: u64,
) -> Verdict {
    let simplified = model.simplified(history);
    let history = simplified.as_deref().unwrap_or(history);
    // Failed operations had no effect, and unseen ones that change nothing are
    // invisible: neither constrains the order.
    let ops: Vec<&Operation<M::Input, M::Output>> = history
        .iter()
        .filter(|op| match op.outcome {
            Outcome::Ok(_) => true,
            Outcome::Failed => false,
            Outcome::Unknown => model.may_change_state(&op.input),
        })
        .collect();
    let twin = twins(&ops);
    let mut events = Events::new(&ops);
    let mut state = model.init();
    let mut placed = Placed::new(ops.len());
    let mut placed_count = 0;
    let mut seen: HashSet<(Placed, M::State)> = HashSet::new();
    let mut undo: Vec<(usize, M::State)> = Vec::new();
    let (mut best, mut stuck_at) = (0, String::new());
    let mut steps = 0u64;
    let mut at = events.first();
    // Reaching the end of the list means no return is left: every operation that
    // returned has been placed (unplaced calls left over have unknown outcomes).
    while at != NIL {
        steps += 1;
        if steps > budget {
            return Verdict::GaveUp { steps };
        }
        let entry = events.entries[at];
        let op = ops[entry.op];
        if entry.is_call {
            let next_state = match &op.outcome {
                Outcome::Ok(output) => model.step(&state, &op.input, output),
                // Its twin invoked before it goes first (it is not placed yet).
                _ if twin[entry.op] != NIL && !placed.has(twin[entry.op]) => None,
                _ => Some(model.step_unseen(&state, &op.input)),
            };
            if let Some(next_state) = next_state {
                placed.flip(entry.op);
                if seen.insert((placed.clone(), next_state.clone())) {
                    undo.push((at, std::mem::replace(&mut state, next_state)));
                    placed_count += 1;
                    events.lift(at);
                    at = events.first();
                    continue;
                }
                placed.flip(entry.op);
            }
            at = entry.next;
        } else {
            if placed_count >= best {
                best = placed_count;
                stuck_at = format!("{op:?}");
            }
            let Some((call, previous)) = undo.pop() else {
                return Verdict::Violation {
                    explained: best,
                    total: ops.len(),
                    stuck_at,
                };
            };
            state = previous;
            placed_count -= 1;
            placed.flip(events.entries[call].op);
            events.unlift(call);
            at = events.entries[call].next;
        }
    }
    Verdict::Linearizable
}

/// An operation on an object of model `M`.
pub type ModelOp<M> = Operation<<M as Model>::Input, <M as Model>::Output>;

/// A violation found by [`check_per_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVerdict<K> {
    /// The key.
    pub key: K,
    /// What the search said about it.
    pub verdict: Verdict,
}

/// Checks each key's operations on their own (linearizability is local: a history is
/// linearizable exactly when each object's is); returns every key that is not proven
/// linearizable, violations first.
pub fn check_per_key<K: Ord + Clone, M: Model>(
    model: &M,
    history: Vec<(K, ModelOp<M>)>,
) -> Vec<KeyVerdict<K>> {
    let mut by_key: BTreeMap<K, Vec<ModelOp<M>>> = BTreeMap::new();
    for (key, op) in history {
        by_key.entry(key).or_default().push(op);
    }
    let mut bad: Vec<KeyVerdict<K>> = by_key
        .into_iter()
        .map(|(key, ops)| KeyVerdict {
            verdict: check(model, &ops),
            key,
        })
        .filter(|k| k.verdict != Verdict::Linearizable)
        .collect();
    bad.sort_by_key(|k| matches!(k.verdict, Verdict::GaveUp { .. }));
    bad
}
