//! Checking out a commit (or a subpath of it) into a directory, with
//! hardlinks where the repo mode allows, copies elsewhere. Copies verify
//! content as they go and refuse corrupt objects.

use crate::checksum::Checksum;
use crate::error::{Error, Result};
use crate::object::{DirMeta, FileMeta, ObjectType};
use crate::progress::Progress;
use crate::repo::{ContentObject, LockKind, Repo, RepoMode};
use rayon::prelude::*;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Ownership handling (`-U` is `User`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CheckoutMode {
    #[default]
    None,
    User,
}

/// What to do when a file exists in the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overwrite {
    #[default]
    None,
    UnionFiles,
    AddFiles,
    UnionIdentical,
}

#[derive(Debug, Clone, Default)]
pub struct CheckoutOptions {
    pub mode: CheckoutMode,
    pub overwrite: Overwrite,
    pub require_hardlinks: bool,
    pub force_copy: bool,
    pub subpath: Option<String>,
    pub whiteouts: bool,
    pub no_fsync: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckoutStats {
    pub files: u64,
    pub hardlinked: u64,
    pub copied: u64,
    pub dirs: u64,
}

struct DirJob {
    dest: PathBuf,
    meta: DirMeta,
}

struct FileJob {
    dest: PathBuf,
    csum: Checksum,
}

impl Repo {
    fn can_hardlink(&self, mode: CheckoutMode) -> bool {
        matches!(
            (self.mode(), mode),
            (RepoMode::Bare, CheckoutMode::None)
                | (RepoMode::BareUser, CheckoutMode::User)
                | (RepoMode::BareUserOnly, _)
                | (RepoMode::Archive, CheckoutMode::User)
        )
    }

    /// Check out `commit` into `dest` (which must not exist unless a union
    /// mode is chosen).
    pub fn checkout(
        &self,
        commit: &Checksum,
        dest: &Path,
        opts: &CheckoutOptions,
        progress: &Progress,
    ) -> Result<CheckoutStats> {
        self.lock(LockKind::Shared)?;
        if opts.require_hardlinks
            && (!self.can_hardlink(opts.mode) || self.mode() == RepoMode::Archive)
        {
            return Err(Error::Unsupported(match (self.mode(), opts.mode) {
                (RepoMode::BareUser, CheckoutMode::None) => {
                    "User repository mode requires user checkout mode to hardlink".to_string()
                }
                _ if opts.mode == CheckoutMode::User => {
                    "Bare repository mode cannot hardlink in user checkout mode".to_string()
                }
                _ => "Bare repository mode cannot hardlink in user checkout mode".to_string(),
            }));
        }
        let c = self.read_commit(commit)?;
        let (mut tree, mut meta) = (c.root_tree, c.root_meta);
        let mut dirs = Vec::new();
        let mut files = Vec::new();
        if let Some(sub) = opts
            .subpath
            .as_deref()
            .filter(|s| *s != "/" && !s.is_empty())
        {
            let comps: Vec<&str> = sub.split('/').filter(|s| !s.is_empty()).collect();
            for (i, comp) in comps.iter().enumerate() {
                let dt = self.read_dirtree(&tree)?;
                if let Some((_, t, m)) = dt.dirs.iter().find(|(n, _, _)| n == comp) {
                    tree = *t;
                    meta = *m;
                } else if let Some((_, f)) = dt
                    .files
                    .iter()
                    .find(|(n, _)| n == comp)
                    .filter(|_| i + 1 == comps.len())
                {
                    files.push(FileJob {
                        dest: dest.to_path_buf(),
                        csum: *f,
                    });
                    return self.run_checkout(dirs, files, opts, progress, dest);
                } else {
                    return Err(Error::invalid(
                        sub,
                        "No such file or directory in the commit",
                    ));
                }
            }
        }
        self.plan(&tree, &meta, dest, &mut dirs, &mut files)?;
        self.run_checkout(dirs, files, opts, progress, dest)
    }

