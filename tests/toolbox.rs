//! `kiln toolbox` for real: an unprivileged user with subordinate id ranges
//! creates containers from the default Debian image (built once by
//! mmdebstrap and cached in /var/cache/kiln-tests), runs commands, installs
//! a package with sudo inside, enters through a terminal (tmux), and
//! removes them; OCI images with whiteouts, malformed images, races and
//! crashes. Needs root (to create the test user) and mmdebstrap, uidmap,
//! tmux, busybox-static; under CI (KILN_CI or CI set) a missing piece fails
//! the test instead of skipping it.

use kiln_toolbox::{ContainerInfo, ListOutput};
use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const USER: &str = "kilntb";
const NOSUB_USER: &str = "kilntbnosub";
const CACHE: &str = "/var/cache/kiln-tests";

struct Env {
    bin: PathBuf,
    home: PathBuf,
    uid: u32,
    gid: u32,
    data: PathBuf,
}

fn in_ci() -> bool {
    std::env::var_os("KILN_CI").is_some() || std::env::var_os("CI").is_some()
}

/// Skip loudly, or fail under CI.
fn unavailable(what: &str) -> Option<&'static Env> {
    if in_ci() {
        panic!("toolbox tests need {what}");
    }
    eprintln!("SKIPPED toolbox test: needs {what}");
    None
}

fn sh(cmd: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("run sh")
}

fn id_of(user: &str, flag: &str) -> Option<u32> {
    let out = Command::new("id").arg(flag).arg(user).output().ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn ensure_user(user: &str, with_subids: bool) {
    if id_of(user, "-u").is_none() {
        let out = sh(&format!("useradd -m -s /bin/bash {user}"));
        assert!(out.status.success(), "useradd {user}: {out:?}");
    }
    for file in ["/etc/subuid", "/etc/subgid"] {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let has = text.lines().any(|l| l.split(':').next() == Some(user));
        if with_subids && !has {
            let end = text
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    Some(f.get(1)?.parse::<u64>().ok()? + f.get(2)?.parse::<u64>().ok()?)
                })
                .max()
                .unwrap_or(100_000)
                .max(100_000);
            let mut text = text.clone();
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!("{user}:{end}:65536\n"));
            write_atomically(file, &text);
        }
        if !with_subids && has {
            let kept: String = text
                .lines()
                .filter(|l| l.split(':').next() != Some(user))
                .map(|l| format!("{l}\n"))
                .collect();
            write_atomically(file, &kept);
        }
    }
}

