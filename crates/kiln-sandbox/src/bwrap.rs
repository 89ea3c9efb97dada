//! The bubblewrap command line for one sandboxed process.
//!
//! The caller (kiln-apps) decides *what* is granted; this module turns that
//! into bwrap arguments in the order bwrap needs them (mount points before
//! the mounts under them). Nothing from the host appears in the sandbox
//! unless a [`Bind`] names it.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Path, PathBuf};

/// How a host path is bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    ReadOnly,
    ReadWrite,
    /// Device nodes usable (`--dev-bind`).
    Device,
}

/// One host path made visible in the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub src: PathBuf,
    pub dest: PathBuf,
    pub mode: BindMode,
    /// Skip silently when `src` does not exist (`--bind-try`).
    pub optional: bool,
}

impl Bind {
    pub fn ro(src: impl Into<PathBuf>, dest: impl Into<PathBuf>) -> Bind {
        Bind {
            src: src.into(),
            dest: dest.into(),
            mode: BindMode::ReadOnly,
            optional: true,
        }
    }
    pub fn rw(src: impl Into<PathBuf>, dest: impl Into<PathBuf>) -> Bind {
        Bind {
            src: src.into(),
            dest: dest.into(),
            mode: BindMode::ReadWrite,
            optional: true,
        }
    }
    pub fn dev(src: impl Into<PathBuf>, dest: impl Into<PathBuf>) -> Bind {
        Bind {
            src: src.into(),
            dest: dest.into(),
            mode: BindMode::Device,
            optional: true,
        }
    }
}

/// A file whose content bwrap reads from an inherited fd
/// (`--ro-bind-data FD DEST`), e.g. `/etc/passwd` or `/.flatpak-info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    pub fd: i32,
    pub dest: PathBuf,
}

/// What one entry of the runtime's `/etc` is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtcEntry {
    Symlink(PathBuf),
    Other,
}

/// What the runtime tree (its `files/`, mounted at `/usr`) provides at the
/// top level: merged-/usr symlinks and `/etc` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeLayout {
    /// Which of `bin`, `sbin`, `lib`, `lib32`, `lib64`, `libx32` exist.
    pub top_dirs: Vec<String>,
    /// Entries of `files/etc`, sorted by name.
    pub etc: Vec<(String, EtcEntry)>,
}

/// `/etc` entries the sandbox gets from elsewhere (synthesised or host).
const ETC_SKIPPED: &[&str] = &[
    "passwd",
    "group",
    "machine-id",
    "resolv.conf",
    "host.conf",
    "hosts",
    "gai.conf",
    "localtime",
    "timezone",
];

