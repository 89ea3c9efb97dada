//! `kiln boot …`: the bootloader side of a kiln system — boot counting
//! state, marking a boot good, regenerating the GRUB menu.

use super::admin::open;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use kiln_sysroot::bootloader_grub;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct BootArgs {
    #[command(subcommand)]
    pub cmd: BootCmd,
}

#[derive(Subcommand, Debug)]
pub enum BootCmd {
    /// Boot counting: the deployment on trial, tries left, a failed trial.
    Status {
        #[arg(long)]
        sysroot: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// This boot is healthy: end the booted deployment's trial (run by
    /// kiln-boot-complete.service after boot-complete.target).
    MarkGood {
        #[arg(long)]
        sysroot: Option<PathBuf>,
    },
    /// Write the GRUB menu of a loader directory from its BLS entries
    /// (after `ostree admin` changed deployments; `-o` as libostree passes
    /// it through OSTREE_GRUB2_EXEC).
    UpdateGrub {
        #[arg(long)]
        sysroot: Option<PathBuf>,
        /// Output file, `SYSROOT/boot/loader.N/grub.cfg` (default: the
        /// current loader's).
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
}

pub fn run(a: BootArgs) -> Result<ExitCode> {
    match a.cmd {
        BootCmd::Status { sysroot, json } => {
            let s = open(sysroot)?;
            let h = s.boot_health();
            if json {
                println!("{}", serde_json::to_string_pretty(&h)?);
            } else if !h.enabled {
                println!("Boot counting: off (no /boot/grub/grubenv)");
            } else {
                println!(
                    "{}",
                    h.note()
                        .unwrap_or_else(|| "Boot counting: no deployment on trial".into())
                );
                if let Some(g) = &h.last_good {
                    println!("Last good boot: {g}");
                }
            }
        }
        BootCmd::MarkGood { sysroot } => {
            let s = open(sysroot)?;
            if let Some(msg) = s.mark_boot_good()? {
                println!("{msg}");
            }
        }
        BootCmd::UpdateGrub { sysroot, output } => {
            let (loader, out, root) = match output {
                Some(o) => {
                    let loader = o
                        .parent()
                        .context("-o needs a path inside boot/loader.N")?
                        .to_path_buf();
                    let root = loader
                        .parent()
                        .and_then(|b| b.parent())
                        .map(|p| p.to_path_buf());
                    (loader, o, root)
                }
                None => {
                    let root = sysroot.unwrap_or_else(|| PathBuf::from("/"));
                    let loader = std::fs::canonicalize(root.join("boot/loader"))
                        .context("resolving boot/loader")?;
                    (loader.clone(), loader.join("grub.cfg"), Some(root))
                }
            };
            bootloader_grub::write_config_for_loader(&loader, &out, root.as_deref())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
