//! Deploying: check out a commit as `CHECKSUM.SERIAL`, prepare and merge
//! `/etc`, write the origin, seal the root (immutable), then write the new
//! deployment list — or stage it for `finalize-staged` at shutdown.

use crate::bootconfig::BootEntry;
use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::kargs::KernelArgs;
use crate::kernel;
use crate::stage::{StagedRef, StagedState, FINALIZE_FAILURE, STAGED_LOCKED};
use crate::sysroot::Sysroot;
use crate::write::WriteOutcome;
use kiln_store::checkout::CheckoutOptions;
use kiln_store::keyfile::KeyFile;
use kiln_store::{failpoint, Checksum, Progress};

/// `ostree admin deploy`'s options.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// Stateroot (default: the booted one).
    pub osname: Option<String>,
    /// Use this origin instead of `[origin] refspec=REFSPEC`.
    pub origin: Option<KeyFile>,
    /// `--karg`: replace (or add) these arguments.
    pub karg: Vec<String>,
    pub karg_append: Vec<String>,
    pub karg_delete: Option<String>,
    pub karg_none: bool,
    /// `--karg-proc-cmdline`: the text of `/proc/cmdline` (the caller reads it).
    pub proc_cmdline: Option<String>,
    pub no_merge: bool,
    pub retain: bool,
    pub retain_pending: bool,
    pub retain_rollback: bool,
    pub not_as_default: bool,
    pub stage: bool,
    pub lock_finalization: bool,
    pub no_prune: bool,
}

/// How the new deployment joins the list (`OSTREE_SYSROOT_SIMPLE_WRITE_*`).
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteFlags {
    pub retain: bool,
    pub retain_pending: bool,
    pub retain_rollback: bool,
    pub not_default: bool,
}

/// Parse a full checksum or a refspec the way `ostree admin deploy` takes it.
pub(crate) fn resolve(repo: &kiln_store::Repo, rev: &str) -> Result<Checksum> {
    if rev.len() == 64 && Checksum::is_hex(rev) {
        let c: Checksum = rev
            .parse()
            .map_err(|_| kiln_store::Error::BadRef(rev.to_string()))?;
        if !repo.has_object(&c, kiln_store::ObjectType::Commit) {
            return Err(Error::invalid(format!(
                "Checking out deployment tree: No such metadata object {c}.commit"
            )));
        }
        return Ok(c);
    }
    kiln_store::refs::RefSpec::parse(rev)?;
    Ok(repo
        .resolve_ref(rev)?
        .ok_or_else(|| kiln_store::Error::RefNotFound(rev.to_string()))?)
}

pub(crate) fn origin_for_refspec(refspec: &str) -> KeyFile {
    let mut k = KeyFile::default();
    k.set("origin", "refspec", refspec);
    k
}

impl Sysroot {
    fn allocate_serial(&self, osname: &str, csum: &Checksum) -> Result<u32> {
        let mut serial = 0;
        for (os, name) in crate::cleanup::list_deployment_dirs(&self.opts.path)? {
            if os != osname {
                continue;
            }
            if let Ok((c, s)) = crate::load::parse_deploy_name(&name) {
                if c == *csum {
                    serial = serial.max(s + 1);
                }
            }
        }
        Ok(serial)
    }

    /// Check out `csum`, find its kernel, copy `/usr/etc` to `/etc`.
    fn initialize_deployment(
        &self,
        osname: &str,
        csum: &Checksum,
        origin: KeyFile,
        kargs: Option<&[String]>,
    ) -> Result<Deployment> {
        let serial = self.allocate_serial(osname, csum)?;
        let mut d = Deployment {
            index: 0,
            osname: osname.to_string(),
            csum: *csum,
            serial,
            bootcsum: String::new(),
            bootserial: 0,
            bootconfig: BootEntry::from_options(
                kargs
                    .map(|k| KernelArgs::parse(&k.join(" ")).to_string())
                    .as_deref(),
            ),
            origin: Some(origin),
            staged: false,
        };
        let osdeploy = self
            .opts
            .path
            .join(format!("ostree/deploy/{osname}/deploy"));
        fsutil::mkdir_p(&osdeploy, 0o775)?;
        let root = self.deployment_path(&d);
        fsutil::rm_rf(&root)?;
        let res = (|| -> Result<()> {
            let co = CheckoutOptions {
                no_fsync: true,
                ..Default::default()
            };
            self.repo.checkout(csum, &root, &co, &Progress::new())?;
            failpoint::hit("deploy:after-checkout");
            d.bootcsum = kernel::find_kernel(&root)?.bootcsum;
            self.prepare_etc(&d)
        })();
        if let Err(e) = res {
            let _ = fsutil::rm_rf(&root);
            return Err(e);
        }
        Ok(d)
    }

