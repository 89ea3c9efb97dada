//! Helpers for the sysroot tests: fake OS trees, sysroots made by `kiln
//! admin` and `ostree admin` side by side, and tree listings to compare.
//!
//! The tests run as root with `ostree` 2022.7 on PATH; without them a test
//! is skipped (or fails when `KILN_CI=1`).
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const TS: &str = "--timestamp=2021-01-01T00:00:00Z";

/// Skip (return false) unless root with `ostree` on PATH.
pub fn have_env() -> bool {
    let root = rustix::process::geteuid().is_root();
    let ostree = Command::new("ostree")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if root && ostree {
        return true;
    }
    if std::env::var_os("KILN_CI").is_some() {
        panic!("sysroot tests need root and ostree");
    }
    eprintln!("skipping: needs root and ostree");
    false
}

pub fn kiln_bin() -> PathBuf {
    std::env::var_os("KILN_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kiln")))
}

pub fn kiln() -> Command {
    Command::new(kiln_bin())
}

pub fn ostree() -> Command {
    Command::new("ostree")
}

pub fn out(mut cmd: impl std::borrow::BorrowMut<Command>) -> Output {
    let cmd = cmd.borrow_mut();
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Run, require success, return stdout.
pub fn ok(mut cmd: impl std::borrow::BorrowMut<Command>) -> String {
    let cmd = cmd.borrow_mut();
    let o = out(&mut *cmd);
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}\nstdout: {}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Run, require failure, return stderr.
pub fn fails(mut cmd: impl std::borrow::BorrowMut<Command>) -> String {
    let cmd = cmd.borrow_mut();
    let o = out(&mut *cmd);
    assert!(
        !o.status.success(),
        "{cmd:?} should fail; stdout: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

pub fn sysroot_arg(p: &Path) -> String {
    format!("--sysroot={}", s(p))
}

/// Versions of a fake OS tree.
#[derive(Clone)]
pub struct TreeSpec {
    pub version: String,
    /// Distinct kernel bytes (same string → same bootcsum).
    pub kernel: String,
    pub pretty_name: Option<String>,
    /// (path under usr/etc, content, mode)
    pub etc: Vec<(String, String, u32)>,
    /// Extra files under usr/share: (name, size)
    pub share: Vec<(String, usize)>,
    pub kernel_size: usize,
}

impl TreeSpec {
    pub fn new(version: &str) -> TreeSpec {
        TreeSpec {
            version: version.into(),
            kernel: "A".into(),
            pretty_name: Some(format!("Fake OS {version}")),
            etc: vec![
                ("app.conf".into(), format!("a={version}\n"), 0o644),
                ("conf.d/one.conf".into(), "one\n".into(), 0o644),
            ],
            share: vec![],
            kernel_size: 0,
        }
    }
}

/// Write a fake OS tree: kernel + initramfs in usr/lib/modules/5.10.0,
/// os-release, usr/etc, a binary, an empty file, a symlink.
pub fn make_tree(dir: &Path, spec: &TreeSpec) {
    let _ = fs::remove_dir_all(dir);
    let m = dir.join("usr/lib/modules/5.10.0");
    fs::create_dir_all(&m).unwrap();
    let mut k = format!("kernel {}\n", spec.kernel).into_bytes();
    if spec.kernel_size > k.len() {
        let fill: Vec<u8> = (0..spec.kernel_size - k.len())
            .map(|i| (i % 251) as u8 ^ spec.kernel.as_bytes()[0])
            .collect();
        k.extend(fill);
    }
    fs::write(m.join("vmlinuz"), &k).unwrap();
    fs::write(
        m.join("initramfs.img"),
        format!("initramfs {}\n", spec.kernel),
    )
    .unwrap();
    let mut osr = "ID=fakeos\n".to_string();
    if let Some(p) = &spec.pretty_name {
        osr.push_str(&format!("PRETTY_NAME=\"{p}\"\n"));
    }
    fs::write(dir.join("usr/lib/os-release"), osr).unwrap();
    for (p, c, mode) in &spec.etc {
        let f = dir.join("usr/etc").join(p);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, c).unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(*mode)).unwrap();
    }
    std::os::unix::fs::symlink("../lib/os-release", dir.join("usr/etc/os-release")).unwrap();
    fs::create_dir_all(dir.join("usr/bin")).unwrap();
    fs::write(dir.join("usr/bin/tool"), format!("tool {}\n", spec.version)).unwrap();
    fs::set_permissions(dir.join("usr/bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::create_dir_all(dir.join("usr/share")).unwrap();
    fs::write(dir.join("usr/share/empty"), "").unwrap();
    for (name, size) in &spec.share {
        let data: Vec<u8> = name.bytes().cycle().take(*size).collect();
        fs::write(dir.join("usr/share").join(name), data).unwrap();
    }
    for d in ["boot", "dev", "proc", "sys", "run", "tmp", "var", "sysroot"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::os::unix::fs::symlink("sysroot/ostree", dir.join("ostree")).unwrap();
    for (l, t) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
        ("sbin", "usr/sbin"),
    ] {
        std::os::unix::fs::symlink(t, dir.join(l)).unwrap();
    }
}

/// `ostree commit` a tree into a sysroot's repo as `fakeos/BRANCH`.
pub fn commit(sysroot: &Path, tree: &Path, branch: &str, version: &str) -> String {
    ok(ostree()
        .arg("commit")
        .arg(format!("--repo={}", s(&sysroot.join("ostree/repo"))))
        .arg("-b")
        .arg(format!("fakeos/{branch}"))
        .arg(TS)
        .arg("-s")
        .arg(branch)
        .arg(format!("--add-metadata-string=version={version}"))
        .arg(tree))
    .trim()
    .to_string()
}

/// A sysroot made by one tool: `init-fs` + `os-init fakeos`.
pub fn init_sysroot(path: &Path, tool: Tool) {
    fs::create_dir_all(path).unwrap();
    ok(tool.admin(path, "init-fs").arg(s(path)));
    ok(tool.admin(path, "os-init").arg("fakeos"));
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Kiln,
    Ostree,
}

impl Tool {
    /// `TOOL admin VERB --sysroot=PATH` (init-fs takes no --sysroot).
    pub fn admin(self, sysroot: &Path, verb: &str) -> Command {
        let mut c = match self {
            Tool::Kiln => kiln(),
            Tool::Ostree => ostree(),
        };
        c.arg("admin").arg(verb);
        if verb != "init-fs" {
            c.arg(sysroot_arg(sysroot));
        }
        c
    }
}

/// `find -printf` of a sysroot without repo objects and lock files:
/// type/mode, links, owner, size, path, symlink target.
pub fn listing(root: &Path) -> String {
    let o = ok(Command::new("find").current_dir(root).args([
        ".",
        "-path",
        "./ostree/repo/objects",
        "-prune",
        "-o",
        "!",
        "-name",
        ".lock",
        "!",
        "-name",
        "lock",
        "-printf",
        "%M %n %u %g %s %p %l\n",
    ]));
    let mut lines: Vec<&str> = o.lines().collect();
    lines.sort_by_key(|l| l.split(' ').nth(5).unwrap_or("").to_string());
    lines.join("\n")
}

/// The objects of a sysroot's repo (names only).
pub fn objects(root: &Path) -> Vec<String> {
    let o = ok(Command::new("find")
        .current_dir(root.join("ostree/repo"))
        .args(["objects", "-type", "f"]));
    let mut v: Vec<String> = o.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// All BLS entries of the current loader: (file name, content).
pub fn entries(root: &Path) -> Vec<(String, String)> {
    let dir = root.join("boot/loader/entries");
    let mut v: Vec<(String, String)> = fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().to_string(),
                        fs::read_to_string(e.path()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Is the deployment root `chattr +i`?
pub fn immutable(p: &Path) -> bool {
    let o = ok(Command::new("lsattr").arg("-d").arg(p));
    o.split_whitespace().next().unwrap_or("").contains('i')
}

/// Paths of deployment dirs (relative), sorted.
pub fn deployment_dirs(root: &Path) -> Vec<String> {
    let mut v = Vec::new();
    let base = root.join("ostree/deploy/fakeos/deploy");
    if let Ok(rd) = fs::read_dir(&base) {
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                v.push(e.file_name().to_string_lossy().to_string());
            }
        }
    }
    v.sort();
    v
}

/// Remove a scratch sysroot (deployment roots are immutable).
pub fn rm_sysroot(root: &Path) {
    let _ = Command::new("chattr")
        .arg("-R")
        .arg("-i")
        .arg(root)
        .stderr(Stdio::null())
        .status();
    let _ = fs::remove_dir_all(root);
}

/// A scratch dir that clears immutable flags before deletion.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("kiln-sysroot-")
                .tempdir_in(std::env::var("KILN_TEST_TMP").unwrap_or_else(|_| "/var/tmp".into()))
                .unwrap(),
        }
    }
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new("chattr")
            .arg("-R")
            .arg("-i")
            .arg(self.dir.path())
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status();
    }
}

