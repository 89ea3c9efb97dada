//! The machine-readable status of a sysroot (`kiln status --json`); the CLI
//! renders its human text from the same value.

use crate::sysroot::Sysroot;
use serde::Serialize;
use std::path::PathBuf;

/// Schema version of [`Status`]; bumped on incompatible changes.
pub const STATUS_SCHEMA: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub schema: u32,
    pub sysroot: PathBuf,
    /// The sysroot is the running system.
    pub booted: bool,
    pub bootversion: u32,
    pub subbootversion: u32,
    /// In list order: index 0 boots next.
    pub deployments: Vec<DeploymentStatus>,
    /// The running `/usr` was switched to another deployment since boot
    /// (`kiln apply-live`; null otherwise).
    pub live: Option<crate::live::LiveState>,
    /// `"transient"` when `/usr` is a writable overlay (`kiln
    /// usroverlay`), null otherwise.
    pub unlocked: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentStatus {
    pub index: usize,
    pub osname: String,
    pub checksum: String,
    pub serial: u32,
    pub booted: bool,
    pub staged: bool,
    /// Will boot next instead of the booted one.
    pub pending: bool,
    /// The deployment `kiln rollback` goes back to.
    pub rollback: bool,
    pub pinned: bool,
    /// `[origin] refspec` (null when the origin has none).
    pub origin: Option<String>,
    /// Commit metadata `version`.
    pub version: Option<String>,
    /// Commit time, seconds since the epoch, and as ISO 8601.
    pub timestamp: Option<u64>,
    pub timestamp_iso: Option<String>,
    pub subject: Option<String>,
    pub bootcsum: String,
    /// Kernel command line of its boot entry.
    pub kargs: Option<String>,
    /// Relative to the sysroot.
    pub path: String,
    /// Boots left before the bootloader falls back, for a deployment on
    /// trial (boot counting; null otherwise).
    pub boot_counter: Option<u32>,
    /// Packages layered on the base (`kiln install`; origin `[kiln]`),
    /// local `.deb`s by package name.
    pub layered_packages: Vec<String>,
    /// Base packages removed (`kiln override remove`).
    pub removed_packages: Vec<String>,
    /// The base commit of a layered deployment (null when not layered).
    pub base_checksum: Option<String>,
    /// Its `/usr` is the running one by a live apply (`kiln apply-live`).
    pub live: bool,
}

impl Sysroot {
    pub fn status(&self) -> Status {
        let (pending, rollback) = match self.booted_deployment() {
            Some(_) => self.query_deployments_for(None),
            None => (None, None),
        };
        let rollback_idx = rollback.map(|d| d.index).or_else(|| {
            if self.booted_deployment().is_none() {
                self.rollback_target().ok()
            } else {
                None
            }
        });
        let live = self.live_deployment().cloned();
        let deployments = self
            .deployments
            .iter()
            .map(|d| {
                let commit = self.repo.read_commit(&d.csum).ok();
                DeploymentStatus {
                    index: d.index,
                    osname: d.osname.clone(),
                    checksum: d.csum.to_string(),
                    serial: d.serial,
                    booted: self.booted_deployment().is_some_and(|b| b.same(d)) && !d.staged,
                    staged: d.staged,
                    pending: pending.is_some_and(|p| p.same(d)) && !d.staged,
                    rollback: rollback_idx == Some(d.index),
                    pinned: d.is_pinned(),
                    origin: d.origin_refspec().map(str::to_string),
                    version: commit
                        .as_ref()
                        .and_then(|c| c.version().map(str::to_string)),
                    timestamp: commit.as_ref().map(|c| c.timestamp),
                    timestamp_iso: commit
                        .as_ref()
                        .map(|c| kiln_store::datetime::format_iso(c.timestamp)),
                    subject: commit
                        .as_ref()
                        .map(|c| c.subject.clone())
                        .filter(|s| !s.is_empty()),
                    bootcsum: d.bootcsum.clone(),
                    kargs: d.options().map(str::to_string),
                    path: d.relpath(),
                    boot_counter: self.boot_tries_left(d),
                    layered_packages: layer_list(d, "packages", "local-packages"),
                    removed_packages: layer_list(d, "removed-packages", ""),
                    base_checksum: d
                        .origin
                        .as_ref()
                        .and_then(|o| o.get("kiln", "base-checksum"))
                        .map(str::to_string),
                    live: live.as_ref().is_some_and(|l| l.same(d)) && !d.staged,
                }
            })
            .collect();
        Status {
            schema: STATUS_SCHEMA,
            sysroot: self.opts.path.clone(),
            booted: self.root_is_booted,
            bootversion: self.bootversion,
            subbootversion: self.subbootversion,
            deployments,
            live: self.live_state(),
            unlocked: self.usr_unlocked().then(|| "transient".to_string()),
        }
    }
}

/// Names listed in the origin's `[kiln]` group (`NAME:SHA256` of local
/// packages become NAME).
fn layer_list(d: &crate::Deployment, key: &str, local_key: &str) -> Vec<String> {
    let Some(o) = d.origin.as_ref() else {
        return Vec::new();
    };
    let mut v = o.get_list("kiln", key).unwrap_or_default();
    if !local_key.is_empty() {
        v.extend(
            o.get_list("kiln", local_key)
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.rsplit_once(':').map_or(s.clone(), |(n, _)| n.to_string())),
        );
    }
    v.retain(|s| !s.is_empty());
    v.sort();
    v
}
