//! Writing commits: walk source trees, hash and store content in parallel,
//! build dirtrees bottom-up, write the commit, `syncfs`, move the ref.

use crate::checksum::Checksum;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::gvariant::{Type, Value, VarDict};
use crate::mtree::{self, FileEntry, MDir, MTree};
use crate::object::{self, Commit, DirMeta, FileMeta, ObjectType, Xattrs};
use crate::progress::Progress;
use crate::repo::{LockKind, Repo, RepoMode};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One layer of the tree to commit; later layers win.
#[derive(Debug, Clone)]
pub enum TreeSource {
    Dir(PathBuf),
    /// A revision already in the repo.
    Ref(String),
    Tar(PathBuf),
}

/// How file metadata is changed on the way in (ostree's commit modifier
/// and the `ostree commit` filter flags).
#[derive(Debug, Clone, Default)]
pub struct Modifier {
    pub owner_uid: Option<u32>,
    pub owner_gid: Option<u32>,
    pub canonical_permissions: bool,
    pub no_xattrs: bool,
    /// Absolute path in the tree → mode bits to add (`+MODE PATH` lines).
    pub mode_adds: HashMap<String, u32>,
    /// Absolute path → permission bits to set (`=MODE PATH` lines).
    pub mode_overrides: HashMap<String, u32>,
    /// Absolute paths to leave out.
    pub skip_list: HashSet<String>,
}

impl Modifier {
    /// Parse a `--statoverride` file: `+MODE PATH` adds bits, `=MODE PATH`
    /// sets them; MODE is decimal, as ostree reads it.
    pub fn add_statoverride(&mut self, text: &str, origin: &Path) -> Result<()> {
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            let (m, path) = line.split_once(' ').ok_or_else(|| {
                Error::invalid(
                    format!("{}:{}", origin.display(), n + 1),
                    "Malformed statoverride file (no space found)",
                )
            })?;
            let (set, num) = match m.strip_prefix('=') {
                Some(rest) => (true, rest),
                None => (false, m.strip_prefix('+').unwrap_or(m)),
            };
            let mode = num.parse::<f64>().map_err(|_| {
                Error::invalid(
                    format!("{}:{}", origin.display(), n + 1),
                    format!("bad mode {m:?}"),
                )
            })? as i64 as u32;
            if set {
                self.mode_overrides.insert(path.to_string(), mode);
            } else {
                self.mode_adds.insert(path.to_string(), mode);
            }
        }
        Ok(())
    }

    pub fn add_skip_list(&mut self, text: &str) {
        self.skip_list
            .extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
    }

    fn is_active(&self, mode: RepoMode) -> bool {
        self.canonical_permissions
            || mode == RepoMode::BareUserOnly
            || self.owner_uid.is_some()
            || self.owner_gid.is_some()
            || !self.mode_adds.is_empty()
            || !self.mode_overrides.is_empty()
            || !self.skip_list.is_empty()
    }

    /// Apply to one entry; `false` means skip it.
    #[allow(clippy::too_many_arguments)]
    #[allow(clippy::too_many_arguments)]
    fn apply(
        &self,
        repo_mode: RepoMode,
        path: &str,
        uid: &mut u32,
        gid: &mut u32,
        mode: &mut u32,
        xattrs: &mut Xattrs,
        used: &Mutex<HashSet<String>>,
    ) -> bool {
        self.apply_inner(repo_mode, path, uid, gid, mode, xattrs, used, true)
    }

    /// `sort_xattrs`: sort by name and drop empty values, as ostree does
    /// for files read from disk (not for tarballs).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply_inner(
        &self,
        repo_mode: RepoMode,
        path: &str,
        uid: &mut u32,
        gid: &mut u32,
        mode: &mut u32,
        xattrs: &mut Xattrs,
        used: &Mutex<HashSet<String>>,
        sort_xattrs: bool,
    ) -> bool {
        if let Some(u) = self.owner_uid {
            *uid = u;
        }
        if let Some(g) = self.owner_gid {
            *gid = g;
        }
        if let Some(add) = self.mode_adds.get(path) {
            *mode |= add;
        } else if let Some(set) = self.mode_overrides.get(path) {
            *mode = (*mode & libc::S_IFMT) | set;
        }
        if self.skip_list.contains(path) {
            used.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(path.to_string());
            return false;
        }
        if self.canonical_permissions || repo_mode == RepoMode::BareUserOnly {
            match *mode & libc::S_IFMT {
                libc::S_IFREG => *mode &= libc::S_IFREG | 0o755,
                libc::S_IFDIR => *mode &= libc::S_IFDIR | 0o755,
                _ => {}
            }
            *uid = 0;
            *gid = 0;
        }
        if self.no_xattrs || self.canonical_permissions || repo_mode == RepoMode::BareUserOnly {
            xattrs.clear();
        }
        if sort_xattrs {
            object::canonicalize_xattrs(xattrs);
        }
        true
    }
}

