//! The toolbox data directory: images, containers, in-progress work.
//!
//! ```text
//! DATA/images/ID/image.json        ImageMeta
//! DATA/images/ID/rootfs/           the unpacked image, shared read-only
//! DATA/containers/NAME/container.json
//! DATA/containers/NAME/upper/      the container's copy-on-write layer
//! DATA/containers/NAME/work/       overlayfs work directory
//! DATA/containers/NAME/merged/     mount point of the overlay
//! DATA/containers/NAME/state/      run state: init pid, generated hosts
//! DATA/tmp/KIND-UNIQUE/            work in progress, with a `lock` held by its owner
//! ```
//!
//! Every image and container is built under `tmp/` and renamed into place
//! with `RENAME_NOREPLACE`: that rename is the commit point, so a killed
//! `create` leaves only a stale `tmp/` entry, removed by the next run.

use crate::error::{Error, IoContext, Result};
use rustix::fs::{FlockOperation, Mode, OFlags};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where an image came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ImageSource {
    /// Built by mmdebstrap.
    Mmdebstrap {
        distro: String,
        release: String,
        mirrors: Vec<String>,
        packages: Vec<String>,
    },
    /// Unpacked from an OCI image layout or archive.
    Oci {
        reference: String,
        manifest_digest: String,
    },
}

/// `images/ID/image.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageMeta {
    pub id: String,
    pub name: String,
    pub source: ImageSource,
    pub created: String,
    /// Bytes used by the unpacked root filesystem.
    pub size: u64,
    /// Fingerprint of the id mapping the files were written with.
    pub idmap: String,
}

/// `containers/NAME/container.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerMeta {
    pub name: String,
    pub image_id: String,
    pub image_name: String,
    pub created: String,
}

/// The data directory.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// A directory under `tmp/`, locked while its owner lives.
#[derive(Debug)]
pub struct TmpDir {
    pub path: PathBuf,
    _lock: OwnedFd,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn image_dir(&self, id: &str) -> PathBuf {
        self.images_dir().join(id)
    }

    pub fn container_dir(&self, name: &str) -> PathBuf {
        self.containers_dir().join(name)
    }

    /// Create the directory skeleton.
    pub fn ensure(&self) -> Result<()> {
        for d in [self.images_dir(), self.containers_dir(), self.tmp_dir()] {
            fs::create_dir_all(&d).ctx("create", &d)?;
        }
        Ok(())
    }

    /// A new locked directory under `tmp/`.
    pub fn new_tmp(&self, kind: &str) -> Result<TmpDir> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let unique = format!(
            "{kind}-{}-{nanos:x}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = self.tmp_dir().join(unique);
        fs::create_dir(&path).ctx("create", &path)?;
        let lock_path = path.join("lock");
        let lock = rustix::fs::open(
            &lock_path,
            OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .ctx("create", &lock_path)?;
        rustix::fs::flock(&lock, FlockOperation::LockExclusive).ctx("lock", &lock_path)?;
        Ok(TmpDir { path, _lock: lock })
    }

    /// Remove `tmp/` entries whose owner died (their lock is free).
    /// Needs to run where subordinate-owned files can be removed.
    pub fn clean_stale_tmp(&self) {
        let Ok(entries) = fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let lock_path = path.join("lock");
            let stale =
                match rustix::fs::open(&lock_path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) {
                    Ok(fd) => {
                        rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_ok()
                    }
                    // No lock file: killed before it was made.
                    Err(rustix::io::Errno::NOENT) => true,
                    Err(_) => false,
                };
            if stale {
                tracing::info!(path = %path.display(), "removing stale work directory");
                let _ = remove_tree(&path);
            }
        }
    }

