//! The memtable's structure: a skiplist with one node per user key, each node holding
//! that key's versions newest first, and a hash index from user key to node.
//!
//! Why this shape. Most memtable work is on one key: a point read, a SET that reads the
//! key's committed state first, a cluster replica reading the record it replaces, a
//! write of a key the memtable already holds. The hash index answers all of them with
//! one probe instead of a search from the skiplist's top level (RocksDB pairs its
//! skiplist with a hash for the same reason: `HashSkipListRep`), and a new version of a
//! key already present is prepended to that key's list without touching the skiplist
//! at all. Iterating node by node, and each node's versions newest first, yields
//! exactly the internal-key order (user key ascending, sequence descending).
//!
//! Ordering waits until someone needs it. A key new to the memtable goes into the index
//! and onto a queue of unordered nodes; the skiplist, which orders keys for scans and
//! the flush, links the queued nodes only when an ordered access (`first`, `seek`)
//! comes, sorted, in one pass. A search of a large skiplist is a chain of cache misses,
//! one per step, and was the largest cost of a write of a new key (a third of the CPU
//! of a pipelined INCR run: docs/performance.md, "Ordering at the first ordered
//! access"); a memtable that is only written and read by key until its flush never
//! pays it, and the flush links a sorted run, which is one step per node. Writes do not
//! wait for it: inserts never touch the skiplist, so the linking runs beside them. The
//! price is that the first ordered access after many new keys sorts and links them
//! before it reads (RocksDB's vector memtable defers ordering the same way, to the
//! flush).
//!
//! Concurrency (LevelDB's `SkipList` contract): one writer at a time, held by the
//! writer lock inside, and one linker of queued nodes under its own lock; any number of
//! readers without locks. The writer fills a node or a version completely, then
//! publishes it with one release store (into an index bucket or a version link; the
//! linker, which took the node from the writer's queue under the writer lock, into
//! tower slots); readers follow links with acquire loads, so whatever they reach is
//! complete. Nothing is ever unlinked while the list lives (except a version replaced
//! by an identical internal key, which stays in memory), and all memory comes from the
//! list's arena, freed when the list is dropped, which needs no reader to be left:
//! readers hold the memtable's `Arc`.
//!
//! A reader that missed a version inserted while it walked lost nothing: versions are
//! inserted with sequence numbers above every published one (the write path publishes
//! after inserting), so no snapshot a reader holds can see them. The same argument
//! covers nodes still queued: an ordered access links every node queued before it
//! starts, and those hold every version a snapshot taken before it can see.

use super::arena::Arena;
use crate::chunked::Chunked;
use crate::key::{self, SeqNo};
use bytes::Bytes;
use parking_lot::Mutex;
use std::marker::PhantomData;
use std::mem::size_of;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use xxhash_rust::xxh3::xxh3_64;

/// Tallest tower. With a branching factor of 4, 12 levels keep searches logarithmic up
/// to about 4^12 = 16M keys, more than a 64 MiB memtable holds.
const MAX_HEIGHT: usize = 12;
/// One node in this many reaches each next level.
const BRANCHING: u64 = 4;
/// Values up to this length are copied into the arena, and a read copies them out (an
/// allocation and a copy of at most this much). Longer values are kept as `Bytes`, so
/// a read of a large value shares it instead of copying it.
pub(super) const INLINE_VALUE_MAX: usize = 1024;
/// `Version::value_len` of a value kept as `Bytes`.
const SHARED_VALUE: usize = usize::MAX;

/// One version of a key: its whole internal key, then its value (inline bytes, or a
/// `Bytes` at the next 8-aligned offset).
#[repr(C)]
struct Version {
    /// The next older version of the same key.
    older: AtomicPtr<Version>,
    /// The packed sequence and kind (the internal key's last 8 bytes, decoded).
    trailer: u64,
    ikey_len: usize,
    /// Bytes of the inline value, or [`SHARED_VALUE`].
    value_len: usize,
}