/// Which parent the commit gets.
#[derive(Debug, Clone, Default)]
pub enum ParentSpec {
    /// The current head of the branch, if any (ostree's default).
    #[default]
    BranchHead,
    None,
    Rev(String),
}

#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub branch: Option<String>,
    pub orphan: bool,
    pub subject: String,
    pub body: String,
    /// Seconds since the epoch; `None` means now.
    pub timestamp: Option<u64>,
    pub parent: ParentSpec,
    /// User metadata in order (strings first, then typed values, as ostree).
    pub metadata: VarDict,
    pub bind_refs: Vec<String>,
    pub no_bindings: bool,
    pub detached_metadata: Option<VarDict>,
    pub modifier: Modifier,
    pub skip_if_unchanged: bool,
    pub consume: bool,
    pub link_checkout_speedup: bool,
    /// Write the ref (false: print only, like `--no-ref`? ostree always
    /// writes with -b).
    pub sources: Vec<TreeSource>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CommitResult {
    pub commit: Checksum,
    /// False when `--skip-if-unchanged` found nothing new.
    pub created: bool,
    pub files_total: u64,
    pub files_written: u64,
    pub bytes_written: u64,
}

/// A regular file or symlink found on disk, waiting to be stored.
struct PendingFile {
    path: PathBuf,
    meta: FileMeta,
    size: u64,
    dev_ino: (u64, u64),
}

const SMALL_FILE: u64 = 4 << 20;

struct Walker<'a> {
    repo: &'a Repo,
    modifier: &'a Modifier,
    active: bool,
    pending: Vec<PendingFile>,
    skip_used: Mutex<HashSet<String>>,
    progress: &'a Progress,
}

fn read_xattrs_or_empty(path: &Path) -> Result<Xattrs> {
    crate::repo::read_xattrs_pub(path).map_err(|e| Error::io(path, e))
}

fn to_utf8(name: &std::ffi::OsStr, parent: &Path) -> Result<String> {
    name.to_str().map(str::to_string).ok_or_else(|| {
        Error::invalid(
            parent.join(name).display().to_string(),
            "file name is not valid UTF-8",
        )
    })
}