    fn plan(
        &self,
        tree: &Checksum,
        meta: &Checksum,
        dest: &Path,
        dirs: &mut Vec<DirJob>,
        files: &mut Vec<FileJob>,
    ) -> Result<()> {
        let dm = self.read_dirmeta(meta)?;
        let dt = self.read_dirtree(tree)?;
        dirs.push(DirJob {
            dest: dest.to_path_buf(),
            meta: dm,
        });
        for (name, c) in &dt.files {
            files.push(FileJob {
                dest: dest.join(name),
                csum: *c,
            });
        }
        for (name, t, m) in &dt.dirs {
            self.plan(t, m, &dest.join(name), dirs, files)?;
        }
        Ok(())
    }

    fn run_checkout(
        &self,
        dirs: Vec<DirJob>,
        files: Vec<FileJob>,
        opts: &CheckoutOptions,
        progress: &Progress,
        dest: &Path,
    ) -> Result<CheckoutStats> {
        progress.add_total(files.len() as u64, 0);
        // Directories first (pre-order), writable for now. Only those we
        // create get the commit's metadata: like ostree, a union checkout
        // leaves existing directories as they are.
        let mut created = vec![false; dirs.len()];
        for (i, d) in dirs.iter().enumerate() {
            match std::fs::create_dir(&d.dest) {
                Ok(()) => created[i] = true,
                Err(e)
                    if e.kind() == std::io::ErrorKind::AlreadyExists
                        && (opts.overwrite != Overwrite::None || d.dest == dest) =>
                {
                    let st =
                        std::fs::symlink_metadata(&d.dest).map_err(|e| Error::io(&d.dest, e))?;
                    if !st.is_dir() {
                        return Err(Error::io(
                            &d.dest,
                            std::io::Error::from_raw_os_error(libc::ENOTDIR),
                        ));
                    }
                    if d.dest == dest && opts.overwrite == Overwrite::None {
                        if std::fs::read_dir(&d.dest)
                            .map(|mut r| r.next().is_some())
                            .unwrap_or(false)
                        {
                            return Err(Error::io(&d.dest, e));
                        }
                        created[i] = true;
                    }
                }
                Err(e) => return Err(Error::io(&d.dest, e)),
            }
        }
        let hardlink = !opts.force_copy && self.can_hardlink(opts.mode);
        if self.mode() == RepoMode::Archive && hardlink {
            std::fs::create_dir_all(self.uncompressed_cache_dir())
                .map_err(|e| Error::io(&self.uncompressed_cache_dir(), e))?;
        }
        let results: Vec<Result<bool>> = files
            .par_iter()
            .with_min_len(16)
            .map(|f| {
                let r = self.checkout_file(f, opts, hardlink);
                progress.add_done(1, 0);
                r
            })
            .collect();
        let mut stats = CheckoutStats {
            dirs: dirs.len() as u64,
            ..Default::default()
        };
        for r in results {
            match r? {
                true => stats.hardlinked += 1,
                false => stats.copied += 1,
            }
            stats.files += 1;
        }
        if opts.whiteouts {
            apply_whiteouts(dest)?;
        }
        // Directory metadata last, deepest first, so read-only dirs are
        // filled before they become read-only.
        for (d, made) in dirs.iter().zip(&created).rev() {
            if *made {
                apply_dir_meta(&d.dest, &d.meta, opts.mode)?;
            }
        }
        if !opts.no_fsync {
            crate::util::syncfs(dest)?;
        }
        Ok(stats)
    }

