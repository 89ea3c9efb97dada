//! The VM test harness: real qemu (KVM when it can run the guest, else
//! TCG), OVMF, the image `kiln install to-disk` made. Waits on markers on
//! the serial console with deadlines; keeps each boot's serial log under
//! `target/vm-artifacts/` and prints its tail when a step fails.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// Where composed root file systems and initramfs images are cached
/// between runs (keyed by the manifest's package inputs).
pub const CACHE: &str = "/var/cache/kiln-tests/compose";

pub fn kiln_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiln"))
}

/// Why the VM tests cannot run here, if they cannot.
pub fn missing_prerequisites() -> Option<String> {
    if std::env::var("KILN_VM_TESTS").as_deref() == Ok("0") {
        return Some("KILN_VM_TESTS=0".into());
    }
    if !rustix::process::geteuid().is_root() {
        return Some("not root".into());
    }
    for tool in [
        "qemu-system-x86_64",
        "mmdebstrap",
        "sfdisk",
        "mkfs.ext4",
        "mkfs.vfat",
        "mcopy",
        "grub-mkstandalone",
        "ostree",
        "unshare",
    ] {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}"))
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Some(format!("{tool} is not installed (see docs/boot.md)"));
        }
    }
    for f in [OVMF_CODE, OVMF_VARS] {
        if !Path::new(f).exists() {
            return Some(format!("{f} missing (package ovmf)"));
        }
    }
    None
}

/// Run a command; panic with its output when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let desc = format!("{cmd:?}");
    let t = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {desc}: {e}"));
    if !out.status.success() {
        panic!(
            "{desc} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    eprintln!(
        "[vm] {:>6.1}s  {}",
        t.elapsed().as_secs_f64(),
        desc.chars().take(160).collect::<String>()
    );
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// kiln-prepare-root built static (`crt-static`), in its own target
/// triple directory so the workspace build is not disturbed.
pub fn static_prepare_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo)
        .current_dir(root)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "kiln-prepare-root",
            "--target",
            "x86_64-unknown-linux-gnu",
        ]));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let p = target.join("x86_64-unknown-linux-gnu/release/kiln-prepare-root");
    assert!(p.is_file(), "{} was not built", p.display());
    p
}

