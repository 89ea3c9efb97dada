//! Committing a directory from disk: each directory's files are hashed and
//! stored in parallel, its subdirectories walked in parallel, and its
//! dirtree written as soon as its children are done. Memory stays bounded
//! by the tree's depth, not its size.

use crate::checksum::Checksum;
use crate::commit::Modifier;
use crate::error::{Error, Result};
use crate::mtree::{FileEntry, MDir, MTree};
use crate::object::{DirMeta, FileMeta, ObjectType, Xattrs};
use crate::progress::Progress;
use crate::repo::{Repo, RepoMode};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Files up to this size are read whole, hashed, and written only if new.
const SMALL_FILE: u64 = 1 << 20;

/// (dev, ino, uid, gid, mode) of a hardlinked source file.
type InodeKey = (u64, u64, u32, u32, u32);

/// Shared state of one walk.
pub(crate) struct DirWalk<'a> {
    pub repo: &'a Repo,
    pub modifier: &'a Modifier,
    pub progress: &'a Progress,
    /// Skip-list entries that matched something.
    pub skip_used: Mutex<HashSet<String>>,
    /// `--link-checkout-speedup`: (dev, ino) of repo objects.
    pub devino: HashMap<(u64, u64), Checksum>,
    seen: Mutex<HashMap<InodeKey, Checksum>>,
    pub files_total: AtomicU64,
    pub files_written: AtomicU64,
    pub bytes_written: AtomicU64,
    /// Write each dirtree as soon as it is complete (a single layer). With
    /// several layers the trees stay in memory until merged, so no dirtree
    /// of an intermediate layer is stored.
    pub write_trees: bool,
}

fn to_utf8(name: &std::ffi::OsStr, parent: &Path) -> Result<String> {
    name.to_str().map(str::to_string).ok_or_else(|| {
        Error::invalid(
            parent.join(name).display().to_string(),
            "file name is not valid UTF-8",
        )
    })
}

fn child_path(tree_path: &str, name: &str) -> String {
    if tree_path == "/" {
        format!("/{name}")
    } else {
        format!("{tree_path}/{name}")
    }
}

impl<'a> DirWalk<'a> {
    pub fn new(
        repo: &'a Repo,
        modifier: &'a Modifier,
        progress: &'a Progress,
        devino: HashMap<(u64, u64), Checksum>,
    ) -> Self {
        DirWalk {
            repo,
            modifier,
            progress,
            skip_used: Mutex::new(HashSet::new()),
            devino,
            seen: Mutex::new(HashMap::new()),
            files_total: AtomicU64::new(0),
            files_written: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            write_trees: true,
        }
    }

    fn mode(&self) -> RepoMode {
        self.repo.mode()
    }

    /// Commit `dir` as the root.
    pub fn commit_root(&self, dir: &Path) -> Result<MDir> {
        let st = std::fs::symlink_metadata(dir).map_err(|e| Error::io(dir, e))?;
        if !st.is_dir() {
            return Err(Error::invalid(dir.display().to_string(), "not a directory"));
        }
        match self.commit_dir(dir, "/", &st)? {
            Some(r) => Ok(r),
            None => Err(Error::invalid(
                "skip-list",
                "the skip list removes the root directory",
            )),
        }
    }

    fn dirmeta_of(
        &self,
        path: &Path,
        tree_path: &str,
        st: &std::fs::Metadata,
    ) -> Result<Option<DirMeta>> {
        let mut xattrs = crate::repo::read_xattrs_pub(path).map_err(|e| Error::io(path, e))?;
        let (mut uid, mut gid, mut mode) = (st.uid(), st.gid(), st.mode());
        if !self.modifier.apply_inner(
            self.mode(),
            tree_path,
            &mut uid,
            &mut gid,
            &mut mode,
            &mut xattrs,
            &self.skip_used,
            true,
        ) {
            return Ok(None);
        }
        Ok(Some(DirMeta {
            uid,
            gid,
            mode,
            xattrs,
        }))
    }

