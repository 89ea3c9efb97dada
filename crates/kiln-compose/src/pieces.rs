//! The boot pieces kiln puts into every composed tree: itself
//! (`/usr/bin/kiln`), `kiln-prepare-root` with its initramfs-tools hook and
//! dracut module, the unit that ends a boot-counter trial, the units that
//! finalize a staged deployment at shutdown, and the helper
//! that lets `ostree admin` write kiln's GRUB menu.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const INITRAMFS_HOOK: &str = include_str!("../../kiln-prepare-root/initramfs-tools/hook");
pub const INITRAMFS_SCRIPT: &str =
    include_str!("../../kiln-prepare-root/initramfs-tools/init-bottom");
pub const DRACUT_SETUP: &str =
    include_str!("../../kiln-prepare-root/dracut/50kiln/module-setup.sh");
pub const DRACUT_SERVICE: &str =
    include_str!("../../kiln-prepare-root/dracut/50kiln/kiln-prepare-root.service");
pub const BOOT_COMPLETE_UNIT: &str = include_str!("../data/kiln-boot-complete.service");
pub const GRUB2_OSTREE_EXEC: &str = include_str!("../data/grub2-ostree-exec");
/// The units that finish a staged deployment at shutdown (`systemd/` at
/// the workspace root): the `.path` unit starts the service once
/// `/run/ostree/staged-deployment` appears, its ExecStop finalizes.
pub const FINALIZE_UNITS: &[(&str, &str)] = &[
    (
        "kiln-finalize-staged.path",
        include_str!("../../../systemd/kiln-finalize-staged.path"),
    ),
    (
        "kiln-finalize-staged.service",
        include_str!("../../../systemd/kiln-finalize-staged.service"),
    ),
    (
        "kiln-finalize-staged-hold.service",
        include_str!("../../../systemd/kiln-finalize-staged-hold.service"),
    ),
];

/// Units kiln enables in every tree.
pub const UNITS: &[&str] = &["kiln-boot-complete.service", "kiln-finalize-staged.path"];

/// Where the two binaries come from (the CLI finds them).
#[derive(Debug, Clone)]
pub struct BootPieces {
    pub kiln: PathBuf,
    pub prepare_root: PathBuf,
}

fn put(root: &Path, rel: &str, data: &[u8], mode: u32) -> Result<()> {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    // Never write through an existing file: it may be a hardlink shared
    // with a cache or a repo object.
    match std::fs::remove_file(&p) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(&p, e)),
    }
    std::fs::write(&p, data).map_err(|e| Error::io(&p, e))?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(&p, e))
}

/// Copy a binary without its debug info (a debug build of kiln is mostly
/// DWARF); a plain copy when `objcopy` is missing.
fn put_binary(root: &Path, rel: &str, src: &Path) -> Result<()> {
    let p = root.join(rel);
    put(root, rel, b"", 0o755)?;
    let stripped = std::process::Command::new("objcopy")
        .arg("--strip-debug")
        .arg(src)
        .arg(&p)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        put(root, rel, &read(src)?, 0o755)?;
    }
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io(&p, e))
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| Error::io(p, e))
}

impl BootPieces {
    /// Check the binaries exist (before anything is built).
    pub fn check(&self) -> Result<()> {
        for p in [&self.kiln, &self.prepare_root] {
            if !p.is_file() {
                return Err(Error::Invalid(format!(
                    "{} not found (build it first; see docs/boot.md)",
                    p.display()
                )));
            }
        }
        Ok(())
    }

    /// Content hash of what goes into the initramfs.
    pub fn initramfs_hash(&self) -> Result<String> {
        let mut h = Sha256::new();
        h.update(read(&self.prepare_root)?);
        h.update(INITRAMFS_HOOK);
        h.update(INITRAMFS_SCRIPT);
        Ok(hex::encode(h.finalize()))
    }

    /// Install the initramfs parts only (before building the initramfs).
    pub fn install_initramfs_parts(&self, root: &Path) -> Result<()> {
        put(
            root,
            "usr/lib/kiln/kiln-prepare-root",
            &read(&self.prepare_root)?,
            0o755,
        )?;
        put(
            root,
            "usr/share/initramfs-tools/hooks/kiln",
            INITRAMFS_HOOK.as_bytes(),
            0o755,
        )?;
        put(
            root,
            "usr/share/initramfs-tools/scripts/init-bottom/kiln",
            INITRAMFS_SCRIPT.as_bytes(),
            0o755,
        )?;
        put(
            root,
            "usr/lib/dracut/modules.d/50kiln/module-setup.sh",
            DRACUT_SETUP.as_bytes(),
            0o755,
        )?;
        put(
            root,
            "usr/lib/dracut/modules.d/50kiln/kiln-prepare-root.service",
            DRACUT_SERVICE.as_bytes(),
            0o644,
        )
    }

    /// Install everything into a root file system (still with `/etc`).
    pub fn install(&self, root: &Path) -> Result<()> {
        self.install_initramfs_parts(root)?;
        put_binary(root, "usr/bin/kiln", &self.kiln)?;
        put(
            root,
            "usr/lib/systemd/system/kiln-boot-complete.service",
            BOOT_COMPLETE_UNIT.as_bytes(),
            0o644,
        )?;
        for (name, text) in FINALIZE_UNITS {
            put(
                root,
                &format!("usr/lib/systemd/system/{name}"),
                text.as_bytes(),
                0o644,
            )?;
        }
        put(
            root,
            "usr/lib/kiln/grub2-ostree-exec",
            GRUB2_OSTREE_EXEC.as_bytes(),
            0o755,
        )
    }
}