impl Version {
    /// Arena bytes for a version of an internal key of `ikey_len` bytes and a value of
    /// `value_len` bytes.
    fn size(ikey_len: usize, value_len: usize) -> usize {
        if value_len > INLINE_VALUE_MAX {
            Self::shared_offset(ikey_len) + size_of::<Bytes>()
        } else {
            size_of::<Version>() + ikey_len + value_len
        }
    }

    /// Offset of a shared value's `Bytes` from the start of the version.
    fn shared_offset(ikey_len: usize) -> usize {
        (size_of::<Version>() + ikey_len).next_multiple_of(8)
    }
}

/// A published version or node (or the head), by the pointer the arena handed out.
/// The bytes after a header are reached from this pointer, never from a reference to
/// the header (which covers the header alone).
struct Published<'a, T> {
    ptr: NonNull<T>,
    _list: PhantomData<&'a List>,
}

impl<T> Clone for Published<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Published<'_, T> {}

impl<'a, T> Published<'a, T> {
    /// # Safety
    /// `ptr` must be null or published in a list that lives for `'a`.
    unsafe fn from_raw(ptr: *mut T) -> Option<Published<'a, T>> {
        NonNull::new(ptr).map(|ptr| Published {
            ptr,
            _list: PhantomData,
        })
    }

    fn header(&self) -> &'a T {
        // SAFETY: published, so fully written; lives as long as the list.
        unsafe { self.ptr.as_ref() }
    }
}

type VersionRef<'a> = Published<'a, Version>;
type NodeRef<'a> = Published<'a, KeyNode>;

impl<'a> VersionRef<'a> {
    fn at(&self, offset: usize) -> *const u8 {
        // SAFETY: callers stay inside the version's allocation.
        unsafe { self.ptr.as_ptr().cast::<u8>().add(offset) }
    }

    fn trailer(&self) -> u64 {
        self.header().trailer
    }

    fn seq(&self) -> SeqNo {
        self.trailer() >> 8
    }

    fn ikey(&self) -> &'a [u8] {
        // SAFETY: `ikey_len` bytes were written right after the header before the
        // version was published, inside its allocation.
        unsafe { std::slice::from_raw_parts(self.at(size_of::<Version>()), self.header().ikey_len) }
    }

    fn shared(&self) -> Option<&'a Bytes> {
        let h = self.header();
        (h.value_len == SHARED_VALUE).then(|| {
            // SAFETY: a `Bytes` was written at this aligned offset before publication,
            // and is dropped only with the list.
            unsafe { &*self.at(Version::shared_offset(h.ikey_len)).cast::<Bytes>() }
        })
    }

    fn value(&self) -> &'a [u8] {
        let h = self.header();
        match self.shared() {
            Some(b) => b,
            // SAFETY: the inline value's bytes follow the key inside the allocation.
            None => unsafe {
                std::slice::from_raw_parts(self.at(size_of::<Version>() + h.ikey_len), h.value_len)
            },
        }
    }

    fn older(&self) -> Option<VersionRef<'a>> {
        // SAFETY: a non-null link is a published version of the same list.
        unsafe { VersionRef::from_raw(self.header().older.load(Ordering::Acquire)) }
    }
}

/// One user key: its versions, its place in its index bucket, and its tower of
/// skiplist links (which follow the header in memory).
#[repr(C)]
struct KeyNode {
    newest: AtomicPtr<Version>,
    /// The next node of the same index bucket; set before publication, never changed.
    chain: *mut KeyNode,
    hash: u64,
    /// The key's first eight bytes ([`key_prefix`]): a search compares it before the
    /// key, so most steps decide without reading the key's bytes (another cache line).
    prefix: u64,
    /// The user key: the bytes of the node's first version, which never change.
    key: *const u8,
    key_len: usize,
    height: usize,
}

/// The index's hash of a user key.
pub(super) fn key_hash(user_key: &[u8]) -> u64 {
    xxh3_64(user_key)
}

