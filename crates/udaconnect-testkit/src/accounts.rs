//! Accounts and tokens made straight in an account store, as `udaconnect admin create-token`
//! makes them, for tests that hold the store in their own process.

use udaconnect_core::auth::{Role, TokenSecret};
use udaconnect_core::ports::AccountStore;

use crate::store_suite::{new_account, new_token};

/// The token of a new account in `role` (for `person`, if any), with every scope of the role.
pub async fn issue_token(
    accounts: &dyn AccountStore,
    role: Role,
    person: Option<i64>,
    name: &str,
) -> TokenSecret {
    let now = chrono::Utc::now();
    let account = accounts
        .create_account(new_account(role, person, None), now)
        .await
        .expect("the account is created");
    accounts
        .create_token(new_token(&account, name), now)
        .await
        .expect("the token is issued")
        .secret
}