    fn prepare_etc(&self, d: &Deployment) -> Result<()> {
        let root = self.deployment_path(d);
        let (etc, usretc) = (root.join("etc"), root.join("usr/etc"));
        let etc_exists = fsutil::exists_nofollow(&etc);
        let usretc_exists = fsutil::exists_nofollow(&usretc);
        if etc_exists && usretc_exists {
            return Err(Error::BothEtc(root));
        }
        if etc_exists {
            std::fs::rename(&etc, &usretc).map_err(|e| Error::io(&etc, e))?;
            return fsutil::copy_dir_recurse(&usretc, &etc);
        }
        if usretc_exists {
            let co = CheckoutOptions {
                no_fsync: true,
                force_copy: true,
                subpath: Some("/usr/etc".into()),
                ..Default::default()
            };
            self.repo.checkout(&d.csum, &etc, &co, &Progress::new())?;
        }
        Ok(())
    }

    fn var_dir(&self, osname: &str) -> std::path::PathBuf {
        match self.booted_deployment() {
            Some(b) if b.osname == osname => self.opts.root.join("var"),
            _ => self.opts.path.join(format!("ostree/deploy/{osname}/var")),
        }
    }

    /// Merge `/etc`, touch `/var` state, write the origin, seal the root.
    fn finalize_deployment(&self, d: &mut Deployment, merge: Option<&Deployment>) -> Result<()> {
        let root = self.deployment_path(d);
        if let Some(m) = merge {
            if d.bootconfig.get("options").is_none() {
                if let Some(o) = m.bootconfig.get("options") {
                    d.bootconfig.set("options", o);
                }
            }
            let diff = crate::etc_merge::merge(&self.deployment_path(m), &root)?;
            self.message(&format!(
                "Copying /etc changes: {} modified, {} removed, {} added",
                diff.modified.len(),
                diff.removed.len(),
                diff.added.len()
            ));
            failpoint::hit("deploy:after-etc-merge");
        }
        let var = self.var_dir(&d.osname);
        if !var.is_dir() {
            return Err(Error::NoStateroot {
                osname: d.osname.clone(),
                path: var,
            });
        }
        fsutil::rm_rf(&root.join("etc/.updated"))?;
        fsutil::rm_rf(&var.join(".updated"))?;
        let stamp = var.join(".ostree-selabeled");
        if !fsutil::exists_nofollow(&stamp) {
            self.message("Relabeling /var (no stamp file 'var/.ostree-selabeled' found)");
            fsutil::write_file(&stamp, b"", 0o644)?;
        }
        self.write_origin(d)?;
        failpoint::hit("deploy:after-origin");
        fsutil::set_immutable(&root, true)
    }

    pub(crate) fn write_origin(&self, d: &Deployment) -> Result<()> {
        if let Some(o) = &d.origin {
            fsutil::write_file(
                &self.opts.path.join(d.origin_relpath()),
                o.to_string().as_bytes(),
                0o644,
            )?;
        }
        Ok(())
    }

    /// Add `new` to the list as `ostree_sysroot_simple_write_deployment`
    /// does: default (first) unless `not_default`; keep the booted, the
    /// merge, pinned ones and other stateroots; drop the rest unless told.
    pub fn simple_write_deployment(
        &mut self,
        osname: Option<&str>,
        new: Deployment,
        merge: Option<&Deployment>,
        flags: WriteFlags,
        postclean: bool,
    ) -> Result<WriteOutcome> {
        let booted = self.booted_deployment().cloned();
        // Deployments mounted on /usr (kiln apply-live) stay until reboot.
        let live: Vec<Deployment> = self.live_stack().into_iter().cloned().collect();
        let osname = osname
            .map(str::to_string)
            .or(booted.as_ref().map(|b| b.osname.clone()));
        let mut retain = flags.retain;
        if booted.is_none() && merge.is_none() && (flags.retain_pending || flags.retain_rollback) {
            retain = true;
        }
        let mut list = Vec::new();
        let mut added = false;
        if !flags.not_default {
            list.push(new.clone());
            added = true;
        }
        let (mut before_booted, mut before_merge) = (true, true);
        for d in self.deployments.iter().filter(|d| !d.staged) {
            let os_matches = osname.as_deref().is_none_or_eq(&d.osname);
            let is_booted = booted.as_ref().is_some_and(|b| b.same(d));
            let is_merge = merge.is_some_and(|m| m.same(d));
            if is_booted {
                before_booted = false;
            }
            if is_merge {
                before_merge = false;
            }
            let crossed = if booted.is_some() {
                !before_booted
            } else {
                !before_merge
            };
            if retain
                || d.is_pinned()
                || !os_matches
                || (flags.retain_pending && !crossed)
                || is_booted
                || is_merge
                || live.iter().any(|l| l.same(d))
                || (flags.retain_rollback && crossed)
            {
                list.push(d.clone());
            }
            if !added && crossed {
                list.push(new.clone());
                added = true;
            }
        }
        if !added {
            list.push(new);
        }
        self.write_deployments(list, postclean)
    }

