//! `kiln admin`: `ostree admin`'s verbs and flags on an OSTree sysroot, plus
//! `rollback` and `set-default` (which reorder deployments instead of
//! deleting one).

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use kiln_store::keyfile::KeyFile;
use kiln_sysroot::{DeployOptions, InitFsOptions, Sysroot, SysrootOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Use the sysroot at PATH (default: /), before or after the verb.
    #[arg(long, global = true, value_name = "PATH")]
    pub sysroot: Option<PathBuf>,
    #[command(subcommand)]
    pub verb: AdminVerb,
}

#[derive(Subcommand, Debug)]
pub enum AdminVerb {
    /// Create the top-level directories and ostree/repo of a new sysroot.
    InitFs {
        /// An existing directory.
        path: PathBuf,
        /// Only create boot/ and ostree/.
        #[arg(long)]
        modern: bool,
    },
    /// Create a stateroot (ostree/deploy/OS with its shared /var).
    OsInit { osname: String },
    /// Check out a commit as a new deployment and make it the default.
    Deploy(Box<DeployArgs>),
    /// Delete deployment INDEX.
    Undeploy { index: String },
    /// List deployments.
    Status {
        /// Accepted for compatibility (signatures are not shown).
        #[arg(short = 'V', long)]
        verify: bool,
    },
    /// Delete unreferenced deployments, boot directories and objects.
    Cleanup,
    /// Keep deployments from being garbage collected.
    Pin {
        /// Unset the pin.
        #[arg(short = 'u', long)]
        unpin: bool,
        #[arg(required = true)]
        index: Vec<String>,
    },
    /// Point a deployment's origin at a remote (added to the repo config).
    SetOrigin {
        /// Set config option KEY=VALUE for the remote.
        #[arg(short = 's', long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Deployment INDEX (default: the booted one).
        #[arg(long)]
        index: Option<usize>,
        remote: String,
        url: String,
        branch: Option<String>,
    },
    /// Kernel arguments of the current entries.
    Kargs {
        #[command(subcommand)]
        op: KargsOp,
    },
    /// Finish a staged deployment (run at shutdown by kiln-finalize-staged.service).
    FinalizeStaged {
        /// Hold /boot open until stopped.
        #[arg(long)]
        hold: bool,
    },
    /// Make the rollback deployment the default (nothing is deleted).
    Rollback,
    /// Make deployment INDEX the default (nothing is deleted).
    SetDefault { index: String },
}

#[derive(Subcommand, Debug)]
pub enum KargsOp {
    /// Rewrite the current boot entries in place (no new bootversion).
    EditInPlace {
        /// Append NAME=VALUE unless an argument NAME is present.
        #[arg(long = "append-if-missing", value_name = "NAME=VALUE")]
        append_if_missing: Vec<String>,
    },
}

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// A ref (`fakeos/v1`, `remote:ref`) or a full commit checksum.
    pub refspec: String,
    /// Stateroot (default: the booted one).
    #[arg(long = "os", value_name = "OSNAME")]
    pub os: Option<String>,
    /// Use this origin file instead of `[origin] refspec=REFSPEC`.
    #[arg(long = "origin-file", value_name = "FILENAME")]
    pub origin_file: Option<PathBuf>,
    /// Don't prune the repo when done.
    #[arg(long)]
    pub no_prune: bool,
    /// Do not apply /etc and kernel arguments of the merge deployment.
    #[arg(long)]
    pub no_merge: bool,
    /// Do not delete previous deployments.
    #[arg(long)]
    pub retain: bool,
    /// Complete the deployment at shutdown.
    #[arg(long)]
    pub stage: bool,
    #[arg(long, hide = true)]
    pub lock_finalization: bool,
    /// Do not delete pending deployments.
    #[arg(long)]
    pub retain_pending: bool,
    /// Do not delete rollback deployments.
    #[arg(long)]
    pub retain_rollback: bool,
    /// Append rather than prepend the new deployment.
    #[arg(long)]
    pub not_as_default: bool,
    /// Import the current /proc/cmdline.
    #[arg(long)]
    pub karg_proc_cmdline: bool,
    /// Set a kernel argument, replacing any with the same name.
    #[arg(long = "karg", value_name = "NAME=VALUE")]
    pub karg: Vec<String>,
    /// Append a kernel argument.
    #[arg(long = "karg-append", value_name = "NAME=VALUE")]
    pub karg_append: Vec<String>,
    /// Do not import kernel arguments.
    #[arg(long)]
    pub karg_none: bool,
    /// Delete a kernel argument.
    #[arg(long = "karg-delete", value_name = "NAME=VALUE")]
    pub karg_delete: Option<String>,
}