/// The first eight bytes of `key` as a big-endian number, zeros past its end. Two keys
/// whose prefixes differ order as their prefixes do: at the first byte where the padded
/// prefixes differ, either both keys have a byte there, or the shorter one ended before
/// it and, equal up to there, is a prefix of the other. Equal prefixes decide nothing.
fn key_prefix(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let n = key.len().min(8);
    bytes[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(bytes)
}

impl KeyNode {
    fn bytes(height: usize) -> usize {
        size_of::<KeyNode>() + height * size_of::<AtomicPtr<KeyNode>>()
    }
}

impl<'a> NodeRef<'a> {
    fn tower(&self, level: usize) -> &'a AtomicPtr<KeyNode> {
        debug_assert!(level < self.header().height);
        // SAFETY: `height` slots follow the header, initialized before publication.
        unsafe {
            &*self
                .ptr
                .as_ptr()
                .add(1)
                .cast::<AtomicPtr<KeyNode>>()
                .add(level)
        }
    }

    fn next(&self, level: usize) -> Option<NodeRef<'a>> {
        // SAFETY: a non-null link is a published node of the same list.
        unsafe { NodeRef::from_raw(self.tower(level).load(Ordering::Acquire)) }
    }

    /// Whether this node's key sorts before `key`, whose [`key_prefix`] is `prefix`.
    fn precedes(&self, key: &[u8], prefix: u64) -> bool {
        let own = self.header().prefix;
        own < prefix || (own == prefix && self.key() < key)
    }

    fn key(&self) -> &'a [u8] {
        let h = self.header();
        // SAFETY: the key bytes live in the node's first version, never changed.
        unsafe { std::slice::from_raw_parts(h.key, h.key_len) }
    }

    fn newest(&self) -> Option<VersionRef<'a>> {
        // SAFETY: a non-null pointer is a published version of the same list.
        unsafe { VersionRef::from_raw(self.header().newest.load(Ordering::Acquire)) }
    }
}

/// One index bucket: the newest node of its chain, and a summary of every key in the
/// chain, two bits per key, so a lookup of a key the memtable does not hold ends at the
/// bucket (one cache line) in most cases instead of reading each node of the chain
/// (a cache miss each: the largest part of a lookup's cost in a profile of pipelined
/// INCRs, docs/performance.md, "Replies in bursts, lookups that end at the bucket").
/// Bits are only ever added, as nodes are; a chain of `n` keys lets a key it does not
/// hold through with a chance of about (1 - e^(-2n/64))^2: 0.4% at two keys.
#[repr(C, align(16))]
struct Bucket {
    head: AtomicPtr<KeyNode>,
    keys: AtomicU64,
}

impl Bucket {
    /// The bits a key of `hash` sets in its bucket's summary. They come from the hash's
    /// low half; the bucket is chosen by the high half.
    fn key_bits(hash: u64) -> u64 {
        (1 << (hash & 63)) | (1 << ((hash >> 6) & 63))
    }

    /// Whether the chain may hold a key of `hash`. Read after the head: every key of
    /// the chain that head begins has its bits set (bits of newer keys may show too,
    /// which only lets a lookup go on).
    fn may_hold(&self, hash: u64) -> bool {
        let bits = Bucket::key_bits(hash);
        self.keys.load(Ordering::Relaxed) & bits == bits
    }
}

/// What the writer alone touches.
struct Writer {
    arena: Arena,
    rng: u64,
    /// Every shared value written, to drop with the list.
    shared: Vec<NonNull<Bytes>>,
    /// Nodes in the index but not yet in the skiplist.
    unordered: Chunked<Queued>,
}

/// A queued node with its key prefix, so the sort compares prefixes without reading
/// the node.
type Queued = (u64, NonNull<KeyNode>);

// SAFETY: the pointers in `shared` point into `arena`, owned alongside.
unsafe impl Send for Writer {}

impl Writer {
    fn random_height(&mut self) -> usize {
        let mut height = 1;
        while height < MAX_HEIGHT && self.next_random().is_multiple_of(BRANCHING) {
            height += 1;
        }
        height
    }

