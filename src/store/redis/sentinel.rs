//! The connection of a [`RedisStore`](super::RedisStore) behind Redis Sentinel: the current
//! primary, asked of the sentinels when it connects and again whenever the primary fails,
//! stops answering, answers `READONLY` (it was demoted), or the sentinels name another.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::Sentinel;
use redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ErrorKind, Pipeline, RedisError,
    RedisFuture, RedisResult, ServerErrorKind, Value,
};

/// A cheap handle (cloning shares it) to the connection to the primary the sentinels name.
///
/// Each request takes the current connection, or, when there is none, asks the sentinels
/// for the primary (redis-rs's [`Sentinel`], which checks with `ROLE` that the node it
/// names is a primary) and connects to it. A request that fails in a way that says the
/// primary is gone or no longer the primary (an IO error, a dropped connection, no answer
/// within the bound, `READONLY`, `MASTERDOWN`, `LOADING`) drops the connection, so the
/// next request asks the sentinels again. The failed request itself answers its error:
/// the store turns it into a [`StoreError`](crate::store::StoreError), a 503.
///
/// A background task (it ends with the last handle) also asks the sentinels every
/// [`CHECK_EVERY`] which node is the primary (`SENTINEL MASTER`, one command on a
/// connection it keeps), and drops the connection when they name another one. After a
/// failover whose old primary stays up (`SENTINEL FAILOVER`, a partition that heals), that
/// node goes on answering as a primary until the sentinels reconfigure it, some ten
/// seconds later, and what it takes meanwhile is lost when it resynchronises from the new
/// one; no error tells the store. The check narrows that window to the time the sentinels
/// take to see the promotion plus [`CHECK_EVERY`]; only `WAIT` (the store's replica
/// acknowledgements) closes it for revocations.
#[derive(Clone)]
pub(crate) struct SentinelConnection {
    shared: Arc<Shared>,
}

/// How often the sentinels are asked whether the primary is still the one connected to.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(500);

struct Shared {
    master_name: String,
    /// The bound on connecting and on each request.
    timeout: Duration,
    /// The sentinels, asked by one caller at a time (redis-rs's `Sentinel` needs `&mut`);
    /// whoever holds it is connecting, the others wait for that (each within its own bound).
    sentinels: tokio::sync::Mutex<Sentinel>,
    /// The connection to the primary, if there is one; held only to clone or replace it.
    current: Mutex<Option<Primary>>,
    /// Numbers the connections, so a failure of an old one never drops a newer one.
    generations: AtomicU64,
    /// A client of the primary last connected to, announced when it changes (for the
    /// revocation feed, which follows it).
    primaries: tokio::sync::watch::Sender<Option<Client>>,
}

#[derive(Clone)]
struct Primary {
    generation: u64,
    address: ConnectionAddr,
    connection: MultiplexedConnection,
}

impl SentinelConnection {
    /// Asks `sentinels` for the primary of `master_name` and connects to it, within
    /// `timeout`; `watcher` (the same sentinels) is the background check's. Returns the
    /// connection and, for the revocation feed, the primary as it changes.
    pub(crate) async fn connect(
        sentinels: Sentinel,
        watcher: Watcher,
        master_name: &str,
        timeout: Duration,
    ) -> RedisResult<(Self, tokio::sync::watch::Receiver<Option<Client>>)> {
        let shared = Arc::new(Shared {
            master_name: master_name.to_owned(),
            timeout,
            sentinels: tokio::sync::Mutex::new(sentinels),
            current: Mutex::new(None),
            generations: AtomicU64::new(0),
            primaries: tokio::sync::watch::Sender::new(None),
        });
        let connection = Self { shared };
        connection.primary().await?;
        tokio::spawn(watch(
            Arc::downgrade(&connection.shared),
            watcher,
            CHECK_EVERY,
        ));
        let primaries = connection.shared.primaries.subscribe();
        Ok((connection, primaries))
    }

    /// A client of each node the sentinels know now, the primary first, then its replicas
    /// (those answering `ROLE` as replicas within the bound): the revocation feed's
    /// fallbacks. Best effort: what is not known in time is left out.
    pub(crate) async fn known_nodes(&self) -> Vec<Client> {
        let mut nodes: Vec<Client> = self.shared.primaries.borrow().iter().cloned().collect();
        let replicas = tokio::time::timeout(self.shared.timeout, async {
            let mut sentinels = self.shared.sentinels.lock().await;
            sentinels
                .async_get_replica_clients(&self.shared.master_name, None)
                .await
        })
        .await;
        if let Ok(Ok(replicas)) = replicas {
            nodes.extend(replicas);
        }
        nodes
    }

