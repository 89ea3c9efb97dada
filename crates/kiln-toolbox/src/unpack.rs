//! Unpack tar layers into a root directory without ever leaving it.
//!
//! Every parent directory is resolved from the root's handle with
//! `openat2(RESOLVE_BENEATH)`: a path with `..`, or one that passes through an
//! absolute symlink or a relative one that climbs out, is refused. The last
//! component is never followed. OCI whiteouts (`.wh.NAME`, `.wh..wh..opq`)
//! delete what lower layers wrote.

use crate::error::{Error, IoContext, Result};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

/// Statistics of one unpacked layer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LayerStats {
    pub entries: u64,
    pub whiteouts: u64,
    /// Device nodes are skipped: the container gets the host's `/dev`.
    pub skipped_devices: u64,
}

/// Open `path` as the root of an unpack.
pub fn open_root(path: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx("open", path)
}

/// How to unpack.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Own every file by this `(uid, gid)` instead of the tar header's.
    pub owner: Option<(u32, u32)>,
    /// Accept only plain files and directories (no links, no whiteouts).
    pub plain_only: bool,
}

/// Unpack one layer (plain or gzip-compressed tar) onto `root`.
pub fn unpack_layer(root: BorrowedFd<'_>, reader: impl Read, layer: &str) -> Result<LayerStats> {
    unpack_layer_with(root, reader, layer, &Options::default())
}

/// [`unpack_layer`] with options.
pub fn unpack_layer_with(
    root: BorrowedFd<'_>,
    reader: impl Read,
    layer: &str,
    opts: &Options,
) -> Result<LayerStats> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let head = buffered.fill_buf().ctx("read layer", layer)?;
    let gzip = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    if head.len() >= 4 && head[..4] == [0x28, 0xb5, 0x2f, 0xfd] {
        return Err(Error::Unsupported(format!(
            "layer {layer} is zstd-compressed"
        )));
    }
    if gzip {
        unpack_tar(root, flate2::read::GzDecoder::new(buffered), layer, opts)
    } else {
        unpack_tar(root, buffered, layer, opts)
    }
}

fn unpack_tar(
    root: BorrowedFd<'_>,
    reader: impl Read,
    layer: &str,
    opts: &Options,
) -> Result<LayerStats> {
    let mut archive = tar::Archive::new(reader);
    let mut u = Unpacker {
        root,
        layer,
        opts,
        written: HashSet::new(),
        stats: LayerStats::default(),
    };
    let entries = archive.entries().ctx("read layer", layer)?;
    for entry in entries {
        let entry = entry.ctx("read layer", layer)?;
        u.entry(entry)?;
    }
    Ok(u.stats)
}

struct Unpacker<'a> {
    root: BorrowedFd<'a>,
    layer: &'a str,
    opts: &'a Options,
    /// Paths this layer wrote: an opaque marker keeps them.
    written: HashSet<PathBuf>,
    stats: LayerStats,
}

/// Split a tar path into safe components (no `..`, no empty names).
fn components<'p>(raw: &'p [u8], layer: &str) -> Result<Vec<&'p OsStr>> {
    let mut out = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => continue,
            b".." => {
                return Err(Error::UnsafeLayer {
                    layer: layer.into(),
                    entry: String::from_utf8_lossy(raw).into_owned(),
                    reason: "contains '..'".into(),
                })
            }
            _ if part.contains(&0) => {
                return Err(Error::UnsafeLayer {
                    layer: layer.into(),
                    entry: String::from_utf8_lossy(raw).into_owned(),
                    reason: "contains a NUL byte".into(),
                })
            }
            _ => out.push(OsStr::from_bytes(part)),
        }
    }
    Ok(out)
}

fn join(parts: &[&OsStr]) -> PathBuf {
    parts.iter().collect()
}

