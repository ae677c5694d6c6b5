use chrono::TimeDelta;
use udaconnect_core::consent::{Choice, ContactChoices};

use super::accounts::t0;
use super::StoreEngine;

/// Reveal requests are kept once per pair (the first time stands) and read from both sides;
/// withdrawing removes only the asker's; hiding records the dispute, hiding again updates it,
/// un-hiding removes it; forgetting a person removes every row they are on, either side, and
/// no one else's.
pub async fn reveal_requests_and_hidden_contacts_are_kept_per_pair_and_forgotten<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.accounts();
    let (t1, t2) = (t0() + TimeDelta::minutes(1), t0() + TimeDelta::minutes(2));
    let c = |other, at, dispute| Choice { other, at, dispute };
    assert_eq!(
        store.contact_choices(1).await.unwrap(),
        ContactChoices::default()
    );

    assert!(store.ask_reveal(1, 2, t0()).await.unwrap());
    assert!(!store.ask_reveal(1, 2, t2).await.unwrap(), "asked before");
    assert!(store.ask_reveal(2, 1, t1).await.unwrap());
    assert!(store.ask_reveal(3, 1, t2).await.unwrap());
    assert!(store.ask_reveal(2, 3, t0()).await.unwrap());
    let one = store.contact_choices(1).await.unwrap();
    assert_eq!(one.asked, vec![c(2, t0(), false)]);
    assert_eq!(one.asking_me, vec![c(2, t1, false), c(3, t2, false)]);
    assert!(one.revealed(2) && !one.revealed(3));

    store.hide_contact(3, c(1, t0(), false)).await.unwrap();
    store.hide_contact(3, c(1, t1, true)).await.unwrap();
    store.hide_contact(1, c(4, t1, false)).await.unwrap();
    let one = store.contact_choices(1).await.unwrap();
    assert_eq!(one.hidden, vec![c(4, t1, false)]);
    assert_eq!(one.hidden_by, vec![3]);
    let three = store.contact_choices(3).await.unwrap();
    // Hiding again changes the dispute and keeps the first time.
    assert_eq!(three.hidden, vec![c(1, t0(), true)]);
    assert_eq!(three.asked, vec![c(1, t2, false)]);
    assert_eq!(three.asking_me, vec![c(2, t0(), false)]);

    assert!(store.withdraw_reveal(2, 1).await.unwrap());
    assert!(!store.withdraw_reveal(2, 1).await.unwrap());
    let one = store.contact_choices(1).await.unwrap();
    assert!(!one.revealed(2));
    assert_eq!(one.asked, vec![c(2, t0(), false)], "the other side stays");
    assert!(store.unhide_contact(1, 4).await.unwrap());
    assert!(!store.unhide_contact(1, 4).await.unwrap());
    assert!(store.contact_choices(1).await.unwrap().hidden.is_empty());

    // Forgetting person 1: their rows, both sides, go; 2 asking 3 stays.
    store.hide_contact(1, c(2, t1, true)).await.unwrap();
    assert_eq!(store.forget_contact_choices(1).await.unwrap(), 4);
    for person in [1, 2, 3] {
        let choices = store.contact_choices(person).await.unwrap();
        let all = choices
            .asked
            .iter()
            .chain(&choices.asking_me)
            .chain(&choices.hidden)
            .map(|c| c.other)
            .chain(choices.hidden_by.iter().copied());
        assert!(all.into_iter().all(|p| p != 1), "{person}: {choices:?}");
    }
    assert_eq!(
        store.contact_choices(2).await.unwrap().asked,
        vec![c(3, t0(), false)]
    );
    assert_eq!(store.forget_contact_choices(1).await.unwrap(), 0);
}