    pub fn load_container(&self, name: &str) -> Result<ContainerMeta> {
        crate::host::check_name(name).map_err(|_| Error::NoSuchContainer(name.into()))?;
        let path = self.container_dir(name).join("container.json");
        match read_json(&path) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NoSuchContainer(name.into()))
            }
            other => other,
        }
    }

    pub fn load_image(&self, id: &str) -> Result<ImageMeta> {
        let path = self.image_dir(id).join("image.json");
        match read_json(&path) {
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NoSuchImage(id.into()))
            }
            other => other,
        }
    }

    /// All containers, sorted by name. Entries that are not complete
    /// containers (no readable metadata) are skipped.
    pub fn containers(&self) -> Result<Vec<ContainerMeta>> {
        let mut out: Vec<ContainerMeta> = list_names(&self.containers_dir())?
            .into_iter()
            .filter_map(|n| self.load_container(&n).ok())
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// All images, sorted by name then id.
    pub fn images(&self) -> Result<Vec<ImageMeta>> {
        let mut out: Vec<ImageMeta> = list_names(&self.images_dir())?
            .into_iter()
            .filter_map(|n| self.load_image(&n).ok())
            .collect();
        out.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
        Ok(out)
    }

    /// Find an image by id, name, or unique id prefix.
    pub fn resolve_image(&self, what: &str) -> Result<ImageMeta> {
        let images = self.images()?;
        if let Some(i) = images.iter().find(|i| i.id == what) {
            return Ok(i.clone());
        }
        let by_name: Vec<_> = images.iter().filter(|i| i.name == what).collect();
        match by_name.len() {
            0 => {}
            1 => return Ok(by_name[0].clone()),
            _ => {
                let ids: Vec<&str> = by_name.iter().map(|i| i.id.as_str()).collect();
                return Err(Error::AmbiguousImage {
                    name: what.into(),
                    ids: ids.join(", "),
                });
            }
        }
        let by_prefix: Vec<_> = images.iter().filter(|i| i.id.starts_with(what)).collect();
        if by_prefix.len() == 1 && !what.is_empty() {
            return Ok(by_prefix[0].clone());
        }
        Err(Error::NoSuchImage(what.into()))
    }
}

fn list_names(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx("read", dir),
    };
    Ok(entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect())
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = fs::read(path).ctx("read", path)?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Metadata {
        path: path.into(),
        source,
    })
}

/// Write JSON via a temporary file and rename.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| Error::Metadata {
        path: path.into(),
        source,
    })?;
    bytes.push(b'\n');
    let tmp = path.with_extension("json.tmp");
    fs::write(&tmp, &bytes).ctx("write", &tmp)?;
    fs::rename(&tmp, path).ctx("rename", path)
}

/// Rename `from` to `to` unless `to` exists. Returns false if it exists.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> Result<bool> {
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        from,
        rustix::fs::CWD,
        to,
        rustix::fs::RenameFlags::NOREPLACE,
    ) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => Ok(false),
        Err(e) => Err(e).ctx("rename", to),
    }
}

/// Remove a tree without following symlinks; a missing tree is fine.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).ctx("remove", path),
    }
}

/// Bytes of disk used below `path` (blocks, each inode counted once).
/// Unreadable directories are skipped.
pub fn disk_usage(path: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![path.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(md) = fs::symlink_metadata(&p) else {
            continue;
        };
        if md.nlink() > 1 && !md.is_dir() && !seen.insert((md.dev(), md.ino())) {
            continue;
        }
        total += md.blocks() * 512;
        if md.is_dir() {
            if let Ok(rd) = fs::read_dir(&p) {
                stack.extend(rd.flatten().map(|e| e.path()));
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tmp_dirs_are_locked_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        store.ensure().unwrap();
        let live = store.new_tmp("t").unwrap();
        let dead = store.new_tmp("t").unwrap();
        let dead_path = dead.path.clone();
        drop(dead);
        store.clean_stale_tmp();
        assert!(live.path.exists());
        assert!(!dead_path.exists());
    }

    #[test]
    fn noreplace() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        let c = dir.path().join("c");
        fs::create_dir_all(a.join("x")).unwrap();
        fs::create_dir_all(b.join("y")).unwrap();
        assert!(!rename_noreplace(&a, &b).unwrap());
        assert!(rename_noreplace(&a, &c).unwrap());
        assert!(c.join("x").exists());
    }
}
