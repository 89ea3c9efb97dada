//! Loading a sysroot the way libostree does: the current `/boot/loader`
//! entries are the truth; each entry's `ostree=` argument names a bootlink
//! `/ostree/boot.B/OS/BOOTCSUM/SERIAL` whose target is the deployment.

use crate::bootconfig::BootEntry;
use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::stage::StagedState;
use crate::sysroot::Sysroot;
use crate::verscmp::strverscmp;
use kiln_store::keyfile::KeyFile;
use kiln_store::Checksum;
use std::path::Path;

/// Parse `CHECKSUM.SERIAL`.
pub(crate) fn parse_deploy_name(name: &str) -> Result<(Checksum, u32)> {
    let bad = || Error::BadDeployName(name.to_string());
    let (c, s) = name.rsplit_once('.').ok_or_else(bad)?;
    if c.is_empty()
        || s.is_empty()
        || !s.bytes().all(|b| b.is_ascii_digit())
        || !c.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(bad());
    }
    let csum = c.parse::<Checksum>().map_err(|_| bad())?;
    let serial = s.parse::<u32>().map_err(|_| bad())?;
    Ok((csum, serial))
}

/// Parse `/ostree/boot.B/OS/BOOTCSUM/SERIAL`.
fn parse_bootlink(link: &str) -> Result<(u32, String, String, u32)> {
    let bad = || Error::BadBootlink(link.to_string());
    let rest = link.strip_prefix("/ostree/boot.").ok_or_else(bad)?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() != 4 || parts[1].is_empty() || parts[2].is_empty() || parts[3].is_empty() {
        return Err(bad());
    }
    let bv = match parts[0] {
        "0" => 0,
        "1" => 1,
        _ => return Err(bad()),
    };
    if !parts[3].bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let serial = parts[3].parse().map_err(|_| bad())?;
    Ok((bv, parts[1].to_string(), parts[2].to_string(), serial))
}

