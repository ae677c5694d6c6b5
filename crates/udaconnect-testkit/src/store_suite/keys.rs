use udaconnect_core::envelope::{self, PersonKey};
use udaconnect_core::ports::KeyState;
use udaconnect_core::record::{Position, LOCATION_TOPIC};

use super::{loc, StoreEngine};

/// Creators racing on one person (on two handles, as two processes would be) all get the one
/// key; it reads back the same, after a restart too; another person gets a key of their own.
pub async fn person_keys_are_made_once_under_a_race<E: StoreEngine>() {
    let stores = E::open().await;
    let handles = [stores.keys().await, stores.keys().await];
    assert_eq!(handles[0].get(7).await.unwrap(), KeyState::Absent);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let keys = handles[i % 2].clone();
            tokio::spawn(async move { keys.get_or_create(7).await.unwrap() })
        })
        .collect();
    let mut made = Vec::new();
    for t in tasks {
        made.push(t.await.unwrap().expect("a live key"));
    }
    let key = made[0].clone();
    assert!(made.iter().all(|k| *k == key), "{made:?}");
    assert_eq!((key.person_id(), key.version()), (7, 1));
    assert_ne!(key.secret(), &[0u8; envelope::KEY_LEN]);
    assert_eq!(
        handles[1].get_or_create(7).await.unwrap(),
        Some(key.clone())
    );
    let restarted = stores.keys().await;
    assert_eq!(restarted.get(7).await.unwrap(), KeyState::Live(key.clone()));

    let other = restarted
        .get_or_create(8)
        .await
        .unwrap()
        .expect("a live key");
    assert_eq!(other.person_id(), 8);
    assert_ne!(other.secret(), key.secret());
    assert_eq!(handles[0].get(7).await.unwrap(), KeyState::Live(key));
}

/// A destroyed key is gone for good: it reads as destroyed from every handle and after a
/// restart, is never made again (a late ping for an erased person is refused), and what it
/// sealed no longer opens. Destroying again, or destroying a person never keyed, leaves the
/// same tombstone; other persons' keys are untouched.
pub async fn destroyed_person_keys_are_final<E: StoreEngine>() {
    let stores = E::open().await;
    let keys = stores.keys().await;
    let erased = keys.get_or_create(7).await.unwrap().expect("a live key");
    let kept = keys.get_or_create(8).await.unwrap().expect("a live key");
    let ping = loc(1, 7, 52.520_008, 13.404_954, 1_600_000_000_000_000);
    let sealed =
        envelope::seal_location(&ping, None, ping.creation_time, LOCATION_TOPIC, &erased).unwrap();

    assert!(keys.destroy(7).await.unwrap(), "a live key destroyed");
    assert!(!keys.destroy(7).await.unwrap(), "destroyed twice");
    for handle in [keys.clone(), stores.keys().await] {
        assert_eq!(handle.get(7).await.unwrap(), KeyState::Destroyed);
        assert_eq!(handle.get_or_create(7).await.unwrap(), None);
        assert_eq!(handle.get(8).await.unwrap(), KeyState::Live(kept.clone()));
    }
    // Whatever key is made up for person 7 now, the sealed ping stays shut.
    let guess = PersonKey::generate(7, 1).unwrap();
    let pos = Position {
        partition: 0,
        offset: 0,
    };
    assert!(envelope::decode_sealed(&sealed, pos, LOCATION_TOPIC, &guess).is_err());

    // A person erased before they ever had a key is never given one.
    assert!(!keys.destroy(9).await.unwrap());
    assert_eq!(keys.get(9).await.unwrap(), KeyState::Destroyed);
    assert_eq!(keys.get_or_create(9).await.unwrap(), None);
    assert_eq!(keys.get(10).await.unwrap(), KeyState::Absent);
}

/// Keys asked for many persons at once are the keys asked one by one: made for those who
/// have none (once, however often a person is named), read back alike, a destroyed one never
/// made again, and a person never keyed read as absent.
pub async fn person_keys_are_made_and_read_many_at_once<E: StoreEngine>() {
    let stores = E::open().await;
    let keys = stores.keys().await;
    let single = keys.get_or_create(1).await.unwrap().expect("a live key");
    assert!(!keys.destroy(2).await.unwrap(), "person 2 never had a key");

    let mut made = keys.get_or_create_many(&[1, 2, 3, 4, 3]).await.unwrap();
    made.sort_by_key(|(p, _)| *p);
    let persons: Vec<i64> = made.iter().map(|(p, _)| *p).collect();
    assert_eq!(persons, [1, 2, 3, 4], "each person once");
    assert_eq!(made[0].1, Some(single));
    assert_eq!(made[1].1, None, "a destroyed key is never made again");
    for (person, key) in &made[2..] {
        let key = key.clone().expect("a live key");
        assert_eq!((key.person_id(), key.version()), (*person, 1));
        // Made once: one by one, and on another handle, they read back the same.
        assert_eq!(
            keys.get_or_create(*person).await.unwrap(),
            Some(key.clone())
        );
        assert_eq!(
            stores.keys().await.get(*person).await.unwrap(),
            KeyState::Live(key)
        );
    }
    assert_ne!(made[2].1, made[3].1);

    let mut read = stores
        .keys()
        .await
        .get_many(&[4, 5, 2, 1, 1])
        .await
        .unwrap();
    read.sort_by_key(|(p, _)| *p);
    let expected = [
        (1, KeyState::Live(made[0].1.clone().unwrap())),
        (2, KeyState::Destroyed),
        (4, KeyState::Live(made[3].1.clone().unwrap())),
        (5, KeyState::Absent),
    ];
    assert_eq!(read, expected);
    // Asking for none asks nothing.
    assert!(keys.get_or_create_many(&[]).await.unwrap().is_empty());
    assert!(keys.get_many(&[]).await.unwrap().is_empty());
}
