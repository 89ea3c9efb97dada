//! `kiln repo`: ostree's repository verbs with ostree's flags.

mod commit;
mod read;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use kiln_store::{Repo, RepoMode};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct RepoArgs {
    /// Path to the repository (default: $OSTREE_REPO, /sysroot/ostree/repo, /ostree/repo).
    #[arg(long, global = true, value_name = "PATH")]
    pub repo: Option<PathBuf>,
    #[command(subcommand)]
    pub verb: Verb,
}

#[derive(Subcommand, Debug)]
pub enum Verb {
    /// Create a repository.
    Init(InitArgs),
    /// Read or change the repository config.
    Config(ConfigArgs),
    /// Commit a tree to a branch.
    Commit(Box<commit::CommitArgs>),
    /// Check out a commit into a directory.
    Checkout(read::CheckoutArgs),
    /// List the contents of a commit.
    Ls(read::LsArgs),
    /// Print the contents of a file in a commit.
    Cat(read::CatArgs),
    /// Show a commit.
    Show(read::ShowArgs),
    /// Show the history of a branch.
    Log(read::LogArgs),
    /// Resolve a revision to a commit checksum.
    RevParse(read::RevParseArgs),
    /// List, create or delete refs.
    Refs(read::RefsArgs),
    /// Compare two commits.
    Diff(read::DiffArgs),
    /// Verify every object.
    Fsck(read::FsckArgs),
    /// Delete unreachable objects.
    Prune(read::PruneArgs),
    /// Point a ref at an older commit of its history.
    Reset(read::ResetArgs),
    /// Print the object checksum of a file as ostree computes it.
    Checksum(read::ChecksumArgs),
    /// Manage remote repositories (add, delete, list, show-url, summary, refs).
    Remote(crate::cli::remote::RemoteArgs),
    /// Download data from a remote repository.
    Pull(crate::cli::remote::PullArgs),
    /// Copy data from a local repository.
    PullLocal(crate::cli::remote::PullLocalArgs),
    /// Manage the summary file (update, view, sign).
    Summary(crate::cli::remote::SummaryArgs),
    /// Sign a commit (ed25519), or verify its signatures.
    Sign(crate::cli::remote::SignArgs),
    /// Static delta verbs (generate, apply-offline, list, show, delete).
    StaticDelta(crate::cli::delta::StaticDeltaArgs),
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// bare, bare-user, bare-user-only or archive (archive-z2).
    #[arg(long, default_value = "bare")]
    pub mode: String,
    /// Set the collection ID of the repository.
    #[arg(long)]
    pub collection_id: Option<String>,
}

#[derive(Args, Debug)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub op: ConfigOp,
}

#[derive(Subcommand, Debug)]
pub enum ConfigOp {
    /// Print SECTION.KEY.
    Get {
        #[arg(long)]
        group: Option<String>,
        key: String,
    },
    /// Set SECTION.KEY to VALUE.
    Set {
        #[arg(long)]
        group: Option<String>,
        key: String,
        value: String,
    },
    /// Remove SECTION.KEY.
    Unset {
        #[arg(long)]
        group: Option<String>,
        key: String,
    },
}

pub fn repo_path(arg: &Option<PathBuf>) -> PathBuf {
    if let Some(p) = arg {
        return p.clone();
    }
    if let Some(p) = std::env::var_os("OSTREE_REPO") {
        return PathBuf::from(p);
    }
    for p in ["/sysroot/ostree/repo", "/ostree/repo"] {
        if std::path::Path::new(p).join("config").exists() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("/ostree/repo")
}

pub fn open(arg: &Option<PathBuf>) -> Result<Repo> {
    let p = repo_path(arg);
    Ok(Repo::open(&p)?)
}

pub fn run(args: RepoArgs) -> Result<ExitCode> {
    match args.verb {
        Verb::Init(a) => {
            let mode = RepoMode::parse(&a.mode).with_context(|| {
                format!("Invalid mode '{}' in repository configuration", a.mode)
            })?;
            let path = repo_path(&args.repo);
            let mut repo = Repo::init(&path, mode)?;
            if let Some(cid) = a.collection_id {
                let mut cfg = repo.config().clone();
                cfg.set("core", "collection-id", &cid);
                repo.write_config(cfg)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Verb::Config(a) => config(&args.repo, a.op),
        Verb::Commit(a) => commit::run(&args.repo, *a),
        Verb::Checkout(a) => read::checkout(&args.repo, a),
        Verb::Ls(a) => read::ls(&args.repo, a),
        Verb::Cat(a) => read::cat(&args.repo, a),
        Verb::Show(a) => read::show(&args.repo, a),
        Verb::Log(a) => read::log(&args.repo, a),
        Verb::RevParse(a) => read::rev_parse(&args.repo, a),
        Verb::Refs(a) => read::refs(&args.repo, a),
        Verb::Diff(a) => read::diff(&args.repo, a),
        Verb::Fsck(a) => read::fsck(&args.repo, a),
        Verb::Prune(a) => read::prune(&args.repo, a),
        Verb::Reset(a) => read::reset(&args.repo, a),
        Verb::Checksum(a) => read::checksum(a),
        Verb::Remote(a) => crate::cli::remote::remote(&args.repo, a),
        Verb::Pull(a) => crate::cli::remote::pull(&args.repo, a),
        Verb::PullLocal(a) => crate::cli::remote::pull_local(&args.repo, a),
        Verb::Summary(a) => crate::cli::remote::summary_verb(&args.repo, a),
        Verb::Sign(a) => crate::cli::remote::sign_verb(&args.repo, a),
        Verb::StaticDelta(a) => crate::cli::delta::run(&args.repo, a),
    }
}

fn split_key(group: Option<String>, key: &str) -> Result<(String, String)> {
    if let Some(g) = group {
        return Ok((g, key.to_string()));
    }
    match key.rsplit_once('.') {
        Some((g, k)) => Ok((g.to_string(), k.to_string())),
        None => bail!("Key '{key}' must be of the form SECTIONNAME.KEYNAME"),
    }
}

fn config(repo: &Option<PathBuf>, op: ConfigOp) -> Result<ExitCode> {
    let mut r = open(repo)?;
    match op {
        ConfigOp::Get { group, key } => {
            let (g, k) = split_key(group, &key)?;
            match r.config().get(&g, &k) {
                Some(v) => println!("{v}"),
                None => bail!(
                    "Key file does not have key \u{201c}{k}\u{201d} in group \u{201c}{g}\u{201d}"
                ),
            }
        }
        ConfigOp::Set { group, key, value } => {
            let (g, k) = split_key(group, &key)?;
            let mut cfg = r.config().clone();
            cfg.set(&g, &k, &value);
            r.write_config(cfg)?;
        }
        ConfigOp::Unset { group, key } => {
            let (g, k) = split_key(group, &key)?;
            let mut cfg = r.config().clone();
            cfg.remove_key(&g, &k);
            r.write_config(cfg)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
