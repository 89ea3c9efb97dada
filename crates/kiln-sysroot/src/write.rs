//! Writing a new deployment list: bootlinks, BLS entries, kernels, one
//! sync, and the atomic swap — of `/boot/loader` when the boot entries
//! change ("bootconfig swap"), or only of `/ostree/boot.B` when they do not.

use crate::bootconfig::BootEntry;
use crate::deployment::Deployment;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::kargs::KernelArgs;
use crate::kernel;
use crate::stage::{StagedState, STAGED_LOCKED};
use crate::sysroot::Sysroot;
use kiln_store::failpoint;
use std::collections::HashMap;

/// What a write did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WriteOutcome {
    /// New BLS entries were written and `/boot/loader` swapped.
    pub bootconfig_swap: bool,
    pub bootversion: u32,
    pub subbootversion: u32,
    pub deployment_count_change: i64,
}

/// Parse an os-release value the way `g_shell_unquote` does (enough of it).
fn shell_unquote(v: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => loop {
                match chars.next()? {
                    '\'' => break,
                    x => out.push(x),
                }
            },
            '"' => loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        x @ ('"' | '\\' | '$' | '`') => out.push(x),
                        '\n' => {}
                        x => {
                            out.push('\\');
                            out.push(x);
                        }
                    },
                    x => out.push(x),
                }
            },
            '\\' => match chars.next() {
                Some('\n') | None => {}
                Some(x) => out.push(x),
            },
            x => out.push(x),
        }
    }
    Some(out)
}

pub(crate) fn parse_os_release(text: &str) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for line in text.split('\n') {
        if line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if let Some(v) = shell_unquote(v) {
            m.insert(k.to_string(), v);
        }
    }
    m
}

/// Kernel arguments without the `ostree=` value (it differs by design).
fn nonostree_kargs(d: &Deployment) -> String {
    let mut k = KernelArgs::parse(d.options().unwrap_or(""));
    k.replace("ostree");
    k.to_string()
}

impl Sysroot {
    pub(crate) fn commit_version(&self, d: &Deployment) -> Option<String> {
        self.repo
            .read_commit(&d.csum)
            .ok()
            .and_then(|c| c.version().map(str::to_string))
    }

    fn bootconfigs_equal(&self, a: &Deployment, b: &Deployment) -> bool {
        a.bootcsum == b.bootcsum
            && a.bootconfig.overlay_initrds() == b.bootconfig.overlay_initrds()
            && nonostree_kargs(a) == nonostree_kargs(b)
            && self.commit_version(a) == self.commit_version(b)
    }

    /// Make `ostree/boot.B.S'` (S' the other subbootversion) with a link
    /// per deployment.
    fn create_new_bootlinks(&self, bootversion: u32, new: &[Deployment]) -> Result<u32> {
        let old_sub = if bootversion != self.bootversion {
            self.read_subbootversion(bootversion)?
        } else {
            self.subbootversion
        };
        let new_sub = 1 - old_sub;
        let dir = self
            .opts
            .path
            .join(format!("ostree/boot.{bootversion}.{new_sub}"));
        fsutil::rm_rf(&dir)?;
        fsutil::mkdir_p(&dir, 0o755)?;
        for d in new {
            let parent = dir.join(&d.osname).join(&d.bootcsum);
            fsutil::mkdir_p(&parent, 0o755)?;
            let target = format!("../../../deploy/{}/deploy/{}", d.osname, d.dirname());
            fsutil::symlink_replace(&target, &parent.join(d.bootserial.to_string()))?;
        }
        Ok(new_sub)
    }

    fn swap_bootlinks(&self, bootversion: u32, new_sub: u32) -> Result<()> {
        fsutil::symlink_replace(
            &format!("boot.{bootversion}.{new_sub}"),
            &self.opts.path.join(format!("ostree/boot.{bootversion}")),
        )
    }

    /// One `syncfs` of the sysroot and one of `/boot`.
    fn full_sync(&self) -> Result<()> {
        kiln_store::util::syncfs(&self.opts.path)?;
        kiln_store::util::syncfs(&self.opts.path.join("boot"))?;
        Ok(())
    }

