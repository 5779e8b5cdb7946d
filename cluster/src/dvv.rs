//! Dotted version vector sets: the state of a key in a siblings database
//! (docs/consistency.md, "Siblings"; spec of the bytes: docs/format/cluster-storage.md,
//! "Siblings records"). Riak 2.0's DVVs and Garage K2V's causality tokens are the models.
//!
//! A [`Siblings`] holds the values no write has superseded yet, each with its *dot*
//! (the replica that accepted the write and that replica's counter for it), and the
//! *causal context*: a version vector covering every write this state has seen, the
//! kept values' and the superseded ones'.
//!
//! ```text
//! siblings := context values
//! context  := count:u16 (actor:u64 counter:u64){count}     ; actors ascending
//! values   := count:u16 (actor:u64 counter:u64 len:u32 bytes){count} ; dots ascending
//! write    := context has-value:u8 (len:u32 bytes)?        ; a client's write in transit
//! ```
//!
//! Actors are replicas, never coordinators: a dot (r, n) is only made by replica r while
//! it holds every earlier dot of r for that key (as values or as covered), so "the
//! context holds r up to n" means "every write r accepted up to n was seen". Counters
//! need not be contiguous for that: a replica takes the next one above both what it
//! holds and the write's HLC timestamp, so a replica that lost its data (and its
//! counters) still makes dots no other replica has seen.

use crate::NodeId;
use bytes::{Buf, BufMut, Bytes};
use std::collections::BTreeMap;

/// Siblings past this many make a write fail (Riak's `max_siblings`).
pub const MAX_SIBLINGS: usize = 100;
/// Siblings past this many are logged and counted (Riak's `warn_siblings`).
pub const WARN_SIBLINGS: usize = 25;

/// One write's identity: the replica that accepted it and that replica's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dot {
    /// The replica that accepted the write.
    pub actor: NodeId,
    /// Its counter for the key.
    pub counter: u64,
}

/// A version vector: for each replica, the highest counter of its writes seen.
#[derive(Debug, Clone, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Context(BTreeMap<NodeId, u64>);

impl Context {
    /// Whether the write `dot` is among those this context has seen.
    pub fn covers(&self, dot: &Dot) -> bool {
        self.get(dot.actor) >= dot.counter
    }

    /// The highest counter of `actor` seen (0: none).
    pub fn get(&self, actor: NodeId) -> u64 {
        self.0.get(&actor).copied().unwrap_or(0)
    }

    /// Pointwise maximum: what either has seen.
    pub fn join(&mut self, other: &Context) {
        for (&actor, &n) in &other.0 {
            let e = self.0.entry(actor).or_insert(0);
            *e = (*e).max(n);
        }
    }

    fn raise(&mut self, dot: Dot) {
        let e = self.0.entry(dot.actor).or_insert(0);
        *e = (*e).max(dot.counter);
    }

    /// The replicas it names, with their counters, ascending.
    pub fn entries(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.0.iter().map(|(a, n)| (*a, *n))
    }

    /// Appends `count:u16 (actor:u64 counter:u64){count}`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.put_u16(self.0.len() as u16);
        for (actor, n) in &self.0 {
            out.put_u64(actor.0);
            out.put_u64(*n);
        }
    }

    /// Reads what [`Context::encode_into`] wrote from the front of `b`; `None` if the
    /// bytes are short or the actors are not strictly ascending.
    pub fn decode_from(b: &mut &[u8]) -> Option<Context> {
        let count = take_u16(b)?;
        let mut map = BTreeMap::new();
        let mut last = None;
        for _ in 0..count {
            let (actor, n) = (NodeId(take_u64(b)?), take_u64(b)?);
            if last.is_some_and(|l| l >= actor) {
                return None;
            }
            last = Some(actor);
            map.insert(actor, n);
        }
        Some(Context(map))
    }
}

/// A key's concurrent values with their dots, and the causal context of the state.
/// Invariant: the context covers every value's dot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Siblings {
    context: Context,
    values: BTreeMap<Dot, Bytes>,
}

/// A client's write as it travels to the replica that will give it a dot: the context
/// it read (empty: it supersedes nothing) and its value (`None`: a delete of what the
/// context covers).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SiblingsWrite {
    /// What the client had read: the values it supersedes.
    pub context: Context,
    /// The new value; `None` only removes.
    pub value: Option<Bytes>,
}

