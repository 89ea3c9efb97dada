//! Delta parts: `y` compression byte, then the payload
//! `(a(uuu)aa(ayay)ayay)`: a mode table (uid, gid, mode, big-endian), an
//! xattr table, a blob of raw data and an opcode stream.

use super::compress;
use super::error::{DeltaError, Result};
use super::framing::{build_array, build_tuple, split_array, split_tuple};
use super::superblock::{t_ay, PartHeader};
use kiln_store::gvariant::Type;
use kiln_store::object::Xattrs;
use kiln_store::Checksum;
use std::sync::OnceLock;

pub const COMPRESSION_NONE: u8 = 0;
pub const COMPRESSION_XZ: u8 = b'x';

fn t_payload() -> &'static Type {
    static T: OnceLock<Type> = OnceLock::new();
    super::superblock::ty("(a(uuu)aa(ayay)ayay)", &T)
}
fn t_xattrs() -> &'static Type {
    static T: OnceLock<Type> = OnceLock::new();
    super::superblock::ty("a(ayay)", &T)
}
fn t_modes() -> &'static Type {
    static T: OnceLock<Type> = OnceLock::new();
    super::superblock::ty("a(uuu)", &T)
}
fn t_xattr_table() -> &'static Type {
    static T: OnceLock<Type> = OnceLock::new();
    super::superblock::ty("aa(ayay)", &T)
}
fn t_xattr() -> &'static Type {
    static T: OnceLock<Type> = OnceLock::new();
    super::superblock::ty("(ayay)", &T)
}

/// The decoded payload of a part. `blob` and `ops` borrow the
/// decompressed bytes.
#[derive(Debug)]
pub struct PartPayload<'a> {
    /// (uid, gid, st_mode), host order.
    pub modes: Vec<(u32, u32, u32)>,
    pub xattrs: Vec<Xattrs>,
    pub blob: &'a [u8],
    pub ops: &'a [u8],
}

fn bad(why: impl Into<String>) -> DeltaError {
    DeltaError::malformed("part", why)
}

/// Check a part's bytes against its header (size and, if given, SHA-256)
/// and decompress it. Returns the raw payload bytes.
pub fn open_part(bytes: &[u8], header: &PartHeader, verify: bool, label: &str) -> Result<Vec<u8>> {
    if bytes.len() as u64 != header.size {
        return Err(bad(format!(
            "part {label} is {} bytes, the superblock says {}",
            bytes.len(),
            header.size
        )));
    }
    if verify {
        let actual = Checksum::of(bytes);
        if actual != header.checksum {
            return Err(DeltaError::PartChecksum {
                part: label.to_string(),
                expected: header.checksum,
                actual,
            });
        }
    }
    decompress_part(bytes)
}

/// Strip the compression byte and decompress.
pub fn decompress_part(bytes: &[u8]) -> Result<Vec<u8>> {
    let (&c, rest) = bytes.split_first().ok_or_else(|| bad("empty part"))?;
    match c {
        COMPRESSION_NONE => Ok(rest.to_vec()),
        // Payload = objects + tables + opcodes: bounded by a generous
        // multiple of the input plus 1 GiB.
        COMPRESSION_XZ => compress::xz_decompress(
            rest,
            (rest.len() as u64)
                .saturating_mul(64)
                .saturating_add(1 << 30),
        ),
        other => Err(bad(format!("Invalid compression type '{other}'"))),
    }
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Parse a decompressed payload (strict).
pub fn parse_payload(data: &[u8]) -> Result<PartPayload<'_>> {
    let Type::Tuple(m) = t_payload() else {
        return Err(bad("internal type"));
    };
    let f = split_tuple(m, data).map_err(bad)?;
    if f[0].len() % 12 != 0 {
        return Err(bad("mode table size is not a multiple of 12"));
    }
    let modes = f[0]
        .chunks_exact(12)
        .map(|c| {
            (
                u32::from_be(u32_at(c, 0)),
                u32::from_be(u32_at(c, 4)),
                u32::from_be(u32_at(c, 8)),
            )
        })
        .collect();
    let mut xattrs = Vec::new();
    for x in split_array(t_xattrs(), f[1]).map_err(|e| bad(format!("xattr table: {e}")))? {
        xattrs.push(
            kiln_store::object::decode_xattrs(x).map_err(|e| bad(format!("xattr table: {e}")))?,
        );
    }
    Ok(PartPayload {
        modes,
        xattrs,
        blob: f[2],
        ops: f[3],
    })
}

/// Serialize a payload.
pub fn encode_payload(
    modes: &[(u32, u32, u32)],
    xattrs: &[Xattrs],
    blob: &[u8],
    ops: &[u8],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(modes.len() * 12);
    for (u, g, md) in modes {
        for v in [u, g, md] {
            m.extend_from_slice(&v.to_be().to_le_bytes());
        }
    }
    let x: Vec<Vec<u8>> = xattrs
        .iter()
        .map(kiln_store::object::encode_xattrs)
        .collect();
    let _ = t_xattr();
    build_tuple(&[
        (t_modes(), &m),
        (t_xattr_table(), &build_array(t_xattrs(), &x)),
        (t_ay(), blob),
        (t_ay(), ops),
    ])
}
