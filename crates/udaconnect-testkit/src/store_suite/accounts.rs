use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use udaconnect_core::auth::{
    Account, Email, Issued, NewAccount, NewToken, Principal, Revoked, Role, Scope, Scopes,
    SignInLink, TokenInfo, TokenSecret,
};
use udaconnect_core::ports::DynAccountStore;
use udaconnect_core::ErrorCode;

use super::StoreEngine;

/// The suite's "now": times are handed to the store, so expiry is tested without waiting.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 4, 9, 30, 0).unwrap()
}

fn email(address: &str) -> Email {
    Email::parse(address).unwrap()
}

/// An account in `role`, for `person`, reached at `address`.
pub fn new_account(role: Role, person: Option<i64>, address: Option<&str>) -> NewAccount {
    NewAccount {
        person,
        email: address.map(email),
        email_verified: false,
        secondary_email: None,
        role,
    }
}

/// A token of the account's own role and person, every scope, no expiry.
pub fn new_token(account: &Account, name: &str) -> NewToken {
    NewToken {
        account: account.id,
        name: name.into(),
        role: account.role,
        scopes: Scopes::ALL,
        person: account.person,
        expires: None,
    }
}

pub(super) async fn create(store: &DynAccountStore, new: NewAccount) -> Account {
    store
        .create_account(new, t0())
        .await
        .expect("create account")
}

/// A token issued at [`t0`].
async fn issue(store: &DynAccountStore, token: NewToken) -> Issued<TokenInfo> {
    store.create_token(token, t0()).await.expect("create token")
}

/// An attendee's account for `person`, at `address`.
pub(super) async fn attendee(store: &DynAccountStore, person: i64, address: &str) -> Account {
    create(
        store,
        new_account(Role::Attendee, Some(person), Some(address)),
    )
    .await
}

/// Accounts are found by id, by address whatever its case and by person; an address or a
/// person has one account; bootstrap accounts and admins are found.
pub async fn accounts_are_created_and_found<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.accounts();
    assert_eq!(store.count_admins().await.unwrap(), 0);
    assert_eq!(store.bootstrap_account(Role::Admin).await.unwrap(), None);

    let admin = create(&store, new_account(Role::Admin, None, None)).await;
    let second_admin = create(&store, new_account(Role::Admin, None, None)).await;
    let organizer = create(
        &store,
        new_account(Role::Organizer, None, Some("Org@Example.org")),
    )
    .await;
    let ana = create(
        &store,
        NewAccount {
            email_verified: true,
            secondary_email: Some(email("ana@home.example")),
            ..new_account(Role::Attendee, Some(10), Some("Ana.Lopez@Example.ORG"))
        },
    )
    .await;
    let ids = [admin.id, second_admin.id, organizer.id, ana.id];
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");
    assert_eq!(ana.created, t0());
    assert_eq!(
        ana.email.as_ref().map(Email::as_str),
        Some("Ana.Lopez@Example.ORG")
    );

    for account in [&admin, &second_admin, &organizer, &ana] {
        assert_eq!(
            store.account(account.id).await.unwrap().as_ref(),
            Some(account)
        );
    }
    assert_eq!(store.account(ana.id + 1000).await.unwrap(), None);
    for spelling in [
        "ana.lopez@example.org",
        "ANA.LOPEZ@EXAMPLE.ORG",
        "Ana.Lopez@Example.ORG",
    ] {
        assert_eq!(
            store
                .account_by_email(&email(spelling))
                .await
                .unwrap()
                .as_ref(),
            Some(&ana),
            "{spelling}"
        );
    }
    // A secondary address does not sign in.
    assert_eq!(
        store
            .account_by_email(&email("ana@home.example"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.account_by_person(10).await.unwrap().as_ref(),
        Some(&ana)
    );
    assert_eq!(store.account_by_person(11).await.unwrap(), None);
    assert_eq!(
        store.bootstrap_account(Role::Admin).await.unwrap().as_ref(),
        Some(&admin)
    );
    assert_eq!(
        store.bootstrap_account(Role::Organizer).await.unwrap(),
        None
    );
    assert_eq!(store.count_admins().await.unwrap(), 2);
    let all = [
        admin.clone(),
        second_admin.clone(),
        organizer.clone(),
        ana.clone(),
    ];
    assert_eq!(store.accounts(None, 100).await.unwrap(), all);
    assert_eq!(store.accounts(Some(admin.id), 2).await.unwrap(), all[1..3]);
    assert!(store.accounts(Some(ana.id), 10).await.unwrap().is_empty());

    for clash in [
        new_account(Role::Attendee, Some(12), Some("ORG@example.org")),
        new_account(Role::Organizer, Some(10), Some("other@example.org")),
    ] {
        let err = store.create_account(clash.clone(), t0()).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Conflict, "{clash:?}: {err}");
    }
    // Nothing was stored by the refused creations.
    assert_eq!(store.account_by_person(12).await.unwrap(), None);
}

