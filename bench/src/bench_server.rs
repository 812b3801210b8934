//! A `bench-server` child process serving one mode, pinned to the server CPU.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::{Config, SERVER_CPU};
use crate::wrk::Load;
use crate::{Mode, Result};

/// A running `bench-server`; [`BenchServer::stop`] ends it.
#[derive(Debug)]
pub struct BenchServer {
    child: Child,
    addr: String,
    /// The header line carrying the mode's credential; empty for `none`.
    header: String,
    stderr: PathBuf,
    ready_after: Duration,
}

/// How [`BenchServer::start_with`] runs the server, beyond its mode.
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    /// Also serve the token routes for that many seeded customers.
    pub login_customers: Option<usize>,
    /// Live tokens issued before serving (`--tokens`), besides the credential's.
    pub tokens: u64,
    /// Tokens per subject of those (`--tokens-per-subject`; 0 counts as 1).
    pub tokens_per_subject: u64,
    /// tokio worker threads (`None`: `config.server_threads`).
    pub threads: Option<usize>,
    /// Run without `taskset`, on whichever CPUs the scheduler picks.
    pub unpinned: bool,
}

impl ServerOptions {
    /// How long the server may take to be ready: 30 s, plus 1 s per 10,000 pre-filled tokens.
    pub fn start_timeout(&self) -> Duration {
        Duration::from_secs(30 + self.tokens / 10_000)
    }
}

impl BenchServer {
    /// Starts `bench-server --mode mode` and waits (30 s at the most) for the ready file in
    /// which it names its address and the credential's header line. With
    /// `login_customers`, it also serves the token routes for that many seeded customers.
    ///
    /// # Errors
    /// When it cannot be started, exits, or is not ready in time.
    pub fn start(
        config: &Config,
        scratch: &Path,
        mode: Mode,
        redis_url: &str,
        login_customers: Option<usize>,
    ) -> Result<Self> {
        let options = ServerOptions {
            login_customers,
            ..ServerOptions::default()
        };
        Self::start_with(config, scratch, mode, redis_url, &options)
    }

    /// Starts `bench-server --mode mode` as `options` say (pinned to the server CPU unless
    /// `options.unpinned`) and waits ([`ServerOptions::start_timeout`] at the most) for the
    /// ready file in which it names its address and the credential's header line.
    ///
    /// # Errors
    /// When it cannot be started, exits, or is not ready in time.
    pub fn start_with(
        config: &Config,
        scratch: &Path,
        mode: Mode,
        redis_url: &str,
        options: &ServerOptions,
    ) -> Result<Self> {
        let ready = scratch.join(format!("ready-{}", mode.name()));
        let stderr = scratch.join(format!("stderr-{}", mode.name()));
        let _ = std::fs::remove_file(&ready);
        let mut command = if options.unpinned {
            Command::new(&config.server)
        } else {
            let mut command = Command::new("taskset");
            command
                .args(["-c", &SERVER_CPU.to_string()])
                .arg(&config.server);
            command
        };
        let threads = options.threads.unwrap_or(config.server_threads);
        command
            .args(["--mode", mode.name(), "--redis-url", redis_url])
            .args(["--threads", &threads.to_string()])
            .arg("--ready-file")
            .arg(&ready);
        if let Some(customers) = options.login_customers {
            command
                .arg("--with-login-routes")
                .args(["--login-customers", &customers.to_string()]);
        }
        if options.tokens > 0 {
            command
                .args(["--tokens", &options.tokens.to_string()])
                .args([
                    "--tokens-per-subject",
                    &options.tokens_per_subject.max(1).to_string(),
                ]);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()?;
        let limit = options.start_timeout();
        let spawned = Instant::now();
        let deadline = spawned + limit;
        let text = loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                break text;
            }
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(&stderr).unwrap_or_default();
                return Err(format!("bench-server --mode {mode} exited ({status}): {log}").into());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "bench-server --mode {mode} did not start in {} s",
                    limit.as_secs()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .map(str::trim)
                .map(str::to_owned)
        };
        let addr = field("addr ").ok_or("the ready file has no addr line")?;
        let header = field("header").unwrap_or_default();
        Ok(Self {
            child,
            addr,
            header,
            stderr,
            ready_after: spawned.elapsed(),
        })
    }

    /// How long the server took to be ready (with pre-filled tokens: mostly issuing them).
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A wrk load of the protected `GET /`, sending the credential.
    pub fn protected_load(&self, connections: u32, seconds: u64) -> Load<'_> {
        Load {
            url: self.url("/"),
            header: &self.header,
            connections,
            seconds,
            script: None,
        }
    }

    /// The server's process id (taskset execs it, so the same as taskset's when pinned).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A request with the credential must pass; without it, a `protected` mode must refuse:
    /// otherwise the load would measure the wrong thing.
    ///
    /// # Errors
    /// When either answer is not the expected one, or the server does not answer.
    pub fn check_credentials(&self, protected: bool) -> Result<()> {
        let with = http_get_status(&self.addr, &self.header)?;
        if with != 200 {
            return Err(format!("GET / with the credential answered {with}, not 200").into());
        }
        let without = http_get_status(&self.addr, "")?;
        if protected && without != 401 {
            return Err(format!("GET / without credential answered {without}, not 401").into());
        }
        Ok(())
    }

    /// Kills the server and removes its stderr log.
    ///
    /// # Errors
    /// When it cannot be waited for.
    pub fn stop(mut self) -> Result<()> {
        let _ = self.child.kill();
        self.child.wait()?;
        let _ = std::fs::remove_file(&self.stderr);
        Ok(())
    }
}

/// The status code of one `GET /` sent with `header` (none when empty).
fn http_get_status(addr: &str, header: &str) -> Result<u16> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let header = if header.is_empty() {
        String::new()
    } else {
        format!("{header}\r\n")
    };
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{header}\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {answer:?}").into())
}
