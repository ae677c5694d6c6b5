//! What an attendee reading their own meetings may see of the people they met: a name only
//! where the other allows it and has not hidden the reader; a handle instead of an id for the
//! others; an e-mail address only where both asked to exchange them. Admins, and the open
//! contract of `--auth off`, are not asked for consent (see `http::names_need_consent`).

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use udaconnect_core::consent::{ContactChoices, ContactRef};
use udaconnect_core::contact::Contact;
use udaconnect_core::model::PersonId;
use udaconnect_core::track::TrackQuery;
use udaconnect_core::{Error, Result};

use crate::query::http::{ConnectionApi, SOMEONE};

/// What one reader may see of the persons of one answer.
pub struct Sight {
    pub reader: PersonId,
    /// Those of the answer's persons who let the people they met see them.
    visible: HashSet<PersonId>,
    /// The reader's requests and hidden contacts, and theirs about the reader.
    pub choices: ContactChoices,
}

impl Sight {
    /// Whether the reader sees `other`'s name: `other` allows it and has not hidden the
    /// reader.
    pub fn named(&self, other: PersonId) -> bool {
        self.visible.contains(&other) && !self.choices.is_hidden_by(other)
    }
}

impl ConnectionApi {
    /// What `reader` may see of `ids`.
    pub async fn sight(&self, reader: PersonId, ids: &[PersonId]) -> Result<Sight> {
        let store = self.auth.store().await?;
        let visible = match ids.is_empty() {
            true => HashSet::new(),
            false => store.visible_persons(ids).await?.into_iter().collect(),
        };
        let choices = store.contact_choices(reader).await?;
        Ok(Sight {
            reader,
            visible,
            choices,
        })
    }

    /// Rewrites the persons of a contacts answer for its reader: hidden contacts leave it,
    /// those the reader may not name become someone with a handle, and a revealed contact's
    /// person is followed by their `email`.
    pub async fn apply_sight(
        &self,
        sight: &Sight,
        contacts: &mut Vec<Contact>,
        persons: &mut HashMap<PersonId, Bytes>,
    ) -> Result<()> {
        contacts.retain(|c| !sight.choices.has_hidden(c.person_id));
        let store = self.auth.store().await?;
        for c in contacts.iter() {
            let Some(json) = persons.get_mut(&c.person_id) else {
                continue;
            };
            let other = c.person_id;
            let mut row = match sight.named(other) {
                true => json.to_vec(),
                false => self.someone(sight.reader, other),
            };
            if sight.choices.revealed(other) {
                let email = store.account_by_person(other).await?.and_then(|a| a.email);
                if let Some(email) = email {
                    row.extend_from_slice(b",\"email\":");
                    row.extend_from_slice(&json_string(email.as_str()));
                }
            }
            *json = Bytes::from(row);
        }
        Ok(())
    }

    /// A person the reader may not name, as written after `"person":`: null, anonymous, and
    /// the reader's handle for them.
    pub fn someone(&self, reader: PersonId, other: PersonId) -> Vec<u8> {
        let mut row = SOMEONE.to_vec();
        row.extend_from_slice(b",\"handle\":");
        row.extend_from_slice(&json_string(&self.handles.handle(reader, other)));
        row
    }

    /// The contact `target` names among the reader's contacts in `q` (the reader is
    /// `q.person_id`): by id only where the reader may name them, by handle always. Not found
    /// (404) when they did not meet in that window, or the id is not one the reader may name,
    /// so that an id never tells a reader whom they met; 422 for the reader themselves.
    pub async fn find_contact(
        &self,
        q: TrackQuery,
        target: &ContactRef,
        raw: &str,
    ) -> Result<(Contact, Sight)> {
        let me = q.person_id;
        if *target == ContactRef::Person(me) {
            return Err(Error::invalid("person_id", "is your own person"));
        }
        self.ensure_person(me).await?;
        let contacts = self.engine.contacts(q).await?;
        let ids: Vec<PersonId> = contacts.iter().map(|c| c.person_id).collect();
        let sight = self.sight(me, &ids).await?;
        let found = contacts.into_iter().find(|c| match target {
            ContactRef::Person(id) => c.person_id == *id && sight.named(*id),
            ContactRef::Handle(h) => self.handles.handle(me, c.person_id) == *h,
        });
        match found {
            Some(c) => Ok((c, sight)),
            None => Err(Error::not_found("contact in this window", raw)),
        }
    }
}

/// `s` as a JSON string.
pub fn json_string(s: &str) -> Vec<u8> {
    serde_json::to_vec(s).unwrap_or_else(|_| b"null".to_vec())
}