/// A token signs its account in, in the token's role and scopes, until it expires or is
/// revoked; its use is recorded to the minute; lists show no secret.
pub async fn tokens_verify_until_revoked_or_expired<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.accounts();
    let ana = attendee(&store, 10, "ana@example.org").await;
    let admin = create(&store, new_account(Role::Admin, None, None)).await;

    let api = issue(
        &store,
        NewToken {
            expires: Some(t0() + TimeDelta::hours(1)),
            ..new_token(&ana, "laptop")
        },
    )
    .await;
    let device = issue(
        &store,
        NewToken {
            role: Role::Device,
            ..new_token(&ana, "phone")
        },
    )
    .await;
    let read_only = issue(
        &store,
        NewToken {
            scopes: Scopes::only(Scope::Read),
            ..new_token(&admin, "dashboard")
        },
    )
    .await;
    assert_ne!(api.secret, device.secret);
    assert!(TokenSecret::parse(api.secret.expose()).is_some());
    assert_eq!(api.item.expires, Some(t0() + TimeDelta::hours(1)));

    let at = t0() + TimeDelta::seconds(5);
    assert_eq!(
        store.verify_token(&api.secret, at).await.unwrap(),
        Some(Principal {
            account: ana.id,
            person: Some(10),
            role: Role::Attendee,
            scopes: Scopes::ALL,
        })
    );
    assert_eq!(
        store.verify_token(&device.secret, at).await.unwrap(),
        Some(Principal {
            account: ana.id,
            person: Some(10),
            role: Role::Device,
            scopes: Scopes::only(Scope::Ingest),
        })
    );
    assert_eq!(
        store.verify_token(&read_only.secret, at).await.unwrap(),
        Some(Principal {
            account: admin.id,
            person: None,
            role: Role::Admin,
            scopes: Scopes::only(Scope::Read),
        })
    );
    let stranger = TokenSecret::from_bytes([9; 32]);
    assert_eq!(store.verify_token(&stranger, at).await.unwrap(), None);
    // A token is not a session.
    assert_eq!(store.verify_session(&api.secret, at).await.unwrap(), None);

    // Last use: recorded, then left alone within the minute, then moved on.
    let used = |store: DynAccountStore, id| async move {
        store.token(id).await.unwrap().unwrap().last_used
    };
    assert_eq!(used(store.clone(), api.item.id).await, Some(at));
    store
        .verify_token(&api.secret, at + TimeDelta::seconds(30))
        .await
        .unwrap();
    assert_eq!(used(store.clone(), api.item.id).await, Some(at));
    let later = at + TimeDelta::seconds(61);
    store.verify_token(&api.secret, later).await.unwrap();
    assert_eq!(used(store.clone(), api.item.id).await, Some(later));

    // Expiry: valid until the instant it expires.
    let expires = t0() + TimeDelta::hours(1);
    assert!(store
        .verify_token(&api.secret, expires - TimeDelta::microseconds(1))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.verify_token(&api.secret, expires).await.unwrap(),
        None
    );

    let listed = store.tokens(ana.id).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|t| (t.name.as_str(), t.role))
            .collect::<Vec<_>>(),
        [("laptop", Role::Attendee), ("phone", Role::Device)]
    );
    assert_eq!(listed[1].person, Some(10));
    assert_eq!(listed[1].created, t0());
    assert_eq!(listed[1].revoked, None);
    assert!(!format!("{listed:?}").contains(&device.secret.expose()[3..]));

    assert!(store.revoke_token(device.item.id, later).await.unwrap());
    assert!(
        !store.revoke_token(device.item.id, later).await.unwrap(),
        "revoked once"
    );
    assert!(!store
        .revoke_token(device.item.id + 1000, later)
        .await
        .unwrap());
    assert_eq!(
        store.verify_token(&device.secret, later).await.unwrap(),
        None
    );
    assert_eq!(
        store.token(device.item.id).await.unwrap().unwrap().revoked,
        Some(later)
    );
    assert_eq!(store.tokens(admin.id).await.unwrap().len(), 1);

    // What a creation answers is what is stored, to the microsecond both keep, even when
    // the times handed in are finer.
    let fine = t0() + TimeDelta::nanoseconds(1_500);
    let cy = store
        .create_account(new_account(Role::Attendee, Some(30), None), fine)
        .await
        .unwrap();
    assert_eq!(store.account(cy.id).await.unwrap(), Some(cy.clone()));
    let issued = store
        .create_token(
            NewToken {
                expires: Some(fine + TimeDelta::hours(2)),
                ..new_token(&cy, "fine")
            },
            fine,
        )
        .await
        .unwrap();
    assert_eq!(
        store.token(issued.item.id).await.unwrap(),
        Some(issued.item)
    );
}

