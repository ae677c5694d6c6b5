//! The gateway's word for who is asking. In distributed mode the web role authenticates each
//! request once and tells the role behind it the outcome in an [`Assertion`]: HMAC-SHA256 with
//! a key every role shares ([`GatewayKey`]), over the outcome, an expiry a minute away, and the
//! request's method and path, so an assertion cannot be kept for later nor moved to another
//! request. A role that trusts assertions believes a valid one instead of looking the
//! credential up again, and refuses a forged or expired one.
//!
//! On the wire: `v1.<payload>.<tag>`, both base64url without padding; the payload is text:
//! `<expiry, unix seconds>|<outcome>`, the outcome `-` (no credential), `p:<account>:<person
//! or ->:<role>:<scopes>` (a principal) or `r:<401|403>:<why>` (a credential refused, said by
//! the role only if the route needs a caller: a public route answers whoever asks).

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::hmac;

use super::{Principal, Role, Scopes};
use crate::{Error, Result};

/// How long an assertion is believed: long enough for a request to cross one proxy to a
/// role on a busy machine, short enough that one copied from the wire is soon useless.
pub const ASSERTION_LIFETIME_SECS: i64 = 60;

/// Shortest key taken: HMAC-SHA256's own size, 256 bits.
pub const MIN_KEY_BYTES: usize = 32;

/// What the tag covers besides the payload, so a tag made for anything else never matches.
const DOMAIN: &[u8] = b"udaconnect gateway assertion v1\0";

/// The key the gateway signs with and the roles check with, from the deployment's Secret.
/// Never printed: `Debug` says only that it is there.
#[derive(Clone)]
pub struct GatewayKey(hmac::Key);

impl GatewayKey {
    /// A key of `secret`'s bytes; refused when shorter than [`MIN_KEY_BYTES`].
    pub fn new(secret: &[u8]) -> Result<GatewayKey> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(Error::invalid(
                "gateway key",
                format!(
                    "{} bytes is too short: use at least {MIN_KEY_BYTES} random bytes \
                     (for example `openssl rand -base64 48`)",
                    secret.len()
                ),
            ));
        }
        Ok(GatewayKey(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }

    /// 32 bytes for another use of the shared secret, named by `label`: every role holding
    /// the key derives the same, and no assertion's tag is one of them.
    pub fn derive(&self, label: &str) -> [u8; 32] {
        let tag = hmac::sign(
            &self.0,
            &[b"udaconnect derived key\0", label.as_bytes()].concat(),
        );
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// What the tag is made over: the request the assertion is for, and what it says.
fn signed_bytes(method: &str, path: &str, payload: &str) -> Vec<u8> {
    [
        DOMAIN,
        method.as_bytes(),
        b"\0",
        path.as_bytes(),
        b"\0",
        payload.as_bytes(),
    ]
    .concat()
}

impl fmt::Debug for GatewayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GatewayKey(redacted)")
    }
}

/// What the gateway found out about a request's caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asserted {
    /// No credential came with the request.
    Nobody,
    Signed(Principal),
    /// A credential came and signs no one in (401), or a cookie came from another site (403).
    Refused {
        forbidden: bool,
        why: String,
    },
}

impl Asserted {
    /// The refusal as the error the role answers with.
    pub fn refusal(forbidden: bool, why: String) -> Error {
        if forbidden {
            Error::Forbidden(why)
        } else {
            Error::Unauthenticated(why)
        }
    }

    fn encode(&self) -> String {
        match self {
            Asserted::Nobody => "-".to_string(),
            Asserted::Signed(p) => format!(
                "p:{}:{}:{}:{}",
                p.account,
                p.person.map_or("-".to_string(), |id| id.to_string()),
                p.role,
                p.scopes
            ),
            Asserted::Refused { forbidden, why } => {
                format!("r:{}:{why}", if *forbidden { 403 } else { 401 })
            }
        }
    }

    fn decode(text: &str) -> Option<Asserted> {
        if text == "-" {
            return Some(Asserted::Nobody);
        }
        if let Some(rest) = text.strip_prefix("r:") {
            let (status, why) = rest.split_once(':')?;
            let forbidden = match status {
                "401" => false,
                "403" => true,
                _ => return None,
            };
            return Some(Asserted::Refused {
                forbidden,
                why: why.to_string(),
            });
        }
        let mut fields = text.strip_prefix("p:")?.splitn(4, ':');
        let account = fields.next()?.parse().ok()?;
        let person = match fields.next()? {
            "-" => None,
            id => Some(id.parse().ok()?),
        };
        let role: Role = fields.next()?.parse().ok()?;
        let scopes: Scopes = fields.next()?.parse().ok()?;
        Some(Asserted::Signed(Principal {
            account,
            person,
            role,
            scopes,
        }))
    }
}

/// An assertion about one request, as the gateway signs it and the role reads it.
pub struct Assertion;

