//! `kiln serve REPO`: a small static HTTP server for an archive repo.

use anyhow::{Context, Result};
use clap::Args;
use kiln_remote::serve::{ServeOptions, Server};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The directory to serve (an archive repo).
    pub repo: PathBuf,
    /// TCP port (0 picks a free one).
    #[arg(long, short = 'p', default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Connections served at once.
    #[arg(long, default_value_t = 256)]
    pub max_connections: usize,
}

pub fn run(a: ServeArgs) -> Result<ExitCode> {
    let server = Server::bind(ServeOptions {
        root: a.repo.clone(),
        addr: std::net::SocketAddr::new(a.bind, a.port),
        max_connections: a.max_connections.max(1),
        idle_timeout: Duration::from_secs(60),
    })
    .with_context(|| format!("serving {}", a.repo.display()))?;
    let addr = server.local_addr()?;
    println!("Serving {} on http://{addr}/", a.repo.display());
    let _ = std::io::Write::flush(&mut std::io::stdout());
    server.run()?;
    Ok(ExitCode::SUCCESS)
}
