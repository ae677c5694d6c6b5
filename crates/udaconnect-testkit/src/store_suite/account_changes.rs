//! What an account changes of itself (its sessions, its addresses) and what an admin changes
//! of it (its role), on every engine.

use chrono::{DateTime, TimeDelta, Utc};
use udaconnect_core::auth::{
    AddressSlot, Email, EmailChange, NewSession, Role, SessionInfo, TokenSecret,
};
use udaconnect_core::ports::DynAccountStore;
use udaconnect_core::ErrorCode;

use super::accounts::{attendee, create, new_account, new_token, t0};
use super::StoreEngine;

fn email(address: &str) -> Email {
    Email::parse(address).unwrap()
}

/// Records `change` at [`t0`] and issues its link, valid until `until`.
async fn change_link(
    store: &DynAccountStore,
    change: EmailChange,
    until: DateTime<Utc>,
) -> TokenSecret {
    let (key, address) = (change.key.clone(), change.email.clone());
    store.request_email_change(change, t0()).await.unwrap();
    store
        .issue_email_link(&key, &address, until, t0())
        .await
        .unwrap()
        .expect("a link to the recorded change")
}

/// Sessions are listed (live ones, oldest first, the asking one marked) and ended by their
/// number, only by their own account; their use is recorded to the minute.
pub async fn sessions_are_listed_and_ended_by_number<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.accounts();
    let ana = attendee(&store, 10, "ana@example.org").await;
    let ben = attendee(&store, 20, "ben@example.org").await;
    let until = t0() + TimeDelta::days(1);
    let long_agent = format!("Firefox\u{7}/{}", "9".repeat(300));
    let laptop = store
        .start_session(NewSession::new(ana.id, Some(&long_agent), until), t0())
        .await
        .unwrap();
    let phone = store
        .start_session(
            NewSession::new(ana.id, Some("Phone"), until + TimeDelta::hours(1)),
            t0() + TimeDelta::seconds(1),
        )
        .await
        .unwrap();
    let short = store
        .start_session(
            NewSession::new(ana.id, None, t0() + TimeDelta::minutes(5)),
            t0(),
        )
        .await
        .unwrap();
    let bens = store.create_session(ben.id, until, t0()).await.unwrap();

    let listed = store.sessions(ana.id, Some(&phone), t0()).await.unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    let ids: Vec<i64> = listed.iter().map(|s| s.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let agent = listed[0].user_agent.as_deref().unwrap();
    assert!(
        agent.starts_with("Firefox/999") && agent.chars().count() == 200,
        "{agent}"
    );
    assert_eq!(
        listed[1],
        SessionInfo {
            id: listed[1].id,
            created: t0() + TimeDelta::seconds(1),
            expires: until + TimeDelta::hours(1),
            last_used: None,
            user_agent: Some("Phone".into()),
            current: true,
        }
    );
    assert_eq!(listed[2].user_agent, None);
    assert_eq!(
        listed.iter().filter(|s| s.current).count(),
        1,
        "only the asking session is current"
    );
    assert!(store
        .sessions(ana.id, None, t0())
        .await
        .unwrap()
        .iter()
        .all(|s| !s.current));
    // Expired sessions are not listed.
    let later = t0() + TimeDelta::minutes(10);
    assert_eq!(store.sessions(ana.id, None, later).await.unwrap().len(), 2);
    assert_eq!(store.verify_session(&short, later).await.unwrap(), None);

    // A use is recorded, then not again within the minute.
    let used = t0() + TimeDelta::seconds(30);
    assert!(store.verify_session(&laptop, used).await.unwrap().is_some());
    assert!(store
        .verify_session(&laptop, used + TimeDelta::seconds(20))
        .await
        .unwrap()
        .is_some());
    let laptop_info = &store.sessions(ana.id, None, used).await.unwrap()[0];
    assert_eq!(laptop_info.last_used, Some(used));

    // Ben cannot end Ana's session by its number; Ana can, once.
    let phone_id = listed[1].id;
    assert!(!store
        .revoke_session_id(ben.id, phone_id, later)
        .await
        .unwrap());
    assert!(store.verify_session(&phone, later).await.unwrap().is_some());
    assert!(store
        .revoke_session_id(ana.id, phone_id, later)
        .await
        .unwrap());
    assert!(!store
        .revoke_session_id(ana.id, phone_id, later)
        .await
        .unwrap());
    assert_eq!(store.verify_session(&phone, later).await.unwrap(), None);
    assert_eq!(
        store
            .verify_session(&laptop, later)
            .await
            .unwrap()
            .map(|p| p.account),
        Some(ana.id)
    );
    assert_eq!(store.sessions(ana.id, None, later).await.unwrap().len(), 1);
    assert_eq!(
        store
            .sessions(ben.id, Some(&bens), later)
            .await
            .unwrap()
            .len(),
        1
    );
    // An expired session is not ended again.
    assert!(!store
        .revoke_session_id(ana.id, listed[2].id, later)
        .await
        .unwrap());
}