/// Sysroot location and booted-probe paths. `KILN_BOOTED_ROOT` and
/// `KILN_RUN_DIR` (test hooks) replace `/` and `/run`.
pub fn sysroot_options(path: Option<PathBuf>) -> SysrootOptions {
    let mut o = SysrootOptions::default();
    if let Some(p) = path {
        o.path = p;
    }
    if let Some(r) = std::env::var_os("KILN_BOOTED_ROOT") {
        o.root = r.into();
    }
    if let Some(r) = std::env::var_os("KILN_RUN_DIR") {
        o.run_dir = r.into();
    }
    o
}

/// Open (and load) a sysroot, printing its messages on stdout.
pub fn open(path: Option<PathBuf>) -> Result<Sysroot> {
    let mut s = Sysroot::open(sysroot_options(path))?;
    s.set_message_sink(Box::new(|m| {
        println!("{m}");
        let _ = std::io::stdout().flush();
    }));
    Ok(s)
}

/// Open and take the sysroot lock (waiting, like ostree, with a note).
pub fn open_locked(path: Option<PathBuf>) -> Result<Sysroot> {
    let mut s = open(path)?;
    s.lock(|| {
        println!("Waiting for sysroot lock...");
        let _ = std::io::stdout().flush();
    })?;
    Ok(s)
}

/// An index as `ostree admin` takes it.
pub fn parse_index(s: &str) -> Result<usize> {
    s.parse::<usize>()
        .with_context(|| format!("Invalid index: {s}"))
}