    /// Returns true if hardlinked, false if copied.
    fn checkout_file(&self, f: &FileJob, opts: &CheckoutOptions, hardlink: bool) -> Result<bool> {
        // Without a union mode, creating the file reports an existing one
        // (EEXIST), so don't spend a stat on every file.
        let existing = match opts.overwrite {
            Overwrite::None => None,
            _ => std::fs::symlink_metadata(&f.dest).ok(),
        };
        if let Some(st) = existing {
            match opts.overwrite {
                Overwrite::None => {
                    return Err(Error::io(
                        &f.dest,
                        std::io::Error::from_raw_os_error(libc::EEXIST),
                    ))
                }
                Overwrite::AddFiles => return Ok(false),
                Overwrite::UnionFiles => {
                    if st.is_dir() {
                        return Err(Error::io(
                            &f.dest,
                            std::io::Error::from_raw_os_error(libc::EISDIR),
                        ));
                    }
                    std::fs::remove_file(&f.dest).map_err(|e| Error::io(&f.dest, e))?;
                }
                Overwrite::UnionIdentical => {
                    let obj = self.load_content(&f.csum)?;
                    if !same_content(&obj, &f.dest)? {
                        return Err(Error::invalid(
                            f.dest.display().to_string(),
                            "File exists and is not identical",
                        ));
                    }
                    return Ok(false);
                }
            }
        }
        // Fast path for bare and bare-user-only repos: the object's own
        // lstat says whether it can be linked (no xattr reads).
        if hardlink && matches!(self.mode(), RepoMode::Bare | RepoMode::BareUserOnly) {
            let src = self.object_path(&f.csum, ObjectType::File);
            let st = match rustix::fs::statat(
                rustix::fs::CWD,
                &src,
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            ) {
                Ok(st) => st,
                Err(rustix::io::Errno::NOENT) => {
                    return Err(Error::MissingObject {
                        csum: f.csum,
                        ty: ObjectType::File,
                    })
                }
                Err(e) => return Err(Error::rio(&src, e)),
            };
            let fmt = st.st_mode & libc::S_IFMT;
            let linkable = (fmt == libc::S_IFREG && st.st_size > 0)
                || (fmt == libc::S_IFLNK && self.mode() == RepoMode::Bare);
            if linkable {
                match std::fs::hard_link(&src, &f.dest) {
                    Ok(()) => return Ok(true),
                    Err(e)
                        if matches!(e.raw_os_error(), Some(libc::EXDEV) | Some(libc::EMLINK))
                            && !opts.require_hardlinks => {}
                    Err(e) => return Err(Error::io(&f.dest, e)),
                }
            }
        }
        let obj = self.load_content(&f.csum)?;
        // Like ostree: symlinks are always created afresh and empty files
        // copied (linking them would pile up huge link counts).
        let linkable = (obj.meta.is_regular() && obj.size > 0)
            || (obj.meta.is_symlink() && self.mode() == RepoMode::Bare);
        if hardlink && linkable {
            let src = if self.mode() == RepoMode::Archive {
                self.uncompressed_cached(&f.csum)?
            } else {
                self.object_path(&f.csum, ObjectType::File)
            };
            match std::fs::hard_link(&src, &f.dest) {
                Ok(()) => return Ok(true),
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::EXDEV) | Some(libc::EMLINK))
                        && !opts.require_hardlinks => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !src.exists() => {
                    return Err(Error::MissingObject {
                        csum: f.csum,
                        ty: ObjectType::File,
                    });
                }
                Err(e) => return Err(Error::io(&f.dest, e)),
            }
        }
        write_copy(&obj, &f.dest, opts.mode)?;
        Ok(false)
    }

    /// The uncompressed copy of an archive object, made on demand.
    fn uncompressed_cached(&self, csum: &Checksum) -> Result<PathBuf> {
        let (d, rest) = csum.split_hex();
        let dir = self.uncompressed_cache_dir().join("objects").join(&d);
        let path = dir.join(format!("{rest}.file"));
        if std::fs::symlink_metadata(&path).is_ok() {
            return Ok(path);
        }
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let obj = self.load_content(csum)?;
        let tmp = dir.join(crate::util::tmp_name(".tmp-"));
        write_copy(&obj, &tmp, CheckoutMode::User)?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }
}

fn same_content(obj: &ContentObject, path: &Path) -> Result<bool> {
    let st = std::fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
    if obj.meta.is_symlink() {
        return Ok(st.file_type().is_symlink()
            && std::fs::read_link(path)
                .map(|t| t.to_str() == Some(obj.meta.symlink_target.as_str()))
                .unwrap_or(false));
    }
    if !st.is_file() || st.len() != obj.size {
        return Ok(false);
    }
    let data = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(crate::repo::content_checksum(&obj.meta, &data) == obj.csum
        || obj.read_verified().map(|d| d == data).unwrap_or(false))
}

