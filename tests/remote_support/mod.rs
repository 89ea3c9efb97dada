//! Helpers of the remote tests: web servers (nginx, `kiln serve`, and a
//! misbehaving one), and archive repos made by `ostree`.
#![allow(dead_code)]

use crate::common::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Wait until something listens on `port`.
fn wait_port(port: u16) {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listens on port {port}");
}

/// A child process killed when dropped.
pub struct Daemon {
    child: Child,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx serving `root` on 127.0.0.1, as a fleet's web server would.
pub fn nginx(root: &Path) -> Daemon {
    let dir = scratch();
    let port = free_port();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "user root;\ndaemon off;\nworker_processes 2;\npid {pid};\nerror_log {err} warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {tmp};\n  proxy_temp_path {tmp};\n  fastcgi_temp_path {tmp};\n  uwsgi_temp_path {tmp};\n  scgi_temp_path {tmp};\n  sendfile on;\n  keepalive_requests 100000;\n  server {{\n    listen 127.0.0.1:{port};\n    root {root};\n    location / {{ }}\n  }}\n}}\n",
            pid = dir.path().join("nginx.pid").display(),
            err = dir.path().join("error.log").display(),
            tmp = dir.path().display(),
            root = root.display(),
        ),
    )
    .unwrap();
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run nginx (scripts/deps.sh installs it)");
    wait_port(port);
    Daemon {
        child,
        url: format!("http://127.0.0.1:{port}/"),
        _dir: Some(dir),
    }
}

/// `kiln serve ROOT --port=0`.
pub fn kiln_serve(root: &Path) -> Daemon {
    let mut child = kiln()
        .arg("serve")
        .arg(root)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run kiln serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://"), "kiln serve said {line:?}");
    Daemon {
        child,
        url,
        _dir: None,
    }
}

/// `ostree` commit of `tree` into `repo` on `branch` at `ts`.
pub fn ostree_commit(repo: &Path, branch: &str, tree: &Path, ts: &str) -> String {
    run_ok(
        ostree_repo(repo, "commit")
            .args(["-b", branch, &format!("--timestamp={ts}"), "-s", "subject"])
            .arg(tree),
    )
    .trim()
    .to_string()
}

/// A copy of the tricky tree with one more file (a second commit).
pub fn changed_tree(dir: &Path) -> PathBuf {
    let t = dir.join("tree2");
    run_ok(Command::new("cp").arg("-a").arg(tricky_tree()).arg(&t));
    std::fs::write(t.join("added-in-v2"), vec![b'x'; 100_000]).unwrap();
    t
}

/// An archive repo made by ostree: `main` at v1 then v2, a static delta
/// v1→v2 and a from-scratch one to v2, and a summary. Returns (v1, v2).
pub fn ostree_archive(dir: &Path) -> (PathBuf, String, String) {
    let repo = dir.join("served");
    run_ok(ostree_repo(&repo, "init").arg("--mode=archive"));
    let v1 = ostree_commit(&repo, "main", tricky_tree(), "2021-01-01T00:00:00Z");
    let t2 = changed_tree(dir);
    let v2 = ostree_commit(&repo, "main", &t2, "2021-02-01T00:00:00Z");
    ostree_commit(&repo, "other", tricky_tree(), "2021-01-01T00:00:00Z");
    run_ok(ostree_repo(&repo, "static-delta").args([
        "generate",
        &format!("--from={v1}"),
        &format!("--to={v2}"),
    ]));
    run_ok(ostree_repo(&repo, "summary").arg("-u"));
    (repo, v1, v2)
}

/// A repo of `mode` with a remote `origin` at `url` (no GPG).
pub fn client(dir: &Path, name: &str, mode: &str, url: &str, extra: &[&str]) -> PathBuf {
    let repo = dir.join(name);
    run_ok(kiln_repo(&repo, "init").arg(format!("--mode={mode}")));
    run_ok(
        kiln_repo(&repo, "remote")
            .args(["add", "--no-gpg-verify"])
            .args(extra)
            .args(["origin", url]),
    );
    repo
}

