//! What changes between two deployments (`kiln diff`): files added,
//! modified and removed between their commits, and the Debian packages
//! added, removed, upgraded and downgraded (from each commit's dpkg
//! database, read from the repo by path: no checkout).

use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::sysroot::Sysroot;
use crate::verscmp::debian_version_cmp;
use kiln_store::walk::Resolved;
use kiln_store::{Checksum, Repo};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// Where a tree keeps its dpkg database: kiln compose moves it under
/// `/usr` (`/var` is not part of a commit); a plain Debian tree has it in
/// `/var/lib/dpkg`.
pub const DPKG_STATUS_PATHS: [&str; 2] = ["/usr/lib/sysimage/dpkg/status", "/var/lib/dpkg/status"];

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
    /// None when neither commit has a dpkg database.
    pub packages: Option<PackageDiff>,
}

/// A package present on one side only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageVersion {
    pub name: String,
    pub version: String,
    pub arch: String,
}

/// A package whose version changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageChange {
    pub name: String,
    pub from: String,
    pub to: String,
    pub arch: String,
}

/// Packages that differ between two dpkg databases, each list sorted by
/// name. A package whose version string changed but compares equal
/// (`1.0` and `0:1.0`) is not listed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PackageDiff {
    pub added: Vec<PackageVersion>,
    pub removed: Vec<PackageVersion>,
    pub upgraded: Vec<PackageChange>,
    pub downgraded: Vec<PackageChange>,
}

impl PackageDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.upgraded.is_empty()
            && self.downgraded.is_empty()
    }
}

/// Installed packages of a dpkg `status` file: `(name, arch) -> version`.
/// Packages only unpacked, half-installed or with config files left are
/// not installed; continuation lines and unknown fields are skipped.
pub fn parse_dpkg_status(text: &str) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for para in text.split("\n\n") {
        let (mut name, mut arch, mut version, mut installed) = (None, "", None, false);
        for line in para.lines() {
            if line.starts_with([' ', '\t']) {
                continue;
            }
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let v = v.trim();
            match k.to_ascii_lowercase().as_str() {
                "package" => name = Some(v),
                "architecture" => arch = v,
                "version" => version = Some(v),
                "status" => installed = v.split_whitespace().nth(2) == Some("installed"),
                _ => {}
            }
        }
        if let (Some(n), Some(v), true) = (name, version, installed) {
            if !n.is_empty() {
                out.insert((n.to_string(), arch.to_string()), v.to_string());
            }
        }
    }
    out
}

/// Compare two package sets (from [`parse_dpkg_status`]). A package is
/// named `NAME`, or `NAME:ARCH` when it is installed for several
/// architectures on either side.
pub fn diff_packages(
    from: &BTreeMap<(String, String), String>,
    to: &BTreeMap<(String, String), String>,
) -> PackageDiff {
    let mut arches: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (n, a) in from.keys().chain(to.keys()) {
        arches.entry(n).or_default().insert(a);
    }
    let label = |n: &str, a: &str| {
        if arches.get(n).is_some_and(|s| s.len() > 1) {
            format!("{n}:{a}")
        } else {
            n.to_string()
        }
    };
    let mut d = PackageDiff::default();
    for ((n, a), v) in from {
        match to.get(&(n.clone(), a.clone())) {
            None => d.removed.push(PackageVersion {
                name: label(n, a),
                version: v.clone(),
                arch: a.clone(),
            }),
            Some(w) => {
                let change = PackageChange {
                    name: label(n, a),
                    from: v.clone(),
                    to: w.clone(),
                    arch: a.clone(),
                };
                match debian_version_cmp(v, w) {
                    Ordering::Less => d.upgraded.push(change),
                    Ordering::Greater => d.downgraded.push(change),
                    Ordering::Equal => {}
                }
            }
        }
    }
    for ((n, a), v) in to {
        if !from.contains_key(&(n.clone(), a.clone())) {
            d.added.push(PackageVersion {
                name: label(n, a),
                version: v.clone(),
                arch: a.clone(),
            });
        }
    }
    d
}

