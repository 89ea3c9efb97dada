//! Boot a real machine: compose Debian trees with `kiln compose debian`,
//! `kiln install to-disk` into a raw image, boot it in qemu + OVMF, and
//! walk the life of a deployment: upgrade with an /etc edit carried,
//! rollback, a broken upgrade that the boot counter rolls back by itself,
//! and a deployment made by `ostree admin deploy`.
//!
//! One test, steps in order (each needs the previous one's disk). Needs
//! root and the packages of docs/boot.md; skipped otherwise, unless
//! `KILN_CI=1`. `KILN_VM_TESTS=0` skips it; `KILN_VM_ACCEL=tcg|kvm` skips
//! the KVM probe. Root file systems are cached in
//! /var/cache/kiln-tests/compose (first run ~3 min longer).

mod vm;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use vm::{boot, run, stdout, with_image, Layout};

const REF: &str = "kiln/test/vm";
const REF_OSTREE_BOOT: &str = "kiln/test/vm-ostree-boot";
/// One boot of the minimal system to the marker, under TCG (measured
/// 50–70 s with OVMF and GRUB); generous for a loaded CI machine.
const BOOT_DEADLINE: Duration = Duration::from_secs(300);

/// The test system: the minimal manifest's packages (same cache key as
/// manifests/minimal.toml), a unit that prints the marker line and powers
/// off, and a health check unit that passes or fails.
/// `ostree_boot`: dracut with Debian's ostree-prepare-root (ostree-boot)
/// instead of initramfs-tools with kiln-prepare-root.
fn manifest(version: &str, healthy: bool, ostree_boot: bool) -> String {
    let health = if healthy {
        "/bin/true"
    } else {
        "/bin/sh -c 'echo KILN-TEST-HEALTH-FAIL > /dev/ttyS0; exit 1'"
    };
    let (reff, initramfs, prepare) = if ostree_boot {
        (REF_OSTREE_BOOT, "\"dracut\", \"ostree-boot\"", "ostree")
    } else {
        (REF, "\"initramfs-tools\"", "kiln")
    };
    format!(
        r#"ref = "{reff}"
prepare-root = "{prepare}"
version = "{version}"
suite = "bookworm"
architecture = "amd64"
variant = "apt"
packages = ["systemd-sysv", "udev", "linux-image-amd64", {initramfs}]
initramfs-modules = ["virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod", "ext4", "crc32c_generic"]
units = ["kiln-test-marker.service", "kiln-test-health.service"]
# A serial getty would interleave with the marker lines.
mask-units = ["serial-getty@ttyS0.service"]

[[file]]
path = "/etc/hostname"
content = "kiln-test\n"

[[file]]
path = "/usr/lib/kiln-test/version"
content = "{version}\n"

[[file]]
path = "/usr/libexec/kiln-test-marker"
mode = "0755"
content = '''
#!/bin/sh
# Print what the VM test checks on the serial console, then power off.
v=$(cat /usr/lib/kiln-test/version)
usr=$(awk '$2=="/usr" {{print $4}}' /proc/mounts | tail -n 1 | cut -d, -f1)
var=$(awk '$2=="/var" {{print $1}}' /proc/mounts | tail -n 1)
[ -f /etc/kiln-test-edit ] || echo "edited-on-v$v" > /etc/kiln-test-edit
{{
  echo "KILN-TEST-MARKER version=$v usr=$usr etc-edit=$(cat /etc/kiln-test-edit) var-mounted=$([ -n "$var" ] && echo yes || echo no)"
  kiln status 2>&1 | sed 's/^/KILN-TEST-STATUS /'
  kiln boot status 2>&1 | sed 's/^/KILN-TEST-BOOT /'
  echo "KILN-TEST-END"
}} > /dev/ttyS0
systemctl poweroff
'''

[[file]]
path = "/usr/lib/systemd/system/kiln-test-marker.service"
content = '''
[Unit]
Description=kiln VM test marker
Requires=boot-complete.target
After=boot-complete.target kiln-boot-complete.service multi-user.target
[Service]
Type=oneshot
ExecStart=/usr/libexec/kiln-test-marker
[Install]
WantedBy=multi-user.target
'''

[[file]]
path = "/usr/lib/systemd/system/kiln-test-health.service"
content = '''
[Unit]
Description=kiln VM test health check (a vendor check of boot-complete.target)
Before=boot-complete.target
FailureAction=reboot
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={health}
[Install]
RequiredBy=boot-complete.target
'''
"#
    )
}

struct Env {
    dir: PathBuf,
    repo: PathBuf,
    prepare_root: PathBuf,
    disk: PathBuf,
    vars: PathBuf,
    mnt: PathBuf,
    layout: Option<Layout>,
    accel: &'static str,
}

