//! A local Redis Cluster of three masters ([`RedisCluster`]), started by the tests
//! themselves, and one test's key prefix on it ([`TestCluster`]).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tower_bearer::TokenRegistry;
use tower_bearer::store::{RedisStore, RedisStoreOptions};

use super::redis::{INSTALL_HINT, free_port, ping, unique_prefix};

/// `redis-cli` is not on PATH: what to do about it.
const CLI_INSTALL_HINT: &str = "redis-cli was not found on PATH. The Redis Cluster tests need \
    redis-server and redis-cli (7.0 or later) to start a local cluster: install them with \
    `apt-get install redis-server redis-tools` (Debian/Ubuntu) or `brew install redis` \
    (macOS), or run `./scripts/test.sh`, which installs them.";

/// Fails the test with an install hint unless `program` runs.
fn require(program: &str, hint: &str) {
    match Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!("{hint}"),
        Err(error) => panic!("could not run {program}: {error}"),
    }
}

/// A `redis-server` that cannot outlive the test binary: a watcher beside it kills it as
/// soon as the pipe to its stdin closes — on drop, and also when the test process exits
/// without running destructors (the shared cluster lives in a `static`). The shell that
/// runs both exits when the server does.
struct TetheredServer {
    shell: Child,
    _stdin: Option<std::process::ChildStdin>,
    pid: u32,
}

impl TetheredServer {
    const SCRIPT: &'static str = r#"exec 3<&0
redis-server "$@" >/dev/null 2>&1 </dev/null & pid=$!
echo $pid
( read _ <&3; kill -9 $pid 2>/dev/null ) & watcher=$!
exec 3<&-
wait $pid
kill $watcher 2>/dev/null
exit 0"#;

    fn spawn(args: &[String]) -> Self {
        let mut shell = Command::new("sh")
            .arg("-c")
            .arg(Self::SCRIPT)
            .arg("sh")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run sh");
        let mut line = String::new();
        let stdout = shell.stdout.take().expect("piped stdout");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("read the redis-server pid");
        let pid = line.trim().parse().expect("a pid");
        Self {
            _stdin: shell.stdin.take(),
            shell,
            pid,
        }
    }

    fn is_running(&mut self) -> bool {
        matches!(self.shell.try_wait(), Ok(None))
    }

    /// SIGKILL, as a crash would; returns once the server is gone.
    fn kill(&mut self) {
        if self.is_running() {
            let _ = Command::new("kill")
                .args(["-9", &self.pid.to_string()])
                .status();
        }
        let _ = self.shell.wait();
    }
}

impl Drop for TetheredServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A local Redis Cluster of three masters (no replicas) on free ports, each node with its
/// config file in a temporary directory; torn down on drop.
///
/// Nodes run with `cluster-require-full-coverage no`, so the masters left keep serving
/// their slots while one is down, and `cluster-node-timeout 2000` ms.
pub struct RedisCluster {
    nodes: Vec<(u16, Option<TetheredServer>)>,
    dir: std::path::PathBuf,
}

impl RedisCluster {
    const MASTERS: usize = 3;

    /// A cluster of its own, for a test that kills nodes (~2.5 s to start: `redis-cli
    /// --cluster create` waits for the nodes to join).
    pub fn start() -> Self {
        require("redis-server", INSTALL_HINT);
        require("redis-cli", CLI_INSTALL_HINT);
        reap_cluster_dirs();
        let dir = cluster_dirs().join(format!(
            "{}-{}",
            std::process::id(),
            unique_prefix().trim_end_matches(':')
        ));
        std::fs::create_dir_all(&dir).expect("create the cluster's directory");
        let mut cluster = Self {
            nodes: Vec::new(),
            dir,
        };
        while cluster.nodes.len() < Self::MASTERS {
            let attempts = cluster.nodes.len() + 10;
            let node = (0..attempts)
                .find_map(|_| cluster.spawn_node(cluster_port()))
                .expect("could not start a cluster node on a free port after 10 attempts");
            cluster.nodes.push(node);
        }
        let addresses: Vec<String> = cluster
            .ports()
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let output = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        cluster.wait_until_ok(&cluster.ports());
        cluster
    }

