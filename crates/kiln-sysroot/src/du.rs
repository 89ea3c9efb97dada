//! Disk usage of a sysroot (`kiln df`): the repo, each deployment (what is
//! its own — copies such as `/etc` — and what it shares with the repo
//! through hardlinks), `/var` and `/boot`.

use crate::fsutil::disk_usage;
use crate::sysroot::Sysroot;
use serde::Serialize;
use std::collections::HashSet;

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentUsage {
    pub index: usize,
    pub osname: String,
    pub checksum: String,
    pub serial: u32,
    /// Bytes only this deployment holds (not hardlinked elsewhere).
    pub exclusive_bytes: u64,
    /// Bytes of files hardlinked with the repo or other deployments.
    pub shared_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiskUsage {
    /// Whole repo (objects, refs).
    pub repo_bytes: u64,
    pub deployments: Vec<DeploymentUsage>,
    /// Each stateroot's `/var`.
    pub var_bytes: u64,
    /// `/boot/ostree` and the loader dirs.
    pub boot_bytes: u64,
    /// Everything above counted once.
    pub total_bytes: u64,
}

impl Sysroot {
    pub fn disk_usage(&self) -> DiskUsage {
        let mut seen = HashSet::new();
        let repo_bytes = disk_usage(self.repo.path(), &mut seen).0;
        let mut total = repo_bytes;
        let mut deployments = Vec::new();
        for d in &self.deployments {
            let mut own = HashSet::new();
            let (all, shared_links) = disk_usage(&self.deployment_path(d), &mut own);
            seen.extend(own);
            let exclusive = all.saturating_sub(shared_links);
            total += exclusive;
            deployments.push(DeploymentUsage {
                index: d.index,
                osname: d.osname.clone(),
                checksum: d.csum.to_string(),
                serial: d.serial,
                exclusive_bytes: exclusive,
                shared_bytes: shared_links,
            });
        }
        let mut var_bytes = 0;
        let mut oses: Vec<&str> = self.deployments.iter().map(|d| d.osname.as_str()).collect();
        oses.dedup();
        for os in oses {
            var_bytes += disk_usage(
                &self.opts.path.join(format!("ostree/deploy/{os}/var")),
                &mut seen,
            )
            .0;
        }
        let boot_bytes = disk_usage(&self.opts.path.join("boot/ostree"), &mut seen).0
            + disk_usage(
                &self
                    .opts
                    .path
                    .join(format!("boot/loader.{}", self.bootversion)),
                &mut seen,
            )
            .0;
        DiskUsage {
            repo_bytes,
            deployments,
            var_bytes,
            boot_bytes,
            total_bytes: total + var_bytes + boot_bytes,
        }
    }
}
