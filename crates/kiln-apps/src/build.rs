//! Making apps, as `flatpak build-init`, `build-finish`, `build-export`
//! and `build-update-repo` do:
//!
//! - a build directory: `files/` (becomes `/app`), `var/`, `metadata`;
//! - `build-finish` sets `command=` and permissions in `metadata` and
//!   copies the desktop files and icons named after the app to `export/`;
//! - `build-export` commits `metadata`, `files/` and `export/` as
//!   `app/ID/ARCH/BRANCH` (canonical permissions, no xattrs) with Flatpak's
//!   commit metadata — `xa.metadata` byte-identical to the `metadata` file,
//!   `xa.installed-size`, `xa.download-size`, `xa.ref`, the ref binding —
//!   and refreshes the summary with Flatpak's `xa.cache`.

use crate::appref::{default_arch, validate_branch, validate_id, AppRef, Kind};
use crate::context::{Context, ContextArgs};
use crate::error::{Error, Result};
use crate::installation::read_names;
use crate::metadata::Metadata;
use kiln_store::commit::{CommitOptions, Modifier, ParentSpec, TreeSource};
use kiln_store::gvariant::{Type, Value, VarDict};
use kiln_store::keyfile::KeyFile;
use kiln_store::{ObjectType, Progress, Repo, RepoMode};
use std::path::Path;

fn io(p: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::io(p, e)
}

/// `build-init DIR APPNAME SDK RUNTIME [BRANCH]`.
pub fn build_init(
    dir: &Path,
    app_id: &str,
    sdk: &str,
    runtime: &str,
    branch: &str,
    arch: Option<&str>,
    kind: Kind,
) -> Result<()> {
    validate_id(app_id).map_err(|w| Error::InvalidRef {
        name: app_id.into(),
        why: w,
    })?;
    validate_branch(branch).map_err(|w| Error::InvalidRef {
        name: branch.into(),
        why: w,
    })?;
    let arch = arch.unwrap_or(default_arch());
    let rt = AppRef::new(Kind::Runtime, runtime, arch, branch)?;
    let sdk = AppRef::new(Kind::Runtime, sdk, arch, branch)?;
    let md = dir.join("metadata");
    if md.exists() {
        return Err(Error::Invalid(format!(
            "Build directory {} already initialized",
            dir.display()
        )));
    }
    for d in ["files", "var/tmp", "var/lib"] {
        let p = dir.join(d);
        std::fs::create_dir_all(&p).map_err(io(&p))?;
    }
    let run = dir.join("var/run");
    if std::fs::symlink_metadata(&run).is_err() {
        std::os::unix::fs::symlink("/run", &run).map_err(io(&run))?;
    }
    let group = if kind == Kind::App {
        "Application"
    } else {
        "Runtime"
    };
    let text = format!(
        "[{group}]\nname={app_id}\nruntime={}\nsdk={}\n",
        rt.triplet(),
        sdk.triplet()
    );
    std::fs::write(&md, text).map_err(io(&md))
}

/// Export directories `build-finish` fills from `files/share`.
const EXPORTED: &[&str] = &[
    "share/applications",
    "share/icons",
    "share/dbus-1/services",
    "share/mime/packages",
    "share/metainfo",
];

fn copy_exports(src_root: &Path, dest_root: &Path, rel: &Path, id: &str) -> Result<u32> {
    let mut n = 0;
    let src = src_root.join(rel);
    for name in read_names(&src) {
        let s = src.join(&name);
        let r = rel.join(&name);
        let Ok(m) = std::fs::symlink_metadata(&s) else {
            continue;
        };
        if m.is_dir() {
            n += copy_exports(src_root, dest_root, &r, id)?;
        } else if m.is_file() && name.starts_with(id) {
            let d = dest_root.join(&r);
            if let Some(p) = d.parent() {
                std::fs::create_dir_all(p).map_err(io(p))?;
            }
            std::fs::copy(&s, &d).map_err(io(&d))?;
            n += 1;
        }
    }
    Ok(n)
}

/// What `build-finish` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FinishResult {
    pub command: Option<String>,
    pub exported_files: u32,
}

/// `build-finish DIR [--command=] [permissions…]`.
pub fn build_finish(
    dir: &Path,
    command: Option<&str>,
    cargs: &ContextArgs,
) -> Result<FinishResult> {
    let mp = dir.join("metadata");
    let text = std::fs::read_to_string(&mp).map_err(io(&mp))?;
    let md = Metadata::parse(&text)?;
    let export = dir.join("export");
    if export.exists() {
        return Err(Error::Invalid(format!(
            "Build directory {} already finalized",
            dir.display()
        )));
    }
    let files = dir.join("files");
    let mut n = 0;
    std::fs::create_dir_all(&export).map_err(io(&export))?;
    if md.kind == Kind::App {
        for e in EXPORTED {
            n += copy_exports(&files, &export, Path::new(e), &md.name)?;
        }
    }
    let mut kf = md.keyfile.clone();
    let group = if md.kind == Kind::App {
        "Application"
    } else {
        "Runtime"
    };
    let cmd = match command {
        Some(c) => Some(c.to_string()),
        None if md.command.is_some() => md.command.clone(),
        None => {
            // The only executable in files/bin, as Flatpak picks it.
            read_names(&files.join("bin")).into_iter().find(|n| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::metadata(files.join("bin").join(n))
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
        }
    };
    if let Some(c) = &cmd {
        kf.set(group, "command", c);
    }
    let mut ctx: Context = md.context.clone();
    ctx.apply_args(cargs)?;
    ctx.write_keyfile(&mut kf);
    let out = kf.to_string();
    // Must still parse (and so be accepted by installs).
    Metadata::parse(&out)?;
    kiln_store::util::write_file_atomic(&mp, out.as_bytes(), 0o644)?;
    Ok(FinishResult {
        command: cmd,
        exported_files: n,
    })
}

#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Export a runtime (the metadata must say `[Runtime]`).
    pub runtime: bool,
    pub arch: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    /// Seconds since the epoch (`--timestamp=`); default now.
    pub timestamp: Option<u64>,
    /// Skip the summary update (`--no-update-summary`).
    pub no_update_summary: bool,
}

