//! Refs: `refs/heads`, `refs/remotes/REMOTE/`, `refs/mirrors`, aliases,
//! and revision parsing (`REF`, `REMOTE:REF`, `CHECKSUM`, `REV^`).

use crate::checksum::Checksum;
use crate::error::{Error, Result};
use crate::repo::Repo;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Validate a ref name like ostree: fragments of `[-._A-Za-z0-9]` joined by `/`.
pub fn validate_ref(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.split('/').all(|frag| {
            !frag.is_empty()
                && frag != "."
                && frag != ".."
                && frag
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_'))
        });
    if ok {
        Ok(())
    } else {
        Err(Error::BadRef(name.to_string()))
    }
}

/// Validate a remote name.
pub fn validate_remote_name(name: &str) -> Result<()> {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        Ok(())
    } else {
        Err(Error::invalid(
            format!("remote name {name:?}"),
            "Invalid remote name",
        ))
    }
}

/// A parsed refspec: optional remote and ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSpec {
    pub remote: Option<String>,
    pub name: String,
}

impl RefSpec {
    pub fn parse(s: &str) -> Result<RefSpec> {
        let (remote, name) = match s.split_once(':') {
            Some((r, n)) => {
                validate_remote_name(r).map_err(|_| Error::BadRef(s.to_string()))?;
                (Some(r.to_string()), n)
            }
            None => (None, s),
        };
        validate_ref(name).map_err(|_| Error::BadRef(s.to_string()))?;
        Ok(RefSpec {
            remote,
            name: name.to_string(),
        })
    }
}

