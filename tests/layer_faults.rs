//! Layering with bad input and crashes: each fails with one clear error
//! line, deploys nothing, changes no ref and nothing of the host's dpkg,
//! and leaves nothing behind once the next command has run (`ostree admin
//! status` and `ostree fsck` pass). Cases: unknown package, unresolvable
//! dependency, bad name, base package, corrupt, missing and foreign-arch
//! .deb, failing postinst, a full file system while dpkg unpacks and
//! while the commit is written, `kill -9` at each fail point and while
//! dpkg runs.

#[path = "layer_support/mod.rs"]
mod support;

use std::fs;
use std::io::BufRead;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::*;

/// Build one more `all` package into the Env's apt repository (`setup`
/// runs in the package root; `postinst` is its postinst body) and index
/// the repository again.
fn add_package(e: &Env, name: &str, setup: &str, postinst: &str) {
    let script = r#"set -e
R=$1; N=$2; B=$(mktemp -d); d=$B/$N; mkdir -p $d/DEBIAN
printf 'Package: %s\nVersion: 1.0\nArchitecture: all\nMaintainer: kiln <k@example.org>\nDescription: kiln test package %s\n' $N $N > $d/DEBIAN/control
(cd $d && eval "$3")
if [ -n "$4" ]; then printf '#!/bin/sh\n%s\n' "$4" > $d/DEBIAN/postinst; chmod 755 $d/DEBIAN/postinst; fi
dpkg-deb -Zgzip --root-owner-group -b $d $R/${N}_1.0_all.deb >/dev/null
cd $R && dpkg-scanpackages --multiversion . /dev/null > Packages 2>/dev/null
rm -rf $B
"#;
    ok(Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(&e.repo_dir)
        .args([name, setup, postinst]));
}

/// The refs of the sysroot's repo (`ostree refs`).
fn refs(e: &Env) -> String {
    ok(Command::new("ostree").arg("refs").arg(format!(
        "--repo={}",
        e.sysroot.join("ostree/repo").display()
    )))
}

/// The host's dpkg database: layering must never touch it.
fn host_dpkg() -> Vec<u8> {
    fs::read("/var/lib/dpkg/status").unwrap_or_default()
}

/// What must hold after a failed layering command.
struct Unchanged {
    deployments: Vec<String>,
    refs: String,
    host: Vec<u8>,
}

impl Unchanged {
    fn new(e: &Env) -> Unchanged {
        Unchanged {
            deployments: e.deployments(),
            refs: refs(e),
            host: host_dpkg(),
        }
    }

    fn check(&self, e: &Env, what: &str) {
        assert_eq!(e.deployments(), self.deployments, "{what}: deployed");
        assert_eq!(refs(e), self.refs, "{what}: refs changed");
        assert!(host_dpkg() == self.host, "{what}: the host's dpkg changed");
    }
}

#[test]
fn bad_input_deploys_nothing() {
    if !have_env() {
        return;
    }
    let e = Env::new("faults");
    let before = e.deployments();
    let same = Unchanged::new(&e);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["no-such-package".into()],
            "Unable to locate package no-such-package",
        ),
        (
            vec!["kiln-needs-missing".into()],
            "kiln-needs-missing : Depends: kiln-nonexistent",
        ),
        (vec!["Bad_Name".into()], "is not a Debian package name"),
        (vec!["less".into()], "less is already installed in the base"),
        (
            vec![e.local("corrupt.deb").to_string_lossy().into_owned()],
            "not a usable Debian package",
        ),
        (
            vec![e
                .local("kiln-arm_1.0_arm64.deb")
                .to_string_lossy()
                .into_owned()],
            "is built for architecture arm64",
        ),
        (
            vec![e.local("missing.deb").to_string_lossy().into_owned()],
            "missing.deb",
        ),
        (
            vec!["kiln-broken".into()],
            "kiln-broken package post-installation script subprocess returned error exit status 1",
        ),
    ];
    for (args, want) in cases {
        let mut a = vec!["install"];
        a.extend(args.iter().map(String::as_str));
        let err = fails(&mut e.kiln(&a));
        assert!(
            err.contains(want),
            "kiln install {args:?}: want {want:?} in {err:?}"
        );
        same.check(&e, &format!("kiln install {args:?}"));
        e.check_clean();
    }
    let err = fails(&mut e.kiln(&["uninstall", "kiln-hello"]));
    assert!(err.contains("not layered"), "{err}");
    let err = fails(&mut e.kiln(&["override", "reset", "less"]));
    assert!(err.contains("no override for package less"), "{err}");
    assert_eq!(e.deployments(), before);
}

#[test]
fn kill_at_every_layer_fail_point() {
    if !have_env() {
        return;
    }
    let e = Env::new("kill");
    let same = Unchanged::new(&e);
    for fp in [
        "layer:after-checkout",
        "layer:after-dpkg",
        "layer:before-commit",
    ] {
        let o = out(e.kiln(&["install", "kiln-hello"]).env("KILN_FAILPOINT", fp));
        assert_eq!(o.status.signal(), Some(9), "{fp}: {o:?}");
        same.check(&e, fp);
        ok(std::process::Command::new("ostree")
            .arg("fsck")
            .arg(format!(
                "--repo={}",
                e.sysroot.join("ostree/repo").display()
            )));
    }
    // The next command cleans up and succeeds.
    ok(&mut e.kiln(&["install", "kiln-hello"]));
    assert!(e.deployment(0).join("usr/bin/kiln-hello").is_file());
    e.check_clean();
}

