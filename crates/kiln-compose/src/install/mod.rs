//! `kiln install to-disk DEVICE|IMAGE --source REF|COMMIT` (like `bootc
//! install to-disk`): GPT with an ESP, an ext4 `/boot` and an ext4 root;
//! a sysroot with the deployment; GRUB on the ESP that boots the default
//! deployment and offers the others in a menu.
//!
//! Built for machines whose kernel can neither parse partition tables of
//! loop devices nor mount FAT: nothing is mounted. The sysroot is staged
//! in a work directory, the file systems are made *from* it
//! (`mkfs.ext4 -d` at the partition's offset), the ESP is written with
//! mtools, and partition offsets come from the GPT (`sfdisk --json`).
//!
//! Crash safety: an image is built as `IMAGE.partial` and renamed when
//! complete; on a device the old partition table is wiped first and the
//! bootloader (`EFI/BOOT/BOOTX64.EFI`) is the last thing written, so a
//! killed install never looks bootable. Fail points `install:staged`,
//! `install:after-partition`, `install:after-mkfs`, `install:before-esp`.

mod target;

use crate::error::{Error, Result};
use crate::run;
use crate::Log;
use kiln_store::{failpoint, Progress};
use kiln_sysroot::{bootcount, bootloader_grub, DeployOptions, Sysroot, SysrootOptions};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use target::{check_not_in_use, Target};

const MIB: u64 = 1024 * 1024;
/// ESP size: FAT16 holds the standalone GRUB image with room to spare.
pub const ESP_MIB: u64 = 64;
/// The smallest `/boot`: room for three kernel+initramfs pairs.
pub const BOOT_MIN_MIB: u64 = 256;

const GUID_ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
const GUID_XBOOTLDR: &str = "BC13C2FF-59E6-4262-A352-B275FD6F7172";
const GUID_ROOT_X86_64: &str = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709";

/// GRUB modules in the standalone image (loaded from its memdisk).
const GRUB_MODULES: &str = "part_gpt ext2 fat search search_fs_uuid configfile normal linux serial terminal loadenv test echo sleep gzio";

#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// A block device, or an image file.
    pub target: PathBuf,
    /// Create an image file of this many bytes (it must not exist).
    pub size: Option<u64>,
    /// Repo holding the source commit.
    pub source_repo: PathBuf,
    /// REF or COMMIT (becomes the origin: `kiln upgrade` follows a ref).
    pub source: String,
    /// Stateroot name.
    pub osname: String,
    /// Extra kernel arguments (`root=UUID=… rw` come first).
    pub kargs: Vec<String>,
    /// Where the sysroot is staged (needs the tree's size free).
    pub work_dir: PathBuf,
    /// GRUB menu timeout.
    pub timeout_secs: u32,
    /// `[kiln] boot-tries` of the installed sysroot.
    pub boot_tries: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    pub name: String,
    pub start: u64,
    pub size: u64,
    pub fs_uuid: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct InstallResult {
    pub target: PathBuf,
    pub size: u64,
    pub commit: String,
    pub deployment: String,
    pub kargs: String,
    pub partitions: Vec<Partition>,
}

fn uuid() -> Result<String> {
    let p = Path::new("/proc/sys/kernel/random/uuid");
    Ok(std::fs::read_to_string(p)
        .map_err(|e| Error::io(p, e))?
        .trim()
        .to_string())
}

fn du(path: &Path) -> Result<u64> {
    let out = run::output(Command::new("du").args(["-s", "-B1", "-x"]).arg(path))?;
    out.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| Error::Invalid(format!("cannot read the size of {}", path.display())))
}

/// Stage a sysroot in `root` with the source deployed; returns the
/// deployment's name, the commit and the kernel arguments.
fn stage(
    opts: &InstallOptions,
    root: &Path,
    root_uuid: &str,
    boot_uuid: &str,
    log: Log,
) -> Result<(String, String, String)> {
    kiln_sysroot::init_fs(root, Default::default())?;
    let grub = root.join("boot/grub");
    std::fs::create_dir_all(&grub).map_err(|e| Error::io(&grub, e))?;
    // Marks the sysroot as having kiln's GRUB: deploys write the menu.
    std::fs::write(
        root.join(bootloader_grub::STATIC_CONFIG),
        bootloader_grub::static_config(opts.timeout_secs),
    )
    .map_err(|e| Error::io(&grub, e))?;
    bootcount::create_env(root)?;
    let mut s = Sysroot::open(SysrootOptions::at(root))?;
    s.lock(|| {})?;
    s.init_osname(&opts.osname)?;
    if let Some(n) = opts.boot_tries {
        let mut cfg = s.repo().config().clone();
        cfg.set("kiln", "boot-tries", &n.to_string());
        s.repo_mut().write_config(cfg)?;
    }
    log(&format!(
        "pulling {} from {}…",
        opts.source,
        opts.source_repo.display()
    ));
    let pulled = kiln_remote::pull_local(
        s.repo(),
        &opts.source_repo,
        std::slice::from_ref(&opts.source),
        &Default::default(),
        &Progress::new(),
    )?;
    let commit = pulled
        .refs
        .first()
        .map(|r| r.commit.to_string())
        .unwrap_or_default();
    let mut karg = vec![format!("root=UUID={root_uuid}"), "rw".to_string()];
    karg.extend(opts.kargs.iter().cloned());
    let dopts = DeployOptions {
        osname: Some(opts.osname.clone()),
        karg,
        ..Default::default()
    };
    log("deploying…");
    let d = s.deploy(&opts.source, &dopts)?;
    let dpath = s.deployment_path(&d);
    let fstab = dpath.join("etc/fstab");
    let text = format!("# Written by kiln install: / is the deployment, mounted by the initramfs.\nUUID={boot_uuid} /boot ext4 defaults 0 2\n");
    std::fs::write(&fstab, text).map_err(|e| Error::io(&fstab, e))?;
    let kargs = d.options().unwrap_or("").to_string();
    Ok((d.dirname(), commit, kargs))
}

