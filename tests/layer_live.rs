//! Live apply and `kiln usroverlay` on a system that looks booted: a
//! private mount and PID namespace where a deployment is `/` (chroot into
//! a bind mount of it), its `usr` is its own read-only mount as
//! kiln-prepare-root makes it, the sysroot is `/sysroot`,
//! `/run/ostree-booted` exists and every mount is shared (as under
//! systemd). The base tree has apt, bubblewrap, mount and the standalone
//! systemd-sysusers/-tmpfiles, so kiln layers from inside, like on a real
//! machine.
//!
//! Cases: `kiln install --apply-live` (the package runs at once, /usr stays
//! read-only, the new deployment is the BLS default, /etc, users and
//! tmpfiles follow, status says so), `uninstall --apply-live`,
//! `apply-live` of a staged deployment; a base file replaced (refused,
//! nothing deployed; then allowed, with the process using it listed); a
//! kernel change (always refused); refused off the running system;
//! `usroverlay`; `kill -9` at `live:after-deploy` and `live:after-mount`.

#[path = "layer_support/mod.rs"]
mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use support::*;

/// The base plus what kiln needs to layer from inside the booted tree,
/// and a program that no package owns (`/usr/libexec/kiln-sleeper`, a
/// copy of sleep) for the replacement case.
fn live_env(name: &str) -> Env {
    let rootfs = rootfs_with(
        &[
            "apt",
            "bubblewrap",
            "mount",
            "systemd-standalone-sysusers",
            "systemd-standalone-tmpfiles",
        ],
        "mkdir -p \"$1/usr/libexec\" && cp -a \"$1/usr/bin/sleep\" \"$1/usr/libexec/kiln-sleeper\"",
    );
    Env::with_rootfs(name, &rootfs)
}

