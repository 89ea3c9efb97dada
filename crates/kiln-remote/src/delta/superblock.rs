//! The delta superblock: `(a{sv}tayay(commit)aya(uayttay)a(yaytt))`.
//!
//! Byte order, as ostree 2022.7 writes it: the timestamp is big-endian; the
//! part header fields (`u` version, `t` size, `t` usize) and the fallback
//! sizes are in the *generator's* byte order, recorded as
//! `ostree.endianness` (`y` `'l'` or `'B'`) in the metadata. Older deltas
//! without that key are guessed with ostree's heuristic.

use super::error::{DeltaError, Result};
use super::framing::{build_array, build_tuple, split_array, split_tuple};
use super::name;
use kiln_store::gvariant::{self, Type, Value, VarDict};
use kiln_store::object::{Commit, ObjectType};
use kiln_store::Checksum;
use std::sync::OnceLock;

/// Part payload format versions this implementation executes.
pub const MAX_PART_VERSION: u32 = 0;
/// `OSTSGNDT`: first 8 bytes (big-endian) of a signed superblock.
pub const SIGNED_MAGIC: u64 = 0x4F53_5453_474E_4454;

pub(crate) fn ty(s: &'static str, cell: &'static OnceLock<Type>) -> &'static Type {
    cell.get_or_init(|| Type::parse(s).unwrap_or(Type::Byte))
}

macro_rules! types {
    ($($f:ident = $s:expr;)*) => {$(
        pub(crate) fn $f() -> &'static Type {
            static T: OnceLock<Type> = OnceLock::new();
            ty($s, &T)
        }
    )*};
}
types! {
    t_superblock = "(a{sv}tayay(a{sv}aya(say)sstayay)aya(uayttay)a(yaytt))";
    t_part_header = "(uayttay)";
    t_fallback = "(yaytt)";
    t_signed = "(taya{sv})";
    t_vardict = "a{sv}";
    t_ay = "ay";
    t_u64 = "t";
    t_u32 = "u";
    t_byte = "y";
    t_commit = "(a{sv}aya(say)sstayay)";
    t_part_headers = "a(uayttay)";
    t_fallbacks = "a(yaytt)";
}

fn members(t: &'static Type) -> &'static [Type] {
    match t {
        Type::Tuple(m) => m,
        _ => &[],
    }
}

/// Byte order of a delta's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Endianness {
    Little,
    Big,
}

impl Endianness {
    pub fn host() -> Endianness {
        if cfg!(target_endian = "big") {
            Endianness::Big
        } else {
            Endianness::Little
        }
    }

    fn swap(self) -> bool {
        self != Endianness::host()
    }
}

/// What one part creates and how big it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartHeader {
    pub version: u32,
    /// SHA-256 of the whole part file (compression byte included).
    pub checksum: Checksum,
    /// Size of the part file.
    pub size: u64,
    /// Uncompressed size of the objects it creates.
    pub usize: u64,
    /// The objects, in the order the part's opcodes create them.
    #[serde(skip)]
    pub objects: Vec<(ObjectType, Checksum)>,
}

/// An object too big for the delta, to be fetched on its own.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FallbackEntry {
    pub objtype: ObjectType,
    pub checksum: Checksum,
    /// Size as stored on the server (compressed for archive repos).
    pub size: u64,
    pub usize: u64,
}

/// A parsed superblock. Sizes are in host order whatever the delta's
/// endianness.
#[derive(Debug, Clone)]
pub struct Superblock {
    pub metadata: VarDict,
    /// Seconds since the epoch when the delta was generated.
    pub timestamp: u64,
    pub from: Option<Checksum>,
    pub to: Checksum,
    /// The to-commit object, exactly as stored (its checksum is `to`).
    pub commit_bytes: Vec<u8>,
    pub commit: Commit,
    /// Deltas to apply first (unused by ostree's generator).
    pub dependencies: Vec<(Checksum, Checksum)>,
    pub parts: Vec<PartHeader>,
    pub fallback: Vec<FallbackEntry>,
    pub endianness: Endianness,
    /// True if the endianness was guessed (no `ostree.endianness` key).
    pub endianness_heuristic: bool,
    /// Whether the superblock came wrapped in a signature envelope, and
    /// the signature keys found there (not verified here).
    pub signatures: Option<Vec<String>>,
}

fn bad(why: impl Into<String>) -> DeltaError {
    DeltaError::malformed("superblock", why)
}

fn csum(b: &[u8], what: &str) -> Result<Checksum> {
    Checksum::from_bytes(b).ok_or_else(|| bad(format!("{what} is not a 32-byte checksum")))
}