/// Install. Everything that can fail cheaply is checked before the target
/// is touched: the target is not in use, the source resolves, the staged
/// sysroot fits.
pub fn install_to_disk(opts: &InstallOptions, log: Log) -> Result<InstallResult> {
    let target = Target::open(&opts.target, opts.size)?;
    check_not_in_use(&target)?;
    for tool in [
        "sfdisk",
        "mkfs.ext4",
        "mkfs.vfat",
        "mmd",
        "mcopy",
        "grub-mkstandalone",
    ] {
        if run::output(
            Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {tool}")),
        )
        .is_err()
        {
            return Err(Error::Invalid(format!("`{tool}` is not installed (packages: fdisk e2fsprogs dosfstools mtools grub-efi-amd64-bin grub-common)")));
        }
    }
    let grub_lib = Path::new("/usr/lib/grub/x86_64-efi");
    if !grub_lib.is_dir() {
        return Err(Error::Invalid(
            "GRUB for x86_64-efi is not installed (package grub-efi-amd64-bin)".into(),
        ));
    }
    std::fs::create_dir_all(&opts.work_dir).map_err(|e| Error::io(&opts.work_dir, e))?;
    clean_stale_work(&opts.work_dir);
    let work = opts
        .work_dir
        .join(format!("kiln-install-{}", std::process::id()));
    if work.exists() {
        std::fs::remove_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    }
    std::fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;
    let r = install_in(opts, &target, &work, log);
    remove_staging(&work);
    if r.is_err() {
        target.abandon();
    }
    r
}

