//! Passwords: MLflow's policy, hashing (argon2id, PHC strings) and a short-lived cache of
//! verified credentials.
//!
//! Every request carries the password (HTTP Basic), and argon2 is deliberately slow, so a
//! successful check is remembered for [`CACHE_TTL`] as a keyed BLAKE2b digest of the password
//! (never the password itself), compared in constant time. MLflow has the same cache as an
//! opt-in (`auth_cache_ttl_seconds`); ours is on, and it is invalidated on password change,
//! admin change and deletion. Unknown users still pay one argon2 verification, so timing does
//! not reveal which usernames exist.

use crate::error::{AuthError, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use blake2::digest::{KeyInit, Mac};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

pub const CACHE_TTL: Duration = Duration::from_secs(60);

/// MLflow's password policy (`_validate_password`).
pub fn validate_password(password: &str) -> Result<()> {
    if password.chars().count() < 12 {
        return Err(AuthError::InvalidParameter("Password must be at least 12 characters.".into()));
    }
    Ok(())
}

pub fn hash(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Constant-time verification against a stored PHC string (argon2 compares in constant time).
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// Burns the same time as a real verification, for unknown usernames.
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("not-a-real-password-at-all").unwrap_or_default());
    let _ = verify(password, stored);
}

/// Verified credentials: username → (keyed digest of the password, when verified).
pub struct CredentialCache {
    key: [u8; 32],
    entries: Mutex<HashMap<String, ([u8; 32], Instant)>>,
}

type Blake2bMac256 = blake2::Blake2bMac<blake2::digest::consts::U32>;

impl CredentialCache {
    pub fn new() -> CredentialCache {
        let mut key = [0u8; 32];
        let _ = getrandom::getrandom(&mut key);
        CredentialCache { key, entries: Mutex::new(HashMap::new()) }
    }

    fn digest(&self, username: &str, password: &str) -> [u8; 32] {
        let mut mac = <Blake2bMac256 as KeyInit>::new_from_slice(&self.key).expect("32-byte key is valid");
        mac.update(username.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    pub fn check(&self, username: &str, password: &str) -> bool {
        let d = self.digest(username, password);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(username) {
            Some((stored, at)) if at.elapsed() < CACHE_TTL => bool::from(stored.ct_eq(&d)),
            _ => false,
        }
    }

    pub fn remember(&self, username: &str, password: &str) {
        let d = self.digest(username, password);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() > 10_000 {
            entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        }
        entries.insert(username.to_string(), (d, Instant::now()));
    }

    pub fn forget(&self, username: &str) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(username);
    }
}

impl Default for CredentialCache {
    fn default() -> Self {
        CredentialCache::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong", &h));
        assert!(!verify("x", "not a hash"));
    }

    #[test]
    fn cache_remembers_only_the_right_password() {
        let c = CredentialCache::new();
        assert!(!c.check("alice", "pw"));
        c.remember("alice", "pw");
        assert!(c.check("alice", "pw"));
        assert!(!c.check("alice", "other"));
        assert!(!c.check("bob", "pw"));
        c.forget("alice");
        assert!(!c.check("alice", "pw"));
    }
}
