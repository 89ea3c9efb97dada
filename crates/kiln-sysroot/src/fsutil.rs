//! File-system helpers: removal that never follows symlinks, the immutable
//! flag, atomic symlink replacement, copies that keep owner, mode, xattrs
//! and times (what `glnx_file_copy_at` does).

use crate::error::{Error, Result};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// `rm -rf` that clears the immutable flag on the way (deployment roots
/// carry it) and never follows symlinks. Missing paths are fine.
pub fn rm_rf(path: &Path) -> Result<()> {
    let st = match std::fs::symlink_metadata(path) {
        Ok(st) => st,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(path, e)),
    };
    if st.is_dir() {
        set_immutable(path, false)?;
        remove_tree(path)
    } else {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

/// Remove a directory tree, subdirectories in parallel (a deployment is
/// tens of thousands of hardlinks: unlinking them is most of a cleanup).
fn remove_tree(dir: &Path) -> Result<()> {
    use rayon::prelude::*;
    let mut subdirs = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let ft = e.file_type().map_err(|err| Error::io(&e.path(), err))?;
        if ft.is_dir() {
            subdirs.push(e.path());
        } else {
            match std::fs::remove_file(e.path()) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(Error::io(&e.path(), err)),
            }
        }
    }
    subdirs.par_iter().try_for_each(|d| remove_tree(d))?;
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(dir, e)),
    }
}

/// Set or clear `FS_IMMUTABLE_FL` (`chattr +i`) on a directory. File
/// systems without the flag (tmpfs, overlayfs) are ignored, like ostree.
pub fn set_immutable(path: &Path, on: bool) -> Result<()> {
    use rustix::fs::{IFlags, Mode, OFlags};
    let fd = match rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) if !on => return Ok(()),
        Err(e) => return Err(Error::rio(path, e)),
    };
    let flags = match rustix::fs::ioctl_getflags(&fd) {
        Ok(f) => f,
        Err(rustix::io::Errno::NOTTY | rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::INVAL) => {
            return Ok(())
        }
        Err(e) => return Err(Error::rio(path, e)),
    };
    let new = if on {
        flags | IFlags::IMMUTABLE
    } else {
        flags - IFlags::IMMUTABLE
    };
    if new == flags {
        return Ok(());
    }
    match rustix::fs::ioctl_setflags(&fd, new) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::NOTTY | rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::INVAL) => {
            Ok(())
        }
        Err(e) => Err(Error::rio(path, e)),
    }
}

/// `mkdir -p` with `mode` (umask applies, as with `glnx_shutil_mkdir_p_at`).
pub fn mkdir_p(path: &Path, mode: u32) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| Error::io(path, e))
}

/// Make `link` a symlink to `target`, atomically replacing what was there.
pub fn symlink_replace(target: &str, link: &Path) -> Result<()> {
    let dir = link.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(kiln_store::util::tmp_name(".tmplink-"));
    std::os::unix::fs::symlink(target, &tmp).map_err(|e| Error::io(&tmp, e))?;
    if let Err(e) = std::fs::rename(&tmp, link) {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(link, e));
    }
    Ok(())
}

/// Write a file atomically (temp + rename), no fsync: the caller syncs the
/// file system once before its commit point.
pub fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(kiln_store::util::tmp_name(".tmp-"));
    let res = (|| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(mode))?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Read a file if it exists.
