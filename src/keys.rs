//! Upstream key pools. A client may send several keys at once (`sk-a,sk-b,sk-c`); each request
//! starts at the pool's next round-robin position, so successive requests spread over the keys,
//! and tries the others in order on failure. A key that keeps failing cools down for a while.
//! Pools are remembered by a hash of their header value, never by the keys themselves, and the
//! clock is passed in so tests control time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::convert::vocab::stable_hash;

/// Most keys accepted in one header (a client sending hundreds is hostile or broken).
pub const MAX_KEYS: usize = 64;
/// Longest single key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Failures in a row after which a key cools down.
const FAILURES_BEFORE_COOLDOWN: u32 = 3;
/// Pools remembered at once; the oldest are forgotten beyond this.
const MAX_POOLS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("no API key: send `Authorization: Bearer <key>` or `x-api-key: <key>` (several keys may be comma-separated)")]
    Missing,
    #[error("the API key header holds more than {MAX_KEYS} keys")]
    TooMany,
    #[error("an API key is longer than {MAX_KEY_LEN} bytes")]
    TooLong,
    #[error("an API key contains characters that are not allowed in a header (control characters or spaces)")]
    InvalidCharacters,
}

/// The keys of one request, in the client's order.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyList {
    keys: Vec<String>,
    pool_id: u64,
}

impl std::fmt::Debug for KeyList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print keys, even in debug output.
        f.debug_list()
            .entries(self.keys.iter().map(|k| fingerprint(k)))
            .finish()
    }
}

impl KeyList {
    /// Parses a header value: one key or a comma-separated list (blanks ignored).
    pub fn parse(header: &str) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for key in header.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            if keys.len() == MAX_KEYS {
                return Err(KeyError::TooMany);
            }
            if key.len() > MAX_KEY_LEN {
                return Err(KeyError::TooLong);
            }
            if !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(KeyError::InvalidCharacters);
            }
            keys.push(key.to_owned());
        }
        if keys.is_empty() {
            return Err(KeyError::Missing);
        }
        Ok(Self {
            pool_id: stable_hash(header.as_bytes()),
            keys,
        })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn get(&self, index: usize) -> &str {
        &self.keys[index]
    }
}

/// A short, stable identifier for a key that is safe to log: `key:` and 8 hex digits of a hash.
pub fn fingerprint(key: &str) -> String {
    format!("key:{:08x}", (stable_hash(key.as_bytes()) >> 32) as u32)
}

#[derive(Debug, Default)]
struct PoolState {
    next: usize,
    health: Vec<KeyHealth>,
    last_used: Option<Instant>,
}

#[derive(Debug, Default, Clone, Copy)]
struct KeyHealth {
    consecutive_failures: u32,
    cool_until: Option<Instant>,
}

/// Round-robin positions and key health for every pool seen, shared by all requests.
#[derive(Debug)]
pub struct KeyPools {
    pools: Mutex<HashMap<u64, PoolState>>,
    cooldown: Duration,
}

impl KeyPools {
    pub fn new(cooldown: Duration) -> Self {
        Self {
            pools: Mutex::new(HashMap::new()),
            cooldown,
        }
    }

    /// The order in which to try the members of a pool for one request: it starts at the
    /// pool's round-robin position (and advances it), with cooling members moved to the end
    /// rather than skipped, so a request always has every member to try.
    pub fn plan(&self, pool: Pool, now: Instant) -> Vec<usize> {
        let n = pool.len;
        if n == 0 {
            return Vec::new();
        }
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if pools.len() >= MAX_POOLS && !pools.contains_key(&pool.id) {
            evict_oldest(&mut pools);
        }
        let state = pools.entry(pool.id).or_default();
        state.health.resize(n, KeyHealth::default());
        state.last_used = Some(now);
        let start = state.next % n;
        state.next = (start + 1) % n;
        let (mut ready, mut cooling): (Vec<usize>, Vec<usize>) = (0..n)
            .map(|i| (start + i) % n)
            .partition(|&i| state.health[i].cool_until.is_none_or(|t| t <= now));
        ready.append(&mut cooling);
        ready
    }