impl Walker<'_> {
    fn dirmeta_of(
        &self,
        path: &Path,
        tree_path: &str,
        st: &std::fs::Metadata,
    ) -> Result<Option<DirMeta>> {
        let mut xattrs = read_xattrs_or_empty(path)?;
        let (mut uid, mut gid, mut mode) = (st.uid(), st.gid(), st.mode());
        if !self.modifier.apply(
            self.repo.mode(),
            tree_path,
            &mut uid,
            &mut gid,
            &mut mode,
            &mut xattrs,
            &self.skip_used,
        ) {
            return Ok(None);
        }
        if !self.active {
            object::canonicalize_xattrs(&mut xattrs);
        }
        Ok(Some(DirMeta {
            uid,
            gid,
            mode,
            xattrs,
        }))
    }

    /// Walk `dir` into `tree` (merging with what is there).
    fn walk_dir(&mut self, dir: &Path, tree_path: &str, tree: &mut MTree) -> Result<()> {
        let st = std::fs::symlink_metadata(dir).map_err(|e| Error::io(dir, e))?;
        if !st.is_dir() {
            return Err(Error::invalid(dir.display().to_string(), "not a directory"));
        }
        if let Some(dm) = self.dirmeta_of(dir, tree_path, &st)? {
            tree.meta = Some(mtree::write_dirmeta(self.repo, &dm)?);
        }
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::io(dir, e))?;
        entries.sort();
        for name_os in entries {
            let name = to_utf8(&name_os, dir)?;
            let path = dir.join(&name_os);
            let child_tree_path = if tree_path == "/" {
                format!("/{name}")
            } else {
                format!("{tree_path}/{name}")
            };
            let st = std::fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
            let ft = st.file_type();
            if ft.is_dir() {
                let dm = self.dirmeta_of(&path, &child_tree_path, &st)?;
                if dm.is_none() {
                    continue;
                }
                let sub = tree.dir_mut(self.repo, &name)?;
                self.walk_dir(&path, &child_tree_path, sub)?;
            } else if ft.is_file() || ft.is_symlink() {
                let mut xattrs = read_xattrs_or_empty(&path)?;
                let (mut uid, mut gid, mut mode) = (st.uid(), st.gid(), st.mode());
                if !self.modifier.apply(
                    self.repo.mode(),
                    &child_tree_path,
                    &mut uid,
                    &mut gid,
                    &mut mode,
                    &mut xattrs,
                    &self.skip_used,
                ) {
                    continue;
                }
                let symlink_target = if ft.is_symlink() {
                    let t = std::fs::read_link(&path).map_err(|e| Error::io(&path, e))?;
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
                let idx = self.pending.len();
                self.progress
                    .add_total(1, if ft.is_file() { st.len() } else { 0 });
                self.pending.push(PendingFile {
                    path,
                    meta,
                    size: if ft.is_file() { st.len() } else { 0 },
                    dev_ino: (st.dev(), st.ino()),
                });
                tree.put_file(&name, FileEntry::Pending(idx));
            } else {
                return Err(Error::UnsupportedFileType(name));
            }
        }
        Ok(())
    }
}