pub fn run(args: AdminArgs) -> Result<ExitCode> {
    let sysroot = args.sysroot;
    match args.verb {
        AdminVerb::InitFs { path, modern } => {
            kiln_sysroot::init_fs(&path, InitFsOptions { modern })?;
        }
        AdminVerb::OsInit { osname } => {
            let mut s = open(sysroot)?;
            s.init_osname(&osname)?;
            println!("ostree/deploy/{osname} initialized as OSTree root");
        }
        AdminVerb::Deploy(d) => deploy(sysroot, *d)?,
        AdminVerb::Undeploy { index } => {
            let index = parse_index(&index)?;
            let mut s = open_locked(sysroot)?;
            s.undeploy(index)?;
        }
        AdminVerb::Status { verify: _ } => status(&open(sysroot)?),
        AdminVerb::Cleanup => {
            open_locked(sysroot)?.cleanup(true)?;
        }
        AdminVerb::Pin { unpin, index } => {
            let mut s = open_locked(sysroot)?;
            for i in index {
                let n = parse_index(&i)?;
                let changed = s.set_pinned(n, !unpin)?;
                let what = if unpin { "unpinned" } else { "pinned" };
                if changed {
                    println!("Deployment {i} is now {what}");
                } else {
                    println!("Deployment {i} is already {what}");
                }
            }
        }
        AdminVerb::SetOrigin {
            set,
            index,
            remote,
            url,
            branch,
        } => set_origin(sysroot, set, index, &remote, &url, branch.as_deref())?,
        AdminVerb::Kargs {
            op: KargsOp::EditInPlace { append_if_missing },
        } => {
            let mut s = open_locked(sysroot)?;
            if s.deployments().is_empty() {
                bail!(kiln_sysroot::Error::NoDeployments);
            }
            for i in 0..s.deployments().len() {
                let mut k =
                    kiln_sysroot::KernelArgs::parse(s.deployments()[i].options().unwrap_or(""));
                for a in &append_if_missing {
                    k.append_if_missing(a);
                }
                s.set_kargs_in_place(i, &k.to_string())?;
            }
        }
        AdminVerb::FinalizeStaged { hold } => {
            let opts = sysroot_options(sysroot.clone());
            if !opts.run_dir.join("ostree-booted").exists() {
                return Ok(ExitCode::SUCCESS);
            }
            if hold {
                let s = open(sysroot)?;
                let _boot = std::fs::File::open(s.path().join("boot")).context("opening /boot")?;
                // Keep /boot busy until systemd stops us (SIGTERM).
                loop {
                    std::thread::park();
                }
            }
            open_locked(sysroot)?.finalize_staged()?;
        }
        AdminVerb::Rollback => {
            let mut s = open_locked(sysroot)?;
            s.rollback()?;
        }
        AdminVerb::SetDefault { index } => {
            let index = parse_index(&index)?;
            let mut s = open_locked(sysroot)?;
            s.set_default(index)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn deploy(sysroot: Option<PathBuf>, a: DeployArgs) -> Result<()> {
    let origin = match &a.origin_file {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Some(KeyFile::parse(&text).with_context(|| format!("parsing {}", p.display()))?)
        }
        None => None,
    };
    let proc_cmdline = if a.karg_proc_cmdline {
        Some(std::fs::read_to_string("/proc/cmdline").context("reading /proc/cmdline")?)
    } else {
        None
    };
    let opts = DeployOptions {
        osname: a.os,
        origin,
        karg: a.karg,
        karg_append: a.karg_append,
        karg_delete: a.karg_delete,
        karg_none: a.karg_none,
        proc_cmdline,
        no_merge: a.no_merge,
        retain: a.retain,
        retain_pending: a.retain_pending,
        retain_rollback: a.retain_rollback,
        not_as_default: a.not_as_default,
        stage: a.stage,
        lock_finalization: a.lock_finalization,
        no_prune: a.no_prune,
    };
    let mut s = open_locked(sysroot)?;
    s.deploy(&a.refspec, &opts)?;
    Ok(())
}

/// `ostree admin status`, same text.
fn status(s: &Sysroot) {
    let st = s.status();
    if st.deployments.is_empty() {
        println!("No deployments.");
        return;
    }
    for d in &st.deployments {
        let tag = if d.staged {
            " (staged)"
        } else if d.pending {
            " (pending)"
        } else if d.rollback && st.booted {
            " (rollback)"
        } else {
            ""
        };
        println!(
            "{} {} {}.{}{}",
            if d.booted { '*' } else { ' ' },
            d.osname,
            d.checksum,
            d.serial,
            tag
        );
        if let Some(v) = &d.version {
            println!("    Version: {v}");
        }
        if d.pinned {
            println!("    Pinned: yes");
        }
        let origin = s.deployments().get(d.index).and_then(|x| x.origin.as_ref());
        match (origin, &d.origin) {
            (None, _) => println!("    origin: none"),
            (Some(_), None) => println!("    origin: <unknown origin type>"),
            (Some(_), Some(r)) => println!("    origin refspec: {r}"),
        }
    }
}

fn set_origin(
    sysroot: Option<PathBuf>,
    set: Vec<String>,
    index: Option<usize>,
    remote: &str,
    url: &str,
    branch: Option<&str>,
) -> Result<()> {
    let mut s = open_locked(sysroot)?;
    let target = match index {
        Some(i) => s.deployment(i)?.clone(),
        None => s
            .booted_deployment()
            .cloned()
            .ok_or(kiln_sysroot::Error::NotBooted)?,
    };
    kiln_store::refs::validate_remote_name(remote)?;
    let group = format!("remote \"{remote}\"");
    let mut config = s.repo().config().clone();
    if config.get(&group, "url").is_none() {
        config.set(&group, "url", url);
        for kv in &set {
            let (k, v) = kv
                .split_once('=')
                .with_context(|| format!("Missing '=' in KEY=VALUE pair '{kv}'"))?;
            config.set(&group, k, v);
        }
        s.repo_mut().write_config(config)?;
    }
    let old = target
        .origin_refspec()
        .context("deployment has no origin refspec")?;
    let old_ref = kiln_store::refs::RefSpec::parse(old)?.name;
    let new_refspec = format!("{remote}:{}", branch.unwrap_or(&old_ref));
    let mut origin = KeyFile::default();
    origin.set("origin", "refspec", &new_refspec);
    s.write_origin_file(target.index, origin)?;
    Ok(())
}
