//! Read and maintenance verbs of `kiln repo`.

use super::open;
use crate::cli::progress::Bar;
use anyhow::{bail, Context, Result};
use clap::Args;
use kiln_store::checkout::{CheckoutMode, CheckoutOptions, Overwrite};
use kiln_store::datetime;
use kiln_store::fsck::FsckOptions;
use kiln_store::gvariant::{self, text};
use kiln_store::object::{self, Commit, FileMeta};
use kiln_store::prune::PruneOptions;
use kiln_store::walk::{EntryKind, Resolved, TreeEntry};
use kiln_store::{Checksum, Progress, Repo};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct CheckoutArgs {
    pub commit: String,
    pub destination: Option<PathBuf>,
    /// Owned by the caller, no setuid bits, no xattrs.
    #[arg(short = 'U', long = "user-mode")]
    pub user_mode: bool,
    /// Fail if a file cannot be hardlinked.
    #[arg(short = 'H', long = "require-hardlinks")]
    pub require_hardlinks: bool,
    /// Never hardlink.
    #[arg(short = 'C', long = "force-copy")]
    pub force_copy: bool,
    /// Check out only this path of the commit.
    #[arg(long)]
    pub subpath: Option<String>,
    /// Replace existing files.
    #[arg(long)]
    pub union: bool,
    /// Keep existing files.
    #[arg(long = "union-add")]
    pub union_add: bool,
    /// Allow existing files only if identical.
    #[arg(long = "union-identical")]
    pub union_identical: bool,
    /// Process `.wh.` whiteout files.
    #[arg(long)]
    pub whiteouts: bool,
    /// `--fsync=true` syncs the file system at the end (default: no sync, like ostree).
    #[arg(long, value_name = "POLICY")]
    pub fsync: Option<String>,
    #[arg(long)]
    pub json: bool,
}

pub fn checkout(repo: &Option<PathBuf>, a: CheckoutArgs) -> Result<ExitCode> {
    let r = open(repo)?;
    let csum = r.resolve_rev(&a.commit)?;
    let dest = a
        .destination
        .clone()
        .unwrap_or_else(|| PathBuf::from(&a.commit));
    let overwrite = if a.union {
        Overwrite::UnionFiles
    } else if a.union_add {
        Overwrite::AddFiles
    } else if a.union_identical {
        Overwrite::UnionIdentical
    } else {
        Overwrite::None
    };
    let opts = CheckoutOptions {
        mode: if a.user_mode {
            CheckoutMode::User
        } else {
            CheckoutMode::None
        },
        overwrite,
        require_hardlinks: a.require_hardlinks,
        force_copy: a.force_copy,
        subpath: a.subpath.clone(),
        whiteouts: a.whiteouts,
        // Like ostree's CLI, a checkout is not synced unless asked
        // (`--fsync=true`); deployments sync once themselves.
        no_fsync: !matches!(a.fsync.as_deref(), Some("true") | Some("1") | Some("yes")),
    };
    let progress = Arc::new(Progress::new());
    let bar = Bar::start("checkout", progress.clone());
    let stats = r.checkout(&csum, &dest, &opts, &progress);
    drop(bar);
    let stats = stats?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&stats)?);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct LsArgs {
    pub commit: String,
    pub paths: Vec<String>,
    /// Only the directory itself.
    #[arg(short = 'd', long = "dironly")]
    pub dironly: bool,
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Show checksums.
    #[arg(short = 'C', long)]
    pub checksum: bool,
    /// Show extended attributes.
    #[arg(short = 'X', long)]
    pub xattrs: bool,
    /// Print paths NUL-separated only.
    #[arg(long = "nul-filenames-only")]
    pub nul_filenames_only: bool,
    #[arg(long)]
    pub json: bool,
}