/// Run `script` (sh, `set -e`) in a booted-looking namespace whose `/` is
/// deployment `dep` (a path relative to the sysroot, as `kiln status`
/// gives it). `$KILN` is kiln; `$S` is the scratch directory, at the same
/// path inside.
fn in_booted(e: &Env, dep: &str, script: &str) -> Output {
    let st = e.status();
    let kargs = st["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["path"].as_str() == Some(dep))
        .and_then(|d| d["kargs"].as_str())
        .unwrap_or_else(|| panic!("no deployment {dep}"))
        .to_string();
    let root = e.sc.0.join("root");
    fs::create_dir_all(&root).unwrap();
    let setup = format!(
        r#"set -e
mount --make-rprivate /
R={r}
D={sysroot}/{dep}
mount --bind $D $R
mount --bind $D/usr $R/usr
mount -o remount,bind,ro $R/usr
mount --bind {sysroot} $R/sysroot
mount --bind {sysroot}/boot $R/boot
mount --bind {sysroot}/ostree/deploy/{os}/var $R/var
mkdir -p $R{sc}
mount --bind {sc} $R{sc}
mount -t tmpfs tmpfs $R/run
touch $R/run/ostree-booted
mount -t tmpfs tmpfs $R/tmp
cp {kiln} $R/tmp/kiln
mount --rbind /dev $R/dev
mount -t proc proc $R/proc
echo "{kargs}" > $R/run/cmdline
mount --bind $R/run/cmdline $R/proc/cmdline
mount --make-rshared $R
exec chroot $R /bin/sh -c "$0"
"#,
        r = s(&root),
        sysroot = s(&e.sysroot),
        os = OS,
        sc = s(&e.sc.0),
        kiln = s(&kiln_bin()),
    );
    out(Command::new("unshare")
        .args(["-m", "-p", "-f", "sh", "-c", &setup])
        .arg(format!(
            "set -e; KILN=/tmp/kiln; S={}; export KILN S; {script}",
            s(&e.sc.0)
        )))
}

fn ok_out(o: Output) -> String {
    assert!(
        o.status.success(),
        "failed ({}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn read(p: PathBuf) -> String {
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn json(p: PathBuf) -> serde_json::Value {
    let t = read(p.clone());
    serde_json::from_str(&t).unwrap_or_else(|e| panic!("{}: {e}\n{t}", p.display()))
}

/// `CHECKSUM.SERIAL` of status entry `i`.
fn dirname(st: &serde_json::Value, i: usize) -> String {
    let d = &st["deployments"][i];
    format!("{}.{}", d["checksum"].as_str().unwrap(), d["serial"])
}

/// The deployment the default BLS entry (highest version) boots, by
/// resolving its `ostree=` link in the sysroot.
fn bls_default(sysroot: &Path) -> String {
    let dir = sysroot.join("boot/loader/entries");
    let mut best: Option<(u64, String)> = None;
    for e in fs::read_dir(&dir).unwrap() {
        let text = fs::read_to_string(e.unwrap().path()).unwrap();
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
        };
        let v: u64 = field("version ").and_then(|v| v.parse().ok()).unwrap();
        let opts = field("options ").unwrap();
        let link = opts
            .split(' ')
            .find_map(|a| a.strip_prefix("ostree="))
            .unwrap()
            .to_string();
        if best.as_ref().is_none_or(|(b, _)| v > *b) {
            best = Some((v, link));
        }
    }
    let link = best.unwrap().1;
    let target = fs::canonicalize(sysroot.join(link.trim_start_matches('/'))).unwrap();
    target.file_name().unwrap().to_string_lossy().into_owned()
}

/// Build a one-file `.deb` (`path` with `content`, mode 755) into `$S`.
fn make_deb(e: &Env, name: &str, path: &str, content: &str) -> PathBuf {
    let script = r#"set -e
N=$1; P=$2; B=$(mktemp -d); d=$B/$N
mkdir -p $d/DEBIAN $d/$(dirname $P)
printf 'Package: %s\nVersion: 1.0\nArchitecture: all\nMaintainer: kiln <k@example.org>\nDescription: kiln test package %s\n' $N $N > $d/DEBIAN/control
printf '%s' "$3" > $d/$P; chmod 755 $d/$P
dpkg-deb --root-owner-group -b $d $4 >/dev/null
rm -rf $B
"#;
    let deb = e.sc.0.join(format!("{name}_1.0_all.deb"));
    ok(Command::new("sh")
        .args([
            "-c",
            script,
            "sh",
            name,
            path.trim_start_matches('/'),
            content,
        ])
        .arg(&deb));
    deb
}

#[test]
fn install_live_uninstall_live_apply_staged() {
    if !have_env() {
        return;
    }
    let e = live_env("live-install");
    let st0 = e.status();
    let booted_path = st0["deployments"][0]["path"].as_str().unwrap().to_string();
    let booted = dirname(&st0, 0);

    // Off the running system: refused before anything is built.
    let before = e.deployments();
    let err = fails(&mut e.kiln(&["install", "--apply-live", "kiln-hello"]));
    assert!(err.contains("not the booted system"), "{err}");
    assert_eq!(e.deployments(), before);

    let local = e.local("kiln-local_1.0_all.deb");
    let o = ok_out(in_booted(
        &e,
        &booted_path,
        &format!(
            r#"
if command -v kiln-hello; then echo "kiln-hello before install"; exit 1; fi
if touch /usr/probe 2>/dev/null; then echo "/usr writable before"; exit 1; fi
$KILN install --apply-live kiln-hello
echo "== run: $(kiln-hello)"
if touch /usr/probe 2>/dev/null; then echo "== usr: writable"; else echo "== usr: read-only"; fi
grep ' /usr ' /proc/self/mountinfo | tail -1 > $S/usr-mount
echo "== etc: $(cat /etc/kiln-hello.conf)"
echo "== user: $(getent passwd kilnhello | cut -d: -f1)"
echo "== opt: $(readlink /var/opt/kiln-hello)"
echo "== state: $(cat /var/lib/kiln-hello/state)"
$KILN status > $S/status1.txt
$KILN status --json > $S/status1.json
E=$(ls /boot/loader/entries | sort -V | tail -1)
L=$(sed -n 's/^options .*ostree=\([^ ]*\).*/\1/p' /boot/loader/entries/$E)
echo "== default: $(basename $(readlink -f /sysroot$L))"

$KILN uninstall --apply-live kiln-hello
if command -v kiln-hello; then echo "kiln-hello still there"; exit 1; fi
$KILN status --json > $S/status2.json

$KILN install {local}
if [ -e /usr/share/kiln-local/file ]; then echo "staged install went live"; exit 1; fi
$KILN apply-live
echo "== local: $(cat /usr/share/kiln-local/file)"
$KILN apply-live > $S/again.txt
$KILN status --json > $S/status3.json
"#,
            local = s(&local),
        ),
    ));
    assert!(o.contains("== run: hello from kiln\n"), "{o}");
    assert!(o.contains("== usr: read-only\n"), "{o}");
    let m = read(e.sc.0.join("usr-mount"));
    assert!(m.split(' ').nth(5).unwrap().starts_with("ro"), "{m}");
    assert!(o.contains("== etc: greeting=hi\n"), "{o}");
    assert!(o.contains("== user: kilnhello\n"), "{o}");
    assert!(o.contains("== opt: /usr/lib/opt/kiln-hello\n"), "{o}");
    assert!(o.contains("== state: state\n"), "{o}");
    assert!(o.contains("Applied live: /usr is now deployment"), "{o}");

    // After the install: the layered deployment is the default (BLS) and
    // live; the booted one is the rollback.
    let s1 = json(e.sc.0.join("status1.json"));
    let layered = dirname(&s1, 0);
    assert_ne!(layered, booted);
    assert_eq!(
        s1["deployments"][0]["layered_packages"],
        serde_json::json!(["kiln-hello"])
    );
    assert_eq!(s1["deployments"][0]["live"], true);
    assert_eq!(s1["deployments"][0]["staged"], false);
    assert_eq!(s1["deployments"][1]["booted"], true);
    assert_eq!(s1["deployments"].as_array().unwrap().len(), 2);
    assert_eq!(s1["live"]["deployment"].as_str(), Some(layered.as_str()));
    assert_eq!(s1["live"]["booted"].as_str(), Some(booted.as_str()));
    assert_eq!(s1["live"]["stack"], serde_json::json!([layered]));
    assert!(o.contains(&format!("== default: {layered}\n")), "{o}");
    let t1 = read(e.sc.0.join("status1.txt"));
    assert!(
        t1.contains(&format!("LiveApplied: /usr is {layered}")),
        "{t1}"
    );
    assert!(t1.contains("(pending, default, live)"), "{t1}");

    // After the uninstall: the base commit again, live, stacked.
    let s2 = json(e.sc.0.join("status2.json"));
    assert_eq!(
        s2["deployments"][0]["checksum"].as_str(),
        Some(e.base.as_str())
    );
    assert_eq!(
        s2["live"]["deployment"].as_str(),
        Some(dirname(&s2, 0).as_str())
    );
    // Stacked: the covered mount's deployment is kept until reboot.
    assert_eq!(
        s2["live"]["stack"],
        serde_json::json!([layered, dirname(&s2, 0)])
    );
    assert!(s2["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| format!("{}.{}", d["checksum"].as_str().unwrap(), d["serial"]) == layered));

    // The staged install, applied: default, live, third stacked mount.
    assert!(o.contains("== local: local\n"), "{o}");
    let again = read(e.sc.0.join("again.txt"));
    assert!(again.contains("is already live"), "{again}");
    let s3 = json(e.sc.0.join("status3.json"));
    assert_eq!(
        s3["deployments"][0]["layered_packages"],
        serde_json::json!(["kiln-local"])
    );
    assert_eq!(
        s3["live"]["deployment"].as_str(),
        Some(dirname(&s3, 0).as_str())
    );
    assert_eq!(s3["live"]["stack"].as_array().unwrap().len(), 3);
    let booted_now: Vec<&serde_json::Value> = s3["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["booted"] == true)
        .collect();
    assert_eq!(booted_now.len(), 1);

    // A reboot runs the last one: its BLS entry is the default.
    assert_eq!(bls_default(&e.sysroot), dirname(&s3, 0));
    e.check_clean();
}

#[test]
fn replacement_refused_then_allowed_kernel_refused() {
    if !have_env() {
        return;
    }
    let e = live_env("live-replace");
    let st0 = e.status();
    let booted_path = st0["deployments"][0]["path"].as_str().unwrap().to_string();
    let replace = make_deb(
        &e,
        "kiln-replace",
        "/usr/libexec/kiln-sleeper",
        "#!/bin/sh\necho replaced\n",
    );
    let kernel = make_deb(
        &e,
        "kiln-kernel",
        "/usr/lib/modules/6.1.0-99-amd64/vmlinuz",
        "another kernel\n",
    );
    let before = e.deployments();
    let o = ok_out(in_booted(
        &e,
        &booted_path,
        &format!(
            r#"
/usr/libexec/kiln-sleeper 1000 &
P=$!
# Until the child has exec'd the sleeper (no timing involved).
while [ "$(readlink /proc/$P/exe)" != /usr/libexec/kiln-sleeper ]; do :; done
echo "== pid $P"
if $KILN install --apply-live {replace} 2> $S/err1; then echo "replacement not refused"; exit 1; fi
$KILN status --json > $S/after-refusal.json
if $KILN install --apply-live --allow-replacement {kernel} 2> $S/err2; then echo "kernel not refused"; exit 1; fi
$KILN install --apply-live --allow-replacement {replace} > $S/out3
echo "== now: $(/usr/libexec/kiln-sleeper)"
kill $P
"#,
            replace = s(&replace),
            kernel = s(&kernel),
        ),
    ));
    let pid = o
        .lines()
        .find_map(|l| l.strip_prefix("== pid "))
        .unwrap()
        .to_string();
    let err1 = read(e.sc.0.join("err1"));
    assert!(
        err1.contains("/usr/libexec/kiln-sleeper")
            && err1.contains("--allow-replacement")
            && err1.contains("base image"),
        "{err1}"
    );
    // Refused before deploying: the same deployments.
    let after = json(e.sc.0.join("after-refusal.json"));
    let list: Vec<String> = (0..after["deployments"].as_array().unwrap().len())
        .map(|i| dirname(&after, i))
        .collect();
    assert_eq!(list, before);
    let err2 = read(e.sc.0.join("err2"));
    assert!(
        err2.contains("kernel changes") && err2.contains("/usr/lib/modules/6.1.0-99-amd64/vmlinuz"),
        "{err2}"
    );
    let out3 = read(e.sc.0.join("out3"));
    assert!(
        out3.contains("Processes using replaced or removed files")
            && out3.contains(&format!("  {pid} kiln-sleeper: /usr/libexec/kiln-sleeper")),
        "{out3}"
    );
    assert!(o.contains("== now: replaced\n"), "{o}");
    let st = e.status();
    assert_eq!(
        st["deployments"][0]["layered_packages"],
        serde_json::json!(["kiln-replace"])
    );
    e.check_clean();
}

#[test]
fn usroverlay_is_transient() {
    if !have_env() {
        return;
    }
    let e = live_env("live-overlay");
    let st0 = e.status();
    let booted_path = st0["deployments"][0]["path"].as_str().unwrap().to_string();
    let before = e.deployments();
    ok_out(in_booted(
        &e,
        &booted_path,
        r#"
if touch /usr/kiln-probe 2>/dev/null; then echo "/usr writable before"; exit 1; fi
$KILN usroverlay > $S/unlock.txt
echo probe > /usr/kiln-probe
$KILN status > $S/status.txt
$KILN status --json > $S/status.json
if $KILN usroverlay 2> $S/again.txt; then echo "second usroverlay succeeded"; exit 1; fi
if $KILN install --apply-live kiln-hello 2> $S/live.txt; then echo "apply-live over an overlay"; exit 1; fi
"#,
    ));
    assert!(read(e.sc.0.join("unlock.txt")).contains("writable overlayfs"));
    let t = read(e.sc.0.join("status.txt"));
    assert!(t.contains("Unlocked: transient"), "{t}");
    assert_eq!(json(e.sc.0.join("status.json"))["unlocked"], "transient");
    let again = read(e.sc.0.join("again.txt"));
    assert!(again.contains("already unlocked"), "{again}");
    let live = read(e.sc.0.join("live.txt"));
    assert!(live.contains("/usr is unlocked"), "{live}");
    assert_eq!(e.deployments(), before);
    // Nothing reached the deployment; a new "boot" has /usr read-only.
    assert!(!e.sysroot.join(&booted_path).join("usr/kiln-probe").exists());
    ok_out(in_booted(
        &e,
        &booted_path,
        r#"
if [ -e /usr/kiln-probe ]; then echo "overlay survived"; exit 1; fi
if touch /usr/kiln-probe 2>/dev/null; then echo "/usr writable"; exit 1; fi
$KILN status --json > $S/status2.json
"#,
    ));
    assert!(json(e.sc.0.join("status2.json"))["unlocked"].is_null());
    e.check_clean();
}

#[test]
fn killed_live_apply_boots_new_and_completes() {
    if !have_env() {
        return;
    }
    let e = live_env("live-faults");
    let st0 = e.status();
    let booted_path = st0["deployments"][0]["path"].as_str().unwrap().to_string();
    let booted = dirname(&st0, 0);
    let local = e.local("kiln-local_1.0_all.deb");
    // Killed after the deploy: the new deployment is the default (a
    // reboot runs it), /usr is untouched; `kiln apply-live` finishes.
    // Killed after the mount: /usr is new and the state says so (it is
    // written just before the mount); `kiln apply-live` has nothing to do.
    for (fp, pkg, probe) in [
        (
            "live:after-deploy",
            "kiln-hello".to_string(),
            "/usr/bin/kiln-hello",
        ),
        (
            "live:after-mount",
            s(&local).to_string(),
            "/usr/share/kiln-local/file",
        ),
    ] {
        let after_mount = fp == "live:after-mount";
        let o = ok_out(in_booted(
            &e,
            &booted_path,
            &format!(
                r#"
set +e
KILN_FAILPOINT={fp} $KILN install --apply-live {pkg}
rc=$?
set -e
echo "== rc $rc"
if [ -e {probe} ]; then echo "== probe: present"; else echo "== probe: absent"; fi
if touch /usr/probe 2>/dev/null; then echo "/usr writable"; exit 1; fi
$KILN status --json > $S/killed.json
$KILN apply-live > $S/apply.txt
test -e {probe}
$KILN status --json > $S/done.json
"#
            ),
        ));
        assert!(o.contains("== rc 137\n"), "{fp}: not killed:\n{o}");
        let want = if after_mount { "present" } else { "absent" };
        assert!(o.contains(&format!("== probe: {want}\n")), "{fp}:\n{o}");
        let k = json(e.sc.0.join("killed.json"));
        let new = dirname(&k, 0);
        assert_ne!(new, booted, "{fp}");
        assert_eq!(k["deployments"][0]["booted"], false, "{fp}");
        // The state is written just before the mount.
        if after_mount {
            assert_eq!(k["live"]["deployment"].as_str(), Some(new.as_str()), "{fp}");
            let a = read(e.sc.0.join("apply.txt"));
            assert!(a.contains("is already live"), "{fp}: {a}");
        } else {
            assert!(k["live"].is_null(), "{fp}: {k}");
        }
        assert_eq!(bls_default(&e.sysroot), new, "{fp}");
        let d = json(e.sc.0.join("done.json"));
        assert_eq!(d["live"]["deployment"].as_str(), Some(new.as_str()), "{fp}");
        assert_eq!(dirname(&d, 0), new, "{fp}");
        e.check_clean();
    }
}
