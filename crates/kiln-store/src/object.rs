//! OSTree object types and their GVariant forms.
//!
//! Each object type has an owned struct with `to_bytes` (normal form, as
//! ostree writes it, integers big-endian where ostree stores them so) and
//! `from_bytes` (strict: bad names, bad checksums and malformed framing are
//! errors).

use crate::checksum::Checksum;
use crate::gvariant::{self, Type, Value, VarDict, VariantError};
use std::sync::OnceLock;

/// The kinds of objects in a repo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    File,
    DirTree,
    DirMeta,
    Commit,
    TombstoneCommit,
    CommitMeta,
    PayloadLink,
    FileXattrs,
    FileXattrsLink,
}

impl ObjectType {
    /// The file extension ostree uses (archive repos store files as `filez`).
    pub fn ext(self) -> &'static str {
        match self {
            ObjectType::File => "file",
            ObjectType::DirTree => "dirtree",
            ObjectType::DirMeta => "dirmeta",
            ObjectType::Commit => "commit",
            ObjectType::TombstoneCommit => "commit-tombstone",
            ObjectType::CommitMeta => "commitmeta",
            ObjectType::PayloadLink => "payload-link",
            ObjectType::FileXattrs => "file-xattrs",
            ObjectType::FileXattrsLink => "file-xattrs-link",
        }
    }

    pub fn from_ext(ext: &str) -> Option<ObjectType> {
        Some(match ext {
            "file" | "filez" => ObjectType::File,
            "dirtree" => ObjectType::DirTree,
            "dirmeta" => ObjectType::DirMeta,
            "commit" => ObjectType::Commit,
            "commit-tombstone" => ObjectType::TombstoneCommit,
            "commitmeta" => ObjectType::CommitMeta,
            "payload-link" => ObjectType::PayloadLink,
            "file-xattrs" => ObjectType::FileXattrs,
            "file-xattrs-link" => ObjectType::FileXattrsLink,
            _ => return None,
        })
    }

    /// Numeric id used in deltas and summaries.
    pub fn to_u8(self) -> u8 {
        match self {
            ObjectType::File => 1,
            ObjectType::DirTree => 2,
            ObjectType::DirMeta => 3,
            ObjectType::Commit => 4,
            ObjectType::TombstoneCommit => 5,
            ObjectType::CommitMeta => 6,
            ObjectType::PayloadLink => 7,
            ObjectType::FileXattrs => 8,
            ObjectType::FileXattrsLink => 9,
        }
    }

    pub fn from_u8(v: u8) -> Option<ObjectType> {
        Some(match v {
            1 => ObjectType::File,
            2 => ObjectType::DirTree,
            3 => ObjectType::DirMeta,
            4 => ObjectType::Commit,
            5 => ObjectType::TombstoneCommit,
            6 => ObjectType::CommitMeta,
            7 => ObjectType::PayloadLink,
            8 => ObjectType::FileXattrs,
            9 => ObjectType::FileXattrsLink,
            _ => return None,
        })
    }

    pub fn is_meta(self) -> bool {
        self != ObjectType::File
    }

    /// Largest object of this type kiln accepts (ostree: 10 MiB for metadata).
    pub fn max_meta_size(self) -> u64 {
        10 * 1024 * 1024
    }
}

impl std::fmt::Display for ObjectType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.ext())
    }
}

/// Errors decoding an object.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error(transparent)]
    Variant(#[from] VariantError),
    #[error("invalid {kind}: {why}")]
    Invalid { kind: &'static str, why: String },
}

fn invalid(kind: &'static str, why: impl Into<String>) -> ObjectError {
    ObjectError::Invalid {
        kind,
        why: why.into(),
    }
}

macro_rules! cached_type {
    ($name:ident, $s:expr) => {
        pub(crate) fn $name() -> &'static Type {
            static T: OnceLock<Type> = OnceLock::new();
            T.get_or_init(|| Type::parse($s).expect("static type string"))
        }
    };
}
cached_type!(commit_type, "(a{sv}aya(say)sstayay)");
cached_type!(dirtree_type, "(a(say)a(sayay))");
cached_type!(dirmeta_type, "(uuua(ayay))");
cached_type!(file_header_type, "(uuuusa(ayay))");
cached_type!(zlib_header_type, "(tuuuusa(ayay))");
cached_type!(vardict_type, "a{sv}");
cached_type!(xattrs_type, "a(ayay)");

