//! The container engine: enter the namespaces of a container (starting it
//! when it is not running) and run a command there.
//!
//! Starting: user namespace (mapped by newuidmap/newgidmap), then mount,
//! uts, ipc and pid namespaces; an overlay of the image and the container's
//! layer; host paths bound in; `pivot_root`; a small init as process 1 keeps
//! the namespaces alive. Joining: `setns` into the init's namespaces. In both
//! cases the command is a child of kiln, so its exit status comes back, and
//! it keeps kiln's stdin, stdout, stderr and terminal. *no_new_privs* is
//! never set, so set-uid `sudo` works inside.

mod init;
mod mounts;
mod users;

use crate::error::{ns_err, Error, IoContext, Result};
use crate::host::HostUser;
use crate::idmap::IdMapping;
use crate::sys::{self, Fork, UnshareFlags};
use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::LinkNameSpaceType;
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What to run, and the host context it comes from.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// The command; empty for the user's login shell.
    pub argv: Vec<OsString>,
    /// The environment (the caller's, typically).
    pub env: Vec<(OsString, OsString)>,
    /// Working directory; falls back to `$HOME`, then `/`.
    pub cwd: PathBuf,
    /// `$XDG_RUNTIME_DIR` to share, if any.
    pub runtime_dir: Option<PathBuf>,
}

/// Paths of one container, on the host.
pub(crate) struct ContainerPaths {
    pub name: String,
    pub lower: PathBuf,
    pub dir: PathBuf,
}

impl ContainerPaths {
    fn state(&self) -> PathBuf {
        self.dir.join("state")
    }
}

/// The init of a running container: host pid and its start time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InitRef {
    pub pid: i32,
    pub start: u64,
}

fn proc_start_time(stat: &str) -> Option<u64> {
    // Field 22; the command name (field 2) may contain spaces and ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// The init recorded in `state/init`, if that process still lives.
pub(crate) fn running(dir: &Path) -> Option<InitRef> {
    let text = std::fs::read_to_string(dir.join("state").join("init")).ok()?;
    let mut it = text.split_whitespace();
    let pid: i32 = it.next()?.parse().ok()?;
    let start: u64 = it.next()?.parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    (proc_start_time(&stat)? == start && pid > 0).then_some(InitRef { pid, start })
}

/// Stop a running container: kill its init (the kernel then kills every
/// process in its pid namespace) and wait until it is gone.
pub(crate) fn stop(dir: &Path) -> Result<bool> {
    let Some(init) = running(dir) else {
        return Ok(false);
    };
    let Some(pid) = rustix::process::Pid::from_raw(init.pid) else {
        return Ok(false);
    };
    let pidfd = match rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::SRCH) => return Ok(false),
        Err(e) => return Err(e).ctx("open process", format!("/proc/{}", init.pid)),
    };
    // The pidfd pins the process: make sure it is still the same one.
    if running(dir) != Some(init) {
        return Ok(false);
    }
    rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL)
        .ctx("kill", format!("/proc/{}", init.pid))?;
    let mut fds = [rustix::event::PollFd::new(
        &pidfd,
        rustix::event::PollFlags::IN,
    )];
    let timeout = rustix::event::Timespec {
        tv_sec: 10,
        tv_nsec: 0,
    };
    let _ = rustix::event::poll(&mut fds, Some(&timeout));
    let _ = std::fs::remove_file(dir.join("state").join("init"));
    Ok(true)
}

