//! Differences between two committed trees, like `ostree diff`: a path is
//! modified when its content object differs, or (for a directory present on
//! both sides) when its metadata differs; a removed directory is listed
//! once, an added one with everything below it.

use crate::checksum::Checksum;
use crate::error::Result;
use crate::object::DirTree;
use crate::repo::Repo;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TreeDiff {
    pub modified: Vec<String>,
    pub removed: Vec<String>,
    pub added: Vec<String>,
}

impl Repo {
    /// Compare the trees of two commits.
    pub fn diff_commits(&self, a: &Checksum, b: &Checksum) -> Result<TreeDiff> {
        let ca = self.read_commit(a)?;
        let cb = self.read_commit(b)?;
        let mut d = TreeDiff::default();
        self.diff_trees("", &ca.root_tree, &cb.root_tree, &mut d)?;
        Ok(d)
    }

    fn add_recursive(&self, path: &str, tree: &Checksum, d: &mut TreeDiff) -> Result<()> {
        let t = self.read_dirtree(tree)?;
        for (n, _) in &t.files {
            d.added.push(format!("{path}/{n}"));
        }
        for (n, st, _) in &t.dirs {
            let p = format!("{path}/{n}");
            d.added.push(p.clone());
            self.add_recursive(&p, st, d)?;
        }
        Ok(())
    }

    /// Compare two directory trees below `path` (`""` for the root).
    pub fn diff_trees(
        &self,
        path: &str,
        a: &Checksum,
        b: &Checksum,
        d: &mut TreeDiff,
    ) -> Result<()> {
        if a == b {
            return Ok(());
        }
        let ta = self.read_dirtree(a)?;
        let tb = self.read_dirtree(b)?;
        let file_in = |t: &DirTree, n: &str| t.files.iter().find(|(m, _)| m == n).map(|(_, c)| *c);
        let dir_in = |t: &DirTree, n: &str| {
            t.dirs
                .iter()
                .find(|(m, _, _)| m == n)
                .map(|(_, t, m)| (*t, *m))
        };
        let join = |n: &str| format!("{path}/{n}");
        for (n, ca) in &ta.files {
            match (file_in(&tb, n), dir_in(&tb, n)) {
                (Some(cb), _) if cb != *ca => d.modified.push(join(n)),
                (Some(_), _) => {}
                (None, Some(_)) => d.modified.push(join(n)),
                (None, None) => d.removed.push(join(n)),
            }
        }
        for (n, ta_t, ta_m) in &ta.dirs {
            match (file_in(&tb, n), dir_in(&tb, n)) {
                (_, Some((tb_t, tb_m))) => {
                    if *ta_m != tb_m {
                        d.modified.push(join(n));
                    }
                    self.diff_trees(&join(n), ta_t, &tb_t, d)?;
                }
                (Some(_), None) => d.modified.push(join(n)),
                (None, None) => d.removed.push(join(n)),
            }
        }
        for (n, _) in &tb.files {
            if file_in(&ta, n).is_none() && dir_in(&ta, n).is_none() {
                d.added.push(join(n));
            }
        }
        for (n, tb_t, _) in &tb.dirs {
            if file_in(&ta, n).is_none() && dir_in(&ta, n).is_none() {
                d.added.push(join(n));
                self.add_recursive(&join(n), tb_t, d)?;
            }
        }
        Ok(())
    }
}