impl Env {
    fn kiln(&self) -> Command {
        Command::new(vm::kiln_bin())
    }

    fn compose(&self, version: &str, healthy: bool, ostree_boot: bool) -> String {
        let m = self.dir.join(format!("v{version}.toml"));
        std::fs::write(&m, manifest(version, healthy, ostree_boot)).unwrap();
        let out = run(self
            .kiln()
            .args(["compose", "debian", "--json", "--set-version", version])
            .arg(&m)
            .arg("--repo")
            .arg(&self.repo)
            .arg("--cache-dir")
            .arg(vm::CACHE)
            .arg("--prepare-root")
            .arg(&self.prepare_root));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["commit"].as_str().unwrap().to_string()
    }

    /// Commands on the host with the image's sysroot mounted at $M.
    fn on_image(&self, script: &str) -> String {
        let script = format!(
            "KILN={}\nREPO={}\n{script}",
            vm::kiln_bin().display(),
            self.repo.display()
        );
        stdout(&with_image(
            &self.disk,
            self.layout.as_ref().unwrap(),
            &self.mnt,
            &script,
        ))
    }

    /// Boot to the marker; returns the marker line and the status lines.
    fn boot_to_marker(
        &self,
        name: &str,
        reboots: bool,
        before: &[(&str, usize)],
    ) -> (String, Vec<String>, String) {
        let t = Instant::now();
        let mut v = boot(name, &self.disk, &self.vars, self.accel, reboots, &self.dir);
        for (m, n) in before {
            if let Err(e) = v.wait_for_count(m, *n, BOOT_DEADLINE * (*n as u32)) {
                v.fail(&e);
            }
        }
        if let Err(e) = v.wait_for("KILN-TEST-END", BOOT_DEADLINE) {
            v.fail(&e);
        }
        if let Err(e) = v.wait_exit(Duration::from_secs(120)) {
            v.fail(&e);
        }
        let marker = v.lines("KILN-TEST-MARKER").pop().unwrap_or_default();
        let mut status = v.lines("KILN-TEST-STATUS");
        status.extend(v.lines("KILN-TEST-BOOT"));
        eprintln!(
            "[vm] {name}: {:.0}s\n  {marker}\n  {}",
            t.elapsed().as_secs_f64(),
            status.join("\n  ")
        );
        (marker, status, v.serial())
    }
}