fn ls_line(e: &TreeEntry, checksum: bool, xattrs: bool) -> String {
    let c = match e.kind {
        EntryKind::Dir => 'd',
        EntryKind::File => '-',
        EntryKind::Symlink => 'l',
    };
    let mut s = format!(
        "{c}0{:04o} {} {} {:6} ",
        e.mode & 0o7777,
        e.uid,
        e.gid,
        e.size
    );
    if checksum {
        if let Some(t) = &e.tree {
            s.push_str(&format!("{t} "));
        }
        s.push_str(&format!("{} ", e.checksum));
    }
    if xattrs {
        let v = gvariant::decode(
            &gvariant::Type::parse("a(ayay)").expect("static"),
            &object::encode_xattrs(&e.xattrs),
        )
        .unwrap_or(gvariant::Value::Bytes(vec![]));
        s.push_str(&format!("{{ {} }} ", text::print(&v, true)));
    }
    s.push_str(&e.path);
    if let Some(t) = &e.symlink_target {
        s.push_str(&format!(" -> {t}"));
    }
    s
}

pub fn ls(repo: &Option<PathBuf>, a: LsArgs) -> Result<ExitCode> {
    let r = open(repo)?;
    let csum = r.resolve_rev(&a.commit)?;
    let paths = if a.paths.is_empty() {
        vec!["/".to_string()]
    } else {
        a.paths.clone()
    };
    let mut all = Vec::new();
    for p in &paths {
        let norm = if p.starts_with('/') {
            p.clone()
        } else {
            format!("/{p}")
        };
        let mut out = Vec::new();
        match r.resolve_path(&csum, &norm)? {
            Resolved::Dir { tree, meta } => {
                r.list_tree(&norm, &tree, &meta, a.recursive, a.dironly, &mut out)?
            }
            Resolved::File(f) => out.push(r.file_entry(&norm, &f)?),
        }
        all.extend(out);
    }
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    if a.json {
        serde_json::to_writer_pretty(&mut w, &all)?;
        writeln!(w)?;
    } else if a.nul_filenames_only {
        for e in &all {
            write!(w, "{}\0", e.path)?;
        }
    } else {
        for e in &all {
            writeln!(w, "{}", ls_line(e, a.checksum, a.xattrs))?;
        }
    }
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct CatArgs {
    pub commit: String,
    pub paths: Vec<String>,
}

pub fn cat(repo: &Option<PathBuf>, a: CatArgs) -> Result<ExitCode> {
    let r = open(repo)?;
    let csum = r.resolve_rev(&a.commit)?;
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    for p in &a.paths {
        let norm = if p.starts_with('/') {
            p.clone()
        } else {
            format!("/{p}")
        };
        match r.resolve_path(&csum, &norm) {
            Ok(Resolved::File(f)) => {
                let obj = r.load_content(&f)?;
                obj.copy_verified(&mut w)?;
            }
            Ok(Resolved::Dir { .. }) => bail!("Is a directory: {p}"),
            Err(e) => return Err(e.into()),
        }
    }
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    pub object: String,
    /// Print the value of one metadata key.
    #[arg(long = "print-metadata-key", value_name = "KEY")]
    pub print_metadata_key: Option<String>,
    /// Print the value of one detached metadata key.
    #[arg(long = "print-detached-metadata-key", value_name = "KEY")]
    pub print_detached_metadata_key: Option<String>,
    /// Show the raw variant.
    #[arg(long)]
    pub raw: bool,
    #[arg(long)]
    pub json: bool,
}

/// A commit as `--json` shows it.
#[derive(serde::Serialize)]
struct CommitJson<'a> {
    commit: String,
    parent: Option<String>,
    content_checksum: String,
    subject: &'a str,
    body: &'a str,
    timestamp: u64,
    date: String,
    version: Option<&'a str>,
    root_tree: String,
    root_meta: String,
    metadata: serde_json::Map<String, serde_json::Value>,
}

