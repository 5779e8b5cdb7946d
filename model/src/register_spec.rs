//! The sequential specification the linearizability tester checks histories against:
//! one key, commands applied one at a time by [`Op::apply`].

use crate::operation::{Data, Op, Reply};
use stateright::semantics::SequentialSpec;

/// A key as a single-threaded Redis would hold it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeySpec(pub Data);

impl SequentialSpec for KeySpec {
    type Op = Op;
    type Ret = Reply;

    fn invoke(&mut self, op: &Op) -> Reply {
        let (new, reply) = op.apply(self.0);
        if let Some(data) = new {
            self.0 = data;
        }
        reply
    }
}
