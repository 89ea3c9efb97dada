//! The session bus in `kiln app run`, for real: a private `dbus-daemon`,
//! a small test service (in this file, speaking the D-Bus wire protocol)
//! that owns `org.kiln.Allowed` and `org.kiln.Forbidden` and answers
//! `Ping`, and the real `xdg-dbus-proxy` between the bus and the sandbox.
//! Inside the sandbox `dbus-send` (copied from the host with the libraries
//! `ldd` names into the test runtime) is the client.
//!
//! Checked, as Flatpak does it: the `[Session Bus Policy]` names are
//! reachable and the others are not (not even listed by `ListNames`, and the
//! service never sees the refused call); the socket is at
//! `$XDG_RUNTIME_DIR/bus` with `DBUS_SESSION_BUS_ADDRESS` pointing at it;
//! `sockets=session-bus` gives the whole bus (no proxy); `--no-session-bus`
//! or no bus on the host means no socket at all; the proxy exits when the
//! app does, also when kiln is killed, and its socket does not outlive it.
//! Needs root, bwrap, gcc, apt-get, dbus-daemon, dbus-send, xdg-dbus-proxy.

mod app_support;
mod common;

use app_support::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

const ALLOWED: &str = "org.kiln.Allowed";
const FORBIDDEN: &str = "org.kiln.Forbidden";

fn has(cmd: &str) -> bool {
    sh(&format!("command -v {cmd}")).status.success()
}

fn dbus_available() -> bool {
    available()
        && require("dbus-daemon (package dbus-daemon)", has("dbus-daemon"))
        && require("dbus-send (package dbus-bin)", has("dbus-send"))
        && require("xdg-dbus-proxy", has("xdg-dbus-proxy"))
        && require("ldd", has("ldd"))
}

// ---------------------------------------------------------------------------
// A minimal D-Bus peer: little-endian messages, EXTERNAL auth, the few
// header fields and body types the service needs.

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;

#[derive(Debug, Clone)]
enum Value {
    Str(String),
    Path(String),
    Sig(String),
    U32(u32),
}

fn pad(buf: &mut Vec<u8>, align: usize) {
    buf.resize(buf.len().next_multiple_of(align), 0);
}

fn put_value(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Str(s) | Value::Path(s) => {
            pad(buf, 4);
            buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        Value::Sig(s) => {
            buf.push(s.len() as u8);
            buf.extend_from_slice(s.as_bytes());
            buf.push(0);
        }
        Value::U32(n) => {
            pad(buf, 4);
            buf.extend_from_slice(&n.to_le_bytes());
        }
    }
}

fn type_code(v: &Value) -> &'static str {
    match v {
        Value::Str(_) => "s",
        Value::Path(_) => "o",
        Value::Sig(_) => "g",
        Value::U32(_) => "u",
    }
}

/// One message: `fields` are (code, value); the body's signature is
/// derived from `body`.
fn message(kind: u8, serial: u32, fields: &[(u8, Value)], body: &[Value]) -> Vec<u8> {
    let mut b = Vec::new();
    for v in body {
        put_value(&mut b, v);
    }
    let sig: String = body.iter().map(type_code).collect();
    let mut fields = fields.to_vec();
    if !sig.is_empty() {
        fields.push((8, Value::Sig(sig)));
    }
    let mut m = vec![b'l', kind, 0, 1];
    m.extend_from_slice(&(b.len() as u32).to_le_bytes());
    m.extend_from_slice(&serial.to_le_bytes());
    m.extend_from_slice(&[0; 4]); // array length, patched below
    let start = m.len();
    for (code, v) in &fields {
        pad(&mut m, 8);
        m.push(*code);
        put_value(&mut m, &Value::Sig(type_code(v).into()));
        put_value(&mut m, v);
    }
    let len = (m.len() - start) as u32;
    m[12..16].copy_from_slice(&len.to_le_bytes());
    pad(&mut m, 8);
    m.extend_from_slice(&b);
    m
}

#[derive(Debug, Default)]
struct Msg {
    kind: u8,
    serial: u32,
    reply_serial: Option<u32>,
    sender: Option<String>,
    destination: Option<String>,
    member: Option<String>,
    body: Vec<u8>,
}

