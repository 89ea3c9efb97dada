//! `kiln repo commit`.

use super::open;
use crate::cli::progress::Bar;
use anyhow::{bail, Context, Result};
use clap::Args;
use kiln_store::commit::{CommitOptions, Modifier, ParentSpec, TreeSource};
use kiln_store::gvariant::{text, Value, VarDict};
use kiln_store::Progress;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Directory to commit.
    pub path: Option<PathBuf>,
    /// Branch to commit to.
    #[arg(short = 'b', long)]
    pub branch: Option<String>,
    /// One-line subject.
    #[arg(short = 's', long)]
    pub subject: Option<String>,
    /// Full description.
    #[arg(short = 'm', long)]
    pub body: Option<String>,
    /// Read the body from a file.
    #[arg(long = "body-file")]
    pub body_file: Option<PathBuf>,
    /// Commit time (like `date -d`: '2021-01-01 00:00:00 +0000', @EPOCH, ...).
    #[arg(long)]
    pub timestamp: Option<String>,
    /// Parent commit (or "none").
    #[arg(long)]
    pub parent: Option<String>,
    /// Commit without writing a ref.
    #[arg(long)]
    pub orphan: bool,
    /// Layer: dir=PATH, ref=REV or tar=FILE (repeatable, applied in order).
    #[arg(long = "tree", value_name = "dir=PATH|ref=REV|tar=FILE")]
    pub tree: Vec<String>,
    /// Add KEY=VALUE string metadata.
    #[arg(long = "add-metadata-string", value_name = "KEY=VALUE")]
    pub metadata_strings: Vec<String>,
    /// Add KEY=VALUE metadata, VALUE in GVariant text format.
    #[arg(long = "add-metadata", value_name = "KEY=VALUE")]
    pub metadata_variants: Vec<String>,
    /// Add KEY=VALUE string detached metadata.
    #[arg(long = "add-detached-metadata-string", value_name = "KEY=VALUE")]
    pub detached_strings: Vec<String>,
    /// Also bind the commit to this ref.
    #[arg(long = "bind-ref")]
    pub bind_refs: Vec<String>,
    /// Write no ref bindings.
    #[arg(long = "no-bindings")]
    pub no_bindings: bool,
    #[arg(long = "owner-uid")]
    pub owner_uid: Option<i64>,
    #[arg(long = "owner-gid")]
    pub owner_gid: Option<i64>,
    /// uid/gid 0, no setuid/sticky bits, no xattrs.
    #[arg(long = "canonical-permissions")]
    pub canonical_permissions: bool,
    #[arg(long = "no-xattrs")]
    pub no_xattrs: bool,
    /// Print the parent and exit 0 if the tree is unchanged.
    #[arg(long = "skip-if-unchanged")]
    pub skip_if_unchanged: bool,
    /// Delete the source directory after committing.
    #[arg(long)]
    pub consume: bool,
    /// Reuse checksums of files hardlinked to repo objects.
    #[arg(long = "link-checkout-speedup")]
    pub link_checkout_speedup: bool,
    /// File of `+MODE PATH` / `=MODE PATH` lines.
    #[arg(long)]
    pub statoverride: Option<PathBuf>,
    /// File of paths to leave out.
    #[arg(long = "skip-list")]
    pub skip_list: Option<PathBuf>,
    /// Accepted for compatibility; kiln always syncs once per commit.
    #[arg(long, value_name = "BOOL")]
    pub fsync: Option<String>,
    /// Print a JSON summary instead of the checksum.
    #[arg(long)]
    pub json: bool,
}

fn parse_kv(s: &str) -> Result<(&str, &str)> {
    s.split_once('=')
        .with_context(|| format!("Missing '=' in KEY=VALUE metadata '{s}'"))
}

pub fn run(repo: &Option<PathBuf>, a: CommitArgs) -> Result<ExitCode> {
    let repo = open(repo)?;
    let mut metadata = VarDict::new();
    for s in &a.metadata_strings {
        let (k, v) = parse_kv(s)?;
        metadata.push(k, Value::str(v));
    }
    for s in &a.metadata_variants {
        let (k, v) = parse_kv(s)?;
        let val = text::parse(v).with_context(|| format!("Parsing {s}"))?;
        metadata.push(k, val);
    }
    let detached_metadata = if a.detached_strings.is_empty() {
        None
    } else {
        let mut d = VarDict::new();
        for s in &a.detached_strings {
            let (k, v) = parse_kv(s)?;
            d.push(k, Value::str(v));
        }
        Some(d)
    };
    let mut modifier = Modifier {
        owner_uid: a.owner_uid.filter(|u| *u >= 0).map(|u| u as u32),
        owner_gid: a.owner_gid.filter(|g| *g >= 0).map(|g| g as u32),
        canonical_permissions: a.canonical_permissions,
        no_xattrs: a.no_xattrs,
        ..Default::default()
    };
    if let Some(p) = &a.statoverride {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        modifier.add_statoverride(&text, p)?;
    }
    if let Some(p) = &a.skip_list {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        modifier.add_skip_list(&text);
    }
    let mut sources = Vec::new();
    for t in &a.tree {
        let (kind, val) = t
            .split_once('=')
            .with_context(|| format!("Missing type in tree specification '{t}'"))?;
        sources.push(match kind {
            "dir" => TreeSource::Dir(PathBuf::from(val)),
            "ref" => TreeSource::Ref(val.to_string()),
            "tar" => TreeSource::Tar(PathBuf::from(val)),
            other => bail!("Invalid tree type specification '{other}'"),
        });
    }
    if let Some(p) = &a.path {
        if !a.tree.is_empty() {
            bail!("Cannot supply both --tree and a directory argument");
        }
        sources.push(TreeSource::Dir(p.clone()));
    }
    if sources.is_empty() {
        sources.push(TreeSource::Dir(PathBuf::from(".")));
    }
    let timestamp = match &a.timestamp {
        Some(t) => {
            Some(kiln_store::datetime::parse(t).with_context(|| format!("Could not parse '{t}'"))?)
        }
        None => None,
    };
    let body = match (&a.body, &a.body_file) {
        (Some(b), _) => b.clone(),
        (None, Some(f)) => {
            std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?
        }
        (None, None) => String::new(),
    };
    let parent = match a.parent.as_deref() {
        Some("none") => ParentSpec::None,
        Some(p) => ParentSpec::Rev(p.to_string()),
        None => ParentSpec::BranchHead,
    };
    let opts = CommitOptions {
        branch: a.branch.clone(),
        orphan: a.orphan,
        subject: a.subject.clone().unwrap_or_default(),
        body,
        timestamp,
        parent,
        metadata,
        bind_refs: a.bind_refs.clone(),
        no_bindings: a.no_bindings,
        detached_metadata,
        modifier,
        skip_if_unchanged: a.skip_if_unchanged,
        consume: a.consume,
        link_checkout_speedup: a.link_checkout_speedup,
        sources,
    };
    let progress = Arc::new(Progress::new());
    let bar = Bar::start("commit", progress.clone());
    let res = repo.commit(&opts, &progress);
    drop(bar);
    let res = res?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&res)?);
    } else {
        println!("{}", res.commit);
    }
    Ok(ExitCode::SUCCESS)
}