/// An address change waits for its link; the link is made only for the change recorded
/// under its mail's key and address, works once and until it expires, and a primary address
/// another account has is refused, leaving the link working.
pub async fn address_changes_apply_once_by_link<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.accounts();
    let ana = attendee(&store, 10, "ana@example.org").await;
    let ben = attendee(&store, 20, "ben@example.org").await;
    let change = |key: &str, account: i64, address: &str, slot| EmailChange {
        key: key.into(),
        account,
        email: email(address),
        slot,
    };
    let until = t0() + TimeDelta::minutes(15);
    store
        .request_email_change(
            change(
                "verify_email:a",
                ana.id,
                "Ana@New.example.org",
                AddressSlot::Primary,
            ),
            t0(),
        )
        .await
        .unwrap();
    // No link for a key or an address the API did not record.
    assert!(store
        .issue_email_link(
            "verify_email:zz",
            &email("Ana@New.example.org"),
            until,
            t0()
        )
        .await
        .unwrap()
        .is_none());
    assert!(store
        .issue_email_link("verify_email:a", &email("mallory@example.org"), until, t0())
        .await
        .unwrap()
        .is_none());
    // A retried mail's link replaces the first.
    let first = store
        .issue_email_link("verify_email:a", &email("Ana@New.example.org"), until, t0())
        .await
        .unwrap()
        .unwrap();
    let link = store
        .issue_email_link("verify_email:a", &email("Ana@New.example.org"), until, t0())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.confirm_email_change(&first, t0()).await.unwrap(),
        None
    );
    // A link is not a sign-in link, nor a session.
    assert_eq!(store.consume_sign_in_link(&link, t0()).await.unwrap(), None);
    assert_eq!(store.verify_session(&link, t0()).await.unwrap(), None);
    // Expired: nothing changes.
    assert_eq!(
        store.confirm_email_change(&link, until).await.unwrap(),
        None
    );

    let at = t0() + TimeDelta::minutes(1);
    let changed = store
        .confirm_email_change(&link, at)
        .await
        .unwrap()
        .expect("the link works");
    assert_eq!(changed.id, ana.id);
    assert_eq!(changed.email, Some(email("Ana@New.example.org")));
    assert!(changed.email_verified);
    assert_eq!(store.confirm_email_change(&link, at).await.unwrap(), None);
    assert_eq!(
        store
            .account_by_email(&email("ana@new.example.org"))
            .await
            .unwrap()
            .map(|a| a.id),
        Some(ana.id)
    );
    assert_eq!(
        store
            .account_by_email(&email("ana@example.org"))
            .await
            .unwrap(),
        None
    );
    // Used: no new token for it either.
    assert!(store
        .issue_email_link("verify_email:a", &email("Ana@New.example.org"), until, at)
        .await
        .unwrap()
        .is_none());

    // Ben asks for Ana's address (in another case): refused when followed, link kept.
    let taken = change_link(
        &store,
        change(
            "verify_email:b",
            ben.id,
            "ANA@new.example.org",
            AddressSlot::Primary,
        ),
        until,
    )
    .await;
    let refused = store.confirm_email_change(&taken, at).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Conflict, "{refused}");
    assert_eq!(
        store.account(ben.id).await.unwrap().unwrap().email,
        Some(email("ben@example.org"))
    );
    // Once Ana moves on, Ben's link (still unused) works.
    let third = change_link(
        &store,
        change(
            "verify_email:c",
            ana.id,
            "ana@third.example.org",
            AddressSlot::Primary,
        ),
        until,
    )
    .await;
    store
        .confirm_email_change(&third, at)
        .await
        .unwrap()
        .unwrap();
    let ben_now = store
        .confirm_email_change(&taken, at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ben_now.email, Some(email("ANA@new.example.org")));

    // A secondary address: set by its link, primary untouched, then removed.
    let second = change_link(
        &store,
        change(
            "verify_email:d",
            ben.id,
            "ben@home.example.org",
            AddressSlot::Secondary,
        ),
        until,
    )
    .await;
    let with_second = store
        .confirm_email_change(&second, at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        with_second.secondary_email,
        Some(email("ben@home.example.org"))
    );
    assert_eq!(with_second.email, Some(email("ANA@new.example.org")));
    assert!(store.remove_secondary_email(ben.id).await.unwrap());
    assert!(!store.remove_secondary_email(ben.id).await.unwrap());
    assert_eq!(
        store
            .account(ben.id)
            .await
            .unwrap()
            .unwrap()
            .secondary_email,
        None
    );
    // A deleted account's pending change goes with it.
    assert!(store.delete_account(ben.id).await.unwrap());
    assert!(store
        .confirm_email_change(&second, at)
        .await
        .unwrap()
        .is_none());
    let unknown = TokenSecret::generate().unwrap();
    assert!(store
        .confirm_email_change(&unknown, at)
        .await
        .unwrap()
        .is_none());
}

/// A role change takes effect for the account's sessions and revokes its tokens above the
/// new role.
pub async fn role_changes_revoke_tokens_above_the_role<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.accounts();
    let cy = create(
        &store,
        new_account(Role::Admin, Some(30), Some("cy@example.org")),
    )
    .await;
    let admin_token = store
        .create_token(new_token(&cy, "admin"), t0())
        .await
        .unwrap();
    let device_token = store
        .create_token(
            udaconnect_core::auth::NewToken {
                role: Role::Device,
                ..new_token(&cy, "phone")
            },
            t0(),
        )
        .await
        .unwrap();
    let session = store
        .create_session(cy.id, t0() + TimeDelta::days(1), t0())
        .await
        .unwrap();

    let at = t0() + TimeDelta::minutes(1);
    let changed = store
        .set_role(cy.id, Role::Attendee, at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.role, Role::Attendee);
    assert_eq!(
        store.verify_token(&admin_token.secret, at).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .token(admin_token.item.id)
            .await
            .unwrap()
            .unwrap()
            .revoked,
        Some(at)
    );
    let device = store
        .verify_token(&device_token.secret, at)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(device.role, Role::Device);
    let by_session = store.verify_session(&session, at).await.unwrap().unwrap();
    assert_eq!(by_session.role, Role::Attendee);
    assert_eq!(store.count_admins().await.unwrap(), 0);
    assert!(store
        .set_role(cy.id + 1000, Role::Admin, at)
        .await
        .unwrap()
        .is_none());
}