const TOP_DIRS: &[&str] = &["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

impl RuntimeLayout {
    /// Read the layout of a runtime's `files/` directory.
    pub fn read(files: &Path) -> io::Result<RuntimeLayout> {
        let mut out = RuntimeLayout::default();
        for d in TOP_DIRS {
            if files.join(d).is_dir() {
                out.top_dirs.push((*d).to_string());
            }
        }
        let etc = files.join("etc");
        match std::fs::read_dir(&etc) {
            Ok(rd) => {
                for e in rd {
                    let e = e?;
                    let Some(name) = e.file_name().to_str().map(str::to_string) else {
                        continue;
                    };
                    if ETC_SKIPPED.contains(&name.as_str()) {
                        continue;
                    }
                    let entry = if e.file_type()?.is_symlink() {
                        EtcEntry::Symlink(std::fs::read_link(e.path())?)
                    } else {
                        EtcEntry::Other
                    };
                    out.etc.push((name, entry));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        out.etc.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

/// Everything bwrap needs to know about one sandbox.
#[derive(Debug, Clone, Default)]
pub struct SandboxSpec {
    /// The runtime's `files/`, mounted read-only at `/usr`.
    pub runtime_files: PathBuf,
    pub runtime_layout: RuntimeLayout,
    /// The app's `files/`, mounted at `/app` (read-only unless
    /// `app_writable`, which `build` uses).
    pub app_files: Option<PathBuf>,
    pub app_writable: bool,
    pub uid: u32,
    pub share_network: bool,
    pub share_ipc: bool,
    /// `devices=all`: the host's `/dev`.
    pub dev_all: bool,
    /// Device binds (`/dev/dri`, `/dev/kvm`, `/dev/shm`).
    pub dev_binds: Vec<Bind>,
    /// Host files, sockets and data directories, in order.
    pub binds: Vec<Bind>,
    /// Directories to create first (mount points for `binds`).
    pub dirs: Vec<PathBuf>,
    /// Synthesised files (`/etc/passwd`, `/etc/group`, `/.flatpak-info`).
    pub data_files: Vec<DataFile>,
    /// The compiled seccomp filter, readable from this fd.
    pub seccomp_fd: Option<i32>,
    /// `--sync-fd`: kept open as long as the sandbox lives (the D-Bus
    /// proxy watches it).
    pub sync_fd: Option<i32>,
    /// The whole environment (`--clearenv` first).
    pub env: Vec<(String, String)>,
    pub chdir: Option<PathBuf>,
    /// bwrap ≥ 0.8 understands `--disable-userns`.
    pub disable_userns: bool,
    pub die_with_parent: bool,
    pub command: Vec<OsString>,
}

fn push(args: &mut Vec<OsString>, items: &[&str]) {
    args.extend(items.iter().map(OsString::from));
}

fn push_path(args: &mut Vec<OsString>, flag: &str, a: &Path, b: &Path) {
    args.push(flag.into());
    args.push(a.as_os_str().to_owned());
    args.push(b.as_os_str().to_owned());
}

fn bind_flag(b: &Bind) -> &'static str {
    match (b.mode, b.optional) {
        (BindMode::ReadOnly, false) => "--ro-bind",
        (BindMode::ReadOnly, true) => "--ro-bind-try",
        (BindMode::ReadWrite, false) => "--bind",
        (BindMode::ReadWrite, true) => "--bind-try",
        (BindMode::Device, false) => "--dev-bind",
        (BindMode::Device, true) => "--dev-bind-try",
    }
}

impl SandboxSpec {
    /// The argument vector for `bwrap` (without `bwrap` itself).
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::with_capacity(128);
        // Namespaces. A new user namespace (mapping only the caller's id)
        // in which no further user namespace can be made; no capabilities
        // are kept even when started by root.
        push(&mut a, &["--unshare-user"]);
        if self.disable_userns {
            push(&mut a, &["--disable-userns"]);
        }
        push(
            &mut a,
            &["--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"],
        );
        if !self.share_ipc {
            push(&mut a, &["--unshare-ipc"]);
        }
        if !self.share_network {
            push(&mut a, &["--unshare-net"]);
        }
        push(&mut a, &["--cap-drop", "ALL", "--new-session"]);
        if self.die_with_parent {
            push(&mut a, &["--die-with-parent"]);
        }

        // Trees.
        push_path(&mut a, "--ro-bind", &self.runtime_files, Path::new("/usr"));
        match &self.app_files {
            Some(app) if self.app_writable => push_path(&mut a, "--bind", app, Path::new("/app")),
            Some(app) => push_path(&mut a, "--ro-bind", app, Path::new("/app")),
            None => push(&mut a, &["--dir", "/app"]),
        }
        for d in &self.runtime_layout.top_dirs {
            push(
                &mut a,
                &["--symlink", &format!("usr/{d}"), &format!("/{d}")],
            );
        }
        push(&mut a, &["--proc", "/proc"]);
        if self.dev_all {
            push(&mut a, &["--dev-bind", "/dev", "/dev"]);
        } else {
            push(&mut a, &["--dev", "/dev"]);
            for b in &self.dev_binds {
                push_path(&mut a, bind_flag(b), &b.src, &b.dest);
            }
        }
        for s in ["block", "bus", "class", "dev", "devices"] {
            let p = format!("/sys/{s}");
            push(&mut a, &["--ro-bind-try", &p, &p]);
        }
        push(
            &mut a,
            &[
                "--tmpfs",
                "/tmp",
                "--dir",
                "/var/tmp",
                "--symlink",
                "../run",
                "/var/run",
                "--dir",
                "/run/host",
            ],
        );
        let run_user = format!("/run/user/{}", self.uid);
        push(&mut a, &["--perms", "0700", "--tmpfs", &run_user]);

        // /etc: the runtime's entries one by one, then synthesised files.
        push(&mut a, &["--dir", "/etc"]);
        for (name, entry) in &self.runtime_layout.etc {
            let dest = format!("/etc/{name}");
            match entry {
                EtcEntry::Symlink(t) => {
                    a.push("--symlink".into());
                    a.push(t.as_os_str().to_owned());
                    a.push(dest.into());
                }
                EtcEntry::Other => {
                    let src = self.runtime_files.join("etc").join(name);
                    push_path(&mut a, "--ro-bind", &src, Path::new(&dest));
                }
            }
        }
        if self.share_network {
            for f in ["resolv.conf", "hosts", "host.conf", "gai.conf"] {
                let p = format!("/etc/{f}");
                push(&mut a, &["--ro-bind-try", &p, &p]);
            }
        }
        push(
            &mut a,
            &["--ro-bind-try", "/etc/machine-id", "/etc/machine-id"],
        );
        for f in &self.data_files {
            a.push("--ro-bind-data".into());
            a.push(f.fd.to_string().into());
            a.push(f.dest.as_os_str().to_owned());
        }

        // Granted host paths.
        for d in &self.dirs {
            a.push("--dir".into());
            a.push(d.as_os_str().to_owned());
        }
        for b in &self.binds {
            push_path(&mut a, bind_flag(b), &b.src, &b.dest);
        }

        if let Some(fd) = self.seccomp_fd {
            push(&mut a, &["--seccomp", &fd.to_string()]);
        }
        if let Some(fd) = self.sync_fd {
            push(&mut a, &["--sync-fd", &fd.to_string()]);
        }
        push(&mut a, &["--clearenv"]);
        for (k, v) in &self.env {
            push(&mut a, &["--setenv", k, v]);
        }
        if let Some(d) = &self.chdir {
            a.push("--chdir".into());
            a.push(d.as_os_str().to_owned());
        }
        a.push("--".into());
        a.extend(self.command.iter().cloned());
        a
    }
}

/// `/etc/passwd` for the sandbox: the user and `nfsnobody`, as Flatpak.
pub fn passwd(user: &str, uid: u32, gid: u32, home: &Path, shell: &str) -> String {
    format!(
        "{user}:x:{uid}:{gid}:{user}:{}:{shell}\nnfsnobody:x:65534:65534:Unmapped user:/:/sbin/nologin\n",
        home.display()
    )
}

/// `/etc/group` for the sandbox.
pub fn group(group: &str, gid: u32, user: &str) -> String {
    format!("{group}:x:{gid}:{user}\nnfsnobody:x:65534:\n")
}

/// Whether `p` is a sane absolute sandbox path (no `..`, no NUL).
pub fn is_clean_abs(p: &OsStr) -> bool {
    let p = Path::new(p);
    p.is_absolute()
        && p.components().all(|c| {
            matches!(
                c,
                std::path::Component::RootDir | std::path::Component::Normal(_)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(args: &[OsString], needle: &[&str]) -> bool {
        args.windows(needle.len())
            .any(|w| w.iter().zip(needle).all(|(a, b)| a == OsStr::new(b)))
    }

    fn spec() -> SandboxSpec {
        SandboxSpec {
            runtime_files: "/inst/runtime/files".into(),
            runtime_layout: RuntimeLayout {
                top_dirs: vec!["bin".into(), "lib".into()],
                etc: vec![
                    ("os-release".into(), EtcEntry::Other),
                    (
                        "mtab".into(),
                        EtcEntry::Symlink("../proc/self/mounts".into()),
                    ),
                ],
            },
            app_files: Some("/inst/app/files".into()),
            uid: 1000,
            disable_userns: true,
            die_with_parent: true,
            command: vec!["hello".into(), "--x".into()],
            env: vec![("PATH".into(), "/app/bin:/usr/bin".into())],
            ..Default::default()
        }
    }

    #[test]
    fn default_sandbox_is_closed() {
        let a = spec().args();
        for flags in [
            &["--unshare-user", "--disable-userns"][..],
            &["--unshare-net"],
            &["--unshare-ipc"],
            &["--unshare-pid"],
            &["--die-with-parent"],
            &["--new-session"],
            &["--cap-drop", "ALL"],
            &["--ro-bind", "/inst/runtime/files", "/usr"],
            &["--ro-bind", "/inst/app/files", "/app"],
            &["--symlink", "usr/bin", "/bin"],
            &["--proc", "/proc"],
            &["--dev", "/dev"],
            &["--tmpfs", "/tmp"],
            &["--perms", "0700", "--tmpfs", "/run/user/1000"],
            &[
                "--ro-bind",
                "/inst/runtime/files/etc/os-release",
                "/etc/os-release",
            ],
            &["--symlink", "../proc/self/mounts", "/etc/mtab"],
            &["--clearenv"],
            &["--", "hello", "--x"],
        ] {
            assert!(find(&a, flags), "missing {flags:?} in {a:?}");
        }
        assert!(!find(
            &a,
            &["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
        ));
        assert!(!a.iter().any(|x| x == "--share-net"));
    }

    #[test]
    fn network_and_grants() {
        let mut s = spec();
        s.share_network = true;
        s.binds
            .push(Bind::ro("/home/u/Downloads", "/home/u/Downloads"));
        s.dev_binds.push(Bind::dev("/dev/dri", "/dev/dri"));
        s.seccomp_fd = Some(5);
        let a = s.args();
        assert!(!find(&a, &["--unshare-net"]));
        assert!(find(
            &a,
            &["--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
        ));
        assert!(find(
            &a,
            &["--ro-bind-try", "/home/u/Downloads", "/home/u/Downloads"]
        ));
        assert!(find(&a, &["--dev-bind-try", "/dev/dri", "/dev/dri"]));
        assert!(find(&a, &["--seccomp", "5"]));
    }

    #[test]
    fn clean_paths() {
        assert!(is_clean_abs(OsStr::new("/a/b")));
        assert!(!is_clean_abs(OsStr::new("a/b")));
        assert!(!is_clean_abs(OsStr::new("/a/../b")));
    }
}
