//! Differences between two committed trees.

use crate::checksum::Checksum;
use crate::error::Result;
use crate::repo::Repo;
use crate::walk::Resolved;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TreeDiff {
    pub modified: Vec<String>,
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

impl Repo {
    /// Compare two commits (or subtrees). Directories that are added or
    /// removed are listed once (not their contents), like ostree.
    pub fn diff_commits(&self, a: &Checksum, b: &Checksum) -> Result<TreeDiff> {
        let ca = self.read_commit(a)?;
        let cb = self.read_commit(b)?;
        let mut d = TreeDiff::default();
        self.diff_trees("", &ca.root_tree, &cb.root_tree, &mut d)?;
        Ok(d)
    }

    pub fn diff_resolved(&self, a: &Resolved, b: &Resolved, path: &str) -> Result<TreeDiff> {
        let mut d = TreeDiff::default();
        match (a, b) {
            (Resolved::Dir { tree: ta, .. }, Resolved::Dir { tree: tb, .. }) => {
                self.diff_trees(path.trim_end_matches('/'), ta, tb, &mut d)?
            }
            (Resolved::File(fa), Resolved::File(fb)) => {
                if fa != fb {
                    d.modified.push(path.to_string());
                }
            }
            _ => d.modified.push(path.to_string()),
        }
        Ok(d)
    }

    fn diff_trees(&self, path: &str, a: &Checksum, b: &Checksum, d: &mut TreeDiff) -> Result<()> {
        if a == b {
            return Ok(());
        }
        let ta = self.read_dirtree(a)?;
        let tb = self.read_dirtree(b)?;
        let join = |n: &str| format!("{path}/{n}");
        for (n, ca) in &ta.files {
            match tb.files.iter().find(|(m, _)| m == n) {
                Some((_, cb)) if cb != ca => d.modified.push(join(n)),
                Some(_) => {}
                None => {
                    if tb.dirs.iter().any(|(m, _, _)| m == n) {
                        d.modified.push(join(n));
                    } else {
                        d.removed.push(join(n));
                    }
                }
            }
        }
        for (n, t, _) in &ta.dirs {
            match tb.dirs.iter().find(|(m, _, _)| m == n) {
                Some((_, t2, _)) => self.diff_trees(&join(n), t, t2, d)?,
                None => {
                    if !tb.files.iter().any(|(m, _)| m == n) {
                        d.removed.push(join(n));
                    }
                }
            }
        }
        for (n, _) in &tb.files {
            if !ta.files.iter().any(|(m, _)| m == n) && !ta.dirs.iter().any(|(m, _, _)| m == n) {
                d.added.push(join(n));
            }
        }
        for (n, _, _) in &tb.dirs {
            if !ta.dirs.iter().any(|(m, _, _)| m == n) {
                if ta.files.iter().any(|(m, _)| m == n) {
                    d.modified.push(join(n));
                } else {
                    d.added.push(join(n));
                }
            }
        }
        Ok(())
    }
}
