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
    /// Internal: run only the deployment part, inside a user namespace, from
    /// this server URL and version-1 commit.
    #[arg(long, hide = true, num_args = 3, value_names = ["URL", "COMMIT", "STEP"])]
    pub sysroot_stage: Option<Vec<String>>,
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
    if let (Some(stage), Some(dir)) = (&a.sysroot_stage, &a.dir) {
        let [url, v1, step] = stage.as_slice() else {
            bail!("--sysroot-stage takes URL, COMMIT and STEP")
        };
        let mut r = Runner {
            exe: std::env::current_exe()?,
            step: step.parse().unwrap_or(0),
        };
        sysroot_stage(&mut r, dir, url, v1, true)?;
        return Ok(ExitCode::SUCCESS);
    }
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
            "--owner-uid=0",
            "--owner-gid=0",
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
            "--owner-uid=0",
            "--owner-gid=0",
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
    // Deployments: a scratch sysroot gets version 1, upgrades to version 2
    // from the server, and rolls back.
    let sysroot = dir.join("sysroot");
    if rustix::process::geteuid().is_root() {
        sysroot_stage(&mut r, &sysroot, &server.url, v1.trim(), false)?;
    } else {
        // Deployments are root-owned and sealed with chattr +i: as an
        // ordinary user, run this part as root of a user namespace, on a
        // tmpfs mounted inside it.
        println!(
            "\n(not root: the deployment steps run in a user namespace, on a ramfs that \
             disappears when they end)"
        );
        std::fs::create_dir_all(&sysroot)?;
        let status = Command::new("unshare")
            .args(["--user", "--map-root-user", "--mount", "--"])
            .arg(&r.exe)
            .args(["demo", "--dir"])
            .arg(&sysroot)
            .args([
                "--sysroot-stage",
                &server.url,
                v1.trim(),
                &r.step.to_string(),
            ])
            .status()
            .context("running unshare (util-linux) for the deployment steps")?;
        if !status.success() {
            bail!("the deployment steps failed (or user namespaces are disabled here: run the demo as root)");
        }
    }
    drop(server);
    println!("\nDone. Everything is in {}.", dir.display());
    if rustix::process::geteuid().is_root() {
        println!(
            "Deployment roots are immutable, as on a real system; to remove it all:\n  \
             chattr -R -i {0} && rm -rf {0}",
            dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Deploy v1 into a fresh sysroot, upgrade to v2, show status and diff,
/// roll back, show status again.
fn sysroot_stage(
    r: &mut Runner,
    sysroot: &Path,
    url: &str,
    v1: &str,
    in_namespace: bool,
) -> Result<()> {
    if in_namespace {
        rustix::mount::mount(
            "ramfs",
            sysroot,
            "ramfs",
            rustix::mount::MountFlags::empty(),
            None,
        )
        .with_context(|| format!("mounting a ramfs on {}", sysroot.display()))?;
    }
    let s = sysroot.display().to_string();
    let sr = format!("--sysroot={s}");
    let repo = sysroot.join("ostree/repo").display().to_string();
    std::fs::create_dir_all(sysroot)?;
    r.run(
        "A scratch sysroot (the layout of an installed machine)",
        &["admin", "init-fs", &s],
    )?;
    r.run(
        "A stateroot for the demo OS",
        &["admin", "os-init", "demo", &sr],
    )?;
    r.run(
        "The machine's repo follows the server",
        &[
            "repo",
            "remote",
            "add",
            "--repo",
            &repo,
            "--no-gpg-verify",
            "origin",
            url,
        ],
    )?;
    let v1_ref = format!("demo/stable@{v1}");
    r.run(
        "Pull version 1",
        &["repo", "pull", "--repo", &repo, "origin", &v1_ref],
    )?;
    r.run(
        "Deploy it: a hardlinked checkout, /etc, boot entries, one atomic swap",
        &[
            "admin",
            "deploy",
            &sr,
            "--os=demo",
            "origin:demo/stable",
            "--karg=root=LABEL=root",
        ],
    )?;
    r.run("Status", &["status", &sr])?;
    // A local /etc change, to see it carried across the upgrade.
    let deploy_dir = sysroot.join("ostree/deploy/demo/deploy");
    for e in std::fs::read_dir(&deploy_dir)? {
        let p = e?.path();
        if p.is_dir() {
            std::fs::write(p.join("etc/local.conf"), "edited=on v1\n")?;
            println!(
                "\n(edited {}/etc/local.conf on the running version)",
                p.display()
            );
        }
    }
    r.run(
        "Upgrade: pull version 2 from the origin and deploy it",
        &["upgrade", &sr],
    )?;
    r.run(
        "Status: version 2 boots next, version 1 stays as the rollback",
        &["status", &sr],
    )?;
    r.run("What the upgrade changes", &["diff", &sr])?;
    let kept = std::fs::read_dir(&deploy_dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("etc/local.conf"))
        .filter(|p| p.exists())
        .count();
    println!(
        "\n(/etc/local.conf is in {kept} deployments: the local change was merged into version 2)"
    );
    r.run(
        "Roll back: version 1 boots next, nothing is deleted",
        &["rollback", &sr],
    )?;
    r.run("Status after the rollback", &["status", &sr])?;
    Ok(())
}
