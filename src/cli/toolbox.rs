//! `kiln toolbox`: mutable development containers (verbs of Toolbox).
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use kiln_toolbox::{CreateOptions, Event, HostUser, ImageChoice, RunSpec, Toolbox};
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ToolboxArgs {
    #[command(subcommand)]
    pub command: ToolboxCommand,
}

/// Which distribution/release picks the default image and container name.
#[derive(Args, Debug, Clone)]
pub struct DistroArgs {
    /// Distribution of the default image (only "debian").
    #[arg(short = 'd', long, default_value = "debian")]
    pub distro: String,
    /// Release of the default image.
    #[arg(short = 'r', long, default_value = "bookworm")]
    pub release: String,
}

#[derive(Subcommand, Debug)]
pub enum ToolboxCommand {
    /// Create a toolbox container (default name: debian-toolbox-12).
    Create {
        /// Name of the new container.
        name: Option<String>,
        #[command(flatten)]
        distro: DistroArgs,
        /// An OCI image layout directory, an archive of one, or a registry
        /// reference (fetched with skopeo) instead of the default image.
        #[arg(short = 'i', long)]
        image: Option<String>,
    },
    /// Enter a toolbox container for interactive use (your login shell).
    Enter {
        /// Container to enter (default: debian-toolbox-12).
        name: Option<String>,
        #[command(flatten)]
        distro: DistroArgs,
    },
    /// Run a command in a toolbox container; its exit code is passed through.
    Run {
        /// Container to run in (default: debian-toolbox-12).
        #[arg(short = 'c', long = "container")]
        container: Option<String>,
        #[command(flatten)]
        distro: DistroArgs,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<OsString>,
    },
    /// List toolbox images and containers.
    #[command(alias = "ls")]
    List {
        /// Print JSON (schema in docs/toolbox.md).
        #[arg(long)]
        json: bool,
        /// List only containers.
        #[arg(short = 'c', long)]
        containers: bool,
        /// List only images.
        #[arg(short = 'i', long)]
        images: bool,
    },
    /// Remove toolbox containers.
    Rm {
        /// Stop running containers first.
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove a toolbox image (by name, id or id prefix).
    Rmi {
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Stop a running toolbox container and everything running in it.
    Stop { name: String },
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

fn data_dir(user: &HostUser) -> PathBuf {
    if let Some(dir) = env_path("KILN_TOOLBOX_DIR") {
        return dir;
    }
    if user.uid == 0 {
        return PathBuf::from("/var/lib/kiln/toolbox");
    }
    let data = env_path("XDG_DATA_HOME")
        .or_else(|| env_path("HOME").map(|h| h.join(".local/share")))
        .unwrap_or_else(|| user.home.join(".local/share"));
    data.join("kiln").join("toolbox")
}

fn default_name(distro: &DistroArgs) -> anyhow::Result<String> {
    Ok(image_choice(distro, None)?.default_container_name())
}

fn image_choice(distro: &DistroArgs, image: Option<&str>) -> anyhow::Result<ImageChoice> {
    if let Some(image) = image {
        return Ok(ImageChoice::Oci(image.to_string()));
    }
    if distro.distro != "debian" {
        bail!(
            "distribution {:?} is not supported (only debian; use --image for others)",
            distro.distro
        );
    }
    Ok(ImageChoice::Debian {
        release: distro.release.clone(),
    })
}

fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(1))
}

pub fn run(args: ToolboxArgs) -> anyhow::Result<ExitCode> {
    let mut user = HostUser::current().context("cannot find out who you are")?;
    if let Some(home) = env_path("HOME") {
        user.home = home;
    }
    if let Some(shell) = env_path("SHELL") {
        user.shell = shell;
    }
    let toolbox = Toolbox::new(data_dir(&user), user);
    match args.command {
        ToolboxCommand::Create {
            name,
            distro,
            image,
        } => {
            let choice = image_choice(&distro, image.as_deref())?;
            let name = name.unwrap_or_else(|| choice.default_container_name());
            let opts = CreateOptions {
                name: name.clone(),
                image: choice,
                locale: std::env::var("LANG").ok(),
                show_tool_output: std::io::stderr().is_terminal(),
                failpoint: std::env::var("KILN_FAILPOINT").ok(),
            };
            let mut on_event = |e: Event| match e {
                Event::BuildingImage { name, id } => {
                    eprintln!(
                        "Building image {name} ({id}) with mmdebstrap; this takes a minute or two…"
                    )
                }
                Event::FetchingImage { reference } => {
                    eprintln!("Fetching {reference} with skopeo…")
                }
                Event::UnpackingLayer { index, total } => {
                    eprintln!("Unpacking layer {index}/{total}…")
                }
                Event::ImageReady { id, size } => {
                    eprintln!("Image {id} ready ({}).", human_size(size))
                }
            };
            toolbox
                .create(&opts, &mut on_event)
                .with_context(|| format!("cannot create toolbox container {name}"))?;
            println!("Created container: {name}");
            println!("Enter with: kiln toolbox enter {name}");
            Ok(ExitCode::SUCCESS)
        }
        ToolboxCommand::Enter { name, distro } => {
            let name = match name {
                Some(n) => n,
                None => default_name(&distro)?,
            };
            run_in(&toolbox, &name, Vec::new())
        }
        ToolboxCommand::Run {
            container,
            distro,
            command,
        } => {
            let name = match container {
                Some(n) => n,
                None => default_name(&distro)?,
            };
            run_in(&toolbox, &name, command)
        }
        ToolboxCommand::List {
            json,
            containers,
            images,
        } => {
            let mut out = toolbox.list()?;
            if containers && !images {
                out.images.clear();
            }
            if images && !containers {
                out.containers.clear();
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&out)?);
                return Ok(ExitCode::SUCCESS);
            }
            let show_images = !containers || images;
            let show_containers = !images || containers;
            if show_images {
                println!(
                    "{:<30} {:<20} {:<21} {:>9}  CONTAINERS",
                    "IMAGE ID", "IMAGE NAME", "CREATED", "SIZE"
                );
                for i in &out.images {
                    println!(
                        "{:<30} {:<20} {:<21} {:>9}  {}",
                        i.id,
                        i.name,
                        i.created,
                        human_size(i.size),
                        i.containers.len()
                    );
                }
            }
            if show_images && show_containers {
                println!();
            }
            if show_containers {
                println!(
                    "{:<24} {:<8} {:<21} {:>9}  IMAGE NAME",
                    "CONTAINER NAME", "STATUS", "CREATED", "SIZE"
                );
                for c in &out.containers {
                    println!(
                        "{:<24} {:<8} {:<21} {:>9}  {}",
                        c.name,
                        if c.running { "running" } else { "stopped" },
                        c.created,
                        human_size(c.size),
                        c.image
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ToolboxCommand::Rm { force, names } => {
            let mut failed = false;
            for name in &names {
                if let Err(e) = toolbox.remove(name, force) {
                    crate::cli::report_error(
                        &anyhow::Error::new(e).context(format!("cannot remove {name}")),
                    );
                    failed = true;
                }
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        ToolboxCommand::Rmi { images } => {
            let mut failed = false;
            for image in &images {
                match toolbox.remove_image(image) {
                    Ok(meta) => println!("Removed image {} ({})", meta.name, meta.id),
                    Err(e) => {
                        crate::cli::report_error(
                            &anyhow::Error::new(e).context(format!("cannot remove image {image}")),
                        );
                        failed = true;
                    }
                }
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        ToolboxCommand::Stop { name } => {
            if !toolbox.stop(&name)? {
                eprintln!("{name} was not running");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_in(toolbox: &Toolbox, name: &str, argv: Vec<OsString>) -> anyhow::Result<ExitCode> {
    let spec = RunSpec {
        argv,
        env: std::env::vars_os().collect(),
        cwd: std::env::current_dir().unwrap_or_else(|_| toolbox.user().home.clone()),
        runtime_dir: env_path("XDG_RUNTIME_DIR"),
    };
    match toolbox.run(name, &spec) {
        Ok(code) => Ok(exit_code(code)),
        Err(e @ kiln_toolbox::Error::CommandNotFound { .. }) => {
            crate::cli::report_error(&anyhow::Error::new(e));
            Ok(ExitCode::from(127))
        }
        Err(e @ kiln_toolbox::Error::NoSuchContainer(_)) => Err(anyhow::Error::new(e).context(
            format!("cannot run in {name} (create it with: kiln toolbox create {name})"),
        )),
        Err(e) => {
            Err(anyhow::Error::new(e).context(format!("cannot run in toolbox container {name}")))
        }
    }
}
