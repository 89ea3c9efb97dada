//! Space checks before any change: `/boot` filling up halfway is the most
//! reported OSTree failure, so kiln estimates what a deploy needs in `/boot`
//! and in the sysroot and refuses early, saying what `kiln cleanup` would
//! free.

use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::sysroot::Sysroot;
use kiln_store::walk::Resolved;
use kiln_store::{Checksum, Repo};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const BLOCK: u64 = 4096;
/// Free space above which the checkout estimate is skipped.
const PLENTY: u64 = 8 << 30;

fn round(n: u64) -> u64 {
    n.div_ceil(BLOCK) * BLOCK
}

/// A kernel found in a commit (without checking it out).
#[derive(Debug, Clone)]
pub struct RepoKernel {
    /// (name in /boot, size)
    pub files: Vec<(String, u64)>,
    /// The boot checksum the deployment will get.
    pub bootcsum: String,
}

fn hash_objects(repo: &Repo, objs: &[Checksum]) -> Result<String> {
    let mut h = kiln_store::checksum::Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    for c in objs {
        let obj = repo.load_content(c)?;
        let mut r = obj.reader()?;
        loop {
            let n = std::io::Read::read(&mut r, &mut buf).map_err(|e| Error::io(repo.path(), e))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    }
    Ok(h.finish().to_hex())
}

fn file_size(repo: &Repo, c: &Checksum) -> Result<u64> {
    Ok(repo.load_content(c)?.size)
}

/// Find the kernel of a commit where ostree looks, from the repo alone.
/// With `hash`, also compute the boot checksum (reads kernel + initramfs).
pub fn repo_kernel(repo: &Repo, commit: &Checksum, hash: bool) -> Result<Option<RepoKernel>> {
    if let Ok(Resolved::Dir { tree, .. }) = repo.resolve_path(commit, "/usr/lib/modules") {
        let dt = repo.read_dirtree(&tree)?;
        let mut dirs = dt.dirs.clone();
        dirs.sort_by(|a, b| a.0.cmp(&b.0));
        for (kver, t, _) in dirs {
            let sub = repo.read_dirtree(&t)?;
            let Some((_, k)) = sub.files.iter().find(|(n, _)| n == "vmlinuz") else {
                continue;
            };
            let mut files = vec![(format!("vmlinuz-{kver}"), file_size(repo, k)?)];
            let mut objs = vec![*k];
            let initramfs = ["initramfs.img", "initramfs"]
                .iter()
                .find_map(|want| sub.files.iter().find(|(n, _)| n == want));
            if let Some((_, i)) = initramfs {
                files.push((format!("initramfs-{kver}.img"), file_size(repo, i)?));
                objs.push(*i);
            }
            if let Some((_, d)) = sub.files.iter().find(|(n, _)| n == "devicetree") {
                files.push((format!("devicetree-{kver}"), file_size(repo, d)?));
                objs.push(*d);
            }
            let bootcsum = if hash {
                hash_objects(repo, &objs)?
            } else {
                String::new()
            };
            return Ok(Some(RepoKernel { files, bootcsum }));
        }
    }
    for legacy in ["/usr/lib/ostree-boot", "/boot"] {
        if let Ok(Resolved::Dir { tree, .. }) = repo.resolve_path(commit, legacy) {
            let dt = repo.read_dirtree(&tree)?;
            let mut files = Vec::new();
            let mut bootcsum = String::new();
            for (n, c) in &dt.files {
                if n.starts_with("vmlinuz-")
                    || n.starts_with("initramfs-")
                    || n.starts_with("devicetree-")
                {
                    let name = n
                        .rsplit_once('-')
                        .map(|(h, _)| h.to_string())
                        .unwrap_or_else(|| n.clone());
                    if n.starts_with("vmlinuz-") {
                        bootcsum = n
                            .rsplit_once('-')
                            .map(|(_, c)| c.to_string())
                            .unwrap_or_default();
                    }
                    files.push((name, file_size(repo, c)?));
                }
            }
            if files.iter().any(|(n, _)| n.starts_with("vmlinuz")) {
                return Ok(Some(RepoKernel { files, bootcsum }));
            }
            return Ok(None);
        }
    }
    Ok(None)
}

/// Bytes a checkout of `commit` costs in a bare sysroot: directories, the
/// `/etc` copy of `/usr/etc`, empty files (copied, not linked).
fn checkout_cost(repo: &Repo, commit: &Checksum) -> Result<u64> {
    fn walk(repo: &Repo, tree: &Checksum, path: &str, copy: bool, total: &mut u64) -> Result<()> {
        let dt = repo.read_dirtree(tree)?;
        *total += BLOCK;
        if copy {
            for (_, c) in &dt.files {
                *total += round(file_size(repo, c)?);
            }
        }
        for (name, t, _) in &dt.dirs {
            let p = format!("{path}/{name}");
            let copy = copy || p == "/usr/etc";
            walk(repo, t, &p, copy, total)?;
            if p == "/usr/etc" {
                // Counted twice: the hardlinked /usr/etc and the copied /etc.
                walk(repo, t, "/etc", true, total)?;
            }
        }
        Ok(())
    }
    let c = repo.read_commit(commit)?;
    let mut total = 0;
    walk(repo, &c.root_tree, "", false, &mut total)?;
    Ok(total)
}

fn fmt(n: u64) -> String {
    kiln_store::util::format_size(n)
}

/// Bytes under `path` (each inode once).
fn usage(path: &Path) -> u64 {
    fsutil::disk_usage(path, &mut HashSet::new()).0
}

impl Sysroot {
    /// What `kiln cleanup` would free in /boot: boot dirs and the other
    /// loader dir no current deployment uses.
    pub fn boot_cleanup_would_free(&self) -> u64 {
        let used: HashSet<&str> = self
            .deployments
            .iter()
            .map(|d| d.bootcsum.as_str())
            .collect();
        let mut n = usage(
            &self
                .opts
                .path
                .join(format!("boot/loader.{}", 1 - self.bootversion)),
        );
        for (name, csum) in crate::cleanup::list_boot_dirs(&self.opts.path).unwrap_or_default() {
            if !used.contains(csum.as_str()) {
                n += usage(&self.opts.path.join("boot/ostree").join(name));
            }
        }
        n
    }

    /// What removing the rollback deployment would free in /boot.
    pub fn boot_rollback_would_free(&self) -> u64 {
        let Ok(i) = self.rollback_target() else {
            return 0;
        };
        let Some(r) = self.deployments.get(i) else {
            return 0;
        };
        if self
            .deployments
            .iter()
            .any(|d| !d.same(r) && d.bootcsum == r.bootcsum)
            || r.is_pinned()
        {
            return 0;
        }
        usage(
            &self
                .opts
                .path
                .join(format!("boot/ostree/{}-{}", r.osname, r.bootcsum)),
        )
    }

    fn boot_hint(&self) -> String {
        format!(
            "`kiln cleanup` would free {}, removing the rollback deployment (`kiln cleanup -r`) {} more",
            fmt(self.boot_cleanup_would_free()),
            fmt(self.boot_rollback_would_free())
        )
    }
}

fn same_fs(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev(),
        _ => false,
    }
}

