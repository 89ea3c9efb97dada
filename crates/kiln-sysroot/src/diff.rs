//! What changes between two deployments (`kiln diff`): files added,
//! modified and removed between their commits.

use crate::deployment::Deployment;
use crate::error::Result;
use crate::sysroot::Sysroot;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentRef {
    pub index: usize,
    pub checksum: String,
    pub serial: u32,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentDiff {
    pub from: DeploymentRef,
    pub to: DeploymentRef,
    pub added: Vec<String>,
    pub modified: Vec<String>,
    pub removed: Vec<String>,
}

impl Sysroot {
    fn dref(&self, d: &Deployment) -> DeploymentRef {
        DeploymentRef {
            index: d.index,
            checksum: d.csum.to_string(),
            serial: d.serial,
            version: self.commit_version(d),
        }
    }

    /// Compare the trees of two deployments (directories added or removed
    /// are listed once, like `ostree diff`).
    pub fn diff_deployments(&self, from: &Deployment, to: &Deployment) -> Result<DeploymentDiff> {
        let d = self.repo.diff_commits(&from.csum, &to.csum)?;
        Ok(DeploymentDiff {
            from: self.dref(from),
            to: self.dref(to),
            added: d.added,
            modified: d.modified,
            removed: d.removed,
        })
    }

    /// The pair `kiln diff` compares by default: booted → the next boot
    /// (or the rollback → booted when nothing is pending); without a booted
    /// deployment, index 1 → index 0.
    pub fn default_diff_pair(&self) -> Option<(usize, usize)> {
        match self.booted_deployment() {
            Some(b) => {
                let first = self.deployments.first()?;
                if !first.same(b) || first.staged {
                    Some((b.index, first.index))
                } else {
                    let (_, r) = self.query_deployments_for(None);
                    r.map(|r| (r.index, b.index))
                }
            }
            None => (self.deployments.len() >= 2).then_some((1, 0)),
        }
    }
}
