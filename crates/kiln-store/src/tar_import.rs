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
    // Raw mode: the tar crate's pax parser splits records at newlines,
    // which breaks binary xattr values, so pax and GNU long-name headers
    // are parsed here.
    let entries = ar.entries().map_err(|e| Error::io(path, e))?.raw(true);
    let mut pending_pax: Option<Vec<(Vec<u8>, Vec<u8>)>> = None;
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::io(path, e))?;
        let hdr = entry.header().clone();
        match hdr.entry_type() {
            tar::EntryType::XHeader => {
                let mut raw = Vec::new();
                entry
                    .read_to_end(&mut raw)
                    .map_err(|e| Error::io(path, e))?;
                let parsed = parse_pax(&raw).ok_or_else(|| {
                    Error::invalid(path.display().to_string(), "malformed pax header")
                })?;
                pending_pax = Some(parsed);
                continue;
            }
            tar::EntryType::GNULongName | tar::EntryType::GNULongLink => {
                let mut raw = Vec::new();
                entry
                    .read_to_end(&mut raw)
                    .map_err(|e| Error::io(path, e))?;
                while raw.last() == Some(&0) {
                    raw.pop();
                }
                if hdr.entry_type() == tar::EntryType::GNULongName {
                    long_name = Some(raw);
                } else {
                    long_link = Some(raw);
                }
                continue;
            }
            tar::EntryType::XGlobalHeader => continue,
            _ => {}
        }
        let pax = pending_pax.take().unwrap_or_default();
        let pax_get = |k: &[u8]| {
            pax.iter()
                .rev()
                .find(|(kk, _)| kk == k)
                .map(|(_, v)| v.clone())
        };
        let name_bytes = pax_get(b"path")
            .or(long_name.take())
            .unwrap_or_else(|| hdr.path_bytes().to_vec());
        let name = String::from_utf8(name_bytes)
            .map_err(|_| Error::invalid(path.display().to_string(), "member name is not UTF-8"))?;
        let link_target = pax_get(b"linkpath")
            .or(long_link.take())
            .or_else(|| hdr.link_name_bytes().map(|b| b.to_vec()));
        let comps = components(&name)?;
        let tree_path = format!("/{}", comps.join("/"));
        let mut uid = hdr.uid().unwrap_or(0) as u32;
        let mut gid = hdr.gid().unwrap_or(0) as u32;
        let perm = hdr.mode().unwrap_or(0o644) & 0o7777;
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = pax
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(b"SCHILY.xattr.")
                    .map(|n| (n.to_vec(), v.clone()))
            })
            .collect();
        // libarchive hands xattrs over last-first and ostree keeps that
        // order (no sorting, empty values kept): match it for equal checksums.
        xattrs.reverse();
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
                let t =
                    String::from_utf8_lossy(link_target.as_deref().unwrap_or_default()).to_string();
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
            let target =
                String::from_utf8_lossy(link_target.as_deref().unwrap_or_default()).to_string();
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
    m.apply_inner(repo.mode(), path, uid, gid, mode, xattrs, used, false)
}

/// Parse pax extended header records: `LEN KEY=VALUE\n`, where LEN counts
/// the whole record and VALUE may hold any byte.
fn parse_pax(mut data: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.iter().all(|b| *b == 0) {
            break;
        }
        let sp = data.iter().position(|b| *b == b' ')?;
        let len: usize = std::str::from_utf8(&data[..sp]).ok()?.parse().ok()?;
        if len <= sp + 1 || len > data.len() || data[len - 1] != b'\n' {
            return None;
        }
        let rec = &data[sp + 1..len - 1];
        let eq = rec.iter().position(|b| *b == b'=')?;
        out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        data = &data[len..];
    }
    Some(out)
}
