//! Counting failed logins per user and per client, and refusing further
//! attempts before the backend is asked once a limit is reached.
//!
//! Each tracked key keeps the times of its failures inside the window (at
//! most as many as the limit), so a lockout ends exactly one window after
//! the oldest failure that counts. Tables are bounded: past their capacity,
//! expired keys are dropped first, then the keys whose last failure is
//! oldest, so a flood of invented usernames cannot exhaust memory.
//!
//! With a shared store (Redis) the counts that decide are the shared ones,
//! so replicas enforce one lockout together. This process keeps its own
//! counts as well, and decides with them whenever the store cannot answer.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::settings::{Limit, ThrottleSettings};
use crate::throttle_store::SharedStore;
use crate::token::Clock;

/// Keys tracked per table at most.
const DEFAULT_CAPACITY: usize = 100_000;

/// A refusal: how long until the next attempt may be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds to wait, at least 1.
    pub retry_after: u64,
}

/// Failure counters for logins and registrations.
pub struct Throttle {
    per_user: Table,
    per_client: Table,
    registrations: Table,
    shared: Option<SharedStore>,
    clock: Arc<dyn Clock>,
}

impl Throttle {
    /// Counters as the settings describe, on `clock`, kept in this process.
    pub fn new(settings: &ThrottleSettings, clock: Arc<dyn Clock>) -> Self {
        Self::with_capacity(settings, clock, DEFAULT_CAPACITY)
    }

    /// The same with a chosen table capacity (for tests).
    pub fn with_capacity(
        settings: &ThrottleSettings,
        clock: Arc<dyn Clock>,
        capacity: usize,
    ) -> Self {
        Self {
            per_user: Table::new("user", settings.per_user, capacity),
            per_client: Table::new("client", settings.per_client, capacity),
            registrations: Table::new("registration", settings.registrations_per_client, capacity),
            shared: None,
            clock,
        }
    }

    /// Decides with the counts of a shared store from now on.
    pub fn with_shared_store(self, store: SharedStore) -> Self {
        Self {
            shared: Some(store),
            ..self
        }
    }

    /// Whether a login for `username` from `client` may go to the backend.
    pub async fn check_login(&self, username: &str, client: IpAddr) -> Result<(), Throttled> {
        let now = self.clock.now();
        let user = self.check(&self.per_user, &user_key(username), now).await;
        let client = self.check(&self.per_client, &client.to_string(), now).await;
        match (user, client) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(a), Err(b)) => Err(Throttled {
                retry_after: a.retry_after.max(b.retry_after),
            }),
            (Err(t), _) | (_, Err(t)) => Err(t),
        }
    }

    /// Counts a refused login.
    pub async fn record_failure(&self, username: &str, client: IpAddr) {
        let now = self.clock.now();
        self.record(&self.per_user, user_key(username), now).await;
        self.record(&self.per_client, client.to_string(), now).await;
    }

    /// A successful login clears the user's count (not the client's).
    pub async fn record_success(&self, username: &str) {
        let key = user_key(username);
        if let Some(store) = &self.shared {
            store.clear(&self.per_user.shared_key(&key)).await;
        }
        self.per_user.clear(&key);
    }

    /// Counts a registration attempt from `client`, refusing it past the limit.
    pub async fn register(&self, client: IpAddr) -> Result<(), Throttled> {
        let now = self.clock.now();
        let key = client.to_string();
        self.check(&self.registrations, &key, now).await?;
        self.record(&self.registrations, key, now).await;
        Ok(())
    }

    /// Applies new limits, keeping the counts (after a settings reload).
    pub fn set_limits(&self, settings: &ThrottleSettings) {
        self.per_user.set_limit(settings.per_user);
        self.per_client.set_limit(settings.per_client);
        self.registrations
            .set_limit(settings.registrations_per_client);
    }

    /// Keys tracked in this process per table (users, clients, registering clients).
    pub fn tracked(&self) -> (usize, usize, usize) {
        (
            self.per_user.len(),
            self.per_client.len(),
            self.registrations.len(),
        )
    }

    async fn check(&self, table: &Table, key: &str, now: u64) -> Result<(), Throttled> {
        let limit = table.limit();
        if limit.count == 0 {
            return Ok(());
        }
        if let Some(store) = &self.shared {
            let window = window_of(limit);
            if let Some(times) = store.failures(&table.shared_key(key), now, window).await {
                return verdict(times.first().copied(), times.len(), limit, now);
            }
        }
        table.check(key, now)
    }

    async fn record(&self, table: &Table, key: String, now: u64) {
        let limit = table.limit();
        if limit.count == 0 {
            return;
        }
        if let Some(store) = &self.shared {
            store
                .record(&table.shared_key(&key), now, window_of(limit), limit.count)
                .await;
        }
        table.record(key, now);
    }
}