#[test]
fn vm_boot_upgrade_rollback_autorollback_ostree_compat() {
    if let Some(why) = vm::missing_prerequisites() {
        if std::env::var("KILN_CI").as_deref() == Ok("1") && why != "KILN_VM_TESTS=0" {
            panic!("VM tests cannot run: {why}");
        }
        eprintln!("skipping the VM test: {why}");
        return;
    }
    let t0 = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("kiln-vm-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let dir = tmp.path().to_path_buf();
    let repo = dir.join("repo");
    run(Command::new(vm::kiln_bin())
        .args(["repo", "init", "--mode=archive"])
        .arg(format!("--repo={}", repo.display())));
    let mut env = Env {
        prepare_root: vm::static_prepare_root(),
        disk: dir.join("disk.img"),
        vars: dir.join("OVMF_VARS.fd"),
        mnt: dir.join("mnt"),
        repo,
        dir: dir.clone(),
        layout: None,
        accel: "tcg",
    };
    std::fs::copy(vm::OVMF_VARS, &env.vars).unwrap();

    // 1. compose v1 and install it into a raw image.
    let v1 = env.compose("1", true, false);
    let out = run(env
        .kiln()
        .args([
            "install",
            "to-disk",
            "--json",
            "--size",
            "3G",
            "--source",
            REF,
            "--karg",
            "console=ttyS0,115200",
            "--boot-tries",
            "2",
            "--timeout",
            "1",
        ])
        .arg("--repo")
        .arg(&env.repo)
        .arg("--work-dir")
        .arg(&dir)
        .arg(&env.disk));
    let inst: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inst["commit"].as_str(), Some(v1.as_str()));
    env.layout = Some(Layout::from_install_json(&inst));
    let kernel = env.on_image("cp \"$M\"/boot/ostree/debian-*/vmlinuz-* \"$M/../vmlinuz\"");
    let _ = kernel;
    env.accel = vm::accel(&dir.join("vmlinuz"));

    // 2. boot: v1, /usr read-only; the marker unit edits /etc.
    let (m, _, _) = env.boot_to_marker("1-v1", false, &[]);
    assert!(
        m.contains("version=1 usr=ro etc-edit=edited-on-v1 var-mounted=yes"),
        "{m}"
    );

    // 3. compose v2; upgrade on the host (--sysroot on the image); boot:
    //    v2 with v1's /etc edit.
    let v2 = env.compose("2", true, false);
    env.on_image(&format!("\"$KILN\" repo pull-local --repo=\"$M/ostree/repo\" \"$REPO\" {REF}\n\"$KILN\" upgrade --sysroot \"$M\""));
    let st = env.on_image("\"$KILN\" boot status --sysroot \"$M\" --json");
    assert!(
        st.contains(&format!("{v2}.0")) && st.contains("\"tries_left\": 2"),
        "v2 is on trial with 2 tries: {st}"
    );
    let (m, status, _) = env.boot_to_marker("2-v2", false, &[]);
    assert!(m.contains("version=2 usr=ro etc-edit=edited-on-v1"), "{m}");
    assert!(
        status.iter().any(|l| l.contains("no deployment on trial")),
        "v2's trial ended healthy: {status:?}"
    );

    // 4. kiln rollback; boot: v1.
    env.on_image("\"$KILN\" rollback --sysroot \"$M\"");
    let (m, _, _) = env.boot_to_marker("3-rollback", false, &[]);
    assert!(m.contains("version=1 usr=ro"), "{m}");

    // 5. a broken v3 (its health check fails and reboots): after its two
    //    tries GRUB falls back to the deployment it ran before (v1), and
    //    kiln status says what happened.
    let v3 = env.compose("3", false, false);
    env.on_image(&format!("\"$KILN\" repo pull-local --repo=\"$M/ostree/repo\" \"$REPO\" {REF}\n\"$KILN\" upgrade --sysroot \"$M\""));
    let (m, status, _) = env.boot_to_marker("4-v3-broken", true, &[("KILN-TEST-HEALTH-FAIL", 2)]);
    assert!(m.contains("version=1 usr=ro"), "fell back to v1: {m}");
    assert!(
        status.iter().any(|l| l.contains(&format!(
            "deployment {v3}.0 did not reach boot-complete.target"
        ))),
        "{status:?}"
    );
    let host_status = env.on_image("\"$KILN\" status --sysroot \"$M\"");
    assert!(
        host_status.contains(&format!(
            "deployment {v3}.0 did not reach boot-complete.target"
        )),
        "{host_status}"
    );

    // 6. ostree admin deploy (v2) onto the same image; ostree writes the
    //    BLS entries, kiln's helper the GRUB menu; kiln-prepare-root boots it.
    let helper = dir.join("grub2-exec");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nexec {} boot update-grub \"$@\"\n",
            vm::kiln_bin().display()
        ),
    )
    .unwrap();
    run(Command::new("chmod").arg("755").arg(&helper));
    env.on_image(&format!(
        "\"$KILN\" repo pull-local --repo=\"$M/ostree/repo\" \"$REPO\" {v2}\nOSTREE_GRUB2_EXEC={} ostree admin deploy --sysroot=\"$M\" --os=debian {v2}\nostree admin status --sysroot=\"$M\"",
        helper.display()
    ));
    let (m, status, _) = env.boot_to_marker("5-ostree-deploy", false, &[]);
    assert!(m.contains("version=2 usr=ro"), "{m}");
    assert!(
        status.iter().any(|l| l.contains('●')),
        "kiln sees the booted deployment: {status:?}"
    );
    assert!(
        !status
            .iter()
            .any(|l| l.contains("is on trial") || l.contains("did not reach")),
        "v3's trial is stale once ostree made another default: {status:?}"
    );

    // 7. a kiln deployment booted by Debian's own ostree-prepare-root
    //    (dracut + ostree-boot; /var from ostree's system generator).
    env.compose("4", true, true);
    env.on_image(&format!(
        "\"$KILN\" repo pull-local --repo=\"$M/ostree/repo\" \"$REPO\" {REF_OSTREE_BOOT}\n\"$KILN\" admin deploy --sysroot=\"$M\" --os=debian {REF_OSTREE_BOOT}"
    ));
    let (m, status, serial) = env.boot_to_marker("6-ostree-prepare-root", false, &[]);
    assert!(
        m.contains("version=4 usr=ro etc-edit=edited-on-v1 var-mounted=yes"),
        "{m}"
    );
    assert!(
        serial.contains("ostree-prepare-root") && !serial.contains("kiln-prepare-root: booting"),
        "booted by ostree-prepare-root"
    );
    assert!(
        status.iter().any(|l| l.contains("no deployment on trial")),
        "the trial ended healthy: {status:?}"
    );
    eprintln!("[vm] whole VM test: {:.0}s", t0.elapsed().as_secs_f64());
}
