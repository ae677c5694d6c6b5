use std::collections::BTreeSet;

use chrono::TimeDelta;
use chrono::{DateTime, Utc};
use udaconnect_core::auth::{Account, AccountId, Role};
use udaconnect_core::consent::Shown;
use udaconnect_core::ports::DynAccountStore;

use super::accounts::{new_account, t0};
use super::StoreEngine;

/// Those of `persons` the store says are visible.
async fn visible_among(store: &DynAccountStore, persons: &[i64]) -> BTreeSet<i64> {
    let visible = store.visible_persons(persons).await.unwrap();
    visible.into_iter().collect()
}

/// Attendee accounts of persons 1 to `persons` (person `p`'s at `p - 1`), and a staff account
/// of no person.
async fn attendees_and_staff(store: &DynAccountStore, persons: i64) -> (Vec<Account>, Account) {
    let mut accounts = Vec::new();
    for person in 1..=persons {
        let new = new_account(Role::Attendee, Some(person), None);
        accounts.push(store.create_account(new, t0()).await.unwrap());
    }
    let staff = new_account(Role::Organizer, None, None);
    let staff = store.create_account(staff, t0()).await.unwrap();
    (accounts, staff)
}

/// Records `account`'s choice of being shown by name as `shown` says.
async fn set(
    store: &DynAccountStore,
    shown: Shown,
    account: AccountId,
    yes: bool,
    at: DateTime<Utc>,
) -> bool {
    store.set_shown(account, shown, yes, at).await.unwrap()
}

async fn get(store: &DynAccountStore, shown: Shown, account: AccountId) -> bool {
    store.shown(account, shown).await.unwrap()
}

/// A choice for no account is refused; a deleted account's choice goes with it.
async fn goes_with_the_account(store: &DynAccountStore, shown: Shown, account: AccountId) {
    assert!(!set(store, shown, i64::MAX, true, t0()).await);
    assert!(store.delete_account(account).await.unwrap());
    assert!(!get(store, shown, account).await);
    assert!(!set(store, shown, account, true, t0()).await);
}

/// No account is visible until it says so; the latest choice holds; only persons whose
/// account said yes are named among those asked about, however many are asked at once; a
/// choice for no account is refused, and a deleted account's choice goes with it.
pub async fn visibility_is_off_until_chosen_and_goes_with_the_account<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.accounts();
    let (accounts, staff) = attendees_and_staff(&store, 1200).await;
    let all: Vec<i64> = (1..=1300).collect();
    assert!(!get(&store, Shown::ToContacts, accounts[0].id).await);
    assert!(store.visible_persons(&all).await.unwrap().is_empty());

    // Persons 3, 600 and 1100 say yes (in different chunks of a large question); 4 says yes,
    // then no; 5 says no.
    let (shown, later) = (Shown::ToContacts, t0() + TimeDelta::minutes(1));
    for (person, visible) in [(3, true), (600, true), (1100, true), (4, true), (5, false)] {
        assert!(set(&store, shown, accounts[person - 1].id, visible, t0()).await);
    }
    assert!(set(&store, shown, accounts[3].id, false, later).await);
    assert!(set(&store, shown, accounts[2].id, true, later).await);
    assert!(set(&store, shown, staff.id, true, t0()).await);
    assert!(get(&store, shown, accounts[2].id).await);
    assert!(!get(&store, shown, accounts[3].id).await);
    assert!(!get(&store, shown, accounts[4].id).await);
    assert!(get(&store, shown, staff.id).await);
    let seen = visible_among(&store, &all).await;
    assert_eq!(seen, BTreeSet::from([3, 600, 1100]));
    let few = visible_among(&store, &[600, 4, 9999]).await;
    assert_eq!(few, BTreeSet::from([600]));
    assert!(store.visible_persons(&[]).await.unwrap().is_empty());

    goes_with_the_account(&store, shown, accounts[599].id).await;
    // A new account for the same person starts from no.
    let again = store
        .create_account(new_account(Role::Attendee, Some(600), None), t0())
        .await
        .unwrap();
    assert!(!get(&store, Shown::ToContacts, again.id).await);
    let seen = visible_among(&store, &all).await;
    assert_eq!(seen, BTreeSet::from([3, 1100]));
}

/// No account is on the live map by name until it says so, apart from its choice of
/// visibility to the people it met; the latest choice holds; only persons of accounts that said
/// yes are listed; a choice for no account is refused, and a deleted account's goes with it.
pub async fn live_map_is_anonymous_until_chosen_and_goes_with_the_account<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.accounts();
    let (accounts, staff) = attendees_and_staff(&store, 5).await;
    assert!(!get(&store, Shown::OnLiveMap, accounts[0].id).await);
    assert!(store.persons_on_live_map().await.unwrap().is_empty());

    // Visible to the people one met is not shown on the live map.
    assert!(set(&store, Shown::ToContacts, accounts[0].id, true, t0()).await);
    assert!(!get(&store, Shown::OnLiveMap, accounts[0].id).await);
    assert!(store.persons_on_live_map().await.unwrap().is_empty());

    // Persons 2 and 3 say yes, then 3 says no; 4 says yes; staff (no person) says yes.
    let (shown, later) = (Shown::OnLiveMap, t0() + TimeDelta::minutes(1));
    for i in [1, 2, 3] {
        assert!(set(&store, shown, accounts[i].id, true, t0()).await);
    }
    assert!(set(&store, shown, accounts[2].id, false, later).await);
    assert!(set(&store, shown, staff.id, true, t0()).await);
    assert!(get(&store, shown, accounts[1].id).await);
    assert!(!get(&store, shown, accounts[2].id).await);
    assert!(get(&store, shown, staff.id).await);
    assert!(
        !get(&store, Shown::ToContacts, accounts[1].id).await,
        "apart choices"
    );
    let listed: BTreeSet<i64> = store
        .persons_on_live_map()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(listed, BTreeSet::from([2, 4]));

    goes_with_the_account(&store, shown, accounts[3].id).await;
    let listed = store.persons_on_live_map().await.unwrap();
    assert_eq!(listed, vec![2]);
}
