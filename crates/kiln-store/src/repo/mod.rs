//! An OSTree repository on disk: layout, modes, config, locking.

mod content;
mod lock;
mod objects;

pub use content::{content_checksum, read_xattrs as read_xattrs_pub, ContentWriter};
pub use content::{ContentData, ContentObject};
pub use lock::{LockKind, RepoLock};
pub use objects::ObjectInfo;

use crate::checksum::Checksum;
use crate::error::{Error, Result};
use crate::keyfile::KeyFile;
use crate::object::ObjectType;
use std::path::{Path, PathBuf};

/// The four storage modes of an OSTree repo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RepoMode {
    Bare,
    BareUser,
    BareUserOnly,
    Archive,
}

impl RepoMode {
    /// Parse a mode name as ostree accepts it (`archive-z2` is `archive`).
    pub fn parse(s: &str) -> Option<RepoMode> {
        Some(match s {
            "bare" => RepoMode::Bare,
            "bare-user" => RepoMode::BareUser,
            "bare-user-only" => RepoMode::BareUserOnly,
            "archive" | "archive-z2" => RepoMode::Archive,
            _ => return None,
        })
    }

    /// The name written to `config` (ostree writes `archive-z2`).
    pub fn config_name(self) -> &'static str {
        match self {
            RepoMode::Bare => "bare",
            RepoMode::BareUser => "bare-user",
            RepoMode::BareUserOnly => "bare-user-only",
            RepoMode::Archive => "archive-z2",
        }
    }

    pub fn is_bare(self) -> bool {
        self != RepoMode::Archive
    }

    /// Extension of content objects in this mode.
    pub fn file_ext(self) -> &'static str {
        if self == RepoMode::Archive {
            "filez"
        } else {
            "file"
        }
    }
}

/// An open repository.
pub struct Repo {
    path: PathBuf,
    mode: RepoMode,
    config: KeyFile,
    /// Compression level for archive objects.
    pub(crate) zlib_level: u32,
    /// Lock held for the lifetime of the handle, if any.
    lock: std::sync::Mutex<Option<RepoLock>>,
    /// Bytes this process may still write before the file system's
    /// `min-free-space` reserve is reached (set on the first write).
    space_budget: std::sync::Mutex<Option<i64>>,
    /// `objects/XX` directories known to exist (one bit per XX).
    pub(crate) object_dirs: [std::sync::atomic::AtomicU64; 4],
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish()
    }
}

const SUBDIRS: &[&str] = &[
    "extensions",
    "objects",
    "refs",
    "refs/heads",
    "refs/mirrors",
    "refs/remotes",
    "state",
    "tmp",
    "tmp/cache",
];

impl Repo {
    /// Create a repository (like `ostree init`). Succeeds on an existing repo
    /// of the same mode, as ostree does.
    pub fn init(path: &Path, mode: RepoMode) -> Result<Repo> {
        let io = |e| Error::io(path, e);
        std::fs::create_dir_all(path).map_err(io)?;
        let cfg_path = path.join("config");
        if cfg_path.exists() {
            let repo = Repo::open(path)?;
            if repo.mode != mode {
                return Err(Error::Invalid {
                    what: path.display().to_string(),
                    why: format!("already a repository of mode {}", repo.mode.config_name()),
                });
            }
            return Ok(repo);
        }
        for d in SUBDIRS {
            std::fs::create_dir_all(path.join(d)).map_err(io)?;
        }
        let text = format!("[core]\nrepo_version=1\nmode={}\n", mode.config_name());
        crate::util::write_file_atomic(&cfg_path, text.as_bytes(), 0o644)?;
        Repo::open(path)
    }

