//! `kiln compose rootfs DIR --branch REF` and `kiln compose debian
//! MANIFEST`: make OSTree OS trees from Debian.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use kiln_compose::debian::{compose, ComposeOptions};
use kiln_compose::pieces::BootPieces;
use kiln_compose::transform::ActionKind;
use kiln_compose::{Manifest, TransformReport};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ComposeArgs {
    #[command(subcommand)]
    pub cmd: ComposeCmd,
}

#[derive(Subcommand, Debug)]
pub enum ComposeCmd {
    /// Turn a Debian root file system (in place) into an OSTree-ready OS
    /// tree and commit it; reports what moved and why. Idempotent.
    Rootfs {
        /// The root file system (changed in place).
        dir: PathBuf,
        /// Branch to commit to.
        #[arg(short = 'b', long)]
        branch: Option<String>,
        /// Repository to commit into.
        #[arg(long)]
        repo: Option<PathBuf>,
        /// `version` in the commit metadata.
        #[arg(long = "set-version", value_name = "VERSION")]
        version: Option<String>,
        /// Only transform, do not commit.
        #[arg(long, conflicts_with = "branch")]
        no_commit: bool,
        #[arg(long)]
        json: bool,
    },
    /// Build a root file system with mmdebstrap from a manifest, add kiln's
    /// boot pieces, transform and commit it.
    Debian {
        manifest: PathBuf,
        /// Repository to commit into.
        #[arg(long)]
        repo: PathBuf,
        /// Overrides the manifest's `ref`.
        #[arg(short = 'b', long)]
        branch: Option<String>,
        /// Overrides the manifest's `version`.
        #[arg(long = "set-version", value_name = "VERSION")]
        version: Option<String>,
        /// Cache of bootstrapped trees and initramfs images.
        #[arg(long, default_value = "/var/cache/kiln/compose")]
        cache_dir: PathBuf,
        /// Overrides the mirror (default: the manifest's, else this machine's).
        #[arg(long)]
        mirror: Option<String>,
        /// kiln-prepare-root binary (default: next to kiln, else /usr/lib/kiln/).
        #[arg(long)]
        prepare_root: Option<PathBuf>,
        /// The kiln binary to put into the tree (default: this one).
        #[arg(long)]
        kiln_binary: Option<PathBuf>,
        /// Only check the manifest (syntax, package names).
        #[arg(long)]
        check: bool,
        #[arg(long)]
        json: bool,
    },
}

fn default_prepare_root() -> PathBuf {
    if let Ok(exe) = std::env::current_exe() {
        let p = exe.with_file_name("kiln-prepare-root");
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from("/usr/lib/kiln/kiln-prepare-root")
}

fn print_report(r: &TransformReport) {
    for a in &r.actions {
        let verb = match a.kind {
            ActionKind::Moved => "moved",
            ActionKind::Linked => "linked",
            ActionKind::Removed => "removed",
            ActionKind::Created => "created",
            ActionKind::Kept => "kept",
            ActionKind::AlreadyDone => "already done",
        };
        let to =
            a.to.as_deref()
                .map(|t| format!(" -> {t}"))
                .unwrap_or_default();
        println!("  {verb:>12}: {}{to} ({})", a.path, a.why);
    }
}

pub fn run(a: ComposeArgs) -> Result<ExitCode> {
    match a.cmd {
        ComposeCmd::Rootfs {
            dir,
            branch,
            repo,
            version,
            no_commit,
            json,
        } => {
            if !no_commit && (branch.is_none() || repo.is_none()) {
                anyhow::bail!("--branch and --repo are required (or --no-commit)");
            }
            let r = kiln_compose::transform(&dir)
                .with_context(|| format!("transforming {}", dir.display()))?;
            let commit = match (no_commit, branch, repo) {
                (false, Some(b), Some(repo)) => {
                    let subject = format!("kiln compose rootfs {}", dir.display());
                    Some(
                        kiln_compose::debian::commit_tree(
                            &repo,
                            &dir,
                            &b,
                            version.as_deref(),
                            &subject,
                        )?
                        .to_string(),
                    )
                }
                _ => None,
            };
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"transform": r, "commit": commit})
                    )?
                );
            } else {
                println!(
                    "{} {}",
                    if r.unchanged() {
                        "Already an OSTree tree:"
                    } else {
                        "Transformed"
                    },
                    dir.display()
                );
                print_report(&r);
                if let Some(c) = commit {
                    println!("{c}");
                }
            }
        }
        ComposeCmd::Debian {
            manifest,
            repo,
            branch,
            version,
            cache_dir,
            mirror,
            prepare_root,
            kiln_binary,
            check,
            json,
        } => {
            let m = Manifest::load(&manifest)?;
            if check {
                match kiln_compose::debian::check_packages(&m)? {
                    Some(note) => println!("{}: valid ({note})", manifest.display()),
                    None => println!(
                        "{}: valid, {} packages known to apt",
                        manifest.display(),
                        m.packages.len()
                    ),
                }
                return Ok(ExitCode::SUCCESS);
            }
            let kiln = match kiln_binary {
                Some(p) => p,
                None => std::env::current_exe().context("finding the kiln binary")?,
            };
            let pieces = BootPieces {
                kiln,
                prepare_root: prepare_root.unwrap_or_else(default_prepare_root),
            };
            let opts = ComposeOptions {
                repo,
                branch,
                version,
                cache_dir,
                pieces,
                mirror,
            };
            let log = |s: &str| {
                if json {
                    eprintln!("{s}");
                } else {
                    println!("{s}");
                }
            };
            let r = compose(&m, &opts, &log)
                .with_context(|| format!("composing {}", display(&manifest)))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!("Transform of the root file system:");
                print_report(&r.transform);
                println!(
                    "Committed {} to {}{}",
                    r.commit,
                    r.branch,
                    r.version
                        .as_deref()
                        .map(|v| format!(" (version {v})"))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
