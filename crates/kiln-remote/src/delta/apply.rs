//! Applying deltas: executing parts into a repo, and `apply-offline`.

use super::bsdiff;
use super::error::{DeltaError, Result};
use super::name;
use super::ops::{self, Job, OpStats, Piece};
use super::part::{self, PartPayload};
use super::superblock::{parse_superblock, PartHeader, Superblock, MAX_PART_VERSION};
use kiln_store::object::{Commit, DirMeta, DirTree, ObjectType};
use kiln_store::repo::LockKind;
use kiln_store::{Checksum, Repo};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// How a part's bytes are checked before use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartCheck {
    /// Compare the SHA-256 of the part with its header (always right for
    /// bytes fetched from elsewhere).
    Verify,
    /// The caller already verified the bytes (objects are verified anyway).
    Trusted,
}

/// What applying one part did.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct PartStats {
    /// Objects the part lists.
    pub objects: usize,
    /// Objects written (the others were already present).
    pub written: usize,
    pub ops: OpStats,
}

/// Whether the repo already has every object of a part (then it need not
/// be fetched or applied).
pub fn part_is_present(repo: &Repo, header: &PartHeader) -> bool {
    header.objects.iter().all(|(t, c)| repo.has_object(c, *t))
}

/// Execute one part into `repo`.
///
/// `part_bytes` is the part file as served (`deltas/…/N`, or the inline
/// `(yay)` bytes). Every object is verified against its checksum before it
/// is installed; on error nothing unverified has been stored (objects
/// completed before the error are valid and stay). The caller holds
/// whatever repo lock it wants and calls `syncfs` once at the end.
pub fn apply_part(
    repo: &Repo,
    header: &PartHeader,
    part_bytes: &[u8],
    check: PartCheck,
    label: &str,
) -> Result<PartStats> {
    if header.version > MAX_PART_VERSION {
        return Err(DeltaError::TooNewVersion(header.version));
    }
    let raw = part::open_part(part_bytes, header, check == PartCheck::Verify, label)?;
    let payload = part::parse_payload(&raw)?;
    execute_payload(repo, header, &payload, label)
}

/// Execute an already decompressed and parsed payload.
pub fn execute_payload(
    repo: &Repo,
    header: &PartHeader,
    payload: &PartPayload<'_>,
    label: &str,
) -> Result<PartStats> {
    let (jobs, ops) = ops::decode(payload, &header.objects)?;
    let exec = |why: String| DeltaError::Exec {
        part: label.to_string(),
        why,
    };
    let written = jobs
        .par_iter()
        .map(|j| run_job(repo, j).map_err(|e| exec(e.to_string())))
        .try_fold(|| 0usize, |n, r| r.map(|w| n + w as usize))
        .try_reduce(|| 0, |a, b| Ok(a + b))?;
    Ok(PartStats {
        objects: jobs.len(),
        written,
        ops,
    })
}

/// Load an existing content object's bytes (verified).
fn load_source(repo: &Repo, src: &Checksum) -> Result<Vec<u8>> {
    let obj = repo.load_content(src)?;
    if !obj.meta.is_regular() {
        return Err(DeltaError::Invalid(format!(
            "read source {src} is not a regular file"
        )));
    }
    Ok(obj.read_verified()?)
}

fn run_job(repo: &Repo, job: &Job<'_>) -> Result<bool> {
    match job {
        Job::Meta { ty, csum, data } => {
            if repo.has_object(csum, *ty) {
                return Ok(false);
            }
            let actual = Checksum::of(data);
            if actual != *csum {
                return Err(DeltaError::ObjectChecksum {
                    what: ty.ext(),
                    expected: *csum,
                    actual,
                });
            }
            let bad = |e: kiln_store::object::ObjectError| {
                DeltaError::malformed(format!("{csum}.{ty}"), e.to_string())
            };
            match ty {
                ObjectType::DirTree => drop(DirTree::from_bytes(data).map_err(bad)?),
                ObjectType::DirMeta => drop(DirMeta::from_bytes(data).map_err(bad)?),
                ObjectType::Commit => drop(Commit::from_bytes(data).map_err(bad)?),
                other => {
                    return Err(DeltaError::Invalid(format!(
                        "deltas may not carry {other} objects ({csum})"
                    )))
                }
            }
            repo.write_meta_trusted(*ty, csum, data)?;
            Ok(true)
        }
        Job::Content {
            csum,
            meta,
            size,
            pieces,
        } => {
            if repo.has_object(csum, ObjectType::File) {
                return Ok(false);
            }
            let mut w = repo.content_writer(meta, *size)?;
            let mut loaded: Option<(Checksum, Vec<u8>)> = None;
            for p in pieces {
                match p {
                    Piece::Blob(b) => w.write(b)?,
                    Piece::Source { src, off, len } => {
                        if loaded.as_ref().map(|l| l.0 != *src).unwrap_or(true) {
                            loaded = Some((*src, load_source(repo, src)?));
                        }
                        let data = loaded.as_ref().map(|l| l.1.as_slice()).unwrap_or_default();
                        let r = off
                            .checked_add(*len)
                            .filter(|&e| e <= data.len() as u64)
                            .ok_or_else(|| {
                                DeltaError::Invalid(format!("Unexpected EOF reading object {src}"))
                            })?;
                        w.write(&data[*off as usize..r as usize])?;
                    }
                    Piece::Patch { src, patch } => {
                        let old = load_source(repo, src)?;
                        let new = bsdiff::bspatch(&old, patch, *size)
                            .map_err(|e| DeltaError::Invalid(e.to_string()))?;
                        w.write(&new)?;
                    }
                }
            }
            w.finish(Some(*csum))?;
            Ok(true)
        }
    }
}

