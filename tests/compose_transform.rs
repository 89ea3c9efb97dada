//! `kiln compose rootfs` and the deploy logic of a kiln-installed
//! bootloader, without a VM: the transform and its report, idempotence,
//! what the commit holds, the GRUB menu written inside `loader.N` at every
//! deploy, boot counting armed by an upgrade and ended by a rollback,
//! `kiln boot mark-good` in a booted-looking namespace, a deployment
//! without initramfs refused at deploy time, and ostree reading it all.

mod compose_support;

use compose_support::*;
use std::fs;
use std::path::Path;
use std::process::Command;

fn sysroot_with_kiln_grub(sysroot: &Path, repo: &Path, branch: &str) {
    fs::create_dir_all(sysroot).unwrap();
    ok(kiln().args(["admin", "init-fs"]).arg(sysroot));
    ok(kiln()
        .args(["admin", "os-init", "debian"])
        .arg(format!("--sysroot={}", sysroot.display())));
    // What `kiln install to-disk` puts on /boot (see bootloader_grub.rs).
    fs::create_dir_all(sysroot.join("boot/grub")).unwrap();
    fs::write(
        sysroot.join("boot/grub/grub.cfg"),
        "# kiln: static GRUB configuration (test)\n",
    )
    .unwrap();
    let mut env = vec![b'#'; 1024];
    env[..25].copy_from_slice(b"# GRUB Environment Block\n");
    fs::write(sysroot.join("boot/grub/grubenv"), env).unwrap();
    ok(kiln()
        .args(["repo", "pull-local"])
        .arg(format!("--repo={}/ostree/repo", sysroot.display()))
        .arg(repo)
        .arg(branch));
}

fn grubenv(sysroot: &Path) -> String {
    let b = fs::read(sysroot.join("boot/grub/grubenv")).unwrap();
    assert_eq!(b.len(), 1024, "the environment block keeps its size");
    String::from_utf8_lossy(&b)
        .trim_end_matches('#')
        .to_string()
}

fn loader_cfg(sysroot: &Path) -> String {
    fs::read_to_string(sysroot.join("boot/loader/grub.cfg")).unwrap()
}

