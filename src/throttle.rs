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

    /// Counts a login attempt before the backend is asked, refusing it when
    /// the user or the client has no attempt left. Checking and counting are
    /// one step, so attempts sent all at once are counted as they arrive and
    /// cannot all pass the check before the first one fails. The attempt
    /// stays counted as a failure unless [`Throttle::succeeded`] or
    /// [`Throttle::abandoned`] says otherwise.
    pub async fn begin_login(&self, username: &str, client: IpAddr) -> Result<Attempt, Throttled> {
        let now = self.clock.now();
        let (user, client) = (user_key(username), client.to_string());
        let user_slot = self.reserve(&self.per_user, &user, now).await?;
        let client_slot = match self.reserve(&self.per_client, &client, now).await {
            Ok(slot) => slot,
            Err(throttled) => {
                self.release(&self.per_user, &user, user_slot).await;
                return Err(throttled);
            }
        };
        Ok(Attempt {
            user,
            client,
            user_slot,
            client_slot,
        })
    }

    /// The attempt succeeded: the user's count is cleared (under the name
    /// sent and the name the backend answered with), and the attempt does
    /// not count against the client.
    pub async fn succeeded(&self, attempt: Attempt, username: &str) {
        let answered = user_key(username);
        if answered != attempt.user {
            self.clear_user(&answered).await;
        }
        self.clear_user(&attempt.user).await;
        self.release(&self.per_client, &attempt.client, attempt.client_slot)
            .await;
    }

    /// Forgets the failures counted against one user key, here and in the
    /// shared store.
    async fn clear_user(&self, key: &str) {
        if let Some(store) = &self.shared {
            store.clear(&self.per_user.shared_key(key)).await;
        }
        self.per_user.clear(key);
    }

    /// The attempt came to nothing (the backend could not answer): it
    /// counts against neither the user nor the client.
    pub async fn abandoned(&self, attempt: Attempt) {
        self.release(&self.per_user, &attempt.user, attempt.user_slot)
            .await;
        self.release(&self.per_client, &attempt.client, attempt.client_slot)
            .await;
    }

    /// Counts a registration attempt from `client`, refusing it past the limit.
    pub async fn register(&self, client: IpAddr) -> Result<(), Throttled> {
        let now = self.clock.now();
        self.reserve(&self.registrations, &client.to_string(), now)
            .await
            .map(drop)
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

    /// Counts one event for `key` unless its limit is reached.
    async fn reserve(&self, table: &Table, key: &str, now: u64) -> Result<Slot, Throttled> {
        let limit = table.limit();
        if limit.count == 0 {
            return Ok(Slot::Untracked);
        }
        if let Some(store) = &self.shared {
            let window = window_of(limit);
            let shared_key = table.shared_key(key);
            if let Some(reserved) = store.reserve(&shared_key, now, window, limit.count).await {
                table.record(key.to_string(), now);
                return match reserved {
                    Ok(member) => Ok(Slot::Shared(member, now)),
                    Err(oldest) => Err(verdict_full(oldest, limit, now)),
                };
            }
        }
        table.reserve(key, now).map(|()| Slot::Local(now))
    }

    async fn release(&self, table: &Table, key: &str, slot: Slot) {
        match slot {
            Slot::Untracked => {}
            Slot::Local(at) => table.release(key, at),
            Slot::Shared(member, at) => {
                if let Some(store) = &self.shared {
                    store.release(&table.shared_key(key), &member).await;
                }
                table.release(key, at);
            }
        }
    }
}

/// A login attempt counted by [`Throttle::begin_login`].
#[derive(Debug)]
pub struct Attempt {
    user: String,
    client: String,
    user_slot: Slot,
    client_slot: Slot,
}

/// Where an attempt was counted, so that it can be taken back.
#[derive(Debug)]
enum Slot {
    /// The limit is off.
    Untracked,
    /// In this process, at this second.
    Local(u64),
    /// In the shared store under this member (and locally at this second).
    Shared(String, u64),
}

/// Characters of a username that make its key: longer names are refused
/// before the backend anyway, and must not make the table grow.
const KEY_CHARS: usize = 256;

/// One key for all the spellings a directory takes for one name: most
/// compare usernames without case, after compatibility normalisation
/// (fullwidth letters), ignoring leading, trailing and repeated spaces and
/// invisible characters. Keys are bounded in length.
fn user_key(username: &str) -> String {
    use unicode_normalization::UnicodeNormalization;

    let visible = username
        .nfkc()
        .filter(|c| !is_invisible(*c))
        .collect::<String>()
        .to_lowercase();
    let words: Vec<&str> = visible.split_whitespace().collect();
    words.join(" ").chars().take(KEY_CHARS).collect()
}

/// Characters that render as nothing: soft hyphen, zero-width spaces and
/// joiners, word joiner, byte order mark, and controls.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
        || c.is_control()
}

fn window_of(limit: Limit) -> u64 {
    limit.window.as_secs().max(1)
}

/// Refuses when `count` events fill the limit; the wait ends one window
/// after the oldest of them.
fn verdict(oldest: Option<u64>, count: usize, limit: Limit, now: u64) -> Result<(), Throttled> {
    if count < limit.count {
        return Ok(());
    }
    Err(verdict_full(oldest.unwrap_or(now), limit, now))
}