    /// xorshift64*: heights need no more than an even spread.
    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Writes a version at `at` (`Version::size` bytes of this arena).
    ///
    /// # Safety
    /// `at` must be a fresh, 8-aligned allocation of at least `Version::size(ikey, value)`
    /// bytes from `self.arena`.
    unsafe fn write_version(
        &mut self,
        at: NonNull<u8>,
        user_key: &[u8],
        trailer: u64,
        value: &[u8],
    ) -> NonNull<Version> {
        let ikey_len = user_key.len() + key::TRAILER_LEN;
        let shared = value.len() > INLINE_VALUE_MAX;
        let base = at.as_ptr();
        ptr::write(
            base.cast::<Version>(),
            Version {
                older: AtomicPtr::new(ptr::null_mut()),
                trailer,
                ikey_len,
                value_len: if shared { SHARED_VALUE } else { value.len() },
            },
        );
        let ikey = base.add(size_of::<Version>());
        ptr::copy_nonoverlapping(user_key.as_ptr(), ikey, user_key.len());
        ptr::copy_nonoverlapping(
            trailer.to_le_bytes().as_ptr(),
            ikey.add(user_key.len()),
            key::TRAILER_LEN,
        );
        if shared {
            let slot = base.add(Version::shared_offset(ikey_len)).cast::<Bytes>();
            ptr::write(slot, Bytes::copy_from_slice(value));
            self.shared.push(NonNull::new_unchecked(slot));
        } else {
            ptr::copy_nonoverlapping(value.as_ptr(), ikey.add(ikey_len), value.len());
        }
        NonNull::new_unchecked(base.cast::<Version>())
    }
}

/// The version of a key a lookup found.
pub(super) struct Found<'a> {
    version: VersionRef<'a>,
}

impl Found<'_> {
    pub(super) fn seq(&self) -> SeqNo {
        self.version.seq()
    }

    /// The raw kind byte.
    pub(super) fn kind(&self) -> u8 {
        (self.version.trailer() & 0xff) as u8
    }

    /// The value, copied if it is inline, shared if it is large.
    pub(super) fn value(&self) -> Bytes {
        match self.version.shared() {
            Some(b) => b.clone(),
            None => Bytes::copy_from_slice(self.version.value()),
        }
    }
}

/// A position in the list: one version of one key.
#[derive(Clone, Copy)]
pub(super) struct Cursor<'a> {
    node: NodeRef<'a>,
    version: VersionRef<'a>,
}

// SAFETY: a cursor only reads published, immutable memory (and atomics) of a list that
// is Sync; the raw pointers inside are what keeps it from being Send automatically.
unsafe impl Send for Cursor<'_> {}
unsafe impl Sync for Cursor<'_> {}

impl<'a> Cursor<'a> {
    /// The entry's internal key.
    pub(super) fn key(&self) -> &'a [u8] {
        self.version.ikey()
    }

    pub(super) fn value(&self) -> &'a [u8] {
        self.version.value()
    }

    /// The next entry in internal-key order.
    pub(super) fn next(&self) -> Option<Cursor<'a>> {
        match self.version.older() {
            Some(version) => Some(Cursor {
                node: self.node,
                version,
            }),
            None => Cursor::newest_of(self.node.next(0)),
        }
    }

    fn newest_of(node: Option<NodeRef<'a>>) -> Option<Cursor<'a>> {
        let node = node?;
        // A walk in key order (the flush, a scan) goes from node to node, each a cache
        // miss found only when reached: start loading the next one now, header and the
        // first version that follows it, while the caller works on this one.
        if let Some(next) = node.next(0) {
            prefetch(next.ptr.as_ptr());
            prefetch(next.ptr.as_ptr().cast::<u8>().wrapping_add(64));
        }
        Some(Cursor {
            node,
            version: node.newest()?,
        })
    }
}