impl Repo {
    /// Commit the layered sources (like `ostree commit`).
    pub fn commit(&self, opts: &CommitOptions, progress: &Progress) -> Result<CommitResult> {
        if opts.branch.is_none() && !opts.orphan {
            return Err(Error::invalid(
                "commit",
                "A branch must be specified with --branch, or use --orphan",
            ));
        }
        if opts.modifier.canonical_permissions && (opts.modifier.owner_uid.unwrap_or(0) > 0) {
            return Err(Error::invalid(
                "commit",
                "Cannot specify both --canonical-permissions and non-zero --owner-uid",
            ));
        }
        if opts.modifier.canonical_permissions && (opts.modifier.owner_gid.unwrap_or(0) > 0) {
            return Err(Error::invalid(
                "commit",
                "Cannot specify both --canonical-permissions and non-zero --owner-gid",
            ));
        }
        if let Some(b) = &opts.branch {
            crate::refs::validate_ref(b)?;
        }
        self.lock(LockKind::Shared)?;
        self.cleanup_tmp()?;

        let parent = match &opts.parent {
            ParentSpec::None => None,
            ParentSpec::Rev(r) => Some(self.resolve_rev(r)?),
            ParentSpec::BranchHead => match (&opts.branch, opts.orphan) {
                (Some(b), false) => self.resolve_ref(b)?,
                _ => None,
            },
        };

        let mut walker = Walker {
            repo: self,
            modifier: &opts.modifier,
            active: opts.modifier.is_active(self.mode()),
            pending: Vec::new(),
            skip_used: Mutex::new(HashSet::new()),
            progress,
        };
        let mut root = MTree::default();
        for src in &opts.sources {
            match src {
                TreeSource::Dir(d) => walker.walk_dir(d, "/", &mut root)?,
                TreeSource::Ref(r) => {
                    let c = self.resolve_rev(r)?;
                    let commit = self.read_commit(&c)?;
                    merge_existing(self, &mut root, &commit.root_tree, &commit.root_meta)?;
                }
                TreeSource::Tar(t) => {
                    crate::tar_import::import_tar(self, t, &mut root, &opts.modifier, progress)?
                }
            }
        }
        if opts.sources.is_empty() {
            return Err(Error::invalid(
                "commit",
                "no tree to commit (give a directory or --tree=)",
            ));
        }
        let unmatched: Vec<String> = {
            let used = walker.skip_used.lock().unwrap_or_else(|p| p.into_inner());
            let mut v: Vec<_> = opts
                .modifier
                .skip_list
                .iter()
                .filter(|p| !used.contains(*p))
                .cloned()
                .collect();
            v.sort();
            v
        };
        if !unmatched.is_empty() && opts.sources.iter().all(|s| matches!(s, TreeSource::Dir(_))) {
            return Err(Error::invalid(
                "skip-list",
                format!("Unmatched skip-list paths: {}", unmatched.join(", ")),
            ));
        }

        let pending = std::mem::take(&mut walker.pending);
        let devino = if opts.link_checkout_speedup {
            self.devino_cache()?
        } else {
            HashMap::new()
        };
        let results = self.store_pending(&pending, &devino, progress)?;
        failpoint::hit("commit:after-objects");

        let default_meta = mtree::write_dirmeta(
            self,
            &DirMeta {
                uid: 0,
                gid: 0,
                mode: libc::S_IFDIR | 0o755,
                xattrs: vec![],
            },
        )?;
        let (root_tree, root_meta) = root.write(self, &|i| results[i].0, &default_meta)?;
        let files_total = results.len() as u64;
        let files_written = results.iter().filter(|r| r.1).count() as u64;
        let bytes_written = results.iter().filter(|r| r.1).map(|r| r.2).sum();

        if opts.skip_if_unchanged {
            if let Some(p) = parent {
                let pc = self.read_commit(&p)?;
                if pc.root_tree == root_tree && pc.root_meta == root_meta {
                    return Ok(CommitResult {
                        commit: p,
                        created: false,
                        files_total,
                        files_written,
                        bytes_written,
                    });
                }
            }
        }

        let mut metadata = opts.metadata.clone();
        if !opts.no_bindings {
            // ostree binds even an orphan commit (to the empty list).
            let mut refs: Vec<String> = opts
                .branch
                .iter()
                .cloned()
                .chain(opts.bind_refs.iter().cloned())
                .collect();
            refs.sort();
            metadata.push(
                "ostree.ref-binding",
                Value::Array(Type::String, refs.into_iter().map(Value::String).collect()),
            );
            if metadata.get("ostree.collection-binding").is_none() {
                if let Some(cid) = self.config().get("core", "collection-id") {
                    metadata.push("ostree.collection-binding", Value::str(cid));
                }
            }
        }
        let timestamp = opts.timestamp.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        let commit = Commit {
            metadata,
            parent,
            related: vec![],
            subject: opts.subject.clone(),
            body: opts.body.clone(),
            timestamp,
            root_tree,
            root_meta,
        };
        let csum = self.write_meta(ObjectType::Commit, &commit.to_bytes())?;
        if let Some(dm) = &opts.detached_metadata {
            self.write_commit_detached_metadata(&csum, Some(dm))?;
        }
        crate::util::syncfs(self.path())?;
        failpoint::hit("commit:after-syncfs");
        if let Some(b) = &opts.branch {
            failpoint::hit("commit:before-ref");
            self.set_ref(b, Some(&csum))?;
        }
        if opts.consume {
            for src in &opts.sources {
                if let TreeSource::Dir(d) = src {
                    std::fs::remove_dir_all(d).map_err(|e| Error::io(d, e))?;
                }
            }
        }
        Ok(CommitResult {
            commit: csum,
            created: true,
            files_total,
            files_written,
            bytes_written,
        })
    }

