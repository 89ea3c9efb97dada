//! Reading trees of commits: entries by path, reachability.

use crate::checksum::Checksum;
use crate::error::{Error, Result};
use crate::object::{DirMeta, FileMeta, ObjectType};
use crate::repo::Repo;
use std::collections::BTreeSet;

/// One entry of a committed tree, as `ls` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TreeEntry {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    /// Content checksum (files), dirmeta checksum (dirs).
    pub checksum: Checksum,
    /// Dirtree checksum (dirs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<Checksum>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symlink_target: Option<String>,
    #[serde(skip)]
    pub xattrs: crate::object::Xattrs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// What a path in a commit resolves to.
#[derive(Debug, Clone)]
pub enum Resolved {
    Dir { tree: Checksum, meta: Checksum },
    File(Checksum),
}

impl Repo {
    /// Find `path` (absolute, `/` for the root) inside `commit`.
    pub fn resolve_path(&self, commit: &Checksum, path: &str) -> Result<Resolved> {
        let c = self.read_commit(commit)?;
        let (mut tree, mut meta) = (c.root_tree, c.root_meta);
        let comps: Vec<&str> = path
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        for (i, comp) in comps.iter().enumerate() {
            let dt = self.read_dirtree(&tree)?;
            if let Some((_, t, m)) = dt.dirs.iter().find(|(n, _, _)| n == comp) {
                tree = *t;
                meta = *m;
            } else if let Some((_, f)) = dt.files.iter().find(|(n, _)| n == comp) {
                if i + 1 == comps.len() {
                    return Ok(Resolved::File(*f));
                }
                return Err(Error::invalid(path, "Not a directory"));
            } else {
                // Like ostree, name the first component that is missing.
                let missing = format!("/{}", comps[..=i].join("/"));
                return Err(Error::NoSuchPath(missing));
            }
        }
        Ok(Resolved::Dir { tree, meta })
    }

    pub fn dir_entry(&self, path: &str, tree: &Checksum, meta: &Checksum) -> Result<TreeEntry> {
        let dm: DirMeta = self.read_dirmeta(meta)?;
        Ok(TreeEntry {
            path: path.to_string(),
            kind: EntryKind::Dir,
            mode: dm.mode,
            uid: dm.uid,
            gid: dm.gid,
            size: 0,
            checksum: *meta,
            tree: Some(*tree),
            symlink_target: None,
            xattrs: dm.xattrs,
        })
    }

    pub fn file_entry(&self, path: &str, csum: &Checksum) -> Result<TreeEntry> {
        let obj = self.load_content(csum)?;
        let m: FileMeta = obj.meta;
        let link = m.is_symlink();
        Ok(TreeEntry {
            path: path.to_string(),
            kind: if link {
                EntryKind::Symlink
            } else {
                EntryKind::File
            },
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            size: obj.size,
            checksum: *csum,
            tree: None,
            symlink_target: link.then(|| m.symlink_target.clone()),
            xattrs: m.xattrs,
        })
    }

    /// List entries under a directory: the directory itself, then its
    /// children (recursively if asked), in ostree's order (files then dirs,
    /// each sorted).
    pub fn list_tree(
        &self,
        path: &str,
        tree: &Checksum,
        meta: &Checksum,
        recursive: bool,
        only_dir: bool,
        out: &mut Vec<TreeEntry>,
    ) -> Result<()> {
        out.push(self.dir_entry(path, tree, meta)?);
        if only_dir {
            return Ok(());
        }
        self.list_children(path, tree, recursive, out)
    }

    fn list_children(
        &self,
        path: &str,
        tree: &Checksum,
        recursive: bool,
        out: &mut Vec<TreeEntry>,
    ) -> Result<()> {
        let dt = self.read_dirtree(tree)?;
        let join = |n: &str| {
            if path == "/" {
                format!("/{n}")
            } else {
                format!("{path}/{n}")
            }
        };
        // ostree lists a directory's files first, then its subdirectories
        // (each descended into right after it is printed).
        for (name, c) in &dt.files {
            out.push(self.file_entry(&join(name), c)?);
        }
        for (name, t, m) in &dt.dirs {
            let p = join(name);
            out.push(self.dir_entry(&p, t, m)?);
            if recursive {
                self.list_children(&p, t, true, out)?;
            }
        }
        Ok(())
    }

    /// Every object a commit reaches (commit, dirtrees, dirmetas, files).
    /// Missing objects are reported through `missing` instead of failing.
    pub fn reachable_from_commit(
        &self,
        commit: &Checksum,
        out: &mut BTreeSet<(Checksum, ObjectType)>,
    ) -> Result<()> {
        if !out.insert((*commit, ObjectType::Commit)) {
            return Ok(());
        }
        if self.has_object(commit, ObjectType::CommitMeta) {
            out.insert((*commit, ObjectType::CommitMeta));
        }
        let c = self.read_commit(commit)?;
        self.reachable_from_tree(&c.root_tree, &c.root_meta, out)
    }

    pub fn reachable_from_tree(
        &self,
        tree: &Checksum,
        meta: &Checksum,
        out: &mut BTreeSet<(Checksum, ObjectType)>,
    ) -> Result<()> {
        out.insert((*meta, ObjectType::DirMeta));
        if !out.insert((*tree, ObjectType::DirTree)) {
            return Ok(());
        }
        let dt = self.read_dirtree(tree)?;
        for (_, f) in &dt.files {
            out.insert((*f, ObjectType::File));
        }
        for (_, t, m) in &dt.dirs {
            self.reachable_from_tree(t, m, out)?;
        }
        Ok(())
    }

    /// The commit's "content checksum": SHA-256 of the root dirtree and
    /// dirmeta checksums, as `ostree show` prints it.
    pub fn content_checksum_of(commit: &crate::object::Commit) -> Checksum {
        let mut h = crate::checksum::Hasher::new();
        h.update(&commit.root_tree.0);
        h.update(&commit.root_meta.0);
        h.finish()
    }
}
