//! The person directory other roles use when person-api runs apart: a client of person-api's
//! lookup, against a real person-api process of its own.

use std::sync::Arc;

use udaconnect_core::model::Person;
use udaconnect_core::ports::DynPersonStore;
use udaconnect_core::ErrorCode;
use udaconnect_server::http::upstream::Upstream;
use udaconnect_server::persons::{PersonApiClient, PersonDirectory, RemotePersons};
use udaconnect_server::roles::Role;
use udaconnect_server::{Application, HttpSettings, RoleSettings};
use udaconnect_store::SqlitePersonStore;

fn person(id: i64) -> Person {
    Person {
        id,
        first_name: format!("F{id}"),
        last_name: "L".into(),
        company_name: "C".into(),
    }
}

/// person-api on its own embedded store holding `ids`.
async fn person_api(dir: &std::path::Path, ids: &[i64]) -> Application {
    let store: DynPersonStore =
        Arc::new(SqlitePersonStore::open(dir.join("persons.sqlite3")).unwrap());
    store
        .import(ids.iter().map(|&id| person(id)).collect())
        .await
        .unwrap();
    drop(store);
    person_api_apart(dir).await
}

/// person-api in a process of its own as a role apart would be, on the embedded store and
/// log in `dir`, with authentication off; returned once it is ready.
pub async fn person_api_apart(dir: &std::path::Path) -> Application {
    let app = Application::build_role(RoleSettings::new(
        Role::PersonApi,
        HttpSettings::open("127.0.0.1:0".parse().unwrap()),
        dir.display().to_string().parse().unwrap(),
        dir.display().to_string().parse().unwrap(),
    ))
    .await
    .unwrap();
    let base = format!("http://{}", app.local_addr());
    let timeout = std::time::Duration::from_secs(10);
    udaconnect_testkit::http::wait_ready(&reqwest::Client::new(), &base, timeout).await;
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asks_person_api_in_calls_of_at_most_ten_thousand_and_remembers() {
    let dir = tempfile::tempdir().unwrap();
    // Ids on both sides of the first call's 10,000.
    let app = person_api(dir.path(), &[3, 7, 10_500]).await;
    let url = format!("http://{}", app.local_addr());
    let persons = RemotePersons::new(PersonApiClient::new(Arc::new(
        Upstream::new(Role::PersonApi, &url).unwrap(),
    )));
    let asked: Vec<i64> = (1..=10_600).rev().collect();
    let missing = persons.missing(&asked).await.unwrap();
    assert_eq!(missing.len(), 10_597);
    assert!(!missing.contains(&3) && !missing.contains(&10_500));
    let found = persons.get_many(&[10_500, 7, 3, 7, 4]).await.unwrap();
    assert_eq!(found, [person(3), person(7), person(10_500)]);
    let json = persons.json_many(&[7]).await.unwrap();
    assert_eq!(json[0].0, 7);
    assert_eq!(
        serde_json::from_slice::<Person>(&json[0].1).unwrap(),
        person(7)
    );

    // person-api gone: what was read is still answered; what was not is unavailable (a 503),
    // never "no such person".
    app.stop().await.unwrap();
    assert_eq!(persons.missing(&[3, 7]).await.unwrap(), Vec::<i64>::new());
    assert_eq!(persons.get_many(&[7]).await.unwrap(), [person(7)]);
    let e = persons.missing(&[3, 8]).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unavailable, "{e}");
    assert!(e.to_string().contains("person-api"), "{e}");
    let e = persons.get_many(&[4]).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unavailable, "{e}");
}
