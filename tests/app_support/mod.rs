//! Helpers of the `kiln app` tests: a small runtime built from Debian
//! packages (busybox-static + libc6, downloaded with `apt-get download`,
//! cached in /var/cache/kiln-tests keyed by the package versions), app
//! versions made with `kiln app build-*`, the escape probe (a static C
//! program, cached by the hash of its source), and a private installation
//! per test (KILN_APPS_SYSTEM_DIR / KILN_APPS_USER_DIR).
#![allow(dead_code)]

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const CACHE: &str = "/var/cache/kiln-tests";
pub const RUNTIME: &str = "org.kiln.Test";
pub const APP: &str = "org.kiln.Demo";
/// Applets linked into the runtime's /usr/bin.
const APPLETS: &[&str] = &[
    "sh", "echo", "cat", "ls", "id", "true", "false", "sleep", "ps", "touch", "mkdir", "wget",
    "nc", "env", "grep", "test", "readlink", "stat", "head",
];

fn in_ci() -> bool {
    std::env::var_os("KILN_CI").is_some() || std::env::var_os("CI").is_some()
}

/// Skip loudly (or fail under CI) when a requirement is missing.
pub fn require(what: &str, ok: bool) -> bool {
    if !ok {
        if in_ci() {
            panic!("app tests need {what}");
        }
        eprintln!("SKIPPED app test: needs {what}");
    }
    ok
}

fn has(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Root, bwrap, nginx, gcc and apt-get (for the runtime packages).
pub fn available() -> bool {
    require("root", rustix::process::geteuid().is_root())
        && require("bwrap", has("bwrap"))
        && require("nginx", has("nginx"))
        && require("gcc", has("gcc"))
        && require("apt-get and dpkg-deb", has("apt-get") && has("dpkg-deb"))
}

pub fn sh(script: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("sh")
}

fn sh_ok(script: &str) -> String {
    let o = sh(script);
    assert!(
        o.status.success(),
        "{script}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn candidate_version(pkg: &str) -> String {
    let out = sh_ok(&format!(
        "apt-cache show --no-all-versions {pkg} | sed -n 's/^Version: //p' | head -1"
    ));
    out.trim().to_string()
}

fn hash_of(s: &str) -> String {
    // FNV-1a: a stable cache key, no crypto needed.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

/// The runtime's `files/` (its /usr): busybox-static and libc6 from
/// Debian, cached by package versions.
pub fn runtime_files() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let key = format!(
            "v1 busybox-static={} libc6={} {}",
            candidate_version("busybox-static"),
            candidate_version("libc6"),
            APPLETS.join(",")
        );
        let dir = PathBuf::from(CACHE).join(format!("app-runtime-{}", hash_of(&key)));
        let files = dir.join("files");
        if files.join("bin/busybox").exists() {
            return files;
        }
        let work = dir.with_extension("tmp");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(work.join("debs")).unwrap();
        sh_ok(&format!(
            "cd {w}/debs && apt-get download -q busybox-static libc6 >/dev/null 2>&1 || \
             (apt-get update -q >/dev/null 2>&1 && apt-get download -q busybox-static libc6)",
            w = work.display()
        ));
        sh_ok(&format!(
            "set -e; cd {w}; mkdir root; for d in debs/*.deb; do dpkg-deb -x $d root; done; \
             mkdir -p files/bin files/lib files/etc; \
             cp -a root/usr/. files/; \
             [ -d root/bin ] && cp -a root/bin/. files/bin/; \
             [ -d root/lib ] && cp -a root/lib/. files/lib/; \
             [ -d root/lib64 ] && mkdir -p files/lib64 && cp -a root/lib64/. files/lib64/; \
             [ -d root/etc ] && cp -a root/etc/. files/etc/; \
             rm -rf files/share/doc files/share/locale files/share/man files/share/lintian; \
             printf 'NAME=\"kiln test runtime\"\\nID=kiln-test\\n' > files/etc/os-release",
            w = work.display()
        ));
        for a in APPLETS {
            let l = work.join("files/bin").join(a);
            if std::fs::symlink_metadata(&l).is_err() {
                std::os::unix::fs::symlink("busybox", &l).unwrap();
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::rename(work.join("files"), &files).unwrap();
        let _ = std::fs::remove_dir_all(&work);
        files
    })
}

/// The escape probe, compiled statically, cached by source hash.
pub fn probe() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let src = source_root().join("tests/app_support/probe.c");
        let text = std::fs::read_to_string(&src).unwrap();
        let out = PathBuf::from(CACHE).join(format!("app-probe-{}", hash_of(&text)));
        if !out.exists() {
            std::fs::create_dir_all(CACHE).unwrap();
            let tmp = out.with_extension("tmp");
            sh_ok(&format!(
                "gcc -static -O1 -o {} {}",
                tmp.display(),
                src.display()
            ));
            std::fs::rename(&tmp, &out).unwrap();
        }
        out
    })
}

/// A private world: installations, a served repo, a home.
pub struct World {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    pub sys: PathBuf,
    pub user: PathBuf,
    pub home: PathBuf,
}

