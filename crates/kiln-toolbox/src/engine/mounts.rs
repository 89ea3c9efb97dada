//! Mounting host paths into the container root without following the
//! container's symlinks out of it: targets are resolved with
//! `openat2(RESOLVE_IN_ROOT)` and mounts are attached by descriptor
//! (`open_tree` + `move_mount`).

use crate::error::{ns_err, Error, IoContext, Result};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{MoveMountFlags, OpenTreeFlags};
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

fn open_in_root(root: BorrowedFd<'_>, rel: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            root,
            rel,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            other => return other,
        }
    }
}

fn rel(inside: &Path) -> PathBuf {
    inside
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect()
}

/// Open (creating as needed) the directory `inside` in the container.
pub(crate) fn ensure_dir(root: BorrowedFd<'_>, inside: &Path) -> Result<OwnedFd> {
    let rel = rel(inside);
    let flags = OFlags::PATH | OFlags::DIRECTORY;
    if rel.as_os_str().is_empty() {
        return open_in_root(root, Path::new("."), flags).ctx("open", inside);
    }
    match open_in_root(root, &rel, flags) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(e).ctx("open", inside),
    }
    let mut dir = open_in_root(root, Path::new("."), flags).ctx("open", "/")?;
    let mut prefix = PathBuf::new();
    for part in rel.iter() {
        prefix.push(part);
        match rustix::fs::mkdirat(&dir, part, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e).ctx("create", Path::new("/").join(&prefix)),
        }
        dir = open_in_root(root, &prefix, flags).ctx("open", Path::new("/").join(&prefix))?;
    }
    Ok(dir)
}

/// Open (creating an empty file, replacing a symlink) the file `inside`.
pub(crate) fn ensure_file(root: BorrowedFd<'_>, inside: &Path) -> Result<OwnedFd> {
    let parent = ensure_dir(root, inside.parent().unwrap_or(Path::new("/")))?;
    let name = inside.file_name().unwrap_or(OsStr::new("."));
    // A real directory we can use, not an O_PATH one, for unlink/create.
    let parent = rustix::fs::openat(
        &parent,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx("open", inside)?;
    match rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::Symlink => {
                rustix::fs::unlinkat(&parent, name, AtFlags::empty()).ctx("replace", inside)?;
                create_empty(parent.as_fd(), name, inside)?;
            }
            FileType::Directory => {
                return Err(Error::Unsupported(format!(
                    "{} is a directory in the container",
                    inside.display()
                )))
            }
            _ => {}
        },
        Err(Errno::NOENT) => create_empty(parent.as_fd(), name, inside)?,
        Err(e) => return Err(e).ctx("stat", inside),
    }
    rustix::fs::openat(
        &parent,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx("open", inside)
}

fn create_empty(dir: BorrowedFd<'_>, name: &OsStr, inside: &Path) -> Result<()> {
    match rustix::fs::openat(
        dir,
        name,
        OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    ) {
        Ok(_) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(e).ctx("create", inside),
    }
}

/// A detached copy of the host mount tree at `src`.
pub(crate) fn clone_tree(src: &Path, recursive: bool) -> Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    rustix::mount::open_tree(rustix::fs::CWD, src, flags)
        .map_err(ns_err(format!("clone the mount of {}", src.display())))
}

/// Attach a detached tree at `target`.
pub(crate) fn attach(tree: BorrowedFd<'_>, target: BorrowedFd<'_>, what: &Path) -> Result<()> {
    rustix::mount::move_mount(
        tree,
        "",
        target,
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(ns_err(format!("mount {}", what.display())))
}

/// Bind the host directory `src` (with its submounts) at `inside`.
pub(crate) fn bind_dir(root: BorrowedFd<'_>, src: &Path, inside: &Path) -> Result<()> {
    let tree = clone_tree(src, true)?;
    let target = ensure_dir(root, inside)?;
    attach(tree.as_fd(), target.as_fd(), inside)
}

/// Bind the host file `src` at `inside`.
pub(crate) fn bind_file(root: BorrowedFd<'_>, src: &Path, inside: &Path) -> Result<()> {
    let tree = clone_tree(src, false)?;
    let target = ensure_file(root, inside)?;
    attach(tree.as_fd(), target.as_fd(), inside)
}
