//! `kiln toolbox`: placeholder owned by the toolbox work.
use clap::Args;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ToolboxArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

pub fn run(_args: ToolboxArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("kiln toolbox is not built yet")
}
