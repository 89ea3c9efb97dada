//! Transports: `http://`, `https://` (rustls, system CA store) and
//! `file://`. One [`Fetcher`] per pull, shared by the worker threads: its
//! HTTP agent keeps a pool of keep-alive connections; every request has a
//! connect and an idle (per-read) timeout, and transport failures are
//! retried with exponential backoff.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Network knobs of a pull.
#[derive(Debug, Clone)]
pub struct NetOptions {
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response.
    pub idle_timeout: Duration,
    /// Retries of a request after a transport failure or a 5xx answer.
    pub retries: u32,
    /// Parallel requests (worker threads).
    pub workers: usize,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            connect_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(30),
            retries: 5,
            workers: 16,
        }
    }
}

enum Transport {
    Http { agent: ureq::Agent, base: String },
    File { base: PathBuf },
}

/// What one attempt at a request ended with, besides success.
#[derive(Debug)]
pub enum Attempt {
    /// Worth another try (connection lost, timeout, 5xx).
    Retry(String),
    /// Final: the bytes are wrong, the object is refused…
    Fatal(Error),
}

/// A reader over a response body that counts bytes and remembers whether
/// the *transport* failed (as opposed to the data being wrong).
pub struct Body<'a> {
    inner: Box<dyn Read + Send + 'a>,
    counter: &'a AtomicU64,
    pub read: u64,
    pub transport_error: Option<String>,
}

impl Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.read += n as u64;
                self.counter.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            Err(e) => {
                self.transport_error = Some(e.to_string());
                Err(e)
            }
        }
    }
}

impl Body<'_> {
    /// Turn an I/O error seen while consuming the body into an [`Attempt`]:
    /// a transport failure is retried, anything else is `fatal`.
    pub fn classify(&self, fatal: impl FnOnce() -> Error) -> Attempt {
        match &self.transport_error {
            Some(e) => Attempt::Retry(e.clone()),
            None => Attempt::Fatal(fatal()),
        }
    }
}

type CallJob = (
    ureq::Agent,
    String,
    std::sync::mpsc::SyncSender<std::result::Result<ureq::Response, ureq::Error>>,
);

thread_local! {
    /// Each thread's helper that makes its HTTP calls (see
    /// `Fetcher::call_with_timeout`).
    static CALLER: std::cell::RefCell<Option<std::sync::mpsc::Sender<CallJob>>> = const { std::cell::RefCell::new(None) };
}

/// An open response body and its announced length.
type Opened<'a> = (Box<dyn Read + Send + 'a>, Option<u64>);

/// Fetches files of one remote repository.
pub struct Fetcher {
    remote: String,
    transport: Transport,
    opts: NetOptions,
    /// Bytes received so far (all requests).
    pub bytes: AtomicU64,
    /// Requests made so far.
    pub requests: AtomicU64,
}

impl Fetcher {
    pub fn new(remote: &str, url: &str, opts: &NetOptions) -> Result<Fetcher> {
        let transport = if let Some(path) = url.strip_prefix("file://") {
            Transport::File {
                base: PathBuf::from(path),
            }
        } else if url.starts_with("http://") || url.starts_with("https://") {
            let agent = ureq::AgentBuilder::new()
                .timeout_connect(opts.connect_timeout)
                .timeout_read(opts.idle_timeout)
                .timeout_write(opts.idle_timeout)
                .max_idle_connections(opts.workers.max(1) * 2)
                .max_idle_connections_per_host(opts.workers.max(1) * 2)
                .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
                .redirects(5)
                .build();
            Transport::Http {
                agent,
                base: url.trim_end_matches('/').to_string(),
            }
        } else {
            return Err(Error::Unsupported {
                remote: remote.to_string(),
                why: format!("unsupported URL {url:?} (http://, https:// or file:// expected)"),
            });
        };
        Ok(Fetcher {
            remote: remote.to_string(),
            transport,
            opts: opts.clone(),
            bytes: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        })
    }

    pub fn remote(&self) -> &str {
        &self.remote
    }

    pub fn is_local(&self) -> bool {
        matches!(self.transport, Transport::File { .. })
    }

    /// The URL of `rel` (a path relative to the repo root).
    pub fn url_of(&self, rel: &str) -> String {
        match &self.transport {
            Transport::Http { base, .. } => format!("{base}/{rel}"),
            Transport::File { base } => format!("file://{}", base.join(rel).display()),
        }
    }

