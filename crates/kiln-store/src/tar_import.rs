//! `--tree=tar=FILE`: import a tarball as a commit layer.

use crate::commit::Modifier;
use crate::error::{Error, Result};
use crate::mtree::{self, FileEntry, MTree};
use crate::object::{DirMeta, FileMeta};
use crate::progress::Progress;
use crate::repo::Repo;
use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

/// Normalize a tar member path into components, refusing `..` and
/// absolute escapes.
fn components(p: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                return Err(Error::invalid(
                    format!("tar member {p:?}"),
                    "path contains '..'",
                ))
            }
            c => out.push(c.to_string()),
        }
    }
    Ok(out)
}

fn dir_at<'a>(repo: &Repo, root: &'a mut MTree, comps: &[String]) -> Result<&'a mut MTree> {
    let mut t = root;
    for c in comps {
        t = t.dir_mut(repo, c)?;
    }
    Ok(t)
}

pub fn import_tar(
    repo: &Repo,
    path: &Path,
    root: &mut MTree,
    modifier: &Modifier,
    progress: &Progress,
) -> Result<()> {
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let reader: Box<dyn Read> = Box::new(std::io::BufReader::new(f));
    let mut ar = tar::Archive::new(reader);
    let mut by_path: HashMap<String, crate::checksum::Checksum> = HashMap::new();
    let used = std::sync::Mutex::new(std::collections::HashSet::new());
    let entries = ar.entries().map_err(|e| Error::io(path, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::io(path, e))?;
        let hdr = entry.header().clone();
        let name = entry
            .path()
            .map_err(|e| Error::io(path, e))?
            .to_string_lossy()
            .to_string();
        let comps = components(&name)?;
        let tree_path = format!("/{}", comps.join("/"));
        let mut uid = hdr.uid().unwrap_or(0) as u32;
        let mut gid = hdr.gid().unwrap_or(0) as u32;
        let perm = hdr.mode().unwrap_or(0o644) & 0o7777;
        let mut xattrs = Vec::new();
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                if let Some(k) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                    xattrs.push((k.as_bytes().to_vec(), ext.value_bytes().to_vec()));
                }
            }
        }
        let et = hdr.entry_type();
        let (Some((last, parents)), true) = (comps.split_last(), !comps.is_empty()) else {
            if et.is_dir() {
                let mut mode = libc::S_IFDIR | perm;
                if modifier_apply(
                    modifier,
                    repo,
                    "/",
                    &mut uid,
                    &mut gid,
                    &mut mode,
                    &mut xattrs,
                    &used,
                ) {
                    root.meta = Some(mtree::write_dirmeta(
                        repo,
                        &DirMeta {
                            uid,
                            gid,
                            mode,
                            xattrs,
                        },
                    )?);
                }
            }
            continue;
        };
        if et.is_dir() {
            let mut mode = libc::S_IFDIR | perm;
            if !modifier_apply(
                modifier,
                repo,
                &tree_path,
                &mut uid,
                &mut gid,
                &mut mode,
                &mut xattrs,
                &used,
            ) {
                continue;
            }
            let dm = mtree::write_dirmeta(
                repo,
                &DirMeta {
                    uid,
                    gid,
                    mode,
                    xattrs,
                },
            )?;
            let parent = dir_at(repo, root, parents)?;
            parent.dir_mut(repo, last)?.meta = Some(dm);
        } else if et.is_file() || et.is_symlink() {
            let (mode_type, target) = if et.is_symlink() {
                let t = entry
                    .link_name()
                    .map_err(|e| Error::io(path, e))?
                    .map(|t| t.to_string_lossy().to_string())
                    .unwrap_or_default();
                (libc::S_IFLNK, t)
            } else {
                (libc::S_IFREG, String::new())
            };
            let mut mode = mode_type | if et.is_symlink() { 0o777 } else { perm };
            if !modifier_apply(
                modifier,
                repo,
                &tree_path,
                &mut uid,
                &mut gid,
                &mut mode,
                &mut xattrs,
                &used,
            ) {
                continue;
            }
            let mut data = Vec::new();
            if et.is_file() {
                entry
                    .read_to_end(&mut data)
                    .map_err(|e| Error::io(path, e))?;
            }
            let meta = FileMeta {
                uid,
                gid,
                mode,
                rdev: 0,
                symlink_target: target,
                xattrs,
            };
            let (c, _) = repo.write_content(&meta, &data)?;
            progress.add_total(1, data.len() as u64);
            progress.add_done(1, data.len() as u64);
            by_path.insert(comps.join("/"), c);
            dir_at(repo, root, parents)?.put_file(last, FileEntry::Done(c));
        } else if et == tar::EntryType::Link {
            let target = entry
                .link_name()
                .map_err(|e| Error::io(path, e))?
                .map(|t| t.to_string_lossy().to_string())
                .unwrap_or_default();
            let key = components(&target)?.join("/");
            let c = *by_path.get(&key).ok_or_else(|| {
                Error::invalid(
                    format!("tar member {name:?}"),
                    format!("hardlink to unknown {target:?}"),
                )
            })?;
            by_path.insert(comps.join("/"), c);
            dir_at(repo, root, parents)?.put_file(last, FileEntry::Done(c));
        } else if matches!(
            et,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            continue;
        } else {
            return Err(Error::UnsupportedFileType(last.clone()));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn modifier_apply(
    m: &Modifier,
    repo: &Repo,
    path: &str,
    uid: &mut u32,
    gid: &mut u32,
    mode: &mut u32,
    xattrs: &mut crate::object::Xattrs,
    used: &std::sync::Mutex<std::collections::HashSet<String>>,
) -> bool {
    m.apply_pub(repo.mode(), path, uid, gid, mode, xattrs, used)
}
