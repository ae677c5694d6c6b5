use std::collections::HashSet;

use chrono::{TimeZone, Utc};

use super::*;

const A_ACCOUNT: AccountId = 1;
const A_PERSON: i64 = 10;
const B_ACCOUNT: AccountId = 2;
const B_PERSON: i64 = 20;
const ORGANIZER_ACCOUNT: AccountId = 3;
const ADMIN_ACCOUNT: AccountId = 4;

fn principal(account: AccountId, person: Option<i64>, role: Role) -> Principal {
    Principal {
        account,
        person,
        role,
        scopes: role.scopes(),
    }
}

/// The table's columns, in order: nobody, attendee A, attendee B, A's device, an organizer,
/// an admin.
fn principals() -> [(&'static str, Option<Principal>); 6] {
    [
        ("anonymous", None),
        (
            "attendee A",
            Some(principal(A_ACCOUNT, Some(A_PERSON), Role::Attendee)),
        ),
        (
            "attendee B",
            Some(principal(B_ACCOUNT, Some(B_PERSON), Role::Attendee)),
        ),
        (
            "A's device",
            Some(principal(A_ACCOUNT, Some(A_PERSON), Role::Device)),
        ),
        (
            "organizer",
            Some(principal(ORGANIZER_ACCOUNT, None, Role::Organizer)),
        ),
        ("admin", Some(principal(ADMIN_ACCOUNT, None, Role::Admin))),
    ]
}

const A: Resource = Resource::Person(A_PERSON);
const B: Resource = Resource::Person(B_PERSON);
const A_ACC: Resource = Resource::Account(A_ACCOUNT);
const ANY: Resource = Resource::Service;

/// Each row: an action on a resource and what each principal of [`principals`] gets: `Y`
/// allowed, `N` forbidden, `S` sign-in required.
#[rustfmt::skip]
const TABLE: &[(Action, Resource, &str)] = &[
    (Action::Health, ANY, "YYYYYY"),
    (Action::Ready, ANY, "YYYYYY"),
    (Action::Metrics, ANY, "SNNNYY"),
    (Action::ApiDocs, ANY, "YYYYYY"),
    (Action::WebPage, ANY, "YYYYYY"),
    (Action::CreatePerson, ANY, "SNNNYY"),
    (Action::ImportPersons, ANY, "SNNNYY"),
    (Action::ListPersons, ANY, "SNNNYY"),
    (Action::GetPerson, A, "SYNNYY"),
    (Action::GetPerson, B, "SNYNYY"),
    (Action::LookupPersons, ANY, "SNNNYY"),
    // Erasing even one's own person is `DELETE /api/me`'s, which asks for a confirmation.
    (Action::ErasePerson, A, "SNNNNY"),
    (Action::ErasePerson, B, "SNNNNY"),
    (Action::PostLocation, A, "SYNYNY"),
    // A's device posting for B, and A posting for B.
    (Action::PostLocation, B, "SNYNNY"),
    (Action::PostLocationBatch, A, "SYNYNY"),
    (Action::PostLocationBatch, B, "SNYNNY"),
    (Action::GetLocation, A, "SYNNNY"),
    (Action::GetConnection, A, "SYNNNY"),
    (Action::GetConnection, B, "SNYNNY"),
    (Action::GetContacts, A, "SYNNNY"),
    (Action::GetContacts, B, "SNYNNY"),
    (Action::GetSummary, A, "SYNNYY"),
    (Action::GetSummary, B, "SNYNYY"),
    (Action::LiveStream, ANY, "SNNNYY"),
    (Action::LivePositions, ANY, "SNNNYY"),
    (Action::LiveHeat, ANY, "SNNNYY"),
    (Action::LiveZones, ANY, "SNNNYY"),
    (Action::GetVenue, ANY, "SYYNYY"),
    (Action::GrpcLegacyCreate, A, "SYNYNY"),
    (Action::GrpcLegacyCreate, B, "SNYNNY"),
    (Action::GrpcCreate, A, "SYNYNY"),
    (Action::GrpcCreate, B, "SNYNNY"),
    (Action::GrpcIngest, A, "SYNYNY"),
    (Action::GrpcIngest, B, "SNYNNY"),
    (Action::GrpcHealth, ANY, "YYYYYY"),
    (Action::GrpcReflection, ANY, "YYYYYY"),
    (Action::RequestSignIn, ANY, "YYYYYY"),
    (Action::ConfirmSignIn, ANY, "YYYYYY"),
    (Action::DemoSignIn, ANY, "YYYYYY"),
    (Action::ConfirmEmail, ANY, "YYYYYY"),
    (Action::SignOut, ANY, "SYYNYY"),
    (Action::GetMe, ANY, "SYYNYY"),
    (Action::ListTokens, A_ACC, "SYNNNY"),
    (Action::CreateToken, Resource::Grant { account: A_ACCOUNT, role: Role::Device }, "SYNNNY"),
    (Action::CreateToken, Resource::Grant { account: A_ACCOUNT, role: Role::Attendee }, "SYNNNY"),
    // No account mints a credential above itself.
    (Action::CreateToken, Resource::Grant { account: A_ACCOUNT, role: Role::Organizer }, "SNNNNY"),
    (Action::CreateToken, Resource::Grant { account: A_ACCOUNT, role: Role::Admin }, "SNNNNY"),
    (Action::CreateToken, Resource::Grant { account: ORGANIZER_ACCOUNT, role: Role::Organizer }, "SNNNYY"),
    (Action::CreateToken, Resource::Grant { account: ORGANIZER_ACCOUNT, role: Role::Admin }, "SNNNNY"),
    (Action::RevokeToken, A_ACC, "SYNNNY"),
    (Action::ListSessions, A_ACC, "SYNNNY"),
    (Action::RevokeSession, A_ACC, "SYNNNY"),
    (Action::ChangeEmail, A_ACC, "SYNNNY"),
    (Action::AddSecondaryEmail, A_ACC, "SYNNNY"),
    (Action::DeleteAccount, A_ACC, "SYNNNY"),
    (Action::DeleteAccount, Resource::Account(B_ACCOUNT), "SNYNNY"),
    (Action::ListAccounts, ANY, "SNNNNY"),
    (Action::InviteAccount, Resource::NewAccount(Role::Attendee), "SNNNYY"),
    (Action::InviteAccount, Resource::NewAccount(Role::Organizer), "SNNNNY"),
    (Action::InviteAccount, Resource::NewAccount(Role::Admin), "SNNNNY"),
    (Action::ChangeRole, Resource::Grant { account: A_ACCOUNT, role: Role::Organizer }, "SNNNNY"),
    (Action::ListDevices, A_ACC, "SYNNNY"),
    (Action::GetVisibility, A_ACC, "SYNNNY"),
    (Action::SetVisibility, A_ACC, "SYNNNY"),
    (Action::SetVisibility, Resource::Account(ORGANIZER_ACCOUNT), "SNNNYY"),
    // Everything held about an account is its holder's (and an admin's, as every account).
    (Action::ExportMe, A_ACC, "SYNNNY"),
    (Action::ExportMe, Resource::Account(ORGANIZER_ACCOUNT), "SNNNYY"),
    // A contact's reveal, hiding and evidence are the attendee's own, never a device's nor
    // an organizer's.
    (Action::ListReveals, A, "SYNNNY"),
    (Action::AskReveal, A, "SYNNNY"),
    (Action::AskReveal, B, "SNYNNY"),
    (Action::WithdrawReveal, A, "SYNNNY"),
    (Action::HideContact, A, "SYNNNY"),
    (Action::HideContact, B, "SNYNNY"),
    (Action::UnhideContact, A, "SYNNNY"),
    (Action::GetEvidence, A, "SYNNNY"),
    (Action::GetEvidence, B, "SNYNNY"),
    (Action::CreateDevice, A, "SYNNNY"),
    (Action::CreateDevice, B, "SNYNNY"),
    (Action::RevokeDevice, A_ACC, "SYNNNY"),
    (Action::PostOwnTracks, A, "SYNYNY"),
    (Action::PostOwnTracks, B, "SNYNNY"),
    (Action::PostOsmAnd, A, "SYNYNY"),
    (Action::PostOsmAnd, B, "SNYNNY"),
    // A resource of the wrong kind fails closed: only who may act on anything passes.
    (Action::GetConnection, ANY, "SNNNNY"),
    (Action::GetConnection, A_ACC, "SNNNNY"),
    (Action::PostLocation, A_ACC, "SNNNNY"),
    (Action::ListTokens, A, "SNNNNY"),
    (Action::CreateToken, A_ACC, "SNNNNY"),
];

fn outcome(r: Result<(), Denied>) -> char {
    match r {
        Ok(()) => 'Y',
        Err(Denied::Forbidden) => 'N',
        Err(Denied::SignInRequired) => 'S',
    }
}

#[test]
fn every_action_for_every_principal_follows_the_table() {
    let principals = principals();
    let mut failures = Vec::new();
    for (action, resource, want) in TABLE {
        assert_eq!(want.len(), principals.len(), "{action:?} {resource:?}");
        for ((who, p), want) in principals.iter().zip(want.chars()) {
            let got = outcome(authorize(p.as_ref(), *action, *resource));
            if got != want {
                failures.push(format!(
                    "{who} {action:?} on {resource:?}: got {got}, want {want}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_action_has_a_row() {
    let in_table: HashSet<Action> = TABLE.iter().map(|(a, _, _)| *a).collect();
    let missing: Vec<&Action> = Action::ALL
        .iter()
        .filter(|a| !in_table.contains(a))
        .collect();
    assert!(missing.is_empty(), "actions without a row: {missing:?}");
}

/// Every resource of every kind the table uses, and some it does not.
fn resources() -> Vec<Resource> {
    let mut all = vec![ANY, A, B, A_ACC, Resource::Account(B_ACCOUNT)];
    for role in Role::ALL {
        all.push(Resource::NewAccount(role));
        for account in [A_ACCOUNT, B_ACCOUNT, ORGANIZER_ACCOUNT, ADMIN_ACCOUNT] {
            all.push(Resource::Grant { account, role });
        }
    }
    all
}

#[test]
fn admins_may_all_nobody_only_the_public_devices_only_their_own_pings() {
    let admin = principal(ADMIN_ACCOUNT, None, Role::Admin);
    let device = principal(A_ACCOUNT, Some(A_PERSON), Role::Device);
    for action in Action::ALL {
        for resource in resources() {
            assert_eq!(authorize(Some(&admin), *action, resource), Ok(()));
            let anonymous = authorize(None, *action, resource);
            if action.is_public() {
                assert_eq!(anonymous, Ok(()), "{action:?}");
                assert_eq!(authorize(Some(&device), *action, resource), Ok(()));
            } else {
                assert_eq!(anonymous, Err(Denied::SignInRequired), "{action:?}");
                let posts_own_pings = action.scope() == Some(Scope::Ingest) && resource == A;
                assert_eq!(
                    authorize(Some(&device), *action, resource).is_ok(),
                    posts_own_pings,
                    "device {action:?} {resource:?}"
                );
            }
        }
    }
}

#[test]
fn public_actions_need_no_scope_and_the_rest_need_one() {
    for action in Action::ALL {
        if action.is_public() {
            assert_eq!(action.scope(), None, "{action:?}");
        } else if *action != Action::SignOut {
            assert!(action.scope().is_some(), "{action:?}");
        }
    }
}

#[test]
fn a_token_does_only_what_its_scopes_allow() {
    let read_only = Principal {
        scopes: Scopes::only(Scope::Read),
        ..principal(A_ACCOUNT, Some(A_PERSON), Role::Attendee)
    };
    assert_eq!(authorize(Some(&read_only), Action::GetContacts, A), Ok(()));
    for (action, resource) in [
        (Action::PostLocation, A),
        (Action::GrpcIngest, A),
        (Action::DeleteAccount, A_ACC),
    ] {
        assert_eq!(
            authorize(Some(&read_only), action, resource),
            Err(Denied::Forbidden),
            "{action:?}"
        );
    }
    // A device credential stored with every scope still only posts pings.
    let device = Principal {
        scopes: Scopes::ALL,
        ..principal(A_ACCOUNT, Some(A_PERSON), Role::Device)
    };
    assert_eq!(authorize(Some(&device), Action::PostLocation, A), Ok(()));
    assert_eq!(
        authorize(Some(&device), Action::GetContacts, A),
        Err(Denied::Forbidden)
    );
    let ingest_admin = Principal {
        scopes: Scopes::only(Scope::Ingest),
        ..principal(ADMIN_ACCOUNT, None, Role::Admin)
    };
    assert_eq!(
        authorize(Some(&ingest_admin), Action::PostLocation, B),
        Ok(())
    );
    assert_eq!(
        authorize(Some(&ingest_admin), Action::ListAccounts, ANY),
        Err(Denied::Forbidden)
    );
}

#[test]
fn secrets_have_the_format_and_never_print() {
    let secret = TokenSecret::generate().unwrap();
    let text = secret.expose();
    assert_eq!(text.len(), 46, "{text}");
    assert!(text.starts_with("uc_"));
    assert!(text[3..]
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(TokenSecret::parse(text), Some(secret.clone()));
    assert_eq!(format!("{secret:?}"), "uc_…redacted");
    assert!(!format!("{:?}", secret.hash(TokenKind::Api)).contains(&text[3..]));
    assert_ne!(TokenSecret::generate().unwrap(), secret);
}

#[test]
fn only_well_formed_secrets_parse() {
    let good = TokenSecret::from_bytes([7; 32]);
    assert_eq!(
        good.expose(),
        "uc_BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"
    );
    let text = good.expose();
    for bad in [
        "",
        "uc_",
        &text[3..],
        &format!("xx_{}", &text[3..]),
        &text[..45],
        &format!("{text}A"),
        // Padding, the standard alphabet, a non-canonical last character.
        &format!("{}=", &text[..45]),
        &format!("{}+", &text[..45]),
        &format!("{}d", &text[..45]),
        &format!(" {text}"),
    ] {
        assert_eq!(TokenSecret::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn hashes_are_sha256_of_kind_and_secret() {
    let secret = TokenSecret::from_bytes([7; 32]);
    let hex: String = secret
        .hash(TokenKind::Api)
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    // Stored hashes must stay valid across versions: the value is pinned.
    assert_eq!(
        hex,
        "55e48266ad2a03adc43fe1a5f274c57a2f776f992874afce2f4498d683d40ff4"
    );
    let kinds = [TokenKind::Api, TokenKind::Session, TokenKind::SignInLink];
    let hashes: HashSet<TokenHash> = kinds.iter().map(|k| secret.hash(*k)).collect();
    assert_eq!(hashes.len(), 3, "one secret hashes apart per kind");
    let h = secret.hash(TokenKind::Session);
    assert_eq!(TokenHash::from_slice(h.as_bytes()), Some(h));
    assert_eq!(TokenHash::from_slice(&[0; 31]), None);
}

#[test]
fn addresses_are_checked_and_unique_whatever_their_case() {
    let a = Email::parse("  Ana.Lopez@Example.ORG ").unwrap();
    assert_eq!(a.as_str(), "Ana.Lopez@Example.ORG");
    assert_eq!(a.key(), "ana.lopez@example.org");
    assert_eq!(
        a.key(),
        Email::parse("ana.lopez@example.org").unwrap().key()
    );
    assert!(Email::parse("o'brien+talks@sub.example.co.uk").is_ok());
    for bad in [
        "",
        "ana",
        "@example.org",
        "ana@",
        "ana@@example.org",
        "ana @example.org",
        "ana@example.org.",
        "<ana@example.org>",
        "ana@exa\u{0}mple.org",
    ] {
        let err = Email::parse(bad).unwrap_err();
        assert_eq!(err.violations()[0].field, "email", "{bad:?}");
    }
    assert!(Email::parse(&format!("{}@example.org", "a".repeat(250))).is_err());
}

#[test]
fn roles_and_scopes_read_back_what_they_write() {
    for role in Role::ALL {
        assert_eq!(role.as_str().parse::<Role>(), Ok(role));
    }
    assert!("root".parse::<Role>().is_err());
    assert_eq!(
        "read, manage".parse::<Scopes>().unwrap().to_string(),
        "read,manage"
    );
    assert_eq!(Scopes::ALL.to_string().parse::<Scopes>(), Ok(Scopes::ALL));
    assert!("read,write".parse::<Scopes>().is_err());
}

#[test]
fn an_account_holds_no_token_above_it_or_for_another_person() {
    let account = Account {
        id: A_ACCOUNT,
        person: Some(A_PERSON),
        email: None,
        email_verified: false,
        secondary_email: None,
        role: Role::Attendee,
        created: Utc.timestamp_opt(0, 0).unwrap(),
    };
    let token = |role: Role, person: Option<i64>| NewToken {
        account: A_ACCOUNT,
        name: "phone".into(),
        role,
        scopes: Scopes::ALL,
        person,
        expires: None,
    };
    assert!(account
        .check_grant(&token(Role::Device, Some(A_PERSON)))
        .is_ok());
    assert!(account
        .check_grant(&token(Role::Attendee, Some(A_PERSON)))
        .is_ok());
    for (bad, field) in [
        (token(Role::Device, None), "person"),
        (token(Role::Device, Some(B_PERSON)), "person"),
        (token(Role::Organizer, None), "role"),
        (token(Role::Admin, None), "role"),
        (
            NewToken {
                account: B_ACCOUNT,
                ..token(Role::Device, Some(A_PERSON))
            },
            "account",
        ),
    ] {
        let err = account.check_grant(&bad).unwrap_err();
        assert_eq!(err.violations()[0].field, field, "{bad:?}");
    }
}