/// Run `spec` in the container and return its exit code (128 + signal
/// number when killed by a signal). The calling process is left inside the
/// container's namespaces: call this last.
pub(crate) fn run(
    paths: &ContainerPaths,
    user: &HostUser,
    mapping: &IdMapping,
    spec: &RunSpec,
) -> Result<i32> {
    if try_join(paths, mapping)? {
        tracing::debug!("joined running container {}", paths.name);
    } else {
        let state = paths.state();
        std::fs::create_dir_all(&state).ctx("create", &state)?;
        let lock_path = state.join("lock");
        let lock = rustix::fs::open(
            &lock_path,
            OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .ctx("open", &lock_path)?;
        rustix::fs::flock(&lock, FlockOperation::LockExclusive).ctx("lock", &lock_path)?;
        // Someone may have started it while we waited.
        if !try_join(paths, mapping)? {
            start(paths, user, mapping, spec)?;
            tracing::debug!("started container {}", paths.name);
        }
        drop(lock);
    }
    exec(paths, user, spec)
}

/// Join a running container's namespaces. Ok(false): not running.
fn try_join(paths: &ContainerPaths, mapping: &IdMapping) -> Result<bool> {
    let Some(init) = running(&paths.dir) else {
        return Ok(false);
    };
    let open_ns = |ns: &str| {
        rustix::fs::open(
            format!("/proc/{}/ns/{ns}", init.pid),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let opened: std::result::Result<Vec<(OwnedFd, LinkNameSpaceType)>, _> = [
        ("user", LinkNameSpaceType::User),
        ("mnt", LinkNameSpaceType::Mount),
        ("uts", LinkNameSpaceType::HostNameAndNISDomainName),
        ("ipc", LinkNameSpaceType::InterProcessCommunication),
        ("pid", LinkNameSpaceType::ProcessID),
    ]
    .into_iter()
    .filter(|(n, _)| *n != "user" || matches!(mapping, IdMapping::User { .. }))
    .map(|(n, t)| open_ns(n).map(|fd| (fd, t)))
    .collect();
    let Ok(fds) = opened else {
        return Ok(false);
    };
    // The descriptors are taken: check they belong to the same process.
    if running(&paths.dir) != Some(init) {
        return Ok(false);
    }
    for (fd, kind) in &fds {
        rustix::thread::move_into_link_name_space(fd.as_fd(), Some(*kind)).map_err(ns_err(
            format!("join the {kind:?} namespace of {}", paths.name),
        ))?;
    }
    Ok(true)
}

/// Host-side facts gathered before the namespaces change the view.
struct HostFiles {
    binds: Vec<(PathBuf, PathBuf)>,
    files: Vec<(PathBuf, PathBuf)>,
}

fn gather_host(paths: &ContainerPaths, user: &HostUser, spec: &RunSpec) -> Result<HostFiles> {
    let mut binds: Vec<(PathBuf, PathBuf)> = Vec::new();
    for d in ["/dev", "/sys", "/tmp"] {
        binds.push((d.into(), d.into()));
    }
    if user.home.is_absolute() && user.home.is_dir() && user.home != Path::new("/") {
        let real = std::fs::canonicalize(&user.home).ctx("resolve", &user.home)?;
        binds.push((real, user.home.clone()));
    }
    if let Some(rt) = &spec.runtime_dir {
        if rt.is_absolute() && rt.is_dir() {
            binds.push((rt.clone(), rt.clone()));
        }
    }
    let mut files = Vec::new();
    for f in ["/etc/resolv.conf", "/etc/localtime", "/etc/machine-id"] {
        if let Ok(real) = std::fs::canonicalize(f) {
            if real.is_file() {
                files.push((real, PathBuf::from(f)));
            }
        }
    }
    // The system bus, for tools that talk to the host's services.
    let system_bus = Path::new("/run/dbus/system_bus_socket");
    if std::fs::symlink_metadata(system_bus).is_ok_and(|m| {
        use std::os::unix::fs::FileTypeExt;
        m.file_type().is_socket()
    }) {
        files.push((system_bus.into(), system_bus.into()));
    }
    // The host's /etc/hosts plus the container's hostname.
    let state = paths.state();
    let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    if !hosts.split_whitespace().any(|w| w == paths.name) {
        if !hosts.is_empty() && !hosts.ends_with('\n') {
            hosts.push('\n');
        }
        hosts.push_str(&format!("127.0.1.1\t{}\n", paths.name));
    }
    let hosts_path = state.join("hosts");
    std::fs::write(&hosts_path, hosts).ctx("write", &hosts_path)?;
    files.push((hosts_path, "/etc/hosts".into()));
    Ok(HostFiles { binds, files })
}

fn overlay_options(paths: &ContainerPaths, userxattr: bool) -> Result<std::ffi::CString> {
    let upper = paths.dir.join("upper");
    let work = paths.dir.join("work");
    let mut opts = String::new();
    for (k, p) in [
        ("lowerdir", &paths.lower),
        ("upperdir", &upper),
        ("workdir", &work),
    ] {
        let s = p.to_str().filter(|s| !s.contains([',', ':', '\\', '\n']));
        let s = s.ok_or_else(|| {
            Error::Unsupported(format!(
                "the path {} cannot be used in overlay options (it has ',' ':' or '\\')",
                p.display()
            ))
        })?;
        opts.push_str(&format!("{k}={s},"));
    }
    if userxattr {
        opts.push_str("userxattr");
    } else {
        opts.pop();
    }
    std::ffi::CString::new(opts).map_err(|_| Error::Unsupported("NUL in a path".into()))
}

/// Create the namespaces and the root, and fork the init. The calling
/// process ends inside every namespace but the pid one, whose first child
/// (the init) it has made.
fn start(
    paths: &ContainerPaths,
    user: &HostUser,
    mapping: &IdMapping,
    spec: &RunSpec,
) -> Result<()> {
    let host = gather_host(paths, user, spec)?;
    let state_path = paths.state();
    let state_dir = rustix::fs::open(
        &state_path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx("open", &state_path)?;
    let merged = paths.dir.join("merged");
    let options = overlay_options(paths, matches!(mapping, IdMapping::User { .. }))?;

    crate::userns::enter_once(mapping)?;
    sys::unshare(
        UnshareFlags::NEWNS | UnshareFlags::NEWUTS | UnshareFlags::NEWIPC | UnshareFlags::NEWPID,
    )
    .map_err(ns_err("unshare mount, uts, ipc and pid namespaces"))?;
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )
    .map_err(ns_err("make / a slave mount"))?;

    // The host root, read-only, for /run/host: cloned before the overlay
    // exists so it does not contain the container itself.
    let host_root = mounts::clone_tree(Path::new("/"), true)?;
    sys::make_tree_readonly(host_root.as_fd()).map_err(ns_err("make /run/host read-only"))?;

    rustix::mount::mount(
        "overlay",
        &merged,
        "overlay",
        MountFlags::empty(),
        options.as_c_str(),
    )
    .map_err(ns_err(format!("mount the overlay on {}", merged.display())))?;
    let root = rustix::fs::open(
        &merged,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ctx("open", &merged)?;

    let run_host = mounts::ensure_dir(root.as_fd(), Path::new("/run/host"))?;
    mounts::attach(host_root.as_fd(), run_host.as_fd(), Path::new("/run/host"))?;
    for (src, inside) in &host.binds {
        mounts::bind_dir(root.as_fd(), src, inside)?;
    }
    for (src, inside) in &host.files {
        if let Err(e) = mounts::bind_file(root.as_fd(), src, inside) {
            tracing::warn!("not sharing {}: {e}", inside.display());
        }
    }

    rustix::process::fchdir(&root).map_err(ns_err("enter the new root"))?;
    rustix::process::pivot_root(".", ".").map_err(ns_err("pivot_root"))?;
    rustix::mount::unmount(".", UnmountFlags::DETACH).map_err(ns_err("detach the old root"))?;
    rustix::process::chdir("/").map_err(ns_err("chdir /"))?;

    rustix::system::sethostname(paths.name.as_bytes()).map_err(ns_err("set the hostname"))?;
    users::prepare(user, &paths.name)?;
    if !Path::new("/proc").is_dir() {
        std::fs::create_dir("/proc").ctx("create", "/proc")?;
    }

    let (ready_r, ready_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(ns_err("create a pipe"))?;
    let init_pid = match sys::fork().map_err(ns_err("fork the container init"))? {
        Fork::Child => {
            drop(ready_r);
            init::main(ready_w)
        }
        Fork::Parent(pid) => pid,
    };
    drop(ready_w);
    let mut msg = [0u8; 5];
    let n = rustix::io::read(&ready_r, &mut msg).unwrap_or(0);
    if n == 0 || msg[0] != 0 {
        let errno = i32::from_le_bytes([msg[1], msg[2], msg[3], msg[4]]);
        return Err(Error::Namespace {
            step: "mount /proc in the container".into(),
            source: std::io::Error::from_raw_os_error(if n == 0 { libc::EIO } else { errno }),
        });
    }
    // Our /proc is now the container's: its init is process 1 there.
    let stat = std::fs::read_to_string("/proc/1/stat").ctx("read", "/proc/1/stat")?;
    let start = proc_start_time(&stat)
        .ok_or_else(|| Error::Unsupported("unreadable /proc/1/stat".into()))?;
    let record = format!("{} {start}\n", init_pid.as_raw_nonzero());
    let tmp = rustix::fs::openat(
        &state_dir,
        "init.tmp",
        OFlags::CREATE | OFlags::TRUNC | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .ctx("write", state_path.join("init.tmp"))?;
    rustix::io::write(&tmp, record.as_bytes()).ctx("write", state_path.join("init.tmp"))?;
    rustix::fs::renameat(&state_dir, "init.tmp", &state_dir, "init")
        .ctx("write", state_path.join("init"))?;
    Ok(())
}

/// PATH inside: the standard one, after the user's own directories.
fn inside_path(env: &[(OsString, OsString)], home: &Path) -> OsString {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some((_, host_path)) = env.iter().find(|(k, _)| k == "PATH") {
        for d in std::env::split_paths(host_path) {
            if d.starts_with(home) && home != Path::new("/") && !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    for d in [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ] {
        dirs.push(d.into());
    }
    std::env::join_paths(dirs).unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
}

fn exec(paths: &ContainerPaths, user: &HostUser, spec: &RunSpec) -> Result<i32> {
    let cwd = [spec.cwd.as_path(), user.home.as_path(), Path::new("/")]
        .into_iter()
        .find(|p| p.is_absolute() && p.is_dir())
        .unwrap_or(Path::new("/"))
        .to_path_buf();
    let mut cmd;
    let shown;
    if spec.argv.is_empty() {
        let shell = users::shell_inside(user).to_path_buf();
        let base = shell
            .file_name()
            .map(|b| b.to_string_lossy().into_owned())
            .unwrap_or_default();
        cmd = Command::new(&shell);
        cmd.arg0(format!("-{base}"));
        shown = shell.display().to_string();
    } else {
        cmd = Command::new(&spec.argv[0]);
        cmd.args(&spec.argv[1..]);
        shown = spec.argv[0].to_string_lossy().into_owned();
    }
    cmd.env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env("PATH", inside_path(&spec.env, &user.home))
        .env("HOSTNAME", &paths.name)
        .env("KILN_TOOLBOX", &paths.name)
        .env("container", "kiln")
        .current_dir(&cwd);
    tracing::debug!(command = %shown, cwd = %cwd.display(), "running in {}", paths.name);
    let spawned = cmd.spawn().and_then(|mut child| {
        sys::ignore_terminal_signals();
        child.wait()
    });
    let status = match spawned {
        Ok(s) => s,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ENOENT) =>
        {
            return Err(Error::CommandNotFound {
                command: shown,
                container: paths.name.clone(),
            })
        }
        Err(source) => {
            return Err(Error::Io {
                op: "run",
                path: shown.into(),
                source,
            })
        }
    };
    use std::os::unix::process::ExitStatusExt;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_field() {
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 1000 10";
        assert_eq!(proc_start_time(stat), Some(123_456));
    }

    #[test]
    fn path_keeps_home_dirs() {
        let env = vec![(
            "PATH".into(),
            "/home/u/.cargo/bin:/usr/bin:/opt/x/bin".into(),
        )];
        let p = inside_path(&env, Path::new("/home/u"));
        assert_eq!(
            p,
            OsString::from(
                "/home/u/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            )
        );
    }
}
