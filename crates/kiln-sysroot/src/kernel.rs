//! Finding the kernel, initramfs and devicetree in a deployment where ostree
//! looks (`usr/lib/modules/KVER/vmlinuz`, then the legacy `usr/lib/ostree-boot`
//! and `boot` names with a checksum suffix), the boot checksum, and
//! installing them into `/boot/ostree/OS-BOOTCSUM/` (hardlink, else copy).

use crate::error::{Error, Result};
use kiln_store::checksum::Hasher;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What goes into `/boot`: source paths in the deployment, names in
/// the boot dir, and the boot checksum.
#[derive(Debug, Clone, Default)]
pub struct KernelLayout {
    pub src_dir: PathBuf,
    pub kernel_src: String,
    pub kernel_namever: String,
    pub initramfs_src: Option<String>,
    pub initramfs_namever: Option<String>,
    pub devicetree_src: Option<String>,
    /// `None` with a `devicetree_src` means a whole `dtb/` directory.
    pub devicetree_namever: Option<String>,
    pub hmac_src: Option<String>,
    pub hmac_namever: Option<String>,
    pub bootcsum: String,
}

impl KernelLayout {
    /// Files to install: (source name, name in the boot dir).
    pub fn files(&self) -> Vec<(String, String)> {
        let mut v = vec![(self.kernel_src.clone(), self.kernel_namever.clone())];
        if let (Some(s), Some(n)) = (&self.initramfs_src, &self.initramfs_namever) {
            v.push((s.clone(), n.clone()));
        }
        if let (Some(s), Some(n)) = (&self.devicetree_src, &self.devicetree_namever) {
            v.push((s.clone(), n.clone()));
        }
        if let (Some(s), Some(n)) = (&self.hmac_src, &self.hmac_namever) {
            v.push((s.clone(), n.clone()));
        }
        v
    }

    /// Bytes the boot dir will hold.
    pub fn size(&self) -> u64 {
        let mut n: u64 = self
            .files()
            .iter()
            .map(|(s, _)| {
                std::fs::metadata(self.src_dir.join(s))
                    .map(|m| m.len())
                    .unwrap_or(0)
            })
            .sum();
        if let (Some(d), None) = (&self.devicetree_src, &self.devicetree_namever) {
            n += crate::fsutil::disk_usage(&self.src_dir.join(d), &mut Default::default()).0;
        }
        n
    }
}

fn hash_file(h: &mut Hasher, path: &Path) -> Result<()> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf[..n]);
    }
}

fn hash_dir(h: &mut Hasher, dir: &Path) -> Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for n in names {
        let p = dir.join(&n);
        let st = std::fs::symlink_metadata(&p).map_err(|e| Error::io(&p, e))?;
        if st.is_dir() {
            hash_dir(h, &p)?;
        } else if st.is_file() {
            hash_file(h, &p)?;
        }
    }
    Ok(())
}

fn is_file(p: &Path) -> bool {
    std::fs::metadata(p).map(|m| m.is_file()).unwrap_or(false)
}

fn from_usr_lib_modules(root: &Path, hash: bool) -> Result<Option<KernelLayout>> {
    let modules = root.join("usr/lib/modules");
    let rd = match std::fs::read_dir(&modules) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&modules, e)),
    };
    let mut kvers: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    kvers.sort();
    let Some(kver) = kvers
        .into_iter()
        .find(|k| is_file(&modules.join(k).join("vmlinuz")))
    else {
        return Ok(None);
    };
    let dir = modules.join(&kver);
    let mut h = Hasher::new();
    let hash_file = |h: &mut Hasher, p: &Path| if hash { hash_file(h, p) } else { Ok(()) };
    hash_file(&mut h, &dir.join("vmlinuz"))?;
    let mut l = KernelLayout {
        src_dir: dir.clone(),
        kernel_src: "vmlinuz".into(),
        kernel_namever: format!("vmlinuz-{kver}"),
        ..Default::default()
    };
    if let Some(i) = ["initramfs.img", "initramfs"]
        .into_iter()
        .find(|i| dir.join(i).exists())
    {
        hash_file(&mut h, &dir.join(i))?;
        l.initramfs_src = Some(i.to_string());
        l.initramfs_namever = Some(format!("initramfs-{kver}.img"));
    }
    if dir.join("devicetree").exists() {
        hash_file(&mut h, &dir.join("devicetree"))?;
        l.devicetree_src = Some("devicetree".into());
        l.devicetree_namever = Some(format!("devicetree-{kver}"));
    } else if dir.join("dtb").is_dir() {
        if hash {
            hash_dir(&mut h, &dir.join("dtb"))?;
        }
        l.devicetree_src = Some("dtb".into());
    }
    if dir.join(".vmlinuz.hmac").exists() {
        l.hmac_src = Some(".vmlinuz.hmac".into());
        l.hmac_namever = Some(format!(".{}.hmac", l.kernel_namever));
    }
    l.bootcsum = h.finish().to_hex();
    Ok(Some(l))
}

