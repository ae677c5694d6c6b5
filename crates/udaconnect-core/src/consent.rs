//! What an attendee decided about the people they met: requests to exchange e-mail addresses
//! (mutual reveal: both must ask), contacts hidden or disputed, and the opaque handle that
//! names a contact who is not visible to the reader.
//!
//! A handle is HMAC-SHA256 over the reader's and the other person's ids with a key of the
//! service's: the same pair always gives the same handle under one key, another reader gets
//! another handle for the same person, and no reader can turn one back into an id. The
//! service finds whom a handle names by computing the handles of the reader's own contacts.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use ring::hmac;

use crate::model::PersonId;
use crate::{Error, Result};

/// Where an account may choose to be shown by name; `false` (not shown) until it says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// To the people the account's person met: their name and company in those people's
    /// contacts.
    ToContacts,
    /// To organizers, on the live map (otherwise an anonymous dot).
    OnLiveMap,
}

/// What starts every handle, so a path segment tells a handle from an id at once.
pub const HANDLE_PREFIX: &str = "c_";

/// What the tag covers besides the two ids, so a handle never equals a tag made for anything
/// else under the same key.
const DOMAIN: &[u8] = b"udaconnect contact handle v1\0";

/// The key contact handles are made with.
#[derive(Clone)]
pub struct HandleKey(hmac::Key);

impl std::fmt::Debug for HandleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HandleKey(..)")
    }
}

impl HandleKey {
    /// A key of `secret`'s bytes (at least 32).
    pub fn new(secret: &[u8]) -> Result<HandleKey> {
        if secret.len() < 32 {
            return Err(Error::Internal(
                "a handle key needs 32 bytes or more".into(),
            ));
        }
        Ok(HandleKey(hmac::Key::new(hmac::HMAC_SHA256, secret)))
    }

    /// A key of 32 random bytes: handles made with it last as long as the process.
    pub fn random() -> Result<HandleKey> {
        HandleKey::new(&crate::auth::random_bytes::<32>()?)
    }

    /// The handle `reader` knows `other` by: `c_` and 22 characters of base64url (128 bits of
    /// the tag).
    pub fn handle(&self, reader: PersonId, other: PersonId) -> String {
        let mut msg = Vec::with_capacity(DOMAIN.len() + 16);
        msg.extend_from_slice(DOMAIN);
        msg.extend_from_slice(&reader.to_be_bytes());
        msg.extend_from_slice(&other.to_be_bytes());
        let tag = hmac::sign(&self.0, &msg);
        format!(
            "{HANDLE_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(&tag.as_ref()[..16])
        )
    }
}

/// How a request names a contact: by the person's id (a contact the reader may see named),
/// or by the handle of the contacts answer (someone not named there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactRef {
    Person(PersonId),
    Handle(String),
}

impl ContactRef {
    /// Reads a path segment: `c_` and 22 base64url characters, or a person id.
    pub fn parse(raw: &str) -> Result<ContactRef> {
        if let Some(rest) = raw.strip_prefix(HANDLE_PREFIX) {
            let ok = rest.len() == 22
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            return match ok {
                true => Ok(ContactRef::Handle(raw.to_string())),
                false => Err(Error::bad_request(
                    "person_id",
                    "must be a person id or a contact handle (c_ and 22 characters)",
                )),
            };
        }
        crate::validate::path_id(raw, "person_id").map(ContactRef::Person)
    }
}

/// One decision about another person, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub other: PersonId,
    pub at: DateTime<Utc>,
    /// For a hidden contact: the meeting is disputed ("I did not meet this person").
    pub dispute: bool,
}

/// Everything stored about one person's contacts, from both sides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactChoices {
    /// The persons this person asked to exchange e-mail addresses with.
    pub asked: Vec<Choice>,
    /// The persons who asked this person.
    pub asking_me: Vec<Choice>,
    /// The contacts this person hid.
    pub hidden: Vec<Choice>,
    /// The persons who hid this person: never revealed to this person.
    pub hidden_by: Vec<PersonId>,
}

impl ContactChoices {
    pub fn has_asked(&self, other: PersonId) -> bool {
        self.asked.iter().any(|c| c.other == other)
    }

    pub fn is_asked_by(&self, other: PersonId) -> bool {
        self.asking_me.iter().any(|c| c.other == other)
    }

    pub fn has_hidden(&self, other: PersonId) -> bool {
        self.hidden.iter().any(|c| c.other == other)
    }

    pub fn is_hidden_by(&self, other: PersonId) -> bool {
        self.hidden_by.contains(&other)
    }

    /// Whether the two see each other's e-mail address: both asked, and neither hid the
    /// other.
    pub fn revealed(&self, other: PersonId) -> bool {
        self.has_asked(other)
            && self.is_asked_by(other)
            && !self.has_hidden(other)
            && !self.is_hidden_by(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_per_reader_stable_and_parse() {
        let key = HandleKey::new(&[7; 32]).unwrap();
        let h = key.handle(1, 2);
        assert_eq!(h, key.handle(1, 2));
        assert_ne!(h, key.handle(3, 2));
        assert_ne!(h, key.handle(2, 1));
        assert_ne!(h, HandleKey::new(&[8; 32]).unwrap().handle(1, 2));
        assert_eq!(h.len(), 24);
        assert_eq!(
            ContactRef::parse(&h).unwrap(),
            ContactRef::Handle(h.clone())
        );
        assert_eq!(ContactRef::parse("42").unwrap(), ContactRef::Person(42));
        for bad in ["c_short", "c_!!!!!!!!!!!!!!!!!!!!!!", "x", "1.5", ""] {
            assert!(ContactRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn revealed_needs_both_and_no_hiding() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let c = |other| Choice {
            other,
            at,
            dispute: false,
        };
        let mut choices = ContactChoices {
            asked: vec![c(2), c(3)],
            asking_me: vec![c(2), c(4)],
            ..ContactChoices::default()
        };
        assert!(choices.revealed(2));
        assert!(!choices.revealed(3) && !choices.revealed(4));
        choices.hidden_by.push(2);
        assert!(!choices.revealed(2));
        choices.hidden_by.clear();
        choices.hidden.push(c(2));
        assert!(!choices.revealed(2));
    }
}