/// The list; see the module documentation.
pub(super) struct List {
    head: NonNull<KeyNode>,
    /// Levels in use (at least 1). Read relaxed: a reader that sees an old height
    /// starts lower, which is slower but still right, and new levels begin at the head.
    height: AtomicUsize,
    buckets: Box<[Bucket]>,
    versions: AtomicUsize,
    /// Nodes in the index but not yet linked into the skiplist (queued, or being
    /// linked): an ordered access that reads 0 takes no lock.
    unlinked: AtomicUsize,
    writer: Mutex<Writer>,
    /// Held while linking queued nodes, which only this lock's holder does: inserts
    /// never touch the skiplist, so they go on (under `writer`) while nodes are linked.
    linker: Mutex<()>,
}

// SAFETY: shared state changes only through atomics or under the writer or linker
// lock, and published memory is immutable but for atomics (see the module
// documentation).
unsafe impl Send for List {}
unsafe impl Sync for List {}

impl List {
    /// An empty list whose index has `buckets` buckets (at least one).
    pub(super) fn new(buckets: usize) -> List {
        let mut writer = Writer {
            arena: Arena::new(),
            rng: 0x9e37_79b9_7f4a_7c15,
            shared: Vec::new(),
            unordered: Chunked::default(),
        };
        let head = writer
            .arena
            .alloc(KeyNode::bytes(MAX_HEIGHT))
            .cast::<KeyNode>();
        // SAFETY: a fresh allocation of a node with MAX_HEIGHT slots.
        unsafe {
            write_node(
                head,
                KeyNode {
                    newest: AtomicPtr::new(ptr::null_mut()),
                    chain: ptr::null_mut(),
                    hash: 0,
                    prefix: 0,
                    key: NonNull::dangling().as_ptr(),
                    key_len: 0,
                    height: MAX_HEIGHT,
                },
            )
        };
        List {
            head,
            height: AtomicUsize::new(1),
            buckets: (0..buckets.max(1))
                .map(|_| Bucket {
                    head: AtomicPtr::new(ptr::null_mut()),
                    keys: AtomicU64::new(0),
                })
                .collect(),
            versions: AtomicUsize::new(0),
            unlinked: AtomicUsize::new(0),
            writer: Mutex::new(writer),
            linker: Mutex::new(()),
        }
    }

    /// Entries (versions) held.
    pub(super) fn len(&self) -> usize {
        self.versions.load(Ordering::Relaxed)
    }

    /// Memory held: the arena's blocks and the index (shared values not counted).
    pub(super) fn reserved_bytes(&self) -> usize {
        self.writer.lock().arena.reserved() + self.buckets.len() * size_of::<Bucket>()
    }

