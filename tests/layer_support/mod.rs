//! Helpers of the layering tests: a tiny Debian base tree (mmdebstrap
//! `essential` + adduser + less, cached under /var/cache/kiln-tests/layer
//! by its inputs), a scratch sysroot with it deployed, and a local apt
//! repository of test packages built with dpkg-deb and served with `file:`.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

pub const OS: &str = "debian";
pub const REF: &str = "debian/test";
const KVER: &str = "6.1.0-99-amd64";
const MMDEBSTRAP: &[&str] = &[
    "--variant=essential",
    "--include=adduser,less",
    "--mode=root",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "bookworm",
];

pub fn kiln_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kiln"))
}

pub fn kiln() -> Command {
    Command::new(kiln_bin())
}

/// Root, ostree, mmdebstrap, bwrap and dpkg-scanpackages; else skip
/// (fail with KILN_CI=1).
pub fn have_env() -> bool {
    let root = rustix::process::geteuid().is_root();
    let tools = [
        "ostree",
        "mmdebstrap",
        "bwrap",
        "dpkg-scanpackages",
        "setpriv",
    ]
    .iter()
    .all(|t| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if root && tools {
        return true;
    }
    if std::env::var("KILN_CI").as_deref() == Ok("1") {
        panic!("layering tests need root, ostree, mmdebstrap, bwrap, dpkg-dev (scripts/deps.sh)");
    }
    eprintln!("skipping: needs root, ostree, mmdebstrap, bwrap, dpkg-scanpackages");
    false
}

pub fn out(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

pub fn ok(cmd: &mut Command) -> String {
    let o = out(cmd);
    assert!(
        o.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Must fail with one `error: …` line last on stderr; returns that line.
pub fn fails(cmd: &mut Command) -> String {
    let o = out(cmd);
    assert!(
        !o.status.success(),
        "{cmd:?} should have failed:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let line = err
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in:\n{err}"));
    line.to_string()
}

/// FNV-1a of the inputs: a stable cache key.
fn sha(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn mirror() -> String {
    std::env::var("KILN_TEST_MIRROR").unwrap_or_else(|_| "http://deb.debian.org/debian".into())
}

static BASE: Mutex<()> = Mutex::new(());

/// The cached base root file system (built once, ~1 minute).
pub fn base_rootfs() -> PathBuf {
    rootfs_with(&[], "")
}

/// The base root file system with more packages (`--include`), then
/// `setup` (sh, run with the tree as `$1`); cached by all its inputs.
pub fn rootfs_with(include: &[&str], setup: &str) -> PathBuf {
    let _g = BASE.lock().unwrap_or_else(|p| p.into_inner());
    let m = mirror();
    let mut args: Vec<String> = MMDEBSTRAP.iter().map(|a| a.to_string()).collect();
    if !include.is_empty() {
        args.insert(1, format!("--include={}", include.join(",")));
    }
    let mut key: Vec<&str> = args.iter().map(String::as_str).collect();
    key.push(&m);
    if !setup.is_empty() {
        key.push(setup);
    }
    let dir = PathBuf::from("/var/cache/kiln-tests/layer");
    fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("base-{}", sha(&key)));
    if !p.join("usr/bin/dpkg").exists() {
        let partial = dir.join(format!("partial-{}", std::process::id()));
        let _ = fs::remove_dir_all(&partial);
        ok(Command::new("mmdebstrap").args(&args).arg(&partial).arg(&m));
        if !setup.is_empty() {
            ok(Command::new("sh").args(["-c", setup, "sh"]).arg(&partial));
        }
        let _ = fs::remove_dir_all(&p);
        fs::rename(&partial, &p).unwrap();
    }
    p
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn sysroot_arg(p: &Path) -> String {
    format!("--sysroot={}", p.display())
}

/// A scratch directory removed at drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let p = PathBuf::from(format!(
            "/var/tmp/kiln-layer-test-{name}-{}",
            std::process::id()
        ));
        let _ = Command::new("chattr").arg("-R").arg("-i").arg(&p).output();
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new("chattr")
            .arg("-R")
            .arg("-i")
            .arg(&self.0)
            .output();
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Compose the base root file system (plus `marker`) as `version` at REF.
pub fn commit_base(sc: &Scratch, sysroot: &Path, version: &str) -> String {
    commit_rootfs(sc, sysroot, version, &base_rootfs())
}

/// Compose `rootfs` (plus a fake kernel and `marker`) as `version` at REF.
pub fn commit_rootfs(sc: &Scratch, sysroot: &Path, version: &str, rootfs: &Path) -> String {
    let tree = sc.0.join(format!("rootfs-{version}"));
    let _ = fs::remove_dir_all(&tree);
    ok(Command::new("cp")
        .args(["-a", "--reflink=auto"])
        .arg(rootfs)
        .arg(&tree));
    fs::create_dir_all(tree.join("boot")).unwrap();
    fs::write(tree.join(format!("boot/vmlinuz-{KVER}")), "fake kernel\n").unwrap();
    fs::write(
        tree.join(format!("boot/initrd.img-{KVER}")),
        "fake initrd\n",
    )
    .unwrap();
    fs::write(
        tree.join("usr/share/kiln-base-version"),
        format!("{version}\n"),
    )
    .unwrap();
    let o = ok(kiln()
        .args([
            "compose",
            "rootfs",
            "--json",
            "--set-version",
            version,
            "-b",
            REF,
        ])
        .arg("--repo")
        .arg(sysroot.join("ostree/repo"))
        .arg(&tree));
    let _ = fs::remove_dir_all(&tree);
    let v: serde_json::Value = serde_json::from_str(&o).unwrap();
    v["commit"].as_str().unwrap().to_string()
}

/// The local apt repository: kiln-hello (depends on kiln-libhello and
/// adduser; conffile, /opt, /var/lib, a system user), kiln-broken
/// (failing postinst), kiln-needs-missing (unresolvable dependency).
pub fn make_apt_repo(dir: &Path, with_hello: bool) {
    fs::create_dir_all(dir).unwrap();
    let script = r#"set -e
R=$1; WITH_HELLO=$2; B=$(mktemp -d)
mk() {
  d=$B/$1; mkdir -p $d/DEBIAN
  printf 'Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: kiln <k@example.org>\nDescription: kiln test package %s\n' "$1" "$2" "$3" "$1" > $d/DEBIAN/control
  if [ -n "$4" ]; then echo "Depends: $4" >> $d/DEBIAN/control; fi
  if [ -n "$5" ]; then printf '#!/bin/sh\nset -e\n%s\n' "$5" > $d/DEBIAN/postinst; chmod 755 $d/DEBIAN/postinst; fi
}
mk kiln-libhello 1.0 all "" ""
mkdir -p $B/kiln-libhello/usr/lib/kiln; echo lib > $B/kiln-libhello/usr/lib/kiln/libhello.txt
mk kiln-hello 1.0 all "kiln-libhello, adduser" 'if [ "$1" = configure ]; then adduser --system --group --no-create-home --home /var/lib/kiln-hello kilnhello >/dev/null; fi'
mkdir -p $B/kiln-hello/usr/bin $B/kiln-hello/etc $B/kiln-hello/opt/kiln-hello $B/kiln-hello/var/lib/kiln-hello
printf '#!/bin/sh\necho hello from kiln\n' > $B/kiln-hello/usr/bin/kiln-hello; chmod 755 $B/kiln-hello/usr/bin/kiln-hello
echo "greeting=hi" > $B/kiln-hello/etc/kiln-hello.conf; echo /etc/kiln-hello.conf > $B/kiln-hello/DEBIAN/conffiles
echo data > $B/kiln-hello/opt/kiln-hello/data; echo state > $B/kiln-hello/var/lib/kiln-hello/state
mk kiln-broken 1.0 all "" 'echo kiln-broken postinst fails >&2; exit 1'
mk kiln-needs-missing 1.0 all "kiln-nonexistent" ""
mk kiln-local 1.0 all "" ""
mkdir -p $B/kiln-local/usr/share/kiln-local; echo local > $B/kiln-local/usr/share/kiln-local/file
mk kiln-arm 1.0 arm64 "" ""
rm -f $R/*.deb $R/Packages
for p in kiln-libhello kiln-hello kiln-broken kiln-needs-missing; do
  if [ "$p" = kiln-hello ] && [ "$WITH_HELLO" != 1 ]; then continue; fi
  dpkg-deb --root-owner-group -b $B/$p $R/${p}_1.0_all.deb >/dev/null
done
mkdir -p $R/../local
dpkg-deb --root-owner-group -b $B/kiln-local $R/../local/kiln-local_1.0_all.deb >/dev/null
dpkg-deb --root-owner-group -b $B/kiln-arm $R/../local/kiln-arm_1.0_arm64.deb >/dev/null
head -c 300 $R/../local/kiln-local_1.0_all.deb > $R/../local/corrupt.deb
(cd $R && dpkg-scanpackages --multiversion . /dev/null > Packages 2>/dev/null)
rm -rf $B
"#;
    ok(Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(dir)
        .arg(if with_hello { "1" } else { "0" }));
}

/// A sysroot with the base deployed, its `/etc/apt` pointing only at the
/// local repository.
pub struct Env {
    pub sc: Scratch,
    pub sysroot: PathBuf,
    pub repo_dir: PathBuf,
    pub base: String,
}

impl Env {
    pub fn new(name: &str) -> Env {
        Env::with_rootfs(name, &base_rootfs())
    }

    /// Like [`Env::new`] with another base root file system.
    pub fn with_rootfs(name: &str, rootfs: &Path) -> Env {
        let sc = Scratch::new(name);
        let sysroot = sc.0.join("sysroot");
        fs::create_dir_all(&sysroot).unwrap();
        ok(kiln().args(["admin", "init-fs"]).arg(&sysroot));
        ok(kiln()
            .args(["admin", "os-init", OS])
            .arg(sysroot_arg(&sysroot)));
        let base = commit_rootfs(&sc, &sysroot, "1", rootfs);
        ok(kiln()
            .args(["admin", "deploy", REF, "--os", OS])
            .arg(sysroot_arg(&sysroot)));
        let repo_dir = sc.0.join("apt/repo");
        make_apt_repo(&repo_dir, true);
        let e = Env {
            sc,
            sysroot,
            repo_dir,
            base,
        };
        e.point_apt();
        e
    }

    /// Deployment directory of index `i`.
    pub fn deployment(&self, i: usize) -> PathBuf {
        let st = self.status();
        let d = &st["deployments"][i];
        self.sysroot.join(d["path"].as_str().unwrap())
    }

    /// The admin's sources: only the local repository (set in every
    /// deployment's /etc, as an admin would after each deploy).
    pub fn point_apt(&self) {
        let st = self.status();
        for d in st["deployments"].as_array().unwrap() {
            let etc = self
                .sysroot
                .join(d["path"].as_str().unwrap())
                .join("etc/apt");
            let _ = fs::remove_file(etc.join("sources.list"));
            fs::create_dir_all(etc.join("sources.list.d")).unwrap();
            fs::write(
                etc.join("sources.list.d/kiln-test.list"),
                format!("deb [trusted=yes] file:{} ./\n", self.repo_dir.display()),
            )
            .unwrap();
        }
    }

    pub fn local(&self, name: &str) -> PathBuf {
        self.sc.0.join("apt/local").join(name)
    }

    pub fn kiln(&self, args: &[&str]) -> Command {
        let mut c = kiln();
        c.args(args).arg(sysroot_arg(&self.sysroot));
        c
    }

    pub fn status(&self) -> serde_json::Value {
        let o = ok(kiln()
            .args(["status", "--json"])
            .arg(sysroot_arg(&self.sysroot)));
        serde_json::from_str(&o).unwrap()
    }

    /// (checksum.serial) of every deployment, in order.
    pub fn deployments(&self) -> Vec<String> {
        self.status()["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| format!("{}.{}", d["checksum"].as_str().unwrap(), d["serial"]))
            .collect()
    }

    /// `ostree admin status` and `ostree fsck` pass; no layering debris.
    pub fn check_clean(&self) {
        ok(Command::new("ostree")
            .args(["admin", "status"])
            .arg(sysroot_arg(&self.sysroot)));
        ok(Command::new("ostree").arg("fsck").arg(format!(
            "--repo={}",
            self.sysroot.join("ostree/repo").display()
        )));
        let tmp = self.sysroot.join("ostree/repo/tmp");
        let left: Vec<String> = fs::read_dir(&tmp)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("kiln-layer-"))
            .collect();
        assert!(
            left.is_empty(),
            "layering debris in {}: {left:?}",
            tmp.display()
        );
    }
}