fn get_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A string-like value at `*at` (after alignment), advancing `*at`.
fn get_str(b: &[u8], at: &mut usize, sig: u8) -> Option<String> {
    let len = if sig == b'g' {
        let n = *b.get(*at)? as usize;
        *at += 1;
        n
    } else {
        *at = (*at).next_multiple_of(4);
        let n = get_u32(b, *at)? as usize;
        *at += 4;
        n
    };
    let s = std::str::from_utf8(b.get(*at..*at + len)?)
        .ok()?
        .to_string();
    *at += len + 1;
    Some(s)
}

fn read_message(r: &mut impl Read) -> Option<Msg> {
    let mut head = [0u8; 16];
    r.read_exact(&mut head).ok()?;
    assert_eq!(head[0], b'l', "the test service only speaks little-endian");
    let body_len = get_u32(&head, 4)? as usize;
    let fields_len = get_u32(&head, 12)? as usize;
    let header_len = (16 + fields_len).next_multiple_of(8);
    let mut all = head.to_vec();
    all.resize(header_len + body_len, 0);
    r.read_exact(&mut all[16..]).ok()?;
    let mut m = Msg {
        kind: head[1],
        serial: get_u32(&head, 8)?,
        body: all[header_len..].to_vec(),
        ..Default::default()
    };
    let mut at = 16;
    while at < 16 + fields_len {
        at = at.next_multiple_of(8);
        let code = all[at];
        at += 1;
        let sig = get_str(&all, &mut at, b'g')?;
        match sig.as_bytes() {
            [b'u'] => {
                at = at.next_multiple_of(4);
                let n = get_u32(&all, at)?;
                at += 4;
                if code == 5 {
                    m.reply_serial = Some(n);
                }
            }
            [t @ (b's' | b'o' | b'g')] => {
                let s = get_str(&all, &mut at, *t)?;
                match code {
                    3 => m.member = Some(s),
                    6 => m.destination = Some(s),
                    7 => m.sender = Some(s),
                    _ => {}
                }
            }
            _ => panic!("unexpected header field type {sig}"),
        }
    }
    Some(m)
}

fn bus_call(member: &str, serial: u32, body: &[Value]) -> Vec<u8> {
    message(
        METHOD_CALL,
        serial,
        &[
            (1, Value::Path("/org/freedesktop/DBus".into())),
            (2, Value::Str("org.freedesktop.DBus".into())),
            (3, Value::Str(member.into())),
            (6, Value::Str("org.freedesktop.DBus".into())),
        ],
        body,
    )
}

/// Connects to the bus at `socket`, owns `names`, and answers every
/// method call with `pong from DESTINATION` from a thread. Returns the
/// destinations of the calls it received.
fn serve(socket: &Path, names: &[&str]) -> Arc<Mutex<Vec<String>>> {
    let mut s = UnixStream::connect(socket).expect("connect to the test bus");
    let uid = rustix::process::getuid().as_raw().to_string();
    let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
    s.write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())
        .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("OK "), "auth: {line}");
    s.write_all(b"BEGIN\r\n").unwrap();
    s.write_all(&bus_call("Hello", 1, &[])).unwrap();
    for (i, n) in names.iter().enumerate() {
        // DBUS_NAME_FLAG_DO_NOT_QUEUE
        let body = [Value::Str(n.to_string()), Value::U32(4)];
        s.write_all(&bus_call("RequestName", 2 + i as u32, &body))
            .unwrap();
    }
    // Wait for every RequestName reply: 1 = primary owner.
    let mut pending: Vec<u32> = (0..names.len() as u32).map(|i| 2 + i).collect();
    while !pending.is_empty() {
        let m = read_message(&mut r).expect("bus closed during setup");
        if let Some(rs) = m.reply_serial.filter(|x| pending.contains(x)) {
            assert_eq!(m.kind, METHOD_RETURN, "RequestName failed: {m:?}");
            assert_eq!(get_u32(&m.body, 0), Some(1), "not the primary owner");
            pending.retain(|x| *x != rs);
        }
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut serial = 100;
        while let Some(m) = read_message(&mut r) {
            if m.kind != METHOD_CALL {
                continue;
            }
            let dest = m.destination.clone().unwrap_or_default();
            log.lock().unwrap().push(dest.clone());
            serial += 1;
            let mut fields = vec![(5, Value::U32(m.serial))];
            if let Some(to) = m.sender {
                fields.push((6, Value::Str(to)));
            }
            let reply = if m.member.as_deref() == Some("Ping") {
                message(
                    METHOD_RETURN,
                    serial,
                    &fields,
                    &[Value::Str(format!("pong from {dest}"))],
                )
            } else {
                fields.push((4, Value::Str("org.kiln.Error.Unknown".into())));
                message(ERROR, serial, &fields, &[])
            };
            if s.write_all(&reply).is_err() {
                break;
            }
        }
    });
    seen
}

