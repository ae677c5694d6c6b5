use chrono::TimeDelta;
use udaconnect_core::audit::AuditEntry;
use udaconnect_core::auth::Role;
use udaconnect_core::model::Location;
use udaconnect_core::time::to_micros;

use super::accounts::t0;
use super::{loc, open_with_persons, StoreEngine};

/// Reads of a person's data are kept per person, read back newest first (the limit keeping
/// the newest), and forgetting a person removes theirs and no one else's.
pub async fn reads_are_audited_per_person_newest_first_and_forgotten<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.accounts();
    let read = |person, reader, role, action: &str, minutes| AuditEntry {
        person,
        reader,
        role,
        action: action.into(),
        at: t0() + TimeDelta::minutes(minutes),
    };
    assert!(store.reads_of(1, 10).await.unwrap().is_empty());
    let first = read(1, 10, Role::Admin, "GetContacts", 0);
    let second = read(1, 11, Role::Organizer, "GetSummary", 2);
    let other = read(2, 10, Role::Admin, "GetConnection", 1);
    store
        .record_reads(&[first.clone(), other.clone()])
        .await
        .unwrap();
    store
        .record_reads(std::slice::from_ref(&second))
        .await
        .unwrap();
    store.record_reads(&[]).await.unwrap();

    assert_eq!(
        store.reads_of(1, 10).await.unwrap(),
        vec![second.clone(), first]
    );
    assert_eq!(store.reads_of(1, 1).await.unwrap(), vec![second]);
    assert_eq!(store.reads_of(2, 10).await.unwrap(), vec![other.clone()]);

    assert_eq!(store.forget_reads(1).await.unwrap(), 2);
    assert!(store.reads_of(1, 10).await.unwrap().is_empty());
    assert_eq!(store.reads_of(2, 10).await.unwrap(), vec![other]);
    assert_eq!(store.forget_reads(1).await.unwrap(), 0);
}

/// Many reads in one call are written together, each its own row; calls at once (the
/// server's audit writer, or several processes on one database) each leave all of theirs.
pub async fn many_reads_are_recorded_at_once_each_its_row<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.accounts();
    let read = |reader, seconds| AuditEntry {
        person: 1,
        reader,
        role: Role::Organizer,
        action: "GetSummary".into(),
        at: t0() + TimeDelta::seconds(seconds),
    };
    let group: Vec<AuditEntry> = (0..50).map(|i| read(10, i)).collect();
    store.record_reads(&group).await.unwrap();
    let calls = (0..50).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.record_reads(&[read(11, 100 + i)]).await })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap().unwrap();
    }
    let mut want: Vec<AuditEntry> = group;
    want.extend((0..50).map(|i| read(11, 100 + i)));
    want.reverse();
    assert_eq!(store.reads_of(1, 1_000).await.unwrap(), want);
}

/// A person's pages hold their pings only, in time order then by id (ties of time included),
/// each page starting after the last one's final ping, until an empty page.
pub async fn a_persons_pings_are_read_in_pages_in_time_order<E: StoreEngine>() {
    let stores = open_with_persons::<E>([1, 2]).await;
    let store = stores.locations();
    let mut mine: Vec<Location> = (0..23)
        // Times out of id order, and three pings at each time.
        .map(|i| {
            loc(
                100 + i,
                1,
                10.0,
                20.0 + i as f64 / 1000.0,
                (40 - i / 3) * 1_000_000,
            )
        })
        .collect();
    let theirs: Vec<Location> = (0..7)
        .map(|i| loc(200 + i, 2, 10.0, 20.0, (30 + i) * 1_000_000))
        .collect();
    store.upsert(&mine).await.unwrap();
    store.upsert(&theirs).await.unwrap();
    mine.sort_by_key(|l| (l.creation_time, l.id));

    let mut read = Vec::new();
    let mut after = None;
    loop {
        let page = store.person_page(1, after, 5).await.unwrap();
        assert!(page.len() <= 5);
        let Some(last) = page.last() else { break };
        after = Some((to_micros(last.creation_time), last.id));
        read.extend(page);
    }
    assert_eq!(read, mine);
    assert!(store.person_page(3, None, 5).await.unwrap().is_empty());
    assert_eq!(store.person_page(2, None, 100).await.unwrap(), theirs);
}
