//! Flatpak single-file bundles: `build-bundle` and `build-import-bundle`.
//!
//! A bundle is an OSTree static delta from nothing to the ref's commit,
//! with its parts inline, written as one file (the superblock). Flatpak
//! puts its own keys first in the superblock metadata, so the file starts
//! with them: `flatpak` = `u32 0xe5890001` (magic and format version),
//! `ref` (required on import), `metadata` (the commit's `/metadata` text;
//! on import it must equal that file byte for byte, or both be absent),
//! then `origin` / `runtime-repo` when given and `collection-id` (`""`).
//! The installed size is not a key: readers add up the parts' sizes.
//! Parts are xz-compressed, no fallback objects (everything is inside),
//! the commit's detached metadata rides along as for any delta.

use crate::appref::{default_arch, AppRef, Kind};
use crate::error::{Error, Result};
use kiln_remote::delta::{self, superblock::MAX_PART_VERSION, Compression, GenerateOptions};
use kiln_store::gvariant::{Value, VarDict};
use kiln_store::object::ObjectType;
use kiln_store::repo::LockKind;
use kiln_store::walk::Resolved;
use kiln_store::{Checksum, Repo, RepoMode};
use std::path::Path;

/// First metadata key's value: a magic with high and zero bits, and the
/// format version in the low byte.
pub const BUNDLE_MAGIC: u32 = 0xe589_0001;

/// Options of [`build_bundle`].
#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    pub runtime: bool,
    pub arch: Option<String>,
    /// `origin`: URL of the repo the app comes from.
    pub repo_url: Option<String>,
    /// `runtime-repo`: URL of a `.flatpakrepo` for the runtime.
    pub runtime_repo: Option<String>,
}

/// What a bundle holds (written or imported).
#[derive(Debug, Clone, serde::Serialize)]
pub struct BundleInfo {
    #[serde(rename = "ref")]
    pub appref: String,
    pub commit: String,
    /// Bytes of the bundle file.
    pub size: u64,
    /// Uncompressed size of the objects it carries.
    pub installed_size: u64,
}

fn bad_delta(what: &Path, e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{}: {e}", what.display()))
}

