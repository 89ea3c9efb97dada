//! `kiln app`: Flatpak's verbs and flags over kiln-apps, plus `rollback`
//! and `history`.
use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use kiln_apps::context::ContextArgs;
use kiln_apps::install::{Change, Events, InstallOptions, UninstallOptions};
use kiln_apps::installation::{self, Installation, Scope};
use kiln_apps::launch::{HostEnv, RunOptions};
use kiln_apps::{instances, Kind};
use std::cell::RefCell;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct AppArgs {
    #[command(subcommand)]
    pub command: AppCommand,
}

/// `--user` / `--system` (default: system for root, user otherwise).
#[derive(Args, Debug, Clone, Default)]
pub struct Where {
    /// Work on the user installation (~/.local/share/kiln/apps).
    #[arg(long, conflicts_with = "system")]
    pub user: bool,
    /// Work on the system installation (/var/lib/kiln/apps).
    #[arg(long)]
    pub system: bool,
}

/// `--app` / `--runtime` filters.
#[derive(Args, Debug, Clone, Default)]
pub struct KindFilter {
    /// Only apps.
    #[arg(long, conflicts_with = "runtime")]
    pub app: bool,
    /// Only runtimes.
    #[arg(long)]
    pub runtime: bool,
}

impl KindFilter {
    fn kind(&self) -> Option<Kind> {
        match (self.app, self.runtime) {
            (true, _) => Some(Kind::App),
            (_, true) => Some(Kind::Runtime),
            _ => None,
        }
    }
}

/// Permission flags (`flatpak run`, `build-finish`, `override`).
#[derive(Args, Debug, Clone, Default)]
pub struct PermArgs {
    /// Share with the host: network, ipc.
    #[arg(long = "share", value_name = "SHARE")]
    pub share: Vec<String>,
    /// Unshare: network, ipc.
    #[arg(long = "unshare", value_name = "SHARE")]
    pub unshare: Vec<String>,
    /// Expose a socket: x11, wayland, fallback-x11, pulseaudio, session-bus, system-bus, ssh-auth, …
    #[arg(long = "socket", value_name = "SOCKET")]
    pub socket: Vec<String>,
    /// Don't expose a socket.
    #[arg(long = "nosocket", value_name = "SOCKET")]
    pub nosocket: Vec<String>,
    /// Expose a device: dri, kvm, shm, all.
    #[arg(long = "device", value_name = "DEVICE")]
    pub device: Vec<String>,
    /// Don't expose a device.
    #[arg(long = "nodevice", value_name = "DEVICE")]
    pub nodevice: Vec<String>,
    /// Allow a feature: devel, multiarch, bluetooth, canbus.
    #[arg(long = "allow", value_name = "FEATURE")]
    pub allow: Vec<String>,
    /// Don't allow a feature.
    #[arg(long = "disallow", value_name = "FEATURE")]
    pub disallow: Vec<String>,
    /// Expose host files: home, host, host-os, host-etc, xdg-*[/…], ~/dir, /dir, with :ro, :rw or :create.
    #[arg(long = "filesystem", value_name = "FILESYSTEM")]
    pub filesystem: Vec<String>,
    /// Don't expose a filesystem location.
    #[arg(long = "nofilesystem", value_name = "FILESYSTEM")]
    pub nofilesystem: Vec<String>,
    /// Persist a home directory subpath in the app's data.
    #[arg(long = "persist", value_name = "FILENAME")]
    pub persist: Vec<String>,
    /// Set an environment variable.
    #[arg(long = "env", value_name = "VAR=VALUE")]
    pub env: Vec<String>,
    /// Remove a variable from the environment.
    #[arg(long = "unset-env", value_name = "VAR")]
    pub unset_env: Vec<String>,
    /// Allow the app to own a name on the session bus.
    #[arg(long = "own-name", value_name = "DBUS_NAME")]
    pub own_name: Vec<String>,
    /// Allow the app to talk to a name on the session bus.
    #[arg(long = "talk-name", value_name = "DBUS_NAME")]
    pub talk_name: Vec<String>,
    /// Don't allow the app to talk to a name on the session bus.
    #[arg(long = "no-talk-name", value_name = "DBUS_NAME")]
    pub no_talk_name: Vec<String>,
    /// Allow the app to own a name on the system bus.
    #[arg(long = "system-own-name", value_name = "DBUS_NAME")]
    pub system_own_name: Vec<String>,
    /// Allow the app to talk to a name on the system bus.
    #[arg(long = "system-talk-name", value_name = "DBUS_NAME")]
    pub system_talk_name: Vec<String>,
    /// Don't allow the app to talk to a name on the system bus.
    #[arg(long = "system-no-talk-name", value_name = "DBUS_NAME")]
    pub system_no_talk_name: Vec<String>,
}