/// The dpkg status file of `commit`, read from the repo (None when the
/// tree has none).
pub fn read_dpkg_status(repo: &Repo, commit: &Checksum) -> Result<Option<String>> {
    for path in DPKG_STATUS_PATHS {
        let csum = match repo.resolve_path(commit, path) {
            Ok(Resolved::File(c)) => c,
            Ok(Resolved::Dir { .. }) | Err(kiln_store::Error::NoSuchPath(_)) => continue,
            Err(kiln_store::Error::Invalid { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let obj = repo.load_content(&csum)?;
        if obj.meta.is_symlink() {
            continue;
        }
        let mut bytes = Vec::new();
        obj.reader()?
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Parse {
                path: format!("{commit}:{path}").into(),
                why: e.to_string(),
            })?;
        return Ok(Some(String::from_utf8_lossy(&bytes).into_owned()));
    }
    Ok(None)
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
        let a = read_dpkg_status(&self.repo, &from.csum)?;
        let b = read_dpkg_status(&self.repo, &to.csum)?;
        let packages = (a.is_some() || b.is_some()).then(|| {
            diff_packages(
                &parse_dpkg_status(a.as_deref().unwrap_or_default()),
                &parse_dpkg_status(b.as_deref().unwrap_or_default()),
            )
        });
        Ok(DeploymentDiff {
            from: self.dref(from),
            to: self.dref(to),
            added: d.added,
            modified: d.modified,
            removed: d.removed,
            packages,
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

#[cfg(test)]
mod tests {
    use super::*;

    const FROM: &str = "Package: less\nStatus: install ok installed\nArchitecture: amd64\nVersion: 590-2.1~deb12u2\nDescription: pager\n more text: with a colon\n\n\
Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\n\n\
Package: libc6\nStatus: install ok installed\nArchitecture: i386\nVersion: 2.36-9+deb12u4\n\n\
Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-1\n\n\
Package: gone-conf\nStatus: deinstall ok config-files\nArchitecture: all\nVersion: 1\n\n\
Package: same\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0\n";

    const TO: &str = "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u10\n\n\
Package: libc6\nStatus: install ok installed\nArchitecture: i386\nVersion: 2.36-9+deb12u4\n\n\
Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n\n\
Package: kiln-hello\nStatus: install ok installed\nArchitecture: all\nVersion: 1:1.0~rc1-1\n\n\
Package: half\nStatus: install ok half-configured\nArchitecture: all\nVersion: 1\n\n\
Package: same\nStatus: install ok installed\nArchitecture: all\nVersion: 0:1.0\n";

    #[test]
    fn parses_installed_packages_only() {
        let p = parse_dpkg_status(FROM);
        assert_eq!(p.len(), 5);
        assert_eq!(
            p.get(&("less".to_string(), "amd64".to_string()))
                .map(String::as_str),
            Some("590-2.1~deb12u2")
        );
        assert!(!p.keys().any(|(n, _)| n == "gone-conf"));
        assert!(parse_dpkg_status("").is_empty());
        assert!(parse_dpkg_status("garbage\n\n: :\nPackage:\n").is_empty());
    }

    #[test]
    fn classifies_changes() {
        let d = diff_packages(&parse_dpkg_status(FROM), &parse_dpkg_status(TO));
        let names = |v: &[PackageVersion]| v.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&d.added), ["kiln-hello"]);
        assert_eq!(d.added[0].version, "1:1.0~rc1-1");
        assert_eq!(names(&d.removed), ["less"]);
        assert_eq!(
            d.upgraded,
            [PackageChange {
                name: "libc6:amd64".into(),
                from: "2.36-9+deb12u4".into(),
                to: "2.36-9+deb12u10".into(),
                arch: "amd64".into(),
            }]
        );
        assert_eq!(d.downgraded.len(), 1);
        assert_eq!(d.downgraded[0].name, "tzdata");
        assert_eq!(d.downgraded[0].to, "2024a-0+deb12u1");
        // Same database: nothing.
        let p = parse_dpkg_status(TO);
        assert!(diff_packages(&p, &p).is_empty());
    }
}
