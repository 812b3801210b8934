//! Test fixtures: a throwaway `redis-server` per test, registries over each store, HTTP
//! helpers.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tower_bearer::store::{MemoryStore, RedisStore, RedisStoreOptions};
use tower_bearer::{Lifetimes, TokenRegistry};

const INSTALL_HINT: &str = "redis-server was not found on PATH. The Redis tests need a real \
    redis-server (7.0 or later): install it with `apt-get install redis-server` (Debian/Ubuntu) \
    or `brew install redis` (macOS), or run `./scripts/test.sh`, which installs it, or set \
    REDIS_URL to a Redis server the tests may write to.";

/// A `redis-server` child process on a free port, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub fn start() -> Self {
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = spawn_on(port) {
                return Self {
                    child: Some(child),
                    port,
                };
            }
        }
        panic!("could not start redis-server on a free port after 5 attempts");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (as a crash would) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open but nothing answers, as with a
    /// hung or partitioned Redis.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the server is running");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.child = Some(spawn_on(self.port).expect("redis-server restarts on its port"));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_on(port: u16) -> Option<Child> {
    let mut child = match Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(["--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
        Err(error) => panic!("could not run redis-server: {error}"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return None; // exited: most likely the port was taken meanwhile
        }
        if ping(port) {
            return Some(child);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on 127.0.0.1")
}

fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// A Redis for one test: `REDIS_URL` when set, else a server of its own. Each test gets
/// its own key prefix, so tests sharing a server never see each other's keys.
pub struct TestRedis {
    pub server: Option<RedisServer>,
    pub url: String,
    pub prefix: String,
}

impl TestRedis {
    pub fn start() -> Self {
        let server = match std::env::var("REDIS_URL") {
            Ok(_) => None,
            Err(_) => Some(RedisServer::start()),
        };
        let url = server.as_ref().map_or_else(
            || std::env::var("REDIS_URL").unwrap_or_default(),
            RedisServer::url,
        );
        Self {
            server,
            url,
            prefix: unique_prefix(),
        }
    }

    pub fn options(&self) -> RedisStoreOptions {
        RedisStoreOptions::default().with_prefix(self.prefix.clone())
    }

    pub async fn store(&self) -> RedisStore {
        RedisStore::connect_with(&self.url, self.options())
            .await
            .expect("connect to the test redis-server")
    }

    pub async fn registry(&self) -> TokenRegistry {
        TokenRegistry::new(self.store().await)
    }

    /// A plain connection for inspecting keys.
    pub async fn inspector(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .expect("valid url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis-server")
    }
}

fn unique_prefix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "test{}-{}-{}:",
        std::process::id(),
        nanos,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Short lifetimes for expiry tests: customer 1 s, admin 2 s.
pub fn short_lifetimes() -> Lifetimes {
    Lifetimes::new(Duration::from_secs(1), Duration::from_secs(2)).expect("valid lifetimes")
}

/// A registry over a fresh memory store.
pub fn memory_registry() -> (TokenRegistry, MemoryStore) {
    let store = MemoryStore::new();
    (TokenRegistry::new(store.clone()), store)
}

/// Serves `app` on a free port of 127.0.0.1 for the rest of the test; returns its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{address}")
}
