use std::collections::BTreeSet;

use chrono::TimeDelta;
use chrono::{DateTime, Utc};
use udaconnect_core::auth::{Account, AccountId, Role};
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

/// The two choices an account makes about being shown by name.
#[derive(Clone, Copy)]
enum Shown {
    ToContacts,
    OnLiveMap,
}

impl Shown {
    async fn set(
        self,
        store: &DynAccountStore,
        account: AccountId,
        yes: bool,
        at: DateTime<Utc>,
    ) -> bool {
        match self {
            Shown::ToContacts => store.set_visible(account, yes, at).await,
            Shown::OnLiveMap => store.set_on_live_map(account, yes, at).await,
        }
        .unwrap()
    }

    async fn get(self, store: &DynAccountStore, account: AccountId) -> bool {
        match self {
            Shown::ToContacts => store.visible(account).await,
            Shown::OnLiveMap => store.on_live_map(account).await,
        }
        .unwrap()
    }

    /// A choice for no account is refused; a deleted account's choice goes with it.
    async fn goes_with_the_account(self, store: &DynAccountStore, account: AccountId) {
        assert!(!self.set(store, i64::MAX, true, t0()).await);
        assert!(store.delete_account(account).await.unwrap());
        assert!(!self.get(store, account).await);
        assert!(!self.set(store, account, true, t0()).await);
    }
}

/// No account is visible until it says so; the latest choice holds; only persons whose
/// account said yes are named among those asked about, however many are asked at once; a
/// choice for no account is refused, and a deleted account's choice goes with it.
pub async fn visibility_is_off_until_chosen_and_goes_with_the_account<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.accounts();
    let (accounts, staff) = attendees_and_staff(&store, 1200).await;
    let all: Vec<i64> = (1..=1300).collect();
    assert!(!store.visible(accounts[0].id).await.unwrap());
    assert!(store.visible_persons(&all).await.unwrap().is_empty());

    // Persons 3, 600 and 1100 say yes (in different chunks of a large question); 4 says yes,
    // then no; 5 says no.
    let (shown, later) = (Shown::ToContacts, t0() + TimeDelta::minutes(1));
    for (person, visible) in [(3, true), (600, true), (1100, true), (4, true), (5, false)] {
        assert!(
            shown
                .set(&store, accounts[person - 1].id, visible, t0())
                .await
        );
    }
    assert!(shown.set(&store, accounts[3].id, false, later).await);
    assert!(shown.set(&store, accounts[2].id, true, later).await);
    assert!(shown.set(&store, staff.id, true, t0()).await);
    assert!(shown.get(&store, accounts[2].id).await);
    assert!(!shown.get(&store, accounts[3].id).await);
    assert!(!shown.get(&store, accounts[4].id).await);
    assert!(shown.get(&store, staff.id).await);
    let seen = visible_among(&store, &all).await;
    assert_eq!(seen, BTreeSet::from([3, 600, 1100]));
    let few = visible_among(&store, &[600, 4, 9999]).await;
    assert_eq!(few, BTreeSet::from([600]));
    assert!(store.visible_persons(&[]).await.unwrap().is_empty());

    shown.goes_with_the_account(&store, accounts[599].id).await;
    // A new account for the same person starts from no.
    let again = store
        .create_account(new_account(Role::Attendee, Some(600), None), t0())
        .await
        .unwrap();
    assert!(!store.visible(again.id).await.unwrap());
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
    assert!(!store.on_live_map(accounts[0].id).await.unwrap());
    assert!(store.persons_on_live_map().await.unwrap().is_empty());

    // Visible to the people one met is not shown on the live map.
    assert!(store.set_visible(accounts[0].id, true, t0()).await.unwrap());
    assert!(!store.on_live_map(accounts[0].id).await.unwrap());
    assert!(store.persons_on_live_map().await.unwrap().is_empty());

    // Persons 2 and 3 say yes, then 3 says no; 4 says yes; staff (no person) says yes.
    let (shown, later) = (Shown::OnLiveMap, t0() + TimeDelta::minutes(1));
    for i in [1, 2, 3] {
        assert!(shown.set(&store, accounts[i].id, true, t0()).await);
    }
    assert!(shown.set(&store, accounts[2].id, false, later).await);
    assert!(shown.set(&store, staff.id, true, t0()).await);
    assert!(shown.get(&store, accounts[1].id).await);
    assert!(!shown.get(&store, accounts[2].id).await);
    assert!(shown.get(&store, staff.id).await);
    assert!(
        !store.visible(accounts[1].id).await.unwrap(),
        "apart choices"
    );
    let listed: BTreeSet<i64> = store
        .persons_on_live_map()
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(listed, BTreeSet::from([2, 4]));

    shown.goes_with_the_account(&store, accounts[3].id).await;
    let listed = store.persons_on_live_map().await.unwrap();
    assert_eq!(listed, vec![2]);
}
