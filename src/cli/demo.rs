//! `kiln demo`: kiln's main job on an embedded default, in a scratch
//! directory, with nothing to prepare. Every step is a real kiln command,
//! printed before it runs, so the demo doubles as a tutorial.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Scratch directory (default: a new one under $TMPDIR); kept afterwards.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// The built-in tree: a tiny OS-like layout.
const FILES_V1: &[(&str, &str)] = &[
    ("usr/bin/hello", "#!/bin/sh\necho 'hello from kiln v1'\n"),
    (
        "usr/lib/os-release",
        "ID=kilndemo\nNAME=\"kiln demo\"\nVERSION_ID=1\nPRETTY_NAME=\"kiln demo 1\"\n",
    ),
    ("usr/etc/motd", "Welcome to the kiln demo, version 1.\n"),
    ("usr/etc/hostname", "kiln-demo\n"),
    (
        "usr/share/doc/kiln/README",
        "A demo tree committed by `kiln demo`.\n",
    ),
    (
        "usr/lib/modules/6.1.0-demo/vmlinuz",
        "not a real kernel (demo)\n",
    ),
    (
        "usr/lib/modules/6.1.0-demo/initramfs.img",
        "not a real initramfs (demo)\n",
    ),
];

fn write_tree(root: &Path, files: &[(&str, &str)]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for (path, content) in files {
        let p = root.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).with_context(|| parent.display().to_string())?;
        }
        std::fs::write(&p, content).with_context(|| p.display().to_string())?;
        if path.starts_with("usr/bin/") {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    std::os::unix::fs::symlink("../lib/os-release", root.join("usr/etc/os-release")).ok();
    Ok(())
}

/// `kiln serve` running in the background for the demo.
struct Server {
    child: std::process::Child,
    url: String,
}

impl Server {
    fn start(exe: &Path, repo: &str) -> Result<Server> {
        use std::io::BufRead;
        let mut child = Command::new(exe)
            .args(["serve", "--port", "0", repo])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting kiln serve")?;
        let stdout = child.stdout.take().context("kiln serve has no stdout")?;
        let mut line = String::new();
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(str::to_string)
            .with_context(|| format!("kiln serve printed {line:?}, not its URL"))?;
        println!("\n(kiln serve {repo} is listening on {url})");
        Ok(Server { child, url })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Runner {
    exe: PathBuf,
    step: usize,
}

impl Runner {
    fn run(&mut self, title: &str, args: &[&str]) -> Result<String> {
        self.step += 1;
        println!("\n== {}. {title}", self.step);
        println!("$ kiln {}", args.join(" "));
        let out = Command::new(&self.exe)
            .args(args)
            .output()
            .with_context(|| format!("running kiln {}", args.join(" ")))?;
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        print!("{stdout}");
        if !out.stderr.is_empty() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
        }
        if !out.status.success() {
            bail!("step {} failed: kiln {}", self.step, args.join(" "));
        }
        Ok(stdout)
    }
}

pub fn run(a: DemoArgs) -> Result<ExitCode> {
    let dir = match a.dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("kiln-demo-{}", std::process::id())),
    };
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!(
            "{} exists and is not empty; pick another --dir",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let d = |p: &str| dir.join(p).display().to_string();
    println!("kiln demo in {}", dir.display());
    let mut r = Runner {
        exe: std::env::current_exe()?,
        step: 0,
    };
    let repo = d("repo");
    let tree = dir.join("tree");
    write_tree(&tree, FILES_V1)?;

    r.run(
        "Create a repository (archive mode, as served over HTTP)",
        &["repo", "init", "--repo", &repo, "--mode=archive"],
    )?;
    let v1 = r.run(
        "Commit the built-in tree as version 1",
        &[
            "repo",
            "commit",
            "--repo",
            &repo,
            "-b",
            "demo/stable",
            "-s",
            "Version 1",
            "--add-metadata-string=version=1",
            "--timestamp=2026-01-01T00:00:00Z",
            &tree.display().to_string(),
        ],
    )?;
    // Change the tree: edit, add, remove.
    std::fs::write(
        tree.join("usr/bin/hello"),
        "#!/bin/sh\necho 'hello from kiln v2'\n",
    )?;
    std::fs::write(
        tree.join("usr/etc/motd"),
        "Welcome to the kiln demo, version 2.\n",
    )?;
    std::fs::write(tree.join("usr/bin/goodbye"), "#!/bin/sh\necho bye\n")?;
    std::fs::remove_file(tree.join("usr/share/doc/kiln/README"))?;
    let v2 = r.run(
        "Commit the changed tree as version 2",
        &[
            "repo",
            "commit",
            "--repo",
            &repo,
            "-b",
            "demo/stable",
            "-s",
            "Version 2",
            "--add-metadata-string=version=2",
            "--timestamp=2026-02-01T00:00:00Z",
            &tree.display().to_string(),
        ],
    )?;
    r.run(
        "History of the branch",
        &["repo", "log", "--repo", &repo, "demo/stable"],
    )?;
    r.run(
        "What changed between the versions",
        &["repo", "diff", "--repo", &repo, v1.trim(), v2.trim()],
    )?;
    r.run(
        "List the tree of version 2",
        &["repo", "ls", "--repo", &repo, "-R", "demo/stable", "/usr"],
    )?;
    r.run(
        "Read one file straight from the store",
        &[
            "repo",
            "cat",
            "--repo",
            &repo,
            "demo/stable",
            "/usr/bin/hello",
        ],
    )?;
    let co = d("checkout-v1");
    r.run(
        "Check out version 1",
        &["repo", "checkout", "--repo", &repo, "-U", v1.trim(), &co],
    )?;
    let hello = std::fs::read_to_string(Path::new(&co).join("usr/bin/hello"))?;
    if !hello.contains("v1") {
        bail!("checkout of version 1 does not contain version 1's files");
    }
    println!(
        "checked-out usr/bin/hello says: {}",
        hello.lines().last().unwrap_or("")
    );
    r.run(
        "Verify every object in the repository",
        &["repo", "fsck", "--repo", &repo],
    )?;

    // Transfers: serve the archive repo over HTTP and pull it into a
    // "machine" repo, version 1 first, then only what version 2 adds.
    let server = Server::start(&r.exe, &repo)?;
    let machine = d("machine-repo");
    r.run(
        "A machine's repository (bare-user)",
        &["repo", "init", "--repo", &machine, "--mode=bare-user"],
    )?;
    r.run(
        "Point it at the server (`kiln serve`, a small static HTTP server)",
        &[
            "repo",
            "remote",
            "add",
            "--repo",
            &machine,
            "--no-gpg-verify",
            "origin",
            &server.url,
        ],
    )?;
    let v1_ref = format!("demo/stable@{}", v1.trim());
    r.run(
        "Pull version 1",
        &["repo", "pull", "--repo", &machine, "origin", &v1_ref],
    )?;
    r.run(
        "Pull version 2: only the objects the machine lacks move",
        &["repo", "pull", "--repo", &machine, "origin", "demo/stable"],
    )?;
    r.run(
        "The machine's copy of the history",
        &["repo", "log", "--repo", &machine, "origin:demo/stable"],
    )?;
    drop(server);
    println!(
        "\nDone. Everything is in {} (remove it when you like).",
        dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
