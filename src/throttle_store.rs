//! The shared throttle store: failure counts kept in Redis so that every
//! replica of Kisee sees the same lockouts.
//!
//! Each key is a sorted set of failure times, trimmed to the window and to
//! the limit. When Redis cannot be reached, every call answers `None` and
//! the throttle falls back on the counts this process keeps itself; Redis
//! is tried again a few seconds later.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::metrics::gauge::Gauge;
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;

/// How long Redis is left alone after a failure.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5);

/// A Redis server holding the counts.
pub struct SharedStore {
    client: redis::Client,
    timeout: Duration,
    connection: tokio::sync::Mutex<Option<MultiplexedConnection>>,
    down_until: Mutex<Option<Instant>>,
    /// 1 while Redis answers, 0 while the local counts stand in.
    up: Gauge,
}

impl SharedStore {
    /// A store on `url` (`redis://host:port/db`); nothing connects yet.
    pub fn new(url: &str, timeout: Duration, up: Gauge) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("throttle.redis_url: {e}"))?;
        up.set(1);
        Ok(Self {
            client,
            timeout,
            connection: tokio::sync::Mutex::new(None),
            down_until: Mutex::new(None),
            up,
        })
    }

    /// Counts an event at `now` unless `limit` events are already inside
    /// the window, in one transaction: `Ok(member)` names the event counted
    /// (for [`SharedStore::release`]), `Err(oldest)` is the time of the
    /// oldest event when the window is full, `None` when Redis cannot answer.
    pub async fn reserve(
        &self,
        key: &str,
        now: u64,
        window: u64,
        limit: usize,
    ) -> Option<Result<String, u64>> {
        let member = format!("{now}-{}", crate::token::random_id());
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(key)
            .arg("-inf")
            .arg(now.saturating_sub(window))
            .ignore();
        pipe.cmd("ZADD").arg(key).arg(now).arg(&member).ignore();
        pipe.cmd("EXPIRE").arg(key).arg(window.max(1)).ignore();
        pipe.cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES");
        let (events,): (Vec<(String, f64)>,) = self.run(&pipe).await?;
        if events.len() <= limit {
            return Some(Ok(member));
        }
        self.release(key, &member).await;
        let oldest = events.first().map_or(now, |(_, score)| *score as u64);
        Some(Err(oldest))
    }

    /// Takes back an event [`SharedStore::reserve`] counted.
    pub async fn release(&self, key: &str, member: &str) {
        let mut pipe = redis::pipe();
        pipe.cmd("ZREM").arg(key).arg(member).ignore();
        let _: Option<()> = self.run(&pipe).await;
    }

    /// Forgets `key`.
    pub async fn clear(&self, key: &str) {
        let mut pipe = redis::pipe();
        pipe.cmd("DEL").arg(key).ignore();
        let _: Option<()> = self.run(&pipe).await;
    }

    /// Runs a pipeline; `None` when Redis is down or failed now.
    async fn run<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> Option<T> {
        let mut connection = self.connection().await?;
        let answer = tokio::time::timeout(self.timeout, pipe.query_async(&mut connection)).await;
        match answer {
            Ok(Ok(value)) => Some(value),
            Ok(Err(err)) => self.failed(&err.to_string()).await,
            Err(_) => self.failed("timed out").await,
        }
    }

    async fn connection(&self) -> Option<MultiplexedConnection> {
        if self.is_down() {
            return None;
        }
        let mut cached = self.connection.lock().await;
        if let Some(connection) = cached.as_ref() {
            return Some(connection.clone());
        }
        // Another request may have failed to connect while this one waited.
        if self.is_down() {
            return None;
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout);
        match self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(connection) => {
                if self.up.set(1) == 0 {
                    tracing::info!("throttle store reachable again: counts are shared");
                }
                *cached = Some(connection.clone());
                Some(connection)
            }
            Err(err) => {
                drop(cached);
                self.failed(&err.to_string()).await
            }
        }
    }

    fn is_down(&self) -> bool {
        let down_until = self.down_until.lock().unwrap_or_else(|p| p.into_inner());
        down_until.is_some_and(|until| Instant::now() < until)
    }

    async fn failed<T>(&self, error: &str) -> Option<T> {
        *self.connection.lock().await = None;
        *self.down_until.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(Instant::now() + RETRY_AFTER_FAILURE);
        if self.up.set(0) == 1 {
            tracing::warn!(
                error,
                "throttle store unreachable: counting failures in this process only"
            );
        }
        None
    }
}
