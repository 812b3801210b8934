//! The load: one task signs in, one revokes (on one instance, the token then used on the
//! other), the rest use valid, revoked and never-issued tokens on either instance, and
//! every answer is judged against what the generator knows of its token.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::model::{Counters, Recovery, State, Tokens};

/// What the workers share.
pub struct Load {
    pub bases: [String; 2],
    pub tokens: Tokens,
    pub counters: Counters,
    pub recovery: Recovery,
    pub stop: AtomicBool,
    /// A revoked token answered 2xx this long after its revoke was acknowledged breaks the
    /// promise (the cache's TTL, plus the time a request takes).
    pub revoked_bound: Duration,
    /// A protected request slower than this waited past the store's bound.
    pub wait_bound: Duration,
    client: reqwest::Client,
}

impl Load {
    pub fn new(bases: [String; 2], revoked_bound: Duration, wait_bound: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        Self {
            bases,
            tokens: Tokens::default(),
            counters: Counters::default(),
            recovery: Recovery::default(),
            stop: AtomicBool::new(false),
            revoked_bound,
            wait_bound,
            client,
        }
    }

    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }
}

/// A small random source (xorshift), enough to pick tokens and instances.
struct Dice(u64);

impl Dice {
    fn new(seed: u64) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or(7);
        Self((u64::from(nanos) ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn status_of(answer: &Result<reqwest::Response, reqwest::Error>) -> String {
    match answer {
        Ok(response) => response.status().as_u16().to_string(),
        Err(error) if error.is_timeout() => "timeout".to_owned(),
        Err(error) if error.is_connect() => "connect_error".to_owned(),
        Err(_) => "transport_error".to_owned(),
    }
}

/// Signs in every `every`, on either instance; a 200 adds a valid token.
pub async fn sign_in(load: Arc<Load>, every: Duration) {
    let mut dice = Dice::new(1);
    while load.running() {
        let base = &load.bases[usize::try_from(dice.below(2)).unwrap_or(0)];
        let answer = load
            .client
            .post(format!("{base}/V1/integration/customer/token"))
            .json(&serde_json::json!({
                "username": "customer@example.com",
                "password": "password",
            }))
            .send()
            .await;
        let status = status_of(&answer);
        load.counters.answer("sign_in", &status);
        if let Ok(response) = answer
            && response.status().is_success()
            && let Ok(token) = response.json::<String>().await
        {
            load.tokens.add(token);
        }
        tokio::time::sleep(every).await;
    }
}

/// Revokes a valid token every `every` on one instance (its own token's revoke route).
pub async fn revoke(load: Arc<Load>, every: Duration) {
    let mut dice = Dice::new(2);
    while load.running() {
        tokio::time::sleep(every).await;
        let Some((token, _)) = load.tokens.pick(State::Valid, dice.next()) else {
            continue;
        };
        load.tokens.set(&token, State::Revoking);
        let base = &load.bases[usize::try_from(dice.below(2)).unwrap_or(0)];
        let answer = load
            .client
            .post(format!("{base}/V1/integration/token/revoke"))
            .bearer_auth(&token)
            .send()
            .await;
        let status = status_of(&answer);
        load.counters.answer("revoke", &status);
        let revoked = matches!(&answer, Ok(response) if response.status().is_success());
        load.tokens.set(
            &token,
            if revoked {
                State::Revoked(Instant::now())
            } else {
                State::Uncertain
            },
        );
    }
}

/// Uses tokens: valid ones half the time, revoked and never-issued ones a quarter each.
pub async fn use_tokens(load: Arc<Load>, worker: u64) {
    let mut dice = Dice::new(10 + worker);
    while load.running() {
        let roll = dice.below(4);
        let picked = match roll {
            0 | 1 => load.tokens.pick(State::Valid, dice.next()),
            2 => load
                .tokens
                .pick(State::Revoked(Instant::now()), dice.next()),
            _ => None,
        };
        let (token, state, class) = match picked {
            Some((token, State::Valid)) => (token, Some(State::Valid), "valid"),
            Some((token, state)) => (token, Some(state), "revoked"),
            None if roll == 3 => (never_issued(&mut dice), None, "never_issued"),
            None => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let base = &load.bases[usize::try_from(dice.below(2)).unwrap_or(0)];
        let sent = Instant::now();
        let answer = load
            .client
            .get(format!("{base}/V1/customers/me"))
            .bearer_auth(&token)
            .send()
            .await;
        let answered = Instant::now();
        let status = status_of(&answer);
        load.counters.answer(class, &status);
        let took = answered.saturating_duration_since(sent);
        // A refused connection (an instance restarting) is not a wait on the store.
        if took > load.wait_bound && status != "connect_error" {
            load.counters.breach(
                &load.counters.unbounded_waits,
                format!(
                    "{class} token answered {status} after {} ms",
                    took.as_millis()
                ),
            );
        }
        let Ok(response) = answer else { continue };
        let code = response.status();
        match (state, code.as_u16()) {
            (Some(State::Valid), 200) => load.recovery.served(sent, answered),
            // Judged only if no revoke of it started meanwhile.
            (Some(State::Valid), 401) if load.tokens.state(&token) == Some(State::Valid) => {
                load.counters.breach(
                    &load.counters.valid_answered_401,
                    format!("a valid token answered 401 at {base}"),
                );
            }
            (Some(State::Revoked(at)), code)
                if (200..300).contains(&code)
                    && sent.saturating_duration_since(at) > load.revoked_bound =>
            {
                load.counters.breach(
                    &load.counters.revoked_accepted,
                    format!(
                        "a token revoked {} ms before was accepted at {base}",
                        sent.saturating_duration_since(at).as_millis()
                    ),
                );
            }
            (None, code) if (200..300).contains(&code) => load.counters.breach(
                &load.counters.never_issued_accepted,
                format!("a never-issued token was accepted at {base}"),
            ),
            _ => {}
        }
    }
}

/// A token of Magento's shape that was never issued: 32 characters of `[a-z0-9]`.
fn never_issued(dice: &mut Dice) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..32)
        .map(|_| {
            let index = usize::try_from(dice.below(ALPHABET.len() as u64)).unwrap_or(0);
            char::from(ALPHABET[index])
        })
        .collect()
}