/// What `build-export` made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportResult {
    #[serde(rename = "ref")]
    pub appref: AppRef,
    pub commit: String,
    pub installed_size: u64,
    pub download_size: u64,
}

/// `build-export REPO DIR [BRANCH]`.
pub fn build_export(
    repo_path: &Path,
    dir: &Path,
    branch: &str,
    opts: &ExportOptions,
) -> Result<ExportResult> {
    let mp = dir.join("metadata");
    let md_bytes = std::fs::read(&mp).map_err(io(&mp))?;
    let md = Metadata::parse_bytes(&md_bytes)?;
    let kind = if opts.runtime {
        Kind::Runtime
    } else {
        Kind::App
    };
    if md.kind != kind {
        return Err(Error::metadata(
            mp.display().to_string(),
            if opts.runtime {
                "--runtime needs a [Runtime] metadata".to_string()
            } else {
                "this is a runtime; use --runtime".to_string()
            },
        ));
    }
    if !dir.join("files").is_dir() {
        return Err(Error::Invalid(format!(
            "{}: no files/ directory",
            dir.display()
        )));
    }
    let arch = opts.arch.as_deref().unwrap_or(default_arch());
    let r = AppRef::new(kind, &md.name, arch, branch)?;
    let mut repo = if repo_path.join("config").exists() {
        Repo::open(repo_path)?
    } else {
        Repo::init(repo_path, RepoMode::Archive)?
    };

    // Only metadata, files/ and export/ go in.
    let mut modifier = Modifier {
        canonical_permissions: true,
        no_xattrs: true,
        ..Default::default()
    };
    let skip: Vec<String> = read_names(dir)
        .into_iter()
        .filter(|n| !matches!(n.as_str(), "metadata" | "files" | "export"))
        .map(|n| format!("/{n}"))
        .collect();
    modifier.add_skip_list(&skip.join("\n"));
    let progress = Progress::new();
    // First the tree (sizes are part of the commit's metadata)...
    let tree = repo.commit(
        &CommitOptions {
            orphan: true,
            no_bindings: true,
            parent: ParentSpec::None,
            timestamp: Some(0),
            modifier,
            sources: vec![TreeSource::Dir(dir.to_path_buf())],
            ..Default::default()
        },
        &progress,
    )?;
    let (installed, download) = crate::remotes::commit_sizes(&repo, &tree.commit)?;
    // ...then the commit, with Flatpak's metadata in GVariantDict order.
    let full = r.to_string();
    let entries = vec![
        ("ostree.collection-binding".to_string(), Value::str("")),
        (
            "ostree.ref-binding".to_string(),
            Value::Array(Type::String, vec![Value::str(full.clone())]),
        ),
        ("xa.ref".to_string(), Value::str(full.clone())),
        (
            "xa.metadata".to_string(),
            Value::str(String::from_utf8_lossy(&md_bytes).into_owned()),
        ),
        (
            "xa.installed-size".to_string(),
            Value::Uint64(installed.to_be()),
        ),
        (
            "xa.download-size".to_string(),
            Value::Uint64(download.to_be()),
        ),
    ];
    let metadata = VarDict(kiln_remote::ghash::gvariant_dict_order(entries));
    let res = repo.commit(
        &CommitOptions {
            branch: Some(full.clone()),
            subject: opts
                .subject
                .clone()
                .unwrap_or_else(|| format!("Export {}", md.name)),
            body: opts.body.clone().unwrap_or_else(|| {
                format!(
                    "Name: {}\nArch: {}\nBranch: {}\nBuilt with: kiln {}",
                    md.name,
                    arch,
                    branch,
                    env!("CARGO_PKG_VERSION")
                )
            }),
            timestamp: opts.timestamp,
            parent: ParentSpec::BranchHead,
            metadata,
            no_bindings: true,
            sources: vec![TreeSource::Ref(tree.commit.to_hex())],
            ..Default::default()
        },
        &progress,
    )?;
    if res.commit != tree.commit {
        repo.delete_object(&tree.commit, ObjectType::Commit)?;
    }
    if !opts.no_update_summary {
        crate::remotes::update_repo_summary(&mut repo)?;
    }
    Ok(ExportResult {
        appref: r,
        commit: res.commit.to_hex(),
        installed_size: installed,
        download_size: download,
    })
}

/// `build-update-repo REPO`.
pub fn build_update_repo(repo_path: &Path) -> Result<()> {
    let mut repo = Repo::open(repo_path)?;
    crate::remotes::update_repo_summary(&mut repo)
}

/// Read a build directory's metadata as a keyfile (for `build` to find
/// the SDK).
pub fn read_build_metadata(dir: &Path) -> Result<KeyFile> {
    let mp = dir.join("metadata");
    let t = std::fs::read_to_string(&mp).map_err(io(&mp))?;
    KeyFile::parse(&t).map_err(|e| Error::metadata(mp.display().to_string(), e.to_string()))
}
