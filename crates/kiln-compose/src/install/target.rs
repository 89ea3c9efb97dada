//! The install target: a block device, an existing image file, or a new
//! image (`--size`, written as `IMAGE.partial` and renamed when done).

use crate::error::{Error, Result};
use crate::run;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug)]
enum Kind {
    Device,
    Image,
    NewImage { partial: PathBuf },
}

#[derive(Debug)]
pub struct Target {
    path: PathBuf,
    kind: Kind,
}

fn terr(path: &Path, why: impl Into<String>) -> Error {
    Error::Target {
        target: path.to_path_buf(),
        why: why.into(),
    }
}

impl Target {
    pub fn open(path: &Path, size: Option<u64>) -> Result<Target> {
        let meta = std::fs::metadata(path);
        if let Some(size) = size {
            if meta.is_ok() {
                return Err(terr(path, "exists; --size creates a new image (remove it first, or leave out --size to install onto it)"));
            }
            if size < 16 * 1024 * 1024 {
                return Err(terr(path, format!("--size {size} bytes is far too small")));
            }
            let mut name = path
                .file_name()
                .ok_or_else(|| terr(path, "not a file name"))?
                .to_os_string();
            name.push(".partial");
            let partial = path.with_file_name(name);
            let f = std::fs::File::create(&partial).map_err(|e| Error::io(&partial, e))?;
            f.set_len(size).map_err(|e| Error::io(&partial, e))?;
            return Ok(Target {
                path: path.to_path_buf(),
                kind: Kind::NewImage { partial },
            });
        }
        let meta = meta.map_err(|e| Error::io(path, e))?;
        if meta.file_type().is_block_device() {
            Ok(Target {
                path: path.to_path_buf(),
                kind: Kind::Device,
            })
        } else if meta.file_type().is_file() {
            Ok(Target {
                path: path.to_path_buf(),
                kind: Kind::Image,
            })
        } else {
            Err(terr(path, "neither a block device nor an image file"))
        }
    }

    /// What to write to.
    pub fn write_path(&self) -> &Path {
        match &self.kind {
            Kind::NewImage { partial } => partial,
            _ => &self.path,
        }
    }

    pub fn size(&self) -> Result<u64> {
        let p = self.write_path();
        match self.kind {
            Kind::Device => {
                use std::io::Seek;
                let mut f = std::fs::File::open(p).map_err(|e| Error::io(p, e))?;
                f.seek(std::io::SeekFrom::End(0))
                    .map_err(|e| Error::io(p, e))
            }
            _ => Ok(std::fs::metadata(p).map_err(|e| Error::io(p, e))?.len()),
        }
    }

    /// Zero the first and last MiB (old partition tables and file system
    /// signatures), so a half-written target is not taken for an old one.
    pub fn wipe(&self) -> Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        let p = self.write_path();
        let size = self.size()?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .map_err(|e| Error::io(p, e))?;
        let zero = vec![0u8; 1024 * 1024];
        for off in [0, size.saturating_sub(zero.len() as u64)] {
            f.seek(SeekFrom::Start(off)).map_err(|e| Error::io(p, e))?;
            f.write_all(&zero[..zero.len().min(size as usize)])
                .map_err(|e| Error::io(p, e))?;
        }
        f.sync_all().map_err(|e| Error::io(p, e))
    }

    /// Flush, and give a new image its final name.
    pub fn finish(&self) -> Result<()> {
        let p = self.write_path();
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .map_err(|e| Error::io(p, e))?;
        f.sync_all().map_err(|e| Error::io(p, e))?;
        if let Kind::NewImage { partial } = &self.kind {
            std::fs::rename(partial, &self.path).map_err(|e| Error::io(&self.path, e))?;
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Ok(d) = std::fs::File::open(dir) {
                    let _ = d.sync_all();
                }
            }
        }
        Ok(())
    }

    /// After a failure: a new image is removed (nothing half-made stays).
    pub fn abandon(&self) {
        if let Kind::NewImage { partial } = &self.kind {
            let _ = std::fs::remove_file(partial);
        }
    }

    pub fn is_device(&self) -> bool {
        matches!(self.kind, Kind::Device)
    }
}