    fn compute_kargs(
        &self,
        opts: &DeployOptions,
        merge: Option<&Deployment>,
    ) -> Result<Option<Vec<String>>> {
        if opts.proc_cmdline.is_some() && opts.karg_none {
            return Err(Error::Kargs(
                "Can't specify both --karg-proc-cmdline and --karg-none".into(),
            ));
        }
        if opts.karg_none && opts.karg_delete.is_some() {
            return Err(Error::Kargs(
                "Can't specify both --karg-none and --karg-delete".into(),
            ));
        }
        if opts.no_merge && opts.karg_delete.is_some() {
            return Err(Error::Kargs(
                "Can't specify both --no-merge and --karg-delete".into(),
            ));
        }
        let mut kargs: Option<KernelArgs> = None;
        if opts.karg_none {
            kargs = Some(KernelArgs::new());
        } else if let Some(cmdline) = &opts.proc_cmdline {
            let mut k = KernelArgs::new();
            for a in cmdline.trim_end().split(' ') {
                if !(a.starts_with("BOOT_IMAGE=") || a.starts_with("initrd=")) {
                    k.append(a);
                }
            }
            kargs = Some(k);
        } else if let Some(m) = merge.filter(|_| {
            !opts.karg.is_empty() || !opts.karg_append.is_empty() || opts.karg_delete.is_some()
        }) {
            kargs = Some(KernelArgs::parse(m.options().unwrap_or("")));
        }
        if !opts.karg.is_empty() {
            kargs
                .get_or_insert_with(KernelArgs::new)
                .replace_all(opts.karg.iter().map(String::as_str));
        }
        if !opts.karg_append.is_empty() {
            kargs
                .get_or_insert_with(KernelArgs::new)
                .append_all(opts.karg_append.iter().map(String::as_str));
        }
        if let Some(del) = &opts.karg_delete {
            kargs.get_or_insert_with(KernelArgs::new).delete(del)?;
        }
        Ok(kargs.map(|k| k.to_vec()))
    }

    /// `ostree admin deploy REFSPEC`: resolve, check, deploy (or stage).
    pub fn deploy(&mut self, refspec: &str, opts: &DeployOptions) -> Result<Deployment> {
        let csum = resolve(&self.repo, refspec)?;
        let origin = opts
            .origin
            .clone()
            .unwrap_or_else(|| origin_for_refspec(refspec));
        self.deploy_commit(&csum, origin, opts)
    }