/// Check that `name` is one safe path component: not empty, `.`, `..`,
/// no `/`, no NUL.
pub fn validate_name(name: &str) -> Result<(), ObjectError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(invalid(
            "file name",
            format!("{name:?} is not a single path component"),
        ));
    }
    Ok(())
}

/// Extended attributes: (name, value), name without the trailing NUL.
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

pub(crate) fn xattrs_to_value(x: &Xattrs) -> Value {
    Value::Array(
        Type::Tuple(vec![
            Type::Array(Box::new(Type::Byte)),
            Type::Array(Box::new(Type::Byte)),
        ]),
        x.iter()
            .map(|(k, v)| {
                let mut name = k.clone();
                name.push(0);
                Value::Tuple(vec![Value::Bytes(name), Value::Bytes(v.clone())])
            })
            .collect(),
    )
}

pub(crate) fn xattrs_from_value(v: &Value) -> Result<Xattrs, ObjectError> {
    let mut out = Vec::new();
    for e in v.children() {
        let [k, val] = e.children() else {
            return Err(invalid("xattrs", "bad entry"));
        };
        let (Some(k), Some(val)) = (k.as_bytes(), val.as_bytes()) else {
            return Err(invalid("xattrs", "bad entry"));
        };
        let name = match k.split_last() {
            Some((0, rest)) if !rest.is_empty() && !rest.contains(&0) => rest.to_vec(),
            _ => {
                return Err(invalid(
                    "xattrs",
                    "xattr name is not a NUL-terminated string",
                ))
            }
        };
        out.push((name, val.to_vec()));
    }
    Ok(out)
}

/// Encode an xattr list (`a(ayay)`) on its own.
pub fn encode_xattrs(x: &Xattrs) -> Vec<u8> {
    gvariant::encode(&xattrs_to_value(x))
}

pub fn decode_xattrs(data: &[u8]) -> Result<Xattrs, ObjectError> {
    xattrs_from_value(&gvariant::decode(xattrs_type(), data)?)
}

/// Sort xattrs by name and drop empty values, as ostree does.
pub fn canonicalize_xattrs(x: &mut Xattrs) {
    x.retain(|(_, v)| !v.is_empty());
    x.sort_by(|a, b| a.0.cmp(&b.0));
}

fn csum_bytes(c: &Checksum) -> Value {
    Value::Bytes(c.0.to_vec())
}

fn csum_from(kind: &'static str, v: &Value) -> Result<Checksum, ObjectError> {
    v.as_bytes()
        .and_then(Checksum::from_bytes)
        .ok_or_else(|| invalid(kind, "checksum is not 32 bytes"))
}

/// Directory metadata: owner, mode and xattrs of a directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DirMeta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub xattrs: Xattrs,
}

impl DirMeta {
    pub fn to_bytes(&self) -> Vec<u8> {
        gvariant::encode(&Value::Tuple(vec![
            Value::Uint32(self.uid.to_be()),
            Value::Uint32(self.gid.to_be()),
            Value::Uint32(self.mode.to_be()),
            xattrs_to_value(&self.xattrs),
        ]))
    }

    pub fn from_bytes(data: &[u8]) -> Result<DirMeta, ObjectError> {
        let v = gvariant::decode(dirmeta_type(), data)?;
        let [uid, gid, mode, x] = v.children() else {
            return Err(invalid("dirmeta", "wrong shape"));
        };
        let get = |v: &Value| match v {
            Value::Uint32(n) => Ok(u32::from_be(*n)),
            _ => Err(invalid("dirmeta", "wrong shape")),
        };
        let mode = get(mode)?;
        if mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(invalid(
                "dirmeta",
                format!("mode {mode:o} is not a directory"),
            ));
        }
        Ok(DirMeta {
            uid: get(uid)?,
            gid: get(gid)?,
            mode,
            xattrs: xattrs_from_value(x)?,
        })
    }
}

/// A directory listing: files and subdirectories, each sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirTree {
    pub files: Vec<(String, Checksum)>,
    /// (name, dirtree checksum, dirmeta checksum)
    pub dirs: Vec<(String, Checksum, Checksum)>,
}