    /// One cluster for the whole test binary, started by the first test that asks. Tests
    /// sharing it keep apart by key prefix; none may kill its nodes.
    pub fn shared() -> &'static Self {
        static SHARED: std::sync::OnceLock<RedisCluster> = std::sync::OnceLock::new();
        SHARED.get_or_init(Self::start)
    }

    /// Starts one node on `port`; `None` when it does not come up (a port was taken).
    fn spawn_node(&self, port: u16) -> Option<(u16, Option<TetheredServer>)> {
        let config = self.dir.join(format!("nodes-{port}.conf"));
        let args: Vec<String> = [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            &config.to_string_lossy(),
            "--cluster-node-timeout",
            "2000",
            "--cluster-require-full-coverage",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        let mut server = TetheredServer::spawn(&args);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !server.is_running() {
                return None; // most likely the port or its bus port was taken meanwhile
            }
            if ping(port) {
                return Some((port, Some(server)));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    /// Waits until every node of `ports` says `cluster_state:ok`.
    fn wait_until_ok(&self, ports: &[u16]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for &port in ports {
            loop {
                let info = cluster_command(port, &["CLUSTER", "INFO"]).unwrap_or_default();
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {port} not ok after 20 s: {info}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// The nodes' ports, in the order they were started.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|(port, _)| *port).collect()
    }

    /// `redis://127.0.0.1:<port>` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.ports()
            .iter()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect()
    }

    /// The port of the master that holds `key`, asked of the cluster itself (`CLUSTER
    /// KEYSLOT`, `CLUSTER NODES`).
    pub fn node_of(&self, key: impl AsRef<[u8]>) -> u16 {
        let key = key.as_ref();
        let live = self
            .nodes
            .iter()
            .find(|(_, server)| server.is_some())
            .map(|(port, _)| *port)
            .expect("a live node");
        let slot: u16 = redis::Client::open(format!("redis://127.0.0.1:{live}/"))
            .and_then(|client| client.get_connection())
            .and_then(|mut connection| {
                redis::cmd("CLUSTER")
                    .arg("KEYSLOT")
                    .arg(key)
                    .query(&mut connection)
            })
            .expect("CLUSTER KEYSLOT");
        let nodes = cluster_command(live, &["CLUSTER", "NODES"]).expect("CLUSTER NODES");
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            if fields.len() < 9 || !fields[2].contains("master") {
                continue;
            }
            let owns = fields[8..].iter().any(|range| {
                let mut bounds = range.split('-').map(|bound| bound.parse::<u16>());
                match (bounds.next(), bounds.next()) {
                    (Some(Ok(start)), Some(Ok(end))) => (start..=end).contains(&slot),
                    (Some(Ok(only)), None) => only == slot,
                    _ => false,
                }
            });
            if owns {
                let address = fields[1].split('@').next().unwrap_or_default();
                let port = address.rsplit(':').next().unwrap_or_default();
                return port.parse().expect("a node port");
            }
        }
        panic!("no master owns slot {slot}: {nodes}");
    }

    /// Kills the node on `port` (SIGKILL, as a crash would).
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|(node_port, _)| *node_port == port)
            .expect("a node of this cluster");
        if let Some(mut server) = node.1.take() {
            server.kill();
        }
    }

    /// Freezes the node on `port` (SIGSTOP): connections stay open but nothing answers, as
    /// with a hung or partitioned node.
    pub fn pause(&self, port: u16) {
        self.signal(port, "-STOP");
    }

    /// Thaws a paused node (SIGCONT).
    pub fn resume(&self, port: u16) {
        self.signal(port, "-CONT");
    }

    fn signal(&self, port: u16, signal: &str) {
        let pid = self
            .nodes
            .iter()
            .find(|(node_port, _)| *node_port == port)
            .and_then(|(_, server)| server.as_ref())
            .map(|server| server.pid)
            .expect("a running node of this cluster");
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Starts the killed node on `port` again, from its config file (so it rejoins with its
    /// slots, and without its data), and waits until every node says `cluster_state:ok`.
    pub fn restart(&mut self, port: u16) {
        let (_, server) = self
            .spawn_node(port)
            .expect("the killed node restarts on its port");
        let node = self
            .nodes
            .iter_mut()
            .find(|(node_port, _)| *node_port == port)
            .expect("a node of this cluster");
        node.1 = server;
        self.wait_until_ok(&self.ports());
    }

    /// Waits until the other masters have marked the node on `port` as failed.
    pub fn wait_until_marked_failed(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for &other in self.ports().iter().filter(|&&other| other != port) {
            loop {
                let nodes = cluster_command(other, &["CLUSTER", "NODES"]).unwrap_or_default();
                let failed = nodes.lines().any(|line| {
                    let fields: Vec<&str> = line.split(' ').collect();
                    fields.len() > 2
                        && fields[1].starts_with(&format!("127.0.0.1:{port}@"))
                        && fields[2].split(',').any(|flag| flag == "fail")
                });
                if failed {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {other} has not marked {port} failed after 20 s"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.nodes.clear(); // kills every node
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where clusters keep their nodes' config files: `<pid>-<unique>` directories under
/// cargo's temporary directory for integration tests (`target/tmp`).
fn cluster_dirs() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("redis-cluster")
}

/// Removes the directories of test processes that have exited: the shared cluster lives in
/// a `static`, so its directory outlives the run (its nodes do not).
fn reap_cluster_dirs() {
    let Ok(entries) = std::fs::read_dir(cluster_dirs()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .split('-')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A free port for a cluster node: at most 55535 (the node also listens on port + 10000,
/// its cluster bus), with that bus port free too.
fn cluster_port() -> u16 {
    for _ in 0..1000 {
        let port = free_port();
        if port <= 55535 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
    panic!("no free port pair (port, port + 10000) at or below 55535");
}

/// One command to the node on `port`, its reply as text.
fn cluster_command(port: u16, args: &[&str]) -> Option<String> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let mut connection = client
        .get_connection_with_timeout(Duration::from_millis(500))
        .ok()?;
    let mut command = redis::cmd(args[0]);
    for arg in &args[1..] {
        command.arg(*arg);
    }
    match command.query::<redis::Value>(&mut connection).ok()? {
        redis::Value::BulkString(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        redis::Value::VerbatimString { text, .. } => Some(text),
        redis::Value::SimpleString(text) => Some(text),
        redis::Value::Int(number) => Some(number.to_string()),
        _ => None,
    }
}

/// A Redis Cluster for one test: the shared cluster, with a key prefix of the test's own.
pub struct TestCluster {
    pub urls: Vec<String>,
    pub prefix: String,
}

impl TestCluster {
    /// On the cluster shared by the whole test binary.
    pub fn shared() -> Self {
        Self::on(RedisCluster::shared())
    }

    /// On `cluster`.
    pub fn on(cluster: &RedisCluster) -> Self {
        Self {
            urls: cluster.urls(),
            prefix: unique_prefix(),
        }
    }

    pub fn options(&self) -> RedisStoreOptions {
        RedisStoreOptions::default().with_prefix(self.prefix.clone())
    }

    pub async fn store_with(&self, options: RedisStoreOptions) -> RedisStore {
        let urls: Vec<&str> = self.urls.iter().map(String::as_str).collect();
        RedisStore::connect_cluster(&urls, options)
            .await
            .expect("connect to the test cluster")
    }

    pub async fn store(&self) -> RedisStore {
        self.store_with(self.options()).await
    }

    pub async fn registry(&self) -> TokenRegistry {
        TokenRegistry::new(self.store().await)
    }

    /// The key of `token`'s record.
    pub fn token_key(&self, token: &tower_bearer::token::Token) -> Vec<u8> {
        super::redis::token_key(&self.prefix, &token.hash())
    }

    /// Where versions before raw-byte keys kept `token`'s record (still read when the key
    /// above holds nothing).
    pub fn legacy_token_key(&self, token: &tower_bearer::token::Token) -> String {
        format!("{}token:{}", self.prefix, token.hash().to_hex())
    }
}