impl Assertion {
    /// The header value asserting `who` for `method` on `path` (with its query), made at
    /// `now` (unix seconds) and believed [`ASSERTION_LIFETIME_SECS`].
    pub fn sign(key: &GatewayKey, who: &Asserted, method: &str, path: &str, now: i64) -> String {
        let payload = format!("{}|{}", now + ASSERTION_LIFETIME_SECS, who.encode());
        let tag = hmac::sign(&key.0, &signed_bytes(method, path, &payload));
        format!(
            "v1.{}.{}",
            URL_SAFE_NO_PAD.encode(payload.as_bytes()),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// What `value` asserts about the request `method` `path` at `now` (unix seconds); an
    /// error (401) when it is not made by `key` for this request or no longer holds.
    pub fn verify(
        key: &GatewayKey,
        value: &str,
        method: &str,
        path: &str,
        now: i64,
    ) -> Result<Asserted> {
        let invalid = || {
            Error::Unauthenticated(
                "the gateway's assertion is not valid for this request; \
                 send requests through the web role"
                    .into(),
            )
        };
        let mut parts = value.trim().split('.');
        let (Some("v1"), Some(payload), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        let payload = String::from_utf8(payload).map_err(|_| invalid())?;
        // Compared in constant time by ring: a forger learns nothing from how long it took.
        hmac::verify(&key.0, &signed_bytes(method, path, &payload), &tag).map_err(|_| invalid())?;
        let (expiry, who) = payload.split_once('|').ok_or_else(invalid)?;
        let expiry: i64 = expiry.parse().map_err(|_| invalid())?;
        if expiry <= now {
            return Err(Error::Unauthenticated(
                "the gateway's assertion has expired; send the request again".into(),
            ));
        }
        // One from further ahead than the gateway ever signs comes from a clock gone wrong
        // (or a key used elsewhere): believing it would stretch its life past the minute.
        if expiry > now + 2 * ASSERTION_LIFETIME_SECS {
            return Err(invalid());
        }
        Asserted::decode(who).ok_or_else(invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn key(byte: u8) -> GatewayKey {
        GatewayKey::new(&[byte; 32]).unwrap()
    }

    fn attendee() -> Asserted {
        Asserted::Signed(Principal {
            account: 7,
            person: Some(42),
            role: Role::Attendee,
            scopes: Role::Attendee.scopes(),
        })
    }

    fn all_outcomes() -> Vec<Asserted> {
        vec![
            Asserted::Nobody,
            attendee(),
            Asserted::Signed(Principal {
                account: 1,
                person: None,
                role: Role::Admin,
                scopes: Scopes::NONE,
            }),
            Asserted::Refused {
                forbidden: true,
                why: "from another site: a|b:c".into(),
            },
            Asserted::Refused {
                forbidden: false,
                why: String::new(),
            },
        ]
    }

    #[test]
    fn what_is_signed_is_read_back_for_the_same_request() {
        for who in all_outcomes() {
            let value = Assertion::sign(&key(1), &who, "GET", "/api/me?x=1", NOW);
            let read = Assertion::verify(&key(1), &value, "GET", "/api/me?x=1", NOW + 59);
            assert_eq!(read.unwrap(), who);
        }
    }

    #[test]
    fn another_key_method_or_path_is_refused() {
        let value = Assertion::sign(&key(1), &attendee(), "GET", "/api/me", NOW);
        for (k, method, path) in [
            (key(2), "GET", "/api/me"),
            (key(1), "POST", "/api/me"),
            (key(1), "GET", "/api/persons/1"),
            (key(1), "GET", "/api/me?x=1"),
        ] {
            let e = Assertion::verify(&k, &value, method, path, NOW).unwrap_err();
            assert!(
                matches!(e, Error::Unauthenticated(_)),
                "{method} {path}: {e}"
            );
        }
    }

    #[test]
    fn an_expired_assertion_is_refused() {
        let value = Assertion::sign(&key(1), &attendee(), "GET", "/api/me", NOW);
        let late = NOW + ASSERTION_LIFETIME_SECS;
        let e = Assertion::verify(&key(1), &value, "GET", "/api/me", late).unwrap_err();
        assert!(e.to_string().contains("expired"), "{e}");
    }

    #[test]
    fn one_from_too_far_ahead_is_refused() {
        let value = Assertion::sign(&key(1), &attendee(), "GET", "/api/me", NOW + 600);
        assert!(Assertion::verify(&key(1), &value, "GET", "/api/me", NOW).is_err());
    }

    #[test]
    fn a_changed_payload_is_refused() {
        // The principal changed to an admin while the tag stays: the tag no longer matches.
        let value = Assertion::sign(&key(1), &attendee(), "GET", "/api/me", NOW);
        let mut parts: Vec<String> = value.split('.').map(str::to_string).collect();
        let forged = format!("{}|p:7:42:admin:read,ingest,manage", NOW + 30);
        parts[1] = URL_SAFE_NO_PAD.encode(forged);
        let e = Assertion::verify(&key(1), &parts.join("."), "GET", "/api/me", NOW).unwrap_err();
        assert!(matches!(e, Error::Unauthenticated(_)), "{e}");
    }

    #[test]
    fn malformed_values_are_refused_not_panicked_on() {
        for value in [
            "",
            "v1",
            "v1..",
            "v2.AAAA.AAAA",
            "v1.!!!.AAAA",
            "v1.AAAA.AAAA.AAAA",
            "v1.\u{e9}.x",
        ] {
            assert!(
                Assertion::verify(&key(1), value, "GET", "/", NOW).is_err(),
                "{value:?}"
            );
        }
    }

    #[test]
    fn a_short_key_is_refused_and_a_key_is_never_printed() {
        assert!(GatewayKey::new(&[0; MIN_KEY_BYTES - 1]).is_err());
        let k = GatewayKey::new(b"0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(format!("{k:?}"), "GatewayKey(redacted)");
    }
}