    /// Open an existing repository.
    pub fn open(path: &Path) -> Result<Repo> {
        let cfg_path = path.join("config");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotARepo(path.to_path_buf())
            } else {
                Error::io(&cfg_path, e)
            }
        })?;
        let config = KeyFile::parse(&text).map_err(|e| Error::Config {
            path: cfg_path.clone(),
            why: e.to_string(),
        })?;
        let version = config.get("core", "repo_version").unwrap_or("1");
        if version != "1" {
            return Err(Error::Config {
                path: cfg_path,
                why: format!("unsupported repo_version {version}"),
            });
        }
        let mode_s = config.get("core", "mode").unwrap_or("bare");
        let mode = RepoMode::parse(mode_s).ok_or_else(|| Error::Config {
            path: cfg_path.clone(),
            why: format!("unknown mode {mode_s:?}"),
        })?;
        let zlib_level = config
            .get("archive", "zlib-level")
            .and_then(|s| s.parse().ok())
            .unwrap_or(6)
            .min(9);
        for d in ["objects", "tmp", "refs"] {
            if !path.join(d).is_dir() {
                return Err(Error::NotARepo(path.to_path_buf()));
            }
        }
        Ok(Repo {
            path: path.to_path_buf(),
            mode,
            config,
            zlib_level,
            lock: std::sync::Mutex::new(None),
            space_budget: std::sync::Mutex::new(None),
            object_dirs: Default::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The reserve ostree keeps free: `core.min-free-space-size` (e.g.
    /// `500MB`) or `core.min-free-space-percent` (default 3).
    fn reserve_description(&self, fs_total: u64) -> (u64, String) {
        if let Some(size) = self.config.get("core", "min-free-space-size") {
            let s = size.trim();
            let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let n: u64 = s[..split].parse().unwrap_or(0);
            let shift = match s[split..].trim() {
                "KB" => 10,
                "GB" => 30,
                "TB" => 40,
                _ => 20,
            };
            return (n << shift, format!("min-free-space-size '{s}'"));
        }
        let pct: u64 = self
            .config
            .get("core", "min-free-space-percent")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(3)
            .min(99);
        (
            fs_total / 100 * pct,
            format!("min-free-space-percent '{pct}%'"),
        )
    }

    /// Reserve `bytes` of the space budget before writing an object; like
    /// ostree, refuse before writing rather than fill the file system.
    pub fn reserve_space(&self, bytes: u64) -> Result<()> {
        let mut budget = self.space_budget.lock().unwrap_or_else(|p| p.into_inner());
        let st = match *budget {
            Some(_) => None,
            None => Some(rustix::fs::statvfs(&self.path).map_err(|e| Error::rio(&self.path, e))?),
        };
        if let Some(st) = st {
            let total = st.f_blocks.saturating_mul(st.f_frsize);
            let avail = st.f_bavail.saturating_mul(st.f_frsize);
            let (reserve, _) = self.reserve_description(total);
            // A file system that reports no size (ramfs, some FUSE) has no
            // budget to keep.
            *budget = Some(if st.f_blocks == 0 {
                i64::MAX
            } else {
                avail as i64 - reserve as i64
            });
        }
        let left = budget.unwrap_or(0);
        if left < bytes as i64 {
            let total = rustix::fs::statvfs(&self.path)
                .map(|st| st.f_blocks.saturating_mul(st.f_frsize))
                .unwrap_or(0);
            let (_, what) = self.reserve_description(total);
            return Err(Error::NoSpace {
                path: self.path.clone(),
                needed: format!(
                    "{what} would be exceeded, at least {} requested",
                    crate::util::format_size(bytes)
                ),
            });
        }
        *budget = Some(left - bytes as i64);
        Ok(())
    }

    pub fn mode(&self) -> RepoMode {
        self.mode
    }

    pub fn config(&self) -> &KeyFile {
        &self.config
    }

    /// Replace the config (written atomically).
    pub fn write_config(&mut self, config: KeyFile) -> Result<()> {
        crate::util::write_file_atomic(
            &self.path.join("config"),
            config.to_string().as_bytes(),
            0o644,
        )?;
        self.config = config;
        Ok(())
    }

    /// Hold a lock on this repo until the handle is dropped (or a stronger
    /// one is taken). Compatible with libostree's `.lock`.
    pub fn lock(&self, kind: LockKind) -> Result<()> {
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = guard.as_ref() {
            if l.kind() == kind || l.kind() == LockKind::Exclusive {
                return Ok(());
            }
        }
        *guard = None;
        *guard = Some(RepoLock::acquire(&self.path, kind)?);
        Ok(())
    }

    pub fn object_path(&self, csum: &Checksum, ty: ObjectType) -> PathBuf {
        let (d, f) = csum.split_hex();
        let ext = if ty == ObjectType::File {
            self.mode.file_ext()
        } else {
            ty.ext()
        };
        self.path.join("objects").join(d).join(format!("{f}.{ext}"))
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.path.join("tmp")
    }

    /// The uncompressed object cache of archive repos (for `checkout -U -H`).
    pub fn uncompressed_cache_dir(&self) -> PathBuf {
        self.path.join("uncompressed-objects-cache")
    }
}