/// Readers never see a half-written /etc/subuid.
fn write_atomically(path: &str, text: &str) {
    let tmp = format!("{path}.kiln-test");
    std::fs::write(&tmp, text).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn env() -> Option<&'static Env> {
    static ENV: OnceLock<Option<Env>> = OnceLock::new();
    ENV.get_or_init(|| {
        if !rustix_is_root() {
            unavailable("root (to create the test user)");
            return None;
        }
        for tool in [
            "/usr/bin/mmdebstrap",
            "/usr/bin/newuidmap",
            "/usr/bin/tmux",
            "/usr/sbin/runuser",
        ] {
            if !Path::new(tool).exists() {
                unavailable(tool);
                return None;
            }
        }
        // Both users are set up here, before tests run in parallel: other
        // tests read /etc/subuid while this writes it.
        ensure_user(USER, true);
        ensure_user(NOSUB_USER, false);
        std::fs::create_dir_all(format!("{CACHE}/bin")).unwrap();
        for d in [CACHE.to_string(), format!("{CACHE}/bin")] {
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // The test user cannot read target/: give it its own copy, renamed
        // into place (a running container's init may still use the old one).
        let bin = PathBuf::from(format!("{CACHE}/bin/kiln"));
        let tmp = PathBuf::from(format!("{CACHE}/bin/.kiln-{}", std::process::id()));
        std::fs::copy(env!("CARGO_BIN_EXE_kiln"), &tmp).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&tmp, &bin).unwrap();
        let uid = id_of(USER, "-u").unwrap();
        let gid = id_of(USER, "-g").unwrap();
        // A session's runtime directory, as logind would make it.
        let runtime = format!("/run/user/{uid}");
        std::fs::create_dir_all(&runtime).unwrap();
        sh(&format!(
            "chmod 755 /run/user && chown {USER}: {runtime} && chmod 700 {runtime}"
        ));
        // Kept across runs: the default image is built once.
        let data = PathBuf::from(format!("{CACHE}/{USER}-data"));
        std::fs::create_dir_all(&data).unwrap();
        sh(&format!("chown {USER}: {}", data.display()));
        let env = Env {
            bin,
            home: PathBuf::from(format!("/home/{USER}")),
            uid,
            gid,
            data,
        };
        // Leftovers of an interrupted earlier run.
        let out = kiln_in(&env, USER, &["toolbox", "list", "--json", "-c"], None, &[]);
        if out.status.success() {
            let list: ListOutput = serde_json::from_slice(&out.stdout).unwrap();
            for c in &list.containers {
                if c.name.starts_with("t-") {
                    kiln_in(&env, USER, &["toolbox", "rm", "-f", &c.name], None, &[]);
                }
            }
        }
        // Build (or reuse) the default image once, for every test.
        let t = Instant::now();
        let base = format!("t-base-{}", std::process::id());
        let out = kiln_in(&env, USER, &["toolbox", "create", &base], None, &[]);
        assert!(out.status.success(), "create {base}: {}", text(&out.stderr));
        eprintln!("default image ready in {:.1}s", t.elapsed().as_secs_f64());
        let out = kiln_in(&env, USER, &["toolbox", "rm", &base], None, &[]);
        assert!(out.status.success(), "rm {base}: {}", text(&out.stderr));
        Some(env)
    })
    .as_ref()
}

fn rustix_is_root() -> bool {
    sh("test \"$(id -u)\" = 0").status.success()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Run kiln as `user` with a clean environment, like a login would give.
fn kiln_in(
    env: &Env,
    user: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
    extra_env: &[(&str, &str)],
) -> Output {
    let home = format!("/home/{user}");
    let data = if user == USER {
        env.data.display().to_string()
    } else {
        format!("{CACHE}/{user}-data")
    };
    // A hang must not eat CI's budget: every kiln command is killed after
    // 10 minutes (the first one may build the default image).
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "10", "600", "runuser", "-u", user, "--", "env", "-i"])
        .arg(format!("HOME={home}"))
        .arg(format!("USER={user}"))
        .arg(format!("LOGNAME={user}"))
        .arg("PATH=/usr/local/bin:/usr/bin:/bin")
        .arg("LANG=C.UTF-8")
        .arg("SHELL=/bin/bash")
        .arg(format!("XDG_DATA_HOME={data}"));
    if user == USER {
        cmd.arg(format!("XDG_RUNTIME_DIR=/run/user/{}", env.uid));
    }
    for (k, v) in extra_env {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.arg(&env.bin).args(args).current_dir(&home);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn runuser");
    if let Some(input) = stdin {
        use std::io::Write;
        let mut w = child.stdin.take().unwrap();
        w.write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn kiln(env: &Env, args: &[&str]) -> Output {
    kiln_in(env, USER, args, None, &[])
}

fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `list --json`, read into the library's own types.
fn list(env: &Env) -> ListOutput {
    serde_json::from_str(&ok(
        &kiln(env, &["toolbox", "list", "--json"]),
        "list --json",
    ))
    .unwrap()
}

fn container<'a>(list: &'a ListOutput, name: &str) -> Option<&'a ContainerInfo> {
    list.containers.iter().find(|c| c.name == name)
}

fn name(tag: &str) -> String {
    format!("t-{tag}-{}", std::process::id())
}

/// Removes containers at the end of a test, even a failed one.
struct Cleanup<'a>(&'a Env, Vec<String>);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for n in &self.1 {
            kiln(self.0, &["toolbox", "rm", "-f", n]);
        }
    }
}

