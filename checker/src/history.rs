//! A history: what each operation was asked, when, and what came back.

/// How an operation ended, as its client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<O> {
    /// It returned this output.
    Ok(O),
    /// It failed in a way that guarantees it had no effect (refused before sending,
    /// a definite error). Such operations are left out of the check.
    Failed,
    /// Timed out, the connection broke, the node died: it may or may not have taken
    /// effect, at any time after its invocation (Knossos's `:info`).
    Unknown,
}

/// One operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// Who ran it (for messages only: the check does not need it).
    pub client: u64,
    /// When it was invoked, on a clock shared by all clients (monotonic time of the
    /// test process).
    pub invoked: u64,
    /// When its answer arrived; ignored unless the outcome is `Ok` or `Failed`.
    pub returned: u64,
    /// What was asked.
    pub input: I,
    /// What came back.
    pub outcome: Outcome<O>,
}
