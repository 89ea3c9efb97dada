//! Listing, showing and deleting the deltas of a repo.

use super::apply::read_superblock_path;
use super::error::{DeltaError, Result};
use super::name;
use super::ops::{self, OpStats};
use super::part;
use super::superblock::{parse_superblock, Endianness, FallbackEntry, Superblock};
use kiln_store::{Checksum, Repo};
use std::path::Path;

/// Every delta of the repo, as `FROM-TO` or `TO`, sorted.
pub fn list(repo: &Repo) -> Result<Vec<String>> {
    let root = repo.path().join("deltas");
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(DeltaError::io(&root, e)),
    };
    for d in rd {
        let d = d.map_err(|e| DeltaError::io(&root, e))?;
        if !d.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let first = d.file_name().to_string_lossy().into_owned();
        let Ok(rd2) = std::fs::read_dir(d.path()) else {
            continue;
        };
        for s in rd2.flatten() {
            let second = s.file_name().to_string_lossy().into_owned();
            if !s.path().join("superblock").is_file() {
                continue;
            }
            if let Some((f, t)) = name::parse_delta_dir(&first, &second) {
                out.push(name::delta_name(f.as_ref(), &t));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn parse_name(delta: &str) -> Result<(Option<Checksum>, Checksum)> {
    name::parse_delta_name(delta).ok_or_else(|| DeltaError::BadName(delta.to_string()))
}

/// `ostree static-delta delete`.
pub fn delete(repo: &Repo, delta: &str) -> Result<()> {
    let (f, t) = parse_name(delta)?;
    let dir = repo.path().join(name::delta_dir(f.as_ref(), &t));
    if !dir.exists() {
        return Err(DeltaError::NotFound(delta.to_string()));
    }
    std::fs::remove_dir_all(&dir).map_err(|e| DeltaError::io(&dir, e))
}

/// Read a delta's superblock by name from the repo, or by path when
/// `delta` contains a `/`.
pub fn open(repo: &Repo, delta: &str) -> Result<(Superblock, std::path::PathBuf)> {
    if delta.contains('/') {
        return read_superblock_path(Path::new(delta));
    }
    let (f, t) = parse_name(delta)?;
    let dir = repo.path().join(name::delta_dir(f.as_ref(), &t));
    let sb = dir.join("superblock");
    let bytes = match std::fs::read(&sb) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(DeltaError::NotFound(delta.to_string()))
        }
        Err(e) => return Err(DeltaError::io(&sb, e)),
    };
    Ok((parse_superblock(&bytes)?, dir))
}

/// One part as `show` describes it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PartShow {
    pub objects: usize,
    pub size: u64,
    pub usize: u64,
    pub inline: bool,
    pub nmodes: usize,
    pub nxattrs: usize,
    pub blobsize: usize,
    pub opsize: usize,
    pub ops: OpStats,
}

/// `ostree static-delta show`, as a value.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ShowInfo {
    pub name: String,
    pub signed: bool,
    pub from: Option<Checksum>,
    pub to: Checksum,
    pub endianness: Endianness,
    pub endianness_heuristic: bool,
    pub timestamp: u64,
    pub n_parents: usize,
    pub fallback: Vec<FallbackEntry>,
    pub parts: Vec<PartShow>,
}

impl ShowInfo {
    pub fn fallback_size(&self) -> (u64, u64) {
        self.fallback
            .iter()
            .fold((0, 0), |(a, b), f| (a + f.size, b + f.usize))
    }
    pub fn part_size(&self) -> (u64, u64) {
        self.parts
            .iter()
            .fold((0, 0), |(a, b), p| (a + p.size, b + p.usize))
    }
}

/// Describe a delta, opening (and decoding, not executing) every part.
pub fn show(repo: &Repo, delta: &str) -> Result<ShowInfo> {
    let (sb, dir) = open(repo, delta)?;
    let mut parts = Vec::new();
    for (i, h) in sb.parts.iter().enumerate() {
        let (bytes, inline) = match sb.inline_part(i) {
            Some(b) => (b, true),
            None => {
                let p = dir.join(i.to_string());
                (std::fs::read(&p).map_err(|e| DeltaError::io(&p, e))?, false)
            }
        };
        let raw = part::decompress_part(&bytes)?;
        let payload = part::parse_payload(&raw)?;
        let (_, stats) = ops::decode(&payload, &h.objects)?;
        parts.push(PartShow {
            objects: h.objects.len(),
            size: h.size,
            usize: h.usize,
            inline,
            nmodes: payload.modes.len(),
            nxattrs: payload.xattrs.len(),
            blobsize: payload.blob.len(),
            opsize: payload.ops.len(),
            ops: stats,
        });
    }
    Ok(ShowInfo {
        name: sb.name(),
        signed: sb.signatures.is_some(),
        from: sb.from,
        to: sb.to,
        endianness: sb.endianness,
        endianness_heuristic: sb.endianness_heuristic,
        timestamp: sb.timestamp,
        n_parents: sb.dependencies.len(),
        fallback: sb.fallback.clone(),
        parts,
    })
}
