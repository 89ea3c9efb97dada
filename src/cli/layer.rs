//! Package layering verbs (rpm-ostree's spellings): `kiln install PKG…`
//! (flags in [`LayerFlags`], parsed by `install.rs`), `kiln uninstall`,
//! `kiln override remove|reset`, and the hook `kiln upgrade` uses to
//! re-apply the layered packages on a new base.

use super::admin::{open, open_locked};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use kiln_compose::layer::{self, BuildOptions, LayerRequest};
use kiln_store::keyfile::KeyFile;
use kiln_store::Checksum;
use kiln_sysroot::{DeployOptions, Deployment, Sysroot};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug, Default)]
pub struct LayerFlags {
    /// Act on the sysroot at PATH instead of the booted system.
    #[arg(long)]
    pub sysroot: Option<PathBuf>,
    /// Resolve and show what would be installed; change nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Do not ask (kiln never asks; accepted for apt's habits).
    #[arg(long, short = 'y')]
    pub assumeyes: bool,
    /// Succeed without change when a package is already requested (or,
    /// for uninstall, not requested).
    #[arg(long)]
    pub idempotent: bool,
    /// Also switch the running /usr to the new deployment now: it is
    /// deployed as the default (not staged), then mounted over /usr. Only
    /// additions go live unless --allow-replacement.
    #[arg(long, short = 'A')]
    pub apply_live: bool,
    /// With --apply-live: allow changing or removing files of the base
    /// image (lists the processes still using the old files).
    #[arg(long, requires = "apply_live")]
    pub allow_replacement: bool,
}

