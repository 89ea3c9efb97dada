//! The opcode stream of a part, decoded into one job per object.
//!
//! Opcodes (each followed by varint arguments):
//! - `S` open-splice-and-close: metadata `(len, off)` or content
//!   `(mode_idx, xattr_idx, size, off)`; the object is `blob[off..off+len]`
//!   (for a symlink, its target).
//! - `o` open `(mode_idx, xattr_idx, size)`: start a regular file.
//! - `w` write `(len, off)`: append `len` bytes from the read source if one
//!   is set, else from the blob.
//! - `r` set-read-source `(off)`: the 32-byte checksum at `blob[off]` names
//!   an existing content object to read from.
//! - `R` unset-read-source.
//! - `c` close: the open object is complete (also unsets the read source).
//! - `B` bspatch `(off, len)`: the open object is the bsdiff patch
//!   `blob[off..off+len]` applied to the read source.
//!
//! Decoding checks everything that can be checked without the repo: blob
//! ranges, table indexes, the object list of the header, and the state
//! machine. Executing the jobs (in `apply`) verifies every object.

use super::error::{DeltaError, Result};
use super::part::PartPayload;
use super::varint;
use kiln_store::object::{FileMeta, ObjectType};
use kiln_store::Checksum;

pub const OP_OPEN_SPLICE_AND_CLOSE: u8 = b'S';
pub const OP_OPEN: u8 = b'o';
pub const OP_WRITE: u8 = b'w';
pub const OP_SET_READ_SOURCE: u8 = b'r';
pub const OP_UNSET_READ_SOURCE: u8 = b'R';
pub const OP_CLOSE: u8 = b'c';
pub const OP_BSPATCH: u8 = b'B';

/// Where some bytes of a new content object come from.
#[derive(Debug, Clone)]
pub enum Piece<'a> {
    Blob(&'a [u8]),
    /// `len` bytes at `off` of an existing object's content.
    Source {
        src: Checksum,
        off: u64,
        len: u64,
    },
    /// The whole object: a bsdiff patch against an existing object.
    Patch {
        src: Checksum,
        patch: &'a [u8],
    },
}

/// One object a part creates.
#[derive(Debug, Clone)]
pub enum Job<'a> {
    Meta {
        ty: ObjectType,
        csum: Checksum,
        data: &'a [u8],
    },
    Content {
        csum: Checksum,
        meta: FileMeta,
        size: u64,
        pieces: Vec<Piece<'a>>,
    },
}

impl Job<'_> {
    pub fn checksum(&self) -> &Checksum {
        match self {
            Job::Meta { csum, .. } | Job::Content { csum, .. } => csum,
        }
    }
}

/// How many of each opcode a part executes (for `show`).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct OpStats {
    pub openspliceclose: u32,
    pub open: u32,
    pub write: u32,
    pub setread: u32,
    pub unsetread: u32,
    pub close: u32,
    pub bspatch: u32,
}

struct Cursor<'a> {
    ops: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn varint(&mut self) -> Result<u64> {
        let (v, n) = varint::read(&self.ops[self.pos..]).ok_or_else(|| {
            DeltaError::malformed(
                "part",
                format!(
                    "Unexpected EOF reading varint at opcode offset {}",
                    self.pos
                ),
            )
        })?;
        self.pos += n;
        Ok(v)
    }
}

fn blob_range(blob: &[u8], off: u64, len: u64) -> Result<&[u8]> {
    let end = off.checked_add(len).filter(|&e| e <= blob.len() as u64);
    match end {
        Some(end) => Ok(&blob[off as usize..end as usize]),
        None => Err(DeltaError::malformed(
            "part",
            format!("Invalid offset/length {off}/{len}"),
        )),
    }
}

struct Open<'a> {
    csum: Checksum,
    meta: FileMeta,
    size: u64,
    pieces: Vec<Piece<'a>>,
}

