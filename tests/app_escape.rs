//! Escape attempts from inside `kiln app run`, each refused: reading
//! `~/.ssh` without `--filesystem=home`, writing `/usr` or `/app`, ptrace,
//! TIOCSTI injection, nested user namespaces, mounting, old socket
//! families, reaching 127.0.0.1 without `--share=network`, seeing host
//! processes. Where it makes sense, the same attempt with the permission
//! granted succeeds, so a refusal is not an accident of the test. The app
//! carries a static C probe (tests/app_support/probe.c).

mod app_support;
mod common;
mod remote_support;

use app_support::*;

fn world() -> Option<World> {
    if !available() {
        return None;
    }
    let w = World::new();
    w.export_runtime(&w.repo);
    w.export_app(&w.repo, APP, v1(), &[]);
    w.ok(&[
        "remote-add",
        "--no-gpg-verify",
        "local",
        &format!("file://{}", w.repo.display()),
    ]);
    w.ok(&["install", "-y", "local", APP]);
    Some(w)
}

fn probe(w: &World, extra: &[&str], args: &[&str]) -> String {
    let mut a: Vec<&str> = vec!["--command=probe"];
    a.extend_from_slice(extra);
    a.push(APP);
    a.extend_from_slice(args);
    let (_, out, err) = w.run(&a);
    assert!(!out.is_empty(), "probe {args:?} printed nothing: {err}");
    out.trim().to_string()
}

#[test]
fn escapes_are_refused() {
    let Some(w) = world() else { return };

    // ~/.ssh: invisible without --filesystem=home, readable with it.
    let ssh = w.home.join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::write(ssh.join("id_ed25519"), "SECRET").unwrap();
    let key = ssh.join("id_ed25519");
    let key = key.to_str().unwrap();
    assert_eq!(probe(&w, &[], &["read", key]), "refused ENOENT");
    assert_eq!(probe(&w, &["--filesystem=home"], &["read", key]), "ok");
    assert_eq!(
        probe(&w, &["--filesystem=home:ro"], &["write", key]),
        "refused EROFS"
    );

    // The runtime and the app are read-only.
    assert_eq!(probe(&w, &[], &["write", "/usr/evil"]), "refused EROFS");
    assert_eq!(probe(&w, &[], &["write", "/app/evil"]), "refused EROFS");
    assert_eq!(probe(&w, &[], &["write", "/app/bin/demo"]), "refused EROFS");

    // ptrace: refused by the filter even on itself.
    assert_eq!(probe(&w, &[], &["traceme"]), "refused EPERM");
    // A host process is not even visible (pid namespace) — and still refused.
    let mut host = std::process::Command::new("sleep")
        .arg("600")
        .spawn()
        .unwrap();
    let pid = host.id().to_string();
    assert!(probe(&w, &[], &["attach", &pid]).starts_with("refused"));
    assert_eq!(
        probe(&w, &[], &["read", &format!("/proc/{pid}/cmdline")]),
        "refused ENOENT"
    );
    let (_, ps, _) = w.run(&["--command=ps", APP]);
    assert!(!ps.contains("sleep 600"), "{ps}");
    assert!(ps.lines().count() <= 4, "host processes visible: {ps}");
    let _ = host.kill();
    let _ = host.wait();
    // --devel allows ptrace of its own children, as Flatpak's.
    assert_eq!(probe(&w, &["--devel"], &["traceme"]), "ok");

    // TIOCSTI (also with junk in the high bits of the request): the filter
    // answers EPERM before the kernel looks at the fd (which would say
    // ENOTTY for a non-terminal).
    assert_eq!(probe(&w, &[], &["tiocsti"]), "refused EPERM");
    assert_eq!(probe(&w, &[], &["tiocsti-hibits"]), "refused EPERM");

    // No nested user namespace, no mounts, no packet sockets, no
    // personality changes.
    assert_eq!(probe(&w, &[], &["userns"]), "refused EPERM");
    assert_eq!(probe(&w, &[], &["clone-userns"]), "refused EPERM");
    assert_eq!(probe(&w, &[], &["mount"]), "refused EPERM");
    assert_eq!(probe(&w, &[], &["socket-packet"]), "refused EAFNOSUPPORT");
    assert_eq!(probe(&w, &[], &["personality"]), "refused EPERM");

    // No capabilities, even started by root.
    let (_, st, _) = w.run(&["--command=grep", APP, "CapEff", "/proc/self/status"]);
    assert_eq!(
        st.split_whitespace().nth(1),
        Some("0000000000000000"),
        "{st}"
    );

    // The network: 127.0.0.1 unreachable without --share=network.
    let web = remote_support::nginx(w.path());
    let port = web
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    assert!(probe(&w, &[], &["connect", &port]).starts_with("refused"));
    assert_eq!(probe(&w, &["--share=network"], &["connect", &port]), "ok");
}
