//! An in-memory directory tree being assembled for a commit: layers of
//! directories, tarballs and existing commits merge into it, then it is
//! written bottom-up as dirtree/dirmeta objects.

use crate::checksum::Checksum;
use crate::error::Result;
use crate::object::{DirMeta, DirTree, ObjectType};
use crate::repo::Repo;
use std::collections::BTreeMap;

/// A directory whose entries may still change.
#[derive(Debug, Clone, Default)]
pub struct MTree {
    pub meta: Option<Checksum>,
    pub files: BTreeMap<String, FileEntry>,
    pub dirs: BTreeMap<String, MDir>,
}

/// A file entry: the checksum of its content object.
#[derive(Debug, Clone, Copy)]
pub enum FileEntry {
    Done(Checksum),
}

#[derive(Debug, Clone)]
pub enum MDir {
    Tree(Box<MTree>),
    /// An unchanged subtree of an existing commit.
    Existing {
        tree: Checksum,
        meta: Checksum,
    },
}

impl MTree {
    /// Replace whatever is at `name` by a file.
    pub fn put_file(&mut self, name: &str, entry: FileEntry) {
        self.dirs.remove(name);
        self.files.insert(name.to_string(), entry);
    }

    /// Get (creating or expanding) the subdirectory `name`, replacing a file
    /// of that name.
    pub fn dir_mut(&mut self, repo: &Repo, name: &str) -> Result<&mut MTree> {
        self.files.remove(name);
        let slot = self
            .dirs
            .entry(name.to_string())
            .or_insert_with(|| MDir::Tree(Box::default()));
        if let MDir::Existing { tree, meta } = slot {
            let expanded = MTree::from_existing(repo, tree, meta)?;
            *slot = MDir::Tree(Box::new(expanded));
        }
        match slot {
            MDir::Tree(t) => Ok(t),
            MDir::Existing { .. } => unreachable!("expanded above"),
        }
    }

    /// One level of an existing tree (children stay lazy).
    pub fn from_existing(repo: &Repo, tree: &Checksum, meta: &Checksum) -> Result<MTree> {
        let dt = repo.read_dirtree(tree)?;
        Ok(MTree {
            meta: Some(*meta),
            files: dt
                .files
                .into_iter()
                .map(|(n, c)| (n, FileEntry::Done(c)))
                .collect(),
            dirs: dt
                .dirs
                .into_iter()
                .map(|(n, t, m)| (n, MDir::Existing { tree: t, meta: m }))
                .collect(),
        })
    }

    /// Write all dirtree/dirmeta objects; returns (tree, meta) checksums.
    pub fn write(&self, repo: &Repo, default_meta: &Checksum) -> Result<(Checksum, Checksum)> {
        let mut dt = DirTree::default();
        for (name, FileEntry::Done(c)) in &self.files {
            dt.files.push((name.clone(), *c));
        }
        for (name, d) in &self.dirs {
            let (t, m) = match d {
                MDir::Existing { tree, meta } => (*tree, *meta),
                MDir::Tree(sub) => sub.write(repo, default_meta)?,
            };
            dt.dirs.push((name.clone(), t, m));
        }
        let tree = repo.write_meta(ObjectType::DirTree, &dt.to_bytes())?;
        Ok((tree, self.meta.unwrap_or(*default_meta)))
    }
}

/// Write a dirmeta object.
pub fn write_dirmeta(repo: &Repo, meta: &DirMeta) -> Result<Checksum> {
    repo.write_meta(ObjectType::DirMeta, &meta.to_bytes())
}
