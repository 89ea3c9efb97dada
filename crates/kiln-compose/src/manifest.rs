//! The compose manifest (`kiln compose debian MANIFEST.toml`): what Debian
//! to bootstrap, which packages, extra files and units, and the ref and
//! version of the commit. Unknown keys are errors (a typo must not be
//! silently ignored), checked before anything is built.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Default modules for a small initramfs that boots virtio and SATA/SCSI
/// disks with ext4 (used when the manifest sets `initramfs-modules = []`
/// is not given: see [`Manifest::initramfs_modules`]).
pub const VIRT_MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "sd_mod",
    "ext4",
    "crc32c_generic",
];

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Manifest {
    /// The branch the commit goes to (`--branch` overrides).
    #[serde(rename = "ref")]
    pub ref_: String,
    /// `version` in the commit metadata (`--version` overrides).
    pub version: Option<String>,
    /// Commit subject (default: `kiln compose REF VERSION`).
    pub subject: Option<String>,
    /// Debian suite (`bookworm`).
    pub suite: String,
    /// Debian architecture (`amd64`).
    #[serde(default = "default_arch")]
    pub architecture: String,
    /// Mirror URL; default: the first Debian mirror in this machine's apt
    /// sources.
    pub mirror: Option<String>,
    /// mmdebstrap variant (`apt`, `minbase`, `important`, …).
    #[serde(default = "default_variant")]
    pub variant: String,
    /// Packages beyond the variant's (the kernel, systemd, udev…).
    #[serde(default)]
    pub packages: Vec<String>,
    /// `MODULES=list` with these modules for the initramfs; when absent,
    /// Debian's default (`MODULES=most`, larger, boots more hardware).
    pub initramfs_modules: Option<Vec<String>>,
    /// Which program mounts the deployment in the initramfs: `kiln`
    /// (kiln-prepare-root; initramfs-tools or dracut) or `ostree`
    /// (Debian's ostree-prepare-root from ostree-boot; needs dracut).
    #[serde(default)]
    pub prepare_root: PrepareRoot,
    /// Files to add (after the packages, before the transform).
    #[serde(default, rename = "file")]
    pub files: Vec<ManifestFile>,
    /// Units to enable (`systemctl --root enable`).
    #[serde(default)]
    pub units: Vec<String>,
    /// Units to mask.
    #[serde(default)]
    pub mask_units: Vec<String>,
    /// Leave out documentation, man pages and translations (smaller tree).
    #[serde(default = "yes")]
    pub exclude_docs: bool,
    /// Where the manifest was read from (relative `source` paths).
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrepareRoot {
    #[default]
    Kiln,
    Ostree,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ManifestFile {
    /// Absolute path in the tree (`/etc/hostname`).
    pub path: String,
    /// The file's text…
    pub content: Option<String>,
    /// …or a file to copy, relative to the manifest.
    pub source: Option<PathBuf>,
    /// Octal mode as a string (`"0755"`); default 0644.
    pub mode: Option<String>,
}

fn default_arch() -> String {
    "amd64".into()
}
fn default_variant() -> String {
    "apt".into()
}
fn yes() -> bool {
    true
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Manifest> {
        let bad = |why: String| Error::Manifest {
            path: path.to_path_buf(),
            why,
        };
        let mut m: Manifest =
            toml::from_str(text).map_err(|e| bad(e.to_string().trim_end().replace('\n', " ")))?;
        m.path = path.to_path_buf();
        kiln_store::refs::RefSpec::parse(&m.ref_)
            .map_err(|_| bad(format!("ref = {:?} is not a valid ref name", m.ref_)))?;
        if m.suite.is_empty()
            || !m
                .suite
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad(format!("suite = {:?} is not a suite name", m.suite)));
        }
        if !m
            .architecture
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad(format!(
                "architecture = {:?} is not an architecture",
                m.architecture
            )));
        }
        for p in &m.packages {
            if !valid_package(p) {
                return Err(bad(format!("packages: {p:?} is not a Debian package name")));
            }
        }
        for f in &m.files {
            let rel = f
                .path
                .strip_prefix('/')
                .ok_or_else(|| bad(format!("file {:?}: path must be absolute", f.path)))?;
            if rel.is_empty()
                || rel
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..")
            {
                return Err(bad(format!("file {:?}: not a clean path", f.path)));
            }
            match (&f.content, &f.source) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err(bad(format!(
                        "file {:?}: give exactly one of content or source",
                        f.path
                    )))
                }
            }
            if let Some(mode) = &f.mode {
                u32::from_str_radix(mode, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| bad(format!("file {:?}: mode {mode:?} is not octal", f.path)))?;
            }
            if let Some(src) = &f.source {
                let p = m.source_path(src);
                if !p.is_file() {
                    return Err(bad(format!(
                        "file {:?}: source {} does not exist",
                        f.path,
                        p.display()
                    )));
                }
            }
        }
        for u in m.units.iter().chain(&m.mask_units) {
            if u.is_empty() || u.contains('/') || !u.contains('.') {
                return Err(bad(format!("unit {u:?} is not a unit name")));
            }
        }
        if let Some(mods) = &m.initramfs_modules {
            if let Some(bad_mod) = mods.iter().find(|x| {
                x.is_empty()
                    || !x
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            }) {
                return Err(bad(format!(
                    "initramfs-modules: {bad_mod:?} is not a module name"
                )));
            }
        }
        Ok(m)
    }

    pub fn source_path(&self, src: &Path) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join(src)
    }

    /// Key of the bootstrapped root file system in the cache: everything
    /// that changes what mmdebstrap produces, and nothing else (files,
    /// units and version are applied to a copy).
    pub fn rootfs_key(&self, mirror: &str) -> String {
        let mut pkgs = self.packages.clone();
        pkgs.sort();
        pkgs.dedup();
        let key = serde_json::json!({
            "format": 1,
            "suite": self.suite,
            "architecture": self.architecture,
            "mirror": mirror,
            "variant": self.variant,
            "packages": pkgs,
            "initramfs-modules": self.initramfs_modules,
            "exclude-docs": self.exclude_docs,
        });
        let mut h = Sha256::new();
        h.update(key.to_string().as_bytes());
        hex::encode(h.finalize())
    }
}