/// Processes of the hanging postinst (they carry `KILN_HANG=1`).
fn hang_processes() -> Vec<String> {
    let mut v = Vec::new();
    for p in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let env = fs::read(p.path().join("environ")).unwrap_or_default();
        if env.split(|b| *b == 0).any(|kv| kv == b"KILN_HANG=1") {
            v.push(p.file_name().to_string_lossy().into_owned());
        }
    }
    v
}

#[test]
fn kill_9_while_dpkg_runs() {
    if !have_env() {
        return;
    }
    let e = Env::new("kill9");
    // A postinst that never ends: kiln cannot finish before the kill.
    add_package(
        &e,
        "kiln-hang",
        "",
        "export KILN_HANG=1; echo started > /kiln-hang.started; exec tail -f /dev/null",
    );
    let same = Unchanged::new(&e);
    let mut child = e
        .kiln(&["install", "kiln-hang"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.unwrap_or_default();
        seen.push(line.clone());
        if line.starts_with("Running dpkg in the new tree") {
            break;
        }
    }
    assert!(
        seen.last()
            .is_some_and(|l| l.starts_with("Running dpkg in the new tree")),
        "kiln never ran dpkg: {seen:?}"
    );
    child.kill().unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.signal(), Some(9), "{st:?}");
    same.check(&e, "kill -9 during dpkg");
    // The next command removes the dead run's work directory and succeeds;
    // the sandbox died with kiln.
    ok(&mut e.kiln(&["install", "kiln-hello"]));
    assert!(e.deployment(0).join("usr/bin/kiln-hello").is_file());
    assert!(!e.deployment(0).join("kiln-hang.started").exists());
    e.check_clean();
    assert_eq!(
        hang_processes(),
        Vec::<String>::new(),
        "sandbox outlived kiln"
    );
}

/// A tmpfs mounted at a directory, unmounted at drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        ok(Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4g,mode=755", "kiln-layer-test"])
            .arg(dir));
        Tmpfs(dir.to_path_buf())
    }

    /// (used, free) bytes.
    fn usage(&self) -> (u64, u64) {
        let o = ok(Command::new("stat")
            .args(["-f", "-c", "%S %b %f"])
            .arg(&self.0));
        let n: Vec<u64> = o.split_whitespace().map(|x| x.parse().unwrap()).collect();
        (n[0] * (n[1] - n[2]), n[0] * n[2])
    }

    /// Leave `free` bytes free.
    fn set_free(&self, free: u64) {
        let size = self.usage().0 + free;
        ok(Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn full_disk_mid_build() {
    if !have_env() {
        return;
    }
    const MIB: u64 = 1 << 20;
    let mut e = Env::new("full");
    // 24 MiB that gzip makes small: the download fits, the install not.
    add_package(
        &e,
        "kiln-big",
        "mkdir -p usr/share/kiln-big && head -c 25165824 /dev/zero > usr/share/kiln-big/blob",
        "",
    );
    // The sysroot moves to a tmpfs sized to what it holds plus a margin.
    let t = Tmpfs::mount(&e.sc.0.join("small"));
    ok(Command::new("cp").arg("-a").arg(&e.sysroot).arg(&t.0));
    e.sysroot = t.0.join("sysroot");
    let same = Unchanged::new(&e);
    let tmp_before = tmp_entries(&e);
    // 8 MiB free: dpkg runs out of space unpacking; 40 MiB: dpkg fits,
    // the commit of the 24 MiB file does not.
    // (The store keeps min-free-space-percent free: it refuses the commit
    // before the file system is full.)
    let repo = e.sysroot.join("ostree/repo").display().to_string();
    for (free, when, want) in [
        (8 * MIB, "dpkg", "No space left on device"),
        (40 * MIB, "commit", "not enough space"),
    ] {
        t.set_free(free);
        let err = fails(&mut e.kiln(&["install", "kiln-big"]));
        assert!(
            err.contains(want) && err.contains(&repo),
            "full during {when}: want {want:?} and {repo} in {err}"
        );
        same.check(&e, when);
        e.check_clean();
        assert_eq!(tmp_entries(&e), tmp_before, "full during {when}: repo tmp");
        // The space is given back.
        assert!(
            t.usage().1 + MIB >= free,
            "full during {when}: {:?}",
            t.usage()
        );
    }
    // With room, the next command works.
    t.set_free(128 * MIB);
    ok(&mut e.kiln(&["install", "kiln-big"]));
    assert!(e.deployment(0).join("usr/share/kiln-big/blob").is_file());
    e.check_clean();
    e.sysroot = e.sc.0.join("sysroot");
    drop(t);
}

fn tmp_entries(e: &Env) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(e.sysroot.join("ostree/repo/tmp"))
        .unwrap()
        .flatten()
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
