use super::AccountId;
use sha2::{Digest, Sha256};

/// Hashes PINs with a per-bank secret and the account id as salt.
///
/// A service: handlers take it as an argument, and the app is built with it.
#[derive(Clone)]
pub struct PinHasher {
    secret: String,
}

impl PinHasher {
    /// A hasher using `secret` as pepper.
    pub fn new(secret: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
        }
    }

    /// The hex hash of `pin` for `account`.
    pub fn hash(&self, account: AccountId, pin: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.secret.as_bytes());
        h.update(account.0.as_bytes());
        h.update(pin.as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `pin` matches `hash` for `account`.
    pub fn verify(&self, account: AccountId, pin: &str, hash: &str) -> bool {
        self.hash(account, pin) == hash
    }
}