impl PermArgs {
    fn to_lib(&self) -> ContextArgs {
        ContextArgs {
            share: self.share.clone(),
            unshare: self.unshare.clone(),
            socket: self.socket.clone(),
            nosocket: self.nosocket.clone(),
            device: self.device.clone(),
            nodevice: self.nodevice.clone(),
            allow: self.allow.clone(),
            disallow: self.disallow.clone(),
            filesystem: self.filesystem.clone(),
            nofilesystem: self.nofilesystem.clone(),
            persist: self.persist.clone(),
            env: self.env.clone(),
            unset_env: self.unset_env.clone(),
            own_name: self.own_name.clone(),
            talk_name: self.talk_name.clone(),
            no_talk_name: self.no_talk_name.clone(),
            system_own_name: self.system_own_name.clone(),
            system_talk_name: self.system_talk_name.clone(),
            system_no_talk_name: self.system_no_talk_name.clone(),
            ..Default::default()
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum AppCommand {
    /// Add a remote repository.
    RemoteAdd {
        #[command(flatten)]
        at: Where,
        /// Do nothing if the remote exists.
        #[arg(long)]
        if_not_exists: bool,
        /// Disable GPG verification (kiln has none; required).
        #[arg(long)]
        no_gpg_verify: bool,
        name: String,
        url: String,
    },
    /// Delete a remote repository.
    RemoteDelete {
        #[command(flatten)]
        at: Where,
        /// Even if installed refs came from it.
        #[arg(long)]
        force: bool,
        name: String,
    },
    /// List remote repositories.
    Remotes {
        #[command(flatten)]
        at: Where,
        #[arg(long)]
        json: bool,
    },
    /// Show what a remote offers.
    RemoteLs {
        #[command(flatten)]
        at: Where,
        #[command(flatten)]
        kind: KindFilter,
        /// Only refs with an update for what is installed.
        #[arg(long)]
        updates: bool,
        #[arg(long)]
        json: bool,
        /// The remote (default: every remote).
        remote: Option<String>,
    },
    /// Install an app or runtime (and the runtime an app needs).
    Install {
        #[command(flatten)]
        at: Where,
        /// Assume yes (kiln never asks).
        #[arg(short = 'y', long = "assumeyes")]
        yes: bool,
        /// Never ask (kiln never asks).
        #[arg(long)]
        noninteractive: bool,
        /// Arch to install for.
        #[arg(long)]
        arch: Option<String>,
        /// Don't install the runtime.
        #[arg(long)]
        no_deps: bool,
        /// Install again if installed.
        #[arg(long)]
        reinstall: bool,
        #[arg(long)]
        json: bool,
        remote: String,
        /// REF, ID or ID//BRANCH.
        #[arg(required = true)]
        refs: Vec<String>,
    },
    /// Run an app.
    Run {
        /// Command to run instead of the app's.
        #[arg(long)]
        command: Option<String>,
        /// Use this runtime (ID/ARCH/BRANCH).
        #[arg(long)]
        runtime: Option<String>,
        /// Allow ptrace and perf (debugging).
        #[arg(long)]
        devel: bool,
        /// No filtered session bus (`sockets=session-bus` still gives the whole bus).
        #[arg(long)]
        no_session_bus: bool,
        #[command(flatten)]
        perms: PermArgs,
        app: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// List installed apps and runtimes.
    List {
        #[command(flatten)]
        at: OptWhere,
        #[command(flatten)]
        kind: KindFilter,
        #[arg(long)]
        json: bool,
    },
    /// Show information about an installed app or runtime.
    Info {
        #[command(flatten)]
        at: OptWhere,
        /// Show the merged permissions.
        #[arg(short = 'M', long)]
        show_permissions: bool,
        /// Show only the active commit.
        #[arg(short = 'c', long)]
        show_commit: bool,
        #[arg(long)]
        json: bool,
        name: String,
    },
    /// Show the merged permissions of an app.
    Permissions {
        #[command(flatten)]
        at: OptWhere,
        name: String,
    },
    /// Update installed apps and runtimes.
    Update {
        #[command(flatten)]
        at: Where,
        #[arg(short = 'y', long = "assumeyes")]
        yes: bool,
        #[arg(long)]
        noninteractive: bool,
        /// Deploy this commit (may be older; the kept previous one needs no network).
        #[arg(long)]
        commit: Option<String>,
        #[arg(long)]
        json: bool,
        app: Option<String>,
    },
    /// Go back to the previously installed commit (kept locally).
    Rollback {
        #[command(flatten)]
        at: OptWhere,
        #[arg(long)]
        json: bool,
        app: String,
    },
    /// What was installed, updated and rolled back.
    History {
        #[command(flatten)]
        at: OptWhere,
        #[arg(long)]
        json: bool,
        app: String,
    },
    /// Uninstall apps or runtimes.
    Uninstall {
        #[command(flatten)]
        at: Where,
        #[arg(short = 'y', long = "assumeyes")]
        yes: bool,
        #[arg(long)]
        noninteractive: bool,
        /// Also remove runtimes no app uses.
        #[arg(long)]
        unused: bool,
        /// Delete the app's data (~/.var/app/ID).
        #[arg(long)]
        delete_data: bool,
        /// Remove a runtime even if apps use it.
        #[arg(long)]
        force_remove: bool,
        apps: Vec<String>,
    },
    /// Override an app's permissions (no APP: every app).
    Override {
        #[command(flatten)]
        at: Where,
        #[command(flatten)]
        perms: PermArgs,
        /// Remove the overrides.
        #[arg(long)]
        reset: bool,
        /// Show the overrides.
        #[arg(long)]
        show: bool,
        app: Option<String>,
    },
    /// List running apps.
    Ps {
        #[arg(long)]
        json: bool,
    },
    /// Stop a running app (instance ID or app ID).
    Kill { instance: String },
    /// Create a build directory.
    BuildInit {
        /// Arch to build for.
        #[arg(long)]
        arch: Option<String>,
        /// app or runtime.
        #[arg(long = "type", default_value = "app")]
        kind: String,
        directory: PathBuf,
        appname: String,
        sdk: String,
        runtime: String,
        #[arg(default_value = "master")]
        branch: String,
    },
    /// Run a command in a build directory (SDK at /usr, files/ writable at /app).
    Build {
        #[command(flatten)]
        perms: PermArgs,
        directory: PathBuf,
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<OsString>,
    },
    /// Finalize a build directory (command, permissions, exports).
    BuildFinish {
        #[arg(long)]
        command: Option<String>,
        #[command(flatten)]
        perms: PermArgs,
        directory: PathBuf,
    },
    /// Commit a build directory into a repository.
    BuildExport {
        /// Export a runtime.
        #[arg(long)]
        runtime: bool,
        #[arg(long)]
        arch: Option<String>,
        #[arg(short = 's', long)]
        subject: Option<String>,
        #[arg(short = 'b', long)]
        body: Option<String>,
        /// Seconds since the epoch.
        #[arg(long)]
        timestamp: Option<u64>,
        #[arg(long)]
        no_update_summary: bool,
        /// Files directory (only "files" is supported).
        #[arg(long, default_value = "files")]
        files: String,
        #[arg(long)]
        json: bool,
        location: PathBuf,
        directory: PathBuf,
        #[arg(default_value = "master")]
        branch: String,
    },
    /// Update a repository's summary (with Flatpak's cache).
    BuildUpdateRepo { location: PathBuf },
    /// Write a ref of a repository as a Flatpak single-file bundle.
    BuildBundle {
        /// Bundle a runtime.
        #[arg(long)]
        runtime: bool,
        #[arg(long)]
        arch: Option<String>,
        /// URL of the app's repository (the bundle's `origin`).
        #[arg(long)]
        repo_url: Option<String>,
        /// URL of a .flatpakrepo for the runtime.
        #[arg(long)]
        runtime_repo: Option<String>,
        #[arg(long)]
        json: bool,
        location: PathBuf,
        filename: PathBuf,
        name: String,
        #[arg(default_value = "master")]
        branch: String,
    },
    /// Import a Flatpak single-file bundle into a repository.
    BuildImportBundle {
        #[arg(long)]
        json: bool,
        location: PathBuf,
        filename: PathBuf,
    },
}

/// `--user` / `--system` where both are searched by default.
#[derive(Args, Debug, Clone, Default)]
pub struct OptWhere {
    /// Only the user installation.
    #[arg(long, conflicts_with = "system")]
    pub user: bool,
    /// Only the system installation.
    #[arg(long)]
    pub system: bool,
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn home() -> PathBuf {
    env_path("HOME").unwrap_or_else(|| PathBuf::from("/"))
}

/// The OS repository app installs take shared objects from:
/// `KILN_APPS_OS_REPO` (`none` or empty: none), else the first of
/// `/sysroot/ostree/repo` and `/ostree/repo` that opens as a repo.
fn os_repo() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("KILN_APPS_OS_REPO") {
        return (!v.is_empty() && v != "none").then(|| PathBuf::from(v));
    }
    ["/sysroot/ostree/repo", "/ostree/repo"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| kiln_store::Repo::open(p).is_ok())
}

fn system_inst() -> Installation {
    Installation::new(
        env_path("KILN_APPS_SYSTEM_DIR").unwrap_or_else(|| PathBuf::from(installation::SYSTEM_DIR)),
        Scope::System,
    )
    .with_os_repo(os_repo())
}

fn user_inst() -> Installation {
    Installation::new(
        env_path("KILN_APPS_USER_DIR").unwrap_or_else(|| installation::user_dir(&home())),
        Scope::User,
    )
    .with_os_repo(os_repo())
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

impl Where {
    fn inst(&self) -> Installation {
        if self.user || (!self.system && !is_root()) {
            user_inst()
        } else {
            system_inst()
        }
    }
}

impl OptWhere {
    /// The installations to search, user first (as Flatpak).
    fn insts(&self) -> Vec<Installation> {
        match (self.user, self.system) {
            (true, _) => vec![user_inst()],
            (_, true) => vec![system_inst()],
            _ => vec![user_inst(), system_inst()],
        }
    }
}

fn lookup_name(file: &str, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2].parse::<u32>().ok() == Some(id)).then(|| f[0].to_string())
    })
}

fn host_env() -> HostEnv {
    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| lookup_name("/etc/passwd", uid))
        .unwrap_or_else(|| uid.to_string());
    HostEnv {
        uid,
        gid,
        group: lookup_name("/etc/group", gid).unwrap_or_else(|| gid.to_string()),
        user,
        home: home(),
        cwd: std::env::current_dir().ok(),
        vars: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
    }
}