/// Write one file (or symlink) as a copy, applying metadata.
fn write_copy(obj: &ContentObject, dest: &Path, mode: CheckoutMode) -> Result<()> {
    let m: &FileMeta = &obj.meta;
    if m.is_symlink() {
        std::os::unix::fs::symlink(&m.symlink_target, dest).map_err(|e| Error::io(dest, e))?;
        if mode == CheckoutMode::None {
            rustix::fs::chownat(
                rustix::fs::CWD,
                dest,
                Some(rustix::fs::Uid::from_raw(m.uid)),
                Some(rustix::fs::Gid::from_raw(m.gid)),
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| Error::rio(dest, e))?;
            for (k, v) in &m.xattrs {
                let name = std::ffi::CString::new(k.clone())
                    .map_err(|e| Error::io(dest, std::io::Error::other(e)))?;
                rustix::fs::lsetxattr(dest, name.as_c_str(), v, rustix::fs::XattrFlags::empty())
                    .map_err(|e| Error::rio(dest, e))?;
            }
        }
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dest)
        .map_err(|e| Error::io(dest, e))?;
    let res = (|| -> Result<()> {
        {
            let mut bw = std::io::BufWriter::with_capacity(256 * 1024, &mut f);
            obj.copy_verified(&mut bw)?;
            bw.flush().map_err(|e| Error::io(dest, e))?;
        }
        let perm = match mode {
            CheckoutMode::None => {
                rustix::fs::fchown(
                    &f,
                    Some(rustix::fs::Uid::from_raw(m.uid)),
                    Some(rustix::fs::Gid::from_raw(m.gid)),
                )
                .map_err(|e| Error::rio(dest, e))?;
                for (k, v) in &m.xattrs {
                    let name = std::ffi::CString::new(k.clone())
                        .map_err(|e| Error::io(dest, std::io::Error::other(e)))?;
                    rustix::fs::fsetxattr(&f, name.as_c_str(), v, rustix::fs::XattrFlags::empty())
                        .map_err(|e| Error::rio(dest, e))?;
                }
                m.mode & 0o7777
            }
            CheckoutMode::User => (m.mode & 0o7777 & !0o6000) | 0o400,
        };
        rustix::fs::fchmod(&f, rustix::fs::Mode::from_raw_mode(perm))
            .map_err(|e| Error::rio(dest, e))?;
        Ok(())
    })();
    if res.is_err() {
        drop(f);
        let _ = std::fs::remove_file(dest);
    }
    res
}

fn apply_dir_meta(path: &Path, m: &DirMeta, mode: CheckoutMode) -> Result<()> {
    if mode == CheckoutMode::None {
        rustix::fs::chownat(
            rustix::fs::CWD,
            path,
            Some(rustix::fs::Uid::from_raw(m.uid)),
            Some(rustix::fs::Gid::from_raw(m.gid)),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| Error::rio(path, e))?;
        for (k, v) in &m.xattrs {
            let name = std::ffi::CString::new(k.clone())
                .map_err(|e| Error::io(path, std::io::Error::other(e)))?;
            rustix::fs::lsetxattr(path, name.as_c_str(), v, rustix::fs::XattrFlags::empty())
                .map_err(|e| Error::rio(path, e))?;
        }
    }
    rustix::fs::chmodat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(m.mode & 0o7777),
        rustix::fs::AtFlags::empty(),
    )
    .map_err(|e| Error::rio(path, e))
}

/// Process overlayfs-style whiteouts (`.wh.NAME` removes NAME).
fn apply_whiteouts(dir: &Path) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut subdirs = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name().to_string_lossy().to_string();
        let ft = e.file_type().map_err(|err| Error::io(&e.path(), err))?;
        if let Some(target) = name.strip_prefix(".wh.") {
            if target != ".wh..opq" && crate::object::validate_name(target).is_ok() {
                let t = dir.join(target);
                if let Ok(st) = std::fs::symlink_metadata(&t) {
                    if st.is_dir() {
                        let _ = std::fs::remove_dir_all(&t);
                    } else {
                        let _ = std::fs::remove_file(&t);
                    }
                }
            }
            let _ = std::fs::remove_file(e.path());
        } else if ft.is_dir() {
            subdirs.push(e.path());
        }
    }
    for s in subdirs {
        apply_whiteouts(&s)?;
    }
    Ok(())
}