fn dev_of(sysdir: &Path) -> Option<String> {
    std::fs::read_to_string(sysdir.join("dev"))
        .ok()
        .map(|s| s.trim().to_string())
}

/// Refuse a target that is mounted, held (LVM, RAID, dm) or attached to a
/// loop device.
pub fn check_not_in_use(t: &Target) -> Result<()> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mounted_devs: Vec<(&str, &str)> = mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Some((*f.get(2)?, *f.get(4)?))
        })
        .collect();
    if t.is_device() {
        let canon = std::fs::canonicalize(&t.path).map_err(|e| Error::io(&t.path, e))?;
        let name = canon
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let sys = Path::new("/sys/class/block").join(&name);
        let mut devs = vec![(name.clone(), dev_of(&sys))];
        if let Ok(rd) = std::fs::read_dir(&sys) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with(&name) {
                    devs.push((n, dev_of(&e.path())));
                }
            }
        }
        for (n, dev) in &devs {
            if let Some(dev) = dev {
                if let Some((_, mp)) = mounted_devs.iter().find(|(d, _)| d == dev) {
                    return Err(terr(
                        &t.path,
                        format!("/dev/{n} is mounted on {mp}; unmount it first"),
                    ));
                }
            }
            let holders = Path::new("/sys/class/block").join(n).join("holders");
            if std::fs::read_dir(&holders)
                .map(|mut r| r.next().is_some())
                .unwrap_or(false)
            {
                return Err(terr(
                    &t.path,
                    format!(
                        "/dev/{n} is in use (held by device-mapper, RAID or LVM: see {})",
                        holders.display()
                    ),
                ));
            }
        }
        let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
        if let Some(l) = swaps.lines().skip(1).find(|l| {
            devs.iter()
                .any(|(n, _)| l.split_whitespace().next() == Some(&format!("/dev/{n}")))
        }) {
            return Err(terr(&t.path, format!("in use as swap: {l}")));
        }
        // The kernel's own answer: O_EXCL on a block device fails with
        // EBUSY while anything has it mounted or claimed.
        let r = rustix::fs::open(
            &canon,
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::EXCL | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        );
        if let Err(e) = r {
            return Err(terr(
                &t.path,
                format!("cannot open it exclusively ({e}): it is in use"),
            ));
        }
    } else if matches!(t.kind, Kind::Image) {
        let canon = std::fs::canonicalize(&t.path).map_err(|e| Error::io(&t.path, e))?;
        let meta = std::fs::metadata(&canon).map_err(|e| Error::io(&canon, e))?;
        if let Ok(rd) = std::fs::read_dir("/sys/block") {
            for e in rd.flatten() {
                let bf = e.path().join("loop/backing_file");
                if let Ok(b) = std::fs::read_to_string(&bf) {
                    let b = b.trim().trim_end_matches(" (deleted)");
                    let same = std::fs::metadata(b)
                        .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
                    if same {
                        return Err(terr(
                            &t.path,
                            format!(
                                "attached to /dev/{} (losetup -d it first)",
                                e.file_name().to_string_lossy()
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// (start, size) in bytes of each partition, from the GPT.
pub fn partitions(path: &Path) -> Result<Vec<(u64, u64)>> {
    let out = run::output(Command::new("sfdisk").arg("--json").arg(path))?;
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| terr(path, format!("sfdisk --json: {e}")))?;
    let pt = &v["partitiontable"];
    let ss = pt["sectorsize"].as_u64().unwrap_or(512);
    let mut parts = Vec::new();
    for p in pt["partitions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let (Some(start), Some(size)) = (p["start"].as_u64(), p["size"].as_u64()) else {
            continue;
        };
        parts.push((start * ss, size * ss));
    }
    Ok(parts)
}
