use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;

use udaconnect_core::model::{NewPerson, Person};

use super::{persons, StoreEngine};
use crate::seed;

/// A new person of that first name (last name `Person`, company `Co`).
pub fn new_person(first_name: &str) -> NewPerson {
    NewPerson {
        first_name: first_name.into(),
        last_name: "Person".into(),
        company_name: "Co".into(),
    }
}

/// Imports keep their ids (the last of one id in a batch wins, a second import updates),
/// created persons get ids above every id imported before or after, and reads page in id
/// order.
pub async fn persons_are_imported_created_and_listed<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.persons();
    let mut model: BTreeMap<i64, Person> = BTreeMap::new();

    let mut batch = seed::persons();
    // The same id twice in one batch: the last one wins.
    batch.push(Person {
        id: 5,
        first_name: "Taco".into(),
        last_name: "Fargo".into(),
        company_name: "Renamed".into(),
    });
    let mut seven_again = persons([7]);
    seven_again[0].company_name = "Moved".into();
    for import in [batch, persons([3, 7]), seven_again] {
        store.import(import.clone()).await.unwrap();
        model.extend(import.into_iter().map(|p| (p.id, p)));
    }

    let mut created = Vec::new();
    for i in 0..3 {
        let p = store.create(new_person(&format!("New{i}"))).await.unwrap();
        assert_eq!(
            (&p.first_name[..], &p.last_name[..], &p.company_name[..]),
            (&format!("New{i}")[..], "Person", "Co")
        );
        created.push(p.clone());
        model.insert(p.id, p);
    }
    // Above an import that came after them, too.
    store.import(persons([100])).await.unwrap();
    model.extend(persons([100]).into_iter().map(|p| (p.id, p)));
    let after = store.create(new_person("After")).await.unwrap();
    created.push(after.clone());
    model.insert(after.id, after);
    let ids: Vec<i64> = created.iter().map(|p| p.id).collect();
    assert_eq!(ids, vec![10, 11, 12, 101]);

    for (after, limit) in [
        (None, 100),
        (None, 2),
        (Some(5), 3),
        (Some(101), 10),
        (Some(i64::MIN), usize::MAX),
    ] {
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let want: Vec<Person> = model
            .range((from, Bound::Unbounded))
            .take(limit)
            .map(|(_, p)| p.clone())
            .collect();
        assert_eq!(
            store.list(after, limit).await.unwrap(),
            want,
            "list({after:?}, {limit})"
        );
    }
    assert_eq!(store.list(None, 100).await.unwrap().len(), 12);

    let asked = [9, 1, 1, 42, 5, -3, 100];
    let want: Vec<Person> = asked
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter_map(|id| model.get(id).cloned())
        .collect();
    assert_eq!(store.get_many(&asked).await.unwrap(), want);
    assert_eq!(
        want.iter().map(|p| p.id).collect::<Vec<_>>(),
        [1, 5, 9, 100]
    );
    assert_eq!(store.get_many(&[]).await.unwrap(), vec![]);
    assert_eq!(store.get(5).await.unwrap().unwrap().company_name, "Renamed");
    assert_eq!(store.get(7).await.unwrap().unwrap().company_name, "Moved");
    for (id, p) in &model {
        assert_eq!(store.get(*id).await.unwrap().as_ref(), Some(p));
    }
    assert_eq!(store.get(42).await.unwrap(), None);
}

/// Persons created while imports run never get the same id twice.
pub async fn creates_racing_an_import_never_collide<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.persons();
    let creators: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for _ in 0..25 {
                    ids.push(store.create(new_person("A")).await.unwrap().id);
                }
                ids
            })
        })
        .collect();
    for round in 0..10 {
        store
            .import(persons([round * 7 + 3, round * 7 + 40]))
            .await
            .unwrap();
    }
    let mut all = HashSet::new();
    for c in creators {
        for id in c.await.unwrap() {
            assert!(all.insert(id), "id {id} created twice");
        }
    }
    assert_eq!(all.len(), 100);
}