/// Refuse a deploy of `commit` that would not fit (or has no kernel).
pub(crate) fn check_deploy_space(s: &Sysroot, commit: &Checksum, osname: &str) -> Result<()> {
    let repo = s.repo();
    let boot = s.path().join("boot");
    let copies = boot.is_dir() && !same_fs(&boot, repo.path());
    let kernel = repo_kernel(repo, commit, copies)?.ok_or_else(|| Error::NoKernel {
        deployment: repo.path().to_path_buf(),
    })?;
    let deploy_dir = s.path().join("ostree/deploy");
    let sys_free = fsutil::fs_free(&deploy_dir)?;
    // Walking every directory of a large commit costs a noticeable part of
    // a deploy; with gigabytes free the checkout (directories, the /etc
    // copy) cannot plausibly run out, so only count when it is tight.
    let sys_needed = if sys_free >= PLENTY {
        0
    } else {
        checkout_cost(repo, commit)? + 1024 * 1024
    };
    if sys_needed > sys_free {
        return Err(Error::NoSpace {
            fs: "the sysroot",
            path: deploy_dir,
            needed: fmt(sys_needed),
            available: fmt(sys_free),
            hint: "`kiln cleanup` removes unreferenced deployments and objects".into(),
        });
    }
    if !boot.is_dir() {
        return Ok(());
    }
    // Kernels are hardlinked when /boot shares the sysroot's file system.
    let mut boot_needed = 3 * BLOCK + (s.deployments().len() as u64 + 1) * BLOCK;
    if copies {
        // Shared with a deployment of the same kernel.
        let bdir = boot.join(format!("ostree/{osname}-{}", kernel.bootcsum));
        let shared = kernel.files.iter().all(|(f, _)| bdir.join(f).exists());
        if !shared {
            boot_needed += BLOCK
                + kernel
                    .files
                    .iter()
                    .map(|(_, n)| round(*n) + round(*n) / 64)
                    .sum::<u64>();
        }
    }
    let boot_free = fsutil::fs_free(&boot)?;
    if boot_needed > boot_free {
        return Err(Error::NoSpace {
            fs: "/boot",
            path: boot,
            needed: fmt(boot_needed),
            available: fmt(boot_free),
            hint: s.boot_hint(),
        });
    }
    Ok(())
}

/// Refuse writing boot entries for `new` when the kernels to copy do not
/// fit in /boot.
pub(crate) fn check_boot_space(s: &Sysroot, new: &[Deployment]) -> Result<()> {
    let boot = s.path().join("boot");
    let mut needed = 2 * BLOCK + new.len() as u64 * BLOCK;
    let mut seen = HashSet::new();
    for d in new {
        if !seen.insert(d.bootcsum.clone()) {
            continue;
        }
        let root = s.deployment_path(d);
        if same_fs(&boot, &root) {
            continue;
        }
        let bdir = boot.join(format!("ostree/{}-{}", d.osname, d.bootcsum));
        let Ok(layout) = crate::kernel::find_kernel_files(&root) else {
            continue;
        };
        for (src, name) in layout.files() {
            if !bdir.join(&name).exists() {
                let n = std::fs::metadata(layout.src_dir.join(&src))
                    .map(|m| m.len())
                    .unwrap_or(0);
                needed += round(n) + round(n) / 64;
            }
        }
    }
    let free = fsutil::fs_free(&boot)?;
    if needed > free {
        return Err(Error::NoSpace {
            fs: "/boot",
            path: boot,
            needed: fmt(needed),
            available: fmt(free),
            hint: s.boot_hint(),
        });
    }
    Ok(())
}