/// Debian policy: lowercase letters, digits, `+ - .`, at least two
/// characters, starting with an alphanumeric.
fn valid_package(p: &str) -> bool {
    p.len() >= 2
        && p.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && p.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'+' || b == b'-' || b == b'.'
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
ref = "kiln/test"
version = "1"
suite = "bookworm"
packages = ["systemd-sysv", "udev"]
units = ["x.service"]
[[file]]
path = "/etc/hostname"
content = "kiln\n"
"#;

    #[test]
    fn parses() {
        let m = Manifest::parse(OK, Path::new("m.toml")).unwrap();
        assert_eq!(m.ref_, "kiln/test");
        assert_eq!(m.architecture, "amd64");
        assert_eq!(m.files.len(), 1);
        assert_eq!(m.prepare_root, PrepareRoot::Kiln);
        let o = Manifest::parse(
            &format!("prepare-root = \"ostree\"\n{OK}"),
            Path::new("m.toml"),
        )
        .unwrap();
        assert_eq!(o.prepare_root, PrepareRoot::Ostree);
        assert!(Manifest::parse(
            &format!("prepare-root = \"dracut\"\n{OK}"),
            Path::new("m.toml")
        )
        .is_err());
        assert_eq!(m.rootfs_key("http://m"), m.rootfs_key("http://m"));
        assert_ne!(m.rootfs_key("http://m"), m.rootfs_key("http://n"));
    }

    #[test]
    fn typos_are_errors() {
        let e = Manifest::parse(&OK.replace("packages", "pakages"), Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pakages"), "{e}");
        let e = Manifest::parse(&OK.replace("\"udev\"", "\"Udev!\""), Path::new("m.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("Udev!"), "{e}");
        let e = Manifest::parse(
            &OK.replace("/etc/hostname", "etc/../x"),
            Path::new("m.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("absolute"), "{e}");
        assert!(Manifest::parse("ref = \"a\"", Path::new("m.toml")).is_err());
    }
}