fn u64_le(b: &[u8]) -> Result<u64> {
    Ok(u64::from_le_bytes(
        b.try_into().map_err(|_| bad("bad uint64"))?,
    ))
}

fn u32_le(b: &[u8]) -> Result<u32> {
    Ok(u32::from_le_bytes(
        b.try_into().map_err(|_| bad("bad uint32"))?,
    ))
}

/// Parse the `ay` list of `(objtype, checksum)` pairs of a part header.
pub fn parse_object_list(b: &[u8]) -> Result<Vec<(ObjectType, Checksum)>> {
    if !b.len().is_multiple_of(33) {
        return Err(bad(format!("Invalid checksum array length {}", b.len())));
    }
    b.chunks_exact(33)
        .map(|c| {
            let t = ObjectType::from_u8(c[0])
                .ok_or_else(|| bad(format!("invalid object type {}", c[0])))?;
            Ok((t, csum(&c[1..], "object checksum")?))
        })
        .collect()
}

pub fn encode_object_list(objs: &[(ObjectType, Checksum)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(objs.len() * 33);
    for (t, c) in objs {
        out.push(t.to_u8());
        out.extend_from_slice(&c.0);
    }
    out
}

/// Parse a superblock (plain or in a signature envelope). Strict: any
/// framing error, bad checksum length, unknown object type or a commit
/// whose bytes do not hash to the `to` checksum is an error.
pub fn parse_superblock(bytes: &[u8]) -> Result<Superblock> {
    if bytes.len() >= 8 && bytes[..8] == SIGNED_MAGIC.to_be_bytes() {
        let m = split_tuple(members(t_signed()), bytes)
            .map_err(|e| bad(format!("signed envelope: {e}")))?;
        let sigs = kiln_store::object::decode_vardict(m[2])
            .map_err(|e| bad(format!("signatures: {e}")))?;
        let mut sb = parse_plain(m[1])?;
        sb.signatures = Some(
            sigs.0
                .iter()
                .filter_map(|(k, _)| k.strip_prefix("ostree.sign.").map(String::from))
                .collect(),
        );
        return Ok(sb);
    }
    parse_plain(bytes)
}

fn parse_plain(bytes: &[u8]) -> Result<Superblock> {
    let m = split_tuple(members(t_superblock()), bytes).map_err(bad)?;
    let metadata =
        kiln_store::object::decode_vardict(m[0]).map_err(|e| bad(format!("metadata: {e}")))?;
    let timestamp = u64::from_be(u64_le(m[1])?);
    let from = match m[2] {
        [] => None,
        b => Some(csum(b, "from checksum")?),
    };
    let to = csum(m[3], "to checksum")?;
    let commit_bytes = m[4].to_vec();
    let actual = Checksum::of(&commit_bytes);
    if actual != to {
        return Err(DeltaError::ObjectChecksum {
            what: "commit",
            expected: to,
            actual,
        });
    }
    let commit = Commit::from_bytes(&commit_bytes).map_err(|e| bad(format!("commit: {e}")))?;
    if m[5].len() % 64 != 0 {
        return Err(bad("dependency list length is not a multiple of 64"));
    }
    let dependencies = m[5]
        .chunks_exact(64)
        .map(|c| Ok((csum(&c[..32], "dependency")?, csum(&c[32..], "dependency")?)))
        .collect::<Result<Vec<_>>>()?;

    // Raw (unswapped) headers first: the endianness heuristic needs them.
    let mut parts = Vec::new();
    for p in split_array(t_part_header(), m[6]).map_err(bad)? {
        let f = split_tuple(members(t_part_header()), p)
            .map_err(|e| bad(format!("part header: {e}")))?;
        parts.push(PartHeader {
            version: u32_le(f[0])?,
            checksum: csum(f[1], "part checksum")?,
            size: u64_le(f[2])?,
            usize: u64_le(f[3])?,
            objects: parse_object_list(f[4])?,
        });
    }
    let mut fallback = Vec::new();
    for e in split_array(t_fallback(), m[7]).map_err(bad)? {
        let f = split_tuple(members(t_fallback()), e)
            .map_err(|e| bad(format!("fallback entry: {e}")))?;
        let objtype = ObjectType::from_u8(f[0][0])
            .ok_or_else(|| bad(format!("invalid fallback object type {}", f[0][0])))?;
        fallback.push(FallbackEntry {
            objtype,
            checksum: csum(f[1], "fallback checksum")?,
            size: u64_le(f[2])?,
            usize: u64_le(f[3])?,
        });
    }

    let (endianness, heuristic) = match metadata.get("ostree.endianness") {
        Some(Value::Byte(b'l')) => (Endianness::Little, false),
        Some(Value::Byte(b'B')) => (Endianness::Big, false),
        Some(v) => return Err(bad(format!("invalid ostree.endianness {v:?}"))),
        None => (guess_endianness(&parts), true),
    };
    if endianness.swap() {
        for p in &mut parts {
            p.version = p.version.swap_bytes();
            p.size = p.size.swap_bytes();
            p.usize = p.usize.swap_bytes();
        }
        for f in &mut fallback {
            f.size = f.size.swap_bytes();
            f.usize = f.usize.swap_bytes();
        }
    }
    Ok(Superblock {
        metadata,
        timestamp,
        from,
        to,
        commit_bytes,
        commit,
        dependencies,
        parts,
        fallback,
        endianness,
        endianness_heuristic: heuristic,
        signatures: None,
    })
}

/// ostree's guess for deltas without `ostree.endianness`: a part that
/// compressed to more than 1.2× its objects, or objects of more than 4 GiB
/// on average, mean the sizes are byte-swapped.
fn guess_endianness(parts: &[PartHeader]) -> Endianness {
    let host = Endianness::host();
    let other = if host == Endianness::Little {
        Endianness::Big
    } else {
        Endianness::Little
    };
    let (mut size, mut objs) = (0u64, 0u64);
    for p in parts {
        objs += p.objects.len() as u64;
        size = size.saturating_add(p.size);
        if p.size > p.usize && p.size as f64 / p.usize as f64 > 1.2 {
            return other;
        }
    }
    if objs > 0 && size / objs > u32::MAX as u64 {
        return other;
    }
    host
}

impl Superblock {
    /// `FROM-TO` or `TO`.
    pub fn name(&self) -> String {
        name::delta_name(self.from.as_ref(), &self.to)
    }

    /// The part's bytes if the delta carries it inline (`--inline`):
    /// the metadata key `deltas/…/N` holds a `(yay)`.
    pub fn inline_part(&self, i: usize) -> Option<Vec<u8>> {
        let key = name::delta_path(self.from.as_ref(), &self.to, &i.to_string());
        match self.metadata.get(&key)? {
            Value::Tuple(v) => match v.as_slice() {
                [Value::Byte(c), Value::Bytes(b)] => {
                    let mut out = Vec::with_capacity(b.len() + 1);
                    out.push(*c);
                    out.extend_from_slice(b);
                    Some(out)
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// Detached metadata of the to-commit carried in the superblock.
    pub fn detached_metadata(&self) -> Option<VarDict> {
        let key = name::delta_path(self.from.as_ref(), &self.to, "commitmeta");
        VarDict::from_value(self.metadata.get(&key)?)
    }

    /// Serialize (ostree's layout; header fields in `self.endianness`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let swap = self.endianness.swap();
        let s64 = |v: u64| if swap { v.swap_bytes() } else { v };
        let s32 = |v: u32| if swap { v.swap_bytes() } else { v };
        let headers: Vec<Vec<u8>> = self
            .parts
            .iter()
            .map(|p| {
                let objs = encode_object_list(&p.objects);
                build_tuple(&[
                    (t_u32(), &s32(p.version).to_le_bytes()),
                    (t_ay(), &p.checksum.0),
                    (t_u64(), &s64(p.size).to_le_bytes()),
                    (t_u64(), &s64(p.usize).to_le_bytes()),
                    (t_ay(), &objs),
                ])
            })
            .collect();
        let fallbacks: Vec<Vec<u8>> = self
            .fallback
            .iter()
            .map(|f| {
                build_tuple(&[
                    (t_byte(), &[f.objtype.to_u8()]),
                    (t_ay(), &f.checksum.0),
                    (t_u64(), &s64(f.size).to_le_bytes()),
                    (t_u64(), &s64(f.usize).to_le_bytes()),
                ])
            })
            .collect();
        let md = gvariant::encode(&self.metadata.to_value());
        let deps: Vec<u8> = self
            .dependencies
            .iter()
            .flat_map(|(a, b)| a.0.iter().chain(b.0.iter()).copied())
            .collect();
        let from = self.from.map(|f| f.0.to_vec()).unwrap_or_default();
        build_tuple(&[
            (t_vardict(), &md),
            (t_u64(), &self.timestamp.to_be().to_le_bytes()),
            (t_ay(), &from),
            (t_ay(), &self.to.0),
            (t_commit(), &self.commit_bytes),
            (t_ay(), &deps),
            (t_part_headers(), &build_array(t_part_header(), &headers)),
            (t_fallbacks(), &build_array(t_fallback(), &fallbacks)),
        ])
    }
}