/// A fingerprint of the host's /usr and package database.
fn host_usr_state() -> (BTreeSet<String>, Vec<u8>) {
    let bins = std::fs::read_dir("/usr/bin")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    (bins, std::fs::read("/var/lib/dpkg/status").unwrap())
}

#[test]
fn unprivileged_user_lifecycle() {
    let Some(env) = env() else { return };
    let c1 = name("life1");
    let c2 = name("life2");
    let _cleanup = Cleanup(env, vec![c1.clone(), c2.clone()]);
    let before = host_usr_state();
    assert!(
        !sh("dpkg -s hello >/dev/null 2>&1").status.success(),
        "the host has the 'hello' package installed; this test installs it inside only"
    );

    let out = ok(&kiln(env, &["toolbox", "create", &c1]), "create");
    assert!(out.contains(&format!("Created container: {c1}")), "{out}");

    // Output, stderr and exit code pass through.
    let out = kiln(
        env,
        &[
            "toolbox",
            "run",
            "-c",
            &c1,
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ],
    );
    assert_eq!(text(&out.stdout), "out\n");
    assert!(text(&out.stderr).contains("err"), "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(3));

    // stdin and pipes.
    let out = kiln_in(
        env,
        USER,
        &["toolbox", "run", "-c", &c1, "tr", "a-z", "A-Z"],
        Some(b"hello pipe\n"),
        &[],
    );
    assert_eq!(ok(&out, "tr"), "HELLO PIPE\n");
    let out = kiln(
        env,
        &[
            "toolbox",
            "run",
            "-c",
            &c1,
            "sh",
            "-c",
            "seq 1 1000 | wc -l",
        ],
    );
    assert_eq!(ok(&out, "pipe").trim(), "1000");

    // Same user, groups, home and working directory; own hostname.
    let out = kiln(
        env,
        &[
            "toolbox",
            "run",
            "-c",
            &c1,
            "sh",
            "-c",
            "id -u; id -g; id -un; pwd; hostname; echo $HOME",
        ],
    );
    let expected = format!(
        "{}\n{}\n{USER}\n{home}\n{c1}\n{home}\n",
        env.uid,
        env.gid,
        home = env.home.display()
    );
    assert_eq!(ok(&out, "id"), expected);

    // Host files are shared: resolv.conf, the host root read-only at /run/host.
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let out = kiln(
        env,
        &["toolbox", "run", "-c", &c1, "cat", "/etc/resolv.conf"],
    );
    assert_eq!(ok(&out, "cat resolv.conf"), host_resolv);
    let out = kiln(
        env,
        &[
            "toolbox",
            "run",
            "-c",
            &c1,
            "sh",
            "-c",
            "test -d /run/host/usr && touch /run/host/kiln-ro-test",
        ],
    );
    assert!(!out.status.success(), "/run/host must be read-only");
    assert!(
        text(&out.stderr).contains("Read-only"),
        "{}",
        text(&out.stderr)
    );

    // The session's runtime directory (Wayland, PipeWire, D-Bus sockets).
    let marker = format!("/run/user/{}/kiln-test-{}", env.uid, std::process::id());
    std::fs::write(&marker, "runtime\n").unwrap();
    let script = format!("cat \"$XDG_RUNTIME_DIR\"/kiln-test-{}", std::process::id());
    let out = kiln(env, &["toolbox", "run", "-c", &c1, "sh", "-c", &script]);
    assert_eq!(ok(&out, "cat in XDG_RUNTIME_DIR"), "runtime\n");
    std::fs::remove_file(&marker).unwrap();

    // Passwordless sudo, and apt installs inside only.
    let out = kiln(
        env,
        &["toolbox", "run", "-c", &c1, "sudo", "-n", "id", "-u"],
    );
    assert_eq!(ok(&out, "sudo id"), "0\n");
    let out = kiln(
        env,
        &[
            "toolbox",
            "run",
            "-c",
            &c1,
            "sudo",
            "-n",
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
            "hello",
        ],
    );
    if !out.status.success() {
        // A cached image's package lists may be older than the mirror.
        eprintln!(
            "apt-get install failed, refreshing the lists: {}",
            text(&out.stderr)
        );
        let update = kiln(
            env,
            &[
                "toolbox", "run", "-c", &c1, "sudo", "-n", "apt-get", "update",
            ],
        );
        ok(&update, "sudo apt-get update");
        let out = kiln(
            env,
            &[
                "toolbox",
                "run",
                "-c",
                &c1,
                "sudo",
                "-n",
                "apt-get",
                "install",
                "-y",
                "--no-install-recommends",
                "hello",
            ],
        );
        ok(&out, "sudo apt-get install hello");
    }
    let out = kiln(env, &["toolbox", "run", "-c", &c1, "hello"]);
    assert_eq!(ok(&out, "hello"), "Hello, world!\n");
    assert!(
        !Path::new("/usr/bin/hello").exists(),
        "hello leaked onto the host"
    );
    assert!(!sh("dpkg -s hello >/dev/null 2>&1").status.success());

    // A file written in $HOME inside is the user's on the host.
    let file = env
        .home
        .join(format!("kiln-toolbox-test-{}.txt", std::process::id()));
    let script = format!("echo written-inside > {}", file.display());
    ok(
        &kiln(env, &["toolbox", "run", "-c", &c1, "sh", "-c", &script]),
        "write in home",
    );
    let md = std::fs::metadata(&file).expect("file written inside is on the host");
    assert_eq!((md.uid(), md.gid()), (env.uid, env.gid));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "written-inside\n");
    std::fs::remove_file(&file).unwrap();

    assert!(
        before == host_usr_state(),
        "the host's /usr or dpkg database changed"
    );

    // list --json.
    let l = list(env);
    let c = container(&l, &c1).expect("c1 listed");
    assert_eq!(c.image, "debian:bookworm");
    assert!(c.running);
    assert!(c.size > 0);
    assert!(c.created.ends_with('Z'));
    let image_id = c.image_id.clone();
    let image = l.images.iter().find(|i| i.id == image_id).unwrap();
    assert!(image.containers.contains(&c1));
    let image_size = image.size;

    // A second container from the same image costs almost nothing.
    ok(&kiln(env, &["toolbox", "create", &c2]), "create c2");
    ok(
        &kiln(env, &["toolbox", "run", "-c", &c2, "true"]),
        "run in c2",
    );
    let l = list(env);
    let size2 = container(&l, &c2).unwrap().size;
    eprintln!(
        "disk: image {image_size} bytes shared; second container's own layer {size2} bytes ({:.3}% of the image)",
        size2 as f64 * 100.0 / image_size as f64
    );
    assert!(size2 < 2 << 20, "second container uses {size2} bytes");

    // rm refuses a running container without -f.
    let out = kiln(env, &["toolbox", "rm", &c1]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is running"),
        "{}",
        text(&out.stderr)
    );
    ok(&kiln(env, &["toolbox", "rm", "-f", &c1, &c2]), "rm -f");
    let l = list(env);
    assert!(container(&l, &c1).is_none() && container(&l, &c2).is_none());
    assert!(!env.data.join("kiln/toolbox/containers").join(&c1).exists());
}

