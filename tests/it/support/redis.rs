//! One Redis per test: a throwaway `redis-server` on a free port ([`RedisServer`]), the
//! test's own key prefix on it or on `REDIS_URL` ([`TestRedis`]), and a TCP proxy that can
//! black-hole or cut connections ([`RedisProxy`]).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tower_bearer::TokenRegistry;
use tower_bearer::store::{RedisStore, RedisStoreOptions};

pub(super) const INSTALL_HINT: &str = "redis-server was not found on PATH. The Redis tests need a real \
    redis-server (7.0 or later): install it with `apt-get install redis-server` (Debian/Ubuntu) \
    or `brew install redis` (macOS), or run `./scripts/test.sh`, which installs it, or set \
    REDIS_URL to a Redis server the tests may write to.";

/// A `redis-server` child process on a free port, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    /// Arguments beyond the port, kept for a restart.
    args: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers PING.
    pub fn start() -> Self {
        Self::start_with(Vec::new())
    }

    /// Starts a replica of `primary` on a free port and waits until it has synchronised.
    pub fn start_replica_of(primary: &RedisServer) -> Self {
        let replica = Self::start_with(vec![
            "--replicaof".into(),
            "127.0.0.1".into(),
            primary.port.to_string(),
        ]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !replica
            .info("replication")
            .contains("master_link_status:up")
        {
            assert!(Instant::now() < deadline, "the replica did not synchronise");
            std::thread::sleep(Duration::from_millis(20));
        }
        replica
    }

    fn start_with(args: Vec<String>) -> Self {
        for _ in 0..5 {
            let port = free_port();
            if let Some(child) = spawn_on(port, &args) {
                return Self {
                    child: Some(child),
                    port,
                    args,
                };
            }
        }
        panic!("could not start redis-server on a free port after 5 attempts");
    }

    /// A section of `INFO`, read with `redis-cli`.
    pub fn info(&self, section: &str) -> String {
        self.cli(&["INFO", section])
    }

    /// Runs a command with `redis-cli` against this server; returns its output.
    pub fn cli(&self, command: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(command)
            .output()
            .expect("redis-cli runs (apt-get install redis-tools)");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port())
    }

    /// Kills the server (as a crash would) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(
                std::env::temp_dir().join(format!("tower-bearer-test-{}.rdb", self.port)),
            );
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
        self.child =
            Some(spawn_on(self.port, &self.args).expect("redis-server restarts on its port"));
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn_on(port: u16, args: &[String]) -> Option<Child> {
    let mut child = match Command::new("redis-server")
        .args(["--port", &port.to_string()])
        .args(args)
        .args(["--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        // A replica that resynchronises (a demoted primary, after a failover) writes the
        // RDB it receives: into the temp dir, under a name of its own, not into the
        // working directory.
        .arg("--dir")
        .arg(std::env::temp_dir())
        .args(["--dbfilename", &format!("tower-bearer-test-{port}.rdb")])
        // A replica syncs at once, not after the 5 s Redis waits for more replicas.
        .args(["--repl-diskless-sync-delay", "0"])
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

pub(super) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port on 127.0.0.1")
}

pub(super) fn ping(port: u16) -> bool {
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
    /// The test's own server, if any: it runs while this lives.
    _server: Option<RedisServer>,
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
            _server: server,
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

    /// The key of the record of the token hashed `hash`: the prefix, `t:` and the 32 raw
    /// bytes of the hash.
    pub fn token_key(&self, hash: &tower_bearer::token::TokenHash) -> Vec<u8> {
        token_key(&self.prefix, hash)
    }

    /// Where versions before raw-byte keys kept the record: `token:` and the hex hash.
    pub fn legacy_token_key(&self, hash: &tower_bearer::token::TokenHash) -> String {
        format!("{}token:{}", self.prefix, hash.to_hex())
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

/// A TCP proxy in front of a Redis, for what a real server cannot be made to do to one
/// client only:
///
/// - black-hole the subscriber connections (those that send `SUBSCRIBE`): keep them open
///   but pass nothing either way, as a hung connection or a partition would, while the
///   data connections go on working;
/// - cut every open connection, as a network blip or a failover would;
/// - tell the addresses Redis sees the subscriber connections come from, to drop exactly
///   those (`CLIENT KILL ADDR`) on a server other tests share.
pub struct RedisProxy {
    /// The Redis URL with the proxy's address in place of the server's.
    pub url: String,
    state: std::sync::Arc<ProxyState>,
    accept: tokio::task::JoinHandle<()>,
}

struct ProxyState {
    black_hole: std::sync::atomic::AtomicBool,
    subscribers: std::sync::Mutex<Vec<std::net::SocketAddr>>,
    accepted: AtomicU64,
    /// Bumped to cut the connections open at that moment.
    cuts: tokio::sync::watch::Sender<u64>,
}

impl RedisProxy {
    /// A proxy on a free port of 127.0.0.1 to the Redis at `url` (`redis://`, host and port).
    pub async fn start(url: &str) -> Self {
        let (scheme, rest) = url.split_once("://").expect("a redis:// URL");
        assert_eq!(scheme, "redis", "the proxy speaks plain TCP only");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, server) = match authority.rsplit_once('@') {
            Some((credentials, server)) => (format!("{credentials}@"), server),
            None => (String::new(), authority),
        };
        let server = if server.contains(':') {
            server.to_owned()
        } else {
            format!("{server}:6379")
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        let state = std::sync::Arc::new(ProxyState {
            black_hole: std::sync::atomic::AtomicBool::new(false),
            subscribers: std::sync::Mutex::new(Vec::new()),
            accepted: AtomicU64::new(0),
            cuts: tokio::sync::watch::Sender::new(0),
        });
        let accept = tokio::spawn({
            let state = state.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    state.accepted.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(relay(client, server.clone(), state.clone()));
                }
            }
        });
        Self {
            url: format!("redis://{credentials}{address}/{path}"),
            state,
            accept,
        }
    }

    /// From now on, subscriber connections (open ones and new ones) pass nothing.
    pub fn black_hole_subscribers(&self) {
        self.state.black_hole.store(true, Ordering::SeqCst);
    }

    /// Subscriber connections pass everything again.
    pub fn heal(&self) {
        self.state.black_hole.store(false, Ordering::SeqCst);
    }

    /// Closes every connection open now, on both sides; later ones are relayed as usual.
    pub fn cut_connections(&self) {
        self.state.cuts.send_modify(|cuts| *cuts += 1);
    }

    /// How many connections the proxy has accepted so far.
    pub fn connections_accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Where the subscriber connections made so far come from, as Redis sees them (the
    /// `addr` of `CLIENT LIST`).
    pub fn subscriber_addresses(&self) -> Vec<std::net::SocketAddr> {
        self.state
            .subscribers
            .lock()
            .expect("the proxy's state")
            .clone()
    }
}

impl Drop for RedisProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut_connections();
    }
}

/// Relays one connection until either side closes it or it is cut (then closes both).
async fn relay(
    mut client: tokio::net::TcpStream,
    server: String,
    state: std::sync::Arc<ProxyState>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut cut = state.cuts.subscribe();
    let Ok(mut upstream) = tokio::net::TcpStream::connect(&server).await else {
        return;
    };
    let Ok(seen_as) = upstream.local_addr() else {
        return;
    };
    let subscriber = std::sync::atomic::AtomicBool::new(false);
    let silenced = || subscriber.load(Ordering::SeqCst) && state.black_hole.load(Ordering::SeqCst);
    let (mut from_client, mut to_client) = client.split();
    let (mut from_server, mut to_server) = upstream.split();
    let requests = async {
        let mut buffer = vec![0u8; 16 * 1024];
        // The end of what came before, so a command split over two reads is still seen.
        let mut recent: Vec<u8> = Vec::new();
        while let Ok(read @ 1..) = from_client.read(&mut buffer).await {
            let chunk = &buffer[..read];
            if !subscriber.load(Ordering::SeqCst) {
                recent.extend_from_slice(chunk);
                if recent
                    .windows(b"SUBSCRIBE".len())
                    .any(|window| window.eq_ignore_ascii_case(b"SUBSCRIBE"))
                {
                    subscriber.store(true, Ordering::SeqCst);
                    state
                        .subscribers
                        .lock()
                        .expect("the proxy's state")
                        .push(seen_as);
                }
                let keep = recent.len().saturating_sub(b"SUBSCRIBE".len());
                recent.drain(..keep);
            }
            if !silenced() && to_server.write_all(chunk).await.is_err() {
                return;
            }
        }
    };
    let replies = async {
        let mut buffer = vec![0u8; 16 * 1024];
        while let Ok(read @ 1..) = from_server.read(&mut buffer).await {
            if !silenced() && to_client.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = requests => {}
        () = replies => {}
        _ = cut.changed() => {}
    }
}

/// A key prefix no other test uses: the process, the time and a counter.
pub(super) fn unique_prefix() -> String {
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

/// Sets an ACL rule of the default user on the Redis at `url`: `-del` makes every `DEL`
/// fail from then on (as a timeout or a failover would), `+del` allows it again.
pub async fn set_default_user_acl(url: &str, rule: &str) {
    let mut connection = redis::Client::open(url)
        .expect("a valid url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the redis-server");
    let () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg(rule)
        .query_async(&mut connection)
        .await
        .expect("ACL SETUSER");
}

/// The key of the record of the token hashed `hash` under `prefix`.
pub fn token_key(prefix: &str, hash: &tower_bearer::token::TokenHash) -> Vec<u8> {
    let mut key = format!("{prefix}t:").into_bytes();
    key.extend_from_slice(hash.as_bytes());
    key
}