    /// One request: the body, `Ok(None)` on 404, or why it failed.
    fn open(&self, rel: &str) -> std::result::Result<Option<Opened<'_>>, Attempt> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        match &self.transport {
            Transport::File { base } => {
                let p = base.join(rel);
                match std::fs::File::open(&p) {
                    Ok(f) => {
                        let len = f.metadata().ok().map(|m| m.len());
                        Ok(Some((
                            Box::new(std::io::BufReader::with_capacity(128 * 1024, f)),
                            len,
                        )))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Attempt::Fatal(Error::io(p, e))),
                }
            }
            Transport::Http { agent, base } => {
                let url = format!("{base}/{rel}");
                let answer = match self.call_with_timeout(agent, url) {
                    Ok(a) => a,
                    Err(why) => return Err(Attempt::Retry(why)),
                };
                match answer {
                    Ok(resp) => {
                        let len = resp
                            .header("Content-Length")
                            .and_then(|v| v.trim().parse::<u64>().ok());
                        Ok(Some((Box::new(resp.into_reader()), len)))
                    }
                    Err(ureq::Error::Status(404 | 410, _)) => Ok(None),
                    Err(ureq::Error::Status(code, resp)) => {
                        let why = format!("HTTP {code} {}", resp.status_text());
                        if code >= 500 || code == 429 || code == 408 {
                            Err(Attempt::Retry(why))
                        } else {
                            Err(Attempt::Fatal(self.fetch_error(rel, why)))
                        }
                    }
                    Err(ureq::Error::Transport(t)) => Err(Attempt::Retry(t.to_string())),
                }
            }
        }
    }

    /// `GET url`, waiting at most the idle timeout for the response head.
    ///
    /// ureq 2 applies `timeout_read` to fresh connections and to bodies, but
    /// not to the status line read on a connection reused from its pool: a
    /// server that stalls there would hang us. The request runs on this
    /// thread's helper thread; when it does not answer in time we give that
    /// helper up (it ends when the server closes or the process exits) and
    /// the next call starts a new one.
    fn call_with_timeout(
        &self,
        agent: &ureq::Agent,
        url: String,
    ) -> std::result::Result<std::result::Result<ureq::Response, ureq::Error>, String> {
        let (reply_tx, reply_rx) = std::sync::mpsc::sync_channel(1);
        let mut job = Some((agent.clone(), url, reply_tx));
        CALLER.with(|c| -> std::result::Result<(), String> {
            let mut c = c.borrow_mut();
            for _ in 0..2 {
                if c.is_none() {
                    let (tx, rx) = std::sync::mpsc::channel::<CallJob>();
                    std::thread::Builder::new()
                        .name("kiln-http".into())
                        .spawn(move || {
                            while let Ok((agent, url, reply)) = rx.recv() {
                                let _ = reply.send(agent.get(&url).call());
                            }
                        })
                        .map_err(|e| format!("cannot start a thread: {e}"))?;
                    *c = Some(tx);
                }
                let Some(j) = job.take() else { return Ok(()) };
                match c.as_ref().map(|tx| tx.send(j)) {
                    Some(Ok(())) => return Ok(()),
                    Some(Err(std::sync::mpsc::SendError(j))) => job = Some(j),
                    None => return Err("no helper thread".into()),
                }
                *c = None;
            }
            Err("no helper thread".into())
        })?;
        let wait = self.opts.idle_timeout + self.opts.connect_timeout;
        reply_rx.recv_timeout(wait).map_err(|_| {
            // The helper is stuck in that request: give it up.
            CALLER.with(|c| *c.borrow_mut() = None);
            format!(
                "timed out after {}s waiting for the response",
                wait.as_secs()
            )
        })
    }

    fn fetch_error(&self, rel: &str, why: String) -> Error {
        Error::Fetch {
            remote: self.remote.clone(),
            url: self.url_of(rel),
            why,
        }
    }

    /// Request `rel` and hand its body to `f`, retrying (with backoff) when
    /// the request or `f` reports a transport failure. `Ok(None)` on 404.
    pub fn with_body<T>(
        &self,
        rel: &str,
        mut f: impl FnMut(&mut Body<'_>, Option<u64>) -> std::result::Result<T, Attempt>,
    ) -> Result<Option<T>> {
        let mut attempt = 0u32;
        loop {
            let res = match self.open(rel) {
                Ok(None) => return Ok(None),
                Ok(Some((inner, len))) => {
                    let mut body = Body {
                        inner,
                        counter: &self.bytes,
                        read: 0,
                        transport_error: None,
                    };
                    f(&mut body, len).map(Some)
                }
                Err(a) => Err(a),
            };
            match res {
                Ok(v) => return Ok(v),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(why)) => {
                    if attempt >= self.opts.retries {
                        return Err(self.fetch_error(rel, why));
                    }
                    tracing::debug!("retrying {} after: {why}", self.url_of(rel));
                    let delay = Duration::from_millis(200u64.saturating_mul(1 << attempt.min(4)))
                        .min(Duration::from_secs(3));
                    std::thread::sleep(delay);
                    attempt += 1;
                }
            }
        }
    }

    /// The whole body of `rel`, at most `max` bytes; `Ok(None)` on 404.
    pub fn get_opt(&self, rel: &str, max: u64) -> Result<Option<Vec<u8>>> {
        self.with_body(rel, |body, len| {
            if let Some(l) = len {
                if l > max {
                    return Err(Attempt::Fatal(self.too_large(rel, l, max)));
                }
            }
            let mut buf = Vec::with_capacity(len.unwrap_or(0).min(max) as usize);
            match body.take(max + 1).read_to_end(&mut buf) {
                Ok(_) if buf.len() as u64 > max => {
                    Err(Attempt::Fatal(self.too_large(rel, buf.len() as u64, max)))
                }
                Ok(_) => {
                    if let Some(l) = len {
                        if (buf.len() as u64) < l {
                            return Err(Attempt::Retry(format!(
                                "connection closed after {} of {l} bytes",
                                buf.len()
                            )));
                        }
                    }
                    Ok(buf)
                }
                Err(e) => Err(body.classify(|| self.fetch_error(rel, e.to_string()))),
            }
        })
    }

    /// Like [`get_opt`](Self::get_opt), a 404 being an error.
    pub fn get(&self, rel: &str, max: u64) -> Result<Vec<u8>> {
        self.get_opt(rel, max)?.ok_or_else(|| Error::NotFound {
            remote: self.remote.clone(),
            url: self.url_of(rel),
        })
    }

    fn too_large(&self, rel: &str, got: u64, max: u64) -> Error {
        self.fetch_error(
            rel,
            format!("response of {got} bytes exceeds the limit of {max} bytes"),
        )
    }
}