/// A session signs its account in, in the account's role, until it expires or ends.
pub async fn sessions_verify_until_revoked_or_expired<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.accounts();
    let org = create(
        &store,
        new_account(Role::Organizer, None, Some("org@example.org")),
    )
    .await;
    let expires = t0() + TimeDelta::days(7);
    let session = store.create_session(org.id, expires, t0()).await.unwrap();
    let other = store.create_session(org.id, expires, t0()).await.unwrap();
    assert_ne!(session, other);
    let want = Principal {
        account: org.id,
        person: None,
        role: Role::Organizer,
        scopes: Scopes::ALL,
    };
    assert_eq!(
        store.verify_session(&session, t0()).await.unwrap(),
        Some(want)
    );
    assert_eq!(store.verify_session(&session, expires).await.unwrap(), None);
    // A session id is not a token.
    assert_eq!(store.verify_token(&session, t0()).await.unwrap(), None);
    assert!(store.revoke_session(&session, t0()).await.unwrap());
    assert!(!store.revoke_session(&session, t0()).await.unwrap());
    assert_eq!(store.verify_session(&session, t0()).await.unwrap(), None);
    assert_eq!(
        store.verify_session(&other, t0()).await.unwrap(),
        Some(want)
    );
}

/// Revoking an account's everything ends all its tokens and sessions at once, and no other
/// account's.
pub async fn revoking_everything_ends_every_token_and_session<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.accounts();
    let ana = attendee(&store, 10, "ana@example.org").await;
    let ben = attendee(&store, 20, "ben@example.org").await;
    let until = t0() + TimeDelta::days(1);
    let mut ana_tokens = Vec::new();
    let mut ana_sessions = Vec::new();
    for name in ["laptop", "phone"] {
        ana_tokens.push(issue(&store, new_token(&ana, name)).await);
        ana_sessions.push(store.create_session(ana.id, until, t0()).await.unwrap());
    }
    // One revoked before: not counted again.
    store
        .revoke_token(ana_tokens[1].item.id, t0())
        .await
        .unwrap();
    let ben_token = issue(&store, new_token(&ben, "laptop")).await;
    let ben_session = store.create_session(ben.id, until, t0()).await.unwrap();

    let at = t0() + TimeDelta::minutes(5);
    assert_eq!(
        store.revoke_all(ana.id, at).await.unwrap(),
        Revoked {
            tokens: 1,
            sessions: 2
        }
    );
    for t in &ana_tokens {
        assert_eq!(store.verify_token(&t.secret, at).await.unwrap(), None);
    }
    for s in &ana_sessions {
        assert_eq!(store.verify_session(s, at).await.unwrap(), None);
    }
    assert!(store
        .verify_token(&ben_token.secret, at)
        .await
        .unwrap()
        .is_some());
    assert!(store
        .verify_session(&ben_session, at)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.revoke_all(ana.id, at).await.unwrap(),
        Revoked::default()
    );
    assert!(store
        .tokens(ana.id)
        .await
        .unwrap()
        .iter()
        .all(|t| t.revoked.is_some()));

    // Deleting the account takes its tokens with it, and the sign-in links mailed to its
    // address (they hold the address); the other account stays whole.
    let link_to = async |address: &str| {
        let link = SignInLink {
            email: email(address),
            expires: at + TimeDelta::minutes(15),
        };
        store.create_sign_in_link(link, at).await.unwrap()
    };
    let ana_link = link_to("Ana@example.org").await;
    let ben_link = link_to("ben@example.org").await;
    assert!(store.delete_account(ana.id).await.unwrap());
    assert_eq!(
        store.consume_sign_in_link(&ana_link, at).await.unwrap(),
        None
    );
    assert_eq!(
        store.consume_sign_in_link(&ben_link, at).await.unwrap(),
        Some(email("ben@example.org"))
    );
    assert_eq!(store.account(ana.id).await.unwrap(), None);
    assert!(store.tokens(ana.id).await.unwrap().is_empty());
    assert!(!store.delete_account(ana.id).await.unwrap());
    assert!(store.account(ben.id).await.unwrap().is_some());
    assert!(store
        .verify_token(&ben_token.secret, at)
        .await
        .unwrap()
        .is_some());
}

