//! Staff passwords for the admin UI, hashed with argon2id (the `argon2` crate's defaults: 19 MiB,
//! 2 passes, 1 lane, as OWASP recommends) into PHC strings.

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use rand::RngCore;

use crate::store::{self, admin as sql, users, Tx};

/// Fewer characters than this are refused.
pub const MIN_LENGTH: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("No user has the email {0}.")]
    NoSuchUser(String),
    #[error("The password must have at least {MIN_LENGTH} characters.")]
    TooShort,
    #[error(transparent)]
    Auth(#[from] super::Error),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// The argon2id PHC string of the password, with a fresh random salt.
pub fn hash(password: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let salt = SaltString::encode_b64(&bytes).expect("16 bytes make a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any password")
        .to_string()
}

/// Whether the password matches the stored PHC string; a malformed string matches nothing.
pub fn verify(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Sets the password of an existing user.
pub async fn set_password(tx: &mut Tx, email: &str, password: &str) -> Result<(), Error> {
    let email = super::normalize_email(email)?;
    if password.chars().count() < MIN_LENGTH {
        return Err(Error::TooShort);
    }
    let user = users::find_user(tx.conn(), &email)
        .await?
        .ok_or(Error::NoSuchUser(email))?;
    sql::set_password_hash(tx.conn(), user.id, Some(&hash(password))).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let phc = hash("correct horse battery");
        assert!(phc.starts_with("$argon2id$"), "{phc}");
        assert!(verify(&phc, "correct horse battery"));
        assert!(!verify(&phc, "correct horse batterY"));
        assert!(!verify(&phc, ""));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        assert_ne!(hash("same password"), hash("same password"));
    }

    #[test]
    fn a_malformed_hash_matches_nothing() {
        assert!(!verify("not a phc string", "anything"));
        assert!(!verify("", ""));
    }
}
