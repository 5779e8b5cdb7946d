//! SORT and SORT_RO where only strings exist: Redis sorts lists, sets and sorted sets,
//! none of which kvd has yet, so the key to sort is either missing (an empty result) or
//! a string (WRONGTYPE). The options are parsed with Redis's rules and errors, BY and
//! GET patterns are accepted (they never have elements to look up), and STORE of the
//! empty result deletes the destination and replies 0, as Redis does.

use super::args::{err, int, is, SYNTAX, WRONGTYPE};
use super::{CmdResult, Ctx};
use crate::protocol::Reply;
use bytes::Bytes;

/// Where SORT ... STORE writes: the last STORE option's key (Redis keeps the last one).
fn parse(a: &[Bytes], read_only: bool) -> Result<Option<&Bytes>, Reply> {
    let mut store = None;
    let mut j = 2;
    while j < a.len() {
        let left = a.len() - j - 1;
        if is(&a[j], "asc") || is(&a[j], "desc") || is(&a[j], "alpha") {
            // orderings change nothing: there are never elements to order
        } else if is(&a[j], "limit") && left >= 2 {
            int(&a[j + 1])?;
            int(&a[j + 2])?;
            j += 2;
        } else if !read_only && is(&a[j], "store") && left >= 1 {
            store = Some(&a[j + 1]);
            j += 1;
        } else if (is(&a[j], "by") || is(&a[j], "get")) && left >= 1 {
            j += 1;
        } else {
            return Err(err(SYNTAX));
        }
        j += 1;
    }
    Ok(store)
}

fn run(ctx: &mut Ctx<'_>, a: &[Bytes], read_only: bool) -> CmdResult {
    let store = parse(a, read_only)?;
    if ctx.get(&a[1])?.is_some() {
        return Err(err(WRONGTYPE)); // strings cannot be sorted
    }
    Ok(match store {
        Some(dest) => {
            let db = ctx.db();
            ctx.txn.remove(db, dest)?;
            Reply::Int(0)
        }
        None => Reply::Array(Vec::new()),
    })
}

/// SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
/// [STORE destination]
pub fn sort(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    run(ctx, a, false)
}

/// SORT_RO key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC] [ALPHA]
pub fn sort_ro(ctx: &mut Ctx<'_>, a: &[Bytes]) -> CmdResult {
    run(ctx, a, true)
}