/// Progress bars for pulls and one line per step, on stderr.
struct CliEvents {
    bar: RefCell<Option<crate::cli::progress::Bar>>,
    quiet: bool,
}

impl Events for CliEvents {
    fn message(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }
    fn pull_started(&self, what: &kiln_apps::AppRef, progress: &Arc<kiln_store::Progress>) {
        if !self.quiet {
            eprintln!("Pulling {what}");
        }
        *self.bar.borrow_mut() = Some(crate::cli::progress::Bar::start("pull", progress.clone()));
    }
    fn pull_finished(&self, _what: &kiln_apps::AppRef) {
        self.bar.borrow_mut().take();
    }
}

fn events(json: bool) -> CliEvents {
    CliEvents {
        bar: RefCell::new(None),
        quiet: json,
    }
}

fn short(c: &str) -> &str {
    c.get(..12).unwrap_or(c)
}

fn print_changes(changes: &[Change], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(changes)?);
        return Ok(());
    }
    for c in changes {
        match c.action.as_str() {
            "unchanged" => println!(
                "{}: already up to date ({})",
                c.appref,
                short(c.commit.as_deref().unwrap_or(""))
            ),
            "uninstall" => println!("Uninstalled {}", c.appref),
            a => println!(
                "{} {}: {} -> {}",
                match a {
                    "install" => "Installed",
                    "update" => "Updated",
                    "rollback" => "Rolled back",
                    _ => a,
                },
                c.appref,
                c.from.as_deref().map(short).unwrap_or("-"),
                short(c.commit.as_deref().unwrap_or("")),
            ),
        }
    }
    Ok(())
}

