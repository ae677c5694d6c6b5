use chrono::{DateTime, TimeDelta, Utc};
use udaconnect_core::auth::{AccountId, Principal, Role, Scope, Scopes};
use udaconnect_core::tracker::{App, IssuedDevice, NewDevice, Seen};

use super::accounts::{new_account, t0};
use super::StoreEngine;

/// A registered device gets a device token for its person and an OsmAnd id, both stored
/// only hashed and each finding the device while it is live; the account lists its devices
/// without secrets; a use is recorded to the minute with its app and battery; revoking the
/// device (or everything of the account) ends both credentials.
pub async fn devices_are_registered_found_seen_and_revoked<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.accounts();
    let account = |person: i64, address: &'static str| {
        let new = new_account(Role::Attendee, Some(person), Some(address));
        let store = store.clone();
        async move { store.create_account(new, t0()).await.unwrap() }
    };
    let (ana, ben) = (
        account(10, "ana@example.org").await,
        account(20, "ben@example.org").await,
    );
    let device = |account: AccountId, person: i64, name: &'static str| {
        let store = store.clone();
        async move {
            let new = NewDevice::new(account, person, name).unwrap();
            store.create_device(new, t0()).await.unwrap()
        }
    };
    let phone = device(ana.id, 10, "Pixel").await;
    let watch = device(ana.id, 10, "Watch").await;
    let bens = device(ben.id, 20, "Phone").await;
    assert_eq!(phone.device.person, 10);
    assert_eq!(phone.device.name, "Pixel");
    assert_eq!(phone.device.created, t0());
    assert_ne!(phone.osmand_id, watch.osmand_id);
    assert_ne!(phone.token, watch.token);
    assert_eq!(
        phone.device.mqtt_topic(),
        format!("owntracks/p10/pixel-{}", phone.device.id)
    );

    // The device token signs in as the device's person, for ingest only.
    let at = t0() + TimeDelta::seconds(5);
    let signed_in = store.verify_token(&phone.token, at).await.unwrap();
    let device_principal = Principal {
        account: ana.id,
        person: Some(10),
        role: Role::Device,
        scopes: Scopes::only(Scope::Ingest),
    };
    assert_eq!(signed_in, Some(device_principal));
    // What each credential of a device finds of it.
    let found = |issued: &IssuedDevice| {
        let (store, token, id) = (
            store.clone(),
            issued.token.clone(),
            issued.osmand_id.clone(),
        );
        async move {
            let by_token = store.device_by_token(&token).await.unwrap();
            let by_id = store.device_by_osmand_id(id.expose()).await.unwrap();
            (by_token.map(|d| d.id), by_id.map(|d| d.id))
        }
    };
    let by_token = store.device_by_token(&phone.token).await.unwrap().unwrap();
    assert_eq!(by_token, phone.device);
    let by_id = store
        .device_by_osmand_id(&format!(" {}\n", phone.osmand_id.expose().to_uppercase()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id, phone.device);
    assert_eq!(store.device_by_osmand_id("0123").await.unwrap(), None);
    assert_eq!(
        store.device(bens.device.id).await.unwrap(),
        Some(bens.device.clone())
    );
    let listed = store.devices(ana.id).await.unwrap();
    assert_eq!(listed, vec![phone.device.clone(), watch.device.clone()]);

    // Seen: written, then not again within the minute unless the app or battery changes.
    let seen_at = |app: App, battery_pct: Option<f64>, at: DateTime<Utc>| Seen {
        app,
        battery_pct,
        at,
    };
    let phone_id = phone.device.id;
    let read = || {
        let store = store.clone();
        async move { store.device(phone_id).await.unwrap().unwrap() }
    };
    let use_at = at + TimeDelta::seconds(5);
    store
        .device_seen(&phone.device, seen_at(App::OsmAnd, Some(54.6), use_at))
        .await
        .unwrap();
    let seen = read().await;
    assert_eq!(seen.last_seen, Some(use_at));
    assert_eq!((seen.app, seen.battery_pct), (Some(App::OsmAnd), Some(55)));
    let soon = seen_at(App::OsmAnd, None, use_at + TimeDelta::seconds(30));
    store.device_seen(&seen, soon).await.unwrap();
    assert_eq!(read().await, seen);
    let later = use_at + TimeDelta::seconds(40);
    let other_app = seen_at(App::OwnTracks, None, later);
    store.device_seen(&seen, other_app).await.unwrap();
    let again = read().await;
    assert_eq!(
        (again.last_seen, again.app),
        (Some(later), Some(App::OwnTracks))
    );
    assert_eq!(
        again.battery_pct,
        Some(55),
        "no level said: the last one kept"
    );

    // Revoked: neither credential finds it, the list drops it, a second revoke is a no.
    let revoked_at = t0() + TimeDelta::minutes(3);
    assert!(store
        .revoke_device(phone.device.id, revoked_at)
        .await
        .unwrap());
    assert!(!store
        .revoke_device(phone.device.id, revoked_at)
        .await
        .unwrap());
    assert!(!store.revoke_device(999_999, revoked_at).await.unwrap());
    assert_eq!(
        store.verify_token(&phone.token, revoked_at).await.unwrap(),
        None
    );
    assert_eq!(found(&phone).await, (None, None));
    let gone = read().await;
    assert_eq!(gone.revoked, Some(revoked_at));
    assert_eq!(
        store.devices(ana.id).await.unwrap(),
        vec![watch.device.clone()]
    );

    // Everything of an account revoked: its devices' tokens too, so they are found no more.
    store.revoke_all(ana.id, revoked_at).await.unwrap();
    assert_eq!(found(&watch).await, (None, None));
    assert!(store.devices(ana.id).await.unwrap().is_empty());
    // Ben's device is untouched.
    assert_eq!(
        found(&bens).await,
        (Some(bens.device.id), Some(bens.device.id))
    );
}
