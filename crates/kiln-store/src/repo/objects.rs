//! Loose objects: existence, metadata objects, listing, deletion.

use super::Repo;
use crate::checksum::Checksum;
use crate::error::{Error, Result};
use crate::gvariant::VarDict;
use crate::object::{self, Commit, DirMeta, DirTree, ObjectType};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// One object found in `objects/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectInfo {
    pub csum: Checksum,
    pub ty: ObjectType,
}

impl Repo {
    /// Whether the object exists locally.
    pub fn has_object(&self, csum: &Checksum, ty: ObjectType) -> bool {
        // One lstat-like call; symlink objects (bare mode) count too.
        rustix::fs::statat(
            rustix::fs::CWD,
            self.object_path(csum, ty),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .is_ok()
    }

    /// Read a metadata object and verify its checksum.
    pub fn read_meta(&self, csum: &Checksum, ty: ObjectType) -> Result<Vec<u8>> {
        let path = self.object_path(csum, ty);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::MissingObject { csum: *csum, ty });
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        if ty != ObjectType::CommitMeta {
            let actual = Checksum::of(&data);
            if actual != *csum {
                return Err(Error::corrupt(
                    *csum,
                    ty,
                    format!(
                        "Corrupted {} object; checksum expected='{csum}' actual='{actual}'",
                        ty.ext()
                    ),
                ));
            }
        }
        Ok(data)
    }

    pub fn read_commit(&self, csum: &Checksum) -> Result<Commit> {
        let data = self.read_meta(csum, ObjectType::Commit)?;
        Commit::from_bytes(&data)
            .map_err(|e| Error::corrupt(*csum, ObjectType::Commit, e.to_string()))
    }

    pub fn read_dirtree(&self, csum: &Checksum) -> Result<DirTree> {
        let data = self.read_meta(csum, ObjectType::DirTree)?;
        DirTree::from_bytes(&data)
            .map_err(|e| Error::corrupt(*csum, ObjectType::DirTree, e.to_string()))
    }

    pub fn read_dirmeta(&self, csum: &Checksum) -> Result<DirMeta> {
        let data = self.read_meta(csum, ObjectType::DirMeta)?;
        DirMeta::from_bytes(&data)
            .map_err(|e| Error::corrupt(*csum, ObjectType::DirMeta, e.to_string()))
    }

    /// Detached metadata of a commit (signatures etc.), if any.
    pub fn read_commit_detached_metadata(&self, csum: &Checksum) -> Result<Option<VarDict>> {
        let path = self.object_path(csum, ObjectType::CommitMeta);
        match std::fs::read(&path) {
            Ok(d) => Ok(Some(object::decode_vardict(&d).map_err(|e| {
                Error::corrupt(*csum, ObjectType::CommitMeta, e.to_string())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Replace (or remove, with `None`) a commit's detached metadata.
    pub fn write_commit_detached_metadata(
        &self,
        csum: &Checksum,
        md: Option<&VarDict>,
    ) -> Result<()> {
        let path = self.object_path(csum, ObjectType::CommitMeta);
        match md {
            None => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&path, e)),
                _ => Ok(()),
            },
            Some(md) => {
                self.ensure_object_dir(csum)?;
                crate::util::write_file_atomic(&path, &object::encode_vardict(md), 0o644)
            }
        }
    }

    /// Write a metadata object (computing its checksum); a no-op if present.
    pub fn write_meta(&self, ty: ObjectType, data: &[u8]) -> Result<Checksum> {
        let csum = Checksum::of(data);
        self.write_meta_trusted(ty, &csum, data)?;
        Ok(csum)
    }

    /// Write a metadata object whose checksum the caller has verified.
    pub fn write_meta_trusted(&self, ty: ObjectType, csum: &Checksum, data: &[u8]) -> Result<()> {
        if self.has_object(csum, ty) {
            return Ok(());
        }
        self.reserve_space(data.len() as u64 + 4096)?;
        let tmp = self.tmp_dir().join(crate::util::tmp_name("obj-"));
        let res = (|| -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&tmp)?;
            f.write_all(data)?;
            if self.mode.is_bare() {
                set_mtime_zero(&f)?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::io(&tmp, e));
        }
        self.install_tmp(&tmp, csum, ty)
    }

    /// Move a finished temporary file into `objects/`.
    pub(crate) fn install_tmp(&self, tmp: &Path, csum: &Checksum, ty: ObjectType) -> Result<()> {
        self.ensure_object_dir(csum)?;
        let dest = self.object_path(csum, ty);
        crate::failpoint::hit("object:before-rename");
        if let Err(e) = std::fs::rename(tmp, &dest) {
            let _ = std::fs::remove_file(tmp);
            return Err(Error::io(&dest, e));
        }
        Ok(())
    }

    pub(crate) fn ensure_object_dir(&self, csum: &Checksum) -> Result<()> {
        use std::sync::atomic::Ordering;
        let idx = csum.0[0] as usize;
        let bit = 1u64 << (idx % 64);
        if self.object_dirs[idx / 64].load(Ordering::Relaxed) & bit != 0 {
            return Ok(());
        }
        let dir = self.path().join("objects").join(&csum.to_hex()[..2]);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(&dir, e)),
        }
        self.object_dirs[idx / 64].fetch_or(bit, Ordering::Relaxed);
        Ok(())
    }

    /// Every loose object in the repo.
    pub fn list_objects(&self) -> Result<Vec<ObjectInfo>> {
        let objdir = self.path().join("objects");
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&objdir).map_err(|e| Error::io(&objdir, e))?;
        for d in rd {
            let d = d.map_err(|e| Error::io(&objdir, e))?;
            let prefix = d.file_name();
            let Some(prefix) = prefix.to_str().filter(|p| p.len() == 2) else {
                continue;
            };
            let sub = d.path();
            let Ok(rd2) = std::fs::read_dir(&sub) else {
                continue;
            };
            for f in rd2 {
                let f = f.map_err(|e| Error::io(&sub, e))?;
                let name = f.file_name();
                let Some(name) = name.to_str() else { continue };
                let Some((rest, ext)) = name.split_once('.') else {
                    continue;
                };
                let hexs = format!("{prefix}{rest}");
                let (Ok(csum), Some(ty)) = (hexs.parse::<Checksum>(), ObjectType::from_ext(ext))
                else {
                    continue;
                };
                if ty == ObjectType::File && ext != self.mode().file_ext() {
                    continue;
                }
                out.push(ObjectInfo { csum, ty });
            }
        }
        out.sort();
        Ok(out)
    }

    /// Size on disk of an object (for prune's "freed" figure).
    pub fn object_disk_size(&self, csum: &Checksum, ty: ObjectType) -> u64 {
        std::fs::symlink_metadata(self.object_path(csum, ty))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    pub fn delete_object(&self, csum: &Checksum, ty: ObjectType) -> Result<()> {
        let p = self.object_path(csum, ty);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&p, e)),
        }
    }
}

pub(crate) fn set_mtime_zero(f: &std::fs::File) -> std::io::Result<()> {
    use rustix::fs::{Timespec, Timestamps};
    let ts = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
    };
    rustix::fs::futimens(f, &ts).map_err(std::io::Error::from)
}