pub fn read_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(b) => String::from_utf8(b).map(Some).map_err(|_| Error::Parse {
            path: path.to_path_buf(),
            why: "not UTF-8".into(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

pub fn exists_nofollow(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// (st_dev, st_ino) of a path, following symlinks.
pub fn dev_ino(path: &Path) -> Result<(u64, u64)> {
    let st = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    Ok((st.dev(), st.ino()))
}

fn copy_xattrs(src: &Path, dest: &Path) -> Result<()> {
    let xattrs = kiln_store::repo::read_xattrs_pub(src).map_err(|e| Error::io(src, e))?;
    for (k, v) in xattrs {
        let name =
            std::ffi::CString::new(k).map_err(|e| Error::io(src, std::io::Error::other(e)))?;
        rustix::fs::lsetxattr(dest, name.as_c_str(), &v, rustix::fs::XattrFlags::empty())
            .map_err(|e| Error::rio(dest, e))?;
    }
    Ok(())
}

/// Copy a regular file or symlink with owner, mode, xattrs and times,
/// replacing `dest` atomically.
pub fn copy_file(src: &Path, dest: &Path) -> Result<()> {
    let st = std::fs::symlink_metadata(src).map_err(|e| Error::io(src, e))?;
    let dir = dest.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(kiln_store::util::tmp_name(".tmpcopy-"));
    let res = (|| -> Result<()> {
        let (uid, gid) = (
            Some(rustix::fs::Uid::from_raw(st.uid())),
            Some(rustix::fs::Gid::from_raw(st.gid())),
        );
        if st.file_type().is_symlink() {
            let target = std::fs::read_link(src).map_err(|e| Error::io(src, e))?;
            std::os::unix::fs::symlink(&target, &tmp).map_err(|e| Error::io(&tmp, e))?;
            rustix::fs::chownat(
                rustix::fs::CWD,
                &tmp,
                uid,
                gid,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| Error::rio(&tmp, e))?;
            copy_xattrs(src, &tmp)?;
        } else {
            let mut input = std::fs::File::open(src).map_err(|e| Error::io(src, e))?;
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)
                .map_err(|e| Error::io(&tmp, e))?;
            std::io::copy(&mut input, &mut out).map_err(|e| Error::io(&tmp, e))?;
            rustix::fs::fchown(&out, uid, gid).map_err(|e| Error::rio(&tmp, e))?;
            copy_xattrs(src, &tmp)?;
            rustix::fs::fchmod(&out, rustix::fs::Mode::from_raw_mode(st.mode() & 0o7777))
                .map_err(|e| Error::rio(&tmp, e))?;
            let times = rustix::fs::Timestamps {
                last_access: rustix::fs::Timespec {
                    tv_sec: st.atime(),
                    tv_nsec: st.atime_nsec() as _,
                },
                last_modification: rustix::fs::Timespec {
                    tv_sec: st.mtime(),
                    tv_nsec: st.mtime_nsec() as _,
                },
            };
            rustix::fs::futimens(&out, &times).map_err(|e| Error::rio(&tmp, e))?;
        }
        std::fs::rename(&tmp, dest).map_err(|e| Error::io(dest, e))
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Give `dest` (a directory) the owner, mode and xattrs of `src`.
pub fn copy_dir_attrs(src: &Path, dest: &Path) -> Result<()> {
    let st = std::fs::symlink_metadata(src).map_err(|e| Error::io(src, e))?;
    copy_xattrs(src, dest)?;
    rustix::fs::chownat(
        rustix::fs::CWD,
        dest,
        Some(rustix::fs::Uid::from_raw(st.uid())),
        Some(rustix::fs::Gid::from_raw(st.gid())),
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| Error::rio(dest, e))?;
    rustix::fs::chmodat(
        rustix::fs::CWD,
        dest,
        rustix::fs::Mode::from_raw_mode(st.mode() & 0o7777),
        rustix::fs::AtFlags::empty(),
    )
    .map_err(|e| Error::rio(dest, e))
}

/// Copy a directory tree (regular files, symlinks, directories; other
/// types skipped), keeping metadata.
pub fn copy_dir_recurse(src: &Path, dest: &Path) -> Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dest) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(dest, e)),
    }
    copy_dir_attrs(src, dest)?;
    for e in std::fs::read_dir(src).map_err(|e| Error::io(src, e))? {
        let e = e.map_err(|e| Error::io(src, e))?;
        let ft = e.file_type().map_err(|err| Error::io(&e.path(), err))?;
        let (s, d) = (e.path(), dest.join(e.file_name()));
        if ft.is_dir() {
            copy_dir_recurse(&s, &d)?;
        } else if ft.is_file() || ft.is_symlink() {
            copy_file(&s, &d)?;
        }
    }
    Ok(())
}

/// Bytes a tree occupies on disk (st_blocks), counting each inode once
/// per `seen` set; returns (total, of which in inodes with nlink > 1).
pub fn disk_usage(path: &Path, seen: &mut std::collections::HashSet<(u64, u64)>) -> (u64, u64) {
    let Ok(st) = std::fs::symlink_metadata(path) else {
        return (0, 0);
    };
    let mut total = 0;
    let mut shared = 0;
    if seen.insert((st.dev(), st.ino())) {
        total += st.blocks() * 512;
        if !st.is_dir() && st.nlink() > 1 {
            shared += st.blocks() * 512;
        }
    }
    if st.is_dir() {
        if let Ok(rd) = std::fs::read_dir(path) {
            for e in rd.flatten() {
                let (t, s) = disk_usage(&e.path(), seen);
                total += t;
                shared += s;
            }
        }
    }
    (total, shared)
}

/// Bytes we may still write on the file system holding `path` (root may
/// use the reserved blocks).
pub fn fs_free(path: &Path) -> Result<u64> {
    let st = rustix::fs::statvfs(path).map_err(|e| Error::rio(path, e))?;
    // A file system that reports no size at all (ramfs, some FUSE) cannot
    // be checked: treat it as unlimited rather than as full.
    if st.f_blocks == 0 {
        return Ok(u64::MAX);
    }
    let blocks = if rustix::process::geteuid().is_root() {
        st.f_bfree
    } else {
        st.f_bavail
    };
    Ok(blocks.saturating_mul(st.f_frsize))
}