impl Unpacker<'_> {
    fn unsafe_entry(&self, entry: &Path, reason: &str) -> Error {
        Error::UnsafeLayer {
            layer: self.layer.into(),
            entry: entry.display().to_string(),
            reason: reason.into(),
        }
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        self.stats.entries += 1;
        let raw_path = entry.path_bytes().into_owned();
        let parts = components(&raw_path, self.layer)?;
        let header = entry.header();
        let kind = header.entry_type();
        let mut mode = header.mode().unwrap_or(0o644) & 0o7777;
        let (mut uid, mut gid) = (header.uid().unwrap_or(0), header.gid().unwrap_or(0));
        if let Some((u, g)) = self.opts.owner {
            (uid, gid) = (u.into(), g.into());
        }
        if self.opts.plain_only {
            if !(kind.is_dir() || kind.is_file()) {
                return Err(self.unsafe_entry(
                    Path::new(OsStr::from_bytes(&raw_path)),
                    "is not a plain file or directory",
                ));
            }
            mode = if kind.is_dir() { 0o755 } else { 0o644 };
        }
        let mtime = header.mtime().unwrap_or(0);
        let link = entry.link_name_bytes().map(|l| l.into_owned());

        let Some((name, parent_parts)) = parts.split_last() else {
            // The root directory itself.
            if kind.is_dir() {
                self.set_owner_mode(self.root, OsStr::new("."), uid, gid, mode, &raw_path)?;
            }
            return Ok(());
        };
        let path = join(&parts);
        let name_bytes = name.as_bytes();

        let whiteout = name_bytes
            .strip_prefix(WHITEOUT_PREFIX)
            .filter(|_| !self.opts.plain_only);
        if let Some(target) = whiteout {
            self.stats.whiteouts += 1;
            let parent = match self.open_dir(parent_parts, false, &path)? {
                Some(p) => p,
                None => return Ok(()),
            };
            if name_bytes == OPAQUE {
                self.make_opaque(parent.as_fd(), &join(parent_parts))?;
            } else {
                if target.is_empty()
                    || target == b"."
                    || target == b".."
                    || target.starts_with(WHITEOUT_PREFIX)
                {
                    return Err(self.unsafe_entry(&path, "is a malformed whiteout"));
                }
                remove_all_at(parent.as_fd(), OsStr::from_bytes(target)).ctx("remove", &path)?;
            }
            return Ok(());
        }

        let parent = self
            .open_dir(parent_parts, true, &path)?
            .ok_or_else(|| self.unsafe_entry(&path, "has no parent directory"))?;
        let parent = parent.as_fd();

        use tar::EntryType as T;
        match kind {
            T::Directory => {
                match rustix::fs::statat(parent, *name, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {}
                    Ok(_) => {
                        remove_all_at(parent, name).ctx("replace", &path)?;
                        rustix::fs::mkdirat(parent, *name, Mode::from_raw_mode(0o700))
                            .ctx("create", &path)?;
                    }
                    Err(Errno::NOENT) => {
                        rustix::fs::mkdirat(parent, *name, Mode::from_raw_mode(0o700))
                            .ctx("create", &path)?
                    }
                    Err(e) => return Err(e).ctx("stat", &path),
                }
                self.set_owner_mode(parent, name, uid, gid, mode, &raw_path)?;
            }
            T::Regular | T::Continuous => {
                remove_all_at(parent, name).ctx("replace", &path)?;
                let fd = rustix::fs::openat(
                    parent,
                    *name,
                    OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::WRONLY
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .ctx("create", &path)?;
                let mut file = std::fs::File::from(fd);
                std::io::copy(&mut entry, &mut file).ctx("write", &path)?;
                rustix::fs::fchown(&file, Some(to_uid(uid)?), Some(to_gid(gid)?))
                    .map_err(|e| self.chown_error(e, uid, gid, &path))?;
                rustix::fs::fchmod(&file, Mode::from_raw_mode(mode)).ctx("chmod", &path)?;
                rustix::fs::futimens(&file, &times(mtime)).ctx("set times of", &path)?;
            }
            T::Symlink => {
                let target =
                    link.ok_or_else(|| self.unsafe_entry(&path, "is a symlink without target"))?;
                if target.is_empty() || target.contains(&0) {
                    return Err(self.unsafe_entry(&path, "has an invalid symlink target"));
                }
                remove_all_at(parent, name).ctx("replace", &path)?;
                rustix::fs::symlinkat(OsStr::from_bytes(&target), parent, *name)
                    .ctx("create", &path)?;
                rustix::fs::chownat(
                    parent,
                    *name,
                    Some(to_uid(uid)?),
                    Some(to_gid(gid)?),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(|e| self.chown_error(e, uid, gid, &path))?;
                let _ =
                    rustix::fs::utimensat(parent, *name, &times(mtime), AtFlags::SYMLINK_NOFOLLOW);
            }
            T::Link => {
                let target =
                    link.ok_or_else(|| self.unsafe_entry(&path, "is a hard link without target"))?;
                let tparts = components(&target, self.layer)?;
                let Some((tname, tparent_parts)) = tparts.split_last() else {
                    return Err(self.unsafe_entry(&path, "is a hard link to the root"));
                };
                let tparent = self
                    .open_dir(tparent_parts, false, &path)?
                    .ok_or_else(|| self.unsafe_entry(&path, "links to a missing file"))?;
                if tparent_parts == parent_parts && tname == name {
                    return Ok(());
                }
                remove_all_at(parent, name).ctx("replace", &path)?;
                rustix::fs::linkat(tparent.as_fd(), *tname, parent, *name, AtFlags::empty())
                    .ctx("link", &path)?;
            }
            T::Fifo => {
                remove_all_at(parent, name).ctx("replace", &path)?;
                rustix::fs::mknodat(parent, *name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
                    .ctx("create", &path)?;
                self.set_owner_mode(parent, name, uid, gid, mode, &raw_path)?;
            }
            T::Char | T::Block => {
                self.stats.skipped_devices += 1;
                tracing::debug!(path = %path.display(), "skipping device node");
                return Ok(());
            }
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => return Ok(()),
            other => {
                return Err(Error::Unsupported(format!(
                    "tar entry type {other:?} for {} in layer {}",
                    path.display(),
                    self.layer
                )))
            }
        }
        self.written.insert(path);
        Ok(())
    }

    fn chown_error(&self, e: Errno, uid: u64, gid: u64, path: &Path) -> Error {
        if e == Errno::INVAL {
            Error::Unsupported(format!(
                "{} in layer {} is owned by {uid}:{gid}, which is outside the mapped id range \
                 (the subordinate id range in /etc/subuid and /etc/subgid is too small)",
                path.display(),
                self.layer
            ))
        } else {
            Error::Io {
                op: "chown",
                path: path.into(),
                source: e.into(),
            }
        }
    }

    fn set_owner_mode(
        &self,
        parent: BorrowedFd<'_>,
        name: &OsStr,
        uid: u64,
        gid: u64,
        mode: u32,
        raw: &[u8],
    ) -> Result<()> {
        let path = Path::new(OsStr::from_bytes(raw));
        rustix::fs::chownat(
            parent,
            name,
            Some(to_uid(uid)?),
            Some(to_gid(gid)?),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| self.chown_error(e, uid, gid, path))?;
        rustix::fs::chmodat(parent, name, Mode::from_raw_mode(mode), AtFlags::empty())
            .ctx("chmod", path)
    }

    /// Open the directory `parts` below the root, refusing any escape.
    /// Missing directories are created when `create` is set, else `None`.
    fn open_dir(&self, parts: &[&OsStr], create: bool, entry: &Path) -> Result<Option<OwnedFd>> {
        if parts.is_empty() {
            return open_beneath(self.root, Path::new("."))
                .map(Some)
                .map_err(|e| self.resolve_error(e, entry));
        }
        let full = join(parts);
        match open_beneath(self.root, &full) {
            Ok(fd) => return Ok(Some(fd)),
            Err(Errno::NOENT) if create => {}
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(self.resolve_error(e, entry)),
        }
        // Create the missing directories one by one, still beneath the root.
        let mut dir =
            open_beneath(self.root, Path::new(".")).map_err(|e| self.resolve_error(e, entry))?;
        for i in 0..parts.len() {
            let prefix = join(&parts[..=i]);
            let next = match open_beneath(self.root, &prefix) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&dir, parts[i], Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e).ctx("create", &prefix),
                    }
                    open_beneath(self.root, &prefix).map_err(|e| self.resolve_error(e, entry))?
                }
                Err(e) => return Err(self.resolve_error(e, entry)),
            };
            dir = next;
        }
        Ok(Some(dir))
    }

    fn resolve_error(&self, e: Errno, entry: &Path) -> Error {
        match e {
            Errno::XDEV | Errno::LOOP => self.unsafe_entry(
                entry,
                "resolves outside the image root (through '..' or an absolute symlink)",
            ),
            Errno::NOTDIR => self.unsafe_entry(entry, "has a parent that is not a directory"),
            e => Error::Io {
                op: "open",
                path: entry.into(),
                source: e.into(),
            },
        }
    }

    /// `.wh..wh..opq`: hide everything lower layers put in this directory.
    fn make_opaque(&self, dir: BorrowedFd<'_>, dir_path: &Path) -> Result<()> {
        let mut names = Vec::new();
        let listing = rustix::fs::Dir::read_from(dir).ctx("read", dir_path)?;
        for entry in listing {
            let entry = entry.ctx("read", dir_path)?;
            let name = OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string();
            if name == "." || name == ".." {
                continue;
            }
            if !self.written.contains(&dir_path.join(&name)) {
                names.push(name);
            }
        }
        for name in names {
            remove_all_at(dir, &name).ctx("remove", dir_path.join(&name))?;
        }
        Ok(())
    }
}

