//! Writing commits: walk source trees, hash and store content in parallel,
//! build dirtrees bottom-up, write the commit, `syncfs`, move the ref.

use crate::checksum::Checksum;
use crate::error::{Error, Result};
use crate::failpoint;
use crate::gvariant::{Type, Value, VarDict};
use crate::mtree::{self, FileEntry, MDir, MTree};
use crate::object::{self, Commit, DirMeta, ObjectType, Xattrs};
use crate::progress::Progress;
use crate::repo::{LockKind, Repo, RepoMode};
use std::collections::{HashMap, HashSet};
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

    /// Apply to one entry; `false` means skip it.
    #[allow(clippy::too_many_arguments)]
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

        let devino = if opts.link_checkout_speedup {
            self.devino_cache()?
        } else {
            HashMap::new()
        };
        let mut walker = crate::commit_walk::DirWalk::new(self, &opts.modifier, progress, devino);
        walker.write_trees = opts.sources.len() == 1;
        let mut root = MTree::default();
        for src in &opts.sources {
            match src {
                TreeSource::Dir(d) => match walker.commit_root(d)? {
                    MDir::Existing { tree, meta } => merge_existing(self, &mut root, &tree, &meta)?,
                    MDir::Tree(t) => merge_tree(self, &mut root, *t)?,
                },
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
        let (root_tree, root_meta) = root.write(self, &default_meta)?;
        use std::sync::atomic::Ordering;
        let files_total = walker.files_total.load(Ordering::Relaxed);
        let files_written = walker.files_written.load(Ordering::Relaxed);
        let bytes_written = walker.bytes_written.load(Ordering::Relaxed);

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
        if tree.dirs.contains_key(&n) {
            // A directory on both layers: union, the newer layer winning.
            let sub = tree.dir_mut(repo, &n)?;
            merge_existing(repo, sub, &st, &sm)?;
        } else {
            tree.files.remove(&n);
            tree.dirs.insert(n, MDir::Existing { tree: st, meta: sm });
        }
    }
    Ok(())
}

/// Merge an in-memory layer into the tree; the layer wins.
fn merge_tree(repo: &Repo, tree: &mut MTree, layer: MTree) -> Result<()> {
    if layer.meta.is_some() {
        tree.meta = layer.meta;
    }
    for (n, f) in layer.files {
        tree.put_file(&n, f);
    }
    for (n, d) in layer.dirs {
        if !tree.dirs.contains_key(&n) {
            tree.files.remove(&n);
            tree.dirs.insert(n, d);
            continue;
        }
        let sub = tree.dir_mut(repo, &n)?;
        match d {
            MDir::Existing { tree: t, meta: m } => merge_existing(repo, sub, &t, &m)?,
            MDir::Tree(t) => merge_tree(repo, sub, *t)?,
        }
    }
    Ok(())
}
