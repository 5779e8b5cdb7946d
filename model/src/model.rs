//! The stateright model: N acceptors, one proposer per client, the network as a set
//! of sent messages, background repair, and the history the checkers judge.

use crate::acceptor::{Acceptor, Answer, Record};
use crate::ballot::Ballot;
use crate::design::{Design, Repair, Sabotage};
use crate::message::Msg;
use crate::operation::{Op, Reply};
use crate::proposer::{decide, Client, Decision, Round};
use crate::register_spec::KeySpec;
use crate::value::{OpTag, Value};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};
use stateright::{Model, Property};
use std::collections::BTreeSet;

/// Names of the properties, for tests and reports.
pub mod property {
    /// Every history is linearizable (unknown outcomes may or may not have happened).
    pub const LINEARIZABLE: &str = "linearizable";
    /// No acknowledged command observed a state not derived from what an earlier
    /// (in real time) GET returned.
    pub const NO_READ_DISCARDED: &str = "no GET result discarded";
    /// Non-vacuity: some run acknowledges every command of every script.
    pub const ALL_ACKNOWLEDGED: &str = "every command acknowledged";
    /// Reachability of [`crate::Design::adopt_own_partial`]: some retry adopted its
    /// own value.
    pub const OWN_VALUE_ADOPTED: &str = "a retry adopted its own value";
}

/// A configuration to check.
#[derive(Clone, Debug)]
pub struct PaxosModel {
    /// N, the number of acceptors.
    pub acceptors: usize,
    /// Each client's commands, run one after the other.
    pub scripts: Vec<Vec<Op>>,
    /// The protocol variant.
    pub design: Design,
    /// Ballot counters go up to this (bounds the rounds, hence the state space).
    pub max_counter: u8,
    /// Tries per command: after a timeout the client retries (a new invocation) until
    /// it has made this many, then moves on to its next command.
    pub max_attempts: u8,
}

/// One state of the system.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct State {
    /// The acceptors' durable state.
    pub acceptors: Vec<Acceptor>,
    /// The clients and their proposers.
    pub clients: Vec<Client>,
    /// Every request ever sent.
    pub network: BTreeSet<Msg>,
    /// Invocations and replies, for the linearizability tester.
    pub history: LinearizabilityTester<OpTag, KeySpec>,
    /// Whether `history` was linearizable at every reply so far.
    pub linearizable: bool,
    /// The values acknowledged GETs returned, in the order they returned.
    pub reads: Vec<Value>,
    /// Whether some acknowledged command observed a state not derived from a GET
    /// result that preceded it.
    pub discarded_read: bool,
    /// Commands acknowledged so far.
    pub acknowledged: usize,
    /// Whether some retry adopted its own value (Design::adopt_own_partial).
    pub adopted_own: bool,
}

/// A step of the system.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Action {
    /// A client invokes its next command: its proposer starts a round.
    Invoke(u8),
    /// An acceptor handles a Prepare or Accept from the network; its answer reaches
    /// the proposer in the same step, or is lost.
    ///
    /// Handling the answer at once loses no behaviour that matters for safety: what
    /// the proposer does with it (send Accept, start a new round) only puts requests
    /// into the network, where they can wait as long as any answer could, and a reply
    /// to a client given earlier only constrains the history more.
    Deliver {
        /// The acceptor.
        acceptor: u8,
        /// The request.
        msg: Msg,
        /// Whether the answer is lost on the way back.
        answer_lost: bool,
    },
    /// A client stops waiting (timeout, or its proposer crashed): outcome unknown.
    Timeout(u8),
    /// Background repair copies `from`'s record to `to`.
    Repair {
        /// Source acceptor.
        from: u8,
        /// Destination acceptor.
        to: u8,
    },
    /// An acceptor crashes and restarts (only a change of state under
    /// [`Sabotage::VolatilePromise`]: otherwise its state is durable).
    Restart(u8),
}

