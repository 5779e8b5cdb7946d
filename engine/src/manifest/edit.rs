//! Version edits: the records of the MANIFEST. Spec: docs/format/manifest.md.
//!
//! ```text
//! edit        := field* end
//! end         := varint(0)
//! field       := varint(2) log_number:varint
//!              | varint(3) next_file_number:varint
//!              | varint(4) last_sequence:varint
//!              | varint(6) level:varint number:varint                 ; deleted file
//!              | varint(7) level:varint file_meta                     ; new file
//!              | varint(10) id:u8 name:bytes                          ; new keyspace
//! file_meta   := number:varint size:varint smallest:bytes largest:bytes
//!                smallest_seq:varint largest_seq:varint entries:varint deletions:varint
//! bytes       := length:varint data
//! ```
//! The `end` tag makes a cut record fail to decode instead of passing for a smaller edit.

use crate::coding::{put_length_prefixed, put_varint, Decoder};
use crate::constants::NUM_LEVELS;
use crate::key::TRAILER_LEN;

/// Field tags of an encoded edit. On disk: never change or reuse a value. 1, 5, 8 and 9
/// are LevelDB's comparator, compact-pointer and old file tags: reserved, never used.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// Ends the edit.
    End = 0,
    /// `log_number`.
    LogNumber = 2,
    /// `next_file_number`.
    NextFileNumber = 3,
    /// `last_sequence`.
    LastSequence = 4,
    /// One entry of `deleted_files`.
    DeletedFile = 6,
    /// One entry of `new_files`.
    NewFile = 7,
    /// One entry of `new_keyspaces`.
    NewKeyspace = 10,
}

impl Tag {
    /// Decodes a tag; `None` for values no version has defined.
    pub fn from_u64(v: u64) -> Option<Tag> {
        match v {
            0 => Some(Tag::End),
            2 => Some(Tag::LogNumber),
            3 => Some(Tag::NextFileNumber),
            4 => Some(Tag::LastSequence),
            6 => Some(Tag::DeletedFile),
            7 => Some(Tag::NewFile),
            10 => Some(Tag::NewKeyspace),
            _ => None,
        }
    }
}

/// What the engine knows about one SSTable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// File number (`NNNNNN.sst`).
    pub number: u64,
    /// File size in bytes.
    pub size: u64,
    /// Smallest internal key in the file (inclusive).
    pub smallest: Vec<u8>,
    /// Largest internal key in the file (inclusive).
    pub largest: Vec<u8>,
    /// Smallest sequence number of any entry.
    pub smallest_seq: u64,
    /// Largest sequence number of any entry.
    pub largest_seq: u64,
    /// Number of entries.
    pub entries: u64,
    /// Number of tombstones among them.
    pub deletions: u64,
}

/// A change to the database's file set and counters; one MANIFEST record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// WALs with a number below this are obsolete (their data is in SSTables).
    pub log_number: Option<u64>,
    /// The next file number to allocate.
    pub next_file_number: Option<u64>,
    /// The largest sequence number used.
    pub last_sequence: Option<u64>,
    /// Files added: `(level, file)`.
    pub new_files: Vec<(usize, FileMeta)>,
    /// Files removed: `(level, number)`.
    pub deleted_files: Vec<(usize, u64)>,
    /// Keyspaces created: `(id, name)`.
    pub new_keyspaces: Vec<(u8, String)>,
}

type DecodeResult<T> = std::result::Result<T, (usize, String)>;

impl VersionEdit {
    /// Encodes the edit (see the module docs for the grammar).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let scalars = [
            (Tag::LogNumber, self.log_number),
            (Tag::NextFileNumber, self.next_file_number),
            (Tag::LastSequence, self.last_sequence),
        ];
        for (tag, value) in scalars {
            if let Some(v) = value {
                put_varint(&mut out, tag as u64);
                put_varint(&mut out, v);
            }
        }
        for (id, name) in &self.new_keyspaces {
            put_varint(&mut out, Tag::NewKeyspace as u64);
            out.push(*id);
            put_length_prefixed(&mut out, name.as_bytes());
        }
        for &(level, number) in &self.deleted_files {
            put_varint(&mut out, Tag::DeletedFile as u64);
            put_varint(&mut out, level as u64);
            put_varint(&mut out, number);
        }
        for (level, f) in &self.new_files {
            put_varint(&mut out, Tag::NewFile as u64);
            put_varint(&mut out, *level as u64);
            put_varint(&mut out, f.number);
            put_varint(&mut out, f.size);
            put_length_prefixed(&mut out, &f.smallest);
            put_length_prefixed(&mut out, &f.largest);
            for v in [f.smallest_seq, f.largest_seq, f.entries, f.deletions] {
                put_varint(&mut out, v);
            }
        }
        put_varint(&mut out, Tag::End as u64);
        out
    }

    /// Decodes an edit; `Err((offset, what))` names the first bad byte of `buf`.
    /// A scalar field given twice keeps its last value.
    pub fn decode(buf: &[u8]) -> std::result::Result<Self, (usize, String)> {
        let mut d = Decoder::new(buf);
        let mut edit = VersionEdit::default();
        loop {
            let at = d.position();
            let raw = d
                .varint()
                .ok_or((at, "truncated edit: no End tag".to_string()))?;
            let tag = Tag::from_u64(raw).ok_or_else(|| (at, format!("unknown tag {raw}")))?;
            match tag {
                Tag::End if d.is_empty() => return Ok(edit),
                Tag::End => return Err((d.position(), "bytes after the End tag".to_string())),
                Tag::LogNumber => edit.log_number = Some(varint(&mut d, "log number")?),
                Tag::NextFileNumber => {
                    edit.next_file_number = Some(varint(&mut d, "next file number")?)
                }
                Tag::LastSequence => edit.last_sequence = Some(varint(&mut d, "last sequence")?),
                Tag::DeletedFile => {
                    let level = level(&mut d)?;
                    edit.deleted_files
                        .push((level, varint(&mut d, "deleted file number")?));
                }
                Tag::NewFile => {
                    let level = level(&mut d)?;
                    edit.new_files.push((level, file_meta(&mut d)?));
                }
                Tag::NewKeyspace => edit.new_keyspaces.push(keyspace(&mut d)?),
            }
        }
    }
}

