//! `run` and `build`: from an installed app (or a build directory) and its
//! merged permissions to a bubblewrap command line.
//!
//! The launch path is kept short because it is paid at every start: it
//! reads two `active` links, two `metadata` files and the override files,
//! never opens the repo, and writes the seccomp filter and the synthesised
//! files (`/etc/passwd`, `/etc/group`, `/.flatpak-info`) into memfds that
//! bwrap inherits. The caller then `exec`s bwrap in place of itself.

use crate::appref::{AppRef, Kind};
use crate::context::{Context, ContextArgs, FsMode};
use crate::error::{Error, Result};
use crate::installation::{app_data_dir, Installation, Scope};
use crate::metadata::Metadata;
use kiln_sandbox::bwrap::{group, passwd, Bind, DataFile, RuntimeLayout, SandboxSpec};
use kiln_sandbox::seccomp::{filter_bytes, SeccompOptions};
use kiln_store::keyfile::KeyFile;
use std::ffi::OsString;
use std::io::{Seek, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// What the CLI knows about the caller (the library reads no environment).
#[derive(Debug, Clone, Default)]
pub struct HostEnv {
    pub uid: u32,
    pub gid: u32,
    pub user: String,
    pub group: String,
    pub home: PathBuf,
    pub cwd: Option<PathBuf>,
    /// The caller's environment (only a few variables are passed on).
    pub vars: Vec<(String, String)>,
}

impl HostEnv {
    pub fn var(&self, k: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn runtime_dir(&self) -> Option<PathBuf> {
        self.var("XDG_RUNTIME_DIR").map(PathBuf::from)
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--command=`: instead of the metadata's `command=`.
    pub command: Option<String>,
    pub args: Vec<OsString>,
    pub context: ContextArgs,
    /// `--devel`: allow ptrace/perf (Flatpak's `--devel`).
    pub devel: bool,
    /// `--runtime=ID/ARCH/BRANCH` instead of the app's.
    pub runtime: Option<String>,
    /// Don't read override files (`--no-overrides`... kiln has it for tests).
    pub ignore_overrides: bool,
    /// bwrap ≥ 0.8 (`--disable-userns`).
    pub bwrap_disable_userns: bool,
    /// `--no-session-bus`: no filtered session bus (flatpak run's flag;
    /// `sockets=session-bus` still gives the whole bus).
    pub no_session_bus: bool,
}

/// A launch ready to `exec`: `bwrap` + `args`, with `fds` kept open.
#[derive(Debug)]
pub struct Launch {
    pub args: Vec<OsString>,
    pub fds: Vec<OwnedFd>,
    pub app: AppRef,
    pub commit: String,
    pub runtime: AppRef,
    pub runtime_commit: String,
    /// The D-Bus proxy to start first, if the session bus is filtered.
    pub dbus_proxy: Option<DbusProxyPlan>,
    /// Grants that could not be honoured (reserved paths, missing sockets).
    pub warnings: Vec<String>,
    pub context: Context,
}

#[derive(Debug)]
pub struct DbusProxyPlan {
    pub args: Vec<OsString>,
    /// The proxy writes one byte here when ready; its end closes when the
    /// sandbox is gone.
    pub ready_read: OwnedFd,
    pub ready_write: OwnedFd,
    pub socket: PathBuf,
}

/// A file with `data` that a child inherits (no close-on-exec), read from
/// its start.
pub fn data_fd(name: &str, data: &[u8]) -> Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(name, rustix::fs::MemfdFlags::empty())
        .map_err(|e| Error::io(format!("memfd {name}"), e.into()))?;
    let mut f = std::fs::File::from(fd);
    f.write_all(data)
        .and_then(|_| f.rewind())
        .map_err(|e| Error::io(format!("memfd {name}"), e))?;
    Ok(OwnedFd::from(f))
}

/// Paths an app may not have bound over, as Flatpak reserves them.
const RESERVED: &[&str] = &[
    "/",
    "/usr",
    "/app",
    "/proc",
    "/dev",
    "/sys",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/bin",
    "/sbin",
    "/run/host",
    "/.flatpak-info",
];

fn is_reserved(p: &Path) -> bool {
    RESERVED.iter().any(|r| {
        let r = Path::new(r);
        p == r || (r != Path::new("/") && p.starts_with(r))
    })
}

/// `xdg-*` directories from `~/.config/user-dirs.dirs`, with defaults.
fn xdg_user_dir(host: &HostEnv, name: &str) -> Option<PathBuf> {
    let (key, default) = match name {
        "desktop" => ("XDG_DESKTOP_DIR", "Desktop"),
        "documents" => ("XDG_DOCUMENTS_DIR", "Documents"),
        "download" => ("XDG_DOWNLOAD_DIR", "Downloads"),
        "music" => ("XDG_MUSIC_DIR", "Music"),
        "pictures" => ("XDG_PICTURES_DIR", "Pictures"),
        "public-share" => ("XDG_PUBLICSHARE_DIR", "Public"),
        "templates" => ("XDG_TEMPLATES_DIR", "Templates"),
        "videos" => ("XDG_VIDEOS_DIR", "Videos"),
        "config" => return Some(host.home.join(".config")),
        "cache" => return Some(host.home.join(".cache")),
        "data" => return Some(host.home.join(".local/share")),
        _ => return None,
    };
    let conf =
        std::fs::read_to_string(host.home.join(".config/user-dirs.dirs")).unwrap_or_default();
    for line in conf.lines() {
        if let Some(v) = line.strip_prefix(&format!("{key}=")) {
            let v = v.trim().trim_matches('"');
            let p = match v.strip_prefix("$HOME") {
                Some(rest) => host.home.join(rest.trim_start_matches('/')),
                None => PathBuf::from(v),
            };
            if p.is_absolute() && !p.components().any(|c| c == std::path::Component::ParentDir) {
                return Some(p);
            }
        }
    }
    Some(host.home.join(default))
}

/// The host path(s) a `filesystems=` location means, with the sandbox path.
fn resolve_fs(host: &HostEnv, loc: &str) -> Vec<(PathBuf, PathBuf)> {
    let same = |p: PathBuf| (p.clone(), p);
    match loc {
        "home" | "~" => vec![same(host.home.clone())],
        "host" | "host-root" => {
            let mut v: Vec<(PathBuf, PathBuf)> = [
                "/home",
                "/media",
                "/mnt",
                "/opt",
                "/srv",
                "/run/media",
                "/var/home",
            ]
            .iter()
            .map(|p| same(PathBuf::from(p)))
            .collect();
            v.push(same(host.home.clone()));
            v.push((PathBuf::from("/usr"), PathBuf::from("/run/host/usr")));
            v.push((PathBuf::from("/etc"), PathBuf::from("/run/host/etc")));
            v
        }
        "host-os" => vec![(PathBuf::from("/usr"), PathBuf::from("/run/host/usr"))],
        "host-etc" => vec![(PathBuf::from("/etc"), PathBuf::from("/run/host/etc"))],
        _ => {
            if let Some(rest) = loc.strip_prefix("xdg-run/") {
                let Some(rd) = host.runtime_dir() else {
                    return vec![];
                };
                return vec![(
                    rd.join(rest),
                    PathBuf::from(format!("/run/user/{}", host.uid)).join(rest),
                )];
            }
            if let Some(rest) = loc.strip_prefix("xdg-") {
                let (name, sub) = rest.split_once('/').unwrap_or((rest, ""));
                return xdg_user_dir(host, name)
                    .map(|p| if sub.is_empty() { p } else { p.join(sub) })
                    .map(same)
                    .into_iter()
                    .collect();
            }
            if let Some(rest) = loc.strip_prefix("~/") {
                return vec![same(host.home.join(rest))];
            }
            if loc.starts_with('/') {
                return vec![same(PathBuf::from(loc))];
            }
            vec![]
        }
    }
}

/// Find an installed app in the first installation that has it.
pub fn find_app<'a>(
    installs: &'a [Installation],
    name: &str,
) -> Result<(&'a Installation, AppRef)> {
    for inst in installs {
        if let Some(r) = inst.find(name, Some(Kind::App)) {
            return Ok((inst, r));
        }
    }
    Err(Error::NotInstalled(name.to_string()))
}

fn find_runtime<'a>(
    installs: &'a [Installation],
    prefer: &'a Installation,
    rt: &AppRef,
) -> Option<(&'a Installation, String)> {
    std::iter::once(prefer)
        .chain(installs.iter())
        .find_map(|i| i.active_commit(rt).map(|c| (i, c)))
}

fn load_overrides(path: &Path) -> Result<Context> {
    match std::fs::read_to_string(path) {
        Ok(t) => {
            let kf = KeyFile::parse(&t)
                .map_err(|e| Error::metadata(path.display().to_string(), e.to_string()))?;
            Context::from_keyfile(&kf)
                .map_err(|e| Error::metadata(path.display().to_string(), e.to_string()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Context::default()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// The merged overrides for an app: system global, system app, then user
/// global, user app (only the user's for a user installation's app? no:
/// Flatpak applies the user's overrides to system apps too).
pub fn overrides_for(installs: &[Installation], app_scope: Scope, id: &str) -> Result<Context> {
    let mut c = Context::default();
    for scope in [Scope::System, Scope::User] {
        if scope == Scope::System && app_scope == Scope::User {
            continue;
        }
        if let Some(inst) = installs.iter().find(|i| i.scope == scope) {
            c.merge(&load_overrides(&inst.overrides_path(None))?);
            c.merge(&load_overrides(&inst.overrides_path(Some(id)))?);
        }
    }
    Ok(c)
}

/// Everything needed for one sandbox, common to `run` and `build`.
struct Plan<'a> {
    host: &'a HostEnv,
    id: String,
    runtime_files: PathBuf,
    app_files: Option<PathBuf>,
    app_writable: bool,
    context: Context,
    command: Vec<OsString>,
    info: String,
    devel: bool,
    disable_userns: bool,
    no_session_bus: bool,
}

/// bwrap arguments, fds to keep open, warnings, the D-Bus proxy plan.
type Built = (
    Vec<OsString>,
    Vec<OwnedFd>,
    Vec<String>,
    Option<DbusProxyPlan>,
);

fn build_sandbox(p: Plan<'_>) -> Result<Built> {
    let host = p.host;
    let ctx = &p.context;
    let mut warnings = Vec::new();
    let mut fds = Vec::new();
    let layout =
        RuntimeLayout::read(&p.runtime_files).map_err(|e| Error::io(&p.runtime_files, e))?;
    let mut spec = SandboxSpec {
        runtime_files: p.runtime_files.clone(),
        runtime_layout: layout,
        app_files: p.app_files.clone(),
        app_writable: p.app_writable,
        uid: host.uid,
        share_network: ctx.has_share("network"),
        share_ipc: ctx.has_share("ipc"),
        dev_all: ctx.has_device("all"),
        disable_userns: p.disable_userns,
        die_with_parent: true,
        command: p.command.clone(),
        ..Default::default()
    };
    for (d, path) in [
        ("dri", "/dev/dri"),
        ("kvm", "/dev/kvm"),
        ("shm", "/dev/shm"),
    ] {
        if ctx.has_device(d) {
            spec.dev_binds.push(Bind::dev(path, path));
        }
    }

    // Host files, parents before children.
    let mut binds: Vec<Bind> = Vec::new();
    for (loc, mode) in &ctx.filesystems {
        if *mode == FsMode::Denied || loc == "host-reset" {
            continue;
        }
        for (src, dest) in resolve_fs(host, loc) {
            if is_reserved(&dest) {
                warnings.push(format!(
                    "not sharing {} with the sandbox: {} is reserved",
                    loc,
                    dest.display()
                ));
                continue;
            }
            if *mode == FsMode::Create {
                let _ = std::fs::create_dir_all(&src);
            }
            binds.push(match mode {
                FsMode::ReadOnly => Bind::ro(src, dest),
                _ => Bind::rw(src, dest),
            });
        }
    }
    // Per-app data, always.
    let data = app_data_dir(&host.home, &p.id);
    for sub in ["cache", "config", "data", ".local/state"] {
        let d = data.join(sub);
        // One stat when it is there (every run but the first), not
        // create_dir_all's mkdir + stat.
        if !d.is_dir() {
            std::fs::create_dir_all(&d).map_err(|e| Error::io(&d, e))?;
        }
    }
    binds.push(Bind {
        optional: false,
        ..Bind::rw(&data, &data)
    });
    for per in &ctx.persistent {
        let src = data.join(per);
        let _ = std::fs::create_dir_all(&src);
        binds.push(Bind::rw(src, host.home.join(per)));
    }
    binds.sort_by_key(|b| b.dest.components().count());
    spec.binds = binds;

    // Environment.
    let run_user = PathBuf::from(format!("/run/user/{}", host.uid));
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), "/app/bin:/usr/bin".into()),
        ("LD_LIBRARY_PATH".into(), "/app/lib".into()),
        ("XDG_CONFIG_DIRS".into(), "/app/etc/xdg:/etc/xdg".into()),
        ("XDG_DATA_DIRS".into(), "/app/share:/usr/share".into()),
        ("HOME".into(), host.home.display().to_string()),
        ("USER".into(), host.user.clone()),
        ("LOGNAME".into(), host.user.clone()),
        ("XDG_RUNTIME_DIR".into(), run_user.display().to_string()),
        (
            "XDG_DATA_HOME".into(),
            data.join("data").display().to_string(),
        ),
        (
            "XDG_CONFIG_HOME".into(),
            data.join("config").display().to_string(),
        ),
        (
            "XDG_CACHE_HOME".into(),
            data.join("cache").display().to_string(),
        ),
        (
            "XDG_STATE_HOME".into(),
            data.join(".local/state").display().to_string(),
        ),
        ("FLATPAK_ID".into(), p.id.clone()),
        ("container".into(), "flatpak".into()),
    ];
    for k in [
        "LANG",
        "LANGUAGE",
        "LC_ALL",
        "LC_CTYPE",
        "LC_MESSAGES",
        "TERM",
        "COLORTERM",
        "TZ",
        "NO_COLOR",
    ] {
        if let Some(v) = host.var(k) {
            env.push((k.into(), v.into()));
        }
    }

    // Sockets.
    let rt_dir = host.runtime_dir();
    let mut sock = |grant: bool,
                    src: Option<PathBuf>,
                    dest: PathBuf,
                    vars: Vec<(String, String)>,
                    what: &str,
                    binds: &mut Vec<Bind>,
                    env: &mut Vec<(String, String)>| {
        if !grant {
            return;
        }
        match src.filter(|s| s.exists()) {
            Some(s) => {
                binds.push(Bind::ro(s, dest));
                env.extend(vars);
            }
            None => warnings.push(format!("{what} socket not found on the host; not shared")),
        }
    };
    let mut extra = Vec::new();
    let wayland = ctx.has_socket("wayland");
    let wl = host
        .var("WAYLAND_DISPLAY")
        .unwrap_or("wayland-0")
        .to_string();
    sock(
        wayland,
        rt_dir.as_ref().map(|d| d.join(&wl)),
        run_user.join("wayland-0"),
        vec![("WAYLAND_DISPLAY".into(), "wayland-0".into())],
        "Wayland",
        &mut extra,
        &mut env,
    );
    let x11 = ctx.has_socket("x11") || (ctx.has_socket("fallback-x11") && !wayland);
    if x11 {
        let display = host.var("DISPLAY").unwrap_or("");
        let num = display
            .strip_prefix(':')
            .and_then(|d| d.split('.').next())
            .filter(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
        let mut vars = vec![("DISPLAY".into(), ":99".into())];
        if let Some(x) = host
            .var("XAUTHORITY")
            .map(PathBuf::from)
            .filter(|p| p.exists())
        {
            extra.push(Bind::ro(x, run_user.join("Xauthority")));
            vars.push((
                "XAUTHORITY".into(),
                run_user.join("Xauthority").display().to_string(),
            ));
        }
        sock(
            true,
            num.map(|n| PathBuf::from(format!("/tmp/.X11-unix/X{n}"))),
            PathBuf::from("/tmp/.X11-unix/X99"),
            vars,
            "X11",
            &mut extra,
            &mut env,
        );
    }
    if ctx.has_socket("pulseaudio") {
        sock(
            true,
            rt_dir.as_ref().map(|d| d.join("pulse/native")),
            run_user.join("pulse/native"),
            vec![(
                "PULSE_SERVER".into(),
                format!("unix:{}", run_user.join("pulse/native").display()),
            )],
            "PulseAudio",
            &mut extra,
            &mut env,
        );
        if let Some(pw) = rt_dir
            .as_ref()
            .map(|d| d.join("pipewire-0"))
            .filter(|p| p.exists())
        {
            extra.push(Bind::ro(pw, run_user.join("pipewire-0")));
        }
    }
    if ctx.has_socket("ssh-auth") {
        sock(
            true,
            host.var("SSH_AUTH_SOCK").map(PathBuf::from),
            run_user.join("ssh-auth"),
            vec![(
                "SSH_AUTH_SOCK".into(),
                run_user.join("ssh-auth").display().to_string(),
            )],
            "ssh-agent",
            &mut extra,
            &mut env,
        );
    }
    if ctx.has_socket("system-bus") {
        sock(
            true,
            Some(PathBuf::from("/run/dbus/system_bus_socket")),
            PathBuf::from("/run/dbus/system_bus_socket"),
            vec![],
            "system bus",
            &mut extra,
            &mut env,
        );
    }
    // Session bus: whole bus if granted, else filtered through the proxy.
    let mut proxy = None;
    let bus_path = host
        .var("DBUS_SESSION_BUS_ADDRESS")
        .and_then(|a| a.strip_prefix("unix:path="))
        .map(|p| PathBuf::from(p.split(',').next().unwrap_or(p)));
    let bus_dest = run_user.join("bus");
    let bus_env = vec![(
        "DBUS_SESSION_BUS_ADDRESS".to_string(),
        format!("unix:path={}", bus_dest.display()),
    )];
    if ctx.has_socket("session-bus") {
        sock(
            true,
            bus_path,
            bus_dest,
            bus_env,
            "session bus",
            &mut extra,
            &mut env,
        );
    } else if let (false, Some(addr), Some(rd)) = (
        p.no_session_bus,
        host.var("DBUS_SESSION_BUS_ADDRESS"),
        &rt_dir,
    ) {
        let sock_dir = rd.join(".kiln-dbus");
        std::fs::create_dir_all(&sock_dir).map_err(|e| Error::io(&sock_dir, e))?;
        sweep_proxy_sockets(&sock_dir);
        let socket = sock_dir.join(format!("{}-{}", p.id, std::process::id()));
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| Error::io("pipe", e.into()))?;
        rustix::io::fcntl_setfd(&w, rustix::io::FdFlags::empty())
            .map_err(|e| Error::io("pipe", e.into()))?;
        let policy: Vec<_> = ctx
            .session_bus
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        let args = kiln_sandbox::dbus::proxy_args(addr, &socket, &p.id, &policy, w.as_raw_fd());
        extra.push(Bind {
            optional: false,
            ..Bind::ro(&socket, &bus_dest)
        });
        env.extend(bus_env);
        spec.sync_fd = Some(r.as_raw_fd());
        proxy = Some(DbusProxyPlan {
            args,
            ready_read: r,
            ready_write: w,
            socket,
        });
    }
    spec.binds.extend(extra);

    for (k, v) in &ctx.env {
        env.retain(|(n, _)| n != k);
        if let Some(v) = v {
            env.push((k.clone(), v.clone()));
        }
    }
    spec.env = env;
    spec.chdir = Some(
        host.cwd
            .clone()
            .filter(|c| spec.binds.iter().any(|b| c.starts_with(&b.dest)) && !is_reserved(c))
            .unwrap_or(data),
    );

    // Synthesised files and the seccomp filter.
    let pw = passwd(&host.user, host.uid, host.gid, &host.home, "/bin/sh");
    let gr = group(&host.group, host.gid, &host.user);
    for (name, dest, bytes) in [
        ("kiln-passwd", "/etc/passwd", pw.into_bytes()),
        ("kiln-group", "/etc/group", gr.into_bytes()),
        ("kiln-info", "/.flatpak-info", p.info.into_bytes()),
    ] {
        let fd = data_fd(name, &bytes)?;
        spec.data_files.push(DataFile {
            fd: fd.as_raw_fd(),
            dest: dest.into(),
        });
        fds.push(fd);
    }
    let sc = SeccompOptions {
        devel: p.devel || ctx.has_feature("devel"),
        multiarch: ctx.has_feature("multiarch"),
        bluetooth: ctx.has_feature("bluetooth"),
        canbus: ctx.has_feature("canbus"),
    };
    let fd = data_fd("kiln-seccomp", &filter_bytes(&sc))?;
    spec.seccomp_fd = Some(fd.as_raw_fd());
    fds.push(fd);
    Ok((spec.args(), fds, warnings, proxy))
}

/// Removes proxy sockets (`ID-PID`) whose kiln is gone. xdg-dbus-proxy
/// removes its socket when its sync fd closes, but not when it is killed
/// (SIGKILL, SIGTERM).
fn sweep_proxy_sockets(dir: &Path) {
    let me = std::process::id().to_string();
    for name in crate::installation::read_names(dir) {
        let Some((_, pid)) = name.rsplit_once('-') else {
            continue;
        };
        if pid == me || !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_file(dir.join(&name));
        }
    }
}

/// `/.flatpak-info`, which portals trust to identify the app.
fn flatpak_info(
    md: &Metadata,
    app: Option<(&AppRef, &str, &Path)>,
    rt: &AppRef,
    rt_commit: &str,
    rt_path: &Path,
    ctx: &Context,
) -> String {
    let mut kf = KeyFile::new();
    let g = if md.kind == Kind::App {
        "Application"
    } else {
        "Runtime"
    };
    kf.set(g, "name", &md.name);
    kf.set(g, "runtime", &rt.to_string());
    let inst = "Instance";
    kf.set(inst, "instance-id", &std::process::id().to_string());
    if let Some((r, commit, path)) = app {
        kf.set(inst, "app-path", &path.display().to_string());
        kf.set(inst, "app-commit", commit);
        kf.set(inst, "branch", &r.branch);
        kf.set(inst, "arch", &r.arch);
    }
    kf.set(inst, "runtime-path", &rt_path.display().to_string());
    kf.set(inst, "runtime-commit", rt_commit);
    kf.set(inst, "flatpak-version", "1.14.10");
    kf.set(inst, "session-bus-proxy", "true");
    ctx.write_keyfile(&mut kf);
    kf.to_string()
}

/// Prepare `run APP`.
pub fn prepare_run(
    installs: &[Installation],
    name: &str,
    opts: &RunOptions,
    host: &HostEnv,
) -> Result<Launch> {
    let (inst, app) = find_app(installs, name)?;
    let commit = inst
        .active_commit(&app)
        .ok_or_else(|| Error::NotInstalled(app.to_string()))?;
    let app_dir = inst.deploy_dir(&app, &commit);
    let md = inst.deployed_metadata(&app, &commit)?;
    let rt = match &opts.runtime {
        Some(r) => AppRef::parse_triplet(Kind::Runtime, r)?,
        None => md
            .runtime
            .clone()
            .ok_or_else(|| Error::metadata(app.to_string(), "no runtime"))?,
    };
    let (rt_inst, rt_commit) =
        find_runtime(installs, inst, &rt).ok_or_else(|| Error::RuntimeNotFound {
            runtime: rt.triplet(),
            app: app.to_string(),
            searched: "installed runtimes".into(),
        })?;
    let rt_dir = rt_inst.deploy_dir(&rt, &rt_commit);
    let rt_md = rt_inst.deployed_metadata(&rt, &rt_commit)?;
    let mut ctx = rt_md.context.clone();
    ctx.merge(&md.context);
    if !opts.ignore_overrides {
        ctx.merge(&overrides_for(installs, inst.scope, &app.id)?);
    }
    let mut cli = Context::default();
    cli.apply_args(&opts.context)?;
    ctx.merge(&cli);
    let cmd = opts
        .command
        .clone()
        .or_else(|| md.command.clone())
        .ok_or_else(|| {
            Error::metadata(app.to_string(), "no command= in metadata; use --command=")
        })?;
    let mut command: Vec<OsString> = vec![cmd.into()];
    command.extend(opts.args.iter().cloned());
    let info = flatpak_info(
        &md,
        Some((&app, &commit, &app_dir.join("files"))),
        &rt,
        &rt_commit,
        &rt_dir.join("files"),
        &ctx,
    );
    let (args, fds, warnings, dbus_proxy) = build_sandbox(Plan {
        host,
        id: app.id.clone(),
        runtime_files: rt_dir.join("files"),
        app_files: Some(app_dir.join("files")),
        app_writable: false,
        context: ctx.clone(),
        command,
        info,
        devel: opts.devel,
        disable_userns: opts.bwrap_disable_userns,
        no_session_bus: opts.no_session_bus,
    })?;
    Ok(Launch {
        args,
        fds,
        app,
        commit,
        runtime: rt,
        runtime_commit: rt_commit,
        dbus_proxy,
        warnings,
        context: ctx,
    })
}

/// Prepare `build DIR CMD…`: the SDK at `/usr`, `DIR/files` writable at
/// `/app`.
pub fn prepare_build(
    installs: &[Installation],
    dir: &Path,
    command: Vec<OsString>,
    cargs: &ContextArgs,
    host: &HostEnv,
    disable_userns: bool,
) -> Result<Launch> {
    let mp = dir.join("metadata");
    let md = Metadata::parse_bytes(&std::fs::read(&mp).map_err(|e| Error::io(&mp, e))?)?;
    let sdk = match (&md.sdk, &md.runtime) {
        (Some(s), _) => AppRef::parse_triplet(Kind::Runtime, s)?,
        (None, Some(r)) => r.clone(),
        (None, None) => {
            return Err(Error::metadata(
                mp.display().to_string(),
                "no sdk= or runtime=",
            ))
        }
    };
    let first = installs
        .first()
        .ok_or_else(|| Error::Invalid("no installation".into()))?;
    let (si, sc) = find_runtime(installs, first, &sdk).ok_or_else(|| Error::RuntimeNotFound {
        runtime: sdk.triplet(),
        app: md.name.clone(),
        searched: "installed runtimes".into(),
    })?;
    let sdk_dir = si.deploy_dir(&sdk, &sc);
    let mut ctx = md.context.clone();
    let mut cli = Context::default();
    cli.apply_args(cargs)?;
    ctx.merge(&cli);
    let files = dir.join("files");
    let info = flatpak_info(&md, None, &sdk, &sc, &sdk_dir.join("files"), &ctx);
    let app = AppRef::new(Kind::App, &md.name, crate::appref::default_arch(), "build")?;
    let (args, fds, warnings, dbus_proxy) = build_sandbox(Plan {
        host,
        id: md.name.clone(),
        runtime_files: sdk_dir.join("files"),
        app_files: Some(files),
        app_writable: true,
        context: ctx.clone(),
        command,
        info,
        devel: true,
        disable_userns,
        no_session_bus: false,
    })?;
    Ok(Launch {
        args,
        fds,
        app,
        commit: String::new(),
        runtime: sdk,
        runtime_commit: sc,
        dbus_proxy,
        warnings,
        context: ctx,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_paths() {
        assert!(is_reserved(Path::new("/usr/lib")));
        assert!(is_reserved(Path::new("/")));
        assert!(!is_reserved(Path::new("/home/u")));
        assert!(!is_reserved(Path::new("/srv")));
    }

    #[test]
    fn fs_locations() {
        let host = HostEnv {
            uid: 1000,
            home: "/home/u".into(),
            vars: vec![("XDG_RUNTIME_DIR".into(), "/run/user/1000".into())],
            ..Default::default()
        };
        assert_eq!(
            resolve_fs(&host, "home"),
            vec![("/home/u".into(), "/home/u".into())]
        );
        assert_eq!(
            resolve_fs(&host, "xdg-download/sub"),
            vec![(
                "/home/u/Downloads/sub".into(),
                "/home/u/Downloads/sub".into()
            )]
        );
        assert_eq!(
            resolve_fs(&host, "xdg-run/foo"),
            vec![("/run/user/1000/foo".into(), "/run/user/1000/foo".into())]
        );
        assert_eq!(
            resolve_fs(&host, "host-os"),
            vec![("/usr".into(), "/run/host/usr".into())]
        );
    }
}
