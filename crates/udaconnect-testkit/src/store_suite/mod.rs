//! The conformance suite of the store ports: every store engine (SQLite, PostgreSQL, the next
//! one) passes the same test bodies, so both modes answer alike.
//!
//! An engine implements [`StoreEngine`] in its crate's tests and adds one line:
//!
//! ```ignore
//! udaconnect_testkit::store_suite!(sqlite, Sqlite);
//! ```
//!
//! which generates module `sqlite` with one `#[tokio::test]` per body listed in the macro. The
//! calling crate needs `tokio` (with `macros` and `rt-multi-thread`) among its dependencies.
//!
//! The account bodies hand the store its "now" ([`t0`] and later), so expiry is tested
//! without waiting.
//!
//! Each body holds the engine to a model worked out in the test (what the stored rows must
//! be, the contact oracle's answer), not to another engine. Behaviour only one engine has
//! (PostgreSQL's migrations, ids above an original database's rows) is tested beside it.

mod account_changes;
mod accounts;
mod choices;
mod devices;
mod export;
mod ids;
mod keys;
mod locations;
mod near;
mod persons;
mod tracks;
mod visibility;

use std::collections::BTreeMap;

use async_trait::async_trait;
use udaconnect_core::contact::{connections, ConnectionQuery, Point};
use udaconnect_core::model::{Location, Person};
use udaconnect_core::ports::{
    DynAccountStore, DynIdLeaser, DynKeyStore, DynLocationStore, DynPersonStore, LocationStore,
    Near,
};
use udaconnect_core::time::{from_micros, to_micros};

pub use account_changes::{
    address_changes_apply_once_by_link, role_changes_revoke_tokens_above_the_role,
    sessions_are_listed_and_ended_by_number,
};
pub use accounts::{
    accounts_are_created_and_found, new_account, new_token,
    revoking_everything_ends_every_token_and_session, sessions_verify_until_revoked_or_expired,
    sign_in_links_are_used_once, t0, tokens_verify_until_revoked_or_expired,
};
pub use choices::reveal_requests_and_hidden_contacts_are_kept_per_pair_and_forgotten;
pub use devices::devices_are_registered_found_seen_and_revoked;
pub use export::{
    a_persons_pings_are_read_in_pages_in_time_order, many_reads_are_recorded_at_once_each_its_row,
    reads_are_audited_per_person_newest_first_and_forgotten,
};
pub use ids::{
    id_leases_are_unique_across_concurrent_leasers_and_restarts, id_leases_never_repeat,
};
pub use keys::{
    destroyed_person_keys_are_final, person_keys_are_made_and_read_many_at_once,
    person_keys_are_made_once_under_a_race,
};
pub use locations::{
    accuracy_is_kept_where_known, clear_removes_every_location,
    coordinates_and_times_round_trip_bit_for_bit, erasing_a_person_removes_them_and_their_pings,
    in_window_orders_by_time_then_id_within_the_window, large_batches_are_stored_at_once,
    max_leased_id_ignores_derived_ids, ping_answers,
    retention_removes_pings_before_the_cut_in_batches, scan_and_id_range_follow_the_ids,
    telemetry_is_kept_where_known, upserts_are_idempotent,
};
pub use near::{near_gives_the_answers_of_the_whole_window, near_on_the_seed_data};
pub use persons::{
    creates_racing_an_import_never_collide, new_person, persons_are_imported_created_and_listed,
};
pub use tracks::{contacts_via_store, longest_piece_m, near_tracks_gives_the_oracles_contacts};
pub use visibility::{
    live_map_is_anonymous_until_chosen_and_goes_with_the_account,
    visibility_is_off_until_chosen_and_goes_with_the_account,
};

/// One store engine: how the suite opens fresh stores of it, and what keeps them (a
/// directory, a database) until they are dropped.
#[async_trait]
pub trait StoreEngine: Send + Sync + Sized + 'static {
    /// Whether several processes lease ids from the same state at once (location-api
    /// replicas on one database). When not, the one process's leaser is shared by concurrent
    /// tasks instead.
    const LEASERS_SHARED_BY_PROCESSES: bool;

    /// Fresh, empty stores of every port.
    async fn open() -> Stores<Self>;
    /// The id leaser named `name` as a starting process opens it: a new handle on the state
    /// the earlier handles left.
    async fn leaser(&self, name: &str) -> DynIdLeaser;
    /// The key store as a starting process opens it: a new handle on the state the earlier
    /// handles left.
    async fn keys(&self) -> DynKeyStore;
}

/// The stores an engine opened, closed (their files or database removed) when dropped.
pub struct Stores<E> {
    pub persons: DynPersonStore,
    /// Locations; persons they name are imported first (a database may check references).
    pub locations: DynLocationStore,
    pub accounts: DynAccountStore,
    /// Last, so the stores close before it goes.
    pub engine: E,
}

impl<E: StoreEngine> Stores<E> {
    pub fn persons(&self) -> DynPersonStore {
        self.persons.clone()
    }

    pub fn locations(&self) -> DynLocationStore {
        self.locations.clone()
    }

