use chrono::TimeDelta;
use udaconnect_core::auth::{Principal, Role, Scope, Scopes};
use udaconnect_core::tracker::{App, NewDevice};

use super::accounts::{new_account, t0};
use super::StoreEngine;

/// A registered device gets a device token for its person and an OsmAnd id, both stored
/// only hashed and each finding the device while it is live; the account lists its devices
/// without secrets; a use is recorded to the minute with its app and battery; revoking the
/// device (or everything of the account) ends both credentials.
pub async fn devices_are_registered_found_seen_and_revoked<E: StoreEngine>() {
    let stores = E::open().await;
    let store = stores.accounts();
    let ana = store
        .create_account(
            new_account(Role::Attendee, Some(10), Some("ana@example.org")),
            t0(),
        )
        .await
        .unwrap();
    let ben = store
        .create_account(
            new_account(Role::Attendee, Some(20), Some("ben@example.org")),
            t0(),
        )
        .await
        .unwrap();

    let phone = store
        .create_device(NewDevice::new(ana.id, 10, "Pixel").unwrap(), t0())
        .await
        .unwrap();
    let watch = store
        .create_device(NewDevice::new(ana.id, 10, "Watch").unwrap(), t0())
        .await
        .unwrap();
    let bens = store
        .create_device(NewDevice::new(ben.id, 20, "Phone").unwrap(), t0())
        .await
        .unwrap();
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
    assert_eq!(
        store.verify_token(&phone.token, at).await.unwrap(),
        Some(Principal {
            account: ana.id,
            person: Some(10),
            role: Role::Device,
            scopes: Scopes::only(Scope::Ingest),
        })
    );
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
    store
        .device_seen(&phone.device, App::OsmAnd, Some(54.6), at)
        .await
        .unwrap();
    let seen = store.device(phone.device.id).await.unwrap().unwrap();
    assert_eq!(seen.last_seen, Some(at));
    assert_eq!((seen.app, seen.battery_pct), (Some(App::OsmAnd), Some(55)));
    store
        .device_seen(&seen, App::OsmAnd, None, at + TimeDelta::seconds(30))
        .await
        .unwrap();
    assert_eq!(store.device(phone.device.id).await.unwrap().unwrap(), seen);
    let later = at + TimeDelta::seconds(40);
    store
        .device_seen(&seen, App::OwnTracks, None, later)
        .await
        .unwrap();
    let again = store.device(phone.device.id).await.unwrap().unwrap();
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
    assert_eq!(store.device_by_token(&phone.token).await.unwrap(), None);
    assert_eq!(
        store
            .device_by_osmand_id(phone.osmand_id.expose())
            .await
            .unwrap(),
        None
    );
    let gone = store.device(phone.device.id).await.unwrap().unwrap();
    assert_eq!(gone.revoked, Some(revoked_at));
    assert_eq!(
        store.devices(ana.id).await.unwrap(),
        vec![watch.device.clone()]
    );

    // Everything of an account revoked: its devices' tokens too, so they are found no more.
    store.revoke_all(ana.id, revoked_at).await.unwrap();
    assert_eq!(store.device_by_token(&watch.token).await.unwrap(), None);
    assert_eq!(
        store
            .device_by_osmand_id(watch.osmand_id.expose())
            .await
            .unwrap(),
        None
    );
    assert!(store.devices(ana.id).await.unwrap().is_empty());
    // Ben's device is untouched.
    assert!(store.device_by_token(&bens.token).await.unwrap().is_some());
    assert!(store
        .device_by_osmand_id(bens.osmand_id.expose())
        .await
        .unwrap()
        .is_some());
}
