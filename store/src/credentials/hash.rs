//! Password hashes in Mosquitto's `$7$` format, generated passwords, and the checks
//! on supplied ones (see the parent module for the choices).

use std::fmt;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;

use crate::{Error, Result};

/// PBKDF2 iterations of newly issued hashes (see the module docs for the choice).
pub const HASH_ITERATIONS: u32 = 10_000;
/// Salt bytes of newly issued hashes (as `mosquitto_passwd`).
pub const SALT_LEN: usize = 12;
/// Bytes of a PBKDF2-HMAC-SHA512 hash in the `$7$` format.
pub const HASH_LEN: usize = 64;
/// Shortest password accepted from a provisioning system.
pub const MIN_PASSWORD_LEN: usize = 16;
/// Longest password accepted (MQTT allows 65535 bytes; nothing needs that many).
pub const MAX_PASSWORD_LEN: usize = 256;
/// Most iterations a stored hash may ask for: a hash that asked for billions would
/// make every connection attempt of that device burn the broker's CPU.
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// A password hash in Mosquitto's `$7$` (PBKDF2-HMAC-SHA512) format.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    iterations: u32,
    salt: Vec<u8>,
    hash: [u8; HASH_LEN],
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHash")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PasswordHash {
    /// `$7$<iterations>$<base64 salt>$<base64 hash>`, as in a Mosquitto password file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "$7${}${}${}",
            self.iterations,
            STANDARD.encode(&self.salt),
            STANDARD.encode(self.hash)
        )
    }
}

fn derive(password: &str, salt: &[u8], iterations: u32) -> [u8; HASH_LEN] {
    let mut out = [0u8; HASH_LEN];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password.as_bytes(), salt, iterations, &mut out);
    out
}

impl PasswordHash {
    /// Hashes `password` with a fresh random salt and [`HASH_ITERATIONS`].
    pub fn new(password: &str) -> Self {
        Self::with_iterations(password, HASH_ITERATIONS)
    }

    /// Hashes `password` with a fresh random salt and `iterations` (at least 1).
    pub fn with_iterations(password: &str, iterations: u32) -> Self {
        let mut salt = vec![0u8; SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let iterations = iterations.max(1);
        Self {
            hash: derive(password, &salt, iterations),
            iterations,
            salt,
        }
    }

    /// Parses the `$7$` format. Anything else (Mosquitto's older `$6$` salted SHA-512,
    /// plain text, a truncated line) is an error that says what is wrong, never a panic.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::Corrupt(format!("password hash: {why}"));
        let rest = text
            .strip_prefix("$7$")
            .ok_or_else(|| bad("not in Mosquitto's $7$ (PBKDF2-SHA512) format"))?;
        let mut parts = rest.split('$');
        let (Some(iterations), Some(salt), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected $7$<iterations>$<salt>$<hash>"));
        };
        let iterations: u32 = iterations
            .parse()
            .map_err(|_| bad("iterations is not a number"))?;
        if !(1..=MAX_ITERATIONS).contains(&iterations) {
            return Err(bad(&format!(
                "iterations must be 1 to {MAX_ITERATIONS}, got {iterations}"
            )));
        }
        let salt = STANDARD
            .decode(salt)
            .map_err(|_| bad("salt is not base64"))?;
        if salt.is_empty() || salt.len() > 64 {
            return Err(bad("salt must be 1-64 bytes"));
        }
        let hash: [u8; HASH_LEN] = STANDARD
            .decode(hash)
            .map_err(|_| bad("hash is not base64"))?
            .try_into()
            .map_err(|_| bad("hash must be 64 bytes (SHA-512)"))?;
        Ok(Self {
            iterations,
            salt,
            hash,
        })
    }

    /// Whether `password` matches, compared in constant time. CPU work (one PBKDF2
    /// run): async callers run it on a blocking thread.
    pub fn verify(&self, password: &str) -> bool {
        derive(password, &self.salt, self.iterations)
            .ct_eq(&self.hash)
            .into()
    }

    /// The PBKDF2 iteration count this hash was made with.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }
}

/// A new random password: 24 bytes from the operating system's generator, base64url
/// without padding (32 characters of `[A-Za-z0-9_-]`, safe in shells and URLs).
pub fn generate_password() -> String {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Checks a password supplied by a provisioning system.
pub fn check_supplied_password(password: &str) -> Result<()> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(Error::Invalid(format!(
            "the password has {len} characters; at least {MIN_PASSWORD_LEN} are required (or let fixahead generate one)"
        )));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(Error::Invalid(format!(
            "the password is longer than {MAX_PASSWORD_LEN} bytes"
        )));
    }
    if password.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "the password must not contain control characters (a trailing newline is removed)"
                .into(),
        ));
    }
    Ok(())
}

/// Compares two secrets in constant time (for the in-memory internal credential).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}
