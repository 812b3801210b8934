//! A throwaway `redis-server` on a free loopback port, stopped when dropped.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` this process started (`--save "" --appendonly no`: nothing on disk).
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts `redis-server` on a free port of 127.0.0.1, pinned to `cpu` with `taskset`
    /// when given, and waits until it answers `PING`.
    ///
    /// # Errors
    /// When `redis-server` (or `taskset`) cannot be run or does not answer within 10 s.
    pub fn start(cpu: Option<usize>) -> io::Result<Self> {
        let mut last_error = None;
        for _ in 0..5 {
            let port = free_port()?;
            let mut command = match cpu {
                Some(cpu) => {
                    let mut command = Command::new("taskset");
                    command.arg("-c").arg(cpu.to_string()).arg("redis-server");
                    command
                }
                None => Command::new("redis-server"),
            };
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--dir", &std::env::temp_dir().to_string_lossy()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let child = command.spawn().map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!(
                        "cannot run redis-server ({error}); install it with `apt-get install redis-server`"
                    ),
                )
            })?;
            let mut server = Self { child, port };
            match server.wait_ready(Duration::from_secs(10)) {
                Ok(()) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// The server's process id (the same as taskset's: taskset execs it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many times redis-server has run each command since it started (the `calls=` of
    /// `INFO commandstats`, by lower-case command name), leaving out `INFO` itself, which
    /// only the harness sends.
    ///
    /// # Errors
    /// When redis-server does not answer, or answers with something other than a bulk string.
    pub fn command_calls(&self) -> io::Result<BTreeMap<String, u64>> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"INFO commandstats\r\n")?;
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let length: usize = header
            .strip_prefix('$')
            .and_then(|length| length.trim_end().parse().ok())
            .ok_or_else(|| io::Error::other(format!("INFO answered {header:?}")))?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let mut calls = parse_commandstats(&String::from_utf8_lossy(&body));
        calls.remove("info");
        Ok(calls)
    }

    /// Runs one command and returns its answer: a simple or bulk string as text, an integer
    /// as its digits (`None` for a nil bulk string).
    ///
    /// # Errors
    /// When redis-server does not answer, answers with an error, or with an array.
    pub fn command(&self, args: &[&str]) -> io::Result<Option<String>> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes())?;
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        let (kind, rest) = header.split_at(header.len().min(1));
        match kind {
            "+" | ":" => Ok(Some(rest.to_owned())),
            "$" => {
                let Ok(length) = rest.parse::<i64>() else {
                    return Err(io::Error::other(format!("{args:?} answered {header:?}")));
                };
                let Ok(length) = usize::try_from(length) else {
                    return Ok(None);
                };
                let mut body = vec![0; length + 2];
                reader.read_exact(&mut body)?;
                body.truncate(length);
                Ok(Some(String::from_utf8_lossy(&body).into_owned()))
            }
            _ => Err(io::Error::other(format!("{args:?} answered {header:?}"))),
        }
    }

    /// `used_memory` of `INFO memory`: the bytes Redis's allocator holds.
    ///
    /// # Errors
    /// As [`RedisServer::command`], or when the field is missing.
    pub fn used_memory(&self) -> io::Result<u64> {
        let info = self.command(&["INFO", "memory"])?.unwrap_or_default();
        info_field(&info, "used_memory")
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| io::Error::other("INFO memory has no used_memory"))
    }

    /// `DBSIZE`: the keys of the current database.
    ///
    /// # Errors
    /// As [`RedisServer::command`], or when the answer is not a number.
    pub fn dbsize(&self) -> io::Result<u64> {
        self.command(&["DBSIZE"])?
            .and_then(|value| value.parse().ok())
            .ok_or_else(|| io::Error::other("DBSIZE answered no number"))
    }

    /// `MEMORY USAGE key SAMPLES 0`: the bytes of one key and its value; `None` when the key
    /// does not exist.
    ///
    /// # Errors
    /// As [`RedisServer::command`].
    pub fn memory_usage(&self, key: &str) -> io::Result<Option<u64>> {
        Ok(self
            .command(&["MEMORY", "USAGE", key, "SAMPLES", "0"])?
            .and_then(|value| value.parse().ok()))
    }

    fn wait_ready(&mut self, limit: Duration) -> io::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Err(io::Error::other(format!("redis-server exited: {status}")));
            }
            if ping(self.port).unwrap_or(false) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("redis-server did not answer PING in time"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago on 127.0.0.1.
///
/// # Errors
/// When no socket can be bound.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The `calls=` of each `cmdstat_<name>:calls=…,usec=…` line of `INFO commandstats`, by
/// name (subcommands as Redis 7 names them, `client|setinfo`).
pub fn parse_commandstats(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let (name, fields) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = fields
                .split(',')
                .find_map(|field| field.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// The value of `field` in the `field:value` lines of an `INFO` answer.
pub fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        let (name, value) = line.trim().split_once(':')?;
        (name == field).then_some(value)
    })
}

fn ping(port: u16) -> io::Result<bool> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    stream.write_all(b"PING\r\n")?;
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer)?;
    Ok(&answer == b"+PONG\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_info_field() {
        let info = "# Memory\r\nused_memory:1021432\r\nused_memory_human:997.49K\r\n";
        assert_eq!(info_field(info, "used_memory"), Some("1021432"));
        assert_eq!(info_field(info, "used_memory_peak"), None);
    }

    #[test]
    fn reads_the_calls_of_every_command() {
        let text = "# Commandstats\r\n\
cmdstat_get:calls=180234,usec=90117,usec_per_call=0.50,rejected_calls=0,failed_calls=0\r\n\
cmdstat_evalsha:calls=2,usec=40,usec_per_call=20.00,rejected_calls=0,failed_calls=0\r\n\
cmdstat_client|setinfo:calls=4,usec=3,usec_per_call=0.75,rejected_calls=0,failed_calls=0\r\n\
cmdstat_broken:usec=3\r\n";
        let calls = parse_commandstats(text);
        assert_eq!(
            calls.into_iter().collect::<Vec<_>>(),
            [
                ("client|setinfo".to_owned(), 4),
                ("evalsha".to_owned(), 2),
                ("get".to_owned(), 180_234),
            ]
        );
    }
}