fn fmt_time(t: u64) -> String {
    kiln_store::datetime::format_iso(t)
}

pub fn run_app(app: &str, opts: &RunOptions) -> anyhow::Result<ExitCode> {
    let host = host_env();
    // User first, as `OptWhere::insts`, but without looking for the OS
    // repository (only pulls use it).
    let insts = vec![
        Installation::new(
            env_path("KILN_APPS_USER_DIR").unwrap_or_else(|| installation::user_dir(&home())),
            Scope::User,
        ),
        Installation::new(
            env_path("KILN_APPS_SYSTEM_DIR")
                .unwrap_or_else(|| PathBuf::from(installation::SYSTEM_DIR)),
            Scope::System,
        ),
    ];
    let mut launch = kiln_apps::launch::prepare_run(&insts, app, opts, &host)?;
    for w in &launch.warnings {
        eprintln!("warning: {w}");
    }
    let dir = instances::instances_dir(
        host.var("XDG_RUNTIME_DIR").map(std::path::Path::new),
        host.uid,
    );
    let record = |pid: u32, launch: &kiln_apps::launch::Launch| {
        if let Some(st) = instances::start_time(pid) {
            let _ = instances::register(
                &dir,
                &instances::Instance {
                    instance: pid.to_string(),
                    pid,
                    child_pid: None,
                    app: launch.app.id.clone(),
                    appref: launch.app.to_string(),
                    commit: launch.commit.clone(),
                    runtime: launch.runtime.to_string(),
                    runtime_commit: launch.runtime_commit.clone(),
                    start_time: st,
                },
            );
        }
    };
    match launch.dbus_proxy.take() {
        // Nothing to supervise: bwrap takes kiln's place (and pid).
        None => {
            record(std::process::id(), &launch);
            exec_bwrap(launch.args)
        }
        Some(plan) => {
            let proxy = DbusProxy::start(plan)?;
            let args = std::mem::take(&mut launch.args);
            supervise_bwrap(args, proxy, |pid| record(pid, &launch))
        }
    }
}

fn run_options(
    command: Option<String>,
    runtime: Option<String>,
    devel: bool,
    no_session_bus: bool,
    perms: &PermArgs,
    args: Vec<OsString>,
) -> RunOptions {
    RunOptions {
        command,
        args,
        context: perms.to_lib(),
        devel,
        runtime,
        ignore_overrides: false,
        bwrap_disable_userns: std::env::var_os("KILN_BWRAP_NO_DISABLE_USERNS").is_none(),
        no_session_bus,
    }
}