    /// The current connection to the primary, connecting first when there is none.
    async fn primary(&self) -> RedisResult<Primary> {
        if let Some(primary) = self.shared.current() {
            return Ok(primary);
        }
        let mut sentinels = self.shared.sentinels.lock().await;
        // Someone else may have connected while this caller waited.
        if let Some(primary) = self.shared.current() {
            return Ok(primary);
        }
        let shared = &self.shared;
        let connect = async {
            let client = sentinels
                .async_master_for(&shared.master_name, None)
                .await?;
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(shared.timeout))
                .set_response_timeout(Some(shared.timeout));
            let connection = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            Ok::<_, RedisError>((client, connection))
        };
        let (client, connection) = tokio::time::timeout(shared.timeout, connect)
            .await
            .map_err(|_| timed_out("asking the sentinels for the primary"))??;
        let primary = Primary {
            generation: shared.generations.fetch_add(1, Ordering::AcqRel) + 1,
            address: client.get_connection_info().addr().clone(),
            connection,
        };
        tracing::info!(primary = %primary.address, "redis sentinel: connected to the primary");
        *shared.lock_current() = Some(primary.clone());
        shared.primaries.send_if_modified(|known| {
            let moved = known
                .as_ref()
                .is_none_or(|known| known.get_connection_info().addr() != &primary.address);
            if moved {
                *known = Some(client);
            }
            moved
        });
        Ok(primary)
    }

    /// Sends through the current primary with `send`, bounded; drops the connection when
    /// the answer says the primary is gone or demoted.
    async fn request<T, F>(
        &self,
        send: impl FnOnce(MultiplexedConnection) -> F,
        demoted: impl Fn(&T) -> bool,
    ) -> RedisResult<T>
    where
        F: Future<Output = RedisResult<T>>,
    {
        let primary = self.primary().await?;
        let mut in_flight = InFlight {
            shared: &self.shared,
            generation: primary.generation,
            since: Instant::now(),
            done: false,
        };
        let answer = tokio::time::timeout(self.shared.timeout, send(primary.connection)).await;
        in_flight.done = true;
        match answer {
            Ok(Ok(value)) if demoted(&value) => {
                self.shared
                    .forget(primary.generation, "the primary answered READONLY");
                Ok(value)
            }
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                if primary_lost(&error) {
                    self.shared.forget(primary.generation, error.category());
                }
                Err(error)
            }
            Err(_) => {
                self.shared
                    .forget(primary.generation, "the primary did not answer in time");
                Err(timed_out("waiting for the primary"))
            }
        }
    }
}

impl Shared {
    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<Primary>> {
        // The lock guards a plain swap: a panic cannot leave it half done.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn current(&self) -> Option<Primary> {
        self.lock_current().clone()
    }

    /// Drops the connection of `generation` (not a newer one), so the next request asks
    /// the sentinels again.
    fn forget(&self, generation: u64, why: &str) {
        let mut current = self.lock_current();
        let Some(primary) = current.take_if(|primary| primary.generation == generation) else {
            return;
        };
        drop(current);
        tracing::warn!(
            primary = %primary.address,
            why,
            "redis sentinel: connection to the primary dropped; asking the sentinels again"
        );
    }
}

/// A request on its way: dropped before it is done (the store's bound ran out first, for
/// one) after half the bound, it counts as unanswered and drops the connection.
struct InFlight<'a> {
    shared: &'a Shared,
    generation: u64,
    since: Instant,
    done: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done && self.since.elapsed() >= self.shared.timeout / 2 {
            self.shared
                .forget(self.generation, "a request was abandoned unanswered");
        }
    }
}

/// Whether `error` says the connected node is gone or is no longer the primary.
fn primary_lost(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_connection_dropped()
        || error.is_unrecoverable_error()
        || error.is_timeout()
        || matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::ReadOnly
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::BusyLoading
            )
        )
}

/// Whether an answer holds an error of a demoted primary (a pipeline's answers carry the
/// errors of its commands as values).
fn demoted_answer(value: &Value) -> bool {
    match value {
        Value::ServerError(error) => matches!(
            error.kind(),
            Some(
                ServerErrorKind::ReadOnly
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::BusyLoading
            )
        ),
        Value::Array(values) => values.iter().any(demoted_answer),
        _ => false,
    }
}

fn timed_out(what: &str) -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("redis sentinel: timed out {what}"),
    ))
}

/// What the background check asks: the sentinels in order, over connections it keeps.
pub(crate) struct Watcher {
    sentinels: Vec<(Client, Option<MultiplexedConnection>)>,
}

