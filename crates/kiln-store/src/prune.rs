//! Deleting objects no ref (or kept commit) reaches, like `ostree prune`.

use crate::checksum::Checksum;
use crate::error::Result;
use crate::object::ObjectType;
use crate::repo::{LockKind, Repo};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Roots are the refs only (otherwise every commit in the repo).
    pub refs_only: bool,
    /// Parents to follow from each root; -1 = all.
    pub depth: i64,
    /// Also keep every commit at least this new (seconds since epoch);
    /// implies refs_only, as in ostree.
    pub keep_younger_than: Option<u64>,
    pub commit_only: bool,
    pub no_prune: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneReport {
    pub objects_total: u64,
    pub objects_pruned: u64,
    pub bytes_freed: u64,
}

impl Repo {
    fn keep_commit_chain(
        &self,
        start: &Checksum,
        depth: i64,
        commit_only: bool,
        keep: &mut BTreeSet<(Checksum, ObjectType)>,
    ) -> Result<()> {
        let mut cur = Some(*start);
        let mut left = depth;
        while let Some(c) = cur {
            if !self.has_object(&c, ObjectType::Commit) {
                break;
            }
            if commit_only {
                keep.insert((c, ObjectType::Commit));
                keep.insert((c, ObjectType::CommitMeta));
            } else {
                self.reachable_from_commit(&c, keep)?;
                keep.insert((c, ObjectType::CommitMeta));
            }
            if left == 0 {
                break;
            }
            left -= 1;
            cur = self.read_commit(&c)?.parent;
        }
        Ok(())
    }

    pub fn prune(&self, opts: &PruneOptions) -> Result<PruneReport> {
        self.lock(LockKind::Exclusive)?;
        let all = self.list_objects()?;
        let mut keep = BTreeSet::new();
        let refs_only = opts.refs_only || opts.keep_younger_than.is_some();
        let roots: Vec<Checksum> = if refs_only {
            self.all_ref_targets()?.into_values().collect()
        } else {
            all.iter()
                .filter(|o| o.ty == ObjectType::Commit)
                .map(|o| o.csum)
                .collect()
        };
        for r in &roots {
            self.keep_commit_chain(r, opts.depth, opts.commit_only, &mut keep)?;
        }
        if let Some(ts) = opts.keep_younger_than {
            for o in all.iter().filter(|o| o.ty == ObjectType::Commit) {
                if let Ok(c) = self.read_commit(&o.csum) {
                    if c.timestamp >= ts {
                        self.keep_commit_chain(&o.csum, 0, opts.commit_only, &mut keep)?;
                    }
                }
            }
        }
        let mut report = PruneReport {
            objects_total: all.len() as u64,
            ..Default::default()
        };
        for o in &all {
            if opts.commit_only && !matches!(o.ty, ObjectType::Commit | ObjectType::CommitMeta) {
                continue;
            }
            if o.ty == ObjectType::CommitMeta && keep.contains(&(o.csum, ObjectType::Commit)) {
                continue;
            }
            if keep.contains(&(o.csum, o.ty)) {
                continue;
            }
            report.objects_pruned += 1;
            report.bytes_freed += self.object_disk_size(&o.csum, o.ty);
            if !opts.no_prune {
                self.delete_object(&o.csum, o.ty)?;
                if o.ty == ObjectType::Commit {
                    let _ = std::fs::remove_file(
                        self.path()
                            .join("state")
                            .join(format!("{}.commitpartial", o.csum)),
                    );
                }
            }
        }
        if !opts.no_prune && report.objects_pruned > 0 {
            crate::util::syncfs(self.path())?;
        }
        Ok(report)
    }
}