impl PaxosModel {
    /// Q: a majority of N, or N/2 under [`Sabotage::MinorityQuorum`].
    pub fn quorum(&self) -> usize {
        if self.design.has(Sabotage::MinorityQuorum) {
            self.acceptors / 2
        } else {
            self.acceptors / 2 + 1
        }
    }

    fn total_commands(&self) -> usize {
        self.scripts.iter().map(Vec::len).sum()
    }

    fn op(&self, client: usize, state: &State) -> Op {
        self.scripts[client][state.clients[client].next_op as usize]
    }

    /// Under [`Design::adopt_own_partial`]: when the newest of `promises` is the value
    /// of the client's last refused round, that value, with the state that round
    /// observed and its reply.
    fn own_value(
        &self,
        c: &Client,
        promises: &[(u8, Record, bool)],
    ) -> Option<(Value, Value, Reply)> {
        let (own, observed, reply) = c.partial_own.clone()?;
        if !self.design.adopt_own_partial {
            return None;
        }
        let newest = promises
            .iter()
            .map(|(_, r, _)| r)
            .max_by_key(|r| r.version)?;
        let adopt = newest.version == own
            || (self.design.has(Sabotage::AdoptAnyNewerRecord) && newest.version >= own);
        adopt.then(|| (newest.value.clone(), observed, reply))
    }

    /// Starts a round at `ballot` for the client's current command.
    fn start_round(state: &mut State, client: usize, ballot: Ballot) {
        let c = &mut state.clients[client];
        c.highest_seen = c.highest_seen.max(ballot);
        c.round = Round::Preparing {
            ballot,
            promises: Vec::new(),
        };
        state.network.insert(Msg::Prepare { ballot });
    }

    /// The client gives up on its invocation; its outcome stays unknown (in flight
    /// forever in the history).
    fn abandon(&self, state: &mut State, client: usize) {
        let c = &mut state.clients[client];
        c.round = Round::Idle;
        c.partial_since = None;
        c.partial_own = None;
        if c.attempt + 1 < self.max_attempts {
            c.attempt += 1;
        } else {
            c.next_op += 1;
            c.attempt = 0;
        }
    }

    /// The client's invocation returns `reply` after observing `observed`.
    fn acknowledge(&self, state: &mut State, client: usize, observed: Value, reply: Reply) {
        let op = self.op(client, state);
        let c = &mut state.clients[client];
        let tag = c.tag(client);
        let reads_before = c.reads_before;
        c.round = Round::Idle;
        c.partial_since = None;
        c.partial_own = None;
        c.next_op += 1;
        c.attempt = 0;
        state
            .history
            .on_return(tag, reply)
            .expect("model bug: a reply without its invocation");
        state.acknowledged += 1;
        if state.linearizable {
            state.linearizable = state.history.serialized_history().is_some();
        }
        if state.reads[..reads_before]
            .iter()
            .any(|read| !read.is_ancestor_of(&observed))
        {
            state.discarded_read = true;
        }
        if op == Op::Get {
            state.reads.push(observed);
        }
    }

    fn on_promise_quorum(&self, state: &mut State, client: usize) {
        let op = self.op(client, state);
        let c = &state.clients[client];
        let tag = c.tag(client);
        let Round::Preparing { ballot, promises } = &c.round else {
            return;
        };
        let ballot = *ballot;
        if let Some((value, observed, reply)) = self.own_value(c, promises) {
            Self::start_accept(state, client, ballot, value, observed, reply);
            state.adopted_own = true;
            return;
        }
        // A retry after a refused Accept: a record at or above that round's ballot
        // may derive from its value, and running the command again could apply it
        // twice.
        if let Some(first) = c.partial_since {
            let newest = promises.iter().map(|(_, r, _)| r.version).max();
            let retry_anyway = self.design.has(Sabotage::RetryWhateverWasAccepted);
            if newest.is_some_and(|v| v >= first) && !retry_anyway {
                self.abandon(state, client);
                return;
            }
        }
        match decide(op, tag, promises, &self.design) {
            Decision::ReplyNow { observed, reply } => {
                self.acknowledge(state, client, observed, reply)
            }
            Decision::Accept {
                value,
                observed,
                reply,
            } => Self::start_accept(state, client, ballot, value, observed, reply),
        }
    }