/// Decode a part's opcodes against the object list of its header.
pub fn decode<'a>(
    payload: &PartPayload<'a>,
    objects: &[(ObjectType, Checksum)],
) -> Result<(Vec<Job<'a>>, OpStats)> {
    let bad = |why: String| DeltaError::malformed("part", why);
    let mut c = Cursor {
        ops: payload.ops,
        pos: 0,
    };
    let mut jobs = Vec::with_capacity(objects.len());
    let mut stats = OpStats::default();
    let mut next = 0usize;
    let mut open: Option<Open<'a>> = None;
    let mut source: Option<Checksum> = None;

    let file_meta = |c: &mut Cursor<'_>| -> Result<FileMeta> {
        let mi = c.varint()?;
        let xi = c.varint()?;
        let &(uid, gid, mode) = usize::try_from(mi)
            .ok()
            .and_then(|i| payload.modes.get(i))
            .ok_or_else(|| bad(format!("mode index {mi} out of range")))?;
        let xattrs = usize::try_from(xi)
            .ok()
            .and_then(|i| payload.xattrs.get(i))
            .ok_or_else(|| bad(format!("xattr index {xi} out of range")))?
            .clone();
        Ok(FileMeta {
            uid,
            gid,
            mode,
            rdev: 0,
            symlink_target: String::new(),
            xattrs,
        })
    };

    while c.pos < c.ops.len() {
        let at = c.pos;
        let op = c.ops[at];
        c.pos += 1;
        let next_is_file = objects
            .get(next)
            .map(|o| o.0 == ObjectType::File)
            .unwrap_or(false);
        let mut take = |want_file: bool| -> Result<(ObjectType, Checksum)> {
            let &(ty, csum) = objects.get(next).ok_or_else(|| {
                bad(format!(
                    "opcode at offset {at} creates more objects than the header lists"
                ))
            })?;
            if want_file != (ty == ObjectType::File) {
                return Err(bad(format!(
                    "opcode at offset {at} does not fit object {csum}.{ty}"
                )));
            }
            next += 1;
            Ok((ty, csum))
        };
        match op {
            OP_OPEN_SPLICE_AND_CLOSE => {
                stats.openspliceclose += 1;
                if open.is_some() {
                    return Err(bad(format!(
                        "open-splice-and-close at offset {at} while an object is open"
                    )));
                }
                if !next_is_file {
                    let (ty, csum) = take(false)?;
                    let len = c.varint()?;
                    let off = c.varint()?;
                    jobs.push(Job::Meta {
                        ty,
                        csum,
                        data: blob_range(payload.blob, off, len)?,
                    });
                } else {
                    let (_, csum) = take(true)?;
                    let mut meta = file_meta(&mut c)?;
                    let size = c.varint()?;
                    let off = c.varint()?;
                    let data = blob_range(payload.blob, off, size)?;
                    if meta.is_symlink() {
                        meta.symlink_target = std::str::from_utf8(data)
                            .map_err(|_| bad(format!("symlink target of {csum} is not UTF-8")))?
                            .to_string();
                        meta.validate()
                            .map_err(|e| bad(format!("object {csum}: {e}")))?;
                        jobs.push(Job::Content {
                            csum,
                            meta,
                            size: 0,
                            pieces: vec![],
                        });
                    } else {
                        meta.validate()
                            .map_err(|e| bad(format!("object {csum}: {e}")))?;
                        jobs.push(Job::Content {
                            csum,
                            meta,
                            size,
                            pieces: vec![Piece::Blob(data)],
                        });
                    }
                }
                source = None;
            }
            OP_OPEN => {
                stats.open += 1;
                if open.is_some() {
                    return Err(bad(format!("open at offset {at} while an object is open")));
                }
                let (_, csum) = take(true)?;
                let meta = file_meta(&mut c)?;
                if !meta.is_regular() {
                    return Err(bad(format!(
                        "open at offset {at}: object {csum} is not a regular file"
                    )));
                }
                meta.validate()
                    .map_err(|e| bad(format!("object {csum}: {e}")))?;
                let size = c.varint()?;
                open = Some(Open {
                    csum,
                    meta,
                    size,
                    pieces: Vec::new(),
                });
            }
            OP_WRITE => {
                stats.write += 1;
                let len = c.varint()?;
                let off = c.varint()?;
                let o = open
                    .as_mut()
                    .ok_or_else(|| bad(format!("write at offset {at} with no open object")))?;
                let piece = match source {
                    Some(src) => Piece::Source { src, off, len },
                    None => Piece::Blob(blob_range(payload.blob, off, len)?),
                };
                o.pieces.push(piece);
            }
            OP_SET_READ_SOURCE => {
                stats.setread += 1;
                let off = c.varint()?;
                let b = blob_range(payload.blob, off, 32)?;
                source = Checksum::from_bytes(b);
            }
            OP_UNSET_READ_SOURCE => {
                stats.unsetread += 1;
                source = None;
            }
            OP_CLOSE => {
                stats.close += 1;
                let o = open
                    .take()
                    .ok_or_else(|| bad(format!("close at offset {at} with no open object")))?;
                jobs.push(Job::Content {
                    csum: o.csum,
                    meta: o.meta,
                    size: o.size,
                    pieces: o.pieces,
                });
                source = None;
            }
            OP_BSPATCH => {
                stats.bspatch += 1;
                let off = c.varint()?;
                let len = c.varint()?;
                let patch = blob_range(payload.blob, off, len)?;
                let src = source
                    .ok_or_else(|| bad(format!("bspatch at offset {at} with no read source")))?;
                let o = open
                    .as_mut()
                    .ok_or_else(|| bad(format!("bspatch at offset {at} with no open object")))?;
                o.pieces.push(Piece::Patch { src, patch });
            }
            other => return Err(bad(format!("Unknown opcode {other} at offset {at}"))),
        }
    }
    if open.is_some() {
        return Err(bad("opcode stream ends with an object still open".into()));
    }
    if next != objects.len() {
        return Err(bad(format!(
            "opcodes create {next} of the {} objects the header lists",
            objects.len()
        )));
    }
    Ok((jobs, stats))
}