fn open_beneath(root: BorrowedFd<'_>, path: &Path) -> Result<OwnedFd, Errno> {
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            root,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(Errno::AGAIN) if tries < 16 => tries += 1,
            other => return other,
        }
    }
}

/// Remove `name` in `dir` (recursively for directories), never following
/// symlinks. A missing name is fine.
pub(crate) fn remove_all_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<(), std::io::Error> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(Into::into);
    }
    let sub = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut children = Vec::new();
    for entry in rustix::fs::Dir::read_from(&sub)? {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            children.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    for child in children {
        remove_all_at(sub.as_fd(), &child)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(Into::into)
}

fn to_uid(id: u64) -> Result<rustix::fs::Uid> {
    u32::try_from(id)
        .map(rustix::fs::Uid::from_raw)
        .map_err(|_| Error::Unsupported(format!("uid {id} out of range")))
}

fn to_gid(id: u64) -> Result<rustix::fs::Gid> {
    u32::try_from(id)
        .map(rustix::fs::Gid::from_raw)
        .map_err(|_| Error::Unsupported(format!("gid {id} out of range")))
}

fn times(mtime: u64) -> Timestamps {
    let t = Timespec {
        tv_sec: mtime.min(i64::MAX as u64) as i64,
        tv_nsec: 0,
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

#[cfg(test)]
mod tests;
