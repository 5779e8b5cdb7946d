//! How the demo speaks: a numbered header per step, then what it did (`do`) and what
//! the cluster answered (`saw`), every figure read from the cluster. Lines go to stdout
//! as they happen (Rust's stdout flushes at each newline), so a slow step shows where
//! it is.

use crate::failure::Failure;
use std::fmt::Display;

/// Prints the steps and turns an unmet expectation into a failure naming its step.
pub struct Narrator {
    total: usize,
    current: usize,
    title: &'static str,
}

impl Narrator {
    /// A narrator for `total` steps.
    pub fn new(total: usize) -> Narrator {
        Narrator {
            total,
            current: 0,
            title: "",
        }
    }

    /// Starts the next step.
    pub fn step(&mut self, title: &'static str) {
        self.current += 1;
        self.title = title;
        println!("\n[{}/{}] {title}", self.current, self.total);
    }

    /// What the demo did.
    pub fn did(&self, what: impl Display) {
        println!("  do:  {what}");
    }

    /// What the cluster showed.
    pub fn saw(&self, what: impl Display) {
        println!("  saw: {what}");
    }

    /// Why it matters (one line of explanation, not a result).
    pub fn why(&self, what: impl Display) {
        println!("       {what}");
    }

    /// `Ok` if `holds`; otherwise a failure that names the step and what was expected.
    pub fn expect(&self, holds: bool, expected: impl Display) -> Result<(), Failure> {
        if holds {
            Ok(())
        } else {
            Err(self.failed(format!("expected {expected}")))
        }
    }

    /// `failure`, prefixed with the step it happened in.
    pub fn failed(&self, failure: impl Display) -> Failure {
        Failure::new(format!(
            "step {}/{} ({}) failed: {failure}",
            self.current, self.total, self.title
        ))
    }
}