impl World {
    pub fn new() -> World {
        let dir = scratch();
        let p = dir.path().to_path_buf();
        let w = World {
            repo: p.join("repo"),
            sys: p.join("sys"),
            user: p.join("user"),
            home: p.join("home"),
            dir,
        };
        std::fs::create_dir_all(&w.home).unwrap();
        w
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `kiln app ARGS` in this world, as root.
    pub fn kiln(&self, args: &[&str]) -> Command {
        let mut c = kiln();
        c.arg("app")
            .args(args)
            .env("KILN_APPS_SYSTEM_DIR", &self.sys)
            .env("KILN_APPS_USER_DIR", &self.user)
            .env("HOME", &self.home)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("KILN_FAILPOINT");
        c
    }

    pub fn ok(&self, args: &[&str]) -> String {
        run_ok(self.kiln(args))
    }

    pub fn fail(&self, args: &[&str]) -> String {
        let (_, err) = run_fail(self.kiln(args));
        err
    }

    /// Export the test runtime into `repo`.
    pub fn export_runtime(&self, repo: &Path) -> String {
        let rt = self.path().join("rt");
        if !rt.exists() {
            std::fs::create_dir_all(&rt).unwrap();
            sh_ok(&format!(
                "cp -al {} {}/files",
                runtime_files().display(),
                rt.display()
            ));
            std::fs::write(
                rt.join("metadata"),
                format!("[Runtime]\nname={RUNTIME}\nruntime={RUNTIME}/x86_64/1\nsdk={RUNTIME}/x86_64/1\n"),
            )
            .unwrap();
        }
        let out = self.ok(&[
            "build-export",
            "--runtime",
            "--json",
            repo.to_str().unwrap(),
            rt.to_str().unwrap(),
            "1",
        ]);
        json_commit(&out)
    }

    /// Build (or rebuild) app `id` with `script` as `files/bin/demo`, and
    /// export it to `repo` as `stable`. Returns the commit.
    pub fn export_app(&self, repo: &Path, id: &str, script: &str, finish: &[&str]) -> String {
        let d = self.path().join(format!("build-{id}"));
        let _ = std::fs::remove_dir_all(&d);
        self.ok(&["build-init", d.to_str().unwrap(), id, RUNTIME, RUNTIME, "1"]);
        let bin = d.join("files/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("demo"), script).unwrap();
        std::fs::set_permissions(bin.join("demo"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::copy(probe(), bin.join("probe")).unwrap();
        let apps = d.join("files/share/applications");
        std::fs::create_dir_all(&apps).unwrap();
        std::fs::write(
            apps.join(format!("{id}.desktop")),
            "[Desktop Entry]\nType=Application\nName=Demo\nExec=demo %U\n",
        )
        .unwrap();
        let mut args = vec!["build-finish", d.to_str().unwrap(), "--command=demo"];
        args.extend_from_slice(finish);
        self.ok(&args);
        let out = self.ok(&[
            "build-export",
            "--json",
            repo.to_str().unwrap(),
            d.to_str().unwrap(),
            "stable",
        ]);
        json_commit(&out)
    }

    pub fn list(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["list", "--json"])).unwrap()
    }

    pub fn listed_refs(&self) -> Vec<String> {
        self.list()
            .iter()
            .map(|v| v["ref"].as_str().unwrap().to_string())
            .collect()
    }

    /// `kiln app run ARGS`: (exit code, stdout, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let mut a = vec!["run"];
        a.extend_from_slice(args);
        let o = self.kiln(&a).output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }
}

pub fn json_commit(out: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(out).unwrap();
    v["commit"].as_str().unwrap().to_string()
}

pub fn v1() -> &'static str {
    "#!/bin/sh\necho \"hello v1 from $FLATPAK_ID\"\nexit 3\n"
}

pub fn v2() -> &'static str {
    "#!/bin/sh\necho \"hello v2 from $FLATPAK_ID\"\nexit 4\n"
}

/// The real `flatpak`, with its installations inside the test's world (no
/// session bus, HOME in the world).
pub fn flatpak(w: &World) -> Command {
    let mut c = Command::new("flatpak");
    c.env("FLATPAK_SYSTEM_DIR", w.path().join("fp-system"))
        .env("FLATPAK_USER_DIR", w.path().join("fp-user"))
        .env("HOME", &w.home)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("XDG_RUNTIME_DIR");
    c
}

pub fn fp_ok(w: &World, args: &[&str]) -> String {
    let mut c = flatpak(w);
    c.args(args);
    run_ok(c)
}

pub fn have_flatpak() -> bool {
    available()
        && require(
            "flatpak and ostree",
            sh("command -v flatpak && command -v ostree")
                .status
                .success(),
        )
}

/// The test runtime (`runtime_files`), exported by `flatpak build-export
/// --runtime` into `repo` (an archive repo) as `runtime/RUNTIME/x86_64/1`.
pub fn flatpak_export_runtime(w: &World, repo: &Path) {
    let rt = w.path().join("fprt");
    std::fs::create_dir_all(&rt).unwrap();
    assert!(sh(&format!(
        "cp -al {} {}/files",
        runtime_files().display(),
        rt.display()
    ))
    .status
    .success());
    std::fs::write(
        rt.join("metadata"),
        format!("[Runtime]\nname={RUNTIME}\nruntime={RUNTIME}/x86_64/1\nsdk={RUNTIME}/x86_64/1\n"),
    )
    .unwrap();
    fp_ok(
        w,
        &[
            "build-export",
            "--runtime",
            "--files=files",
            &repo.to_string_lossy(),
            &rt.to_string_lossy(),
            "1",
        ],
    );
}
