//! Cleanup, as `ostree admin cleanup`: the other bootversion's leftovers,
//! deployment directories and boot directories nothing references (debris
//! of failed or killed deploys included), the `ostree/B/S/I` refs that keep
//! deployed commits alive, and a prune of the repo (refs only, depth 0).

use crate::error::{Error, Result};
use crate::fsutil;
use crate::load::parse_deploy_name;
use crate::sysroot::Sysroot;
use kiln_store::prune::PruneOptions;
use std::collections::HashSet;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CleanupReport {
    /// `OS/CHECKSUM.SERIAL` of removed deployment directories.
    pub deployments_removed: Vec<String>,
    /// Names of removed `/boot/ostree/OS-BOOTCSUM` directories.
    pub bootdirs_removed: Vec<String>,
    pub objects_pruned: u64,
    pub bytes_freed: u64,
}

/// Every `(osname, dirname)` under `ostree/deploy/*/deploy/`.
pub(crate) fn list_deployment_dirs(sysroot: &std::path::Path) -> Result<Vec<(String, String)>> {
    let base = sysroot.join("ostree/deploy");
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&base) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(&base, e)),
    };
    for os in rd {
        let os = os.map_err(|e| Error::io(&base, e))?;
        if !os.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let osname = os.file_name().to_string_lossy().to_string();
        let dir = os.path().join("deploy");
        let Ok(rd2) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd2 {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let name = e.file_name().to_string_lossy().to_string();
            if parse_deploy_name(&name).is_ok() {
                out.push((osname.clone(), name));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Names of `boot/ostree/OS-BOOTCSUM` dirs, with their bootcsum.
pub(crate) fn list_boot_dirs(sysroot: &std::path::Path) -> Result<Vec<(String, String)>> {
    let base = sysroot.join("boot/ostree");
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&base) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(&base, e)),
    };
    for e in rd {
        let e = e.map_err(|e| Error::io(&base, e))?;
        if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let name = e.file_name().to_string_lossy().to_string();
        if let Some((_, csum)) = name.rsplit_once('-') {
            if csum.len() == 64 && csum.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                out.push((name.clone(), csum.to_string()));
            }
        }
    }
    out.sort();
    Ok(out)
}

impl Sysroot {
    fn cleanup_other_bootversions(&self) -> Result<()> {
        let (b, s) = (self.bootversion, self.subbootversion);
        let p = &self.opts.path;
        fsutil::rm_rf(&p.join(format!("boot/loader.{}", 1 - b)))?;
        fsutil::rm_rf(&p.join(format!("ostree/boot.{}", 1 - b)))?;
        fsutil::rm_rf(&p.join(format!("ostree/boot.{}.0", 1 - b)))?;
        fsutil::rm_rf(&p.join(format!("ostree/boot.{}.1", 1 - b)))?;
        fsutil::rm_rf(&p.join(format!("ostree/boot.{b}.{}", 1 - s)))?;
        // A swap link prepared but never renamed (kiln was killed).
        fsutil::rm_rf(&p.join("boot/loader.tmp"))?;
        Ok(())
    }

    fn cleanup_old_deployments(&self, report: &mut CleanupReport) -> Result<()> {
        let active: HashSet<String> = self.deployments.iter().map(|d| d.relpath()).collect();
        let bootcsums: HashSet<&str> = self
            .deployments
            .iter()
            .map(|d| d.bootcsum.as_str())
            .collect();
        let root_id = fsutil::dev_ino(&self.opts.root).ok();
        for (os, name) in list_deployment_dirs(&self.opts.path)? {
            let rel = format!("ostree/deploy/{os}/deploy/{name}");
            if active.contains(&rel) {
                continue;
            }
            let dir = self.opts.path.join(&rel);
            if root_id.is_some() && fsutil::dev_ino(&dir).ok() == root_id {
                continue;
            }
            fsutil::rm_rf(&self.opts.path.join(format!("{rel}.origin")))?;
            fsutil::rm_rf(&dir)?;
            report.deployments_removed.push(format!("{os}/{name}"));
            kiln_store::failpoint::hit("deploy:after-remove-old");
        }
        for (name, csum) in list_boot_dirs(&self.opts.path)? {
            if bootcsums.contains(csum.as_str()) {
                continue;
            }
            fsutil::rm_rf(&self.opts.path.join("boot/ostree").join(&name))?;
            report.bootdirs_removed.push(name);
        }
        Ok(())
    }

    /// Rewrite the `ostree/B/S/I` refs for the current list.
    fn generate_deployment_refs(&self) -> Result<()> {
        let (b, s) = (self.bootversion, self.subbootversion);
        let heads = self.repo.path().join("refs/heads/ostree");
        for prefix in [
            format!("{}/0", 1 - b),
            format!("{}/1", 1 - b),
            format!("{b}/{}", 1 - s),
        ] {
            let dir = heads.join(prefix);
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_file()).unwrap_or(false) {
                    std::fs::remove_file(e.path()).map_err(|err| Error::io(&e.path(), err))?;
                }
            }
        }
        for (i, d) in self.deployments.iter().enumerate() {
            self.repo
                .set_ref(&format!("ostree/{b}/{s}/{i}"), Some(&d.csum))?;
        }
        Ok(())
    }

    /// Remove what the current deployment list does not reference; with
    /// `prune`, also unreachable repo objects.
    pub fn cleanup(&mut self, prune: bool) -> Result<CleanupReport> {
        let mut report = CleanupReport::default();
        self.cleanup_other_bootversions()?;
        let t = std::time::Instant::now();
        self.cleanup_old_deployments(&mut report)?;
        tracing::debug!(elapsed = ?t.elapsed(), removed = report.deployments_removed.len(), "old deployments removed");
        self.generate_deployment_refs()?;
        if prune {
            let opts = PruneOptions {
                refs_only: true,
                depth: 0,
                ..Default::default()
            };
            let r = self
                .repo
                .prune(&opts)
                .map_err(|e| Error::invalid(format!("Pruning system repository: {e}")))?;
            tracing::debug!(elapsed = ?t.elapsed(), "pruned");
            report.objects_pruned = r.objects_pruned;
            report.bytes_freed = r.bytes_freed;
            if r.bytes_freed > 0 {
                self.message(&format!(
                    "Freed objects: {}",
                    kiln_store::util::format_size(r.bytes_freed)
                ));
            }
        }
        Ok(report)
    }
}
