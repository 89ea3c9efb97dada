//! `kiln repo remote|pull|pull-local|summary|sign`: ostree's verbs and flags
//! for remotes, pulling, summaries and ed25519 signatures.

use crate::cli::repo::open;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use kiln_remote::remote::{self, AddOptions, IfExists};
use kiln_remote::sign::{self, PublicKey, SecretKey};
use kiln_remote::summary::{self, Summary};
use kiln_remote::{NetOptions, PullLocalOptions, PullOptions, PullResult};
use kiln_store::gvariant::{text, VarDict};
use kiln_store::util::format_size;
use kiln_store::Progress;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct RemoteArgs {
    #[command(subcommand)]
    pub op: RemoteOp,
}

#[derive(Subcommand, Debug)]
pub enum RemoteOp {
    /// Add a remote repository.
    Add {
        name: String,
        url: String,
        /// Branches to pull by default.
        branches: Vec<String>,
        /// Set config option KEY=VALUE for remote.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Disable GPG verification.
        #[arg(long)]
        no_gpg_verify: bool,
        /// Disable signature verification.
        #[arg(long)]
        no_sign_verify: bool,
        /// Verify signatures using KEYTYPE=inline:PUBKEY or KEYTYPE=file:/path/to/key.
        #[arg(long, value_name = "KEYTYPE=[inline|file]:PUBKEY")]
        sign_verify: Vec<String>,
        /// Do nothing if the provided remote exists.
        #[arg(long)]
        if_not_exists: bool,
        /// Replace the provided remote if it exists.
        #[arg(long)]
        force: bool,
        #[arg(long)]
        collection_id: Option<String>,
        /// Import GPG key from FILE (not supported: kiln verifies ed25519).
        #[arg(long, value_name = "FILE")]
        gpg_import: Option<PathBuf>,
    },
    /// Delete a remote repository.
    Delete {
        name: String,
        /// Do nothing if the provided remote does not exist.
        #[arg(long)]
        if_exists: bool,
    },
    /// List remote repository names.
    List {
        /// Show remote URLs in list.
        #[arg(short = 'u', long = "show-urls")]
        show_urls: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show remote repository URL.
    ShowUrl { name: String },
    /// Show the summary of a remote.
    Summary {
        name: String,
        /// Show raw variant data.
        #[arg(long)]
        raw: bool,
        #[arg(long)]
        json: bool,
    },
    /// List remote refs.
    Refs {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
pub struct NetArgs {
    /// Parallel requests.
    #[arg(long, default_value_t = 16, value_name = "N")]
    pub jobs: usize,
    /// Retries of a request after a transport failure or a 5xx answer.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub network_retries: u32,
    /// Seconds without data before a request fails (connect and idle).
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub network_timeout: u64,
}

impl NetArgs {
    fn options(&self) -> NetOptions {
        let t = Duration::from_secs(self.network_timeout.max(1));
        NetOptions {
            connect_timeout: t.min(Duration::from_secs(15)),
            idle_timeout: t,
            retries: self.network_retries,
            workers: self.jobs.clamp(1, 64),
        }
    }
}

#[derive(Args, Debug)]
pub struct PullArgs {
    pub remote: String,
    /// REF or REF@COMMIT (default: the remote's branches=).
    pub refs: Vec<String>,
    /// Traverse DEPTH parents (-1=infinite) (default: 0).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub depth: i32,
    /// Write refs suitable for a mirror and fetch all refs if none provided.
    #[arg(long)]
    pub mirror: bool,
    /// Fetch only the commit metadata.
    #[arg(long)]
    pub commit_metadata_only: bool,
    /// Only pull the provided subpath(s).
    #[arg(long, value_name = "SUBPATH")]
    pub subpath: Vec<String>,
    /// Do not use static deltas.
    #[arg(long)]
    pub disable_static_deltas: bool,
    /// Require static deltas.
    #[arg(long)]
    pub require_static_deltas: bool,
    /// Only print information on what will be downloaded.
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse a commit older than the local one even for REF@COMMIT.
    #[arg(long, short = 'T')]
    pub timestamp_check: bool,
    /// Accept a commit older than the local one.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Pull objects from this URL instead of the remote's.
    #[arg(long)]
    pub url: Option<String>,
    /// Print a JSON summary of what was fetched.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Args, Debug)]
pub struct PullLocalArgs {
    /// Source repository.
    pub src: PathBuf,
    /// Refs (REF, REF@COMMIT or checksums); default all.
    pub refs: Vec<String>,
    /// Add REMOTE to refspec.
    #[arg(long)]
    pub remote: Option<String>,
    /// Traverse DEPTH parents (-1=infinite) (default: 0).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub depth: i32,
    #[arg(long)]
    pub commit_metadata_only: bool,
    /// Verify objects (always done; accepted for ostree compatibility).
    #[arg(long)]
    pub untrusted: bool,
    /// Do not verify signatures (there is nothing to skip: accepted).
    #[arg(long)]
    pub disable_verify_bindings: bool,
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub jobs: usize,
}

#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// Update the summary.
    #[arg(short = 'u', long)]
    pub update: bool,
    /// View the local summary file.
    #[arg(long)]
    pub view: bool,
    /// View the raw bytes of the summary file.
    #[arg(long)]
    pub raw: bool,
    /// Additional metadata field to add to the summary (KEY=GVARIANT).
    #[arg(short = 'm', long = "add-metadata", value_name = "KEY=VALUE")]
    pub add_metadata: Vec<String>,
    /// Key to sign the summary with (base64 secret key).
    #[arg(long = "sign", value_name = "KEY-ID")]
    pub sign: Vec<String>,
    /// Signature type to use (defaults to 'ed25519').
    #[arg(long = "sign-type", value_name = "NAME")]
    pub sign_type: Option<String>,
    /// GPG Key ID to sign the summary with (not supported).
    #[arg(long = "gpg-sign", value_name = "KEY-ID")]
    pub gpg_sign: Vec<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SignArgs {
    pub commit: String,
    /// Secret keys (base64) to sign with, or public keys with --verify.
    pub keys: Vec<String>,
    /// Verify signatures.
    #[arg(long)]
    pub verify: bool,
    /// Signature type to use (defaults to 'ed25519').
    #[arg(short = 's', long = "sign-type", value_name = "NAME")]
    pub sign_type: Option<String>,
    /// Read keys (one base64 key a line) from this file.
    #[arg(long = "keys-file", value_name = "PATH")]
    pub keys_file: Option<PathBuf>,
}

fn check_sign_type(t: &Option<String>) -> Result<()> {
    match t.as_deref() {
        None | Some("ed25519") => Ok(()),
        Some(t) => {
            bail!("Requested signature type is not implemented: {t} (kiln signs with ed25519)")
        }
    }
}

pub fn remote(repo: &Option<PathBuf>, a: RemoteArgs) -> Result<ExitCode> {
    let mut r = open(repo)?;
    match a.op {
        RemoteOp::Add {
            name,
            url,
            branches,
            set,
            no_gpg_verify,
            no_sign_verify,
            sign_verify,
            if_not_exists,
            force,
            collection_id,
            gpg_import,
        } => {
            if gpg_import.is_some() {
                bail!("--gpg-import: GPG is not supported by kiln; use --sign-verify=ed25519=inline:KEY");
            }
            if if_not_exists && force {
                bail!("Can't specify both --if-not-exists and --force");
            }
            let set = set
                .iter()
                .map(|s| {
                    s.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .with_context(|| format!("Invalid --set '{s}': expected KEY=VALUE"))
                })
                .collect::<Result<Vec<_>>>()?;
            let opts = AddOptions {
                branches,
                set,
                no_gpg_verify,
                no_sign_verify,
                sign_verify,
                collection_id,
                if_exists: if if_not_exists {
                    IfExists::Keep
                } else if force {
                    IfExists::Replace
                } else {
                    IfExists::Fail
                },
            };
            remote::add(&mut r, &name, &url, &opts)?;
        }
        RemoteOp::Delete { name, if_exists } => remote::delete(&mut r, &name, if_exists)?,
        RemoteOp::List { show_urls, json } => {
            let mut names = remote::list(&r);
            names.sort();
            let remotes: Vec<_> = names
                .iter()
                .filter_map(|n| remote::get(&r, n).ok())
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&remotes)?);
            } else if show_urls {
                let w = names.iter().map(|n| n.len()).max().unwrap_or(0);
                for rm in &remotes {
                    println!("{:<w$}  {}", rm.name, rm.url);
                }
            } else {
                for n in &names {
                    println!("{n}");
                }
            }
        }
        RemoteOp::ShowUrl { name } => println!("{}", remote::get(&r, &name)?.url),
        RemoteOp::Summary { name, raw, json } => {
            let (bytes, sig) =
                kiln_remote::pull::remote_summary(&r, &name, &NetOptions::default())?;
            let bytes = bytes.with_context(|| format!("remote {name}: no summary file"))?;
            let s = Summary::parse(&bytes)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&summary_json(&s))?);
            } else if raw {
                let v = kiln_store::gvariant::decode(
                    &kiln_store::gvariant::Type::parse("(a(s(taya{sv}))a{sv})")?,
                    &bytes,
                )?;
                println!("{}", text::print(&v, false));
            } else {
                print!("{}", summary::view(&s));
                if let Some(sig) = sig {
                    if let Ok(md) = kiln_store::object::decode_vardict(&sig) {
                        if let Ok(Some(sigs)) = sign::signatures_of(&md) {
                            println!("Found {} ed25519 signature(s) in summary.sig", sigs.len());
                        }
                    }
                }
            }
        }
        RemoteOp::Refs { name, json } => {
            let (bytes, _) = kiln_remote::pull::remote_summary(&r, &name, &NetOptions::default())?;
            let bytes = bytes.with_context(|| format!("remote {name}: no summary file"))?;
            let s = Summary::parse(&bytes)?;
            if json {
                let m: std::collections::BTreeMap<String, String> = s
                    .refs
                    .iter()
                    .map(|x| (format!("{name}:{}", x.name), x.checksum.to_string()))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&m)?);
            } else {
                for x in &s.refs {
                    println!("{name}:{}", x.name);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(serde::Serialize)]
struct SummaryJson<'a> {
    refs: &'a [summary::SummaryRef],
    static_deltas: Vec<summary::DeltaEntry>,
    mode: Option<&'a str>,
    last_modified: Option<u64>,
}

