//! Staged deployments on a system that looks booted: a private mount
//! namespace where a deployment is `/` (chroot into a bind mount of it),
//! the sysroot is `/sysroot` (so `/ostree` resolves), `/run/ostree-booted`
//! exists, and the host's `/usr` provides the binaries.
//!
//! `/etc` edits made after staging must reach the new deployment, and kiln
//! and ostree must finalize each other's staged deployments.

#[path = "sysroot_support/mod.rs"]
mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use support::*;

/// Run `script` (sh) chrooted into a booted-looking deployment `dep` of
/// `sysroot`. `$KILN` is kiln inside the chroot.
fn in_booted(sc: &Scratch, sysroot: &Path, script: &str) -> std::process::Output {
    let dep = sysroot.join("ostree/deploy/fakeos/deploy");
    let booted = ok(Tool::Ostree.admin(sysroot, "status"))
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    let d = dep.join(booted);
    let r = sc.path("root");
    fs::create_dir_all(&r).unwrap();
    let setup = format!(
        r#"set -e
mount --make-rprivate /
R={r}
mount --bind {d} $R
mount --bind /usr $R/usr
mount --bind {s} $R/sysroot
mount --bind {s}/boot $R/boot
mount --bind {s}/ostree/deploy/fakeos/var $R/var
mount -t tmpfs tmpfs $R/run
touch $R/run/ostree-booted
mount -t tmpfs tmpfs $R/tmp
cp {kiln} $R/tmp/kiln
mount --rbind /dev $R/dev
mount -t proc proc $R/proc
echo "root=LABEL=x ostree=/ostree/boot.1/fakeos/x/0" > $R/tmp/cmdline
mount --bind $R/tmp/cmdline $R/proc/cmdline
exec chroot $R /bin/sh -c "$0"
"#,
        r = s(&r),
        d = s(&d),
        s = s(sysroot),
        kiln = s(&kiln_bin()),
    );
    out(Command::new("unshare")
        .args(["-m", "-p", "-f", "sh", "-c", &setup])
        .arg(format!("set -e; KILN=/tmp/kiln; export KILN; {script}")))
}

fn ok_out(o: std::process::Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

struct Booted {
    sc: Scratch,
    root: std::path::PathBuf,
    c1: String,
    c2: String,
}

fn setup(tool: Tool) -> Booted {
    let sc = Scratch::new();
    let root = sc.path("s");
    init_sysroot(&root, tool);
    let tree = sc.path("t");
    make_tree(&tree, &TreeSpec::new("1"));
    let c1 = commit(&root, &tree, "v1", "1");
    let mut v2 = TreeSpec::new("2");
    v2.kernel = "B".into();
    make_tree(&tree, &v2);
    let c2 = commit(&root, &tree, "v2", "2");
    ok(tool
        .admin(&root, "deploy")
        .args(["--os=fakeos", "fakeos/v1", "--karg=root=LABEL=x"]));
    Booted { sc, root, c1, c2 }
}

fn default_etc(root: &Path) -> std::path::PathBuf {
    let first = ok(Tool::Ostree.admin(root, "status"))
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    root.join("ostree/deploy/fakeos/deploy")
        .join(first)
        .join("etc")
}

#[test]
fn stage_then_finalize_keeps_late_etc_edits() {
    if !have_env() {
        return;
    }
    for (stager, finalizer) in [("$KILN", "$KILN"), ("ostree", "$KILN"), ("$KILN", "ostree")] {
        let b = setup(Tool::Kiln);
        let st = ok_out(in_booted(
            &b.sc,
            &b.root,
            &format!(
                r#"{stager} admin deploy --stage fakeos/v2
echo early > /etc/early.conf
ostree admin status > /tmp/a
$KILN admin status > /tmp/b
cmp /tmp/a /tmp/b
echo ==; cat /tmp/a; echo ==
echo late > /etc/late.conf
{finalizer} admin finalize-staged
"#
            ),
        ));
        // Both tools list the staged deployment the same way (cmp above).
        let a = st.split("==\n").nth(1).unwrap();
        assert!(a.contains(&format!("  fakeos {}.0 (staged)", b.c2)), "{st}");
        assert!(a.contains(&format!("* fakeos {}.0", b.c1)), "{st}");
        let status = ok(Tool::Ostree.admin(&b.root, "status"));
        assert!(
            status.lines().next().unwrap().contains(&b.c2),
            "{stager}/{finalizer}: v2 not default:\n{status}"
        );
        let etc = default_etc(&b.root);
        assert_eq!(
            fs::read_to_string(etc.join("late.conf")).unwrap(),
            "late\n",
            "{stager}/{finalizer}: late edit lost"
        );
        assert!(etc.join("early.conf").exists());
        assert!(immutable(etc.parent().unwrap()));
        assert_eq!(entries(&b.root).len(), 2);
        ok(ostree()
            .arg("fsck")
            .arg(format!("--repo={}", s(&b.root.join("ostree/repo")))));
    }
}

#[test]
fn system_upgrade_stages_when_booted() {
    if !have_env() {
        return;
    }
    let b = setup(Tool::Kiln);
    // The origin's branch moves to the v2 commit.
    ok(ostree()
        .arg("refs")
        .arg(format!("--repo={}", s(&b.root.join("ostree/repo"))))
        .args(["--force", "--create=fakeos/v1"])
        .arg(&b.c2));
    let o = ok_out(in_booted(
        &b.sc,
        &b.root,
        r#"$KILN upgrade --check
$KILN upgrade
$KILN status --json > /tmp/status.json
cat /tmp/status.json
$KILN admin finalize-staged
"#,
    ));
    assert!(o.contains("Update available"), "{o}");
    assert!(o.contains("Staged deployment"), "{o}");
    let json_start = o.find('{').unwrap();
    let json_end = o.rfind('}').unwrap();
    let v: serde_json::Value = serde_json::from_str(&o[json_start..=json_end]).unwrap();
    assert_eq!(v["booted"], true);
    assert_eq!(v["deployments"][0]["staged"], true);
    assert_eq!(v["deployments"][1]["booted"], true);
    let status = ok(Tool::Ostree.admin(&b.root, "status"));
    assert!(status.lines().next().unwrap().contains(&b.c2), "{status}");
}

#[test]
fn killed_finalize_boots_old_set() {
    if !have_env() {
        return;
    }
    for fp in [
        "finalize:after-unlink",
        "deploy:after-etc-merge",
        "deploy:after-bls",
        "deploy:after-swap",
    ] {
        let b = setup(Tool::Kiln);
        let o = in_booted(&b.sc, &b.root, &format!("$KILN admin deploy --stage fakeos/v2\nKILN_FAILPOINT={fp} $KILN admin finalize-staged"));
        assert!(
            !o.status.success(),
            "{fp}: finalize should have been killed"
        );
        let status = ok(Tool::Ostree.admin(&b.root, "status"));
        let first = status.lines().next().unwrap();
        let expect_new = fp == "deploy:after-swap";
        assert!(
            first.contains(if expect_new { &b.c2 } else { &b.c1 }),
            "{fp}:\n{status}"
        );
        ok(ostree()
            .arg("fsck")
            .arg(format!("--repo={}", s(&b.root.join("ostree/repo")))));
        // A cleanup removes the half-finalized debris.
        ok(Tool::Kiln.admin(&b.root, "cleanup"));
        assert_eq!(
            deployment_dirs(&b.root).len(),
            entries(&b.root).len(),
            "{fp}: debris"
        );
    }
}