    /// Inserts the version `trailer` of `user_key`. An entry with the same internal key
    /// is replaced, as a map's insert replaces.
    pub(super) fn insert(&self, user_key: &[u8], trailer: u64, value: &[u8]) {
        let mut writer = self.writer.lock();
        let hash = key_hash(user_key);
        let version_bytes = Version::size(user_key.len() + key::TRAILER_LEN, value.len());
        if let Some(node) = self.find(user_key, hash) {
            let at = writer.arena.alloc(version_bytes);
            // SAFETY: a fresh allocation of the version's size.
            let version = unsafe { writer.write_version(at, user_key, trailer, value) };
            if !Self::link_version(node, version) {
                self.versions.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let height = writer.random_height();
        let node_bytes = KeyNode::bytes(height);
        // The node and its first version in one allocation: a search that compares
        // against the node's key finds the key next to the node.
        let at = writer.arena.alloc(node_bytes + version_bytes);
        let bucket = &self.buckets[self.bucket(hash)];
        let prefix = key_prefix(user_key);
        // SAFETY: the allocation holds the node (and its tower) then the version;
        // `node_bytes` is a multiple of 8, so the version is aligned.
        let node = unsafe {
            let version = writer.write_version(at.add(node_bytes), user_key, trailer, value);
            let node = at.cast::<KeyNode>();
            write_node(
                node,
                KeyNode {
                    newest: AtomicPtr::new(version.as_ptr()),
                    chain: bucket.head.load(Ordering::Relaxed),
                    hash,
                    prefix,
                    key: version.as_ptr().cast::<u8>().add(size_of::<Version>()),
                    key_len: user_key.len(),
                    height,
                },
            );
            node
        };
        // The key's bits first: a reader that sees the node through the head (acquire)
        // sees them too. Only the writer changes a bucket, so no read-modify-write.
        let keys = bucket.keys.load(Ordering::Relaxed) | Bucket::key_bits(hash);
        bucket.keys.store(keys, Ordering::Relaxed);
        bucket.head.store(node.as_ptr(), Ordering::Release);
        writer.unordered.push((prefix, node));
        self.unlinked.fetch_add(1, Ordering::Release);
        self.versions.fetch_add(1, Ordering::Relaxed);
    }

    /// Nodes inserted and not linked yet.
    pub(super) fn unordered(&self) -> usize {
        self.unlinked.load(Ordering::Relaxed)
    }

    /// Links every queued node into the skiplist, in key order, so that an ordered
    /// access sees every key inserted before it began. Inserts wait only for the
    /// queue to be taken, not for the sort or the links.
    pub(super) fn order(&self) {
        if self.unlinked.load(Ordering::Acquire) == 0 {
            return;
        }
        // Another access may be linking: waiting for it is what makes its nodes (taken
        // off the queue, still counted in `unlinked`) visible to this one.
        let _linker = self.linker.lock();
        let queued = self.take_queue();
        self.link_taken(queued);
    }

    /// Takes the writer's queue (the caller holds the `linker` lock). The nodes stay
    /// counted in `unlinked` until [`List::link_taken`] has linked them.
    fn take_queue(&self) -> Vec<Queued> {
        let taken = std::mem::take(&mut self.writer.lock().unordered);
        taken.into_vec()
    }

    /// Links the nodes taken off the queue, sorted (the caller holds the `linker`
    /// lock).
    fn link_taken(&self, mut queued: Vec<Queued>) {
        let node_of = |ptr: NonNull<KeyNode>| Published {
            ptr,
            _list: PhantomData,
        };
        queued.sort_unstable_by(|(pa, a), (pb, b)| {
            pa.cmp(pb)
                .then_with(|| node_of(*a).key().cmp(node_of(*b).key()))
        });
        let mut prev = [self.head(); MAX_HEIGHT];
        for (_, node) in &queued {
            self.link_node(node_of(*node), &mut prev);
        }
        let linked = queued.len();
        self.unlinked.fetch_sub(linked, Ordering::Release);
    }

    /// Links `node` into the skiplist. `prev` holds, at every level, a node before it:
    /// the head, or the nodes the previous (smaller) key was linked after, where the
    /// search resumes, so a sorted run is linked in about one step per node.
    /// Under the `linker` lock only.
    fn link_node<'a>(&'a self, node: NodeRef<'a>, prev: &mut [NodeRef<'a>; MAX_HEIGHT]) {
        let (key, prefix, height) = (node.key(), node.header().prefix, node.header().height);
        if height > self.height.load(Ordering::Relaxed) {
            self.height.store(height, Ordering::Relaxed);
        }
        let mut at = self.head();
        for level in (0..self.height.load(Ordering::Relaxed)).rev() {
            // Both `at` (reached from the level above) and `prev[level]` come before
            // `key`: resume from whichever is further along.
            let finger = prev[level];
            if at.ptr == self.head
                || (finger.ptr != self.head && at.precedes(finger.key(), finger.header().prefix))
            {
                at = finger;
            }
            while let Some(next) = at.next(level).filter(|n| n.precedes(key, prefix)) {
                at = next;
            }
            prev[level] = at;
        }
        for (level, before) in prev.iter_mut().enumerate().take(height) {
            node.tower(level).store(
                before.tower(level).load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            before
                .tower(level)
                .store(node.ptr.as_ptr(), Ordering::Release);
            // The next key is larger: it goes after this node at these levels.
            *before = node;
        }
    }

    /// Links `version` into `node`'s list, keeping it sorted newest (largest trailer)
    /// first; returns true if it replaced a version with the same trailer. Writer only.
    fn link_version(node: NodeRef<'_>, version: NonNull<Version>) -> bool {
        // SAFETY: written by the caller, not yet published.
        let new = unsafe { version.as_ref() };
        let mut link = &node.header().newest;
        loop {
            // SAFETY: a non-null link is a published version of this list.
            match unsafe { VersionRef::from_raw(link.load(Ordering::Relaxed)) } {
                // Older versions are found here only if the engine inserts out of
                // sequence order (it does not, but order is kept regardless).
                Some(c) if c.trailer() > new.trailer => link = &c.header().older,
                Some(c) if c.trailer() == new.trailer => {
                    new.older
                        .store(c.header().older.load(Ordering::Relaxed), Ordering::Relaxed);
                    link.store(version.as_ptr(), Ordering::Release);
                    return true;
                }
                current => {
                    new.older.store(
                        current.map_or(ptr::null_mut(), |c| c.ptr.as_ptr()),
                        Ordering::Relaxed,
                    );
                    link.store(version.as_ptr(), Ordering::Release);
                    return false;
                }
            }
        }
    }

    /// Starts loading the index bucket a lookup of the key hashed to `hash` reads
    /// first (see [`List::prefetch_node`]).
    pub(super) fn prefetch_bucket(&self, hash: u64) {
        prefetch(&self.buckets[self.bucket(hash)]);
    }

    /// Starts loading the node a lookup of the key hashed to `hash` reads after its
    /// bucket, if the bucket's bits say the key may be here. A pipeline's lookups, all
    /// known before the first runs, then overlap their cache misses: the buckets of all
    /// of them, then the nodes, then the lookups themselves, instead of two or three
    /// misses one after the other per key.
    pub(super) fn prefetch_node(&self, hash: u64) {
        let bucket = &self.buckets[self.bucket(hash)];
        let head = bucket.head.load(Ordering::Acquire);
        if !head.is_null() && bucket.may_hold(hash) {
            prefetch(head);
        }
    }

    /// The newest version of `user_key` with a sequence number at most `seq`.
    pub(super) fn get(&self, user_key: &[u8], seq: SeqNo) -> Option<Found<'_>> {
        let node = self.find(user_key, key_hash(user_key))?;
        let mut version = node.newest();
        while let Some(v) = version {
            if v.seq() <= seq {
                return Some(Found { version: v });
            }
            version = v.older();
        }
        None
    }