fn commit_json<'a>(csum: &Checksum, c: &'a Commit) -> CommitJson<'a> {
    CommitJson {
        commit: csum.to_hex(),
        parent: c.parent.map(|p| p.to_hex()),
        content_checksum: Repo::content_checksum_of(c).to_hex(),
        subject: &c.subject,
        body: &c.body,
        timestamp: c.timestamp,
        date: datetime::format_iso(c.timestamp),
        version: c.version(),
        root_tree: c.root_tree.to_hex(),
        root_meta: c.root_meta.to_hex(),
        metadata: c
            .metadata
            .0
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(text::print(v, true))))
            .collect(),
    }
}

fn dump_commit(w: &mut dyn Write, csum: &Checksum, c: &Commit) -> std::io::Result<()> {
    writeln!(w, "commit {csum}")?;
    if let Some(p) = &c.parent {
        writeln!(w, "Parent:  {p}")?;
    }
    writeln!(w, "ContentChecksum:  {}", Repo::content_checksum_of(c))?;
    writeln!(w, "Date:  {}", datetime::format_utc(c.timestamp))?;
    if let Some(v) = c.version() {
        writeln!(w, "Version: {v}")?;
    }
    if c.subject.is_empty() {
        writeln!(w, "(no subject)")?;
    } else {
        writeln!(w)?;
        for l in c.subject.split('\n') {
            writeln!(w, "    {l}")?;
        }
    }
    if !c.body.is_empty() {
        writeln!(w)?;
        for l in c.body.split('\n') {
            writeln!(w, "    {l}")?;
        }
    }
    writeln!(w)
}