/// The commit's `/metadata` file, if it has one.
fn commit_metadata(repo: &Repo, commit: &Checksum) -> Result<Option<Vec<u8>>> {
    match repo.resolve_path(commit, "/metadata") {
        Ok(Resolved::File(c)) => Ok(Some(repo.load_content(&c)?.read_verified()?)),
        Ok(Resolved::Dir { .. }) => {
            Err(Error::metadata(commit.to_hex(), "/metadata is a directory"))
        }
        Err(kiln_store::Error::NoSuchPath(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `build-bundle REPO FILE NAME [BRANCH]`: write `name`'s commit in `repo`
/// as a Flatpak bundle at `file` (atomically: a temporary file, renamed).
pub fn build_bundle(
    repo_path: &Path,
    file: &Path,
    name: &str,
    branch: &str,
    opts: &BundleOptions,
) -> Result<BundleInfo> {
    let kind = if opts.runtime {
        Kind::Runtime
    } else {
        Kind::App
    };
    let arch = opts.arch.as_deref().unwrap_or(default_arch());
    let r = AppRef::new(kind, name, arch, branch)?;
    let full = r.to_string();
    let repo = Repo::open(repo_path)?;
    let commit = repo.resolve_ref(&full)?.ok_or_else(|| {
        Error::Invalid(format!(
            "{}: no ref {full} in the repository",
            repo_path.display()
        ))
    })?;

    let mut md = VarDict::new();
    md.push("flatpak", Value::Uint32(BUNDLE_MAGIC));
    md.push("ref", Value::str(full.clone()));
    if let Some(bytes) = commit_metadata(&repo, &commit)? {
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::metadata(full.clone(), "the metadata file is not UTF-8"))?;
        md.push("metadata", Value::str(text));
    }
    if let Some(u) = &opts.repo_url {
        md.push("origin", Value::str(u.clone()));
    }
    if let Some(u) = &opts.runtime_repo {
        md.push("runtime-repo", Value::str(u.clone()));
    }
    md.push("collection-id", Value::str(""));

    let file_name = file
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{}: not a file name", file.display())))?;
    let tmp = file.with_file_name(format!(
        ".{}.tmp-{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let gen = delta::generate(
        &repo,
        None,
        commit,
        &GenerateOptions {
            min_fallback_size: 0,
            bsdiff: false,
            inline: true,
            filename: Some(tmp.clone()),
            metadata: md,
            compression: Compression::Xz,
            ..Default::default()
        },
    );
    let info = match gen {
        Ok(i) => i,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(bad_delta(file, e));
        }
    };
    if let Err(e) = std::fs::rename(&tmp, file) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(file, e));
    }
    Ok(BundleInfo {
        appref: full,
        commit: commit.to_hex(),
        size: info.total_size,
        installed_size: info.parts.iter().map(|p| p.usize).sum(),
    })
}

/// `build-import-bundle REPO FILE`: check the whole bundle (framing, the
/// commit's checksum, every part's checksum) before writing anything,
/// apply it, check the metadata, then set the ref and refresh the summary.
/// A repo is created (archive) if `repo_path` has none.
pub fn import_bundle(repo_path: &Path, file: &Path) -> Result<BundleInfo> {
    let bytes = std::fs::read(file).map_err(|e| Error::io(file, e))?;
    let invalid = |why: String| {
        Error::Invalid(format!(
            "{}: not a valid Flatpak bundle: {why}",
            file.display()
        ))
    };
    let sb = delta::parse_superblock(&bytes).map_err(|e| invalid(e.to_string()))?;
    if let Some(from) = &sb.from {
        return Err(invalid(format!(
            "it is a delta from commit {from}; only full bundles can be imported"
        )));
    }
    let full = sb
        .metadata
        .get("ref")
        .and_then(|v| v.unvariant().as_str())
        .ok_or_else(|| invalid("no ref in its metadata".into()))?
        .to_string();
    let r = AppRef::parse(&full)?;
    let header_md = match sb.metadata.get("metadata") {
        None => None,
        Some(v) => Some(
            v.unvariant()
                .as_str()
                .ok_or_else(|| invalid("its metadata key is not a string".into()))?
                .to_string(),
        ),
    };
    if !sb.fallback.is_empty() {
        return Err(invalid(format!(
            "{} objects are not inside the file (fallback objects)",
            sb.fallback.len()
        )));
    }
    let mut parts = Vec::with_capacity(sb.parts.len());
    for (i, h) in sb.parts.iter().enumerate() {
        if h.version > MAX_PART_VERSION {
            return Err(invalid(format!(
                "part {i} has unsupported version {}",
                h.version
            )));
        }
        let p = sb
            .inline_part(i)
            .ok_or_else(|| invalid(format!("part {i} is not inside the file")))?;
        let actual = Checksum::of(&p);
        if actual != h.checksum {
            return Err(invalid(format!(
                "part {i}: checksum {actual}, expected {}",
                h.checksum
            )));
        }
        parts.push(p);
    }

    let mut repo = if repo_path.join("config").exists() {
        Repo::open(repo_path)?
    } else {
        Repo::init(repo_path, RepoMode::Archive)?
    };
    repo.lock(LockKind::Shared)?;
    for (i, (h, p)) in sb.parts.iter().zip(&parts).enumerate() {
        if delta::part_is_present(&repo, h) {
            continue;
        }
        delta::apply_part(&repo, h, p, delta::PartCheck::Trusted, &i.to_string())
            .map_err(|e| invalid(e.to_string()))?;
    }
    // Everything the commit reaches must be here before it is written.
    let mut missing = Vec::new();
    check_tree(
        &repo,
        &sb.commit.root_tree,
        &sb.commit.root_meta,
        &mut missing,
    )?;
    if !missing.is_empty() {
        return Err(invalid(format!(
            "{} objects of commit {} are neither in the file nor in the repository (first: {})",
            missing.len(),
            sb.to,
            missing[0]
        )));
    }
    delta::write_commit(&repo, &sb).map_err(|e| invalid(e.to_string()))?;
    kiln_store::util::syncfs(repo.path())?;
    let actual_md = commit_metadata(&repo, &sb.to)?;
    let same = match (&actual_md, &header_md) {
        (None, None) => true,
        (Some(a), Some(h)) => a.as_slice() == h.as_bytes(),
        _ => false,
    };
    if !same {
        return Err(invalid(format!(
            "the metadata in its header and in commit {} differ",
            sb.to
        )));
    }
    repo.set_ref(&full, Some(&sb.to))?;
    crate::remotes::update_repo_summary(&mut repo)?;
    Ok(BundleInfo {
        appref: r.to_string(),
        commit: sb.to.to_hex(),
        size: bytes.len() as u64,
        installed_size: sb.parts.iter().map(|p| p.usize).sum(),
    })
}

/// Collect objects of a tree that the repo lacks (described as
/// `CHECKSUM.TYPE`).
fn check_tree(
    repo: &Repo,
    tree: &Checksum,
    meta: &Checksum,
    missing: &mut Vec<String>,
) -> Result<()> {
    let mut stack = vec![(*tree, *meta)];
    let mut seen = std::collections::BTreeSet::new();
    while let Some((t, m)) = stack.pop() {
        if !repo.has_object(&m, ObjectType::DirMeta) {
            missing.push(format!("{m}.dirmeta"));
        }
        if !seen.insert(t) {
            continue;
        }
        if !repo.has_object(&t, ObjectType::DirTree) {
            missing.push(format!("{t}.dirtree"));
            continue;
        }
        let dt = repo.read_dirtree(&t)?;
        for (_, c) in &dt.files {
            if !repo.has_object(c, ObjectType::File) {
                missing.push(format!("{c}.file"));
            }
        }
        for (_, t2, m2) in dt.dirs {
            stack.push((t2, m2));
        }
    }
    Ok(())
}