/// Two sysroots with the same commits: `k` driven by kiln, `o` by ostree.
pub struct Pair {
    pub scratch: Scratch,
    pub k: PathBuf,
    pub o: PathBuf,
}

impl Pair {
    pub fn new() -> Pair {
        let scratch = Scratch::new();
        let (k, o) = (scratch.path("kiln"), scratch.path("ostree"));
        init_sysroot(&k, Tool::Kiln);
        init_sysroot(&o, Tool::Ostree);
        Pair { scratch, k, o }
    }

    /// Build a tree and commit it into both repos; returns the checksum.
    pub fn commit(&self, branch: &str, spec: &TreeSpec) -> String {
        let tree = self.scratch.path(&format!("tree-{branch}"));
        make_tree(&tree, spec);
        let a = commit(&self.k, &tree, branch, &spec.version);
        let b = commit(&self.o, &tree, branch, &spec.version);
        assert_eq!(a, b);
        a
    }

    /// Run the same admin verb with both tools; returns (kiln, ostree) stdout.
    pub fn both(&self, verb: &str, args: &[&str]) -> (String, String) {
        let a = ok(Tool::Kiln.admin(&self.k, verb).args(args));
        let b = ok(Tool::Ostree.admin(&self.o, verb).args(args));
        (a, b)
    }

    /// The two sysroots are the same tree, entries, objects.
    pub fn assert_same(&self, what: &str) {
        assert_eq!(
            listing(&self.k),
            listing(&self.o),
            "{what}: trees differ (left kiln, right ostree)"
        );
        assert_eq!(
            entries(&self.k),
            entries(&self.o),
            "{what}: BLS entries differ"
        );
        assert_eq!(objects(&self.k), objects(&self.o), "{what}: objects differ");
    }
}