/// Write the to-commit (and its detached metadata) from a superblock.
/// Call after the parts and fallback objects are in, so a commit never
/// names a tree that is not there.
pub fn write_commit(repo: &Repo, sb: &Superblock) -> Result<bool> {
    if repo.has_object(&sb.to, ObjectType::Commit) {
        return Ok(false);
    }
    if let Some(md) = sb.detached_metadata() {
        repo.write_commit_detached_metadata(&sb.to, Some(&md))?;
    }
    // parse_superblock verified that the bytes hash to `to`.
    repo.write_meta_trusted(ObjectType::Commit, &sb.to, &sb.commit_bytes)?;
    Ok(true)
}

/// Options for [`apply_offline_with`].
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// A local repo to copy fallback objects from (verified). Without it a
    /// delta with fallback entries is refused, as ostree does.
    pub fallback_repo: Option<PathBuf>,
}

/// What an offline apply did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApplyInfo {
    pub name: String,
    pub from: Option<Checksum>,
    pub to: Checksum,
    pub parts: usize,
    pub parts_applied: usize,
    pub objects_written: usize,
    pub fallback_objects: usize,
}

/// Read a superblock file (a delta directory or the superblock/inline file
/// itself) and return it with the directory holding its parts.
pub fn read_superblock_path(path: &Path) -> Result<(Superblock, PathBuf)> {
    let (file, dir) = if path.is_dir() {
        (path.join("superblock"), path.to_path_buf())
    } else {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        (path.to_path_buf(), dir)
    };
    let bytes = std::fs::read(&file).map_err(|e| DeltaError::io(&file, e))?;
    Ok((parse_superblock(&bytes)?, dir))
}

/// `ostree static-delta apply-offline PATH`: apply a delta from a
/// directory (`superblock` + parts) or a superblock / inline file.
pub fn apply_offline(repo: &Repo, path: &Path) -> Result<ApplyInfo> {
    apply_offline_with(repo, path, &ApplyOptions::default())
}

pub fn apply_offline_with(repo: &Repo, path: &Path, opts: &ApplyOptions) -> Result<ApplyInfo> {
    let (sb, dir) = read_superblock_path(path)?;
    repo.lock(LockKind::Shared)?;
    if let Some(from) = &sb.from {
        if !repo.has_object(from, ObjectType::Commit) {
            return Err(DeltaError::MissingSource(*from));
        }
    }
    let fallback_repo = match (&opts.fallback_repo, sb.fallback.is_empty()) {
        (_, true) => None,
        (None, false) => return Err(DeltaError::HasFallback),
        (Some(p), false) => Some(Repo::open(p)?),
    };
    let mut info = ApplyInfo {
        name: sb.name(),
        from: sb.from,
        to: sb.to,
        parts: sb.parts.len(),
        parts_applied: 0,
        objects_written: 0,
        fallback_objects: 0,
    };
    for (i, header) in sb.parts.iter().enumerate() {
        if part_is_present(repo, header) {
            continue;
        }
        let label = i.to_string();
        let bytes = match sb.inline_part(i) {
            Some(b) => b,
            None => {
                let p = dir.join(&label);
                std::fs::read(&p).map_err(|e| DeltaError::io(&p, e))?
            }
        };
        let st = apply_part(repo, header, &bytes, PartCheck::Verify, &label)?;
        info.parts_applied += 1;
        info.objects_written += st.written;
    }
    if let Some(src) = &fallback_repo {
        for f in &sb.fallback {
            if copy_object(src, repo, f.objtype, &f.checksum)? {
                info.fallback_objects += 1;
            }
        }
    }
    write_commit(repo, &sb)?;
    kiln_store::util::syncfs(repo.path())?;
    Ok(info)
}

/// Copy one object between repos, verifying it. Returns whether it was
/// written.
pub fn copy_object(src: &Repo, dst: &Repo, ty: ObjectType, csum: &Checksum) -> Result<bool> {
    if dst.has_object(csum, ty) {
        return Ok(false);
    }
    if ty == ObjectType::File {
        let obj = src.load_content(csum)?;
        let mut w = dst.content_writer(&obj.meta, obj.size)?;
        let mut r = obj.reader()?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n =
                std::io::Read::read(&mut r, &mut buf).map_err(|e| DeltaError::io(src.path(), e))?;
            if n == 0 {
                break;
            }
            w.write(&buf[..n])?;
        }
        w.finish(Some(*csum))?;
    } else {
        let data = src.read_meta(csum, ty)?;
        dst.write_meta_trusted(ty, csum, &data)?;
    }
    Ok(true)
}

/// The relative path of a delta's superblock in a repo.
pub fn superblock_path(from: Option<&Checksum>, to: &Checksum) -> String {
    name::delta_path(from, to, "superblock")
}