/// `kiln app run` is paid at every app start, so `main` tries this before
/// building clap's command tree: the common shapes — `--flag=VALUE` or
/// `--flag VALUE` options, then APP, then arguments that do not start with
/// `-` — parsed by hand into the same [`RunOptions`] clap would give.
/// Anything else (help, `-v`, unknown or repeated single options, a
/// hyphen right after APP, which clap may read as one of its flags) is
/// `None`, and clap handles it.
pub fn fast_run_args(argv: &[OsString]) -> Option<(String, RunOptions)> {
    let mut it = argv.iter().skip(1);
    if it.next()? != "app" || it.next()? != "run" {
        return None;
    }
    let mut c = ContextArgs::default();
    let (mut command, mut runtime) = (None, None);
    let (mut devel, mut no_session_bus) = (false, false);
    let app = loop {
        let a = it.next()?.to_str()?;
        if !a.starts_with('-') {
            break a.to_string();
        }
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (a, None),
        };
        let flag = match name {
            "--devel" => Some(&mut devel),
            "--no-session-bus" => Some(&mut no_session_bus),
            _ => None,
        };
        if let Some(f) = flag {
            if inline.is_some() || *f {
                return None;
            }
            *f = true;
            continue;
        }
        let list = match name {
            "--command" | "--runtime" => None,
            "--share" => Some(&mut c.share),
            "--unshare" => Some(&mut c.unshare),
            "--socket" => Some(&mut c.socket),
            "--nosocket" => Some(&mut c.nosocket),
            "--device" => Some(&mut c.device),
            "--nodevice" => Some(&mut c.nodevice),
            "--allow" => Some(&mut c.allow),
            "--disallow" => Some(&mut c.disallow),
            "--filesystem" => Some(&mut c.filesystem),
            "--nofilesystem" => Some(&mut c.nofilesystem),
            "--persist" => Some(&mut c.persist),
            "--env" => Some(&mut c.env),
            "--unset-env" => Some(&mut c.unset_env),
            "--own-name" => Some(&mut c.own_name),
            "--talk-name" => Some(&mut c.talk_name),
            "--no-talk-name" => Some(&mut c.no_talk_name),
            "--system-own-name" => Some(&mut c.system_own_name),
            "--system-talk-name" => Some(&mut c.system_talk_name),
            "--system-no-talk-name" => Some(&mut c.system_no_talk_name),
            _ => return None,
        };
        let value = match inline {
            Some(v) => v,
            None => it.next()?.to_str()?,
        };
        if value.is_empty() || (inline.is_none() && value.starts_with('-')) {
            return None;
        }
        match (list, name) {
            (Some(l), _) => l.push(value.to_string()),
            (None, "--command") if command.is_none() => command = Some(value.to_string()),
            (None, "--runtime") if runtime.is_none() => runtime = Some(value.to_string()),
            _ => return None,
        }
    };
    let args: Vec<OsString> = it.cloned().collect();
    if args
        .first()
        .is_some_and(|a| a.as_encoded_bytes().starts_with(b"-"))
    {
        return None;
    }
    let opts = RunOptions {
        command,
        args,
        context: c,
        devel,
        runtime,
        ignore_overrides: false,
        bwrap_disable_userns: std::env::var_os("KILN_BWRAP_NO_DISABLE_USERNS").is_none(),
        no_session_bus,
    };
    Some((app, opts))
}

fn bwrap_program() -> OsString {
    std::env::var_os("KILN_BWRAP").unwrap_or_else(|| "bwrap".into())
}

fn exec_bwrap(args: Vec<OsString>) -> anyhow::Result<ExitCode> {
    let err = std::process::Command::new(bwrap_program())
        .args(args)
        .exec();
    Err(anyhow::Error::new(err).context("could not start bwrap (install bubblewrap ≥ 0.8)"))
}

/// Runs bwrap as a child while `proxy` serves it, then stops the proxy and
/// removes its socket; exits as bwrap did. `started` gets bwrap's pid
/// (the instance, as with an exec'd bwrap).
fn supervise_bwrap(
    args: Vec<OsString>,
    mut proxy: DbusProxy,
    started: impl FnOnce(u32),
) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::ExitStatusExt;
    let spawned = std::process::Command::new(bwrap_program())
        .args(args)
        .spawn();
    // bwrap has its copy of the sync fd now; without ours the proxy exits
    // as soon as bwrap (and so the sandbox) is gone, even if kiln is killed.
    proxy.sync.take();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            proxy.stop();
            return Err(
                anyhow::Error::new(e).context("could not start bwrap (install bubblewrap ≥ 0.8)")
            );
        }
    };
    started(child.id());
    let status = child.wait();
    proxy.stop();
    let status = status.context("waiting for bwrap")?;
    if let Some(sig) = status.signal() {
        // Die the same way, as the exec'd bwrap would have been seen to.
        if let Some(s) = rustix::process::Signal::from_named_raw(sig) {
            let _ = rustix::process::kill_process(rustix::process::getpid(), s);
        }
        return Ok(ExitCode::from((128 + sig).clamp(0, 255) as u8));
    }
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

/// A running xdg-dbus-proxy and the socket it listens on.
struct DbusProxy {
    child: std::process::Child,
    /// Our end of the sync pipe until bwrap has inherited it.
    sync: Option<std::os::fd::OwnedFd>,
    socket: PathBuf,
}

impl DbusProxy {
    /// Starts the proxy and waits until it listens.
    fn start(p: kiln_apps::launch::DbusProxyPlan) -> anyhow::Result<DbusProxy> {
        use std::io::Read;
        let prog = std::env::var_os("KILN_DBUS_PROXY").unwrap_or_else(|| "xdg-dbus-proxy".into());
        let child = std::process::Command::new(&prog)
            .args(&p.args)
            .stdin(std::process::Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", prog.to_string_lossy()))?;
        // Only the proxy may hold the write end: it writes one byte when
        // ready and exits when the read end (kept by bwrap) closes.
        drop(p.ready_write);
        let mut proxy = DbusProxy {
            child,
            sync: None,
            socket: p.socket,
        };
        let mut f = std::fs::File::from(p.ready_read);
        let mut b = [0u8; 1];
        if let Err(e) = f.read_exact(&mut b) {
            proxy.stop();
            return Err(anyhow::Error::new(e)
                .context(format!("{} did not become ready", prog.to_string_lossy())));
        }
        let fd = std::os::fd::OwnedFd::from(f);
        // bwrap inherits it (`--sync-fd`).
        rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::empty())?;
        proxy.sync = Some(fd);
        Ok(proxy)
    }