    /// Returns None when the skip list removes the directory.
    fn commit_dir(
        &self,
        dir: &Path,
        tree_path: &str,
        st: &std::fs::Metadata,
    ) -> Result<Option<MDir>> {
        let Some(dm) = self.dirmeta_of(dir, tree_path, st)? else {
            return Ok(None);
        };
        let meta_csum = self.repo.write_meta(ObjectType::DirMeta, &dm.to_bytes())?;
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::io(dir, e))?;
        names.sort();
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        for name_os in names {
            let name = to_utf8(&name_os, dir)?;
            let path = dir.join(&name_os);
            let cst = std::fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
            let ft = cst.file_type();
            if ft.is_dir() {
                dirs.push((name, path, cst));
            } else if ft.is_file() || ft.is_symlink() {
                self.progress
                    .add_total(1, if ft.is_file() { cst.len() } else { 0 });
                files.push((name, path, cst));
            } else {
                return Err(Error::UnsupportedFileType(name));
            }
        }
        let file_results: Vec<Option<(String, Checksum)>> = files
            .into_par_iter()
            .with_min_len(4)
            .map(|(name, path, cst)| {
                let tp = child_path(tree_path, &name);
                Ok(self.commit_file(&path, &tp, &cst)?.map(|c| (name, c)))
            })
            .collect::<Result<_>>()?;
        let dir_results: Vec<Option<(String, MDir)>> = dirs
            .into_par_iter()
            .map(|(name, path, cst)| {
                let tp = child_path(tree_path, &name);
                Ok(self.commit_dir(&path, &tp, &cst)?.map(|d| (name, d)))
            })
            .collect::<Result<_>>()?;
        let tree = MTree {
            meta: Some(meta_csum),
            files: file_results
                .into_iter()
                .flatten()
                .map(|(n, c)| (n, FileEntry::Done(c)))
                .collect(),
            dirs: dir_results.into_iter().flatten().collect(),
        };
        if self.write_trees {
            let (t, m) = tree.write(self.repo, &meta_csum)?;
            Ok(Some(MDir::Existing { tree: t, meta: m }))
        } else {
            Ok(Some(MDir::Tree(Box::new(tree))))
        }
    }

    /// Store one regular file or symlink; None when skipped.
    fn commit_file(
        &self,
        path: &Path,
        tree_path: &str,
        st: &std::fs::Metadata,
    ) -> Result<Option<Checksum>> {
        let mut xattrs: Xattrs =
            crate::repo::read_xattrs_pub(path).map_err(|e| Error::io(path, e))?;
        let (mut uid, mut gid, mut mode) = (st.uid(), st.gid(), st.mode());
        if !self.modifier.apply_inner(
            self.mode(),
            tree_path,
            &mut uid,
            &mut gid,
            &mut mode,
            &mut xattrs,
            &self.skip_used,
            true,
        ) {
            self.progress.add_done(1, 0);
            return Ok(None);
        }
        self.files_total.fetch_add(1, Ordering::Relaxed);
        let is_link = st.file_type().is_symlink();
        let symlink_target = if is_link {
            let t = std::fs::read_link(path).map_err(|e| Error::io(path, e))?;
            t.to_str()
                .ok_or_else(|| {
                    Error::invalid(
                        path.display().to_string(),
                        "symlink target is not valid UTF-8",
                    )
                })?
                .to_string()
        } else {
            String::new()
        };
        let meta = FileMeta {
            uid,
            gid,
            mode,
            rdev: 0,
            symlink_target,
            xattrs,
        };
        let size = if is_link { 0 } else { st.len() };
        if let Some(c) = self.devino.get(&(st.dev(), st.ino())) {
            self.progress.add_done(1, size);
            return Ok(Some(*c));
        }
        // Hardlinked sources: hash each inode once.
        let key = (st.dev(), st.ino(), uid, gid, mode);
        let dedup = !is_link && st.nlink() > 1 && meta.xattrs.is_empty();
        if dedup {
            if let Some(c) = self
                .seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
            {
                self.progress.add_done(1, size);
                return Ok(Some(*c));
            }
        }
        let (csum, new) = self.store(path, &meta, size)?;
        if new {
            self.files_written.fetch_add(1, Ordering::Relaxed);
            self.bytes_written.fetch_add(size, Ordering::Relaxed);
        }
        if dedup {
            self.seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, csum);
        }
        self.progress.add_done(1, size);
        Ok(Some(csum))
    }

    fn store(&self, path: &Path, meta: &FileMeta, size: u64) -> Result<(Checksum, bool)> {
        if meta.is_symlink() {
            return self.repo.write_content(meta, &[]);
        }
        let mut f = open_nofollow(path)?;
        let changed = || {
            Error::invalid(
                path.display().to_string(),
                "file changed size while being committed",
            )
        };
        if size <= SMALL_FILE {
            let mut buf = Vec::with_capacity(size as usize);
            f.read_to_end(&mut buf).map_err(|e| Error::io(path, e))?;
            if buf.len() as u64 != size {
                return Err(changed());
            }
            return self.repo.write_content(meta, &buf);
        }
        let mut w = self.repo.content_writer(meta, size)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
            if n == 0 {
                break;
            }
            w.write(&buf[..n]).map_err(|e| match e {
                Error::Invalid { .. } => changed(),
                e => e,
            })?;
        }
        w.finish_new(None)
    }
}

fn open_nofollow(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io(path, e))
}