    /// Deploy a resolved commit with this origin.
    pub fn deploy_commit(
        &mut self,
        csum: &Checksum,
        origin: KeyFile,
        opts: &DeployOptions,
    ) -> Result<Deployment> {
        let osname = match (&opts.osname, self.booted_deployment()) {
            (Some(o), _) => o.clone(),
            (None, Some(b)) => b.osname.clone(),
            (None, None) => return Err(Error::NoOsname),
        };
        validate_osname(&osname)?;
        if !self.has_stateroot(&osname) {
            return Err(Error::NoStateroot {
                path: self.opts.path.join(format!("ostree/deploy/{osname}/var")),
                osname,
            });
        }
        if opts.stage {
            if self.booted_deployment().is_none() {
                return Err(Error::CannotStage);
            }
            if opts.retain_pending || opts.retain_rollback {
                return Err(Error::invalid(
                    "--stage cannot currently be combined with --retain arguments",
                ));
            }
            if opts.not_as_default {
                return Err(Error::invalid(
                    "--stage cannot currently be combined with --not-as-default",
                ));
            }
        }
        let merge = if opts.no_merge {
            None
        } else {
            self.merge_deployment(Some(&osname)).cloned()
        };
        let kargs = self.compute_kargs(opts, merge.as_ref())?;
        // Refuse before changing anything: no kernel, not enough space.
        let t = std::time::Instant::now();
        crate::space::check_deploy_space(self, csum, &osname)?;
        tracing::debug!(elapsed = ?t.elapsed(), "space checked");
        self.cleanup(false)?;
        tracing::debug!(elapsed = ?t.elapsed(), "initial cleanup");
        let mut d = self.initialize_deployment(&osname, csum, origin, kargs.as_deref())?;
        tracing::debug!(elapsed = ?t.elapsed(), "checked out");
        if opts.stage {
            return self.stage(d, merge.as_ref(), kargs, opts.lock_finalization);
        }
        let root = self.deployment_path(&d);
        let res = (|| -> Result<()> {
            self.finalize_deployment(&mut d, merge.as_ref())?;
            tracing::debug!(elapsed = ?t.elapsed(), "finalized");
            let flags = WriteFlags {
                retain: opts.retain,
                retain_pending: opts.retain_pending,
                retain_rollback: opts.retain_rollback,
                not_default: opts.not_as_default,
            };
            self.simple_write_deployment(Some(&osname), d.clone(), merge.as_ref(), flags, false)?;
            Ok(())
        })();
        if let Err(e) = res {
            // Nothing references the new checkout yet: leave no debris.
            if !self.deployments.iter().any(|x| x.same(&d)) {
                let _ = fsutil::rm_rf(&self.opts.path.join(d.origin_relpath()));
                let _ = fsutil::rm_rf(&root);
            }
            return Err(e);
        }
        tracing::debug!(elapsed = ?t.elapsed(), "deployments written");
        self.cleanup(!opts.no_prune)?;
        tracing::debug!(elapsed = ?t.elapsed(), "cleaned up");
        let new = self
            .deployments
            .iter()
            .find(|x| x.same(&d))
            .cloned()
            .unwrap_or(d);
        Ok(new)
    }

    fn stage(
        &mut self,
        d: Deployment,
        merge: Option<&Deployment>,
        kargs: Option<Vec<String>>,
        lock_finalization: bool,
    ) -> Result<Deployment> {
        let run = self.opts.run_dir.clone();
        if lock_finalization {
            fsutil::mkdir_p(&run.join("ostree"), 0o755)?;
            fsutil::write_file(&run.join(STAGED_LOCKED), b"", 0o640)?;
        }
        self.write_origin(&d)?;
        let st = StagedState {
            target: StagedRef::of(&d),
            merge: merge.map(StagedRef::of),
            kargs,
            overlay_initrds: None,
        };
        st.write(&run)?;
        failpoint::hit("stage:after-state");
        if let Some(old) = self.staged_deployment().cloned() {
            if !old.same(&d) {
                fsutil::rm_rf(&self.opts.path.join(old.origin_relpath()))?;
                fsutil::rm_rf(&self.deployment_path(&old))?;
            }
        }
        self.bump_mtime()?;
        self.load()?;
        self.cleanup(false)?;
        Ok(self.staged_deployment().cloned().unwrap_or(d))
    }

    /// Finish a staged deployment (at shutdown). Returns false when there
    /// was nothing to do.
    pub fn finalize_staged(&mut self) -> Result<bool> {
        if !self.opts.run_dir.join("ostree-booted").exists() {
            return Ok(false);
        }
        let res = self.finalize_staged_inner();
        if let Err(e) = &res {
            let _ = fsutil::write_file(
                &self.opts.path.join("boot").join(FINALIZE_FAILURE),
                e.to_string().as_bytes(),
                0o644,
            );
        }
        res
    }

    fn finalize_staged_inner(&mut self) -> Result<bool> {
        let (Some(st), Some(mut staged)) = (self.staged.clone(), self.staged_deployment().cloned())
        else {
            return Ok(false);
        };
        if self.opts.run_dir.join(STAGED_LOCKED).exists() {
            tracing::info!("Not finalizing; found {}", STAGED_LOCKED);
            return Ok(false);
        }
        let merge = match &st.merge {
            Some(m) => Some(
                self.deployments
                    .iter()
                    .find(|d| !d.staged && m.matches(d))
                    .cloned()
                    .ok_or_else(|| {
                        Error::invalid(format!(
                            "Failed to find merge deployment {} for staged",
                            m.name
                        ))
                    })?,
            ),
            None => None,
        };
        fsutil::rm_rf(&StagedState::path(&self.opts.run_dir))?;
        failpoint::hit("finalize:after-unlink");
        self.finalize_deployment(&mut staged, merge.as_ref())?;
        staged.staged = false;
        self.deployments.remove(0);
        // The booted one moved up with it (it is never the staged one).
        self.booted = self.booted.map(|i| i.saturating_sub(1));
        self.staged = None;
        let osname = staged.osname.clone();
        self.simple_write_deployment(
            Some(&osname),
            staged,
            merge.as_ref(),
            WriteFlags::default(),
            false,
        )?;
        self.cleanup(false)?;
        Ok(true)
    }