    /// The first entry.
    pub(super) fn first(&self) -> Option<Cursor<'_>> {
        self.order();
        Cursor::newest_of(self.head().next(0))
    }

    /// The first entry whose internal key is at or after `target` (by
    /// `compare_internal_keys`).
    pub(super) fn seek(&self, target: &[u8]) -> Option<Cursor<'_>> {
        let user_key = key::user_key(target);
        let trailer = key::trailer(target);
        self.order();
        let node = self.seek_node(user_key)?;
        if node.key() != user_key {
            return Cursor::newest_of(Some(node));
        }
        let mut version = node.newest();
        while let Some(v) = version {
            if v.trailer() <= trailer {
                return Some(Cursor { node, version: v });
            }
            version = v.older();
        }
        Cursor::newest_of(node.next(0))
    }

    fn head(&self) -> NodeRef<'_> {
        Published {
            ptr: self.head,
            _list: PhantomData,
        }
    }

    fn bucket(&self, hash: u64) -> usize {
        // Multiply-shift on the high half: no division.
        (((hash >> 32) * self.buckets.len() as u64) >> 32) as usize
    }

    /// The node of `user_key`, through the index.
    fn find(&self, user_key: &[u8], hash: u64) -> Option<NodeRef<'_>> {
        let bucket = &self.buckets[self.bucket(hash)];
        // SAFETY: bucket heads and chain links are published nodes of this list.
        let mut node = unsafe { NodeRef::from_raw(bucket.head.load(Ordering::Acquire)) };
        if !bucket.may_hold(hash) {
            return None;
        }
        while let Some(n) = node {
            if n.header().hash == hash && n.key() == user_key {
                return Some(n);
            }
            // SAFETY: as above.
            node = unsafe { NodeRef::from_raw(n.header().chain) };
        }
        None
    }

    /// The first node whose key is at or after `user_key` among the ordered ones.
    fn seek_node<'a>(&'a self, user_key: &[u8]) -> Option<NodeRef<'a>> {
        let mut node = self.head();
        let prefix = key_prefix(user_key);
        for level in (0..self.height.load(Ordering::Relaxed)).rev() {
            while let Some(next) = node.next(level).filter(|n| n.precedes(user_key, prefix)) {
                node = next;
            }
        }
        node.next(0)
    }
}

