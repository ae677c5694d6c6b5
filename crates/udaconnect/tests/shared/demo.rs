//! The demo data loaded into a distributed stack as `serve --demo` loads it (persons into
//! person-api's store, locations through the log), for the test binaries that start one.
//! Included by path: the test kit does not depend on the server.

use std::path::Path;

use udaconnect_server::ingest::seed;
use udaconnect_server::wiring::backends::{open_log, open_stores, LogUrl, StoreUrl};
use udaconnect_testkit::kafka::Broker;

/// Loads the demo data into the database at `store` and the topics on `broker`, remembering in
/// `dir` that it did; run by [`Stack::start_seeded_with_env`] before any role but person-api
/// starts.
///
/// [`Stack::start_seeded_with_env`]: udaconnect_testkit::process::Stack::start_seeded_with_env
pub async fn load(store: &str, broker: &Broker, dir: &Path) {
    let (_keep, mut never) = tokio::sync::watch::channel(false);
    let stores = open_stores(&store.parse::<StoreUrl>().unwrap(), &mut never)
        .await
        .unwrap()
        .unwrap();
    let log = open_log(&broker.producer_url().parse::<LogUrl>().unwrap()).unwrap();
    assert!(
        seed::load_once(dir, &stores.persons, &log, &stores.ids, &stores.keys)
            .await
            .unwrap()
    );
}