/// Remove a staging directory; deployment roots are immutable (as ostree
/// makes them), so the flag is cleared first.
fn remove_staging(work: &Path) {
    let deploy = work.join("root/ostree/deploy");
    if let Ok(oses) = std::fs::read_dir(&deploy) {
        for os in oses.flatten() {
            if let Ok(ds) = std::fs::read_dir(os.path().join("deploy")) {
                for d in ds.flatten() {
                    if d.path().is_dir() {
                        let _ = Command::new("chattr").arg("-i").arg(d.path()).status();
                    }
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(work);
}

fn clean_stale_work(dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("kiln-install-") {
            if !Path::new("/proc").join(pid).exists() {
                remove_staging(&e.path());
            }
        }
    }
}

fn install_in(
    opts: &InstallOptions,
    target: &Target,
    work: &Path,
    log: Log,
) -> Result<InstallResult> {
    let (root_uuid, boot_uuid) = (uuid()?, uuid()?);
    let root = work.join("root");
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    let (deployment, commit, kargs) = stage(opts, &root, &root_uuid, &boot_uuid, log)?;
    // /boot becomes its own file system.
    let bootfs = work.join("boot");
    std::fs::rename(root.join("boot"), &bootfs).map_err(|e| Error::io(&bootfs, e))?;
    std::fs::create_dir(root.join("boot")).map_err(|e| Error::io(&root, e))?;
    failpoint::hit("install:staged");

    // Sizes: room for the next deployments.
    let root_used = du(&root)?;
    let boot_used = du(&bootfs)?;
    let boot_mib = (boot_used * 3 / MIB + 16).max(BOOT_MIN_MIB);
    let root_min_mib = root_used * 3 / 2 / MIB + 128;
    let needed = (1 + ESP_MIB + boot_mib + root_min_mib + 1) * MIB;
    let size = target.size()?;
    if size < needed {
        return Err(Error::TooSmall {
            target: opts.target.clone(),
            size,
            needed,
            detail: format!("ESP {ESP_MIB} MiB, /boot {boot_mib} MiB, root at least {root_min_mib} MiB for a {} MiB tree", root_used / MIB),
        });
    }
    log(&format!(
        "partitioning {} ({} MiB): ESP {ESP_MIB} MiB, /boot {boot_mib} MiB, root {} MiB",
        opts.target.display(),
        size / MIB,
        (size / MIB).saturating_sub(2 + ESP_MIB + boot_mib)
    ));
    let path = target.write_path();
    target.wipe()?;
    let script = format!(
        "label: gpt\nsize={ESP_MIB}MiB, type={GUID_ESP}, name=\"ESP\"\nsize={boot_mib}MiB, type={GUID_XBOOTLDR}, name=\"boot\"\ntype={GUID_ROOT_X86_64}, name=\"root\"\n"
    );
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(
            "printf '%s' \"$1\" | sfdisk --quiet --no-reread --no-tell-kernel --wipe always \"$2\"",
        )
        .arg("sh")
        .arg(&script)
        .arg(path);
    run::output(&mut cmd)?;
    failpoint::hit("install:after-partition");
    let parts = target::partitions(path)?;
    let [esp, boot, rootp] = parts.as_slice() else {
        return Err(Error::Target {
            target: opts.target.clone(),
            why: format!(
                "expected 3 partitions after partitioning, found {}",
                parts.len()
            ),
        });
    };
    let esp_uuid = format!(
        "{:08X}",
        u32::from_str_radix(&root_uuid.replace('-', "")[..8], 16).unwrap_or(0x4b494c4e)
    );
    let esp_serial = format!("{}-{}", &esp_uuid[..4], &esp_uuid[4..]);
    // ext4 features GRUB 2.06 reads: no orphan_file / csum seed.
    let mkext4 = |label: &str, uuid: &str, dir: &Path, start: u64, len: u64| -> Result<()> {
        log(&format!(
            "making ext4 {label} ({} MiB) from the staged tree…",
            len / MIB
        ));
        run::output(
            Command::new("mkfs.ext4")
                .args([
                    "-q",
                    "-F",
                    "-L",
                    label,
                    "-U",
                    uuid,
                    "-O",
                    "^orphan_file,^metadata_csum_seed",
                    "-E",
                ])
                .arg(format!("offset={start}"))
                .arg("-d")
                .arg(dir)
                .arg(path)
                .arg(format!("{}k", len / 1024)),
        )
        .map(|_| ())
    };
    mkext4("kiln-boot", &boot_uuid, &bootfs, boot.0, boot.1)?;
    mkext4("kiln-root", &root_uuid, &root, rootp.0, rootp.1)?;
    failpoint::hit("install:after-mkfs");
    // The ESP last: a standalone GRUB that finds /boot by UUID.
    let embedded = work.join("embedded-grub.cfg");
    std::fs::write(&embedded, bootloader_grub::embedded_config(&boot_uuid))
        .map_err(|e| Error::io(&embedded, e))?;
    let efi = work.join("BOOTX64.EFI");
    log("making the ESP with a standalone GRUB…");
    run::output(
        Command::new("grub-mkstandalone")
            .args(["-O", "x86_64-efi", "--locales=", "--fonts=", "--themes="])
            .arg(format!("--install-modules={GRUB_MODULES}"))
            .arg(format!("--modules={GRUB_MODULES}"))
            .arg("-o")
            .arg(&efi)
            .arg(format!("boot/grub/grub.cfg={}", embedded.display())),
    )?;
    run::output(
        Command::new("mkfs.vfat")
            .args(["-F", "32", "-s", "1"])
            .arg("-n")
            .arg("ESP")
            .arg("-i")
            .arg(&esp_uuid)
            .arg(format!("--offset={}", esp.0 / 512))
            .arg(path)
            .arg((esp.1 / 1024).to_string()),
    )?;
    let img = format!("{}@@{}", path.display(), esp.0);
    run::output(
        Command::new("mmd")
            .arg("-i")
            .arg(&img)
            .args(["::/EFI", "::/EFI/BOOT"]),
    )?;
    failpoint::hit("install:before-esp");
    run::output(
        Command::new("mcopy")
            .arg("-i")
            .arg(&img)
            .arg(&efi)
            .arg("::/EFI/BOOT/BOOTX64.EFI"),
    )?;
    target.finish()?;
    Ok(InstallResult {
        target: opts.target.clone(),
        size,
        commit,
        deployment,
        kargs,
        partitions: vec![
            Partition {
                name: "ESP".into(),
                start: esp.0,
                size: esp.1,
                fs_uuid: esp_serial,
            },
            Partition {
                name: "boot".into(),
                start: boot.0,
                size: boot.1,
                fs_uuid: boot_uuid,
            },
            Partition {
                name: "root".into(),
                start: rootp.0,
                size: rootp.1,
                fs_uuid: root_uuid,
            },
        ],
    })
}