    /// Records a failed attempt (auth, rate limit, overload, 5xx, connect error). Returns true
    /// when this failure started a cooldown.
    pub fn report_failure(&self, pool: Pool, index: usize, now: Instant) -> bool {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        let state = pools.entry(pool.id).or_default();
        state.health.resize(pool.len, KeyHealth::default());
        let Some(health) = state.health.get_mut(index) else {
            return false;
        };
        health.consecutive_failures += 1;
        if health.consecutive_failures >= FAILURES_BEFORE_COOLDOWN
            && health.cool_until.is_none_or(|t| t <= now)
        {
            health.cool_until = Some(now + self.cooldown);
            return true;
        }
        false
    }

    /// Records a successful attempt: the member is healthy again.
    pub fn report_success(&self, pool: Pool, index: usize) {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(health) = pools
            .get_mut(&pool.id)
            .and_then(|p| p.health.get_mut(index))
        {
            *health = KeyHealth::default();
        }
    }

    /// Whether a member is cooling down now.
    pub fn is_cooling(&self, pool: Pool, index: usize, now: Instant) -> bool {
        let pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        pools
            .get(&pool.id)
            .and_then(|p| p.health.get(index))
            .and_then(|h| h.cool_until)
            .is_some_and(|t| t > now)
    }
}

/// Names a rotation pool: a client's key list, or the deployments of a configured model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    id: u64,
    len: usize,
}

impl Pool {
    /// A pool identified by a name (deployments of a model), distinct from any key list's.
    pub fn named(name: &str, len: usize) -> Self {
        Self {
            id: stable_hash(name.as_bytes()) ^ 0x9e37_79b9_7f4a_7c15,
            len,
        }
    }
}

impl KeyList {
    /// The rotation pool of these keys.
    pub fn pool(&self) -> Pool {
        Pool {
            id: self.pool_id,
            len: self.keys.len(),
        }
    }
}

fn evict_oldest(pools: &mut HashMap<u64, PoolState>) {
    if let Some(oldest) = pools
        .iter()
        .min_by_key(|(_, p)| p.last_used)
        .map(|(id, _)| *id)
    {
        pools.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_is_round_robin_across_requests() {
        let pools = KeyPools::new(Duration::from_secs(60));
        let keys = KeyList::parse("k1, k2,k3").unwrap();
        let now = Instant::now();
        let firsts: Vec<&str> = (0..4)
            .map(|_| keys.get(pools.plan(keys.pool(), now)[0]))
            .collect();
        assert_eq!(firsts, ["k1", "k2", "k3", "k1"]);
        assert_eq!(pools.plan(keys.pool(), now), [1, 2, 0]);
    }

    #[test]
    fn failing_key_cools_down_and_comes_back() {
        let pools = KeyPools::new(Duration::from_secs(60));
        let keys = KeyList::parse("a,b").unwrap();
        let now = Instant::now();
        for _ in 0..FAILURES_BEFORE_COOLDOWN {
            pools.report_failure(keys.pool(), 0, now);
        }
        assert!(pools.is_cooling(keys.pool(), 0, now));
        // Cooling keys go last, but are still there to try.
        assert_eq!(pools.plan(keys.pool(), now), [1, 0]);
        assert_eq!(pools.plan(keys.pool(), now), [1, 0]);
        let later = now + Duration::from_secs(61);
        assert!(!pools.is_cooling(keys.pool(), 0, later));
        assert_eq!(pools.plan(keys.pool(), later), [0, 1]);
        pools.report_success(keys.pool(), 0);
        assert!(!pools.is_cooling(keys.pool(), 0, now));
    }

    #[test]
    fn hostile_key_headers_are_refused() {
        assert_eq!(KeyList::parse(" , "), Err(KeyError::Missing));
        assert_eq!(
            KeyList::parse("a\r\nx-evil: 1"),
            Err(KeyError::InvalidCharacters)
        );
        assert_eq!(
            KeyList::parse(&"k".repeat(MAX_KEY_LEN + 1)),
            Err(KeyError::TooLong)
        );
        let many = vec!["k"; MAX_KEYS + 1].join(",");
        assert_eq!(KeyList::parse(&many), Err(KeyError::TooMany));
    }

    #[test]
    fn fingerprints_and_debug_never_show_the_key() {
        let keys = KeyList::parse("sk-secret-123").unwrap();
        let shown = format!("{keys:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(fingerprint("sk-secret-123").starts_with("key:"));
        assert_ne!(fingerprint("a"), fingerprint("b"));
    }
}
