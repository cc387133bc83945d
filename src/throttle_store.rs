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

    /// The failures of `key` inside the window, oldest first, in seconds.
    pub async fn failures(&self, key: &str, now: u64, window: u64) -> Option<Vec<u64>> {
        let cutoff = now.saturating_sub(window);
        let mut pipe = redis::pipe();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(key)
            .arg("-inf")
            .arg(cutoff)
            .ignore();
        pipe.cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES");
        let answer: Option<(Vec<(String, f64)>,)> = self.run(&pipe).await;
        let (members,) = answer?;
        Some(members.into_iter().map(|(_, score)| score as u64).collect())
    }

    /// Adds a failure at `now`, keeping at most `limit` within `window`.
    pub async fn record(&self, key: &str, now: u64, window: u64, limit: usize) {
        let member = format!("{now}-{}", crate::token::random_id());
        let keep = isize::try_from(limit).unwrap_or(isize::MAX);
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("ZADD").arg(key).arg(now).arg(member).ignore();
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(key)
            .arg("-inf")
            .arg(now.saturating_sub(window))
            .ignore();
        pipe.cmd("ZREMRANGEBYRANK")
            .arg(key)
            .arg(0)
            .arg(-keep - 1)
            .ignore();
        pipe.cmd("EXPIRE").arg(key).arg(window.max(1)).ignore();
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
        if self
            .down_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|t| Instant::now() < t)
        {
            return None;
        }
        let mut cached = self.connection.lock().await;
        if let Some(connection) = cached.as_ref() {
            return Some(connection.clone());
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