// ---------------------------------------------------------------------------

/// A private session bus: `dbus-daemon --session` on a socket in `dir`.
struct Bus {
    daemon: Child,
    socket: PathBuf,
    address: String,
}

impl Bus {
    fn start(dir: &Path) -> Bus {
        let socket = dir.join("session-bus");
        let mut daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--print-address=1"])
            .arg(format!("--address=unix:path={}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon");
        // The address is printed once the bus listens.
        let mut line = String::new();
        BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_string();
        assert!(address.starts_with("unix:path="), "dbus-daemon: {line:?}");
        Bus {
            daemon,
            socket,
            address,
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// The test runtime plus `dbus-send` and the libraries it needs.
fn runtime_with_dbus_send(w: &World) {
    let rt = w.path().join("rt");
    std::fs::create_dir_all(&rt).unwrap();
    let files = rt.join("files");
    let o = sh(&format!(
        "cp -al {} {}",
        runtime_files().display(),
        files.display()
    ));
    assert!(o.status.success());
    let dbus_send = String::from_utf8(sh("command -v dbus-send").stdout).unwrap();
    let dbus_send = std::fs::canonicalize(dbus_send.trim()).unwrap();
    // Copies, never writes through the hardlinks into the cached runtime.
    let copy = |src: &Path, dest: PathBuf| {
        if std::fs::symlink_metadata(&dest).is_err() {
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(src, &dest).unwrap();
        }
    };
    copy(&dbus_send, files.join("bin/dbus-send"));
    let ldd = sh(&format!("ldd {}", dbus_send.display()));
    assert!(ldd.status.success());
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        // "libdbus-1.so.3 => /lib/x86_64-linux-gnu/libdbus-1.so.3 (0x…)"
        let Some(path) = line.split_whitespace().find(|t| t.starts_with('/')) else {
            continue;
        };
        let path = Path::new(path);
        let name = path.file_name().unwrap();
        if name.to_string_lossy().starts_with("ld-linux") {
            continue; // the runtime's own loader
        }
        copy(
            &std::fs::canonicalize(path).unwrap(),
            files.join("lib/x86_64-linux-gnu").join(name),
        );
    }
    std::fs::write(
        rt.join("metadata"),
        format!("[Runtime]\nname={RUNTIME}\nruntime={RUNTIME}/x86_64/1\nsdk={RUNTIME}/x86_64/1\n"),
    )
    .unwrap();
}

struct Setup {
    w: World,
    bus: Bus,
    seen: Arc<Mutex<Vec<String>>>,
    xdg: PathBuf,
}

/// A world with the app installed (policy `org.kiln.Allowed=talk`), a bus
/// and the service on it.
fn setup() -> Option<Setup> {
    if !dbus_available() {
        return None;
    }
    let w = World::new();
    runtime_with_dbus_send(&w);
    w.export_runtime(&w.repo);
    w.export_app(&w.repo, APP, v1(), &[&format!("--talk-name={ALLOWED}")]);
    w.ok(&[
        "remote-add",
        "--no-gpg-verify",
        "local",
        &format!("file://{}", w.repo.display()),
    ]);
    w.ok(&["install", "-y", "local", APP]);
    let md = std::fs::read_to_string(w.sys.join("app").join(APP).join("current/active/metadata"))
        .unwrap();
    assert!(
        md.contains(&format!("[Session Bus Policy]\n{ALLOWED}=talk\n")),
        "{md}"
    );
    let bus = Bus::start(w.path());
    let seen = serve(&bus.socket, &[ALLOWED, FORBIDDEN]);
    let xdg = w.path().join("xdg-run");
    std::fs::create_dir_all(&xdg).unwrap();
    Some(Setup { w, bus, seen, xdg })
}

impl Setup {
    /// `kiln app run ARGS` with the host bus in the environment.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut a = vec!["run"];
        a.extend_from_slice(args);
        let mut c = self.w.kiln(&a);
        c.env("DBUS_SESSION_BUS_ADDRESS", &self.bus.address)
            .env("XDG_RUNTIME_DIR", &self.xdg);
        c
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let o = common::run(self.cmd(args));
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    }

    /// `dbus-send --print-reply` inside the sandbox.
    fn send(&self, flags: &[&str], dest: &str, path: &str, method: &str) -> (i32, String) {
        let mut a = vec!["--command=dbus-send"];
        a.extend_from_slice(flags);
        a.extend_from_slice(&[APP, "--session", "--print-reply"]);
        let d = format!("--dest={dest}");
        a.extend_from_slice(&[&d, path, method]);
        let (code, out, err) = self.run(&a);
        (code, format!("{out}{err}"))
    }

    fn ping(&self, flags: &[&str], dest: &str) -> (i32, String) {
        self.send(flags, dest, "/org/kiln/Test", "org.kiln.Test.Ping")
    }

    fn list_names(&self, flags: &[&str]) -> String {
        let (code, out) = self.send(
            flags,
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.ListNames",
        );
        assert_eq!(code, 0, "{out}");
        out
    }

    fn seen(&self, name: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|d| *d == name)
            .count()
    }

    /// Proxy processes serving this test's bus, and sockets left behind.
    fn leftovers(&self) -> (Vec<u32>, Vec<PathBuf>) {
        let procs = proxies_of(&self.bus.address);
        let dir = self.xdg.join(".kiln-dbus");
        let socks = std::fs::read_dir(&dir)
            .map(|rd| rd.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default();
        (procs, socks)
    }
}

/// `xdg-dbus-proxy` processes with `address` on their command line.
fn proxies_of(address: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.first().is_some_and(|a| a.ends_with(b"xdg-dbus-proxy"))
            && args.contains(&address.as_bytes())
        {
            out.push(pid);
        }
    }
    out
}

#[test]
fn session_bus_is_filtered_by_the_policy() {
    let Some(s) = setup() else { return };

    // The bus socket and address, as Flatpak sets them.
    let (code, out, err) = s.run(&[
        "--command=sh",
        APP,
        "-c",
        "echo \"$DBUS_SESSION_BUS_ADDRESS\"; test -S \"$XDG_RUNTIME_DIR/bus\" && echo socket",
    ]);
    assert_eq!(
        (code, out.as_str()),
        (0, "unix:path=/run/user/0/bus\nsocket\n"),
        "{err}"
    );

    // The host sees both names.
    let host = sh(&format!(
        "DBUS_SESSION_BUS_ADDRESS={} dbus-send --session --print-reply --dest=org.freedesktop.DBus \
         /org/freedesktop/DBus org.freedesktop.DBus.ListNames",
        s.bus.address
    ));
    let host = String::from_utf8_lossy(&host.stdout).into_owned();
    assert!(host.contains(ALLOWED) && host.contains(FORBIDDEN), "{host}");

    // The sandbox: org.kiln.Allowed=talk is reachable and listed.
    let (code, out) = s.ping(&[], ALLOWED);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("string \"pong from {ALLOWED}\"")),
        "{out}"
    );
    assert_eq!(s.seen(ALLOWED), 1);
    // org.kiln.Forbidden is neither: the proxy answers, the call never
    // reaches the service.
    let (code, out) = s.ping(&[], FORBIDDEN);
    assert_ne!(code, 0, "{out}");
    assert!(!out.contains("pong"), "{out}");
    assert!(out.contains("Error"), "{out}");
    assert_eq!(s.seen(FORBIDDEN), 0);
    let names = s.list_names(&[]);
    assert!(names.contains(&format!("\"{ALLOWED}\"")), "{names}");
    assert!(!names.contains(FORBIDDEN), "{names}");

    // Granted on the command line, then revoked by an override.
    let (code, out) = s.ping(&[&format!("--talk-name={FORBIDDEN}")], FORBIDDEN);
    assert_eq!(code, 0, "{out}");
    assert_eq!(s.seen(FORBIDDEN), 1);
    s.w.ok(&["override", &format!("--no-talk-name={ALLOWED}"), APP]);
    let (code, out) = s.ping(&[], ALLOWED);
    assert_ne!(code, 0, "{out}");
    assert_eq!(s.seen(ALLOWED), 1);
    s.w.ok(&["override", "--reset", APP]);
    assert_eq!(s.ping(&[], ALLOWED).0, 0);
    assert_eq!(s.seen(ALLOWED), 2);

    // `kiln app build` gets the same filtered bus.
    let d = s.w.path().join("build-dir");
    s.w.ok(&[
        "build-init",
        d.to_str().unwrap(),
        "org.kiln.Built",
        RUNTIME,
        RUNTIME,
        "1",
    ]);
    let mut c = s.w.kiln(&[
        "build",
        &format!("--talk-name={ALLOWED}"),
        d.to_str().unwrap(),
        "dbus-send",
        "--session",
        "--print-reply",
        &format!("--dest={ALLOWED}"),
        "/org/kiln/Test",
        "org.kiln.Test.Ping",
    ]);
    c.env("DBUS_SESSION_BUS_ADDRESS", &s.bus.address)
        .env("XDG_RUNTIME_DIR", &s.xdg);
    let out = common::run_ok(c);
    assert!(out.contains("pong from"), "{out}");
    assert_eq!(s.seen(ALLOWED), 3);

    // Every run above took its proxy and socket down with it.
    assert_eq!(s.leftovers(), (vec![], vec![]));
}