/// Directory for serial logs kept as artifacts.
pub fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let d = target.join("vm-artifacts");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// KVM when it can boot the guest kernel (probed once: the kernel must
/// print its banner within seconds), else TCG. `KILN_VM_ACCEL` overrides.
pub fn accel(kernel: &Path) -> &'static str {
    static ACCEL: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    ACCEL.get_or_init(|| {
        match std::env::var("KILN_VM_ACCEL").as_deref() {
            Ok("kvm") => return "kvm",
            Ok("tcg") => return "tcg",
            _ => {}
        }
        if !Path::new("/dev/kvm").exists() {
            return "tcg";
        }
        let log = std::env::temp_dir().join(format!("kiln-kvm-probe-{}.log", std::process::id()));
        let child = Command::new("qemu-system-x86_64")
            .args([
                "-accel",
                "kvm",
                "-cpu",
                "host",
                "-machine",
                "q35",
                "-m",
                "512",
                "-display",
                "none",
                "-nodefaults",
                "-no-reboot",
            ])
            .arg("-kernel")
            .arg(kernel)
            .args(["-append", "console=ttyS0 panic=-1"])
            .arg("-serial")
            .arg(format!("file:{}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return "tcg" };
        let mut vm = Vm {
            child,
            log: log.clone(),
            name: "kvm-probe".into(),
        };
        let ok = vm
            .wait_for("Linux version", Duration::from_secs(15))
            .is_ok();
        vm.kill();
        let _ = std::fs::remove_file(&log);
        if ok {
            "kvm"
        } else {
            "tcg"
        }
    })
}

pub struct Vm {
    child: Child,
    pub log: PathBuf,
    pub name: String,
}

/// Boot `disk` under OVMF. `reboots`: let the guest reboot itself (boot
/// counting); otherwise a reboot ends qemu.
pub fn boot(name: &str, disk: &Path, vars: &Path, accel: &str, reboots: bool, dir: &Path) -> Vm {
    let log = dir.join(format!("{name}.serial.log"));
    let _ = std::fs::remove_file(&log);
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args([
        "-machine",
        "q35",
        "-m",
        "1024",
        "-smp",
        "2",
        "-display",
        "none",
        "-nodefaults",
        "-nic",
        "none",
    ]);
    cmd.args(["-accel", accel]);
    if accel == "kvm" {
        cmd.args(["-cpu", "host"]);
    }
    if !reboots {
        cmd.arg("-no-reboot");
    }
    cmd.arg("-drive")
        .arg(format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"));
    cmd.arg("-drive")
        .arg(format!("if=pflash,format=raw,file={}", vars.display()));
    cmd.arg("-drive")
        .arg(format!("file={},format=raw,if=virtio", disk.display()));
    cmd.arg("-serial").arg(format!("file:{}", log.display()));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("starting qemu");
    eprintln!(
        "[vm] boot {name} ({accel}{})",
        if reboots { ", reboots allowed" } else { "" }
    );
    Vm {
        child,
        log,
        name: name.into(),
    }
}

impl Vm {
    pub fn serial(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).replace('\r', "")
    }

    /// Wait until the serial console shows `marker`; Err(log tail) when
    /// the deadline passes or qemu exits first.
    pub fn wait_for(&mut self, marker: &str, deadline: Duration) -> Result<(), String> {
        self.wait_for_count(marker, 1, deadline)
    }

    pub fn wait_for_count(
        &mut self,
        marker: &str,
        count: usize,
        deadline: Duration,
    ) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let s = self.serial();
            if s.matches(marker).count() >= count {
                eprintln!(
                    "[vm] {}: saw {marker:?} x{count} after {:.0}s",
                    self.name,
                    start.elapsed().as_secs_f64()
                );
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // One more look: the last lines may have landed meanwhile.
                if self.serial().matches(marker).count() >= count {
                    return Ok(());
                }
                return Err(format!(
                    "qemu exited ({status}) before {marker:?} x{count} appeared"
                ));
            }
            if start.elapsed() > deadline {
                return Err(format!(
                    "no {marker:?} x{count} within {}s",
                    deadline.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Wait for the guest to power off.
    pub fn wait_exit(&mut self, deadline: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return Ok(());
            }
            if start.elapsed() > deadline {
                return Err(format!(
                    "the guest did not power off within {}s",
                    deadline.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The step failed: keep the serial log as an artifact and panic with
    /// its tail.
    pub fn fail(&mut self, why: &str) -> ! {
        self.kill();
        let art = artifacts().join(format!("{}.serial.log", self.name));
        let _ = std::fs::copy(&self.log, &art);
        let s = self.serial();
        let tail: Vec<&str> = s
            .lines()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        panic!(
            "VM step {}: {why}\nserial log kept at {}\n--- last lines:\n{}",
            self.name,
            art.display(),
            tail.join("\n")
        );
    }

    /// Lines of the serial log that start with `prefix` (marker lines).
    pub fn lines(&self, prefix: &str) -> Vec<String> {
        self.serial()
            .lines()
            .filter_map(|l| l.find(prefix).map(|i| l[i..].to_string()))
            .collect()
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Partition offsets of an installed image, from `kiln install --json`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub boot: (u64, u64),
    pub root: (u64, u64),
}

impl Layout {
    pub fn from_install_json(v: &serde_json::Value) -> Layout {
        let part = |name: &str| {
            let p = v["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .unwrap();
            (p["start"].as_u64().unwrap(), p["size"].as_u64().unwrap())
        };
        Layout {
            boot: part("boot"),
            root: part("root"),
        }
    }
}

/// Run `script` (sh) with the image's root at `$1`/MNT and /boot mounted
/// below it, inside a private mount namespace: a killed test leaves no
/// mounts or loop devices behind.
pub fn with_image(disk: &Path, layout: &Layout, mnt: &Path, script: &str) -> Output {
    std::fs::create_dir_all(mnt).unwrap();
    let full = format!(
        "set -eu\nM=\"$1\"; IMG=\"$2\"\nmount -o loop,offset={},sizelimit={} \"$IMG\" \"$M\"\nmount -o loop,offset={},sizelimit={} \"$IMG\" \"$M/boot\"\n{script}\n",
        layout.root.0, layout.root.1, layout.boot.0, layout.boot.1
    );
    run(Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &full,
            "sh",
        ])
        .arg(mnt)
        .arg(disk))
}
