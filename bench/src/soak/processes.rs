//! The processes of a soak: a Redis primary that keeps its data on disk (so a kill and a
//! restart lose nothing acknowledged), its replica, and the example server's instances.
//! Each is killed when dropped.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::redis_server::free_port;

/// A child process, restartable with the same command, killed on drop.
pub struct Process {
    name: String,
    command: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    fn spawn(
        name: &str,
        command: Vec<String>,
        env: Vec<(String, String)>,
        log: PathBuf,
    ) -> io::Result<Self> {
        let mut process = Self {
            name: name.to_owned(),
            command,
            env,
            log,
            child: None,
        };
        process.start()?;
        Ok(process)
    }

    fn start(&mut self) -> io::Result<()> {
        let log = File::options().create(true).append(true).open(&self.log)?;
        let (program, args) = self
            .command
            .split_first()
            .ok_or_else(|| io::Error::other("empty command"))?;
        let child = Command::new(program)
            .args(args)
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|error| io::Error::new(error.kind(), format!("{}: {error}", self.name)))?;
        self.child = Some(child);
        Ok(())
    }

    /// `SIGKILL`, as a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same command again.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.start()
    }

    /// Sends a signal by name (`STOP`, `CONT`) with `kill`.
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(child.id().to_string())
                .status();
        }
    }

    /// Its log (stdout and stderr, appended across restarts).
    pub fn log(&self) -> &Path {
        &self.log
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `redis-server` on a fixed port of its own, with an append-only file fsynced on every
/// write, so a `SIGKILL` loses nothing it acknowledged.
pub struct Redis {
    pub process: Process,
    pub port: u16,
}

impl Redis {
    /// The primary, keeping its data under `dir`.
    pub fn primary(dir: &Path) -> io::Result<Self> {
        Self::start("redis-primary", dir, &[])
    }

    /// A replica of `primary`.
    pub fn replica_of(primary: &Redis, dir: &Path) -> io::Result<Self> {
        let of = ["--replicaof", "127.0.0.1", &primary.port.to_string()];
        Self::start("redis-replica", dir, &of)
    }

    fn start(name: &str, dir: &Path, extra: &[&str]) -> io::Result<Self> {
        let port = free_port()?;
        let data = dir.join(name);
        std::fs::create_dir_all(&data)?;
        let mut command: Vec<String> = ["redis-server", "--bind", "127.0.0.1", "--port"]
            .iter()
            .map(|arg| (*arg).to_owned())
            .collect();
        command.push(port.to_string());
        for arg in [
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--repl-diskless-sync-delay",
            "0",
            "--dir",
        ] {
            command.push(arg.to_owned());
        }
        command.push(data.to_string_lossy().into_owned());
        command.extend(extra.iter().map(|arg| (*arg).to_owned()));
        let log = dir.join(format!("{name}.log"));
        let process = Process::spawn(name, command, Vec::new(), log)?;
        let redis = Self { process, port };
        redis.wait_ready(Duration::from_secs(10))?;
        Ok(redis)
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Waits until it answers `PING`.
    pub fn wait_ready(&self, limit: Duration) -> io::Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.command(&["PING"]).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(io::Error::other("redis-server did not answer PING"))
    }

    /// Runs one command (an admin command of the soak: `CLIENT KILL`, `PING`).
    pub fn command(&self, args: &[&str]) -> io::Result<redis::Value> {
        let client = redis::Client::open(self.url()).map_err(io::Error::other)?;
        let mut connection = client
            .get_connection_with_timeout(Duration::from_millis(500))
            .map_err(io::Error::other)?;
        connection
            .set_read_timeout(Some(Duration::from_millis(500)))
            .map_err(io::Error::other)?;
        let mut command = redis::cmd(args.first().copied().unwrap_or("PING"));
        for arg in args.iter().skip(1) {
            command.arg(*arg);
        }
        command.query(&mut connection).map_err(io::Error::other)
    }
}

/// One instance of the example server (`examples/server.rs`) on a port of its own, over
/// `redis_url`, with the local cache on.
pub struct App {
    pub process: Process,
    pub base: String,
}

impl App {
    /// Starts `binary` and waits until it answers.
    pub fn start(
        name: &str,
        binary: &Path,
        redis_url: &str,
        cache_ttl: Duration,
        dir: &Path,
    ) -> io::Result<Self> {
        let port = free_port()?;
        let env = vec![
            ("BIND".to_owned(), format!("127.0.0.1:{port}")),
            ("REDIS_URL".to_owned(), redis_url.to_owned()),
            (
                "TOKEN_CACHE_TTL".to_owned(),
                format!("{}ms", cache_ttl.as_millis()),
            ),
            ("RUST_LOG".to_owned(), "warn".to_owned()),
        ];
        let command = vec![binary.to_string_lossy().into_owned()];
        let log = dir.join(format!("{name}.log"));
        let process = Process::spawn(name, command, env, log)?;
        let app = Self {
            process,
            base: format!("http://127.0.0.1:{port}"),
        };
        app.wait_ready(port, Duration::from_secs(20))?;
        Ok(app)
    }

    /// Restarts it (a deploy, or a crash and its supervisor), and waits until it answers.
    pub fn restart(&mut self) -> io::Result<()> {
        self.process.restart()?;
        let port = self
            .base
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .ok_or_else(|| io::Error::other("no port"))?;
        self.wait_ready(port, Duration::from_secs(20))
    }

    fn wait_ready(&self, port: u16, limit: Duration) -> io::Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(io::Error::other(format!(
            "the example server did not listen; see {}",
            self.process.log().display()
        )))
    }
}