impl DirTree {
    pub fn to_bytes(&self) -> Vec<u8> {
        let files = Value::Array(
            Type::Tuple(vec![Type::String, Type::Array(Box::new(Type::Byte))]),
            self.files
                .iter()
                .map(|(n, c)| Value::Tuple(vec![Value::str(n.clone()), csum_bytes(c)]))
                .collect(),
        );
        let dirs = Value::Array(
            Type::Tuple(vec![
                Type::String,
                Type::Array(Box::new(Type::Byte)),
                Type::Array(Box::new(Type::Byte)),
            ]),
            self.dirs
                .iter()
                .map(|(n, t, m)| {
                    Value::Tuple(vec![Value::str(n.clone()), csum_bytes(t), csum_bytes(m)])
                })
                .collect(),
        );
        gvariant::encode(&Value::Tuple(vec![files, dirs]))
    }

    /// Decode and validate: names are single components, sorted, unique.
    pub fn from_bytes(data: &[u8]) -> Result<DirTree, ObjectError> {
        let v = gvariant::decode(dirtree_type(), data)?;
        let [files, dirs] = v.children() else {
            return Err(invalid("dirtree", "wrong shape"));
        };
        let mut out = DirTree::default();
        for f in files.children() {
            let [n, c] = f.children() else {
                return Err(invalid("dirtree", "wrong shape"));
            };
            let name = n.as_str().ok_or_else(|| invalid("dirtree", "name"))?;
            validate_name(name)?;
            out.files.push((name.to_string(), csum_from("dirtree", c)?));
        }
        for d in dirs.children() {
            let [n, t, m] = d.children() else {
                return Err(invalid("dirtree", "wrong shape"));
            };
            let name = n.as_str().ok_or_else(|| invalid("dirtree", "name"))?;
            validate_name(name)?;
            out.dirs.push((
                name.to_string(),
                csum_from("dirtree", t)?,
                csum_from("dirtree", m)?,
            ));
        }
        if !out.files.windows(2).all(|w| w[0].0 < w[1].0)
            || !out.dirs.windows(2).all(|w| w[0].0 < w[1].0)
        {
            return Err(invalid("dirtree", "entries are not sorted and unique"));
        }
        // A name may not be both a file and a directory.
        let (mut i, mut j) = (0, 0);
        while i < out.files.len() && j < out.dirs.len() {
            match out.files[i].0.cmp(&out.dirs[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    return Err(invalid(
                        "dirtree",
                        format!("{:?} is both a file and a directory", out.files[i].0),
                    ))
                }
            }
        }
        Ok(out)
    }
}

/// A commit object.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub metadata: VarDict,
    pub parent: Option<Checksum>,
    pub related: Vec<(String, Checksum)>,
    pub subject: String,
    pub body: String,
    /// Seconds since the epoch, UTC.
    pub timestamp: u64,
    pub root_tree: Checksum,
    pub root_meta: Checksum,
}

impl Commit {
    pub fn to_bytes(&self) -> Vec<u8> {
        let related = Value::Array(
            Type::Tuple(vec![Type::String, Type::Array(Box::new(Type::Byte))]),
            self.related
                .iter()
                .map(|(n, c)| Value::Tuple(vec![Value::str(n.clone()), csum_bytes(c)]))
                .collect(),
        );
        gvariant::encode(&Value::Tuple(vec![
            self.metadata.to_value(),
            Value::Bytes(self.parent.map(|p| p.0.to_vec()).unwrap_or_default()),
            related,
            Value::str(self.subject.clone()),
            Value::str(self.body.clone()),
            Value::Uint64(self.timestamp.to_be()),
            csum_bytes(&self.root_tree),
            csum_bytes(&self.root_meta),
        ]))
    }

    pub fn from_bytes(data: &[u8]) -> Result<Commit, ObjectError> {
        let v = gvariant::decode(commit_type(), data)?;
        let [meta, parent, related, subject, body, ts, tree, dmeta] = v.children() else {
            return Err(invalid("commit", "wrong shape"));
        };
        let metadata = VarDict::from_value(meta).ok_or_else(|| invalid("commit", "metadata"))?;
        let parent = match parent.as_bytes() {
            Some([]) => None,
            Some(b) => {
                Some(Checksum::from_bytes(b).ok_or_else(|| invalid("commit", "parent checksum"))?)
            }
            None => return Err(invalid("commit", "parent")),
        };
        let mut rel = Vec::new();
        for r in related.children() {
            let [n, c] = r.children() else {
                return Err(invalid("commit", "related"));
            };
            rel.push((
                n.as_str().unwrap_or_default().to_string(),
                csum_from("commit", c)?,
            ));
        }
        let Value::Uint64(ts) = ts else {
            return Err(invalid("commit", "timestamp"));
        };
        Ok(Commit {
            metadata,
            parent,
            related: rel,
            subject: subject.as_str().unwrap_or_default().to_string(),
            body: body.as_str().unwrap_or_default().to_string(),
            timestamp: u64::from_be(*ts),
            root_tree: csum_from("commit", tree)?,
            root_meta: csum_from("commit", dmeta)?,
        })
    }