impl std::fmt::Display for RefSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.remote {
            Some(r) => write!(f, "{r}:{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl Repo {
    fn ref_path(&self, spec: &RefSpec) -> PathBuf {
        match &spec.remote {
            Some(r) => self.path().join("refs/remotes").join(r).join(&spec.name),
            None => self.path().join("refs/heads").join(&spec.name),
        }
    }

    fn read_ref_file(path: &Path) -> Result<Option<Checksum>> {
        match std::fs::read_to_string(path) {
            Ok(s) => {
                let t = s.trim_end();
                t.parse::<Checksum>().map(Some).map_err(|_| {
                    Error::invalid(
                        path.display().to_string(),
                        format!("ref contains {t:?}, not a checksum"),
                    )
                })
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::EISDIR) =>
            {
                Ok(None)
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Resolve a refspec to a commit checksum, if the ref exists.
    pub fn resolve_ref(&self, refspec: &str) -> Result<Option<Checksum>> {
        let spec = RefSpec::parse(refspec)?;
        if spec.remote.is_some() {
            return Self::read_ref_file(&self.ref_path(&spec));
        }
        for base in ["refs/heads", "refs/remotes", "refs/mirrors"] {
            if let Some(c) = Self::read_ref_file(&self.path().join(base).join(&spec.name))? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    /// Resolve a revision: a full checksum, a refspec, with any number of
    /// trailing `^` (parent).
    pub fn resolve_rev(&self, rev: &str) -> Result<Checksum> {
        let base = rev.trim_end_matches('^');
        let ups = rev.len() - base.len();
        let mut csum = if Checksum::is_hex(base) {
            base.parse::<Checksum>()
                .map_err(|_| Error::BadRef(rev.to_string()))?
        } else {
            self.resolve_ref(base)?
                .ok_or_else(|| Error::RefNotFound(base.to_string()))?
        };
        for _ in 0..ups {
            let commit = self.read_commit(&csum)?;
            csum = commit.parent.ok_or(Error::NoParent(csum))?;
        }
        Ok(csum)
    }

    /// Point `refspec` at `csum` (None deletes it). Atomic replace.
    pub fn set_ref(&self, refspec: &str, csum: Option<&Checksum>) -> Result<()> {
        let spec = RefSpec::parse(refspec)?;
        self.set_ref_spec(&spec, csum)
    }

    pub fn set_ref_spec(&self, spec: &RefSpec, csum: Option<&Checksum>) -> Result<()> {
        let path = self.ref_path(spec);
        match csum {
            Some(c) => {
                let parent = path.parent().unwrap_or(self.path());
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                crate::util::write_file_atomic(&path, format!("{c}\n").as_bytes(), 0o644)
            }
            None => {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return Err(Error::RefNotFound(spec.to_string()));
                    }
                    Err(e) => return Err(Error::io(&path, e)),
                }
                // Remove now-empty parent dirs below the refs root.
                let root = match &spec.remote {
                    Some(r) => self.path().join("refs/remotes").join(r),
                    None => self.path().join("refs/heads"),
                };
                let mut p = path.parent().map(Path::to_path_buf);
                while let Some(dir) = p {
                    if dir == root || !dir.starts_with(&root) || std::fs::remove_dir(&dir).is_err()
                    {
                        break;
                    }
                    p = dir.parent().map(Path::to_path_buf);
                }
                Ok(())
            }
        }
    }

    /// Create an alias ref (a symlink in `refs/heads`).
    pub fn set_ref_alias(&self, alias: &str, target: &str) -> Result<()> {
        validate_ref(alias)?;
        validate_ref(target)?;
        let path = self.path().join("refs/heads").join(alias);
        let parent = path.parent().unwrap_or(self.path());
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let depth = alias.matches('/').count();
        let rel = format!("{}{}", "../".repeat(depth), target);
        let tmp = parent.join(crate::util::tmp_name(".alias-"));
        std::os::unix::fs::symlink(&rel, &tmp).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }

    /// All local refs (`refs/heads`), name → checksum; aliases resolved.
    pub fn list_refs(&self) -> Result<BTreeMap<String, Checksum>> {
        let mut out = BTreeMap::new();
        walk_refs(&self.path().join("refs/heads"), "", &mut out, &mut None)?;
        Ok(out)
    }

    /// Alias refs: name → target ref name.
    pub fn list_ref_aliases(&self) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        let mut aliases = Some(BTreeMap::new());
        walk_refs(&self.path().join("refs/heads"), "", &mut out, &mut aliases)?;
        Ok(aliases.unwrap_or_default())
    }

    /// Remote refs, as `REMOTE:NAME` → checksum.
    pub fn list_remote_refs(&self, remote: Option<&str>) -> Result<BTreeMap<String, Checksum>> {
        let mut out = BTreeMap::new();
        let root = self.path().join("refs/remotes");
        let Ok(rd) = std::fs::read_dir(&root) else {
            return Ok(out);
        };
        for e in rd {
            let e = e.map_err(|e| Error::io(&root, e))?;
            let name = e.file_name().to_string_lossy().to_string();
            if remote.is_some_and(|r| r != name) {
                continue;
            }
            let mut refs = BTreeMap::new();
            walk_refs(&e.path(), "", &mut refs, &mut None)?;
            for (k, v) in refs {
                out.insert(format!("{name}:{k}"), v);
            }
        }
        Ok(out)
    }

    /// Every checksum any ref (local, remote, mirror) points at.
    pub fn all_ref_targets(&self) -> Result<BTreeMap<String, Checksum>> {
        let mut out = self.list_refs()?;
        out.extend(self.list_remote_refs(None)?);
        let mut mirrors = BTreeMap::new();
        walk_refs(
            &self.path().join("refs/mirrors"),
            "",
            &mut mirrors,
            &mut None,
        )?;
        out.extend(
            mirrors
                .into_iter()
                .map(|(k, v)| (format!("(mirror){k}"), v)),
        );
        Ok(out)
    }
}

fn walk_refs(
    dir: &Path,
    prefix: &str,
    out: &mut BTreeMap<String, Checksum>,
    aliases: &mut Option<BTreeMap<String, String>>,
) -> Result<()> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        let full = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let ft = e.file_type().map_err(|err| Error::io(&e.path(), err))?;
        if ft.is_dir() {
            walk_refs(&e.path(), &full, out, aliases)?;
        } else if ft.is_symlink() {
            if let Some(a) = aliases.as_mut() {
                if let Ok(t) = std::fs::read_link(e.path()) {
                    let t = t.to_string_lossy().to_string();
                    let depth = full.matches('/').count();
                    let mut t = t.as_str();
                    for _ in 0..depth {
                        t = t.strip_prefix("../").unwrap_or(t);
                    }
                    a.insert(full.clone(), t.to_string());
                }
            }
            if let Some(c) = Repo::read_ref_file(&e.path())? {
                out.insert(full, c);
            }
        } else if let Some(c) = Repo::read_ref_file(&e.path())? {
            out.insert(full, c);
        }
    }
    Ok(())
}
