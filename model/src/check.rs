//! Runs the checker on a configuration and turns the result into something a test can
//! assert on and a person can read.

use crate::model::{property, Action, PaxosModel, State};
use stateright::{Checker, HasDiscoveries, Model, Path};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// The outcome of one check.
pub struct Outcome {
    /// Distinct states explored.
    pub unique_states: usize,
    /// Longest path explored.
    pub max_depth: usize,
    /// Whether exploration stopped at a state-count limit before the end.
    pub truncated: bool,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// The first violated safety property and its counterexample, if any.
    pub violation: Option<(&'static str, String)>,
    /// Whether some run acknowledged every command (the check was not vacuous).
    pub all_acknowledged: bool,
    /// Whether some retry adopted its own value (Design::adopt_own_partial).
    pub own_value_adopted: bool,
}

impl Outcome {
    /// One line for logs and the docs.
    pub fn summary(&self) -> String {
        format!(
            "{} unique states{}, depth {}, {:.1} s, {}",
            self.unique_states,
            if self.truncated {
                " (stopped at the limit)"
            } else {
                ""
            },
            self.max_depth,
            self.elapsed.as_secs_f64(),
            match &self.violation {
                Some((name, _)) => format!("VIOLATED: {name}"),
                None => "no violation".to_string(),
            }
        )
    }
}

/// Explores `model` breadth-first (so counterexamples are shortest) until a safety
/// property fails or the bounded state space is exhausted.
pub fn run(model: PaxosModel) -> Outcome {
    run_up_to(model, None)
}

/// [`run`], stopping after about `max_states` states if given (the outcome then covers
/// only what was explored: for configurations too large to finish, never for a test
/// that claims safety). (stateright's own timeout is only looked at between work
/// batches, which a one-thread BFS never reaches.)
pub fn run_up_to(model: PaxosModel, max_states: Option<usize>) -> Outcome {
    run_with(model, max_states, Search::BreadthFirst)
}

/// How to walk the state space.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Search {
    /// Shortest counterexamples; keeps the whole frontier in memory.
    BreadthFirst,
    /// Keeps only the current path in memory: for large configurations.
    DepthFirst,
}

/// [`run_up_to`] with the search order chosen.
pub fn run_with(model: PaxosModel, max_states: Option<usize>, search: Search) -> Outcome {
    let started = Instant::now();
    let mut builder = model
        .clone()
        .checker()
        .finish_when(HasDiscoveries::AnyFailures);
    if let Some(max_states) = max_states {
        builder = builder.target_state_count(max_states);
    }
    match search {
        Search::BreadthFirst => outcome(&model, builder.spawn_bfs().join(), max_states, started),
        Search::DepthFirst => outcome(&model, builder.spawn_dfs().join(), max_states, started),
    }
}

fn outcome(
    model: &PaxosModel,
    checker: impl Checker<PaxosModel>,
    max_states: Option<usize>,
    started: Instant,
) -> Outcome {
    let violation = [property::LINEARIZABLE, property::NO_READ_DISCARDED]
        .into_iter()
        .find_map(|name| {
            checker
                .discovery(name)
                .map(|path| (name, explain(model, path)))
        });
    Outcome {
        unique_states: checker.unique_state_count(),
        truncated: max_states.is_some_and(|max| checker.state_count() >= max),
        max_depth: checker.max_depth(),
        elapsed: started.elapsed(),
        violation,
        all_acknowledged: checker.discovery(property::ALL_ACKNOWLEDGED).is_some(),
        own_value_adopted: checker.discovery(property::OWN_VALUE_ADOPTED).is_some(),
    }
}

/// A counterexample step by step: each action, then the acceptors and the history.
pub fn explain(model: &PaxosModel, path: Path<State, Action>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "N = {}, Q = {}, scripts {:?}, {:?}",
        model.acceptors,
        model.quorum(),
        model.scripts,
        model.design
    );
    // Each entry is a state and the action taken from it (none after the last).
    let steps = path.into_vec();
    for (step, (state, action)) in steps.iter().enumerate() {
        let _ = writeln!(out, "     acceptors {:?}", state.acceptors);
        match action {
            Some(action) => {
                let _ = writeln!(out, "{:>3}. {action:?}", step + 1);
            }
            None => {
                let _ = writeln!(out, "     GET results in order {:?}", state.reads);
                let _ = writeln!(out, "     history {:?}", state.history);
            }
        }
    }
    out
}

/// For tests: explores `model` to the end and panics, with the counterexample, if a
/// safety property fails, if the search stopped early, or if no run acknowledged every
/// command (a vacuous check).
pub fn assert_safe(model: PaxosModel) -> Outcome {
    assert_safe_with(model, Search::BreadthFirst)
}

/// [`assert_safe`] with the search order chosen.
pub fn assert_safe_with(model: PaxosModel, search: Search) -> Outcome {
    let outcome = run_with(model, None, search);
    eprintln!("{}", outcome.summary());
    if let Some((name, path)) = &outcome.violation {
        panic!("{name} violated:\n{path}");
    }
    assert!(!outcome.truncated, "{}", outcome.summary());
    assert!(
        outcome.all_acknowledged,
        "vacuous: no run acknowledged every command"
    );
    outcome
}

/// For tests: explores `model` and panics unless a safety property fails; returns the
/// property and the printed counterexample.
pub fn assert_caught(model: PaxosModel) -> (&'static str, String) {
    let design = model.design;
    let outcome = run(model);
    eprintln!("{design:?}: {}", outcome.summary());
    match outcome.violation {
        Some((name, path)) => {
            eprintln!("caught ({name}):\n{path}");
            (name, path)
        }
        None => panic!("{design:?} went unnoticed: {}", outcome.summary()),
    }
}