fn from_legacy(root: &Path) -> Result<Option<KernelLayout>> {
    let Some(dir) = ["usr/lib/ostree-boot", "boot"]
        .iter()
        .map(|p| root.join(p))
        .find(|p| p.is_dir())
    else {
        return Ok(None);
    };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let split = |name: &str, prefix: &str| -> Option<(String, String)> {
        if !name.starts_with(prefix) {
            return None;
        }
        let (head, csum) = name.rsplit_once('-')?;
        (csum.len() == 64 && csum.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| (head.to_string(), csum.to_string()))
    };
    let mut l = KernelLayout {
        src_dir: dir.clone(),
        ..Default::default()
    };
    let (mut kcsum, mut icsum, mut dcsum) = (None, None, None);
    for n in &names {
        if kcsum.is_none() {
            if let Some((head, c)) = split(n, "vmlinuz-") {
                l.kernel_src = n.clone();
                l.kernel_namever = head;
                kcsum = Some(c);
                continue;
            }
        }
        if icsum.is_none() {
            if let Some((head, c)) = split(n, "initramfs-") {
                l.initramfs_src = Some(n.clone());
                l.initramfs_namever = Some(head);
                icsum = Some(c);
                continue;
            }
        }
        if dcsum.is_none() {
            if let Some((head, c)) = split(n, "devicetree-") {
                l.devicetree_src = Some(n.clone());
                l.devicetree_namever = Some(head);
                dcsum = Some(c);
            }
        }
    }
    let Some(k) = kcsum else { return Ok(None) };
    if icsum.as_ref().is_some_and(|c| *c != k) {
        return Err(Error::invalid("Mismatched kernel checksum vs initrd"));
    }
    if dcsum.as_ref().is_some_and(|c| *c != k) {
        return Err(Error::invalid(
            "Mismatched kernel checksum vs device tree in tree",
        ));
    }
    l.bootcsum = k;
    Ok(Some(l))
}

/// Find the kernel of the tree at `root`, preferring `usr/lib/modules`
/// unless only the legacy layout has an initramfs (ostree's rule).
pub fn find_kernel(root: &Path) -> Result<KernelLayout> {
    find(root, true)
}

/// Like [`find_kernel`] without computing the boot checksum (which the
/// deployment already records).
pub fn find_kernel_files(root: &Path) -> Result<KernelLayout> {
    find(root, false)
}

fn find(root: &Path, hash: bool) -> Result<KernelLayout> {
    let modules = from_usr_lib_modules(root, hash)?;
    let legacy = from_legacy(root)?;
    match (modules, legacy) {
        (None, None) => Err(Error::NoKernel {
            deployment: root.to_path_buf(),
        }),
        (Some(m), Some(l)) if m.initramfs_src.is_none() && l.initramfs_src.is_some() => Ok(l),
        (Some(m), _) => Ok(m),
        (None, Some(l)) => Ok(l),
    }
}

/// Hardlink `src` to `dest`, or copy it (owner and mode kept) when they are
/// on different file systems. An existing `dest` is left alone.
pub fn install_into_boot(src: &Path, dest: &Path) -> Result<()> {
    if std::fs::symlink_metadata(dest).is_ok() {
        return Ok(());
    }
    match std::fs::hard_link(src, dest) {
        Ok(()) => return Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EXDEV) | Some(libc::EMLINK)) => {}
        Err(e) => return Err(Error::io(dest, e)),
    }
    let st = std::fs::metadata(src).map_err(|e| Error::io(src, e))?;
    let dir = dest.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(kiln_store::util::tmp_name(".tmp-kernel-"));
    let res = (|| -> Result<()> {
        let mut input = std::fs::File::open(src).map_err(|e| Error::io(src, e))?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        std::io::copy(&mut input, &mut out).map_err(|e| Error::io(dest, e))?;
        rustix::fs::fchown(
            &out,
            Some(rustix::fs::Uid::from_raw(st.uid())),
            Some(rustix::fs::Gid::from_raw(st.gid())),
        )
        .map_err(|e| Error::rio(&tmp, e))?;
        rustix::fs::fchmod(&out, rustix::fs::Mode::from_raw_mode(st.mode() & 0o7777))
            .map_err(|e| Error::rio(&tmp, e))?;
        out.sync_data().map_err(|e| Error::io(&tmp, e))?;
        std::fs::hard_link(&tmp, dest).map_err(|e| Error::io(dest, e))?;
        Ok(())
    })();
    let _ = std::fs::remove_file(&tmp);
    res
}