/// Asks the CPU to bring the cache line at `at` in, without waiting for it. A hint: no
/// fault if the address is not mapped (it is never read through here).
fn prefetch<T>(at: *const T) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: prefetching has no effect the program can observe but timing.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast::<i8>());
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = at;
}

/// Writes `header` and `header.height` empty tower slots at `at`.
///
/// # Safety
/// `at` must be a fresh allocation of `KeyNode::bytes(header.height)` bytes, 8-aligned.
unsafe fn write_node(at: NonNull<KeyNode>, header: KeyNode) {
    let height = header.height;
    ptr::write(at.as_ptr(), header);
    let tower = at.as_ptr().add(1).cast::<AtomicPtr<KeyNode>>();
    for level in 0..height {
        ptr::write(tower.add(level), AtomicPtr::new(ptr::null_mut()));
    }
}

impl Drop for List {
    fn drop(&mut self) {
        for value in self.writer.get_mut().shared.drain(..) {
            // SAFETY: each was written once and is dropped once, here; the arena that
            // holds it is freed after this.
            unsafe { ptr::drop_in_place(value.as_ptr()) };
        }
    }
}

impl std::fmt::Debug for List {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("List")
            .field("entries", &self.len())
            .field("buckets", &self.buckets.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An ordered access that finds another linking must wait for it: the nodes the
    /// other took off the queue are not linked yet, so they must still count.
    #[test]
    fn nodes_taken_off_the_queue_count_as_unlinked_until_linked() {
        // More than two queue chunks, inserted out of order.
        let n = 2 * crate::chunked::CHUNK as u32 + 5;
        let list = List::new(1024);
        for i in (0..n).rev() {
            list.insert(
                &i.to_be_bytes(),
                key::pack_trailer(u64::from(i) + 1, 1),
                b"v",
            );
        }
        assert_eq!(list.unlinked.load(Ordering::Acquire), n as usize);
        let linker = list.linker.lock();
        let queued = list.take_queue();
        assert_eq!(queued.len(), n as usize);
        assert_eq!(
            list.unlinked.load(Ordering::Acquire),
            n as usize,
            "taken but not linked: an ordered access must not skip the wait"
        );
        list.link_taken(queued);
        assert_eq!(list.unlinked.load(Ordering::Acquire), 0);
        drop(linker);
        let mut keys = Vec::new();
        let mut cursor = list.first();
        while let Some(c) = cursor {
            keys.push(key::user_key(c.key()).to_vec());
            cursor = c.next();
        }
        let want: Vec<Vec<u8>> = (0..n).map(|i| i.to_be_bytes().to_vec()).collect();
        assert_eq!(keys, want);
    }

    proptest! {
        /// Prefixes that differ order keys as the keys do (short keys, zero bytes and
        /// shared beginnings included); equal prefixes leave it to the key.
        #[test]
        fn differing_prefixes_order_as_their_keys(
            a in prop::collection::vec(prop_oneof![Just(0u8), Just(1u8), any::<u8>()], 0..12),
            b in prop::collection::vec(prop_oneof![Just(0u8), Just(1u8), any::<u8>()], 0..12),
        ) {
            let (pa, pb) = (key_prefix(&a), key_prefix(&b));
            if pa != pb {
                prop_assert_eq!(pa < pb, a < b, "{:?} {:?}", a, b);
            }
            if a == b {
                prop_assert_eq!(pa, pb);
            }
        }
    }
}
