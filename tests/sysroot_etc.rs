//! The `/etc` three-way merge against `ostree admin deploy`: the same local
//! edits on the same commits give the same `/etc` (content, modes, owners,
//! symlinks, xattrs), and `/var` is never touched by an upgrade.

#[path = "sysroot_support/mod.rs"]
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

fn spec(version: &str, files: &[(&str, &str, u32)]) -> TreeSpec {
    let mut t = TreeSpec::new(version);
    t.etc = files
        .iter()
        .map(|(p, c, m)| (p.to_string(), c.to_string(), *m))
        .collect();
    t
}

fn etc_of(root: &Path) -> PathBuf {
    let d = deployment_dirs(root);
    // The default deployment is the one the current entries list first.
    let status = ok(Tool::Ostree.admin(root, "status"));
    let first = status
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_string();
    assert!(d.contains(&first));
    root.join("ostree/deploy/fakeos/deploy")
        .join(first)
        .join("etc")
}

/// Everything about a tree that matters: listing + contents + xattrs.
fn snapshot(dir: &Path) -> String {
    let mut out =
        ok(Command::new("find")
            .current_dir(dir)
            .args([".", "-printf", "%M %u %g %s %p %l\n"]));
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    out = lines.join("\n");
    let sums = ok(Command::new("sh")
        .current_dir(dir)
        .arg("-c")
        .arg("find . -type f -print0 | sort -z | xargs -0 -r sha256sum"));
    let xattrs = ok(Command::new("sh")
        .current_dir(dir)
        .arg("-c")
        .arg("getfattr -h -R -d -m - . 2>/dev/null | grep -v '^security.selinux' || true"));
    format!("{out}\n--\n{sums}\n--\n{xattrs}")
}

fn local_edits(etc: &Path) {
    fs::write(etc.join("app.conf"), "b=3 # local\n").unwrap();
    fs::set_permissions(
        etc.join("conf.d/one.conf"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    fs::remove_file(etc.join("two.conf")).unwrap();
    fs::write(etc.join("local.conf"), "mine\n").unwrap();
    fs::set_permissions(etc.join("local.conf"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::create_dir(etc.join("localdir")).unwrap();
    fs::write(etc.join("localdir/f"), "f\n").unwrap();
    std::os::unix::fs::symlink("local.conf", etc.join("local-link")).unwrap();
    // A symlink changed locally, an owner change, an xattr on a local file,
    // an xattr-only change (ignored by the merge, like ostree).
    fs::remove_file(etc.join("os-release")).unwrap();
    std::os::unix::fs::symlink("../usr/lib/os-release", etc.join("os-release")).unwrap();
    std::os::unix::fs::chown(etc.join("owned.conf"), Some(1000), Some(1000)).unwrap();
    ok(Command::new("setfattr")
        .args(["-n", "user.kiln", "-v", "local"])
        .arg(etc.join("local.conf")));
    ok(Command::new("setfattr")
        .args(["-n", "user.kiln", "-v", "x"])
        .arg(etc.join("three.conf")));
}

#[test]
fn etc_merge_matches_ostree() {
    if !have_env() {
        return;
    }
    let p = Pair::new();
    let v1 = spec(
        "1",
        &[
            ("app.conf", "a=1\n", 0o644),
            ("conf.d/one.conf", "one\n", 0o644),
            ("two.conf", "two\n", 0o644),
            ("three.conf", "three\n", 0o644),
            ("dropped.conf", "dropped\n", 0o644),
            ("secret.conf", "s\n", 0o644),
            ("owned.conf", "o\n", 0o644),
        ],
    );
    let v2 = spec(
        "2",
        &[
            ("app.conf", "a=10\n", 0o644),
            ("conf.d/one.conf", "one v2\n", 0o644),
            ("two.conf", "two v2\n", 0o644),
            ("three.conf", "three v2\n", 0o644),
            ("new.conf", "new\n", 0o644),
            ("secret.conf", "s\n", 0o600),
            ("owned.conf", "o v2\n", 0o644),
        ],
    );
    p.commit("v1", &v1);
    p.commit("v2", &v2);
    p.both("deploy", &["--os=fakeos", "fakeos/v1"]);
    // /var content is shared and must survive.
    for r in [&p.k, &p.o] {
        fs::write(r.join("ostree/deploy/fakeos/var/lib/state"), "keep\n").unwrap();
        local_edits(&etc_of(r));
    }
    let (a, b) = p.both("deploy", &["--os=fakeos", "fakeos/v2"]);
    assert_eq!(a, b, "merge summary line");
    assert!(a.contains("Copying /etc changes: "), "{a}");
    let (ek, eo) = (etc_of(&p.k), etc_of(&p.o));
    assert_eq!(
        snapshot(&ek),
        snapshot(&eo),
        "/etc after the merge (left kiln, right ostree)"
    );
    p.assert_same("after the merge");
    // Spot checks of the rules.
    assert_eq!(
        fs::read_to_string(ek.join("app.conf")).unwrap(),
        "b=3 # local\n",
        "local change wins over both-sides change"
    );
    assert_eq!(
        fs::read_to_string(ek.join("three.conf")).unwrap(),
        "three v2\n",
        "untouched file takes the new default"
    );
    assert!(
        !ek.join("two.conf").exists(),
        "locally removed stays removed"
    );
    assert!(!ek.join("dropped.conf").exists());
    assert!(ek.join("new.conf").exists());
    assert_eq!(
        fs::read_link(ek.join("local-link")).unwrap().to_str(),
        Some("local.conf")
    );
    assert_eq!(
        fs::metadata(ek.join("secret.conf"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o600
    );
    assert_eq!(
        fs::read_to_string(p.k.join("ostree/deploy/fakeos/var/lib/state")).unwrap(),
        "keep\n"
    );
}

#[test]
fn etc_conflicting_types() {
    if !have_env() {
        return;
    }
    // Local file where the new tree has a directory: ostree refuses the
    // merge; kiln too, and leaves nothing behind.
    let p = Pair::new();
    p.commit("v1", &spec("1", &[("x.conf", "x\n", 0o644)]));
    p.commit("v2", &spec("2", &[("x.conf/inner", "i\n", 0o644)]));
    p.both("deploy", &["--os=fakeos", "fakeos/v1"]);
    for r in [&p.k, &p.o] {
        fs::write(etc_of(r).join("x.conf"), "local\n").unwrap();
    }
    let before = listing(&p.k);
    let ek = fails(
        Tool::Kiln
            .admin(&p.k, "deploy")
            .args(["--os=fakeos", "fakeos/v2"]),
    );
    let eo = fails(
        Tool::Ostree
            .admin(&p.o, "deploy")
            .args(["--os=fakeos", "fakeos/v2"]),
    );
    assert!(ek.contains("newly defaults to directory"), "{ek}");
    assert!(eo.contains("newly defaults to directory"), "{eo}");
    assert_eq!(before, listing(&p.k), "kiln left debris");
}