#[test]
fn rootfs_transform_report_idempotent_and_committed() {
    if !have_root() || !have_tools(&["ostree"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("rootfs");
    debian_rootfs(&tree, "1", true);
    let repo = t.path().join("repo");
    ok(Command::new("ostree")
        .args(["init", "--mode=bare"])
        .arg(format!("--repo={}", repo.display())));
    let first = ok(kiln()
        .args(["compose", "rootfs", "-b", "os/x", "--set-version", "7"])
        .arg("--repo")
        .arg(&repo)
        .arg(&tree));
    for want in [
        "moved: /boot/vmlinuz-6.1.0-99-amd64 -> /usr/lib/modules/6.1.0-99-amd64/vmlinuz",
        "moved: /boot/initrd.img-6.1.0-99-amd64 -> /usr/lib/modules/6.1.0-99-amd64/initramfs.img",
        "moved: /var/lib/dpkg -> /usr/lib/sysimage/dpkg",
        "moved: /etc -> /usr/etc",
        "linked: /home -> var/home",
        "linked: /root -> var/roothome",
        "linked: /media -> var/media",
        "removed: /dev/* (1 entries",
        "kept: /usr/lib/os-release",
    ] {
        assert!(first.contains(want), "report lacks {want:?}:\n{first}");
    }
    let commit = first.lines().last().unwrap().trim().to_string();
    // Each line says why.
    assert!(
        first
            .lines()
            .filter(|l| l.contains(": /"))
            .all(|l| l.contains('(')),
        "{first}"
    );
    let again = ok(kiln().args(["compose", "rootfs", "--no-commit"]).arg(&tree));
    assert!(again.starts_with("Already an OSTree tree:"), "{again}");
    assert!(
        again
            .lines()
            .skip(1)
            .all(|l| l.contains("already done") || l.contains("kept:")),
        "{again}"
    );
    // What ostree sees in the commit.
    let ls = ok(Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(["ls", "-R", &commit]));
    for want in [
        "/usr/lib/modules/6.1.0-99-amd64/vmlinuz",
        "/usr/lib/modules/6.1.0-99-amd64/initramfs.img",
        "/usr/lib/sysimage/dpkg/status",
        "/usr/etc/hostname",
        "/usr/lib/tmpfiles.d/kiln-var.conf",
        "/usr/share/factory/var/roothome/.bashrc",
        "/home -> var/home",
        "/ostree -> sysroot/ostree",
    ] {
        assert!(ls.contains(want), "commit lacks {want}:\n{ls}");
    }
    for absent in [
        "/etc/",
        "/var/lib",
        "/boot/vmlinuz",
        "history.log",
        "/dev/null",
    ] {
        assert!(
            !ls.lines()
                .any(|l| l.ends_with(absent)
                    || l.contains(&format!("{absent}/")) && absent != "/etc/"),
            "commit has {absent}"
        );
    }
    assert!(
        !ls.lines()
            .any(|l| l.split_whitespace().last() == Some("/etc")),
        "/etc is not in the commit"
    );
    let tmpfiles = ok(Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(["cat", &commit, "/usr/lib/tmpfiles.d/kiln-var.conf"]));
    assert!(
        tmpfiles.contains("L /var/lib/dpkg - - - - ../../usr/lib/sysimage/dpkg"),
        "{tmpfiles}"
    );
    assert!(tmpfiles.contains("d /var/roothome 0700"), "{tmpfiles}");
    let version = ok(Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(["show", "--print-metadata-key=version", &commit]));
    assert_eq!(version.trim(), "'7'");
}

#[test]
fn rootfs_without_initramfs_is_refused_untouched() {
    if !have_root() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let tree = t.path().join("rootfs");
    debian_rootfs(&tree, "1", false);
    let err = fails(kiln().args(["compose", "rootfs", "--no-commit"]).arg(&tree));
    assert!(err.contains("has no initramfs"), "{err}");
    assert!(
        tree.join("etc/hostname").exists() && tree.join("boot/vmlinuz-6.1.0-99-amd64").exists(),
        "nothing was changed"
    );
}

#[test]
fn deploys_write_grub_menu_and_arm_boot_counting() {
    if !have_root() || !have_tools(&["ostree"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    ok(Command::new("ostree")
        .args(["init", "--mode=archive"])
        .arg(format!("--repo={}", repo.display())));
    let c1 = compose_commit(t.path(), &repo, "os/x", "1", true);
    let sr = t.path().join("sysroot");
    sysroot_with_kiln_grub(&sr, &repo, "os/x");
    let sra = format!("--sysroot={}", sr.display());
    ok(kiln().args([
        "admin",
        "deploy",
        &sra,
        "--os=debian",
        "--karg=root=UUID=x",
        "--karg=rw",
        "os/x",
    ]));
    let cfg = loader_cfg(&sr);
    assert!(fs::read_link(sr.join("boot/loader")).unwrap() == Path::new("loader.1"));
    assert!(
        cfg.contains("menuentry 'Debian GNU/Linux 12 (bookworm) (ostree:0)' --id 'kiln-0' {"),
        "{cfg}"
    );
    assert!(cfg.contains("initrd '/ostree/debian-"), "{cfg}");
    assert!(
        !cfg.contains("kiln_trial"),
        "a single deployment has nothing to fall back to:\n{cfg}"
    );
    assert!(!grubenv(&sr).contains("kiln_trial"));

    // An upgrade: the new default is on trial (3 tries by default).
    let c2 = compose_commit(t.path(), &repo, "os/x", "2", true);
    ok(kiln()
        .args(["repo", "pull-local"])
        .arg(format!("--repo={}/ostree/repo", sr.display()))
        .arg(&repo)
        .arg("os/x"));
    ok(kiln().args(["upgrade", &sra]));
    let env = grubenv(&sr);
    assert!(
        env.contains(&format!("kiln_trial={c2}.0\nkiln_tries_left=3\n")),
        "{env}"
    );
    let cfg = loader_cfg(&sr);
    assert_eq!(
        fs::read_link(sr.join("boot/loader")).unwrap(),
        Path::new("loader.0"),
        "menu and entries switched together"
    );
    assert!(
        cfg.contains(&format!("if [ \"${{kiln_trial}}\" = \"{c2}.0\" ]; then")),
        "{cfg}"
    );
    assert!(
        cfg.contains("(ostree:1)"),
        "the previous deployment is in the menu:\n{cfg}"
    );
    let status = ok(kiln().args(["status", &sra]));
    assert!(
        status.contains(&format!(
            "Boot counting: deployment {c2}.0 is on trial, 3 boot(s) left"
        )),
        "{status}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(kiln().args(["status", &sra, "--json"]))).unwrap();
    assert_eq!(json["deployments"][0]["boot_counter"], 3);
    assert!(json["deployments"][1]["boot_counter"].is_null());

    // GRUB used up the tries: status says so.
    let env_bytes = fs::read(sr.join("boot/grub/grubenv")).unwrap();
    let text =
        String::from_utf8_lossy(&env_bytes).replace("kiln_tries_left=3", "kiln_tries_left=0");
    fs::write(sr.join("boot/grub/grubenv"), text.as_bytes()).unwrap();
    let status = ok(kiln().args(["status", &sra]));
    assert!(
        status.contains(&format!(
            "deployment {c2}.0 did not reach boot-complete.target"
        )),
        "{status}"
    );

    // A rollback makes a known deployment the default: the trial ends.
    ok(kiln().args(["rollback", &sra]));
    assert!(!grubenv(&sr).contains("kiln_trial"), "{}", grubenv(&sr));
    // The menu checks the new default; the environment names no trial.
    assert!(
        loader_cfg(&sr).contains(&format!("\"{c1}.0\" ]; then")),
        "{}",
        loader_cfg(&sr)
    );
    // ostree reads the sysroot.
    let st = ok(Command::new("ostree").args(["admin", "status", &sra]));
    assert!(st.contains(&format!("debian {c1}.0")), "{st}");
}

#[test]
fn deploy_without_initramfs_is_refused_with_kiln_grub() {
    if !have_root() || !have_tools(&["ostree"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    ok(Command::new("ostree")
        .args(["init", "--mode=archive"])
        .arg(format!("--repo={}", repo.display())));
    compose_commit(t.path(), &repo, "os/x", "1", true);
    // A tree that reached the repo without compose: no initramfs.
    let tree = t.path().join("rootfs-1");
    fs::remove_file(tree.join("usr/lib/modules/6.1.0-99-amd64/initramfs.img")).unwrap();
    ok(Command::new("ostree")
        .args(["commit", "-b", "os/noinitrd", "--tree"])
        .arg(format!("dir={}", tree.display()))
        .arg(format!("--repo={}", repo.display())));
    let sr = t.path().join("sysroot");
    sysroot_with_kiln_grub(&sr, &repo, "os/x");
    ok(kiln()
        .args(["repo", "pull-local"])
        .arg(format!("--repo={}/ostree/repo", sr.display()))
        .arg(&repo)
        .arg("os/noinitrd"));
    let sra = format!("--sysroot={}", sr.display());
    ok(kiln().args(["admin", "deploy", &sra, "--os=debian", "os/x"]));
    let before = fs::read_link(sr.join("boot/loader")).unwrap();
    let err = fails(kiln().args(["admin", "deploy", &sra, "--os=debian", "os/noinitrd"]));
    assert!(
        err.contains("has no initramfs") && err.contains("refused"),
        "{err}"
    );
    assert_eq!(
        fs::read_link(sr.join("boot/loader")).unwrap(),
        before,
        "the boot configuration is unchanged"
    );
    let st = ok(kiln().args(["status", &sra, "--json"]));
    let v: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert_eq!(v["deployments"].as_array().unwrap().len(), 1, "{st}");
}

#[test]
fn mark_good_and_update_grub() {
    if !have_root() || !have_tools(&["ostree"]) {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let repo = t.path().join("repo");
    ok(Command::new("ostree")
        .args(["init", "--mode=archive"])
        .arg(format!("--repo={}", repo.display())));
    compose_commit(t.path(), &repo, "os/x", "1", true);
    let sr = t.path().join("sysroot");
    sysroot_with_kiln_grub(&sr, &repo, "os/x");
    let sra = format!("--sysroot={}", sr.display());
    ok(kiln().args(["admin", "deploy", &sra, "--os=debian", "os/x"]));
    // mark-good needs a booted system.
    let err = fails(kiln().args(["boot", "mark-good", &sra]));
    assert!(err.contains("Not currently booted"), "{err}");
    // ostree deploys (its grub2 backend runs OSTREE_GRUB2_EXEC): kiln
    // writes the menu from ostree's entries.
    let c2 = compose_commit(t.path(), &repo, "os/x", "2", true);
    ok(kiln()
        .args(["repo", "pull-local"])
        .arg(format!("--repo={}/ostree/repo", sr.display()))
        .arg(&repo)
        .arg("os/x"));
    let helper = t.path().join("grub2-exec");
    fs::write(
        &helper,
        format!(
            "#!/bin/sh\nexec {} boot update-grub \"$@\"\n",
            kiln_bin().display()
        ),
    )
    .unwrap();
    ok(Command::new("chmod").arg("755").arg(&helper));
    ok(Command::new("ostree")
        .args(["admin", "deploy", &sra, "--os=debian", "os/x"])
        .env("OSTREE_GRUB2_EXEC", &helper));
    let cfg = loader_cfg(&sr);
    assert!(
        cfg.contains("(ostree:0)") && cfg.contains("(ostree:1)"),
        "{cfg}"
    );
    let _ = c2;
    fs::remove_file(sr.join("boot/loader/grub.cfg")).unwrap();
    ok(kiln().args(["boot", "update-grub", &sra]));
    assert_eq!(loader_cfg(&sr), cfg);
}