#[test]
fn whole_bus_or_none() {
    let Some(s) = setup() else { return };
    // No proxy must be started in either case: a missing one would fail.
    let no_proxy = |c: &mut Command| {
        c.env("KILN_DBUS_PROXY", "/nonexistent/xdg-dbus-proxy");
    };

    // sockets=session-bus: the host's bus itself, every name.
    let (code, out) = s.ping(&["--socket=session-bus"], FORBIDDEN);
    assert_eq!(code, 0, "{out}");
    assert!(s.list_names(&["--socket=session-bus"]).contains(FORBIDDEN));
    let mut c = s.cmd(&[
        "--socket=session-bus",
        "--command=sh",
        APP,
        "-c",
        "test -S /run/user/0/bus && echo \"$DBUS_SESSION_BUS_ADDRESS\"",
    ]);
    no_proxy(&mut c);
    let o = common::run(c);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "unix:path=/run/user/0/bus\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // --no-session-bus (flatpak run's flag): no socket, no address.
    let probe = "test -e /run/user/0/bus && echo socket; echo \"bus=$DBUS_SESSION_BUS_ADDRESS\"";
    let mut c = s.cmd(&["--no-session-bus", "--command=sh", APP, "-c", probe]);
    no_proxy(&mut c);
    let o = common::run(c);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "bus=\n",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // No bus on the host: the same.
    let mut c = s.cmd(&["--command=sh", APP, "-c", probe]);
    c.env_remove("DBUS_SESSION_BUS_ADDRESS");
    no_proxy(&mut c);
    let o = common::run(c);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "bus=\n");

    // A proxy that cannot start is an error, not a silently missing bus.
    let mut c = s.cmd(&["--command=true", APP]);
    no_proxy(&mut c);
    let o = common::run(c);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("xdg-dbus-proxy"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(s.leftovers(), (vec![], vec![]));
}