    /// Hash and store every pending file in parallel. Returns, per file,
    /// (checksum, newly written, bytes).
    fn store_pending(
        &self,
        pending: &[PendingFile],
        devino: &HashMap<(u64, u64), Checksum>,
        progress: &Progress,
    ) -> Result<Vec<(Checksum, bool, u64)>> {
        // Hardlinked sources: hash each inode once.
        // (dev, ino, uid, gid, mode) -> checksum
        type InodeKey = (u64, u64, u32, u32, u32);
        let seen: Mutex<HashMap<InodeKey, Checksum>> = Mutex::new(HashMap::new());
        pending
            .par_iter()
            .with_min_len(8)
            .map(|pf| {
                if let Some(c) = devino.get(&pf.dev_ino) {
                    progress.add_done(1, pf.size);
                    return Ok((*c, false, 0));
                }
                let key = (
                    pf.dev_ino.0,
                    pf.dev_ino.1,
                    pf.meta.uid,
                    pf.meta.gid,
                    pf.meta.mode,
                );
                if pf.meta.is_regular() && pf.meta.xattrs.is_empty() {
                    if let Some(c) = seen.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
                        progress.add_done(1, pf.size);
                        return Ok((*c, false, 0));
                    }
                }
                let r = self.store_one(pf)?;
                if pf.meta.is_regular() && pf.meta.xattrs.is_empty() {
                    seen.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(key, r.0);
                }
                progress.add_done(1, pf.size);
                Ok(r)
            })
            .collect()
    }

    fn store_one(&self, pf: &PendingFile) -> Result<(Checksum, bool, u64)> {
        if pf.meta.is_symlink() {
            let (c, new) = self.write_content(&pf.meta, &[])?;
            return Ok((c, new, 0));
        }
        let mut f = open_nofollow(&pf.path)?;
        if pf.size <= SMALL_FILE {
            let mut buf = Vec::with_capacity(pf.size as usize);
            f.read_to_end(&mut buf)
                .map_err(|e| Error::io(&pf.path, e))?;
            if buf.len() as u64 != pf.size {
                return Err(Error::invalid(
                    pf.path.display().to_string(),
                    "file changed size while being committed",
                ));
            }
            let (c, new) = self.write_content(&pf.meta, &buf)?;
            return Ok((c, new, if new { pf.size } else { 0 }));
        }
        let mut w = self.content_writer(&pf.meta, pf.size)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| Error::io(&pf.path, e))?;
            if n == 0 {
                break;
            }
            w.write(&buf[..n]).map_err(|e| match e {
                Error::Invalid { .. } => Error::invalid(
                    pf.path.display().to_string(),
                    "file changed size while being committed",
                ),
                e => e,
            })?;
        }
        let existed_before = false;
        let c = w.finish(None)?;
        Ok((c, !existed_before, pf.size))
    }

    /// (dev, ino) → checksum of every content object, for
    /// `--link-checkout-speedup`.
    fn devino_cache(&self) -> Result<HashMap<(u64, u64), Checksum>> {
        let mut out = HashMap::new();
        if !self.mode().is_bare() {
            return Ok(out);
        }
        for o in self.list_objects()? {
            if o.ty == ObjectType::File {
                if let Ok(st) = std::fs::symlink_metadata(self.object_path(&o.csum, o.ty)) {
                    out.insert((st.dev(), st.ino()), o.csum);
                }
            }
        }
        Ok(out)
    }

    /// Remove temporary files left by kiln processes that no longer run.
    pub fn cleanup_tmp(&self) -> Result<()> {
        let tmp = self.tmp_dir();
        let Ok(rd) = std::fs::read_dir(&tmp) else {
            return Ok(());
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let Some(rest) = ["obj-", "lnk-", "co-"]
                .iter()
                .find_map(|p| name.strip_prefix(p))
            else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let p = e.path();
                if p.is_dir() {
                    let _ = std::fs::remove_dir_all(&p);
                } else {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        Ok(())
    }
}

fn merge_existing(repo: &Repo, tree: &mut MTree, t: &Checksum, m: &Checksum) -> Result<()> {
    let src = repo.read_dirtree(t)?;
    tree.meta = Some(*m);
    for (n, c) in src.files {
        tree.put_file(&n, FileEntry::Done(c));
    }
    for (n, st, sm) in src.dirs {
        let has_tree = matches!(tree.dirs.get(&n), Some(MDir::Tree(_)));
        if has_tree {
            let sub = tree.dir_mut(repo, &n)?;
            merge_existing(repo, sub, &st, &sm)?;
        } else {
            tree.files.remove(&n);
            tree.dirs.insert(n, MDir::Existing { tree: st, meta: sm });
        }
    }
    Ok(())
}

fn open_nofollow(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| Error::io(path, e))
}