    /// The `version` metadata key, if any.
    pub fn version(&self) -> Option<&str> {
        self.metadata.get_str("version")
    }
}

/// Decode an `a{sv}` (detached metadata, summaries' metadata…).
pub fn decode_vardict(data: &[u8]) -> Result<VarDict, ObjectError> {
    let v = gvariant::decode(vardict_type(), data)?;
    VarDict::from_value(&v).ok_or_else(|| invalid("a{sv}", "wrong shape"))
}

pub fn encode_vardict(d: &VarDict) -> Vec<u8> {
    gvariant::encode(&d.to_value())
}

/// The metadata part of a content object: what its checksum covers besides
/// the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileMeta {
    pub uid: u32,
    pub gid: u32,
    /// Full `st_mode` (type bits included).
    pub mode: u32,
    pub rdev: u32,
    /// Symlink target; empty for regular files.
    pub symlink_target: String,
    pub xattrs: Xattrs,
}

impl FileMeta {
    pub fn is_symlink(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFLNK
    }

    pub fn is_regular(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }

    /// The `(uuuusa(ayay))` header, as hashed.
    pub fn header_bytes(&self) -> Vec<u8> {
        gvariant::encode(&Value::Tuple(vec![
            Value::Uint32(self.uid.to_be()),
            Value::Uint32(self.gid.to_be()),
            Value::Uint32(self.mode.to_be()),
            Value::Uint32(self.rdev.to_be()),
            Value::str(self.symlink_target.clone()),
            xattrs_to_value(&self.xattrs),
        ]))
    }

    /// The header of an archive `.filez` object: `(tuuuusa(ayay))`.
    pub fn zlib_header_bytes(&self, size: u64) -> Vec<u8> {
        gvariant::encode(&Value::Tuple(vec![
            Value::Uint64(size.to_be()),
            Value::Uint32(self.uid.to_be()),
            Value::Uint32(self.gid.to_be()),
            Value::Uint32(self.mode.to_be()),
            Value::Uint32(self.rdev.to_be()),
            Value::str(self.symlink_target.clone()),
            xattrs_to_value(&self.xattrs),
        ]))
    }

    /// Parse an archive header, returning the content size too.
    pub fn from_zlib_header(data: &[u8]) -> Result<(FileMeta, u64), ObjectError> {
        let v = gvariant::decode(zlib_header_type(), data)?;
        let [size, uid, gid, mode, rdev, target, x] = v.children() else {
            return Err(invalid("file header", "wrong shape"));
        };
        let Value::Uint64(size) = size else {
            return Err(invalid("file header", "size"));
        };
        let meta = Self::from_parts(uid, gid, mode, rdev, target, x)?;
        Ok((meta, u64::from_be(*size)))
    }

    pub fn from_header(data: &[u8]) -> Result<FileMeta, ObjectError> {
        let v = gvariant::decode(file_header_type(), data)?;
        let [uid, gid, mode, rdev, target, x] = v.children() else {
            return Err(invalid("file header", "wrong shape"));
        };
        Self::from_parts(uid, gid, mode, rdev, target, x)
    }

    fn from_parts(
        uid: &Value,
        gid: &Value,
        mode: &Value,
        rdev: &Value,
        target: &Value,
        x: &Value,
    ) -> Result<FileMeta, ObjectError> {
        let get = |v: &Value| match v {
            Value::Uint32(n) => Ok(u32::from_be(*n)),
            _ => Err(invalid("file header", "wrong shape")),
        };
        let meta = FileMeta {
            uid: get(uid)?,
            gid: get(gid)?,
            mode: get(mode)?,
            rdev: get(rdev)?,
            symlink_target: target
                .as_str()
                .ok_or_else(|| invalid("file header", "symlink target"))?
                .to_string(),
            xattrs: xattrs_from_value(x)?,
        };
        meta.validate()?;
        Ok(meta)
    }