/// Waits for a line on the app's stdout (the app is up, so is its proxy).
fn wait_line(r: &mut impl BufRead) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line
}

/// Waits for `pid` (a child of this process, or an orphan adopted by it
/// as a subreaper) to exit, failing the test after a minute.
fn wait_exit(pid: u32) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let p = rustix::process::Pid::from_raw(pid as i32).unwrap();
        let r = rustix::process::waitpid(Some(p), rustix::process::WaitOptions::empty());
        let _ = tx.send(r.is_ok());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(ok) => assert!(ok, "waitpid {pid}"),
        Err(_) => panic!("process {pid} still running after a minute"),
    }
}

#[test]
fn proxy_lives_as_long_as_the_app() {
    let Some(s) = setup() else { return };
    // Orphans (the proxy once kiln is gone) are re-parented to this process.
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    let start = |s: &Setup| {
        let mut c = s.cmd(&["--command=sh", APP, "-c", "echo up; read x; echo done"]);
        c.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = c.spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        assert_eq!(wait_line(&mut out), "up\n");
        let proxies = proxies_of(&s.bus.address);
        assert_eq!(proxies.len(), 1, "{proxies:?}");
        let (_, socks) = s.leftovers();
        assert_eq!(socks.len(), 1, "{socks:?}");
        let kids =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", child.id())).unwrap();
        let bwrap: Vec<u32> = kids
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .filter(|p| *p != proxies[0])
            .collect();
        assert_eq!(bwrap.len(), 1, "kiln's children: {kids}");
        (child, out, proxies[0], bwrap[0])
    };

    // The app exits: kiln stops the proxy and removes its socket.
    let (mut child, mut out, proxy, _) = start(&s);
    child.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert_eq!(wait_line(&mut out), "done\n");
    assert!(child.wait().unwrap().success());
    assert!(!Path::new(&format!("/proc/{proxy}")).exists());
    assert_eq!(s.leftovers(), (vec![], vec![]));

    // kiln is killed: bwrap dies with it, the sandbox with bwrap, and the
    // proxy notices its sync fd closing and exits by itself.
    let (mut child, _out, proxy, bwrap) = start(&s);
    child.kill().unwrap();
    child.wait().unwrap();
    wait_exit(proxy);
    wait_exit(bwrap);
    // xdg-dbus-proxy removes its socket when it exits this way.
    assert_eq!(s.leftovers(), (vec![], vec![]));

    // A proxy killed outright leaves its socket; the next run removes
    // those of kiln processes that are gone, not those of live ones.
    let dir = s.xdg.join(".kiln-dbus");
    let dead = dir.join(format!("{APP}-999999999"));
    let live = dir.join(format!("{APP}-{}", std::process::id()));
    std::fs::write(&dead, "").unwrap();
    std::fs::write(&live, "").unwrap();
    assert_eq!(s.ping(&[], ALLOWED).0, 0);
    assert!(!dead.exists());
    assert!(live.exists());
    std::fs::remove_file(&live).unwrap();
    assert_eq!(s.leftovers(), (vec![], vec![]));

    // `kiln app kill`: the instance is bwrap (kiln's child while it
    // supervises the proxy); kiln then stops the proxy and dies of the
    // same signal, as an exec'd bwrap would have.
    let (mut child, _out, proxy, bwrap) = start(&s);
    let mut ps = s.w.kiln(&["ps", "--json"]);
    ps.env("XDG_RUNTIME_DIR", &s.xdg);
    let ps: Vec<serde_json::Value> =
        serde_json::from_str(&String::from_utf8(common::run(ps).stdout).unwrap()).unwrap();
    assert_eq!(ps.len(), 1, "{ps:?}");
    assert_eq!(ps[0]["pid"].as_u64(), Some(u64::from(bwrap)), "{ps:?}");
    let mut kill = s.w.kiln(&["kill", APP]);
    kill.env("XDG_RUNTIME_DIR", &s.xdg);
    common::run_ok(kill);
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "{status:?}");
    assert!(!Path::new(&format!("/proc/{proxy}")).exists());
    assert_eq!(s.leftovers(), (vec![], vec![]));
}