/// Poll tmux until `pred` holds on the screen, or fail after `secs`.
fn wait_screen(socket: &str, secs: u64, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let out = Command::new("tmux")
            .args(["-L", socket, "capture-pane", "-p", "-t", "t"])
            .output()
            .unwrap();
        let screen = text(&out.stdout);
        if pred(&screen) {
            return screen;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn enter_through_a_terminal() {
    let Some(env) = env() else { return };
    let c = name("enter");
    let _cleanup = Cleanup(env, vec![c.clone()]);
    ok(&kiln(env, &["toolbox", "create", &c]), "create");
    let socket = format!("kiln-test-{}", std::process::id());
    struct Server(String);
    impl Drop for Server {
        fn drop(&mut self) {
            let _ = Command::new("tmux")
                .args(["-L", &self.0, "kill-server"])
                .output();
        }
    }
    let _server = Server(socket.clone());
    let cmd = format!(
        "runuser -u {USER} -- env -i HOME={home} USER={USER} PATH=/usr/bin:/bin TERM=xterm LANG=C.UTF-8 SHELL=/bin/bash XDG_DATA_HOME={data} {bin} toolbox enter {c}",
        home = env.home.display(),
        data = env.data.display(),
        bin = env.bin.display()
    );
    let out = Command::new("tmux")
        .args([
            "-L",
            &socket,
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "160",
            "-y",
            "40",
            &cmd,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "tmux: {}", text(&out.stderr));
    // The prompt says where we are.
    wait_screen(&socket, 30, "the prompt", |s| {
        s.contains(&format!("({c})")) && s.contains('$')
    });
    let send = |keys: &str| {
        let out = Command::new("tmux")
            .args(["-L", &socket, "send-keys", "-t", "t", keys, "Enter"])
            .output()
            .unwrap();
        assert!(out.status.success());
    };
    send("echo MARK-$((6*7)) $(hostname) $(tty)");
    let screen = wait_screen(&socket, 30, "the command's output", |s| {
        s.lines().any(|l| l.starts_with("MARK-42"))
    });
    let line = screen.lines().find(|l| l.starts_with("MARK-42")).unwrap();
    assert!(line.contains(&c) && line.contains("/dev/pts/"), "{line}");
    send("exit");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Command::new("tmux")
        .args(["-L", &socket, "has-session", "-t", "t"])
        .output()
        .unwrap()
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "the shell did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn errors_are_clear() {
    let Some(env) = env() else { return };
    let c = name("err");
    let _cleanup = Cleanup(env, vec![c.clone()]);

    let out = kiln(env, &["toolbox", "run", "-c", "t-no-such", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no such toolbox container: t-no-such"),
        "{}",
        text(&out.stderr)
    );
    let out = kiln(env, &["toolbox", "rm", "t-no-such"]);
    assert!(!out.status.success() && text(&out.stderr).contains("no such toolbox container"));
    let out = kiln(env, &["toolbox", "rmi", "no-such-image"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no such toolbox image: no-such-image"),
        "{}",
        text(&out.stderr)
    );
    let out = kiln(env, &["toolbox", "create", "bad/name"]);
    assert!(!out.status.success() && text(&out.stderr).contains("invalid container name"));

    ok(&kiln(env, &["toolbox", "create", &c]), "create");
    let out = kiln(env, &["toolbox", "create", &c]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!("toolbox container {c} already exists")),
        "{}",
        text(&out.stderr)
    );

    let out = kiln(env, &["toolbox", "run", "-c", &c, "no-such-command-here"]);
    assert_eq!(out.status.code(), Some(127));
    assert!(
        text(&out.stderr).contains("no-such-command-here not found"),
        "{}",
        text(&out.stderr)
    );

    let image_id = container(&list(env), &c).unwrap().image_id.clone();
    let out = kiln(env, &["toolbox", "rmi", &image_id]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is used by container(s)"),
        "{}",
        text(&out.stderr)
    );

    // A user without subordinate ids is told what to add.
    let data = format!("{CACHE}/{NOSUB_USER}-data");
    std::fs::create_dir_all(&data).unwrap();
    sh(&format!("chown {NOSUB_USER}: {data}"));
    let out = kiln_in(env, NOSUB_USER, &["toolbox", "create", "x"], None, &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("\"{NOSUB_USER}:"))
            && err.contains("to both /etc/subuid and /etc/subgid"),
        "{err}"
    );
    assert!(err.contains("usermod --add-subuids"), "{err}");
}

#[test]
fn concurrent_creates_of_one_name() {
    let Some(env) = env() else { return };
    let c = name("race");
    let _cleanup = Cleanup(env, vec![c.clone()]);
    let spawn = || {
        Command::new("timeout")
            .args([
                "-k",
                "10",
                "600",
                "runuser",
                "-u",
                USER,
                "--",
                "env",
                "-i",
                "HOME=/home/kilntb",
                "PATH=/usr/bin:/bin",
            ])
            .arg(format!("XDG_DATA_HOME={}", env.data.display()))
            .arg(&env.bin)
            .args(["toolbox", "create", &c])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let wins = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert_eq!(
        wins,
        1,
        "exactly one create wins:\n{}\n{}",
        text(&a.stderr),
        text(&b.stderr)
    );
    let loser = if a.status.success() { &b } else { &a };
    assert!(
        text(&loser.stderr).contains("already exists"),
        "{}",
        text(&loser.stderr)
    );
    let l = list(env);
    assert_eq!(l.containers.iter().filter(|x| x.name == c).count(), 1);
    assert_eq!(
        ok(
            &kiln(env, &["toolbox", "run", "-c", &c, "echo", "ok"]),
            "run"
        ),
        "ok\n"
    );
}

#[test]
fn killed_create_leaves_no_container() {
    let Some(env) = env() else { return };
    let c = name("killed");
    let _cleanup = Cleanup(env, vec![c.clone()]);
    let out = kiln_in(
        env,
        USER,
        &["toolbox", "create", &c],
        None,
        &[("KILN_FAILPOINT", "toolbox:create-before-commit")],
    );
    assert!(!out.status.success(), "the fail point must kill create");
    assert!(
        container(&list(env), &c).is_none(),
        "a half-made container is listed"
    );
    assert!(!env.data.join("kiln/toolbox/containers").join(&c).exists());
    ok(
        &kiln(env, &["toolbox", "create", &c]),
        "create after a crash",
    );
    assert_eq!(
        ok(
            &kiln(env, &["toolbox", "run", "-c", &c, "echo", "ok"]),
            "run"
        ),
        "ok\n"
    );
}

// ---- OCI images, written by hand ----

/// Append one ustar entry.
fn tar_entry(out: &mut Vec<u8>, name: &str, kind: u8, mode: u32, data: &[u8], link: &str) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |h: &mut [u8; 512], at: usize, len: usize, v: u64| {
        let s = format!("{v:0width$o}\0", width = len - 1);
        h[at..at + len].copy_from_slice(s.as_bytes());
    };
    octal(&mut h, 100, 8, u64::from(mode));
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    octal(&mut h, 124, 12, data.len() as u64);
    octal(&mut h, 136, 12, 1_700_000_000);
    h[148..156].copy_from_slice(b"        ");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn tar_end(mut out: Vec<u8>) -> Vec<u8> {
    out.resize(out.len() + 1024, 0);
    out
}

fn sha256(data: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&data).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out.stdout
}

/// Write an OCI layout with these layers (media type from gzip magic).
fn oci_layout(dir: &Path, layers: &[Vec<u8>]) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| {
        let d = sha256(data);
        std::fs::write(blobs.join(&d), data).unwrap();
        (format!("sha256:{d}"), data.len())
    };
    let mut descs = Vec::new();
    for l in layers {
        let (digest, size) = put(l);
        let gz = l.starts_with(&[0x1f, 0x8b]);
        let mt = if gz {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        };
        descs.push(serde_json::json!({"mediaType": mt, "digest": digest, "size": size}));
    }
    let config = serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}});
    let (cd, cs) = put(config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": descs,
    });
    let (md, ms) = put(manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
                       "annotations": {"org.opencontainers.image.ref.name": "test"}}],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    sh(&format!("chmod -R a+rX {}", dir.display()));
}