impl Siblings {
    /// The causal context: what a write carrying it supersedes.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The concurrent values, in dot order (deterministic on every replica).
    pub fn values(&self) -> impl ExactSizeIterator<Item = (&Dot, &Bytes)> {
        self.values.iter()
    }

    /// How many values are kept.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when no value is kept (deleted, or never written).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The state after replica `actor` accepts `write`: the values the write's context
    /// covers are dropped, the context grows by the write's, and the value (if any)
    /// joins with a new dot of `actor` whose counter is above what `actor` has seen and
    /// at least `counter_floor` (the write's HLC timestamp; see the module comment).
    pub fn accept(&mut self, write: &SiblingsWrite, actor: NodeId, counter_floor: u64) {
        self.values.retain(|dot, _| !write.context.covers(dot));
        self.context.join(&write.context);
        if let Some(value) = &write.value {
            let counter = (self.context.get(actor) + 1).max(counter_floor);
            let dot = Dot { actor, counter };
            self.context.raise(dot);
            self.values.insert(dot, value.clone());
        }
    }

    /// The join of two replicas' states (commutative, associative, idempotent): a value
    /// survives if both hold it or if the other side has not seen its dot; contexts
    /// take the maximum. A dot with two different values (damage: a dot names one
    /// write) keeps the larger bytes so the join stays deterministic.
    pub fn sync(&self, other: &Siblings) -> Siblings {
        let mut values = BTreeMap::new();
        for (mine, theirs) in [(self, other), (other, self)] {
            for (dot, v) in &mine.values {
                if theirs.values.contains_key(dot) || !theirs.context.covers(dot) {
                    let e = values.entry(*dot).or_insert_with(|| v.clone());
                    if v > e {
                        *e = v.clone();
                    }
                }
            }
        }
        let mut context = self.context.clone();
        context.join(&other.context);
        Siblings { context, values }
    }

    /// Appends the `siblings` grammar of the module comment.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        self.context.encode_into(out);
        out.put_u16(self.values.len() as u16);
        for (dot, v) in &self.values {
            out.put_u64(dot.actor.0);
            out.put_u64(dot.counter);
            out.put_u32(v.len() as u32);
            out.put_slice(v);
        }
    }

    /// Decodes exactly `b`; `None` for anything else than what `encode_into` writes
    /// (short, trailing bytes, unsorted, or a value its context does not cover).
    pub fn decode(b: &Bytes) -> Option<Siblings> {
        let mut r: &[u8] = b;
        let context = Context::decode_from(&mut r)?;
        let count = take_u16(&mut r)?;
        let mut values = BTreeMap::new();
        let mut last = None;
        for _ in 0..count {
            let dot = Dot {
                actor: NodeId(take_u64(&mut r)?),
                counter: take_u64(&mut r)?,
            };
            let len = take_u32(&mut r)? as usize;
            if r.len() < len || last.is_some_and(|l| l >= dot) || !context.covers(&dot) {
                return None;
            }
            last = Some(dot);
            let at = b.len() - r.len();
            values.insert(dot, b.slice(at..at + len));
            r.advance(len);
        }
        r.is_empty().then_some(Siblings { context, values })
    }
}

impl SiblingsWrite {
    /// Appends the `write` grammar of the module comment.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        self.context.encode_into(out);
        match &self.value {
            Some(v) => {
                out.put_u8(1);
                out.put_u32(v.len() as u32);
                out.put_slice(v);
            }
            None => out.put_u8(0),
        }
    }

    /// Decodes exactly `b`.
    pub fn decode(b: &Bytes) -> Option<SiblingsWrite> {
        let mut r: &[u8] = b;
        let context = Context::decode_from(&mut r)?;
        let value = match r.first()? {
            0 if r.len() == 1 => None,
            1 => {
                r.advance(1);
                let len = take_u32(&mut r)? as usize;
                (r.len() == len).then_some(())?;
                Some(b.slice(b.len() - len..))
            }
            _ => return None,
        };
        Some(SiblingsWrite { context, value })
    }
}

fn take_u16(b: &mut &[u8]) -> Option<u16> {
    (b.len() >= 2).then(|| b.get_u16())
}

fn take_u32(b: &mut &[u8]) -> Option<u32> {
    (b.len() >= 4).then(|| b.get_u32())
}

fn take_u64(b: &mut &[u8]) -> Option<u64> {
    (b.len() >= 8).then(|| b.get_u64())
}

#[cfg(test)]
mod tests;