/// The contents of `refs/` as path → checksum.
pub fn refs_of(repo: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                out.insert(rel, std::fs::read_to_string(&p).unwrap().trim().to_string());
            }
        }
    }
    walk(&repo.join("refs"), &repo.join("refs"), &mut out);
    out
}

/// What the misbehaving server does with one request.
#[derive(Clone, Debug)]
pub enum Action {
    Serve,
    /// Answer these bytes instead (correct Content-Length).
    Body(Vec<u8>),
    /// Only the first N bytes, with a Content-Length saying so.
    Truncate(usize),
    /// Announce the full length, send N bytes, close the connection.
    Drop(usize),
    Status(u16),
    /// Accept and never answer.
    Stall,
}

type Rule = Box<dyn Fn(&str) -> Action + Send + Sync>;

/// A tiny HTTP/1.1 server over a directory that misbehaves on purpose.
pub struct Hostile {
    pub url: String,
    rule: Arc<Mutex<Rule>>,
    stop: Arc<AtomicBool>,
    /// Requests per path.
    pub hits: Arc<Mutex<BTreeMap<String, usize>>>,
    pub total: Arc<AtomicUsize>,
}

impl Hostile {
    pub fn start(root: &Path) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let rule: Arc<Mutex<Rule>> = Arc::new(Mutex::new(Box::new(|_| Action::Serve)));
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(Mutex::new(BTreeMap::new()));
        let total = Arc::new(AtomicUsize::new(0));
        let (r, s, h, t, root) = (
            rule.clone(),
            stop.clone(),
            hits.clone(),
            total.clone(),
            root.to_path_buf(),
        );
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(600);
            while !s.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (r, h, t, root, s) =
                            (r.clone(), h.clone(), t.clone(), root.clone(), s.clone());
                        std::thread::spawn(move || serve_conn(stream, &root, &r, &h, &t, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Hostile {
            url,
            rule,
            stop,
            hits,
            total,
        }
    }

    pub fn set(&self, f: impl Fn(&str) -> Action + Send + Sync + 'static) {
        *self.rule.lock().unwrap() = Box::new(f);
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve_conn(
    stream: TcpStream,
    root: &Path,
    rule: &Mutex<Rule>,
    hits: &Mutex<BTreeMap<String, usize>>,
    total: &AtomicUsize,
    stop: &AtomicBool,
) {
    stream.set_nonblocking(false).ok();
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut w = stream.try_clone().unwrap();
    let mut r = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" || h == "\n" {
                break;
            }
        }
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .trim_start_matches('/')
            .to_string();
        *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
        total.fetch_add(1, Ordering::Relaxed);
        let action = (rule.lock().unwrap())(&path);
        let file = std::fs::read(root.join(&path)).ok();
        let send = |w: &mut TcpStream, code: u16, body: &[u8], len: usize| -> std::io::Result<()> {
            write!(w, "HTTP/1.1 {code} X\r\nContent-Length: {len}\r\n\r\n")?;
            w.write_all(body)?;
            w.flush()
        };
        let res = match (action, file) {
            (Action::Stall, _) => {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return;
            }
            (Action::Status(c), _) => send(&mut w, c, b"", 0),
            (Action::Body(b), _) => send(&mut w, 200, &b, b.len()),
            (_, None) => send(&mut w, 404, b"", 0),
            (Action::Serve, Some(f)) => send(&mut w, 200, &f, f.len()),
            (Action::Truncate(n), Some(f)) => {
                let n = n.min(f.len());
                send(&mut w, 200, &f[..n], n)
            }
            (Action::Drop(n), Some(f)) => {
                let n = n.min(f.len());
                let _ = send(&mut w, 200, &f[..n], f.len());
                return;
            }
        };
        if res.is_err() {
            return;
        }
    }
}

/// Read a whole file.
pub fn read(p: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    std::fs::File::open(p).unwrap().read_to_end(&mut v).unwrap();
    v
}