    /// Copy the kernel of `d` into /boot and write its entry into
    /// `loader.B/entries`.
    fn install_deployment_kernel(
        &self,
        bootversion: u32,
        d: &mut Deployment,
        n: usize,
        show_osname: bool,
    ) -> Result<()> {
        let root = self.deployment_path(d);
        let layout = kernel::find_kernel_files(&root)?;
        let boot = self.opts.path.join("boot");
        let bootcsumdir = format!("ostree/{}-{}", d.osname, d.bootcsum);
        let bdir = boot.join(&bootcsumdir);
        fsutil::mkdir_p(&bdir, 0o775)?;
        let entries = boot.join(format!("loader.{bootversion}/entries"));
        fsutil::mkdir_p(&entries, 0o775)?;
        for (src, name) in layout.files() {
            kernel::install_into_boot(&layout.src_dir.join(&src), &bdir.join(&name))?;
        }
        if let (Some(dtb), None) = (&layout.devicetree_src, &layout.devicetree_namever) {
            fsutil::copy_dir_recurse(&layout.src_dir.join(dtb), &bdir.join(dtb))?;
        }
        let osrel_path = if root.join("usr/lib/os-release").exists() {
            root.join("usr/lib/os-release")
        } else {
            root.join("etc/os-release")
        };
        let text = std::fs::read_to_string(&osrel_path).map_err(|e| Error::io(&osrel_path, e))?;
        let osrel = parse_os_release(&text);
        let name = osrel
            .get("PRETTY_NAME")
            .or_else(|| osrel.get("ID"))
            .ok_or_else(|| Error::NoOsName(osrel_path.clone()))?;
        let mut title = name.clone();
        if let Some(v) = self
            .commit_version(d)
            .filter(|v| !v.is_empty() && !name.contains(v.as_str()))
        {
            title.push(' ');
            title.push_str(&v);
        }
        title.push_str(" (ostree");
        if show_osname {
            title.push(':');
            title.push_str(&d.osname);
        }
        title.push_str(&format!(":{})", d.index));
        let bc = &mut d.bootconfig;
        bc.set("title", &title);
        bc.set("version", &(n - d.index).to_string());
        bc.set(
            "linux",
            &format!("/{bootcsumdir}/{}", layout.kernel_namever),
        );
        let mut kargs = KernelArgs::parse(bc.get("options").unwrap_or(""));
        if let Some(i) = &layout.initramfs_namever {
            bc.set("initrd", &format!("/{bootcsumdir}/{i}"));
        } else {
            kargs.replace(&format!(
                "init=/ostree/boot.{bootversion}/{}/{}/{}/usr/lib/ostree/ostree-prepare-root",
                d.osname, d.bootcsum, d.bootserial
            ));
        }
        match (&layout.devicetree_src, &layout.devicetree_namever) {
            (_, Some(n)) => bc.set("devicetree", &format!("/{bootcsumdir}/{n}")),
            (Some(s), None) => bc.set("fdtdir", &format!("/{bootcsumdir}/{s}")),
            _ => {}
        }
        kargs.replace(&format!(
            "ostree=/ostree/boot.{bootversion}/{}/{}/{}",
            d.osname, d.bootcsum, d.bootserial
        ));
        bc.set("options", &kargs.to_string());
        let file = entries.join(format!("ostree-{}-{}.conf", n - d.index, d.osname));
        fsutil::write_file(&file, bc.to_text().as_bytes(), 0o644)
    }

