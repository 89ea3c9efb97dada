//! `kiln install to-disk DEVICE|IMAGE --source REF|COMMIT`; `kiln install
//! PKG…` (package layering) is a later piece of work.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use kiln_compose::install::{install_to_disk, InstallOptions};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct InstallArgs {
    #[command(subcommand)]
    pub cmd: Option<InstallCmd>,
    /// Packages to layer onto the booted deployment.
    pub packages: Vec<String>,
    #[command(flatten)]
    pub layer: super::layer::LayerFlags,
}

#[derive(Subcommand, Debug)]
pub enum InstallCmd {
    /// Partition a disk or image (GPT: ESP, /boot, root), make file
    /// systems, deploy REF|COMMIT and install GRUB.
    ToDisk(ToDiskArgs),
}

#[derive(Args, Debug)]
pub struct ToDiskArgs {
    /// Block device or image file (with --size: a new image file).
    pub target: PathBuf,
    /// REF or COMMIT to deploy (a ref becomes the origin `kiln upgrade` follows).
    #[arg(long)]
    pub source: String,
    /// Repository holding the source.
    #[arg(long, default_value = "/ostree/repo")]
    pub repo: PathBuf,
    /// Create a raw image file of this size (e.g. 4G, 2048M).
    #[arg(long, value_parser = parse_size)]
    pub size: Option<u64>,
    /// Stateroot (OS) name.
    #[arg(long, default_value = "debian")]
    pub stateroot: String,
    /// Kernel argument (repeatable), after root=UUID=… rw.
    #[arg(long = "karg", value_name = "KARG")]
    pub kargs: Vec<String>,
    /// Where the sysroot is staged before the file systems are made.
    #[arg(long, default_value = "/var/tmp")]
    pub work_dir: PathBuf,
    /// GRUB menu timeout in seconds.
    #[arg(long, default_value_t = 2)]
    pub timeout: u32,
    /// Boots a new deployment gets to become healthy (0: no boot counting).
    #[arg(long)]
    pub boot_tries: Option<u32>,
    #[arg(long)]
    pub json: bool,
}

/// `4G`, `512M`, `1024K` or bytes (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mul) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = s[i..].to_ascii_uppercase();
            let mul: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ => return Err(format!("unknown size unit in {s:?} (use K, M, G or T)")),
            };
            (&s[..i], mul)
        }
        None => (s, 1),
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a size"))?;
    n.checked_mul(mul)
        .ok_or_else(|| format!("{s:?} is too large"))
}

pub fn run(a: InstallArgs) -> Result<ExitCode> {
    let Some(InstallCmd::ToDisk(t)) = a.cmd else {
        if a.packages.is_empty() {
            bail!("nothing to install: give `to-disk TARGET --source REF` or package names");
        }
        return super::layer::install(a.packages, a.layer);
    };
    let opts = InstallOptions {
        target: t.target.clone(),
        size: t.size,
        source_repo: t.repo,
        source: t.source,
        osname: t.stateroot,
        kargs: t.kargs,
        work_dir: t.work_dir,
        timeout_secs: t.timeout,
        boot_tries: t.boot_tries,
    };
    let json = t.json;
    let log = |s: &str| {
        if json {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    };
    let r = install_to_disk(&opts, &log)
        .with_context(|| format!("installing to {}", t.target.display()))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "Installed {} ({}) on {}",
            r.deployment,
            r.commit,
            r.target.display()
        );
        for p in &r.partitions {
            println!(
                "  {:>5}: offset {} size {} MiB, UUID {}",
                p.name,
                p.start,
                p.size >> 20,
                p.fs_uuid
            );
        }
        println!("  kernel arguments: {}", r.kargs);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::parse_size("4G"), Ok(4 << 30));
        assert_eq!(super::parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(super::parse_size("1000"), Ok(1000));
        assert!(super::parse_size("4X").is_err());
    }
}