    /// Phase 2 of the client's round at `ballot`: `value` to every acceptor, and `reply`
    /// (the command having observed `observed`) once Q accepted.
    fn start_accept(
        state: &mut State,
        client: usize,
        ballot: Ballot,
        value: Value,
        observed: Value,
        reply: Reply,
    ) {
        state.network.insert(Msg::Accept { ballot, value });
        state.clients[client].round = Round::Accepting {
            ballot,
            observed,
            reply,
            accepted: Vec::new(),
        };
    }

    /// The acceptor's new state and answer for `msg`, without touching `state`.
    fn handle(&self, state: &State, acceptor: usize, msg: &Msg) -> (Acceptor, Answer) {
        let mut a = state.acceptors[acceptor].clone();
        let answer = match msg {
            Msg::Prepare { ballot } => a.prepare(*ballot, &self.design),
            Msg::Accept { ballot, value } => a.accept(*ballot, value, &self.design),
        };
        (a, answer)
    }

    /// The proposer of `client` handles `acceptor`'s answer for its current round.
    fn receive(&self, state: &mut State, client: usize, acceptor: u8, answer: Answer) {
        let quorum = self.quorum();
        let keep_arrival_order = self.design.has(Sabotage::FirstPromiseWins);
        let c = &mut state.clients[client];
        match (answer, &mut c.round) {
            (Answer::Promised(record, below), Round::Preparing { promises, .. }) => {
                if promises.iter().any(|(a, _, _)| *a == acceptor) {
                    return;
                }
                promises.push((acceptor, record, below));
                if !keep_arrival_order {
                    // Only the set matters to a correct proposer: one order, fewer states.
                    promises.sort();
                }
                if promises.len() == quorum {
                    self.on_promise_quorum(state, client);
                }
            }
            (
                Answer::Accepted,
                Round::Accepting {
                    accepted,
                    observed,
                    reply,
                    ..
                },
            ) => {
                if accepted.contains(&acceptor) {
                    return;
                }
                accepted.push(acceptor);
                accepted.sort();
                if accepted.len() == quorum {
                    let (observed, reply) = (observed.clone(), *reply);
                    self.acknowledge(state, client, observed, reply);
                }
            }
            (Answer::Rejected(seen), Round::Preparing { .. }) => {
                c.highest_seen = c.highest_seen.max(seen);
                let next = c.next_ballot(client);
                if next.counter <= self.max_counter {
                    Self::start_round(state, client, next);
                } else {
                    self.abandon(state, client);
                }
            }
            (
                Answer::Rejected(seen),
                Round::Accepting {
                    ballot,
                    observed,
                    reply,
                    ..
                },
            ) => {
                let ballot = *ballot;
                if self.design.adopt_own_partial {
                    c.partial_own = Some((ballot, observed.clone(), *reply));
                }
                c.highest_seen = c.highest_seen.max(seen);
                let next = c.next_ballot(client);
                if self.design.retry_partial_accepts && next.counter <= self.max_counter {
                    c.partial_since = Some(c.partial_since.unwrap_or(ballot));
                    Self::start_round(state, client, next);
                } else {
                    self.abandon(state, client);
                }
            }
            _ => {}
        }
    }
}

