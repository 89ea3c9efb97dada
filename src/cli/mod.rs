//! Command-line front end: the only part of kiln that prints.

pub mod admin;
pub mod app;
pub mod boot;
pub mod compose;
pub mod delta;
pub mod demo;
pub mod install;
pub mod layer;
pub mod progress;
pub mod remote;
pub mod repo;
pub mod serve;
pub mod system;
pub mod toolbox;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "kiln",
    version,
    about = "Atomic, image-based Linux: an OSTree-compatible store, deployments, apps and toolboxes"
)]
pub struct Cli {
    /// More logging (repeat for more); RUST_LOG also works.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run kiln's main job on a built-in tree in a scratch directory.
    Demo(demo::DemoArgs),
    /// OSTree repository verbs (`ostree`'s verbs and flags).
    Repo(repo::RepoArgs),
    /// Mutable development containers sharing your $HOME.
    Toolbox(toolbox::ToolboxArgs),
    /// OSTree sysroot verbs (`ostree admin`'s verbs and flags).
    Admin(admin::AdminArgs),
    /// Make OSTree OS trees from Debian (a root file system or a manifest).
    Compose(compose::ComposeArgs),
    /// Layer Debian packages onto the deployment, or install to a disk (`to-disk`).
    Install(install::InstallArgs),
    /// Bootloader: boot counting, marking a boot good, the GRUB menu.
    Boot(boot::BootArgs),
    /// Flatpak-compatible apps (`flatpak`'s verbs and flags).
    App(Box<app::AppArgs>),
    #[command(flatten)]
    System(system::SystemCommand),
    #[command(flatten)]
    Layer(layer::LayerCommand),
    /// Serve an archive repo over HTTP (GET/HEAD, ranges, keep-alive).
    Serve(serve::ServeArgs),
}

pub fn main() -> ExitCode {
    quiet_broken_pipe();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `kiln app run` starts every app: no clap tree, no logging set-up (the
    // launch path logs nothing) when its arguments are in a simple form.
    let result = if let Some((app, opts)) = app::fast_run_args(&argv) {
        set_failpoint();
        app::run_app(&app, &opts)
    } else {
        let cli = Cli::parse_from(argv);
        init_logging(cli.verbose);
        set_failpoint();
        dispatch(cli)
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            report_error(&err);
            ExitCode::from(1)
        }
    }
}

/// `kiln status | head -1`: Rust ignores SIGPIPE, so `println!` to a
/// closed pipe panics. The reader has gone and wants nothing more; end as a
/// shell tool would (status 141, as if killed by SIGPIPE), silently. Every
/// other panic keeps the default report. (Only stdout printing is covered:
/// kiln's own pipes to child processes still see EPIPE as an error.)
fn quiet_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn set_failpoint() {
    if let Some(fp) = std::env::var_os("KILN_FAILPOINT") {
        kiln_store::failpoint::set(&fp.to_string_lossy());
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Repo(args) => repo::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Toolbox(args) => toolbox::run(args),
        Command::Admin(args) => admin::run(args),
        Command::Compose(args) => compose::run(args),
        Command::Install(args) => install::run(args),
        Command::Boot(args) => boot::run(args),
        Command::App(args) => app::run(*args),
        Command::System(c) => system::run(c, cli.verbose),
        Command::Layer(c) => layer::run(c),
        Command::Serve(args) => serve::run(args),
    }
}

/// Print one `error: ...` line with the cause chain, like ostree.
pub fn report_error(err: &anyhow::Error) {
    let mut msg = format!("error: {err}");
    for cause in err.chain().skip(1) {
        // Errors that print their source ("PATH: {source}") and also
        // return it from source() would repeat it.
        let cause = cause.to_string();
        if !msg.contains(&cause) {
            msg.push_str(": ");
            msg.push_str(&cause);
        }
    }
    eprintln!("{msg}");
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}