pub(crate) fn parse_origin(path: &Path, text: &str) -> Result<KeyFile> {
    if !text.trim_start().is_empty() && !text.trim_start().starts_with(['[', '#']) {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            why: "Key file does not start with a group".into(),
        });
    }
    KeyFile::parse(text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

/// Read `link` (a symlink) expecting `PREFIX0` or `PREFIX1`.
fn read_version_link(path: &Path, prefix: &str) -> Result<Option<u32>> {
    let st = match std::fs::symlink_metadata(path) {
        Ok(st) => st,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    if !st.file_type().is_symlink() {
        return Err(Error::invalid(format!(
            "Not a symbolic link: {}",
            path.display()
        )));
    }
    let target = std::fs::read_link(path).map_err(|e| Error::io(path, e))?;
    let t = target.to_string_lossy();
    if t == format!("{prefix}0") {
        Ok(Some(0))
    } else if t == format!("{prefix}1") {
        Ok(Some(1))
    } else {
        Err(Error::BadLink {
            path: path.to_path_buf(),
            target: t.to_string(),
        })
    }
}

impl Sysroot {
    pub(crate) fn detect_booted(&mut self) -> Result<()> {
        let marker = self.opts.run_dir.join("ostree-booted");
        let root_id = fsutil::dev_ino(&self.opts.root)?;
        let self_id = fsutil::dev_ino(&self.opts.path)?;
        self.root_id = Some(root_id);
        self.root_is_booted = marker.exists() && root_id == self_id;
        Ok(())
    }

    /// The subbootversion of `ostree/boot.B` (0 when missing).
    pub(crate) fn read_subbootversion(&self, bootversion: u32) -> Result<u32> {
        let p = self.opts.path.join(format!("ostree/boot.{bootversion}"));
        let st = match std::fs::symlink_metadata(&p) {
            Ok(st) => st,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io(&p, e)),
        };
        let _ = st;
        let t = std::fs::read_link(&p).map_err(|e| Error::io(&p, e))?;
        let t = t.to_string_lossy();
        if t.ends_with(".0") {
            Ok(0)
        } else if t.ends_with(".1") {
            Ok(1)
        } else {
            Err(Error::BadLink {
                path: p,
                target: t.to_string(),
            })
        }
    }

    /// The `ostree-*.conf` entries of `loader.B`, sorted newest first.
    pub(crate) fn read_entries(
        &self,
        bootversion: u32,
    ) -> Result<Vec<(std::path::PathBuf, BootEntry)>> {
        let dir = self
            .opts
            .path
            .join(format!("boot/loader.{bootversion}/entries"));
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            let name = e.file_name().to_string_lossy().to_string();
            let path = e.path();
            if !(name.starts_with("ostree-") && name.ends_with(".conf")) {
                continue;
            }
            if !std::fs::metadata(&path)
                .map_err(|err| Error::io(&path, err))?
                .is_file()
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|err| Error::io(&path, err))?;
            out.push((path, BootEntry::parse(&text)));
        }
        out.sort_by(|a, b| compare_entries(&a.1, &b.1));
        Ok(out)
    }

    fn parse_deployment(&self, entry_path: &Path, entry: BootEntry) -> Result<(Deployment, bool)> {
        let link = entry
            .ostree_karg()
            .ok_or_else(|| Error::NoOstreeKarg(entry_path.to_path_buf()))?
            .to_string();
        let (_bv, osname, bootcsum, bootserial) = parse_bootlink(&link)?;
        let inner = || -> Result<(Deployment, bool)> {
            let rel = link.trim_start_matches('/');
            let linkpath = self.opts.path.join(rel);
            let target = std::fs::read_link(&linkpath).map_err(|e| Error::io(&linkpath, e))?;
            let base = target
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let (csum, serial) = parse_deploy_name(&base)?;
            let dir_id = fsutil::dev_ino(&linkpath)?;
            let is_booted = self.root_is_booted && self.root_id == Some(dir_id);
            let mut d = Deployment {
                index: 0,
                osname: osname.clone(),
                csum,
                serial,
                bootcsum: bootcsum.clone(),
                bootserial,
                bootconfig: entry.clone(),
                origin: None,
                staged: false,
            };
            d.origin = self.load_origin(&d)?;
            Ok((d, is_booted))
        };
        inner().map_err(|e| Error::ParseDeployment {
            bootlink: link.clone(),
            osname: osname.clone(),
            source: Box::new(e),
        })
    }

    pub(crate) fn load_origin(&self, d: &Deployment) -> Result<Option<KeyFile>> {
        let rel = d.origin_relpath();
        let path = self.opts.path.join(&rel);
        match fsutil::read_opt(&path)? {
            Some(text) => Ok(Some(parse_origin(Path::new(&rel), &text)?)),
            None => Ok(None),
        }
    }

    /// (Re)load bootversion, subbootversion and deployments.
    pub(crate) fn load(&mut self) -> Result<()> {
        let deploy_dir = self.opts.path.join("ostree/deploy");
        std::fs::metadata(&deploy_dir).map_err(|e| Error::io(&deploy_dir, e))?;
        let bootversion =
            read_version_link(&self.opts.path.join("boot/loader"), "loader.")?.unwrap_or(0);
        let subbootversion = self.read_subbootversion(bootversion)?;
        let mut deployments = Vec::new();
        let mut booted = None;
        for (path, entry) in self.read_entries(bootversion)? {
            let (d, is_booted) = self.parse_deployment(&path, entry)?;
            if is_booted && booted.is_none() {
                booted = Some(d.id());
            }
            deployments.push(d);
        }
        if self.root_is_booted && booted.is_none() {
            return Err(Error::invalid(
                if fsutil::exists_nofollow(&self.opts.path.join("boot/loader")) {
                    "Unexpected state: /run/ostree-booted found and in / sysroot, but bootloader entry not found"
                } else {
                    "Unexpected state: /run/ostree-booted found, but no /boot/loader directory"
                },
            ));
        }
        self.staged = None;
        if self.root_is_booted {
            if let Some(st) = StagedState::read(&self.opts.run_dir)? {
                let mut d = st.deployment();
                d.origin = self.load_origin(&d)?;
                deployments.insert(0, d);
                self.staged = Some(st);
            }
        }
        for (i, d) in deployments.iter_mut().enumerate() {
            d.index = i;
        }
        self.booted =
            booted.and_then(|id| deployments.iter().position(|d| !d.staged && d.id() == id));
        self.bootversion = bootversion;
        self.subbootversion = subbootversion;
        self.deployments = deployments;
        Ok(())
    }
}

/// Newest (highest `version`) first; entries without a version last.
fn compare_entries(a: &BootEntry, b: &BootEntry) -> std::cmp::Ordering {
    match (a.get("version"), b.get("version")) {
        (Some(x), Some(y)) => strverscmp(x, y).reverse(),
        (Some(_), None) => std::cmp::Ordering::Less,
        _ => std::cmp::Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let c = "ab".repeat(32);
        assert_eq!(parse_deploy_name(&format!("{c}.3")).unwrap().1, 3);
        assert!(parse_deploy_name("x.0").is_err());
        assert!(parse_deploy_name(&c).is_err());
        let (bv, os, bc, s) = parse_bootlink("/ostree/boot.1/fakeos/abc/2").unwrap();
        assert_eq!((bv, os.as_str(), bc.as_str(), s), (1, "fakeos", "abc", 2));
        assert!(parse_bootlink("/ostree/boot.2/a/b/0").is_err());
        assert!(parse_bootlink("/ostree/boot.0/a/b").is_err());
    }
}