fn summary_json(s: &Summary) -> SummaryJson<'_> {
    SummaryJson {
        refs: &s.refs,
        static_deltas: s.static_deltas().unwrap_or_default(),
        mode: s.mode(),
        last_modified: s.last_modified(),
    }
}

/// A progress bar for pulls: objects, bytes, rate, ETA (stderr, TTY only).
struct PullBar {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl PullBar {
    fn start(progress: Arc<Progress>) -> PullBar {
        let stop = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return PullBar { stop, handle: None };
        }
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let pb = indicatif::ProgressBar::new(0);
            pb.set_style(
                indicatif::ProgressStyle::with_template(
                    "Receiving [{bar:30}] {pos}/{len} objects, {msg}, ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            let start = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let (d, t, bd, _) = progress.snapshot();
                pb.set_length(t);
                pb.set_position(d);
                let rate = bd as f64 / start.elapsed().as_secs_f64().max(0.001);
                pb.set_message(format!(
                    "{} ({}/s)",
                    format_size(bd),
                    format_size(rate as u64)
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
            pb.finish_and_clear();
        });
        PullBar {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for PullBar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn report(res: &PullResult, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(res)?);
        return Ok(());
    }
    for r in &res.refs {
        let what = match r.via {
            kiln_remote::Via::DryRun => "would update",
            kiln_remote::Via::Unchanged if r.previous == Some(r.commit) => "unchanged",
            _ => "updated",
        };
        let prev = r
            .previous
            .map(|p| p.to_string())
            .unwrap_or_else(|| "(none)".into());
        let delta = r
            .delta
            .as_ref()
            .map(|d| format!(" via static delta {d}"))
            .unwrap_or_default();
        println!("{}: {prev} -> {} ({what}{delta})", r.local_ref, r.commit);
    }
    if !res.dry_run {
        println!(
            "{} metadata, {} content objects fetched; {} transferred in {} seconds",
            res.metadata_objects,
            res.content_objects,
            format_size(res.bytes_transferred),
            res.elapsed_secs.round() as u64
        );
    }
    Ok(())
}

pub fn pull(repo: &Option<PathBuf>, a: PullArgs) -> Result<ExitCode> {
    let r = open(repo)?;
    if a.disable_static_deltas && a.require_static_deltas {
        bail!("Can't specify both --disable-static-deltas and --require-static-deltas");
    }
    let opts = PullOptions {
        depth: a.depth,
        mirror: a.mirror,
        commit_metadata_only: a.commit_metadata_only,
        subpaths: a.subpath.clone(),
        disable_static_deltas: a.disable_static_deltas,
        require_static_deltas: a.require_static_deltas,
        dry_run: a.dry_run,
        timestamp_check: a.timestamp_check,
        allow_downgrade: a.allow_downgrade,
        url_override: a.url.clone(),
        net: a.net.options(),
        localcache_repos: Vec::new(),
    };
    let progress = Arc::new(Progress::new());
    let res = {
        let _bar = PullBar::start(progress.clone());
        kiln_remote::pull(&r, &a.remote, &a.refs, &opts, &progress)?
    };
    report(&res, a.json)?;
    Ok(ExitCode::SUCCESS)
}

pub fn pull_local(repo: &Option<PathBuf>, a: PullLocalArgs) -> Result<ExitCode> {
    let r = open(repo)?;
    let opts = PullLocalOptions {
        remote: a.remote.clone(),
        depth: a.depth,
        commit_metadata_only: a.commit_metadata_only,
        workers: a.jobs,
    };
    let progress = Arc::new(Progress::new());
    let res = {
        let _bar = PullBar::start(progress.clone());
        kiln_remote::pull_local(&r, &a.src, &a.refs, &opts, &progress)?
    };
    report(&res, a.json)?;
    Ok(ExitCode::SUCCESS)
}

pub fn summary_verb(repo: &Option<PathBuf>, a: SummaryArgs) -> Result<ExitCode> {
    let mut r = open(repo)?;
    if !a.gpg_sign.is_empty() {
        bail!("--gpg-sign: GPG is not supported by kiln; sign with --sign=KEY (ed25519)");
    }
    if !a.sign.is_empty() {
        check_sign_type(&a.sign_type)?;
    }
    if a.update {
        let mut md = VarDict::new();
        for m in &a.add_metadata {
            let (k, v) = m
                .split_once('=')
                .with_context(|| format!("Missing '=' in KEY=VALUE metadata '{m}'"))?;
            let val = text::parse(v)
                .with_context(|| format!("Error parsing variant \u{2018}{v}\u{2019}"))?;
            md.push(k, val);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let now = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(now);
        summary::update(&mut r, &md, now)?;
        if !a.sign.is_empty() {
            let keys = a
                .sign
                .iter()
                .map(|k| SecretKey::from_base64(k))
                .collect::<kiln_remote::Result<Vec<_>>>()?;
            sign::sign_summary(&r, &keys)?;
        }
    } else if a.view || a.raw || a.json {
        let p = r.path().join("summary");
        let bytes = std::fs::read(&p).with_context(|| format!("{}", p.display()))?;
        let s = Summary::parse(&bytes)?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&summary_json(&s))?);
        } else if a.raw {
            let v = kiln_store::gvariant::decode(
                &kiln_store::gvariant::Type::parse("(a(s(taya{sv}))a{sv})")?,
                &bytes,
            )?;
            println!("{}", text::print(&v, false));
        } else {
            print!("{}", summary::view(&s));
        }
    } else {
        bail!("No option specified; use -u to update summary");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn sign_verb(repo: &Option<PathBuf>, a: SignArgs) -> Result<ExitCode> {
    let r = open(repo)?;
    check_sign_type(&a.sign_type)?;
    let commit = r.resolve_rev(&a.commit)?;
    let mut keys = a.keys.clone();
    if let Some(f) = &a.keys_file {
        let text = std::fs::read_to_string(f).with_context(|| format!("{}", f.display()))?;
        keys.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
    }
    if a.verify {
        let pks = keys
            .iter()
            .map(|k| PublicKey::from_base64(k))
            .collect::<kiln_remote::Result<Vec<_>>>()?;
        match sign::verify_commit(&r, &commit, &pks) {
            Ok(msg) => println!("{msg}"),
            Err(f) => bail!("{f}"),
        }
    } else {
        if keys.is_empty() {
            bail!("Need at least one KEY-ID to sign with");
        }
        for k in &keys {
            sign::sign_commit(&r, &commit, &SecretKey::from_base64(k)?)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