    /// `ostree admin undeploy INDEX`.
    pub fn undeploy(&mut self, index: usize) -> Result<Deployment> {
        let target = self.deployment(index)?.clone();
        if self.booted_deployment().is_some_and(|b| b.same(&target)) {
            return Err(Error::UndeployBooted(index));
        }
        let mut list = self.deployments.clone();
        list.remove(index);
        self.write_deployments(list, true)?;
        self.message(&format!("Deleted deployment {}", target.dirname()));
        self.cleanup(true)?;
        Ok(target)
    }

    /// Move deployment `index` to the front (the next boot); nothing is
    /// deleted.
    pub fn set_default(&mut self, index: usize) -> Result<WriteOutcome> {
        let d = self.deployment(index)?.clone();
        if d.staged {
            return Err(Error::invalid("Cannot make a staged deployment the default; it becomes the default when finalized"));
        }
        let mut list: Vec<Deployment> = self
            .deployments
            .iter()
            .filter(|x| !x.staged)
            .cloned()
            .collect();
        list.retain(|x| !x.same(&d));
        list.insert(0, d);
        self.write_deployments(list, true)
    }

    /// The deployment `rollback` would make the default: the rollback one
    /// when the booted deployment is the default, else the booted one (an
    /// upgrade is pending); without a booted one, index 1.
    pub fn rollback_target(&self) -> Result<usize> {
        let list: Vec<&Deployment> = self.deployments.iter().filter(|d| !d.staged).collect();
        match self.booted_deployment() {
            Some(b) => {
                if list.first().is_some_and(|f| f.same(b)) {
                    let (_, rollback) = self.query_deployments_for(None);
                    let r =
                        rollback.ok_or_else(|| Error::invalid("No rollback deployment found"))?;
                    Ok(r.index)
                } else {
                    Ok(b.index)
                }
            }
            None => list
                .get(1)
                .map(|d| d.index)
                .ok_or_else(|| Error::invalid("No rollback deployment found")),
        }
    }

    /// Swap the default and the rollback deployment (reorder, like newer
    /// ostree's `set-default`; nothing deleted). A staged deployment is
    /// dropped, as any write of the list does.
    pub fn rollback(&mut self) -> Result<WriteOutcome> {
        let i = self.rollback_target()?;
        self.set_default(i)
    }

    /// `ostree admin pin [--unpin] INDEX`: true if it changed.
    pub fn set_pinned(&mut self, index: usize, pinned: bool) -> Result<bool> {
        let d = self.deployment(index)?.clone();
        if d.is_pinned() == pinned {
            return Ok(false);
        }
        if d.staged {
            return Err(Error::PinStaged);
        }
        let mut origin = d.origin.clone().unwrap_or_default();
        if pinned {
            origin.set(crate::deployment::TRANSIENT_GROUP, "pinned", "true");
        } else {
            origin.remove_key(crate::deployment::TRANSIENT_GROUP, "pinned");
        }
        let path = self.opts.path.join(d.origin_relpath());
        kiln_store::util::write_file_atomic(&path, origin.to_string().as_bytes(), 0o644)?;
        self.bump_mtime()?;
        self.load()?;
        Ok(true)
    }

    /// Replace a deployment's origin file (`set-origin`, `rebase`).
    pub fn write_origin_file(&mut self, index: usize, origin: KeyFile) -> Result<()> {
        let d = self.deployment(index)?.clone();
        let path = self.opts.path.join(d.origin_relpath());
        kiln_store::util::write_file_atomic(&path, origin.to_string().as_bytes(), 0o644)?;
        self.bump_mtime()?;
        self.load()
    }
}

trait OptEq {
    fn is_none_or_eq(&self, v: &str) -> bool;
}

impl OptEq for Option<&str> {
    fn is_none_or_eq(&self, v: &str) -> bool {
        match self {
            None => true,
            Some(x) => *x == v,
        }
    }
}

/// A stateroot name is one path component.
pub(crate) fn validate_osname(osname: &str) -> Result<()> {
    if osname.is_empty()
        || osname == "."
        || osname == ".."
        || osname.contains('/')
        || osname.contains('\0')
    {
        return Err(Error::BadOsname(osname.to_string()));
    }
    Ok(())
}