fn varint(d: &mut Decoder<'_>, what: &str) -> DecodeResult<u64> {
    let at = d.position();
    d.varint()
        .ok_or_else(|| (at, format!("truncated or overlong {what}")))
}

fn level(d: &mut Decoder<'_>) -> DecodeResult<usize> {
    let at = d.position();
    let v = varint(d, "level")?;
    usize::try_from(v)
        .ok()
        .filter(|&l| l < NUM_LEVELS)
        .ok_or_else(|| (at, format!("level {v} out of range (0..{NUM_LEVELS})")))
}

fn internal_key(d: &mut Decoder<'_>, what: &str) -> DecodeResult<Vec<u8>> {
    let at = d.position();
    match d.length_prefixed() {
        Some(k) if k.len() >= TRAILER_LEN => Ok(k.to_vec()),
        Some(k) => Err((
            at,
            format!("{what} key of {} bytes has no trailer", k.len()),
        )),
        None => Err((at, format!("truncated {what} key"))),
    }
}

fn file_meta(d: &mut Decoder<'_>) -> DecodeResult<FileMeta> {
    let number = varint(d, "file number")?;
    let size = varint(d, "file size")?;
    let smallest = internal_key(d, "smallest")?;
    let largest = internal_key(d, "largest")?;
    Ok(FileMeta {
        number,
        size,
        smallest,
        largest,
        smallest_seq: varint(d, "smallest sequence")?,
        largest_seq: varint(d, "largest sequence")?,
        entries: varint(d, "entry count")?,
        deletions: varint(d, "deletion count")?,
    })
}

fn keyspace(d: &mut Decoder<'_>) -> DecodeResult<(u8, String)> {
    let at = d.position();
    let id = d.u8().ok_or((at, "truncated keyspace id".to_string()))?;
    let at = d.position();
    let name = d
        .length_prefixed()
        .ok_or((at, "truncated keyspace name".to_string()))?;
    let name =
        std::str::from_utf8(name).map_err(|_| (at, "keyspace name is not UTF-8".to_string()))?;
    Ok((id, name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_values_are_fixed() {
        for (v, t) in [
            (0, Tag::End),
            (2, Tag::LogNumber),
            (3, Tag::NextFileNumber),
            (4, Tag::LastSequence),
            (6, Tag::DeletedFile),
            (7, Tag::NewFile),
            (10, Tag::NewKeyspace),
        ] {
            assert_eq!(t as u64, v);
            assert_eq!(Tag::from_u64(v), Some(t));
        }
        for reserved in [1, 5, 8, 9, 11] {
            assert_eq!(Tag::from_u64(reserved), None);
        }
    }

    #[test]
    fn empty_edit_is_one_end_tag() {
        assert_eq!(VersionEdit::default().encode(), vec![0]);
        assert_eq!(VersionEdit::decode(&[0]), Ok(VersionEdit::default()));
    }

    #[test]
    fn unknown_tag_names_its_offset() {
        let mut buf = VersionEdit {
            log_number: Some(300),
            ..Default::default()
        }
        .encode();
        buf.pop();
        buf.extend([9, 0]);
        assert_eq!(VersionEdit::decode(&buf), Err((3, "unknown tag 9".into())));
    }

    #[test]
    fn level_out_of_range_is_refused() {
        let buf = [Tag::DeletedFile as u8, NUM_LEVELS as u8, 5, 0];
        assert!(matches!(VersionEdit::decode(&buf), Err((1, _))));
    }
}