    pub fn accounts(&self) -> DynAccountStore {
        self.accounts.clone()
    }

    pub async fn leaser(&self, name: &str) -> DynIdLeaser {
        self.engine.leaser(name).await
    }

    pub async fn keys(&self) -> DynKeyStore {
        self.engine.keys().await
    }
}

/// Generates module `$engine` with one `#[tokio::test]` per body of the store suite, each on
/// fresh stores of `$stores` (a [`StoreEngine`]).
#[macro_export]
macro_rules! store_suite {
    ($engine:ident, $stores:ty) => {
        $crate::conformance_tests!(
            store_suite,
            $engine,
            $stores,
            [
                persons_are_imported_created_and_listed,
                creates_racing_an_import_never_collide,
                upserts_are_idempotent,
                in_window_orders_by_time_then_id_within_the_window,
                scan_and_id_range_follow_the_ids,
                large_batches_are_stored_at_once,
                clear_removes_every_location,
                erasing_a_person_removes_them_and_their_pings,
                retention_removes_pings_before_the_cut_in_batches,
                max_leased_id_ignores_derived_ids,
                coordinates_and_times_round_trip_bit_for_bit,
                accuracy_is_kept_where_known,
                telemetry_is_kept_where_known,
                near_gives_the_answers_of_the_whole_window,
                near_on_the_seed_data,
                near_tracks_gives_the_oracles_contacts,
                id_leases_never_repeat,
                id_leases_are_unique_across_concurrent_leasers_and_restarts,
                ping_answers,
                accounts_are_created_and_found,
                tokens_verify_until_revoked_or_expired,
                sessions_verify_until_revoked_or_expired,
                revoking_everything_ends_every_token_and_session,
                sign_in_links_are_used_once,
                sessions_are_listed_and_ended_by_number,
                address_changes_apply_once_by_link,
                role_changes_revoke_tokens_above_the_role,
                devices_are_registered_found_seen_and_revoked,
                person_keys_are_made_once_under_a_race,
                destroyed_person_keys_are_final,
                person_keys_are_made_and_read_many_at_once,
                visibility_is_off_until_chosen_and_goes_with_the_account,
                live_map_is_anonymous_until_chosen_and_goes_with_the_account,
                reveal_requests_and_hidden_contacts_are_kept_per_pair_and_forgotten,
                reads_are_audited_per_person_newest_first_and_forgotten,
                many_reads_are_recorded_at_once_each_its_row,
                a_persons_pings_are_read_in_pages_in_time_order,
            ]
        );
    };
}

/// A location at `t` microseconds since the epoch.
pub fn loc(id: i64, person_id: i64, latitude: f64, longitude: f64, t: i64) -> Location {
    Location {
        id,
        person_id,
        latitude,
        longitude,
        creation_time: from_micros(t),
        accuracy_m: None,
        telemetry: Default::default(),
    }
}

/// A simulated conference's pings as locations, ids from 1.
pub fn conference_locations(conference: &udaconnect_sim::Conference) -> Vec<Location> {
    conference
        .pings()
        .enumerate()
        .map(|(i, p)| loc(i as i64 + 1, p.person_id, p.latitude, p.longitude, p.t))
        .collect()
}

/// Stores `pings` `batch` at a time, and says how long that took (for measurements run by
/// hand).
pub async fn load_timed(store: &dyn LocationStore, pings: &[Location], batch: usize) {
    let started = std::time::Instant::now();
    for chunk in pings.chunks(batch) {
        store.upsert(chunk).await.unwrap();
    }
    println!(
        "loaded {} pings in {:.1} s",
        pings.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Persons with these ids and names made of them.
pub fn persons(ids: impl IntoIterator<Item = i64>) -> Vec<Person> {
    ids.into_iter()
        .map(|id| Person {
            id,
            first_name: format!("First{id}"),
            last_name: format!("Last{id}"),
            company_name: format!("Company{id}"),
        })
        .collect()
}

/// Every location by id, bit for bit comparable (`-0.0` is not `0.0` here).
pub fn by_id(ls: &[Location]) -> BTreeMap<i64, (i64, u64, u64, i64)> {
    ls.iter()
        .map(|l| {
            (
                l.id,
                (
                    l.person_id,
                    l.latitude.to_bits(),
                    l.longitude.to_bits(),
                    to_micros(l.creation_time),
                ),
            )
        })
        .collect()
}

pub fn point(l: &Location) -> Point {
    Point::from(l)
}

pub fn points(ls: &[Location]) -> Vec<Point> {
    ls.iter().map(Point::from).collect()
}

/// What the contact engine answers from a store's `near`.
pub fn answer(near: &Near, q: &ConnectionQuery) -> Vec<Point> {
    connections(&points(&near.own), &points(&near.candidates), q)
}

/// The stores of `E`, with persons `ids` imported so that locations may name them.
async fn open_with_persons<E: StoreEngine>(ids: impl IntoIterator<Item = i64>) -> Stores<E> {
    let stores = E::open().await;
    stores
        .persons()
        .import(persons(ids))
        .await
        .expect("import persons");
    stores
}
