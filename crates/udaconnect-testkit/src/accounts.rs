//! Accounts and tokens made straight in an account store, as `udaconnect admin create-token`
//! makes them, for tests that hold the store in their own process.

use udaconnect_core::auth::{NewAccount, NewToken, Role, Scopes, TokenSecret};
use udaconnect_core::ports::AccountStore;

/// The token of a new account in `role` (for `person`, if any), with every scope of the role.
pub async fn issue_token(
    accounts: &dyn AccountStore,
    role: Role,
    person: Option<i64>,
    name: &str,
) -> TokenSecret {
    let now = chrono::Utc::now();
    let account = accounts
        .create_account(
            NewAccount {
                person,
                email: None,
                email_verified: false,
                secondary_email: None,
                role,
            },
            now,
        )
        .await
        .expect("the account is created");
    let token = NewToken {
        account: account.id,
        name: name.into(),
        role,
        scopes: Scopes::ALL,
        person,
        expires: None,
    };
    accounts
        .create_token(token, now)
        .await
        .expect("the token is issued")
        .secret
}