fn verdict_full(oldest: u64, limit: Limit, now: u64) -> Throttled {
    let retry_after = (oldest + window_of(limit)).saturating_sub(now).max(1);
    Throttled { retry_after }
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

    /// Counts one event unless the limit is reached, under one lock so
    /// that concurrent callers are counted one after the other.
    fn reserve(&self, key: &str, now: u64) -> Result<(), Throttled> {
        let mut state = self.lock();
        let limit = state.limit;
        let cutoff = now.saturating_sub(window_of(limit));
        if let Some(times) = state.entries.get_mut(key) {
            forget_before(times, cutoff);
            verdict(times.front().copied(), times.len(), limit, now)?;
        }
        self.push(&mut state, key.to_string(), now, cutoff);
        Ok(())
    }

    /// Counts one event whatever the limit (to mirror the shared store).
    fn record(&self, key: String, now: u64) {
        let mut state = self.lock();
        let cutoff = now.saturating_sub(window_of(state.limit));
        self.push(&mut state, key, now, cutoff);
    }

    fn push(&self, state: &mut TableState, key: String, now: u64, cutoff: u64) {
        if state.entries.len() >= self.capacity && !state.entries.contains_key(&key) {
            make_room(&mut state.entries, cutoff, self.capacity);
        }
        let count = state.limit.count;
        let times = state.entries.entry(key).or_default();
        forget_before(times, cutoff);
        times.push_back(now);
        while times.len() > count {
            times.pop_front();
        }
    }

    /// Takes back one event counted at `at`.
    fn release(&self, key: &str, at: u64) {
        let mut state = self.lock();
        let Some(times) = state.entries.get_mut(key) else {
            return;
        };
        if let Some(index) = times.iter().rposition(|&t| t == at) {
            times.remove(index);
        }
        if times.is_empty() {
            state.entries.remove(key);
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

    /// One refused login, as the handlers report it.
    async fn fail(throttle: &Throttle, user: &str, client: IpAddr) -> Result<(), Throttled> {
        throttle.begin_login(user, client).await.map(drop)
    }

    #[tokio::test]
    async fn a_user_is_locked_out_after_the_limit_until_the_window_passes() {
        let clock = Arc::new(FakeClock(AtomicU64::new(1_000)));
        let throttle = Throttle::new(&settings(3, 100), clock.clone());
        for _ in 0..3 {
            assert!(fail(&throttle, "alice", ip(1)).await.is_ok());
            clock.0.fetch_add(10, Ordering::SeqCst);
        }
        let locked = Err(Throttled { retry_after: 270 });
        assert_eq!(throttle.begin_login("alice", ip(2)).await.map(drop), locked);
        assert_eq!(throttle.begin_login("ALICE", ip(2)).await.map(drop), locked);
        assert!(
            fail(&throttle, "bob", ip(1)).await.is_ok(),
            "other users are not affected"
        );

        clock.0.store(1_000 + 300, Ordering::SeqCst);
        assert!(
            fail(&throttle, "alice", ip(1)).await.is_ok(),
            "the oldest failure left the window"
        );
    }

    #[tokio::test]
    async fn attempts_sent_at_once_are_counted_as_they_arrive() {
        let clock = Arc::new(FakeClock(AtomicU64::new(1_000)));
        let throttle = Arc::new(Throttle::new(&settings(5, 1_000), clock));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let throttle = Arc::clone(&throttle);
            tasks.spawn(async move { throttle.begin_login("alice", ip(1)).await.is_ok() });
        }
        let passed = tasks.join_all().await.into_iter().filter(|ok| *ok).count();
        assert_eq!(passed, 5, "only the limit reaches the backend");
    }

    #[tokio::test]
    async fn a_client_is_throttled_across_usernames_and_others_are_not() {
        let clock = Arc::new(FakeClock(AtomicU64::new(1_000)));
        let throttle = Throttle::new(&settings(100, 4), clock);
        for n in 0..4 {
            assert!(fail(&throttle, &format!("user{n}"), ip(1)).await.is_ok());
        }
        assert!(fail(&throttle, "someone", ip(1)).await.is_err());
        assert!(fail(&throttle, "someone", ip(2)).await.is_ok());
    }

    #[tokio::test]
    async fn success_clears_the_users_count_and_does_not_count_for_the_client() {
        let clock = Arc::new(FakeClock(AtomicU64::new(1_000)));
        let throttle = Throttle::new(&settings(2, 2), clock);
        assert!(fail(&throttle, "alice", ip(1)).await.is_ok());
        let attempt = throttle.begin_login("alice", ip(1)).await;
        throttle
            .succeeded(attempt.unwrap_or_else(|t| panic!("{t:?}")), "alice")
            .await;
        assert!(fail(&throttle, "alice", ip(2)).await.is_ok());
        assert!(
            fail(&throttle, "bob", ip(1)).await.is_ok(),
            "the success was not counted"
        );
    }

    #[tokio::test]
    async fn an_abandoned_attempt_counts_for_nobody() {
        let clock = Arc::new(FakeClock(AtomicU64::new(1_000)));
        let throttle = Throttle::new(&settings(1, 1), clock);
        let attempt = throttle.begin_login("alice", ip(1)).await;
        throttle
            .abandoned(attempt.unwrap_or_else(|t| panic!("{t:?}")))
            .await;
        assert!(fail(&throttle, "alice", ip(1)).await.is_ok());
    }

    #[tokio::test]
    async fn a_flood_of_usernames_stays_within_capacity() {
        let clock = Arc::new(FakeClock(AtomicU64::new(1_000)));
        let throttle = Throttle::with_capacity(&settings(5, 0), clock.clone(), 1_000);
        for n in 0..50_000 {
            let _ = fail(&throttle, &format!("random{n}"), ip(1)).await;
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
        for spelling in [
            "  alice ",
            "ＡＬＩＣＥ",
            "al\u{ad}ice",
            "ali\u{200b}ce",
            "ALICE\t",
        ] {
            assert_eq!(user_key(spelling), "alice", "{spelling:?}");
        }
        assert_eq!(user_key("smith,   john"), "smith, john");
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
