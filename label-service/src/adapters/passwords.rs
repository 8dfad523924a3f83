//! `Argon2Hasher`: password hashing with argon2id (the crate's default parameters), run on
//! the blocking thread pool so that the async threads never stall on it.
//!
//! It must never log, return or keep a password, and it answers an unknown user's check with
//! the same work as a real one, so timing does not tell whether an e-mail address exists.

use std::sync::LazyLock;

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _};

use crate::app::ports::{HashError, PasswordHasher};

/// Hashes and verifies passwords with argon2id.
#[derive(Debug, Clone, Copy, Default)]
pub struct Argon2Hasher;

impl Argon2Hasher {
    /// A hasher with argon2id's default parameters.
    pub fn new() -> Self {
        Self
    }
}

/// The PHC string of a random password, made with the same parameters as every real hash.
/// Checks of unknown users run against it, so they cost what a real check costs.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let password: [u8; 32] = rand::random();
    hash_blocking(&password).ok()
});

fn hash_blocking(password: &[u8]) -> Result<String, HashError> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|err| HashError(err.to_string()))?;
    Argon2::default()
        .hash_password(password, &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| HashError(err.to_string()))
}

fn verify_blocking(password: &[u8], hash: &str) -> bool {
    PasswordHash::new(hash)
        .is_ok_and(|parsed| Argon2::default().verify_password(password, &parsed).is_ok())
}

impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: String) -> Result<String, HashError> {
        tokio::task::spawn_blocking(move || hash_blocking(password.as_bytes()))
            .await
            .map_err(|err| HashError(format!("the hashing task failed: {err}")))?
    }

    async fn verify(&self, password: String, hash: Option<String>) -> bool {
        tokio::task::spawn_blocking(move || match hash {
            Some(hash) if PasswordHash::new(&hash).is_ok() => {
                verify_blocking(password.as_bytes(), &hash)
            }
            // An unknown user or an unreadable stored hash: spend the time of a real check
            // anyway, then refuse.
            _ => {
                if let Some(dummy) = DUMMY_HASH.as_deref() {
                    verify_blocking(password.as_bytes(), dummy);
                }
                false
            }
        })
        .await
        .unwrap_or(false)
    }
}
