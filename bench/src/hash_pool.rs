//! An experiment for the issuance benchmark: a [`Directory`] that checks passwords on a
//! dedicated, bounded pool of threads, optionally at a lower scheduling priority, instead
//! of tokio's blocking pool (what `MemoryDirectory` does).
//!
//! It answers the question "what would bounding and deprioritising Argon2 change?" with
//! numbers (`bench-server --hash-pool THREADS[:NICE]`), without touching the library.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use tokio::sync::oneshot;
use tower_bearer::password::hash_password;
use tower_bearer::{
    CustomerAccount, Directory, DirectoryError, DirectoryFuture, PasswordError, TokenKind,
};

struct Job {
    phc: Arc<str>,
    password: String,
    answer: oneshot::Sender<bool>,
}

/// Customers whose passwords are checked on `threads` dedicated threads at `nice`.
pub struct PooledDirectory {
    customers: HashMap<String, Arc<str>>,
    dummy: Arc<str>,
    jobs: Mutex<Sender<Job>>,
}

impl PooledDirectory {
    /// Starts the pool; `customers` are (email, password) pairs, hashed at once.
    ///
    /// # Errors
    /// When hashing fails.
    pub fn new(
        customers: impl IntoIterator<Item = (String, String)>,
        threads: usize,
        nice: i32,
    ) -> Result<Self, PasswordError> {
        let customers = customers
            .into_iter()
            .map(|(email, password)| Ok((email.to_lowercase(), hash_password(&password)?.into())))
            .collect::<Result<_, PasswordError>>()?;
        let dummy = hash_password("a password nobody has")?.into();
        let (jobs, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::spawn(move || work(&receiver, nice));
        }
        Ok(Self {
            customers,
            dummy,
            jobs: Mutex::new(jobs),
        })
    }
}

fn work(receiver: &Mutex<Receiver<Job>>, nice: i32) {
    if nice != 0 {
        // SAFETY: plain syscalls on this thread's own id.
        unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice);
        }
    }
    loop {
        let job = {
            let receiver = receiver.lock().unwrap_or_else(PoisonError::into_inner);
            receiver.recv()
        };
        let Ok(job) = job else {
            return;
        };
        let valid = PasswordHash::new(&job.phc).is_ok_and(|parsed| {
            argon2::Argon2::default()
                .verify_password(job.password.as_bytes(), &parsed)
                .is_ok()
        });
        let _ = job.answer.send(valid);
    }
}

impl Directory for PooledDirectory {
    fn verify<'a>(
        &'a self,
        kind: TokenKind,
        username: &'a str,
        password: &'a str,
    ) -> DirectoryFuture<'a, Option<String>> {
        let username = username.to_lowercase();
        let found = (kind == TokenKind::Customer)
            .then(|| self.customers.get(&username).cloned())
            .flatten();
        let phc = found.clone().unwrap_or_else(|| self.dummy.clone());
        let (answer, verdict) = oneshot::channel();
        let sent = self
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(Job {
                phc,
                password: password.to_owned(),
                answer,
            });
        Box::pin(async move {
            sent.map_err(|_| DirectoryError("the hashing pool stopped".into()))?;
            let valid = verdict
                .await
                .map_err(|_| DirectoryError("the hashing pool dropped a job".into()))?;
            Ok((valid && found.is_some()).then_some(username))
        })
    }

    fn customer<'a>(&'a self, email: &'a str) -> DirectoryFuture<'a, Option<CustomerAccount>> {
        let account = self
            .customers
            .contains_key(&email.to_lowercase())
            .then(|| CustomerAccount {
                subject: email.to_lowercase(),
                allows_remote_assistance: false,
            });
        Box::pin(async move { Ok(account) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checks_passwords_on_the_pool() {
        let directory =
            PooledDirectory::new([("ada@example.com".to_owned(), "s3cret".to_owned())], 1, 5)
                .unwrap();
        let ok = directory
            .verify(TokenKind::Customer, "ADA@example.com", "s3cret")
            .await
            .unwrap();
        assert_eq!(ok.as_deref(), Some("ada@example.com"));
        let wrong = directory
            .verify(TokenKind::Customer, "ada@example.com", "nope")
            .await
            .unwrap();
        assert_eq!(wrong, None);
        let unknown = directory
            .verify(TokenKind::Customer, "bob@example.com", "s3cret")
            .await
            .unwrap();
        assert_eq!(unknown, None);
    }
}