/// Characters of a username that make its key: longer names are refused
/// before the backend anyway, and must not make the table grow.
const KEY_CHARS: usize = 256;

/// Usernames differing only in case are one user to most directories.
fn user_key(username: &str) -> String {
    let end = username
        .char_indices()
        .nth(KEY_CHARS)
        .map_or(username.len(), |(at, _)| at);
    username.get(..end).unwrap_or(username).to_lowercase()
}

fn window_of(limit: Limit) -> u64 {
    limit.window.as_secs().max(1)
}

/// Refuses when `count` failures fill the limit; the wait ends one window
/// after the oldest of them.
fn verdict(oldest: Option<u64>, count: usize, limit: Limit, now: u64) -> Result<(), Throttled> {
    if count < limit.count {
        return Ok(());
    }
    let oldest = oldest.unwrap_or(now);
    let retry_after = (oldest + window_of(limit)).saturating_sub(now).max(1);
    Err(Throttled { retry_after })
}

/// One table of counters with its limit.
struct Table {
    name: &'static str,
    capacity: usize,
    state: Mutex<TableState>,
}

struct TableState {
    limit: Limit,
    entries: HashMap<String, VecDeque<u64>>,
}

impl Table {
    fn new(name: &'static str, limit: Limit, capacity: usize) -> Self {
        let state = TableState {
            limit,
            entries: HashMap::new(),
        };
        Self {
            name,
            capacity: capacity.max(1),
            state: Mutex::new(state),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TableState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn shared_key(&self, key: &str) -> String {
        format!("kisee:throttle:{}:{key}", self.name)
    }

    fn limit(&self) -> Limit {
        self.lock().limit
    }

    fn set_limit(&self, limit: Limit) {
        self.lock().limit = limit;
    }

    fn check(&self, key: &str, now: u64) -> Result<(), Throttled> {
        let mut state = self.lock();
        let limit = state.limit;
        let Some(times) = state.entries.get_mut(key) else {
            return Ok(());
        };
        forget_before(times, now.saturating_sub(window_of(limit)));
        verdict(times.front().copied(), times.len(), limit, now)
    }

    fn record(&self, key: String, now: u64) {
        let mut state = self.lock();
        let limit = state.limit;
        let cutoff = now.saturating_sub(window_of(limit));
        if state.entries.len() >= self.capacity && !state.entries.contains_key(&key) {
            make_room(&mut state.entries, cutoff, self.capacity);
        }
        let times = state.entries.entry(key).or_default();
        forget_before(times, cutoff);
        times.push_back(now);
        while times.len() > limit.count {
            times.pop_front();
        }
    }

    fn clear(&self, key: &str) {
        self.lock().entries.remove(key);
    }

    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

fn forget_before(times: &mut VecDeque<u64>, cutoff: u64) {
    while times.front().is_some_and(|&t| t <= cutoff) {
        times.pop_front();
    }
}

/// Drops expired keys; if that is not enough, the older half by last
/// failure. Runs once per `capacity / 2` new keys at worst.
fn make_room(entries: &mut HashMap<String, VecDeque<u64>>, cutoff: u64, capacity: usize) {
    entries.retain(|_, times| times.back().is_some_and(|&t| t > cutoff));
    if entries.len() < capacity {
        return;
    }
    let mut last: Vec<u64> = entries.values().filter_map(|t| t.back().copied()).collect();
    let middle = last.len() / 2;
    let (_, median, _) = last.select_nth_unstable(middle);
    let median = *median;
    entries.retain(|_, times| times.back().is_some_and(|&t| t > median));
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn minutes(n: u64) -> std::time::Duration {
        std::time::Duration::from_secs(n * 60)
    }

    struct FakeClock(AtomicU64);

    impl Clock for FakeClock {
        fn now(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn settings(user: usize, client: usize) -> ThrottleSettings {
        ThrottleSettings {
            per_user: Limit {
                count: user,
                window: minutes(5),
            },
            per_client: Limit {
                count: client,
                window: minutes(5),
            },
            registrations_per_client: Limit {
                count: 2,
                window: minutes(60),
            },
            redis_url: None,
            redis_timeout: std::time::Duration::from_millis(250),
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[tokio::test]
    async fn a_user_is_locked_out_after_the_limit_until_the_window_passes() {
        let clock = Arc::new(FakeClock(AtomicU64::new(1_000)));
        let throttle = Throttle::new(&settings(3, 100), clock.clone());
        for _ in 0..3 {
            assert!(throttle.check_login("alice", ip(1)).await.is_ok());
            throttle.record_failure("alice", ip(1)).await;
            clock.0.fetch_add(10, Ordering::SeqCst);
        }
        assert_eq!(
            throttle.check_login("alice", ip(2)).await,
            Err(Throttled { retry_after: 270 })
        );
        assert_eq!(
            throttle.check_login("ALICE", ip(2)).await,
            Err(Throttled { retry_after: 270 })
        );
        assert!(
            throttle.check_login("bob", ip(1)).await.is_ok(),
            "other users are not affected"
        );

        clock.0.store(1_000 + 300, Ordering::SeqCst);
        assert!(
            throttle.check_login("alice", ip(1)).await.is_ok(),
            "the oldest failure left the window"
        );
    }

    #[tokio::test]
    async fn a_client_is_throttled_across_usernames_and_others_are_not() {
        let clock = Arc::new(FakeClock(AtomicU64::new(1_000)));
        let throttle = Throttle::new(&settings(100, 4), clock);
        for n in 0..4 {
            throttle.record_failure(&format!("user{n}"), ip(1)).await;
        }
        assert!(throttle.check_login("someone", ip(1)).await.is_err());
        assert!(throttle.check_login("someone", ip(2)).await.is_ok());
    }

    #[tokio::test]
    async fn success_clears_the_users_count() {
        let clock = Arc::new(FakeClock(AtomicU64::new(1_000)));
        let throttle = Throttle::new(&settings(2, 100), clock);
        throttle.record_failure("alice", ip(1)).await;
        throttle.record_success("alice").await;
        throttle.record_failure("alice", ip(1)).await;
        assert!(throttle.check_login("alice", ip(1)).await.is_ok());
    }

    #[tokio::test]
    async fn a_flood_of_usernames_stays_within_capacity() {
        let clock = Arc::new(FakeClock(AtomicU64::new(1_000)));
        let throttle = Throttle::with_capacity(&settings(5, 1_000_000), clock.clone(), 1_000);
        for n in 0..50_000 {
            throttle.record_failure(&format!("random{n}"), ip(1)).await;
            if n % 100 == 0 {
                clock.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let tracked = throttle.tracked().0;
        assert!(tracked <= 1_000, "{tracked} keys tracked");
    }

    #[test]
    fn keys_are_case_folded_and_bounded() {
        assert_eq!(user_key("Alice"), "alice");
        assert_eq!(user_key(&"é".repeat(10_000)).chars().count(), KEY_CHARS);
    }

    #[tokio::test]
    async fn registrations_are_limited_per_client() {
        let clock = Arc::new(FakeClock(AtomicU64::new(1_000)));
        let throttle = Throttle::new(&settings(5, 5), clock);
        assert!(throttle.register(ip(1)).await.is_ok());
        assert!(throttle.register(ip(1)).await.is_ok());
        assert!(throttle.register(ip(1)).await.is_err());
        assert!(throttle.register(ip(2)).await.is_ok());
    }
}
