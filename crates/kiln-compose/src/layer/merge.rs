//! Fold an overlayfs upper directory into the hardlinked checkout it was
//! the upper of. Only renames, unlinks and metadata changes of real
//! directories happen in the checkout: a file that is a hardlink to a
//! repo object is replaced, never written.

use super::error::{io, Error, Result};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

const OVL_PREFIX: &[u8] = b"trusted.overlay.";

fn is_whiteout(m: &std::fs::Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn xattr_names(p: &Path) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let Ok(n) = rustix::fs::llistxattr(p, &mut buf[..]) else {
        return Vec::new();
    };
    buf[..n]
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn is_opaque(p: &Path) -> bool {
    let mut v = [0u8; 4];
    matches!(rustix::fs::lgetxattr(p, "trusted.overlay.opaque", &mut v[..]), Ok(1) if v[0] == b'y')
}

/// Drop overlayfs' private xattrs, and whiteouts left inside a moved
/// directory, below `p` (recursively).
fn scrub(p: &Path) -> Result<()> {
    for name in xattr_names(p) {
        if name.starts_with(OVL_PREFIX) {
            rustix::fs::lremovexattr(p, name.as_slice()).map_err(|e| Error::io(p, e.into()))?;
        }
    }
    let m = io(p, std::fs::symlink_metadata(p))?;
    if m.is_dir() {
        for e in io(p, std::fs::read_dir(p))? {
            let e = io(p, e)?;
            let c = e.path();
            let cm = io(&c, std::fs::symlink_metadata(&c))?;
            if is_whiteout(&cm) {
                io(&c, std::fs::remove_file(&c))?;
            } else {
                scrub(&c)?;
            }
        }
    }
    Ok(())
}

fn remove_any(p: &Path) -> Result<()> {
    match std::fs::symlink_metadata(p) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => io(p, std::fs::remove_dir_all(p)),
        Ok(_) => io(p, std::fs::remove_file(p)),
    }
}

/// Counts of what the merge did.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MergeStats {
    pub replaced: u64,
    pub removed: u64,
}

/// Merge `upper` into `lower` (consumes `upper`).
pub(crate) fn merge(upper: &Path, lower: &Path) -> Result<MergeStats> {
    let mut st = MergeStats::default();
    merge_dir(upper, lower, &mut st)?;
    Ok(st)
}

fn merge_dir(upper: &Path, lower: &Path, st: &mut MergeStats) -> Result<()> {
    let mut names: Vec<_> = io(upper, std::fs::read_dir(upper))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let u = upper.join(&name);
        let l = lower.join(&name);
        let um = io(&u, std::fs::symlink_metadata(&u))?;
        if is_whiteout(&um) {
            remove_any(&l)?;
            st.removed += 1;
            continue;
        }
        let lm = std::fs::symlink_metadata(&l).ok();
        if um.is_dir() && lm.as_ref().is_some_and(|m| m.is_dir()) && !is_opaque(&u) {
            // A real directory of the checkout: take the upper's metadata.
            io(
                &l,
                std::os::unix::fs::lchown(&l, Some(um.uid()), Some(um.gid())),
            )?;
            io(
                &l,
                std::fs::set_permissions(&l, std::fs::Permissions::from_mode(um.mode() & 0o7777)),
            )?;
            merge_dir(&u, &l, st)?;
            continue;
        }
        scrub(&u)?;
        remove_any(&l)?;
        io(&u, std::fs::rename(&u, &l))?;
        st.replaced += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn replaces_without_touching_hardlinked_files() {
        let t = tempfile::tempdir().unwrap();
        let (obj, lower, upper) = (t.path().join("obj"), t.path().join("l"), t.path().join("u"));
        fs::create_dir_all(lower.join("d/sub")).unwrap();
        fs::create_dir_all(upper.join("d")).unwrap();
        fs::write(&obj, "object").unwrap();
        fs::hard_link(&obj, lower.join("d/f")).unwrap();
        fs::hard_link(&obj, lower.join("d/sub/g")).unwrap();
        fs::write(upper.join("d/f"), "new").unwrap();
        fs::create_dir_all(upper.join("d/new")).unwrap();
        fs::write(upper.join("d/new/x"), "x").unwrap();
        fs::set_permissions(upper.join("d"), fs::Permissions::from_mode(0o700)).unwrap();
        let st = merge(&upper, &lower).unwrap();
        assert_eq!(st.replaced, 2);
        assert_eq!(fs::read_to_string(&obj).unwrap(), "object");
        assert_eq!(fs::read_to_string(lower.join("d/f")).unwrap(), "new");
        assert_eq!(fs::read_to_string(lower.join("d/new/x")).unwrap(), "x");
        assert_eq!(fs::read_to_string(lower.join("d/sub/g")).unwrap(), "object");
        let m = fs::metadata(lower.join("d")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o700);
    }
}
