//! The `/etc` three-way merge, as libostree does it: compute what the admin
//! changed in the old deployment (its `/usr/etc` against its `/etc`,
//! ignoring xattrs), then replay that onto the new deployment's `/etc`
//! (a fresh copy of its `/usr/etc`). A locally changed file wins wholesale;
//! untouched files take the new defaults.

use crate::error::{Error, Result};
use crate::fsutil;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct EtcDiff {
    pub modified: Vec<String>,
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

fn sorted_names(dir: &Path) -> Result<Vec<String>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        v.push(e.file_name().to_string_lossy().to_string());
    }
    v.sort();
    Ok(v)
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

/// Same type, owner, mode and content (or symlink target); xattrs ignored.
fn same_file(a: &Path, sa: &std::fs::Metadata, b: &Path, sb: &std::fs::Metadata) -> Result<bool> {
    if sa.mode() != sb.mode() || sa.uid() != sb.uid() || sa.gid() != sb.gid() {
        return Ok(false);
    }
    let ft = sa.file_type();
    if ft.is_dir() {
        return Ok(true);
    }
    if ft.is_symlink() {
        let ta = std::fs::read_link(a).map_err(|e| Error::io(a, e))?;
        let tb = std::fs::read_link(b).map_err(|e| Error::io(b, e))?;
        return Ok(ta == tb);
    }
    if ft.is_file() {
        if sa.len() != sb.len() {
            return Ok(false);
        }
        if sa.dev() == sb.dev() && sa.ino() == sb.ino() {
            return Ok(true);
        }
        let da = std::fs::read(a).map_err(|e| Error::io(a, e))?;
        let db = std::fs::read(b).map_err(|e| Error::io(b, e))?;
        return Ok(da == db);
    }
    Ok(sa.rdev() == sb.rdev())
}

fn add_recurse(dir: &Path, rel: &str, out: &mut EtcDiff) -> Result<()> {
    for name in sorted_names(dir)? {
        let p = dir.join(&name);
        let r = join(rel, &name);
        out.added.push(r.clone());
        if std::fs::symlink_metadata(&p)
            .map_err(|e| Error::io(&p, e))?
            .is_dir()
        {
            add_recurse(&p, &r, out)?;
        }
    }
    Ok(())
}

/// What changed from `orig` (defaults) to `modified` (the admin's /etc).
pub fn diff_dirs(orig: &Path, modified: &Path, rel: &str, out: &mut EtcDiff) -> Result<()> {
    let (da, db) = (orig.join(rel), modified.join(rel));
    let names_a = sorted_names(&da)?;
    for name in &names_a {
        let (pa, pb) = (da.join(name), db.join(name));
        let r = join(rel, name);
        let sa = std::fs::symlink_metadata(&pa).map_err(|e| Error::io(&pa, e))?;
        let sb = match std::fs::symlink_metadata(&pb) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                out.removed.push(r);
                continue;
            }
            Err(e) => return Err(Error::io(&pb, e)),
        };
        let (ta, tb) = (sa.file_type(), sb.file_type());
        let same_type = (ta.is_dir() == tb.is_dir())
            && (ta.is_file() == tb.is_file())
            && (ta.is_symlink() == tb.is_symlink())
            && (ta.is_fifo() == tb.is_fifo());
        if !same_type {
            out.modified.push(r);
            continue;
        }
        if !same_file(&pa, &sa, &pb, &sb)? {
            out.modified.push(r.clone());
        }
        if ta.is_dir() {
            diff_dirs(orig, modified, &r, out)?;
        }
    }
    for name in sorted_names(&db)? {
        if names_a.binary_search(&name).is_ok() {
            continue;
        }
        let pb = db.join(&name);
        let r = join(rel, &name);
        out.added.push(r.clone());
        if std::fs::symlink_metadata(&pb)
            .map_err(|e| Error::io(&pb, e))?
            .is_dir()
        {
            add_recurse(&pb, &r, out)?;
        }
    }
    Ok(())
}

/// Create `rel` (and missing parents) in `new`, with the attributes the
/// admin's directories have.
fn ensure_dir_from_template(modified: &Path, new: &Path, rel: &str) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let target = new.join(rel);
    match std::fs::DirBuilder::new().mode(0o700).create(&target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some((parent, _)) = rel.rsplit_once('/') {
                ensure_dir_from_template(modified, new, parent)?;
            }
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(&target)
                .map_err(|e| Error::io(&target, e))?;
        }
        Err(e) => return Err(Error::io(&target, e)),
    }
    fsutil::copy_dir_attrs(&modified.join(rel), &target)
}

fn copy_modified(modified: &Path, new: &Path, rel: &str) -> Result<()> {
    let src = modified.join(rel);
    let sm = std::fs::symlink_metadata(&src).map_err(|e| Error::io(&src, e))?;
    if let Some((parent, _)) = rel.rsplit_once('/') {
        ensure_dir_from_template(modified, new, parent)?;
    }
    let dest = new.join(rel);
    match std::fs::symlink_metadata(&dest) {
        Ok(sn) if sn.is_dir() => {
            if !sm.is_dir() {
                return Err(Error::EtcMerge {
                    path: dest,
                    why: format!(
                        "Modified config file newly defaults to directory '{rel}', cannot merge"
                    ),
                });
            }
            // Its contents are merged entry by entry.
            return Ok(());
        }
        Ok(_) => std::fs::remove_file(&dest).map_err(|e| Error::io(&dest, e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&dest, e)),
    }
    let ft = sm.file_type();
    if ft.is_dir() {
        fsutil::copy_dir_recurse(&src, &dest)
    } else if ft.is_file() || ft.is_symlink() {
        fsutil::copy_file(&src, &dest)
    } else {
        tracing::info!("Ignoring non-regular/non-symlink file found during /etc merge: {rel}");
        Ok(())
    }
}

/// Merge the changes of `old_deploy` (its `usr/etc` → `etc`) into
/// `new_deploy/etc`.
pub fn merge(old_deploy: &Path, new_deploy: &Path) -> Result<EtcDiff> {
    let orig = old_deploy.join("usr/etc");
    let modified = old_deploy.join("etc");
    let new = new_deploy.join("etc");
    let mut d = EtcDiff::default();
    let wrap = |e: Error| match e {
        e @ Error::EtcMerge { .. } => e,
        e => Error::EtcMerge {
            path: new.clone(),
            why: e.to_string(),
        },
    };
    if !orig.is_dir() || !modified.is_dir() {
        return Ok(d);
    }
    diff_dirs(&orig, &modified, "", &mut d).map_err(wrap)?;
    if !new.is_dir() {
        fsutil::mkdir_p(&new, 0o755)?;
    }
    for r in &d.removed {
        fsutil::rm_rf(&new.join(r)).map_err(wrap)?;
    }
    for r in d.modified.iter().chain(d.added.iter()) {
        copy_modified(&modified, &new, r).map_err(wrap)?;
    }
    Ok(d)
}