impl Model for PaxosModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        vec![State {
            acceptors: vec![Acceptor::default(); self.acceptors],
            clients: vec![Client::new(); self.scripts.len()],
            network: BTreeSet::new(),
            history: LinearizabilityTester::new(KeySpec::default()),
            linearizable: true,
            reads: Vec::new(),
            discarded_read: false,
            acknowledged: 0,
            adopted_own: false,
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        for (i, c) in state.clients.iter().enumerate() {
            let has_command = (c.next_op as usize) < self.scripts[i].len();
            match c.round {
                Round::Idle if has_command && c.next_ballot(i).counter <= self.max_counter => {
                    actions.push(Action::Invoke(i as u8))
                }
                Round::Idle => {}
                _ => actions.push(Action::Timeout(i as u8)),
            }
        }
        for msg in &state.network {
            // An answer to a round its proposer has left is dropped anyway.
            let proposer = msg.ballot().proposer as usize - 1;
            let answer_awaited = state.clients[proposer].ballot() == Some(msg.ballot());
            let fates: &[bool] = if answer_awaited {
                &[false, true]
            } else {
                &[true]
            };
            for acceptor in 0..self.acceptors as u8 {
                for &answer_lost in fates {
                    actions.push(Action::Deliver {
                        acceptor,
                        msg: msg.clone(),
                        answer_lost,
                    });
                }
            }
        }
        if self.design.repair != Repair::Off {
            for (from, source) in state.acceptors.iter().enumerate() {
                for (to, dest) in state.acceptors.iter().enumerate() {
                    if dest.would_repair(&source.record, self.design.repair) {
                        actions.push(Action::Repair {
                            from: from as u8,
                            to: to as u8,
                        });
                    }
                }
            }
        }
        if self.design.has(Sabotage::VolatilePromise) {
            for (i, a) in state.acceptors.iter().enumerate() {
                if a.promise > a.record.version {
                    actions.push(Action::Restart(i as u8));
                }
            }
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        if let Action::Deliver {
            acceptor,
            msg,
            answer_lost,
        } = &action
        {
            // Most deliveries are duplicates that change nothing: skip the clone.
            let acceptor = *acceptor as usize;
            let (after, _) = self.handle(last, acceptor, msg);
            let proposer = msg.ballot().proposer as usize - 1;
            let awaited = !answer_lost && last.clients[proposer].ballot() == Some(msg.ballot());
            if !awaited && after == last.acceptors[acceptor] {
                return None;
            }
        }
        let mut state = last.clone();
        match action {
            Action::Invoke(client) => {
                let client = client as usize;
                let op = self.op(client, &state);
                let c = &mut state.clients[client];
                let tag = c.tag(client);
                let ballot = c.next_ballot(client);
                c.reads_before = state.reads.len();
                state
                    .history
                    .on_invoke(tag, op)
                    .expect("model bug: an invocation while one is in flight");
                Self::start_round(&mut state, client, ballot);
            }
            Action::Deliver {
                acceptor,
                msg,
                answer_lost,
            } => {
                let acceptor = acceptor as usize;
                let (after, answer) = self.handle(last, acceptor, &msg);
                state.acceptors[acceptor] = after;
                let client = msg.ballot().proposer as usize - 1;
                if !answer_lost && last.clients[client].ballot() == Some(msg.ballot()) {
                    self.receive(&mut state, client, acceptor as u8, answer);
                }
            }
            Action::Timeout(client) => self.abandon(&mut state, client as usize),
            Action::Repair { from, to } => {
                let record = state.acceptors[from as usize].record.clone();
                state.acceptors[to as usize].store_copy(record);
            }
            Action::Restart(acceptor) => state.acceptors[acceptor as usize].restart(&self.design),
        }
        (state != *last).then_some(state)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        vec![
            Property::always(property::LINEARIZABLE, |_, s: &State| s.linearizable),
            Property::always(property::NO_READ_DISCARDED, |_, s: &State| {
                !s.discarded_read
            }),
            Property::sometimes(property::ALL_ACKNOWLEDGED, |m: &PaxosModel, s: &State| {
                s.acknowledged == m.total_commands()
            }),
            Property::sometimes(property::OWN_VALUE_ADOPTED, |_, s: &State| s.adopted_own),
        ]
    }
}