pub fn show(repo: &Option<PathBuf>, a: ShowArgs) -> Result<ExitCode> {
    let r = open(repo)?;
    let csum = r.resolve_rev(&a.object)?;
    let c = r.read_commit(&csum)?;
    if let Some(k) = &a.print_metadata_key {
        let v = c
            .metadata
            .get(k)
            .with_context(|| format!("No such metadata key '{k}'"))?;
        println!("{}", text::print(&v.byteswap(), true));
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(k) = &a.print_detached_metadata_key {
        let md = r.read_commit_detached_metadata(&csum)?.unwrap_or_default();
        let v = md
            .get(k)
            .with_context(|| format!("No such detached metadata key '{k}'"))?;
        println!("{}", text::print(&v.byteswap(), true));
        return Ok(ExitCode::SUCCESS);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&commit_json(&csum, &c))?);
        return Ok(ExitCode::SUCCESS);
    }
    if a.raw {
        let bytes = r.read_meta(&csum, kiln_store::ObjectType::Commit)?;
        let v = gvariant::decode(
            &gvariant::Type::parse("(a{sv}aya(say)sstayay)").expect("static"),
            &bytes,
        )?;
        println!("{}", text::print(&v.byteswap(), true));
        return Ok(ExitCode::SUCCESS);
    }
    let stdout = std::io::stdout();
    dump_commit(&mut stdout.lock(), &csum, &c)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct LogArgs {
    pub rev: String,
    /// Show the raw variant of each commit.
    #[arg(long)]
    pub raw: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn log(repo: &Option<PathBuf>, a: LogArgs) -> Result<ExitCode> {
    let r = open(repo)?;
    let mut cur = Some(r.resolve_rev(&a.rev)?);
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let mut json = Vec::new();
    let mut commits = Vec::new();
    while let Some(c) = cur {
        match r.read_commit(&c) {
            Ok(commit) => {
                cur = commit.parent;
                commits.push((c, commit));
            }
            Err(e) if e.is_not_found() && !commits.is_empty() => {
                if !a.json {
                    commits.push((c, Commit::placeholder()));
                }
                break;
            }
            Err(e) => return Err(e.into()),
        }
    }
    for (c, commit) in &commits {
        if commit.is_placeholder() {
            writeln!(w, "<< History beyond this commit not fetched >>")?;
            continue;
        }
        if a.json {
            json.push(commit_json(c, commit));
        } else {
            dump_commit(&mut w, c, commit)?;
        }
    }
    if a.json {
        serde_json::to_writer_pretty(&mut w, &json)?;
        writeln!(w)?;
    }
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}

trait Placeholder {
    fn placeholder() -> Self;
    fn is_placeholder(&self) -> bool;
}

impl Placeholder for Commit {
    fn placeholder() -> Self {
        Commit {
            metadata: Default::default(),
            parent: None,
            related: vec![],
            subject: "\0".into(),
            body: String::new(),
            timestamp: 0,
            root_tree: Checksum([0; 32]),
            root_meta: Checksum([0; 32]),
        }
    }
    fn is_placeholder(&self) -> bool {
        self.subject == "\0"
    }
}

#[derive(Args, Debug)]
pub struct RevParseArgs {
    pub revs: Vec<String>,
    /// Accepted for compatibility.
    #[arg(long)]
    pub single: bool,
}

pub fn rev_parse(repo: &Option<PathBuf>, a: RevParseArgs) -> Result<ExitCode> {
    let r = open(repo)?;
    if a.revs.is_empty() {
        bail!("A REV argument is required");
    }
    for rev in &a.revs {
        println!("{}", r.resolve_rev(rev)?);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct RefsArgs {
    pub prefix: Vec<String>,
    /// Delete refs matching PREFIX.
    #[arg(long)]
    pub delete: bool,
    /// Keep the prefix in the output.
    #[arg(long)]
    pub list: bool,
    /// With --create, make an alias; alone, list aliases.
    #[arg(short = 'A', long)]
    pub alias: bool,
    /// Create NEWREF pointing where PREFIX points.
    #[arg(long, value_name = "NEWREF")]
    pub create: Option<String>,
    /// Overwrite an existing ref with --create.
    #[arg(long)]
    pub force: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn refs(repo: &Option<PathBuf>, a: RefsArgs) -> Result<ExitCode> {
    let r = open(repo)?;
    if let Some(newref) = &a.create {
        let [target] = a.prefix.as_slice() else {
            bail!("--create requires one existing ref or commit")
        };
        if !a.force && r.resolve_ref(newref).ok().flatten().is_some() {
            bail!("--create specified but ref {newref} already exists");
        }
        if a.alias {
            if r.resolve_ref(target)?.is_none() {
                bail!("Cannot create alias to non-existent ref: {target}");
            }
            r.set_ref_alias(newref, target)?;
        } else {
            let c = r.resolve_rev(target)?;
            r.set_ref(newref, Some(&c))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut all = r.list_refs()?;
    let remote_prefix = a
        .prefix
        .iter()
        .find_map(|p| p.split_once(':').map(|(rm, _)| rm.to_string()));
    if let Some(rm) = &remote_prefix {
        all = r.list_remote_refs(Some(rm))?;
    }
    let aliases = r.list_ref_aliases()?;
    let mut selected: Vec<(String, String, Checksum)> = Vec::new();
    for (name, c) in &all {
        if a.prefix.is_empty() {
            selected.push((name.clone(), name.clone(), *c));
            continue;
        }
        for p in &a.prefix {
            if let Some(rest) = name.strip_prefix(p.as_str()) {
                let shown = if a.list || rest.is_empty() {
                    name.clone()
                } else {
                    rest.trim_start_matches('/').to_string()
                };
                selected.push((name.clone(), shown, *c));
            }
        }
    }
    if a.delete {
        if a.prefix.is_empty() {
            bail!("At least one PREFIX is required when deleting refs");
        }
        for (name, _, _) in &selected {
            r.set_ref(name, None)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    if a.json {
        let m: serde_json::Map<String, serde_json::Value> = selected
            .iter()
            .map(|(n, _, c)| (n.clone(), serde_json::Value::String(c.to_hex())))
            .collect();
        println!("{}", serde_json::to_string_pretty(&m)?);
        return Ok(ExitCode::SUCCESS);
    }
    for (name, shown, _) in &selected {
        if a.alias {
            if let Some(t) = aliases.get(name) {
                println!("{shown} -> {t}");
            }
        } else {
            println!("{shown}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    pub revs: Vec<String>,
    /// Print object statistics.
    #[arg(long)]
    pub stats: bool,
    /// Accepted for compatibility.
    #[arg(long = "no-xattrs")]
    pub no_xattrs: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn diff(repo: &Option<PathBuf>, a: DiffArgs) -> Result<ExitCode> {
    let r = open(repo)?;
    let (ra, rb) = match a.revs.as_slice() {
        [one] => (format!("{one}^"), one.clone()),
        [x, y] => (x.clone(), y.clone()),
        _ => bail!("REV must be specified"),
    };
    let ca = r.resolve_rev(&ra)?;
    let cb = r.resolve_rev(&rb)?;
    if a.stats {
        let mut sa = std::collections::BTreeSet::new();
        let mut sb = std::collections::BTreeSet::new();
        r.reachable_from_commit(&ca, &mut sa)?;
        r.reachable_from_commit(&cb, &mut sb)?;
        let common: Vec<_> = sa.intersection(&sb).collect();
        let size: u64 = common.iter().map(|(c, t)| r.object_disk_size(c, *t)).sum();
        println!("[A] Object Count: {}", sa.len());
        println!("[B] Object Count: {}", sb.len());
        println!("Common Object Count: {}", common.len());
        println!(
            "Common Object Size: {}",
            kiln_store::util::format_size(size)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let d = r.diff_commits(&ca, &cb)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&d)?);
        return Ok(ExitCode::SUCCESS);
    }
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    for p in &d.modified {
        writeln!(w, "M    {p}")?;
    }
    for p in &d.removed {
        writeln!(w, "D    {p}")?;
    }
    for p in &d.added {
        writeln!(w, "A    {p}")?;
    }
    w.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct FsckArgs {
    /// Delete corrupt objects and mark their commits partial.
    #[arg(long)]
    pub delete: bool,
    /// Check every commit, not only those refs reach.
    #[arg(long)]
    pub all: bool,
    /// Don't print progress messages.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Accepted for compatibility.
    #[arg(long = "add-tombstones")]
    pub add_tombstones: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn fsck(repo: &Option<PathBuf>, a: FsckArgs) -> Result<ExitCode> {
    let r = open(repo)?;
    if !a.quiet && !a.json {
        println!("Validating refs...");
        println!("Enumerating commits...");
    }
    let progress = Arc::new(Progress::new());
    let bar = Bar::start("fsck", progress.clone());
    let report = r.fsck(
        &FsckOptions {
            all: a.all,
            delete: a.delete,
        },
        &progress,
    );
    drop(bar);
    let report = report?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(if report.problems.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    if !a.quiet {
        println!(
            "Verifying content integrity of {} commit objects...",
            report.commits
        );
    }
    if report.partial_commits > 0 && !a.quiet {
        println!("{} partial commits not verified", report.partial_commits);
    }
    if report.problems.is_empty() {
        println!(
            "object fsck of {} commits completed successfully - no errors found.",
            report.commits
        );
        return Ok(ExitCode::SUCCESS);
    }
    for p in &report.problems {
        let commits: Vec<String> = p.commits.iter().map(|c| c.to_hex()).collect();
        let what = match p.ty {
            kiln_store::ObjectType::File => format!("fsck content object {}", p.object),
            t => format!("fsck {}.{}", p.object, t.ext()),
        };
        if p.missing {
            eprintln!(
                "error: In commits {}: Object missing: {}.{}",
                commits.join(", "),
                p.object,
                p.ty.ext()
            );
        } else {
            eprintln!(
                "error: In commits {}: {what}: {}",
                commits.join(", "),
                p.message
            );
        }
        if a.delete && !p.missing {
            eprintln!("Deleted corrupted object {}.{}", p.object, p.ty.ext());
        }
    }
    eprintln!(
        "error: Repository corruption encountered: {} bad objects",
        report.problems.len()
    );
    Ok(ExitCode::from(1))
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Only display unreachable objects.
    #[arg(long = "no-prune")]
    pub no_prune: bool,
    /// Only compute reachability via refs.
    #[arg(long = "refs-only")]
    pub refs_only: bool,
    /// Parents to keep per commit (-1 = all).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub depth: i64,
    /// Prune commits older than DATE.
    #[arg(long = "keep-younger-than", value_name = "DATE")]
    pub keep_younger_than: Option<String>,
    /// Only traverse and delete commit objects.
    #[arg(long = "commit-only")]
    pub commit_only: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn prune(repo: &Option<PathBuf>, a: PruneArgs) -> Result<ExitCode> {
    let r = open(repo)?;
    let keep = match &a.keep_younger_than {
        Some(d) => Some(datetime::parse(d).with_context(|| format!("Could not parse '{d}'"))?),
        None => None,
    };
    let rep = r.prune(&PruneOptions {
        refs_only: a.refs_only,
        depth: a.depth,
        keep_younger_than: keep,
        commit_only: a.commit_only,
        no_prune: a.no_prune,
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rep)?);
        return Ok(ExitCode::SUCCESS);
    }
    if a.commit_only {
        println!("Total (commit only) objects: {}", rep.objects_total);
    } else {
        println!("Total objects: {}", rep.objects_total);
    }
    if rep.objects_pruned == 0 {
        println!("No unreachable objects");
    } else if a.no_prune {
        println!(
            "Would delete: {} objects, freeing {}",
            rep.objects_pruned,
            kiln_store::util::format_size(rep.bytes_freed)
        );
    } else {
        println!(
            "Deleted {} objects, {} freed",
            rep.objects_pruned,
            kiln_store::util::format_size(rep.bytes_freed)
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct ResetArgs {
    pub r#ref: String,
    pub commit: String,
}

pub fn reset(repo: &Option<PathBuf>, a: ResetArgs) -> Result<ExitCode> {
    let r = open(repo)?;
    let head = r
        .resolve_ref(&a.r#ref)?
        .with_context(|| format!("Refspec '{}' not found", a.r#ref))?;
    let target = r.resolve_rev(&a.commit)?;
    let mut cur = Some(head);
    let mut found = false;
    while let Some(c) = cur {
        if c == target {
            found = true;
            break;
        }
        cur = r.read_commit(&c).ok().and_then(|x| x.parent);
    }
    if !found {
        bail!("Commit {} is not in the history of ref {}", target, a.r#ref);
    }
    r.set_ref(&a.r#ref, Some(&target))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct ChecksumArgs {
    pub paths: Vec<PathBuf>,
    #[arg(long = "ignore-xattrs")]
    pub ignore_xattrs: bool,
}

pub fn checksum(a: ChecksumArgs) -> Result<ExitCode> {
    use std::os::unix::fs::MetadataExt;
    for p in &a.paths {
        let st = std::fs::symlink_metadata(p).with_context(|| p.display().to_string())?;
        let mut xattrs = if a.ignore_xattrs {
            vec![]
        } else {
            kiln_store::repo::read_xattrs_pub(p).with_context(|| p.display().to_string())?
        };
        object::canonicalize_xattrs(&mut xattrs);
        let (target, data) = if st.file_type().is_symlink() {
            (
                std::fs::read_link(p)?.to_string_lossy().to_string(),
                Vec::new(),
            )
        } else if st.is_file() {
            (
                String::new(),
                std::fs::read(p).with_context(|| p.display().to_string())?,
            )
        } else {
            bail!("Not a regular file or symlink: {}", p.display());
        };
        let meta = FileMeta {
            uid: st.uid(),
            gid: st.gid(),
            mode: st.mode(),
            rdev: 0,
            symlink_target: target,
            xattrs,
        };
        println!("{}", kiln_store::repo::content_checksum(&meta, &data));
    }
    Ok(ExitCode::SUCCESS)
}
