//! Boot a real machine: compose Debian trees with `kiln compose debian`,
//! `kiln install to-disk` into a raw image, boot it in qemu + OVMF, and
//! walk the life of a deployment: a staged upgrade made in the guest and
//! finished at shutdown with /etc edits carried, rollback, a package
//! layered live (and a power cut right after), a broken upgrade that the
//! boot counter rolls back by itself, and a deployment made by `ostree
//! admin deploy`. The guest runs what the host leaves for it in
//! /var/lib/kiln-test/steps (see `manifest`).
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
/// One boot from power-on to power-off, including the step the guest
/// runs (layering under TCG with a debug build takes a few minutes).
const LAUNCH_DEADLINE: Duration = Duration::from_secs(900);

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
    let (reff, extra_packages, prepare) = if ostree_boot {
        (REF_OSTREE_BOOT, "\"dracut\", \"ostree-boot\"", "ostree")
    } else {
        // bubblewrap: `kiln install` runs maintainer scripts in it.
        (REF, "\"initramfs-tools\", \"bubblewrap\"", "kiln")
    };
    format!(
        r#"ref = "{reff}"
prepare-root = "{prepare}"
version = "{version}"
suite = "bookworm"
architecture = "amd64"
variant = "apt"
packages = ["systemd-sysv", "udev", "linux-image-amd64", {extra_packages}]
initramfs-modules = ["virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod", "ext4", "crc32c_generic"]
units = ["kiln-test-marker.service", "kiln-test-health.service"]
# A serial getty would interleave with the marker lines.
mask-units = ["serial-getty@ttyS0.service"]

[[file]]
path = "/etc/hostname"
content = "kiln-test\n"

# The guest has no network: apt sees only the local repository the test
# leaves in /var.
[[file]]
path = "/etc/apt/sources.list"
content = ""

[[file]]
path = "/etc/apt/sources.list.d/kiln-test.list"
content = "deb [trusted=yes] file:/var/lib/kiln-test/apt ./\n"

[[file]]
path = "/usr/lib/kiln-test/version"
content = "{version}\n"

[[file]]
path = "/usr/libexec/kiln-test-marker"
mode = "0755"
content = '''
#!/bin/sh
# Print what the VM test checks on the serial console, run the test's next
# step (a script the host left in /var/lib/kiln-test/steps), then power off
# or, when the step asks for it, reboot.
v=$(cat /usr/lib/kiln-test/version)
usr=$(awk '$2=="/usr" {{print $4}}' /proc/mounts | tail -n 1 | cut -d, -f1)
var=$(awk '$2=="/var" {{print $1}}' /proc/mounts | tail -n 1)
[ -f /etc/kiln-test-edit ] || echo "edited-on-v$v" > /etc/kiln-test-edit
late=$(cat /etc/kiln-test-late-edit 2>/dev/null || echo none)
hello=$(hello 2>/dev/null || echo absent)
steps=/var/lib/kiln-test/steps
step=$(ls "$steps" 2>/dev/null | sort | head -n 1)
{{
  echo "KILN-TEST-MARKER version=$v usr=$usr etc-edit=$(cat /etc/kiln-test-edit) var-mounted=$([ -n "$var" ] && echo yes || echo no) late-edit=$late hello=$hello"
  kiln status 2>&1 | sed 's/^/KILN-TEST-STATUS /'
  kiln boot status 2>&1 | sed 's/^/KILN-TEST-BOOT /'
  if [ -n "$step" ]; then
    mv "$steps/$step" /var/lib/kiln-test/running
    echo "KILN-TEST-STEP-BEGIN $step"
    sh -x /var/lib/kiln-test/running 2>&1 | sed -u "s/^/KILN-TEST-STEP /"
    rm -f /var/lib/kiln-test/running
  fi
  echo "KILN-TEST-END"
}} > /dev/ttyS0
if [ -e /var/lib/kiln-test/reboot ]; then
  rm -f /var/lib/kiln-test/reboot
  systemctl reboot
else
  systemctl poweroff
fi
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

    /// Leave shell scripts for the next boots in the shared `/var`: the
    /// marker unit runs one per boot, in order.
    fn steps(&self, steps: &[&str]) {
        let mut script = String::from(
            "S=\"$M/ostree/deploy/debian/var/lib/kiln-test/steps\"\nmkdir -p \"$S\"\n",
        );
        for (i, step) in steps.iter().enumerate() {
            script.push_str(&format!(
                "cat > \"$S/{i:02}\" <<'KILN_STEP_EOF'\n{step}\nKILN_STEP_EOF\n"
            ));
        }
        self.on_image(&script);
    }

    /// The guest's apt repository (`/var/lib/kiln-test/apt`): Debian's
    /// `hello` from the host's mirror, and `kiln-test-replace`, which
    /// overwrites a file of the image.
    fn apt_repo(&self) {
        let apt = self.dir.join("apt");
        let _ = std::fs::remove_dir_all(&apt);
        std::fs::create_dir_all(apt.join("src/kiln-test-replace/DEBIAN")).unwrap();
        let script = r#"set -e
cd "$1"
apt-get download hello >/dev/null 2>&1 || { apt-get update -qq && apt-get download hello; }
mkdir -p src/kiln-test-replace/usr/lib/kiln-test
echo replaced > src/kiln-test-replace/usr/lib/kiln-test/version
printf 'Package: kiln-test-replace\nVersion: 1.0\nArchitecture: all\nMaintainer: kiln <k@example.org>\nDescription: replaces a file of the image\n' > src/kiln-test-replace/DEBIAN/control
dpkg-deb --root-owner-group -b src/kiln-test-replace kiln-test-replace_1.0_all.deb >/dev/null
rm -rf src
dpkg-scanpackages --multiversion . /dev/null > Packages 2>/dev/null
"#;
        run(Command::new("sh").args(["-c", script, "sh"]).arg(&apt));
        self.on_image(&format!(
            "D=\"$M/ostree/deploy/debian/var/lib/kiln-test\"\nmkdir -p \"$D\"\nrm -rf \"$D/apt\"\ncp -a {} \"$D/apt\"",
            apt.display()
        ));
    }

    /// Boot; when the guest prints KILN-TEST-POWER-CUT, pull the plug
    /// (kill qemu: no shutdown, no sync by the guest).
    fn boot_until_power_cut(&self, name: &str) -> Run {
        let t = Instant::now();
        let mut v = boot(name, &self.disk, &self.vars, self.accel, false, &self.dir);
        if let Err(e) = v.wait_for("KILN-TEST-STEP KILN-TEST-POWER-CUT", BOOT_DEADLINE * 2) {
            v.fail(&e);
        }
        v.kill();
        let run = Run::parse(&v.serial());
        eprintln!(
            "[vm] {name}: {:.0}s, power cut\n{}",
            t.elapsed().as_secs_f64(),
            run.show()
        );
        run
    }

    /// Boot and follow the guest through `boots` boots (each prints a
    /// marker block ending in KILN-TEST-END), with `before` markers seen
    /// first (boots that fail before the marker). A reboot of the guest
    /// ends qemu (`-no-reboot`) and the next boot is a fresh qemu on the
    /// same disk and firmware variables: a power cycle. (A warm reset of a
    /// TCG guest sometimes hangs in the firmware or GRUB here, with
    /// nothing of kiln's involved, so the test never relies on one.)
    fn boot_run(&self, name: &str, boots: usize, before: &[(&str, usize)]) -> Run {
        let t = Instant::now();
        let max_launches = boots + before.iter().map(|(_, n)| n).sum::<usize>();
        let mut serial = String::new();
        for launch in 1..=max_launches {
            let mut v = boot(
                &format!("{name}.{launch}"),
                &self.disk,
                &self.vars,
                self.accel,
                false,
                &self.dir,
            );
            if let Err(e) = v.wait_exit(LAUNCH_DEADLINE) {
                v.fail(&e);
            }
            serial.push_str(&v.serial());
            let done = serial.matches("KILN-TEST-END").count() >= boots
                && before.iter().all(|(m, n)| serial.matches(m).count() >= *n);
            if done {
                let run = Run::parse(&serial);
                eprintln!(
                    "[vm] {name}: {launch} boot(s), {:.0}s\n{}",
                    t.elapsed().as_secs_f64(),
                    run.show()
                );
                return run;
            }
        }
        let art = vm::artifacts().join(format!("{name}.serial.log"));
        let _ = std::fs::write(&art, &serial);
        let tail: Vec<&str> = serial.lines().rev().take(60).collect();
        panic!(
            "VM step {name}: no {boots} marker(s) (and {before:?}) within {max_launches} boots\nserial log kept at {}\n--- last lines:\n{}",
            art.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

/// What the guest printed, boot by boot.
struct Run {
    boots: Vec<Boot>,
    serial: String,
}

#[derive(Default)]
struct Boot {
    marker: String,
    /// `kiln status` and `kiln boot status` lines.
    status: Vec<String>,
    /// The step's output (`sh -x` trace included).
    step: Vec<String>,
}

impl Boot {
    fn status(&self) -> String {
        self.status.join("\n")
    }
    fn step(&self) -> String {
        self.step.join("\n")
    }
}

impl Run {
    fn parse(serial: &str) -> Run {
        let mut boots = vec![Boot::default()];
        for line in serial.lines() {
            let cur = boots.last_mut().unwrap();
            let tail = |p: &str| line.find(p).map(|i| line[i + p.len()..].to_string());
            if let Some(i) = line.find("KILN-TEST-MARKER") {
                cur.marker = line[i..].to_string();
            } else if let Some(t) = tail("KILN-TEST-STATUS ").or_else(|| tail("KILN-TEST-BOOT ")) {
                cur.status.push(t);
            } else if let Some(t) = tail("KILN-TEST-STEP ") {
                cur.step.push(t);
            } else if line.contains("KILN-TEST-END") {
                boots.push(Boot::default());
            }
        }
        if boots.last().is_some_and(|b| b.marker.is_empty()) {
            boots.pop();
        }
        Run {
            boots,
            serial: serial.to_string(),
        }
    }

    fn show(&self) -> String {
        self.boots
            .iter()
            .map(|b| {
                format!(
                    "  {}\n    {}\n    | {}",
                    b.marker,
                    b.status.join("\n    "),
                    b.step.join("\n    | ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
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

    // 2. v2 waits in the image's repo; the guest boots v1 (/usr read-only;
    //    the marker unit edits /etc), runs `kiln upgrade` (staged: the
    //    booted system is never touched), edits /etc once more and reboots;
    //    kiln-finalize-staged.service finishes v2 at shutdown with both
    //    edits. On v2 the guest runs `kiln rollback` and reboots into v1.
    let v2 = env.compose("2", true, false);
    env.on_image(&format!(
        "\"$KILN\" repo pull-local --repo=\"$M/ostree/repo\" \"$REPO\" {REF}"
    ));
    env.steps(&[
        "kiln upgrade\nkiln status\necho after-staging > /etc/kiln-test-late-edit\ntouch /var/lib/kiln-test/reboot",
        "kiln rollback\ntouch /var/lib/kiln-test/reboot",
    ]);
    let r = env.boot_run("1-stage-finalize-rollback", 3, &[]);
    let [b1, b2, b3] = &r.boots[..] else {
        panic!("expected three boots:\n{}", r.show());
    };
    assert!(
        b1.marker
            .contains("version=1 usr=ro etc-edit=edited-on-v1 var-mounted=yes late-edit=none"),
        "{}",
        b1.marker
    );
    assert!(
        b1.step().contains(":kiln/test/vm (staged)") && b1.step().contains(&v2),
        "kiln upgrade staged v2 in the booted guest:\n{}",
        b1.step()
    );
    assert!(
        b2.marker.contains(
            "version=2 usr=ro etc-edit=edited-on-v1 var-mounted=yes late-edit=after-staging"
        ),
        "finalized at shutdown with the /etc edit made after staging: {}",
        b2.marker
    );
    assert!(
        b2.status().contains("no deployment on trial"),
        "v2's trial ended healthy:\n{}",
        b2.status()
    );
    assert!(b3.marker.contains("version=1 usr=ro"), "{}", b3.marker);

    // 3. Package layering, live: a local apt repository in the shared
    //    /var (the guest has no network) with Debian's `hello` and a
    //    package that replaces a file of the image.
    env.apt_repo();
    env.steps(&[
        "kiln install --apply-live -y hello\n\
         echo \"live-hello=$(hello)\"\n\
         echo \"live-usr=$(awk '$2==\"/usr\" {print $4}' /proc/mounts | tail -n 1 | cut -d, -f1)\"\n\
         kiln status\n\
         echo KILN-TEST-POWER-CUT\n\
         sleep infinity",
    ]);
    let r = env.boot_until_power_cut("2-apply-live-power-cut");
    let step = r.boots[0].step();
    assert!(
        step.contains("live-hello=Hello, world!") && step.contains("live-usr=ro"),
        "hello runs at once and /usr stays read-only:\n{step}"
    );
    assert!(
        step.contains("LiveApplied: /usr is"),
        "kiln status says so:\n{step}"
    );

    //    After the power cut: hello is there. A replacing package is
    //    refused live; `kiln uninstall --apply-live hello` removes it now
    //    and for the next boot.
    env.steps(&[
        "kiln install --apply-live -y kiln-test-replace; echo \"replace-exit=$?\"\n\
         cat /usr/lib/kiln-test/version\n\
         kiln uninstall --apply-live -y hello\n\
         [ -e /usr/bin/hello ] && echo after-uninstall=present || echo after-uninstall=gone\n\
         touch /var/lib/kiln-test/reboot",
    ]);
    let r = env.boot_run("3-apply-live-uninstall", 2, &[]);
    let [b1, b2] = &r.boots[..] else {
        panic!("expected two boots:\n{}", r.show());
    };
    assert!(
        b1.marker.contains("version=1 usr=ro") && b1.marker.contains("hello=Hello, world!"),
        "the package survived the power cut: {}",
        b1.marker
    );
    let step = b1.step();
    assert!(
        step.contains("replace-exit=1")
            && step.contains("usr/lib/kiln-test/version")
            && step.contains("after-uninstall=gone"),
        "replacement refused live, uninstall applied live:\n{step}"
    );
    assert!(
        b2.marker.contains("version=1 usr=ro") && b2.marker.contains("hello=absent"),
        "{}",
        b2.marker
    );
    env.on_image("ostree fsck --repo=\"$M/ostree/repo\"\nostree admin status --sysroot=\"$M\"");

    // 5. a broken v3 (its health check fails and reboots): after its two
    //    tries GRUB falls back to the deployment it ran before (v1), and
    //    kiln status says what happened.
    let v3 = env.compose("3", false, false);
    env.on_image(&format!("\"$KILN\" repo pull-local --repo=\"$M/ostree/repo\" \"$REPO\" {REF}\n\"$KILN\" upgrade --sysroot \"$M\""));
    let st = env.on_image("\"$KILN\" boot status --sysroot \"$M\" --json");
    assert!(
        st.contains(&format!("{v3}.0")) && st.contains("\"tries_left\": 2"),
        "v3 is on trial with 2 tries: {st}"
    );
    let r = env.boot_run("4-v3-broken", 1, &[("KILN-TEST-HEALTH-FAIL", 2)]);
    let b = &r.boots[0];
    assert!(
        b.marker.contains("version=1 usr=ro"),
        "fell back to v1: {}",
        b.marker
    );
    assert!(
        b.status().contains(&format!(
            "deployment {v3}.0 did not reach boot-complete.target"
        )),
        "{}",
        b.status()
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
    let r = env.boot_run("5-ostree-deploy", 1, &[]);
    let b = &r.boots[0];
    assert!(b.marker.contains("version=2 usr=ro"), "{}", b.marker);
    assert!(
        b.status().contains('●'),
        "kiln sees the booted deployment:\n{}",
        b.status()
    );
    assert!(
        !(b.status().contains("is on trial") || b.status().contains("did not reach")),
        "v3's trial is stale once ostree made another default:\n{}",
        b.status()
    );

    // 7. a kiln deployment booted by Debian's own ostree-prepare-root
    //    (dracut + ostree-boot; /var from ostree's system generator).
    env.compose("4", true, true);
    env.on_image(&format!(
        "\"$KILN\" repo pull-local --repo=\"$M/ostree/repo\" \"$REPO\" {REF_OSTREE_BOOT}\n\"$KILN\" admin deploy --sysroot=\"$M\" --os=debian {REF_OSTREE_BOOT}"
    ));
    let r = env.boot_run("6-ostree-prepare-root", 1, &[]);
    let b = &r.boots[0];
    assert!(
        b.marker
            .contains("version=4 usr=ro etc-edit=edited-on-v1 var-mounted=yes"),
        "{}",
        b.marker
    );
    assert!(
        r.serial.contains("ostree-prepare-root")
            && !r.serial.contains("kiln-prepare-root: booting"),
        "booted by ostree-prepare-root"
    );
    assert!(
        b.status().contains("no deployment on trial"),
        "the trial ended healthy:\n{}",
        b.status()
    );
    eprintln!("[vm] whole VM test: {:.0}s", t0.elapsed().as_secs_f64());
}