    fn stop(&mut self) {
        self.sync.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

pub fn run(args: AppArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AppCommand::RemoteAdd {
            at,
            if_not_exists,
            no_gpg_verify,
            name,
            url,
        } => {
            let inst = at.inst();
            kiln_apps::remotes::add_remote(&inst, &name, &url, if_not_exists, no_gpg_verify)?;
        }
        AppCommand::RemoteDelete { at, force, name } => {
            kiln_apps::remotes::delete_remote(&at.inst(), &name, force)?;
        }
        AppCommand::Remotes { at, json } => {
            let insts = if at.user || at.system {
                vec![at.inst()]
            } else {
                OptWhere::default().insts()
            };
            let mut all = Vec::new();
            for i in &insts {
                all.extend(kiln_apps::remotes::list_remotes(i)?);
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for r in all {
                    println!("{}\t{}\t{}", r.name, r.url, r.installation.as_str());
                }
            }
        }
        AppCommand::RemoteLs {
            at,
            kind,
            updates,
            json,
            remote,
        } => {
            let inst = at.inst();
            let remotes: Vec<String> = match remote {
                Some(r) => vec![r],
                None => kiln_apps::remotes::list_remotes(&inst)?
                    .into_iter()
                    .map(|r| r.name)
                    .collect(),
            };
            let mut rows = Vec::new();
            for r in &remotes {
                for x in kiln_apps::remotes::list_remote(&inst, r, kind.kind())? {
                    if updates {
                        match inst.active_commit(&x.appref) {
                            Some(c) if c != x.commit => {}
                            _ => continue,
                        }
                    }
                    rows.push((r.clone(), x));
                }
            }
            if json {
                let v: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(r, x)| {
                        let mut v = serde_json::to_value(x).unwrap_or_default();
                        v["remote"] = serde_json::Value::String(r.clone());
                        v
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for (r, x) in rows {
                    println!(
                        "{}\t{}\t{}\t{}",
                        x.appref,
                        short(&x.commit),
                        x.installed_size
                            .map(kiln_store::util::format_size)
                            .unwrap_or_else(|| "-".into()),
                        r
                    );
                }
            }
        }
        AppCommand::Install {
            at,
            yes: _,
            noninteractive: _,
            arch,
            no_deps,
            reinstall,
            json,
            remote,
            refs,
        } => {
            let inst = at.inst();
            let ev = events(json);
            let mut all = Vec::new();
            for r in &refs {
                let opts = InstallOptions {
                    arch: arch.clone(),
                    no_deps,
                    reinstall,
                };
                all.extend(
                    kiln_apps::install::install(&inst, &remote, r, &opts, &ev)
                        .with_context(|| format!("installing {r} from {remote}"))?,
                );
            }
            print_changes(&all, json)?;
        }
        AppCommand::Run {
            command,
            runtime,
            devel,
            no_session_bus,
            perms,
            app,
            args,
        } => {
            let opts = run_options(command, runtime, devel, no_session_bus, &perms, args);
            return run_app(&app, &opts);
        }
        AppCommand::List { at, kind, json } => {
            let mut rows = Vec::new();
            for i in at.insts() {
                for r in i.installed_refs(kind.kind()) {
                    rows.push(i.describe(&r)?);
                }
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for d in rows {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        d.appref,
                        d.origin,
                        short(&d.commit),
                        kiln_store::util::format_size(d.installed_size),
                        d.installation.as_str()
                    );
                }
            }
        }
        AppCommand::Info {
            at,
            show_permissions,
            show_commit,
            json,
            name,
        } => {
            let insts = at.insts();
            let (inst, r) = find_any(&insts, &name)?;
            let d = inst.describe(&r)?;
            if show_commit {
                println!("{}", d.commit);
            } else if show_permissions {
                print!(
                    "{}",
                    merged_permissions(&insts, inst, &r)?.to_keyfile_text()
                );
            } else if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                println!("Ref: {}", d.appref);
                println!("ID: {}", d.id);
                println!("Arch: {}", d.arch);
                println!("Branch: {}", d.branch);
                println!("Origin: {}", d.origin);
                println!("Installation: {}", d.installation.as_str());
                println!(
                    "Installed: {}",
                    kiln_store::util::format_size(d.installed_size)
                );
                if let Some(rt) = &d.runtime {
                    println!("Runtime: {rt}");
                }
                println!("Commit: {}", d.commit);
                println!("Previous: {}", d.previous_commit.as_deref().unwrap_or("-"));
                println!("Location: {}", d.deploy_dir.display());
            }
        }
        AppCommand::Permissions { at, name } => {
            let insts = at.insts();
            let (inst, r) = find_any(&insts, &name)?;
            print!(
                "{}",
                merged_permissions(&insts, inst, &r)?.to_keyfile_text()
            );
        }
        AppCommand::Update {
            at,
            yes: _,
            noninteractive: _,
            commit,
            json,
            app,
        } => {
            let inst = at.inst();
            let ev = events(json);
            let ch = kiln_apps::install::update(&inst, app.as_deref(), commit.as_deref(), &ev)?;
            if ch.is_empty() && !json {
                println!("Nothing to do.");
            }
            print_changes(&ch, json)?;
        }
        AppCommand::Rollback { at, json, app } => {
            let insts = at.insts();
            let (inst, _) = find_any(&insts, &app)?;
            let c = kiln_apps::install::rollback(inst, &app)?;
            print_changes(&[c], json)?;
        }
        AppCommand::History { at, json, app } => {
            let mut all = Vec::new();
            for i in at.insts() {
                let id = installation::split_partial(&app).0.to_string();
                let id = kiln_apps::AppRef::parse(&app).map(|r| r.id).unwrap_or(id);
                all.extend(i.history(&id)?);
            }
            all.sort_by_key(|e| e.time);
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else {
                for e in all {
                    println!(
                        "{}\t{}\t{}\t{} -> {}\t{}",
                        fmt_time(e.time),
                        e.action,
                        e.appref,
                        e.from.as_deref().map(short).unwrap_or("-"),
                        e.commit.as_deref().map(short).unwrap_or("-"),
                        e.origin.as_deref().unwrap_or("")
                    );
                }
            }
        }
        AppCommand::Uninstall {
            at,
            yes: _,
            noninteractive: _,
            unused,
            delete_data,
            force_remove,
            apps,
        } => {
            if apps.is_empty() && !unused {
                bail!("give an APP to uninstall, or --unused");
            }
            let inst = at.inst();
            let h = home();
            let ch = kiln_apps::install::uninstall(
                &inst,
                &apps,
                &UninstallOptions {
                    unused,
                    delete_data,
                    force: force_remove,
                },
                &|id| installation::app_data_dir(&h, id),
            )?;
            if ch.is_empty() {
                println!("Nothing unused to uninstall");
            }
            print_changes(&ch, false)?;
        }
        AppCommand::Override {
            at,
            perms,
            reset,
            show,
            app,
        } => {
            let inst = at.inst();
            let id = app.as_deref();
            if reset {
                kiln_apps::overrides::reset(&inst, id)?;
            } else if show {
                print!(
                    "{}",
                    kiln_apps::overrides::show(&inst, id)?.to_keyfile_text()
                );
            } else {
                kiln_apps::overrides::set(&inst, id, &perms.to_lib())?;
            }
        }
        AppCommand::Ps { json } => {
            let host = host_env();
            let dir = instances::instances_dir(
                host.var("XDG_RUNTIME_DIR").map(std::path::Path::new),
                host.uid,
            );
            let l = instances::list(&dir);
            if json {
                println!("{}", serde_json::to_string_pretty(&l)?);
            } else {
                for i in l {
                    println!(
                        "{}\t{}\t{}\t{}\t{}",
                        i.instance,
                        i.pid,
                        i.child_pid
                            .map(|p| p.to_string())
                            .unwrap_or_else(|| "-".into()),
                        i.app,
                        short(&i.commit)
                    );
                }
            }
        }
        AppCommand::Kill { instance } => {
            let host = host_env();
            let dir = instances::instances_dir(
                host.var("XDG_RUNTIME_DIR").map(std::path::Path::new),
                host.uid,
            );
            instances::kill(&dir, &instance)?;
        }
        AppCommand::BuildInit {
            arch,
            kind,
            directory,
            appname,
            sdk,
            runtime,
            branch,
        } => {
            let k = match kind.as_str() {
                "app" => Kind::App,
                "runtime" => Kind::Runtime,
                k => bail!("--type={k}: expected app or runtime"),
            };
            kiln_apps::build::build_init(
                &directory,
                &appname,
                &sdk,
                &runtime,
                &branch,
                arch.as_deref(),
                k,
            )?;
        }
        AppCommand::Build {
            perms,
            directory,
            command,
        } => {
            let host = host_env();
            let insts = OptWhere::default().insts();
            let mut launch = kiln_apps::launch::prepare_build(
                &insts,
                &directory,
                command,
                &perms.to_lib(),
                &host,
                std::env::var_os("KILN_BWRAP_NO_DISABLE_USERNS").is_none(),
            )?;
            for w in &launch.warnings {
                eprintln!("warning: {w}");
            }
            return match launch.dbus_proxy.take() {
                None => exec_bwrap(launch.args),
                Some(plan) => supervise_bwrap(launch.args, DbusProxy::start(plan)?, |_| {}),
            };
        }
        AppCommand::BuildFinish {
            command,
            perms,
            directory,
        } => {
            let r =
                kiln_apps::build::build_finish(&directory, command.as_deref(), &perms.to_lib())?;
            match &r.command {
                Some(c) => println!("Using {c} as command"),
                None => println!("No executable found"),
            }
            println!("Exported {} files", r.exported_files);
        }
        AppCommand::BuildExport {
            runtime,
            arch,
            subject,
            body,
            timestamp,
            no_update_summary,
            files,
            json,
            location,
            directory,
            branch,
        } => {
            if files != "files" {
                bail!("--files={files}: only the files/ directory is supported");
            }
            let r = kiln_apps::build::build_export(
                &location,
                &directory,
                &branch,
                &kiln_apps::build::ExportOptions {
                    runtime,
                    arch,
                    subject,
                    body,
                    timestamp,
                    no_update_summary,
                },
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("Commit: {}", r.commit);
                println!("Ref: {}", r.appref);
                println!(
                    "Installed size: {}, download size: {}",
                    kiln_store::util::format_size(r.installed_size),
                    kiln_store::util::format_size(r.download_size)
                );
            }
        }
        AppCommand::BuildUpdateRepo { location } => {
            kiln_apps::build::build_update_repo(&location)?;
        }
        AppCommand::BuildBundle {
            runtime,
            arch,
            repo_url,
            runtime_repo,
            json,
            location,
            filename,
            name,
            branch,
        } => {
            let opts = kiln_apps::bundle::BundleOptions {
                runtime,
                arch,
                repo_url,
                runtime_repo,
            };
            let r = kiln_apps::bundle::build_bundle(&location, &filename, &name, &branch, &opts)?;
            print_bundle(&r, json)?;
        }
        AppCommand::BuildImportBundle {
            json,
            location,
            filename,
        } => {
            let r = kiln_apps::bundle::import_bundle(&location, &filename)?;
            print_bundle(&r, json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_bundle(r: &kiln_apps::bundle::BundleInfo, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        println!("Commit: {}", r.commit);
        println!("Ref: {}", r.appref);
        println!(
            "Bundle size: {}, installed size: {}",
            kiln_store::util::format_size(r.size),
            kiln_store::util::format_size(r.installed_size)
        );
    }
    Ok(())
}

fn find_any<'a>(
    insts: &'a [Installation],
    name: &str,
) -> anyhow::Result<(&'a Installation, kiln_apps::AppRef)> {
    for i in insts {
        if let Some(r) = i.find(name, None) {
            return Ok((i, r));
        }
    }
    Err(kiln_apps::Error::NotInstalled(name.to_string()).into())
}

fn merged_permissions(
    insts: &[Installation],
    inst: &Installation,
    r: &kiln_apps::AppRef,
) -> anyhow::Result<kiln_apps::context::Context> {
    let d = inst.describe(r)?;
    let md = inst.deployed_metadata(r, &d.commit)?;
    let mut ctx = kiln_apps::context::Context::default();
    if let Some(rt) = &md.runtime {
        for i in std::iter::once(inst).chain(insts.iter()) {
            if let Some(c) = i.active_commit(rt) {
                ctx = i.deployed_metadata(rt, &c)?.context;
                break;
            }
        }
    }
    ctx.merge(&md.context);
    let all = [user_inst(), system_inst()];
    ctx.merge(&kiln_apps::launch::overrides_for(&all, inst.scope, &r.id)?);
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn argv(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    /// What clap makes of `a`, as `run` would get it.
    fn by_clap(a: &[OsString]) -> (String, RunOptions) {
        let cli = crate::cli::Cli::try_parse_from(a).expect("clap accepts it");
        let crate::cli::Command::App(args) = cli.command else {
            panic!("not app")
        };
        let AppCommand::Run {
            command,
            runtime,
            devel,
            no_session_bus,
            perms,
            app,
            args,
        } = args.command
        else {
            panic!("not run")
        };
        (
            app,
            run_options(command, runtime, devel, no_session_bus, &perms, args),
        )
    }

    #[test]
    fn fast_run_parse_is_clap_parse() {
        for a in [
            &["kiln", "app", "run", "org.x.Y"][..],
            &["kiln", "app", "run", "org.x.Y", "file", "--flag", "-x"],
            &[
                "kiln",
                "app",
                "run",
                "--command=sh",
                "--share",
                "network",
                "--filesystem=home:ro",
                "--filesystem",
                "xdg-download",
                "--env=A=-b",
                "--devel",
                "--no-session-bus",
                "--runtime",
                "org.x.Rt/x86_64/1",
                "--talk-name=org.a.B",
                "--socket=wayland",
                "--nosocket=x11",
                "--device=dri",
                "--nodevice=kvm",
                "--allow=devel",
                "--disallow=multiarch",
                "--unshare=ipc",
                "--nofilesystem=host",
                "--persist=.x",
                "--unset-env=B",
                "--own-name=org.a.C",
                "--no-talk-name=org.a.D",
                "--system-own-name=org.a.E",
                "--system-talk-name=org.a.F",
                "--system-no-talk-name=org.a.G",
                "org.x.Y",
                "a b",
            ],
        ] {
            let a = argv(a);
            let fast = fast_run_args(&a).unwrap_or_else(|| panic!("no fast path for {a:?}"));
            assert_eq!(format!("{fast:?}"), format!("{:?}", by_clap(&a)), "{a:?}");
        }
        // Left to clap: help, global flags, unknown or repeated options,
        // values that look like flags, a hyphen right after APP.
        for a in [
            &["kiln", "app", "run"][..],
            &["kiln", "app", "list"],
            &["kiln", "-v", "app", "run", "org.x.Y"],
            &["kiln", "app", "run", "--help"],
            &["kiln", "app", "run", "-h", "org.x.Y"],
            &["kiln", "app", "run", "--bogus", "org.x.Y"],
            &[
                "kiln",
                "app",
                "run",
                "--command=a",
                "--command=b",
                "org.x.Y",
            ],
            &["kiln", "app", "run", "--devel", "--devel", "org.x.Y"],
            &["kiln", "app", "run", "--devel=true", "org.x.Y"],
            &["kiln", "app", "run", "--command", "-x", "org.x.Y"],
            &["kiln", "app", "run", "--command=", "org.x.Y"],
            &["kiln", "app", "run", "--", "org.x.Y"],
            &["kiln", "app", "run", "org.x.Y", "--devel"],
            &["kiln", "app", "run", "org.x.Y", "-c", "x"],
            &["kiln", "app", "run", "--share"],
        ] {
            assert!(fast_run_args(&argv(a)).is_none(), "{a:?}");
        }
    }
}
