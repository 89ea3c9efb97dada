//! The system verbs rpm-ostree and bootc users know (`kiln status`,
//! `upgrade`, `deploy`, `rebase`, `rollback`, `cleanup`, `kargs`, `diff`,
//! `df`, `pin`), acting on the booted system or `--sysroot`.

use super::admin::{open, open_locked, parse_index};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use kiln_store::keyfile::KeyFile;
use kiln_store::Checksum;
use kiln_sysroot::{DeployOptions, Deployment, KernelArgs, Sysroot};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug, Clone)]
pub struct SysrootArg {
    /// Act on the sysroot at PATH instead of the booted system.
    #[arg(long, value_name = "PATH")]
    pub sysroot: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Show the deployments: booted (●), staged, pending, rollback.
    Status {
        #[command(flatten)]
        s: SysrootArg,
        /// Print the status as JSON (schema in docs/sysroot.md).
        #[arg(long)]
        json: bool,
    },
    /// Fetch the origin's newest commit and deploy it (staged when booted).
    Upgrade {
        #[command(flatten)]
        s: SysrootArg,
        /// Only check whether an update is available (exit 77 if none).
        #[arg(long)]
        check: bool,
        /// Show what the update changes, without deploying.
        #[arg(long)]
        preview: bool,
        /// Reboot when done.
        #[arg(short = 'r', long)]
        reboot: bool,
    },
    /// Deploy a VERSION (commit metadata) or COMMIT of the origin's ref.
    Deploy {
        #[command(flatten)]
        s: SysrootArg,
        revision: String,
        #[arg(short = 'r', long)]
        reboot: bool,
    },
    /// Switch the origin to REMOTE:REF (or REF) and deploy it.
    Rebase {
        #[command(flatten)]
        s: SysrootArg,
        refspec: String,
        #[arg(short = 'r', long)]
        reboot: bool,
    },
    /// Boot the previous deployment next (nothing is deleted).
    Rollback {
        #[command(flatten)]
        s: SysrootArg,
        #[arg(short = 'r', long)]
        reboot: bool,
    },
    /// Remove deployments or cached data.
    Cleanup {
        #[command(flatten)]
        s: SysrootArg,
        /// Remove the pending deployment.
        #[arg(short = 'p', long)]
        pending: bool,
        /// Remove the rollback deployment (unless pinned).
        #[arg(short = 'r', long)]
        rollback: bool,
        /// Remove unreferenced deployments, boot dirs and repo objects.
        #[arg(short = 'b', long)]
        base: bool,
        /// Remove the repo's temporary files.
        #[arg(short = 'm', long)]
        repomd: bool,
    },
    /// Show or change the kernel arguments of the next boot.
    Kargs {
        #[command(flatten)]
        s: SysrootArg,
        #[arg(long, value_name = "KEY=VALUE")]
        append: Vec<String>,
        #[arg(long, value_name = "KEY[=VALUE]")]
        delete: Vec<String>,
        /// KEY=VALUE, or KEY=OLD=NEW for one of several values.
        #[arg(long, value_name = "KEY=VALUE")]
        replace: Vec<String>,
        /// Edit them in $EDITOR.
        #[arg(long)]
        editor: bool,
    },
    /// Files added, modified and removed between two deployments, and
    /// Debian packages added, removed, upgraded and downgraded.
    Diff {
        #[command(flatten)]
        s: SysrootArg,
        /// Index, CHECKSUM.SERIAL or checksum prefix (default: see docs).
        deploy_a: Option<String>,
        deploy_b: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Space used by the repo, each deployment, /var and /boot.
    Df {
        #[command(flatten)]
        s: SysrootArg,
        #[arg(long)]
        json: bool,
    },
    /// Make /usr writable until reboot: a transient overlay whose changes
    /// live on a tmpfs (like `ostree admin unlock`).
    Usroverlay {
        #[command(flatten)]
        s: SysrootArg,
    },
    /// Pin (or unpin) deployment INDEX so cleanup keeps it.
    Pin {
        #[command(flatten)]
        s: SysrootArg,
        index: String,
        #[arg(short = 'u', long)]
        unpin: bool,
    },
}

pub fn run(cmd: SystemCommand, verbose: u8) -> Result<ExitCode> {
    match cmd {
        SystemCommand::Status { s, json } => status(&open(s.sysroot)?, json, verbose > 0)?,
        SystemCommand::Upgrade {
            s,
            check,
            preview,
            reboot,
        } => return upgrade(s.sysroot, check, preview, reboot),
        SystemCommand::Deploy {
            s,
            revision,
            reboot,
        } => deploy_version(s.sysroot, &revision, reboot)?,
        SystemCommand::Rebase { s, refspec, reboot } => rebase(s.sysroot, &refspec, reboot)?,
        SystemCommand::Rollback { s, reboot } => {
            let mut sr = open_locked(s.sysroot)?;
            let i = sr.rollback_target()?;
            let d = sr.deployments()[i].clone();
            sr.set_default(i)?;
            println!("Moving '{}' to be first deployment", d.dirname());
            maybe_reboot(&sr, reboot)?;
        }
        SystemCommand::Cleanup {
            s,
            pending,
            rollback,
            base,
            repomd,
        } => {
            if !(pending || rollback || base || repomd) {
                bail!("At least one cleanup option must be specified (-p, -r, -b, -m)");
            }
            let mut sr = open_locked(s.sysroot)?;
            let (p, r) = pending_and_rollback(&sr);
            let mut drop: Vec<Deployment> = Vec::new();
            if pending {
                drop.extend(p);
            }
            if rollback {
                drop.extend(r.filter(|d| !d.is_pinned()));
            }
            if !drop.is_empty() {
                let list: Vec<Deployment> = sr
                    .deployments()
                    .iter()
                    .filter(|d| !drop.iter().any(|x| x.same(d)))
                    .cloned()
                    .collect();
                sr.write_deployments(list, true)?;
                for d in &drop {
                    println!("Deleted deployment {}", d.dirname());
                }
            }
            if base {
                let rep = sr.cleanup(true)?;
                println!(
                    "Removed {} deployment(s), {} boot dir(s), {} object(s)",
                    rep.deployments_removed.len(),
                    rep.bootdirs_removed.len(),
                    rep.objects_pruned
                );
            }
            if repomd {
                sr.repo().cleanup_tmp()?;
            }
        }
        SystemCommand::Kargs {
            s,
            append,
            delete,
            replace,
            editor,
        } => kargs(s.sysroot, append, delete, replace, editor)?,
        SystemCommand::Diff {
            s,
            deploy_a,
            deploy_b,
            json,
        } => diff(&open(s.sysroot)?, deploy_a, deploy_b, json)?,
        SystemCommand::Df { s, json } => df(&open(s.sysroot)?, json)?,
        SystemCommand::Usroverlay { s } => {
            let upper = open(s.sysroot)?.usr_overlay()?;
            println!("Development mode enabled. A writable overlayfs is now mounted on /usr.");
            println!(
                "All changes there ({}) will be discarded on reboot.",
                upper.display()
            );
        }
        SystemCommand::Pin { s, index, unpin } => {
            let mut sr = open_locked(s.sysroot)?;
            let changed = sr.set_pinned(parse_index(&index)?, !unpin)?;
            let what = if unpin { "unpinned" } else { "pinned" };
            println!(
                "Deployment {index} is {}{what}",
                if changed { "now " } else { "already " }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// (pending, rollback): relative to the booted deployment, or index 0/1
/// on a sysroot that is not booted.
fn pending_and_rollback(s: &Sysroot) -> (Option<Deployment>, Option<Deployment>) {
    if s.booted_deployment().is_some() {
        let (p, r) = s.query_deployments_for(None);
        (p.cloned(), r.cloned())
    } else {
        (
            None,
            s.rollback_target().ok().map(|i| s.deployments()[i].clone()),
        )
    }
}

fn maybe_reboot(s: &Sysroot, reboot: bool) -> Result<()> {
    if reboot && s.is_booted() {
        let st = std::process::Command::new("systemctl")
            .arg("reboot")
            .status()
            .context("running systemctl reboot")?;
        if !st.success() {
            bail!("systemctl reboot failed: {st}");
        }
    }
    Ok(())
}

fn status(s: &Sysroot, json: bool, verbose: bool) -> Result<()> {
    let st = s.status();
    if json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(());
    }
    println!(
        "Sysroot: {}{}",
        st.sysroot.display(),
        if st.booted { "" } else { " (not booted)" }
    );
    if st.deployments.is_empty() {
        println!("No deployments.");
        return Ok(());
    }
    println!("Deployments:");
    for d in &st.deployments {
        let mut tags = Vec::new();
        if d.staged {
            tags.push("staged");
        }
        if d.pending {
            tags.push("pending");
        }
        if d.rollback {
            tags.push("rollback");
        }
        if d.index == 0 && !d.staged {
            tags.push("default");
        }
        if d.live {
            tags.push("live");
        }
        let origin = d.origin.clone().unwrap_or_else(|| "(no origin)".into());
        let tags = if tags.is_empty() {
            String::new()
        } else {
            format!(" ({})", tags.join(", "))
        };
        println!(
            "{} {}:{}{}",
            if d.booted { '●' } else { ' ' },
            d.osname,
            origin,
            tags
        );
        let row = |k: &str, v: &str| println!("  {k:>12}: {v}");
        if let Some(v) = &d.version {
            row(
                "Version",
                &format!("{v} ({})", d.timestamp_iso.clone().unwrap_or_default()),
            );
        } else if let Some(t) = &d.timestamp_iso {
            row("Timestamp", t);
        }
        row("Commit", &d.checksum);
        if d.pinned {
            row("Pinned", "yes");
        }
        if d.booted {
            if let Some(l) = &st.live {
                row(
                    "LiveApplied",
                    &format!("/usr is {} (since {})", l.deployment, l.time_iso),
                );
            }
            if let Some(u) = &st.unlocked {
                row("Unlocked", u);
            }
        }
        if let Some(b) = &d.base_checksum {
            row("BaseCommit", b);
        }
        if !d.layered_packages.is_empty() {
            row("Layered", &d.layered_packages.join(" "));
        }
        if !d.removed_packages.is_empty() {
            row("Removed", &d.removed_packages.join(" "));
        }
        if verbose {
            row("Deployment", &format!("{}.{}", d.checksum, d.serial));
            row("Path", &d.path);
            row("BootCsum", &d.bootcsum);
            if let Some(k) = &d.kargs {
                row("Kargs", k);
            }
            if let Some(subj) = &d.subject {
                row("Subject", subj);
            }
        }
    }
    if let Some(note) = s.boot_health().note() {
        println!("{note}");
    }
    Ok(())
}

/// Bring the origin's commit into the repo and return it: a `REMOTE:REF`
/// is pulled with kiln-remote (only resolved with `dry_run`), a plain ref
/// is read from the local repo.
fn fetch_origin(s: &Sysroot, refspec: &str, dry_run: bool) -> Result<Checksum> {
    let repo = s.repo();
    let spec = kiln_store::refs::RefSpec::parse(refspec)?;
    if let Some(remote) = &spec.remote {
        let opts = kiln_remote::PullOptions {
            dry_run,
            ..Default::default()
        };
        let progress = std::sync::Arc::new(kiln_store::Progress::new());
        let bar = super::progress::Bar::start("pull", progress.clone());
        let r = kiln_remote::pull(
            repo,
            remote,
            std::slice::from_ref(&spec.name),
            &opts,
            &progress,
        );
        drop(bar);
        let r = r.with_context(|| format!("pulling {refspec}"))?;
        if let Some(p) = r.refs.first() {
            return Ok(p.commit);
        }
    }
    let csum = repo
        .resolve_ref(&spec.to_string())?
        .with_context(|| format!("Refspec '{refspec}' not found"))?;
    Ok(csum)
}

/// The deployment whose origin and /etc an update starts from.
fn merge_of(s: &Sysroot) -> Result<Deployment> {
    s.merge_deployment(None)
        .or_else(|| s.deployments().iter().find(|d| !d.staged))
        .cloned()
        .context("no deployment to upgrade (deploy one first with `kiln admin deploy`)")
}

/// The origin to carry into a new deployment: without pins.
fn carried_origin(d: &Deployment) -> KeyFile {
    let mut o = d.origin.clone().unwrap_or_default();
    o.remove_key(kiln_sysroot::deployment::TRANSIENT_GROUP, "pinned");
    let mut fresh = KeyFile::default();
    if let Some(r) = o.get("origin", "refspec") {
        fresh.set("origin", "refspec", r);
    }
    fresh
}

fn deploy_new(
    s: &mut Sysroot,
    merge: &Deployment,
    csum: &Checksum,
    origin: KeyFile,
) -> Result<Deployment> {
    let opts = DeployOptions {
        osname: Some(merge.osname.clone()),
        stage: s.is_booted(),
        ..Default::default()
    };
    let d = s.deploy_commit(csum, origin, &opts)?;
    let v = s
        .repo()
        .read_commit(csum)
        .ok()
        .and_then(|c| c.version().map(str::to_string));
    println!(
        "{} {}.{}{}",
        if d.staged {
            "Staged deployment"
        } else {
            "Deployed"
        },
        d.csum,
        d.serial,
        v.map(|v| format!(" (version {v})")).unwrap_or_default()
    );
    if d.staged {
        println!("Run \"systemctl reboot\" to start a reboot");
    }
    Ok(d)
}

fn print_diff(s: &Sysroot, a: &Checksum, b: &Checksum) -> Result<()> {
    let d = s.repo().diff_commits(a, b)?;
    for p in &d.added {
        println!("  A {p}");
    }
    for p in &d.modified {
        println!("  M {p}");
    }
    for p in &d.removed {
        println!("  D {p}");
    }
    println!(
        "{} added, {} modified, {} removed",
        d.added.len(),
        d.modified.len(),
        d.removed.len()
    );
    Ok(())
}

fn upgrade(sysroot: Option<PathBuf>, check: bool, preview: bool, reboot: bool) -> Result<ExitCode> {
    let mut s = if check || preview {
        open(sysroot)?
    } else {
        open_locked(sysroot)?
    };
    let merge = merge_of(&s)?;
    let refspec = merge
        .origin_refspec()
        .context("the deployment's origin has no refspec")?
        .to_string();
    let csum = fetch_origin(&s, &refspec, check)?;
    let current = s.staged_deployment().map(|d| d.csum).unwrap_or(merge.csum);
    let current = kiln_compose::layer::base_of(s.repo(), &current);
    if csum == current {
        println!("No upgrade available.");
        return Ok(if check {
            ExitCode::from(77)
        } else {
            ExitCode::SUCCESS
        });
    }
    let v = s
        .repo()
        .read_commit(&csum)
        .ok()
        .and_then(|c| c.version().map(str::to_string));
    if check || preview {
        println!(
            "Update available: {csum}{}",
            v.map(|v| format!(" (version {v})")).unwrap_or_default()
        );
        if preview {
            print_diff(&s, &merge.csum, &csum)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (csum, origin) = super::layer::relayer(&s, &merge, csum, carried_origin(&merge))?;
    deploy_new(&mut s, &merge, &csum, origin)?;
    maybe_reboot(&s, reboot)?;
    Ok(ExitCode::SUCCESS)
}

/// `kiln deploy VERSION|COMMIT`: a full checksum, or the newest commit of
/// the origin ref's history whose `version` is VERSION.
fn deploy_version(sysroot: Option<PathBuf>, revision: &str, reboot: bool) -> Result<()> {
    let mut s = open_locked(sysroot)?;
    let merge = merge_of(&s)?;
    let csum = if revision.len() == 64 && Checksum::is_hex(revision) {
        revision
            .parse::<Checksum>()
            .map_err(|_| anyhow::anyhow!("invalid checksum {revision}"))?
    } else {
        let refspec = merge
            .origin_refspec()
            .context("the deployment's origin has no refspec")?
            .to_string();
        let mut cur = Some(fetch_origin(&s, &refspec, false)?);
        let mut found = None;
        while let Some(c) = cur {
            let Ok(commit) = s.repo().read_commit(&c) else {
                break;
            };
            if commit.version() == Some(revision) {
                found = Some(c);
                break;
            }
            cur = commit.parent;
        }
        found.with_context(|| format!("no commit with version {revision} in the local history of {refspec} (commits without a ref are pruned; pull or deploy by checksum)"))?
    };
    deploy_new(&mut s, &merge, &csum, carried_origin(&merge))?;
    maybe_reboot(&s, reboot)
}

fn rebase(sysroot: Option<PathBuf>, refspec: &str, reboot: bool) -> Result<()> {
    let mut s = open_locked(sysroot)?;
    let merge = merge_of(&s)?;
    let csum = fetch_origin(&s, refspec, false)?;
    let mut origin = KeyFile::default();
    origin.set("origin", "refspec", refspec);
    deploy_new(&mut s, &merge, &csum, origin)?;
    maybe_reboot(&s, reboot)
}

fn kargs(
    sysroot: Option<PathBuf>,
    append: Vec<String>,
    delete: Vec<String>,
    replace: Vec<String>,
    editor: bool,
) -> Result<()> {
    let change = editor || !append.is_empty() || !delete.is_empty() || !replace.is_empty();
    let mut s = if change {
        open_locked(sysroot)?
    } else {
        open(sysroot)?
    };
    let target = s.deployments().first().cloned().context("no deployment")?;
    let current = target.options().unwrap_or("").to_string();
    if !change {
        println!("{current}");
        return Ok(());
    }
    let mut k = KernelArgs::parse(&current);
    for d in &delete {
        k.delete(d)?;
    }
    for r in &replace {
        let (key, rest) = r.split_once('=').context("--replace needs KEY=VALUE")?;
        match rest.split_once('=') {
            Some((old, new)) if k.get_last(key).is_some() => {
                let mut v = k.to_vec();
                let from = format!("{key}={old}");
                let slot = v
                    .iter_mut()
                    .find(|a| **a == from)
                    .with_context(|| format!("No karg '{from}' found"))?;
                *slot = format!("{key}={new}");
                k = KernelArgs::new();
                k.append_all(v.iter().map(String::as_str));
            }
            _ => {
                if !k.contains_key(key) {
                    bail!("No key '{key}' found");
                }
                k.replace(r);
            }
        }
    }
    for a in &append {
        k.append(a);
    }
    if editor {
        let ed = std::env::var("EDITOR").unwrap_or_else(|_| "vi".into());
        let tmp = std::env::temp_dir().join(format!("kiln-kargs-{}", std::process::id()));
        std::fs::write(
            &tmp,
            format!("{k}\n# Edit the kernel arguments above; lines starting with # are ignored.\n"),
        )?;
        let st = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{ed} \"$1\""))
            .arg("sh")
            .arg(&tmp)
            .status()?;
        let text = std::fs::read_to_string(&tmp)?;
        let _ = std::fs::remove_file(&tmp);
        if !st.success() {
            bail!("editor exited with {st}");
        }
        let line: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect();
        k = KernelArgs::parse(line.join(" ").trim());
    }
    if k.to_string() == current {
        println!("Kernel arguments unchanged.");
        return Ok(());
    }
    if target.staged {
        s.set_kargs_in_place(0, &k.to_string())?;
    } else {
        s.set_kargs(target.index, &k.to_vec())?;
    }
    println!("Kernel arguments updated.");
    Ok(())
}

/// A deployment by index, `CHECKSUM.SERIAL` or checksum prefix.
fn find_deployment<'a>(s: &'a Sysroot, spec: &str) -> Result<&'a Deployment> {
    if let Ok(i) = spec.parse::<usize>() {
        if i < s.deployments().len() {
            return Ok(&s.deployments()[i]);
        }
    }
    let hits: Vec<&Deployment> = s
        .deployments()
        .iter()
        .filter(|d| d.dirname() == spec || d.csum.to_string().starts_with(spec))
        .collect();
    match hits.as_slice() {
        [d] => Ok(d),
        [] => bail!("no deployment matches '{spec}'"),
        _ => bail!(
            "'{spec}' matches {} deployments; use INDEX or CHECKSUM.SERIAL",
            hits.len()
        ),
    }
}

fn diff(s: &Sysroot, a: Option<String>, b: Option<String>, json: bool) -> Result<()> {
    let (from, to) = match (a, b) {
        (Some(a), Some(b)) => (
            find_deployment(s, &a)?.clone(),
            find_deployment(s, &b)?.clone(),
        ),
        (Some(a), None) => {
            let from = find_deployment(s, &a)?.clone();
            let to = s
                .booted_deployment()
                .or(s.deployments().first())
                .context("no deployment")?
                .clone();
            (from, to)
        }
        _ => {
            let (i, j) = s
                .default_diff_pair()
                .context("need two deployments to compare")?;
            (s.deployments()[i].clone(), s.deployments()[j].clone())
        }
    };
    let d = s.diff_deployments(&from, &to)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(());
    }
    let label = |r: &kiln_sysroot::diff::DeploymentRef| {
        format!(
            "{}.{}{}",
            r.checksum,
            r.serial,
            r.version
                .as_ref()
                .map(|v| format!(" ({v})"))
                .unwrap_or_default()
        )
    };
    println!("From {}", label(&d.from));
    println!("  To {}", label(&d.to));
    for p in &d.added {
        println!("  A {p}");
    }
    for p in &d.modified {
        println!("  M {p}");
    }
    for p in &d.removed {
        println!("  D {p}");
    }
    println!(
        "{} added, {} modified, {} removed",
        d.added.len(),
        d.modified.len(),
        d.removed.len()
    );
    if let Some(p) = &d.packages {
        print_package_diff(p);
    }
    Ok(())
}

/// The "Packages:" section of `kiln diff`.
fn print_package_diff(p: &kiln_sysroot::diff::PackageDiff) {
    if p.is_empty() {
        println!("Packages: no changes");
        return;
    }
    println!("Packages:");
    let groups = [("Added", &p.added), ("Removed", &p.removed)];
    for (title, list) in groups {
        if !list.is_empty() {
            println!("  {title}:");
            for v in list {
                println!("    {} {}", v.name, v.version);
            }
        }
    }
    for (title, list) in [("Upgraded", &p.upgraded), ("Downgraded", &p.downgraded)] {
        if !list.is_empty() {
            println!("  {title}:");
            for c in list {
                println!("    {} {} -> {}", c.name, c.from, c.to);
            }
        }
    }
    println!(
        "{} added, {} removed, {} upgraded, {} downgraded",
        p.added.len(),
        p.removed.len(),
        p.upgraded.len(),
        p.downgraded.len()
    );
}

fn df(s: &Sysroot, json: bool) -> Result<()> {
    let u = s.disk_usage();
    if json {
        println!("{}", serde_json::to_string_pretty(&u)?);
        return Ok(());
    }
    let f = kiln_store::util::format_size;
    println!("{:<44} {:>12} {:>12}", "WHAT", "OWN", "SHARED");
    println!(
        "{:<44} {:>12} {:>12}",
        "repo (ostree/repo)",
        f(u.repo_bytes),
        "-"
    );
    for d in &u.deployments {
        println!(
            "{:<44} {:>12} {:>12}",
            format!("deployment {} {}.{}", d.index, &d.checksum[..12], d.serial),
            f(d.exclusive_bytes),
            f(d.shared_bytes)
        );
    }
    println!("{:<44} {:>12} {:>12}", "/var", f(u.var_bytes), "-");
    println!("{:<44} {:>12} {:>12}", "/boot", f(u.boot_bytes), "-");
    println!("{:<44} {:>12}", "total", f(u.total_bytes));
    Ok(())
}