    /// Write every entry into the other `loader.N`, then swap.
    fn write_bootswap(&self, new: &mut [Deployment]) -> Result<u32> {
        let new_bv = 1 - self.bootversion;
        crate::space::check_boot_space(self, new)?;
        let entries = self.opts.path.join(format!("boot/loader.{new_bv}/entries"));
        fsutil::rm_rf(&entries)?;
        fsutil::mkdir_p(&entries, 0o755)?;
        let show_osname = new.iter().any(|d| d.osname != new[0].osname);
        let n = new.len();
        for d in new.iter_mut() {
            self.install_deployment_kernel(new_bv, d, n, show_osname)?;
        }
        crate::bootloader_grub::on_bootswap(self, new_bv, new)?;
        failpoint::hit("deploy:after-bls");
        let new_sub = self.create_new_bootlinks(new_bv, new)?;
        self.swap_bootlinks(new_bv, new_sub)?;
        let boot = self.opts.path.join("boot");
        match std::os::unix::fs::symlink(".", boot.join("boot")) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(&boot.join("boot"), e)),
        }
        fsutil::symlink_replace(&format!("loader.{new_bv}"), &boot.join("loader.tmp"))?;
        tracing::debug!("bootswap: entries and links written");
        self.full_sync()?;
        tracing::debug!("bootswap: synced");
        failpoint::hit("deploy:after-syncfs");
        // The commit point.
        std::fs::rename(boot.join("loader.tmp"), boot.join("loader"))
            .map_err(|e| Error::io(&boot.join("loader"), e))?;
        let bootdir = std::fs::File::open(&boot).map_err(|e| Error::io(&boot, e))?;
        bootdir.sync_all().map_err(|e| Error::io(&boot, e))?;
        failpoint::hit("deploy:after-swap");
        Ok(new_sub)
    }

    /// Make `new` the deployment list (index 0 is the default). With
    /// `postclean`, old deployments, boot dirs and unreferenced objects are
    /// removed afterwards.
    pub fn write_deployments(
        &mut self,
        new: Vec<Deployment>,
        postclean: bool,
    ) -> Result<WriteOutcome> {
        let mut removed_staged = self.staged.is_some();
        if let (Some(first), Some(staged)) = (new.first(), self.staged_deployment()) {
            if first.staged && first.same(staged) {
                removed_staged = false;
            }
        }
        let mut new: Vec<Deployment> = new.into_iter().filter(|d| !d.staged).collect();
        if removed_staged {
            if let Some(staged) = self.staged_deployment().cloned() {
                let run = &self.opts.run_dir;
                fsutil::rm_rf(&StagedState::path(run))?;
                fsutil::rm_rf(&self.deployment_path(&staged))?;
                fsutil::rm_rf(&self.opts.path.join(staged.origin_relpath()))?;
                fsutil::rm_rf(&run.join(STAGED_LOCKED))?;
                self.staged = None;
                self.deployments.remove(0);
            }
        }
        let nonstaged_len = self.deployments.len() - usize::from(self.staged.is_some());
        // Boot serials count deployments sharing a boot checksum.
        let mut serials: HashMap<String, u32> = HashMap::new();
        for d in new.iter_mut() {
            let c = serials.entry(d.bootcsum.clone()).or_insert(0);
            d.bootserial = *c;
            *c += 1;
        }
        let mut requires_new = new.len() != nonstaged_len;
        if !requires_new {
            let mut noop = true;
            for (i, nd) in new.iter().enumerate() {
                let Some(cur) = self.deployments.get(i) else {
                    break;
                };
                if cur.staged {
                    continue;
                }
                if !self.bootconfigs_equal(cur, nd) {
                    requires_new = true;
                    noop = false;
                    break;
                }
                if !cur.same(nd) || cur.bootserial != nd.bootserial {
                    noop = false;
                }
            }
            if noop {
                if removed_staged {
                    self.finish_write()?;
                }
                return Ok(WriteOutcome {
                    bootconfig_swap: false,
                    bootversion: self.bootversion,
                    subbootversion: self.subbootversion,
                    deployment_count_change: 0,
                });
            }
        }
        let booted = self.booted_deployment().cloned();
        for (i, d) in new.iter_mut().enumerate() {
            let p = self.deployment_path(d);
            if !p.is_dir() {
                return Err(Error::invalid(format!(
                    "Unable to find expected deployment root: {}",
                    p.display()
                )));
            }
            d.index = i;
        }
        if let Some(b) = &booted {
            if !new.iter().any(|d| d.same(b)) {
                return Err(Error::RemovesBooted(b.dirname()));
            }
        }
        for l in self.live_stack() {
            if !new.iter().any(|d| d.same(l)) {
                return Err(Error::RemovesLive(l.dirname()));
            }
        }
        let t = std::time::Instant::now();
        let (atomic, bv, sub) = if !requires_new {
            let sub = self.create_new_bootlinks(self.bootversion, &new)?;
            self.full_sync()?;
            failpoint::hit("deploy:after-syncfs");
            self.swap_bootlinks(self.bootversion, sub)?;
            failpoint::hit("deploy:after-swap");
            (true, self.bootversion, sub)
        } else {
            let sub = self.write_bootswap(&mut new)?;
            (false, 1 - self.bootversion, sub)
        };
        tracing::debug!(elapsed = ?t.elapsed(), "entries written, synced, swapped");
        let change = new.len() as i64 - self.deployments.len() as i64;
        self.message(&format!(
            "{}; bootconfig swap: {}; bootversion: boot.{bv}.{sub}, deployment count change: {change}",
            if atomic { "Transaction complete" } else { "Bootloader updated" },
            if requires_new { "yes" } else { "no" },
        ));
        self.finish_write()?;
        if postclean {
            self.cleanup(true)?;
        }
        Ok(WriteOutcome {
            bootconfig_swap: requires_new,
            bootversion: bv,
            subbootversion: sub,
            deployment_count_change: change,
        })
    }

    /// Bump the mtime of `ostree/deploy` (watchers), reload, drop legacy
    /// `current` links.
    pub(crate) fn finish_write(&mut self) -> Result<()> {
        self.bump_mtime()?;
        self.load()?;
        for d in &self.deployments {
            let p = self
                .opts
                .path
                .join(format!("ostree/deploy/{}/current", d.osname));
            if std::fs::symlink_metadata(&p).is_ok() {
                fsutil::rm_rf(&p)?;
            }
        }
        Ok(())
    }

    pub(crate) fn bump_mtime(&self) -> Result<()> {
        let p = self.opts.path.join("ostree/deploy");
        let now = rustix::fs::Timestamps {
            last_access: rustix::fs::Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_NOW,
            },
            last_modification: rustix::fs::Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_NOW,
            },
        };
        rustix::fs::utimensat(rustix::fs::CWD, &p, &now, rustix::fs::AtFlags::empty())
            .map_err(|e| Error::rio(&p, e))
    }

    /// Rewrite the entries of the current `loader.B` in place (no swap),
    /// as `ostree admin kargs edit-in-place` does.
    pub fn set_kargs_in_place(&mut self, index: usize, options: &str) -> Result<()> {
        let n = self.deployments.len();
        let d = self
            .deployments
            .get_mut(index)
            .ok_or(Error::IndexOutOfRange { index, len: n })?;
        if d.staged {
            let mut st = self.staged.clone().ok_or(Error::NotBooted)?;
            st.kargs = Some(KernelArgs::parse(options).to_vec());
            st.write(&self.opts.run_dir)?;
            self.staged = Some(st);
            return Ok(());
        }
        d.bootconfig.set("options", options);
        let file = self.opts.path.join(format!(
            "boot/loader.{}/entries/ostree-{}-{}.conf",
            self.bootversion,
            n - d.index,
            d.osname
        ));
        let text = d.bootconfig.to_text();
        fsutil::write_file(&file, text.as_bytes(), 0o644)?;
        kiln_store::util::syncfs(&self.opts.path.join("boot"))?;
        Ok(())
    }

    /// Replace the kernel arguments of one deployment (a new bootversion).
    pub fn set_kargs(&mut self, index: usize, args: &[String]) -> Result<WriteOutcome> {
        let d = self.deployment(index)?.clone();
        if d.staged {
            return Err(Error::invalid(
                "Cannot set kernel arguments of a staged deployment this way",
            ));
        }
        let mut k = KernelArgs::new();
        k.append_all(args.iter().map(String::as_str));
        let mut list = self.deployments.clone();
        let mut bc: BootEntry = list[index].bootconfig.clone();
        bc.set("options", &k.to_string());
        list[index].bootconfig = bc;
        self.write_deployments(list, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release() {
        let m =
            parse_os_release("ID=fakeos\nPRETTY_NAME=\"Fake OS 2\"\n#X=1\nNAME='a b'\nV=a\\ b\n");
        assert_eq!(m["ID"], "fakeos");
        assert_eq!(m["PRETTY_NAME"], "Fake OS 2");
        assert_eq!(m["NAME"], "a b");
        assert_eq!(m["V"], "a b");
        assert!(!m.contains_key("#X"));
    }
}
