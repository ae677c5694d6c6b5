use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// What every secret starts with, so a leaked one is recognised (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "uc_";

/// Random bytes in a secret: 256 bits, beyond guessing.
const SECRET_BYTES: usize = 32;

/// Characters of the base64url (no padding) text of [`SECRET_BYTES`] bytes.
const ENCODED_LEN: usize = 43;

/// What a secret is for. Part of what is hashed, so a secret of one kind never matches a
/// hash of another: a session id is not an API token, a sign-in link is not a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// API and device tokens (`Authorization: Bearer uc_...`).
    Api,
    /// A browser session's id, in its cookie.
    Session,
    /// The token in a sign-in link sent by e-mail.
    SignInLink,
    /// The token in a link that verifies a new address of an account.
    EmailLink,
}

impl TokenKind {
    fn label(self) -> &'static [u8] {
        match self {
            TokenKind::Api => b"udaconnect api token\0",
            TokenKind::Session => b"udaconnect session\0",
            TokenKind::SignInLink => b"udaconnect sign-in link\0",
            TokenKind::EmailLink => b"udaconnect e-mail link\0",
        }
    }
}

/// A credential as its holder has it: `uc_` and 43 characters of base64url (32 random bytes).
/// Shown once, never stored, never printed: `Debug` writes `uc_…redacted` and there is no
/// `Display`; [`TokenSecret::expose`] is for the one place that hands it over.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(String);

impl TokenSecret {
    /// A new secret from the operating system's random source.
    pub fn generate() -> Result<TokenSecret> {
        Ok(TokenSecret::from_bytes(random_bytes()?))
    }

    /// The secret made of these bytes (tests, and [`TokenSecret::generate`]).
    pub fn from_bytes(bytes: [u8; SECRET_BYTES]) -> TokenSecret {
        TokenSecret(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// A secret as a client presented it; `None` when it is not of the format (then it
    /// matches no credential, and nothing needs looking up).
    pub fn parse(text: &str) -> Option<TokenSecret> {
        let encoded = text.strip_prefix(TOKEN_PREFIX)?;
        if encoded.len() != ENCODED_LEN {
            return None;
        }
        // Canonical only: the decoder refuses non-zero trailing bits, so each secret has one
        // spelling and one hash.
        let bytes = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        (bytes.len() == SECRET_BYTES).then(|| TokenSecret(text.to_string()))
    }

    /// The secret's text, to hand to its holder once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What stores keep instead of the secret.
    pub fn hash(&self, kind: TokenKind) -> TokenHash {
        let mut hasher = Sha256::new();
        hasher.update(kind.label());
        hasher.update(self.0.as_bytes());
        TokenHash(hasher.finalize().into())
    }
}

/// `N` bytes from the operating system's random source.
pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::Internal(format!("random source failed: {e}")))?;
    Ok(bytes)
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TOKEN_PREFIX}…redacted")
    }
}

/// The SHA-256 of a secret and its kind: what stores keep and look credentials up by. A
/// secret has 256 random bits, so a plain hash suffices (no salt, no slow hash: there is no
/// dictionary to try).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn from_bytes(bytes: [u8; 32]) -> TokenHash {
        TokenHash(bytes)
    }

    /// A hash read back from a store; `None` when it is not 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<TokenHash> {
        bytes.try_into().ok().map(TokenHash)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}