/// A sign-in link gives its address once, before it expires; of racing uses, one wins.
pub async fn sign_in_links_are_used_once<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.accounts();
    // A link to `address`, made at t0 and valid for 15 minutes.
    let link_to = async |address: &str| {
        let link = SignInLink {
            email: email(address),
            expires: t0() + TimeDelta::minutes(15),
        };
        store.create_sign_in_link(link, t0()).await.unwrap()
    };
    // An address with no account gets a link all the same (the answer never tells).
    let secret = link_to("Ana@Example.org").await;
    let at = t0() + TimeDelta::minutes(1);
    assert_eq!(
        store.consume_sign_in_link(&secret, at).await.unwrap(),
        Some(email("Ana@Example.org"))
    );
    assert_eq!(store.consume_sign_in_link(&secret, at).await.unwrap(), None);

    let late = link_to("ben@example.org").await;
    let expired = t0() + TimeDelta::minutes(15);
    assert_eq!(
        store.consume_sign_in_link(&late, expired).await.unwrap(),
        None
    );
    // And any time after.
    assert_eq!(
        store
            .consume_sign_in_link(&late, expired + TimeDelta::hours(1))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .consume_sign_in_link(&TokenSecret::from_bytes([3; 32]), at)
            .await
            .unwrap(),
        None
    );
    // A link's token is neither a token nor a session.
    let fresh = link_to("cy@example.org").await;
    assert_eq!(store.verify_token(&fresh, at).await.unwrap(), None);
    assert_eq!(store.verify_session(&fresh, at).await.unwrap(), None);

    let racing: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let fresh = fresh.clone();
            tokio::spawn(async move { store.consume_sign_in_link(&fresh, at).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for r in racing {
        if let Some(e) = r.await.unwrap() {
            assert_eq!(e, email("cy@example.org"));
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "one of the racing uses gets the address");
}