/// A scratch directory the test user can read.
fn scratch(tag: &str) -> PathBuf {
    let d = PathBuf::from(format!("{CACHE}/{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn busybox_layers() -> Option<(Vec<u8>, Vec<u8>)> {
    let busybox = std::fs::read("/bin/busybox").ok()?;
    let mut l1 = Vec::new();
    for d in ["bin/", "etc/", "opq/", "dir-gone/"] {
        tar_entry(&mut l1, d, b'5', 0o755, b"", "");
    }
    tar_entry(&mut l1, "bin/busybox", b'0', 0o755, &busybox, "");
    for applet in ["sh", "cat", "ls", "id", "echo", "test", "true"] {
        tar_entry(
            &mut l1,
            &format!("bin/{applet}"),
            b'2',
            0o777,
            b"",
            "busybox",
        );
    }
    tar_entry(&mut l1, "etc/keep", b'0', 0o644, b"layer one\n", "");
    tar_entry(&mut l1, "etc/gone", b'0', 0o644, b"gone\n", "");
    tar_entry(&mut l1, "opq/old", b'0', 0o644, b"old\n", "");
    tar_entry(&mut l1, "dir-gone/x", b'0', 0o644, b"x\n", "");
    let mut l2 = Vec::new();
    tar_entry(&mut l2, "etc/.wh.gone", b'0', 0o644, b"", "");
    tar_entry(&mut l2, ".wh.dir-gone", b'0', 0o644, b"", "");
    tar_entry(&mut l2, "opq/.wh..wh..opq", b'0', 0o644, b"", "");
    tar_entry(&mut l2, "opq/new", b'0', 0o644, b"new\n", "");
    tar_entry(&mut l2, "etc/keep", b'0', 0o644, b"layer two\n", "");
    Some((tar_end(l1), gzip(&tar_end(l2))))
}

#[test]
fn oci_image_with_whiteouts() {
    let Some(env) = env() else { return };
    let Some((l1, l2)) = busybox_layers() else {
        if in_ci() {
            panic!("needs /bin/busybox (busybox-static)");
        }
        eprintln!("SKIPPED: needs /bin/busybox (busybox-static)");
        return;
    };
    let dir = scratch("oci");
    let layout = dir.join("layout");
    oci_layout(&layout, &[l1, l2]);
    let (c1, c2) = (name("oci1"), name("oci2"));
    let _cleanup = Cleanup(env, vec![c1.clone(), c2.clone()]);
    // Killed while unpacking: nothing is listed, the next create works.
    let out = kiln_in(
        env,
        USER,
        &[
            "toolbox",
            "create",
            &c1,
            "--image",
            layout.to_str().unwrap(),
        ],
        None,
        &[("KILN_FAILPOINT", "toolbox:unpack-layer")],
    );
    assert!(!out.status.success(), "the fail point must kill create");
    let l = list(env);
    let layout_name = layout.display().to_string();
    assert!(
        !l.images.iter().any(|i| i.name.starts_with(&layout_name)),
        "a half-unpacked image is listed"
    );
    assert!(container(&l, &c1).is_none());
    ok(
        &kiln(
            env,
            &[
                "toolbox",
                "create",
                &c1,
                "--image",
                layout.to_str().unwrap(),
            ],
        ),
        "create from layout",
    );
    let run = |c: &str, script: &str| {
        ok(
            &kiln(env, &["toolbox", "run", "-c", c, "sh", "-c", script]),
            script,
        )
    };
    assert_eq!(run(&c1, "cat /etc/keep"), "layer two\n");
    assert_eq!(run(&c1, "ls /opq"), "new\n");
    assert_eq!(run(&c1, "test -e /etc/gone || echo absent"), "absent\n");
    assert_eq!(run(&c1, "test -e /dir-gone || echo absent"), "absent\n");
    assert_eq!(run(&c1, "id -un"), format!("{USER}\n"));

    // The same image as an archive: unpacked once, shared.
    let archive = dir.join("image.tar");
    let out = sh(&format!(
        "tar -C {} -cf {} . && chmod a+r {}",
        layout.display(),
        archive.display(),
        archive.display()
    ));
    assert!(out.status.success());
    ok(
        &kiln(
            env,
            &[
                "toolbox",
                "create",
                &c2,
                "--image",
                archive.to_str().unwrap(),
            ],
        ),
        "create from archive",
    );
    let l = list(env);
    let id1 = container(&l, &c1).unwrap().image_id.clone();
    assert_eq!(container(&l, &c2).unwrap().image_id, id1);
    assert_eq!(run(&c2, "cat /etc/keep"), "layer two\n");
    ok(&kiln(env, &["toolbox", "rm", "-f", &c1, &c2]), "rm");
    ok(&kiln(env, &["toolbox", "rmi", &id1]), "rmi");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_oci_images_are_refused() {
    let Some(env) = env() else { return };
    let dir = scratch("badoci");
    // A directory the test user may write: an escape would land here.
    let outside = dir.join("outside");
    std::fs::create_dir(&outside).unwrap();
    sh(&format!("chown {USER}: {}", outside.display()));
    let try_create = |layout: &Path| {
        kiln(
            env,
            &[
                "toolbox",
                "create",
                &name("bad"),
                "--image",
                layout.to_str().unwrap(),
            ],
        )
    };

    // Bad digest: a blob changed after the manifest was written.
    let mut l = Vec::new();
    tar_entry(&mut l, "file", b'0', 0o644, b"data\n", "");
    let layout = dir.join("digest");
    oci_layout(&layout, &[tar_end(l.clone())]);
    let blob = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read(p).unwrap().starts_with(b"file"))
        .unwrap();
    let mut data = std::fs::read(&blob).unwrap();
    data[600] ^= 1;
    std::fs::write(&blob, data).unwrap();
    let out = try_create(&layout);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("digest mismatch"),
        "{}",
        text(&out.stderr)
    );

    // A path with "..".
    let mut l = Vec::new();
    tar_entry(&mut l, "../../outside/dotdot", b'0', 0o644, b"evil\n", "");
    let layout = dir.join("dotdot");
    oci_layout(&layout, &[tar_end(l)]);
    let out = try_create(&layout);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("contains '..'"),
        "{}",
        text(&out.stderr)
    );

    // An absolute symlink, then a file through it.
    let mut l = Vec::new();
    tar_entry(&mut l, "evil", b'2', 0o777, b"", outside.to_str().unwrap());
    tar_entry(&mut l, "evil/pwned", b'0', 0o644, b"evil\n", "");
    let layout = dir.join("symlink");
    oci_layout(&layout, &[tar_end(l)]);
    let out = try_create(&layout);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("outside the image root"),
        "{}",
        text(&out.stderr)
    );

    assert_eq!(
        std::fs::read_dir(&outside).unwrap().count(),
        0,
        "something was written outside"
    );
    let l = list(env);
    let dir_name = dir.display().to_string();
    assert!(
        !l.images.iter().any(|i| i.name.starts_with(&dir_name)),
        "a refused image was kept"
    );
    assert!(container(&l, &name("bad")).is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn root_uses_toolbox_too() {
    let Some(_env) = env() else { return };
    let Some((l1, l2)) = busybox_layers() else {
        if in_ci() {
            panic!("needs /bin/busybox (busybox-static)");
        }
        return;
    };
    let dir = scratch("rootoci");
    let layout = dir.join("layout");
    oci_layout(&layout, &[l1, l2]);
    let data = dir.join("data");
    let root_kiln = |args: &[&str]| {
        Command::new("timeout")
            .args(["-k", "10", "300", env!("CARGO_BIN_EXE_kiln")])
            .args(args)
            .env("KILN_TOOLBOX_DIR", &data)
            .env("HOME", "/root")
            .output()
            .unwrap()
    };
    let c = name("root");
    ok(
        &root_kiln(&["toolbox", "create", &c, "--image", layout.to_str().unwrap()]),
        "create as root",
    );
    let out = root_kiln(&[
        "toolbox",
        "run",
        "-c",
        &c,
        "sh",
        "-c",
        "id -u; cat /etc/keep; exit 5",
    ]);
    assert_eq!(text(&out.stdout), "0\nlayer two\n");
    assert_eq!(out.status.code(), Some(5));
    ok(&root_kiln(&["toolbox", "rm", "-f", &c]), "rm as root");
    let _ = std::fs::remove_dir_all(&dir);
}