impl Watcher {
    /// A watcher of the sentinels at `urls`.
    pub(crate) fn new(urls: &[&str]) -> RedisResult<Self> {
        let sentinels = urls
            .iter()
            .map(|url| Ok((Client::open(*url)?, None)))
            .collect::<RedisResult<_>>()?;
        Ok(Self { sentinels })
    }

    /// The primary the first sentinel that answers names for `master_name` (host, port),
    /// asked in the order redis-rs asks them when connecting, so both see the same view.
    /// A sentinel that holds that primary down (`s_down`, `o_down`) is passed over, as
    /// redis-rs does. `None` when no sentinel names one.
    async fn named(&mut self, master_name: &str, timeout: Duration) -> Option<(String, u16)> {
        for (client, connection) in &mut self.sentinels {
            let asked = tokio::time::timeout(timeout, async {
                if connection.is_none() {
                    *connection = Some(client.get_multiplexed_async_connection().await?);
                }
                match connection {
                    Some(connection) => {
                        redis::cmd("SENTINEL")
                            .arg("MASTER")
                            .arg(master_name)
                            .query_async::<std::collections::HashMap<String, String>>(connection)
                            .await
                    }
                    None => Ok(std::collections::HashMap::new()),
                }
            })
            .await;
            let Ok(Ok(master)) = asked else {
                *connection = None; // reconnect at the next check
                continue;
            };
            let flags = master.get("flags").map_or("", String::as_str);
            if !flags.contains("master") || flags.contains("s_down") || flags.contains("o_down") {
                continue;
            }
            let port = master.get("port").and_then(|port| port.parse().ok());
            if let (Some(host), Some(port)) = (master.get("ip"), port) {
                return Some((host.clone(), port));
            }
        }
        None
    }
}

/// The host and port of a TCP address.
fn host_and_port(address: &ConnectionAddr) -> Option<(&str, u16)> {
    match address {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
            Some((host.as_str(), *port))
        }
        _ => None,
    }
}

/// Asks the sentinels every `every` which node is the primary, and drops the connection
/// when they name another one; ends when the connection's last handle is gone.
async fn watch(shared: Weak<Shared>, mut watcher: Watcher, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(live) = shared.upgrade() else {
            return;
        };
        let Some(primary) = live.current() else {
            continue; // the next request asks the sentinels anyway
        };
        // No answer says nothing of the primary: requests to it find out for themselves.
        let Some((host, port)) = watcher.named(&live.master_name, live.timeout).await else {
            continue;
        };
        if host_and_port(&primary.address) != Some((host.as_str(), port)) {
            live.forget(primary.generation, "the sentinels name another primary");
        }
    }
}

impl ConnectionLike for SentinelConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.request(
            move |mut connection| async move { connection.req_packed_command(cmd).await },
            demoted_answer,
        ))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(self.request(
            move |mut connection| async move {
                connection
                    .req_packed_commands(pipeline, offset, count)
                    .await
            },
            |values: &Vec<Value>| values.iter().any(demoted_answer),
        ))
    }

    fn get_db(&self) -> i64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(bytes: &[u8]) -> Value {
        redis::parse_redis_value(bytes).unwrap()
    }

    #[test]
    fn a_readonly_answer_says_the_primary_was_demoted_even_inside_a_pipeline() {
        let readonly = reply(b"-READONLY You can't write against a read only replica.\r\n");
        assert!(demoted_answer(&readonly));
        assert!(demoted_answer(&Value::Array(vec![
            Value::Okay,
            readonly.clone(),
        ])));
        assert!(demoted_answer(&reply(b"-LOADING Redis is loading\r\n")));
        assert!(!demoted_answer(&reply(
            b"-ERR wrong number of arguments\r\n"
        )));
        assert!(!demoted_answer(&reply(b"-NOSCRIPT No matching script\r\n")));
        assert!(!demoted_answer(&Value::Nil));
    }

    #[test]
    fn io_errors_and_readonly_errors_drop_the_primary_others_do_not() {
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(primary_lost(&io));
        assert!(primary_lost(&timed_out("a test")));
        let Value::ServerError(readonly) =
            reply(b"-READONLY You can't write against a read only replica.\r\n")
        else {
            panic!("an error reply");
        };
        assert!(primary_lost(&RedisError::from(readonly)));
        let Value::ServerError(noscript) = reply(b"-NOSCRIPT No matching script\r\n") else {
            panic!("an error reply");
        };
        assert!(!primary_lost(&RedisError::from(noscript)));
    }
}