#[derive(Subcommand, Debug)]
pub enum LayerCommand {
    /// Remove layered packages (rebuilds from the base without them).
    Uninstall {
        #[command(flatten)]
        f: LayerFlags,
        /// Package names (or `--all`).
        packages: Vec<String>,
        /// Remove every layered package and override.
        #[arg(long)]
        all: bool,
    },
    /// Remove packages of the base (`remove`), or undo that (`reset`).
    Override {
        #[command(subcommand)]
        cmd: OverrideCmd,
    },
    /// Make the staged or pending deployment the default and switch the
    /// running /usr to it now (only additions unless --allow-replacement).
    ApplyLive {
        #[command(flatten)]
        s: super::system::SysrootArg,
        /// Allow changing or removing files of the base image.
        #[arg(long)]
        allow_replacement: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum OverrideCmd {
    /// Remove base packages from the next deployment.
    Remove {
        #[command(flatten)]
        f: LayerFlags,
        #[arg(required = true)]
        packages: Vec<String>,
    },
    /// Bring removed base packages back.
    Reset {
        #[command(flatten)]
        f: LayerFlags,
        packages: Vec<String>,
        #[arg(long)]
        all: bool,
    },
}

pub fn run(cmd: LayerCommand) -> Result<ExitCode> {
    match cmd {
        LayerCommand::ApplyLive {
            s,
            allow_replacement,
        } => apply_live(s.sysroot, allow_replacement),
        LayerCommand::Uninstall { f, packages, all } => change(&f, |req, _| {
            if all {
                *req = LayerRequest::default();
                return Ok(());
            }
            if packages.is_empty() {
                bail!("give package names, or --all");
            }
            for p in &packages {
                let had = req.packages.remove(p);
                let before = req.local.len();
                req.local.retain(|l| &l.name != p);
                if !had && before == req.local.len() && !f.idempotent {
                    bail!("package {p} is not layered (see `kiln status`)");
                }
            }
            Ok(())
        }),
        LayerCommand::Override { cmd } => match cmd {
            OverrideCmd::Remove { f, packages } => change(&f, |req, _| {
                for p in &packages {
                    layer::check_name(p)?;
                    if !req.removed.insert(p.clone()) && !f.idempotent {
                        bail!("package {p} is already removed");
                    }
                }
                Ok(())
            }),
            OverrideCmd::Reset { f, packages, all } => change(&f, |req, _| {
                if all {
                    req.removed.clear();
                    return Ok(());
                }
                if packages.is_empty() {
                    bail!("give package names, or --all");
                }
                for p in &packages {
                    if !req.removed.remove(p) && !f.idempotent {
                        bail!("no override for package {p}");
                    }
                }
                Ok(())
            }),
        },
    }
}

/// `kiln install PKG…|./file.deb…`
pub fn install(args: Vec<String>, f: LayerFlags) -> Result<ExitCode> {
    change(&f, |req, cache| {
        for a in &args {
            if a.ends_with(".deb") && (a.contains('/') || Path::new(a).is_file()) {
                let l = layer::import_local_deb(cache, Path::new(a))
                    .with_context(|| format!("reading {a}"))?;
                req.local.retain(|x| x.name != l.name);
                req.packages.remove(&l.name);
                req.local.insert(l);
                continue;
            }
            layer::check_name(a)?;
            if req.packages.contains(a) || req.local.iter().any(|l| &l.name == a) {
                if f.idempotent {
                    continue;
                }
                bail!("package {a} is already requested (see `kiln status`)");
            }
            req.packages.insert(a.clone());
        }
        Ok(())
    })
}

/// The deployment layering starts from: the one whose /usr runs (live
/// applied, else booted), else the default.
fn merge_of(s: &Sysroot) -> Result<Deployment> {
    s.live_deployment()
        .or_else(|| s.booted_deployment())
        .or_else(|| s.merge_deployment(None))
        .or_else(|| s.deployments().iter().find(|d| !d.staged))
        .cloned()
        .context("no deployment to layer onto (deploy one first)")
}

fn cache_dir(s: &Sysroot, d: &Deployment) -> PathBuf {
    s.path()
        .join("ostree/deploy")
        .join(&d.osname)
        .join("var/cache/kiln")
}

/// Origin of the new deployment: the merge deployment's without pins,
/// with `[kiln]` set to `req`.
fn origin_for(d: &Deployment, req: &LayerRequest, base: &Checksum) -> KeyFile {
    let mut o = d.origin.clone().unwrap_or_default();
    o.remove_group(kiln_sysroot::deployment::TRANSIENT_GROUP);
    req.write_origin(&mut o, base);
    o
}

/// Build `req` on `base` (or return the base itself for an empty request).
fn build(
    s: &Sysroot,
    d: &Deployment,
    base: &Checksum,
    req: &LayerRequest,
    dry_run: bool,
) -> Result<Option<Checksum>> {
    if req.is_empty() {
        return Ok(Some(*base));
    }
    let opts = BuildOptions {
        repo: s.repo().path().to_path_buf(),
        base: *base,
        request: req.clone(),
        apt_etc: s.deployment_path(d).join("etc/apt"),
        cache_dir: cache_dir(s, d),
        dry_run,
    };
    let log = |m: &str| eprintln!("{m}");
    let r = layer::build(&opts, &log)?;
    if !r.plan.install.is_empty() {
        println!("Installing: {}", r.plan.install.join(", "));
    }
    if !r.plan.remove.is_empty() {
        println!("Removing: {}", r.plan.remove.join(", "));
    }
    if !r.new_users.is_empty() {
        println!("New system users (sysusers.d): {}", r.new_users.join(", "));
    }
    if !r.relocated.is_empty() {
        println!("Relocated under /usr/lib: {}", r.relocated.join(", "));
    }
    Ok(r.commit.map(|c| c.parse()).transpose()?)
}

fn change(
    f: &LayerFlags,
    edit: impl FnOnce(&mut LayerRequest, &Path) -> Result<()>,
) -> Result<ExitCode> {
    let mut s = if f.dry_run {
        open(f.sysroot.clone())?
    } else {
        open_locked(f.sysroot.clone())?
    };
    if f.apply_live {
        // Before building anything: a live apply needs the running system.
        s.live_preflight()?;
    }
    let d = merge_of(&s)?;
    let base = layer::base_of(s.repo(), &d.csum);
    let current = LayerRequest::from_origin(d.origin.as_ref());
    let mut req = current.clone();
    edit(&mut req, &cache_dir(&s, &d))?;
    if req == current {
        println!("No change.");
        return Ok(ExitCode::SUCCESS);
    }
    let Some(commit) = build(&s, &d, &base, &req, f.dry_run)? else {
        println!("Dry run: nothing deployed.");
        return Ok(ExitCode::SUCCESS);
    };
    // Decided before deploying: a refused live apply deploys nothing.
    let plan = if f.apply_live {
        Some(s.live_plan(&commit, f.allow_replacement)?)
    } else {
        None
    };
    let new = deploy(
        &mut s,
        &d,
        &commit,
        origin_for(&d, &req, &base),
        plan.is_some(),
    )?;
    if let Some(plan) = plan {
        let r = s.live_apply(&new, &plan)?;
        print_live(&plan, &r);
    }
    Ok(ExitCode::SUCCESS)
}

/// `kiln apply-live`: the staged deployment (finalized now) or the
/// pending one becomes the running /usr.
fn apply_live(sysroot: Option<PathBuf>, allow_replacement: bool) -> Result<ExitCode> {
    let mut s = open_locked(sysroot)?;
    s.live_preflight()?;
    let target = match s.staged_deployment() {
        Some(d) => d.clone(),
        None => s.query_deployments_for(None).0.cloned().context(
            "nothing to apply: no staged or pending deployment (`kiln install --apply-live PKG…` layers and applies at once)",
        )?,
    };
    if s.live_deployment().is_some_and(|l| l.same(&target)) {
        println!("Deployment {} is already live.", target.dirname());
        return Ok(ExitCode::SUCCESS);
    }
    let plan = s.live_plan(&target.csum, allow_replacement)?;
    if target.staged && !s.finalize_staged()? {
        bail!("the staged deployment is locked (deployed with --lock-finalization)");
    }
    let find = |s: &Sysroot| {
        s.deployments()
            .iter()
            .find(|d| !d.staged && d.same(&target))
            .cloned()
            .with_context(|| format!("deployment {} is gone", target.dirname()))
    };
    let mut d = find(&s)?;
    if d.index != 0 {
        s.set_default(d.index)?;
        d = find(&s)?;
    }
    println!("Deployment {} is the default.", d.dirname());
    let r = s.live_apply(&d, &plan)?;
    print_live(&plan, &r);
    Ok(ExitCode::SUCCESS)
}

fn print_live(plan: &kiln_sysroot::live::LivePlan, r: &kiln_sysroot::live::LiveReport) {
    println!(
        "Applied live: /usr is now deployment {} ({} added, {} changed or removed{})",
        r.deployment,
        plan.added.len(),
        plan.layered_changed.len() + plan.replaced.len(),
        if plan.replaced.is_empty() {
            String::new()
        } else {
            format!(", {} of them base files", plan.replaced.len())
        }
    );
    for (title, list) in [
        ("Added to /etc", &r.etc_added),
        ("Kept in /etc (already present)", &r.etc_kept),
        ("Ran", &r.ran),
    ] {
        if !list.is_empty() {
            println!("{title}: {}", list.join(", "));
        }
    }
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    if !plan.outside_usr.is_empty() {
        println!(
            "Changes outside /usr take effect at the next boot: {}",
            plan.outside_usr.join(" ")
        );
    }
    if !r.processes.is_empty() {
        println!("Processes using replaced or removed files (restart them):");
        for p in &r.processes {
            println!("  {} {}: {}", p.pid, p.command, p.files.join(" "));
        }
    }
}

fn deploy(
    s: &mut Sysroot,
    d: &Deployment,
    commit: &Checksum,
    origin: KeyFile,
    live: bool,
) -> Result<Deployment> {
    let opts = DeployOptions {
        osname: Some(d.osname.clone()),
        // A live apply deploys as the default at once: a crash from here
        // on boots the new deployment.
        stage: s.is_booted() && !live,
        ..Default::default()
    };
    let new = s.deploy_commit(commit, origin, &opts)?;
    println!(
        "{} {}.{}",
        if new.staged {
            "Staged deployment"
        } else {
            "Deployed"
        },
        new.csum,
        new.serial
    );
    if new.staged {
        println!("Run \"systemctl reboot\" to start a reboot");
    }
    Ok(new)
}

/// For `kiln upgrade`: the commit to deploy for the new base `new_base`
/// and its origin — the base itself when nothing is layered, else the
/// layered packages built again on it. Fails (nothing deployed) when a
/// layered package no longer resolves.
pub fn relayer(
    s: &Sysroot,
    merge: &Deployment,
    new_base: Checksum,
    origin: KeyFile,
) -> Result<(Checksum, KeyFile)> {
    let req = LayerRequest::from_origin(merge.origin.as_ref());
    if req.is_empty() {
        return Ok((new_base, origin));
    }
    let commit = build(s, merge, &new_base, &req, false)
        .with_context(|| format!("re-applying the layered packages on {new_base}"))?
        .context("no commit built")?;
    let mut o = origin;
    req.write_origin(&mut o, &new_base);
    Ok((commit, o))
}