    /// Only regular files and symlinks are content objects.
    pub fn validate(&self) -> Result<(), ObjectError> {
        if self.is_symlink() {
            if self.symlink_target.is_empty() {
                return Err(invalid("file header", "empty symlink target"));
            }
        } else if !self.is_regular() {
            return Err(invalid(
                "file header",
                format!("mode {:o} is not a regular file or symlink", self.mode),
            ));
        } else if !self.symlink_target.is_empty() {
            return Err(invalid("file header", "regular file with a symlink target"));
        }
        Ok(())
    }

    /// The `user.ostreemeta` xattr of bare-user repos: `(uuua(ayay))`.
    pub fn to_ostreemeta(&self) -> Vec<u8> {
        gvariant::encode(&Value::Tuple(vec![
            Value::Uint32(self.uid.to_be()),
            Value::Uint32(self.gid.to_be()),
            Value::Uint32(self.mode.to_be()),
            xattrs_to_value(&self.xattrs),
        ]))
    }

    pub fn from_ostreemeta(data: &[u8]) -> Result<(u32, u32, u32, Xattrs), ObjectError> {
        let v = gvariant::decode(dirmeta_type(), data)?;
        let [uid, gid, mode, x] = v.children() else {
            return Err(invalid("user.ostreemeta", "wrong shape"));
        };
        let get = |v: &Value| match v {
            Value::Uint32(n) => Ok(u32::from_be(*n)),
            _ => Err(invalid("user.ostreemeta", "wrong shape")),
        };
        Ok((get(uid)?, get(gid)?, get(mode)?, xattrs_from_value(x)?))
    }
}

/// The checksum of a content object: SHA-256 over the size-prefixed header
/// followed by the content bytes (empty for symlinks).
pub fn content_checksum_start(meta: &FileMeta) -> crate::checksum::Hasher {
    let mut h = crate::checksum::Hasher::new();
    h.update(&size_prefixed(&meta.header_bytes()));
    h
}

/// ostree's on-the-wire framing of a header: 4-byte big-endian length, 4
/// bytes of zero padding, then the GVariant.
pub fn size_prefixed(header: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + 8);
    out.extend_from_slice(&(header.len() as u32).to_be_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(header);
    out
}

/// Parse ostree's size-prefixed framing; returns (header, rest).
pub fn split_size_prefixed(data: &[u8]) -> Result<(&[u8], &[u8]), ObjectError> {
    if data.len() < 8 {
        return Err(invalid("file header", "truncated"));
    }
    let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    if len > 1 << 20 {
        return Err(invalid(
            "file header",
            format!("header length {len} is absurd"),
        ));
    }
    let end = 8usize
        .checked_add(len)
        .filter(|&e| e <= data.len())
        .ok_or_else(|| invalid("file header", "truncated"))?;
    Ok((&data[8..end], &data[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirtree_rejects_bad_names() {
        let c = Checksum([1; 32]);
        for bad in ["..", ".", "", "a/b"] {
            let t = DirTree {
                files: vec![(bad.to_string(), c)],
                dirs: vec![],
            };
            assert!(DirTree::from_bytes(&t.to_bytes()).is_err(), "{bad:?}");
        }
        let ok = DirTree {
            files: vec![("a".into(), c), ("b".into(), c)],
            dirs: vec![("c".into(), c, c)],
        };
        assert_eq!(DirTree::from_bytes(&ok.to_bytes()).unwrap(), ok);
        let unsorted = DirTree {
            files: vec![("b".into(), c), ("a".into(), c)],
            dirs: vec![],
        };
        assert!(DirTree::from_bytes(&unsorted.to_bytes()).is_err());
    }

    #[test]
    fn commit_round_trip() {
        let mut md = VarDict::new();
        md.push("version", Value::str("1"));
        let c = Commit {
            metadata: md,
            parent: Some(Checksum([3; 32])),
            related: vec![],
            subject: "s".into(),
            body: "".into(),
            timestamp: 1609459200,
            root_tree: Checksum([1; 32]),
            root_meta: Checksum([2; 32]),
        };
        assert_eq!(Commit::from_bytes(&c.to_bytes()).unwrap(), c);
    }

    #[test]
    fn header_rejects_devices() {
        let m = FileMeta {
            uid: 0,
            gid: 0,
            mode: libc::S_IFCHR | 0o644,
            rdev: 0,
            symlink_target: String::new(),
            xattrs: vec![],
        };
        assert!(FileMeta::from_header(&m.header_bytes()).is_err());
    }
}
