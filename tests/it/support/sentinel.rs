//! Redis Sentinel of the tests' own: a primary, its replica, and three sentinels
//! (`redis-server <conf> --sentinel`) watching them, on free ports, killed on drop
//! ([`SentinelSetup`]).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tower_bearer::TokenRegistry;
use tower_bearer::store::RedisStoreOptions;

use super::redis::{INSTALL_HINT, RedisServer, free_port, ping, unique_prefix};

/// The name the sentinels know the primary by.
pub const MASTER: &str = "tokens";

/// One sentinel: `redis-server <its config> --sentinel`, killed on drop.
struct SentinelProcess {
    child: Child,
    port: u16,
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A primary, a replica, and three sentinels (quorum 2) monitoring them as [`MASTER`]:
/// down after 1 s of silence, a failover timeout of 5 s.
pub struct SentinelSetup {
    pub primary: RedisServer,
    pub replica: RedisServer,
    sentinels: Vec<SentinelProcess>,
    dir: PathBuf,
    /// This test's key prefix.
    pub prefix: String,
}

impl SentinelSetup {
    /// Starts the servers and the sentinels, and waits until every sentinel knows the
    /// replica and the two other sentinels (so that they can elect a leader).
    pub fn start() -> Self {
        let primary = RedisServer::start();
        let replica = RedisServer::start_replica_of(&primary);
        let dir = std::env::temp_dir().join(format!(
            "tower-bearer-sentinel-{}",
            unique_prefix().trim_end_matches(':')
        ));
        std::fs::create_dir_all(&dir).expect("a temp dir for the sentinels' configs");
        let primary_port = primary.port();
        let sentinels = (0..3)
            .map(|index| start_sentinel(&dir, index, primary_port))
            .collect();
        let setup = Self {
            primary,
            replica,
            sentinels,
            dir,
            prefix: unique_prefix(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        for sentinel in &setup.sentinels {
            let port = sentinel.port.to_string();
            loop {
                let replicas = cli(&port, &["SENTINEL", "REPLICAS", MASTER]);
                let others = cli(&port, &["SENTINEL", "SENTINELS", MASTER]);
                let known_sentinels = others.lines().filter(|line| *line == "runid").count();
                if replicas.contains("slave") && known_sentinels == 2 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the sentinels did not discover each other and the replica: \
                     replicas {replicas:?}, sentinels {others:?}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        setup
    }

    /// The sentinels' URLs.
    pub fn urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|sentinel| format!("redis://127.0.0.1:{}", sentinel.port))
            .collect()
    }

    pub fn options(&self) -> RedisStoreOptions {
        RedisStoreOptions::default().with_prefix(self.prefix.clone())
    }

    /// A registry through the sentinels.
    pub async fn registry(&self, options: RedisStoreOptions) -> TokenRegistry {
        let urls = self.urls();
        let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
        TokenRegistry::redis_sentinel(&urls, MASTER, options)
            .await
            .expect("connect through the sentinels")
    }

    /// A registry straight on `server` (no sentinel), to see what that node holds.
    pub async fn registry_on(&self, server: &RedisServer) -> TokenRegistry {
        TokenRegistry::redis_with(&server.url(), self.options())
            .await
            .expect("connect to the server")
    }

    /// Runs a command on the first sentinel.
    pub fn cli(&self, command: &[&str]) -> String {
        cli(&self.sentinels[0].port.to_string(), command)
    }

    /// Whether every sentinel names the server on `port` as the primary.
    pub fn all_name(&self, server: &RedisServer) -> bool {
        let port = server.port().to_string();
        self.sentinels.iter().all(|sentinel| {
            let named = cli(
                &sentinel.port.to_string(),
                &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER],
            );
            named.lines().nth(1) == Some(port.as_str())
        })
    }

    /// `SENTINEL FAILOVER`: promotes the replica, no agreement needed.
    pub fn failover(&self) {
        let answer = self.cli(&["SENTINEL", "FAILOVER", MASTER]);
        assert!(answer.contains("OK"), "SENTINEL FAILOVER: {answer}");
    }
}

impl Drop for SentinelSetup {
    fn drop(&mut self) {
        self.sentinels.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_sentinel(dir: &std::path::Path, index: usize, primary_port: u16) -> SentinelProcess {
    for _ in 0..5 {
        let port = free_port();
        let config = dir.join(format!("sentinel-{index}.conf"));
        std::fs::write(
            &config,
            format!(
                "port {port}\n\
                 bind 127.0.0.1\n\
                 daemonize no\n\
                 dir {dir}\n\
                 sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2\n\
                 sentinel down-after-milliseconds {MASTER} 1000\n\
                 sentinel failover-timeout {MASTER} 5000\n\
                 sentinel parallel-syncs {MASTER} 1\n",
                dir = dir.display(),
            ),
        )
        .expect("write a sentinel's config");
        let mut child = match Command::new("redis-server")
            .arg(&config)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
            Err(error) => panic!("could not run redis-server --sentinel: {error}"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break; // exited: most likely the port was taken meanwhile
            }
            if ping(port) {
                return SentinelProcess { child, port };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("could not start a sentinel on a free port after 5 attempts");
}

fn cli(port: &str, command: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .args(["-p", port])
        .args(command)
        .output()
        .expect("redis-cli runs (apt-get install redis-tools)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}
